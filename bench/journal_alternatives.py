"""What a durable single commit costs, per mechanism (the measurements behind ``docs/storage.md``).

    python bench/journal_alternatives.py                 # 2,000 commits of ~2 KB each
    python bench/journal_alternatives.py --commits 500 --dir /some/disk

Each mechanism makes N sequential commits of one ~2 KB batch text (the JSON of a small group
commit) durable, one at a time, as a notebook's single worker does:

* ``duckdb one-row txn``: an autocommit ``INSERT`` of one row (fsync_mode STANDARD: the WAL is
  fsynced per commit), as ``DuckDBStore.commit`` did before the commit log;
* ``sqlite WAL FULL``: SQLite in WAL mode with ``synchronous=FULL``, one INSERT + COMMIT;
* ``append+fdatasync``: ``os.write`` of the text to an ``O_APPEND`` file, then ``os.fdatasync``;
* ``fallocated+fdatasync``: ``os.pwrite`` into space reserved with ``posix_fallocate`` (unwritten
  extents, converted on their first write), then ``os.fdatasync``; as the log's segments were made
  before they were written full of zeros;
* ``zeros+fdatasync``: the same over blocks written (zeros) and fsynced beforehand, as the log's
  segments are made now;
* ``JournalLog.append``: the same, framed (header + crc32), as the store does it;
* ``DuckDBStore.commit``: the whole commit path (row validation with pyarrow, JSON encoding, the log).

Printed per mechanism: p50 / p90 / p99 latency of one commit and CPU per commit (user + system,
``os.times()``, over the run). Then the fold's batch insert of 64 pending records into
``cl_journal``: one Arrow table vs ``executemany`` vs one multi-row ``VALUES``; and what dropping 64
folded records from the durable journal costs afterwards in each (SQLite DELETE + WAL checkpoint,
DuckDB DELETE, the log's segment rotation + unlink + directory fsync).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402

from conductor_lab.engine.store.base import Batch, TaskRow, TransitionRow, WorkflowRow  # noqa: E402
from conductor_lab.engine.store.duckdb import DuckDBStore, encode_batch  # noqa: E402
from conductor_lab.engine.store.journal import JournalLog, write_zeros  # noqa: E402

PAD = "x" * 650


def small_batch(i: int) -> Batch:
    """One workflow update, one task update, one transition: ~2 KB of JSON, like a task update."""
    wid, tid = f"0190f0e4-0000-7000-8000-{i:012d}", f"0190f0e4-1111-7000-8000-{i:012d}"
    wjs = f'{{"workflowId":"{wid}","status":"RUNNING","input":{{"pad":"{PAD}"}},"updateTime":{i}}}'
    tjs = f'{{"taskId":"{tid}","status":"COMPLETED","outputData":{{"pad":"{PAD}"}},"updateTime":{i}}}'
    return Batch(
        workflows=[WorkflowRow(wid, "bench_wf", 1, "RUNNING", None, None, 0, i, i, 0, "snap-1", wjs)],
        tasks=[TaskRow(tid, wid, 1, "SIMPLE", "ref_1", "COMPLETED", 0, None, i, i, i, i, tjs)],
        transitions=[TransitionRow(i, wid, tid, "ref_1", "SIMPLE", "COMPLETED", None)],
    )


TEXT = encode_batch(small_batch(0))


def measure(name: str, setup: Callable[[str, int], Callable[[int], None]], d: str, n: int) -> None:
    commit = setup(d, n)
    for i in range(20):  # warm up (file creation, caches)
        commit(-1 - i)
    lat: list[float] = []
    t0 = os.times()
    for i in range(n):
        s = time.perf_counter()
        commit(i)
        lat.append(time.perf_counter() - s)
    t1 = os.times()
    cpu = (t1.user - t0.user) + (t1.system - t0.system)
    q = statistics.quantiles(lat, n=100)
    print(
        f"{name:22} p50 {statistics.median(lat) * 1e3:6.3f} ms  p90 {q[89] * 1e3:6.3f} ms  "
        f"p99 {q[98] * 1e3:6.3f} ms  cpu/commit {cpu / n * 1e3:6.3f} ms",
        flush=True,
    )


def duckdb_row(d: str, n: int) -> Callable[[int], None]:
    con = duckdb.connect(os.path.join(d, "one_row.duckdb"))
    con.execute("SET GLOBAL fsync_mode = 'STANDARD'")
    con.execute("CREATE TABLE j (seq BIGINT, batch VARCHAR)")

    def commit(i: int) -> None:
        con.execute("INSERT INTO j VALUES (?, ?)", [i, TEXT])

    return commit


def sqlite_wal(d: str, n: int) -> Callable[[int], None]:
    con = sqlite3.connect(os.path.join(d, "wal.sqlite"), isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE j (seq INTEGER, batch TEXT)")

    def commit(i: int) -> None:
        con.execute("BEGIN")
        con.execute("INSERT INTO j VALUES (?, ?)", (i, TEXT))
        con.execute("COMMIT")

    return commit


def append_fdatasync(d: str, n: int) -> Callable[[int], None]:
    fd = os.open(os.path.join(d, "plain.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    data = TEXT.encode()

    def commit(i: int) -> None:
        os.write(fd, data)
        os.fdatasync(fd)

    return commit


def _overwrite(d: str, n: int, reserve: Callable[[int, int], None]) -> Callable[[int], None]:
    fd = os.open(os.path.join(d, "segment.log"), os.O_WRONLY | os.O_CREAT, 0o644)
    data = TEXT.encode()
    reserve(fd, (n + 40) * len(data))  # room for the warm-up and the run
    os.fsync(fd)
    at = [0]

    def commit(i: int) -> None:
        os.pwrite(fd, data, at[0])
        at[0] += len(data)
        os.fdatasync(fd)

    return commit


def fallocated(d: str, n: int) -> Callable[[int], None]:
    return _overwrite(d, n, lambda fd, size: os.posix_fallocate(fd, 0, size))


def zeros(d: str, n: int) -> Callable[[int], None]:
    return _overwrite(d, n, write_zeros)  # as JournalLog makes its segments


def journal_log(d: str, n: int) -> Callable[[int], None]:
    log = JournalLog(Path(d) / "bench.journal", durable=True)
    log.open(0)
    seq = iter(range(1, 1 << 62))

    def commit(i: int) -> None:
        log.append(next(seq), TEXT)

    return commit


def store_commit(d: str, n: int) -> Callable[[int], None]:
    store = DuckDBStore(os.path.join(d, "store.duckdb"), durable=True)
    batches = {i: small_batch(i) for i in range(-20, n)}  # built before the clock runs
    # nothing folds meanwhile (no maintenance thread): this is the commit path alone

    def commit(i: int) -> None:
        store.commit(batches[i])

    return commit


def fold_insert(d: str, records: int, reps: int) -> None:
    """The fold's first step: the pending records into cl_journal, in one transaction."""
    con = duckdb.connect(os.path.join(d, "fold.duckdb"))
    con.execute("CREATE TABLE cl_journal (seq BIGINT, batch VARCHAR)")
    rows = [(i, TEXT) for i in range(records)]

    def arrow() -> None:
        t = pa.table({"seq": pa.array([r[0] for r in rows], pa.int64()), "batch": pa.array([r[1] for r in rows])})
        con.register("_p", t)
        con.execute("INSERT INTO cl_journal SELECT seq, batch FROM _p")
        con.unregister("_p")

    def executemany() -> None:
        con.executemany("INSERT INTO cl_journal VALUES (?, ?)", rows)

    def values() -> None:
        con.execute(
            "INSERT INTO cl_journal VALUES " + ", ".join("(?, ?)" for _ in rows), [v for r in rows for v in r]
        )

    for name, fn in (("arrow table", arrow), ("executemany", executemany), ("VALUES list", values)):
        times = []
        for _ in range(reps):
            con.execute("BEGIN TRANSACTION")
            s = time.perf_counter()
            fn()
            times.append(time.perf_counter() - s)
            con.execute("ROLLBACK")
        print(f"  {records} records into cl_journal, {name:12} median {statistics.median(times) * 1e3:7.2f} ms")


