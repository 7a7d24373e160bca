"""Execution ids: UUID strings in the time-ordered version-7 layout.

conductor-oss uses random (v4) UUIDs. A v7 UUID is just as unique and opaque to clients (48 bits
of milliseconds, then 74 random bits), but ids created close in time sort close together, so
DuckDB's min/max zone maps can find a row by id without an in-memory index (docs/compat.md).
"""

from __future__ import annotations

import os
import time
import uuid

_RAND_MASK_62 = (1 << 62) - 1


def new_id() -> str:
    """A new UUIDv7 string, e.g. ``0190f6e2-8a4b-7c3d-9e8f-0123456789ab``."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")  # 80 random bits, 74 used
    value = (
        ((ms & 0xFFFF_FFFF_FFFF) << 80)
        | (0x7 << 76)
        | (((rand >> 62) & 0xFFF) << 64)
        | (0b10 << 62)
        | (rand & _RAND_MASK_62)
    )
    return str(uuid.UUID(int=value))
