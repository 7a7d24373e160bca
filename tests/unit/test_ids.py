"""Execution ids (``engine/ids.py``): UUIDv7 layout, uniqueness across the random-bits pool, threads
and ``fork``."""

from __future__ import annotations

import os
import re
import threading
import time
import uuid

import pytest

from conductor_lab.engine import ids

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def random_part(id_: str) -> str:
    """The 74 random bits' hex digits (after the version digit; the variant digit included)."""
    return id_[15:]


def test_layout_is_uuid_v7_with_the_creation_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    made = ids.new_id()
    after = time.time_ns() // 1_000_000
    assert UUID_RE.match(made), made
    u = uuid.UUID(made)
    assert u.version == 7
    assert u.variant == uuid.RFC_4122
    assert str(u) == made  # canonical form, as str(uuid.UUID(...)) writes it
    assert before <= u.int >> 80 <= after


def test_ids_over_several_pools_are_distinct_and_valid() -> None:
    n = 5 * ids._POOL_IDS + 7  # crosses several refills
    made = [ids.new_id() for _ in range(n)]
    assert all(UUID_RE.match(m) for m in made)
    assert len(set(made)) == n
    assert len({random_part(m) for m in made}) == n


def test_ids_of_later_milliseconds_sort_later() -> None:
    first = ids.new_id()
    ms = uuid.UUID(first).int >> 80
    while time.time_ns() // 1_000_000 <= ms:
        pass  # the next millisecond (a busy wait of at most 1 ms)
    assert ids.new_id() > first


def test_threads_never_share_random_bits() -> None:
    per_thread, n_threads = 3 * ids._POOL_IDS, 6
    results: list[list[str]] = [[] for _ in range(n_threads)]
    start = threading.Barrier(n_threads)

    def make(k: int) -> None:
        start.wait()
        results[k] = [ids.new_id() for _ in range(per_thread)]

    threads = [threading.Thread(target=make, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    parts = [random_part(m) for r in results for m in r]
    assert len(parts) == per_thread * n_threads
    assert len(set(parts)) == len(parts)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_reuse_the_parents_pool() -> None:
    ids.new_id()  # the pool is loaded and partly used
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write 5 ids and leave at once
        try:
            os.write(write_end, ",".join(ids.new_id() for _ in range(5)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 4096):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    child = b"".join(chunks).decode().split(",")
    parent = [ids.new_id() for _ in range(5)]
    assert len(child) == 5 and all(UUID_RE.match(m) for m in child)
    # with the inherited pool, the child's next ids would carry exactly the parent's next bits
    assert not {random_part(m) for m in child} & {random_part(m) for m in parent}
