"""Execution ids: UUID strings in the time-ordered version-7 layout.

conductor-oss uses random (v4) UUIDs. A v7 UUID is just as unique and opaque to clients (48 bits
of milliseconds, then 74 random bits), but ids created close in time sort close together, so
DuckDB's min/max zone maps can find a row by id without an in-memory index (docs/compat.md).

Every workflow and every task gets one, so the random bits come from a pool: one
``os.urandom(4090)`` gives the 80 bits (74 used) of 409 ids, instead of one ``getrandom`` system
call per id; the bits are the same kernel CSPRNG's, each used once. Taking a value from the pool
is one C-level ``next()`` on a list iterator (atomic under the GIL), so threads never get the same
bits; a child process drops the pool it inherited at ``fork``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

_RAND_MASK_62 = (1 << 62) - 1
_RAND_BYTES = 10  # 80 random bits per id, 74 used
_POOL_IDS = 409  # ids per os.urandom call (4,090 bytes)

_pool: Iterator[int] = iter(())


def _refill() -> Iterator[int]:
    """A fresh pool of random values (80 bits each) from the kernel."""
    global _pool
    buf = os.urandom(_RAND_BYTES * _POOL_IDS)
    _pool = iter([int.from_bytes(buf[i : i + _RAND_BYTES], "big") for i in range(0, len(buf), _RAND_BYTES)])
    return _pool


def _drop_pool() -> None:
    """After ``fork``: the child must not hand out the parent's random bits again."""
    global _pool
    _pool = iter(())


os.register_at_fork(after_in_child=_drop_pool)


def new_id() -> str:
    """A new UUIDv7 string, e.g. ``0190f6e2-8a4b-7c3d-9e8f-0123456789ab``."""
    ms = time.time_ns() // 1_000_000
    try:
        rand = next(_pool)
    except StopIteration:  # empty: this caller refills (two racing callers each get a new pool)
        rand = next(_refill())
    value = (
        ((ms & 0xFFFF_FFFF_FFFF) << 80)
        | (0x7 << 76)
        | (((rand >> 62) & 0xFFF) << 64)
        | (0b10 << 62)
        | (rand & _RAND_MASK_62)
    )
    h = f"{value:032x}"  # what str(uuid.UUID(int=value)) gives, without the UUID object
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