def retire(d: str, records: int, reps: int) -> None:
    """After a fold: dropping its records from the durable journal (what each alternative pays)."""
    con = sqlite3.connect(os.path.join(d, "retire.sqlite"), isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE j (seq INTEGER PRIMARY KEY, batch TEXT)")
    log = JournalLog(Path(d) / "retire.journal", durable=True)
    log.open(0)
    duck = duckdb.connect(os.path.join(d, "retire.duckdb"))
    duck.execute("CREATE TABLE j (seq BIGINT, batch VARCHAR)")
    sq, lg, dk = [], [], []
    seq = 0
    for _ in range(reps):
        first = seq + 1
        for _ in range(records):
            seq += 1
            con.execute("INSERT INTO j VALUES (?, ?)", (seq, TEXT))
            log.append(seq, TEXT)
            duck.execute("INSERT INTO j VALUES (?, ?)", [seq, TEXT])
        s = time.perf_counter()
        con.execute("DELETE FROM j WHERE seq <= ?", (seq,))
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # or the WAL only grows
        sq.append(time.perf_counter() - s)
        s = time.perf_counter()
        log.rotate()
        log.release(seq)
        lg.append(time.perf_counter() - s)
        s = time.perf_counter()
        duck.execute("DELETE FROM j WHERE seq >= ? AND seq <= ?", [first, seq])
        dk.append(time.perf_counter() - s)
    print(f"retire {records} folded records (median of {reps}):")
    print(f"  sqlite DELETE + wal_checkpoint   {statistics.median(sq) * 1e3:7.2f} ms")
    print(f"  duckdb DELETE (autocommit)       {statistics.median(dk) * 1e3:7.2f} ms")
    print(f"  log: rotate + unlink + dir fsync {statistics.median(lg) * 1e3:7.2f} ms")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--commits", type=int, default=2000)
    p.add_argument("--dir", default=None, help="directory for the files (default: $TMPDIR)")
    args = p.parse_args()
    print(
        f"duckdb {duckdb.__version__}, sqlite {sqlite3.sqlite_version}, python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs; {args.commits} sequential durable commits of {len(TEXT):,} bytes"
    )
    for name, setup in (
        ("duckdb one-row txn", duckdb_row),
        ("sqlite WAL FULL", sqlite_wal),
        ("append+fdatasync", append_fdatasync),
        ("fallocated+fdatasync", fallocated),
        ("zeros+fdatasync", zeros),
        ("JournalLog.append", journal_log),
        ("DuckDBStore.commit", store_commit),
    ):
        with tempfile.TemporaryDirectory(dir=args.dir) as d:
            measure(name, setup, d, args.commits)
    print("fold: batch insert of the pending records")
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        fold_insert(d, 64, 30)
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        retire(d, 64, 20)


if __name__ == "__main__":
    main()
