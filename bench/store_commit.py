"""Benchmark DuckDBStore.commit (and load_running at scale).

    python bench/store_commit.py                       # commit figures, durable and no-fsync
    python bench/store_commit.py --running 1000000     # build N running workflows (1 task each), time load_running
                                                       # (the file, ~0.8 GB at 1M, is kept in --db / $TMPDIR for reuse)
    python bench/store_commit.py --fold 3000           # fold a log shaped like the server's (3,000 workflows)

The store is prefilled with --prefill workflows and tasks first (random uuid4 keys, ~300 B JSON per row).

Sequential (the notebook case, printed first): --sequential commits one at a time, each what one task
update writes (the workflow, the completed task, the next task scheduled, two transitions; ~2.4 KB),
while a maintenance thread folds the commit log into the tables beside them as the group committer's
does. Printed: p50/p90/p99/max of one commit, and the process's CPU per commit (user + system from
``os.times()``, the folds included).

Batch sizes: each commit of size n holds n workflow upserts (random existing workflows), n task upserts
(half complete an existing recent task, half schedule a new one) and n transitions, i.e. 3n rows. A commit
is one record appended to the commit log (``fdatasync``ed when durable); after each batch size the time to
fold the log into the tables (``materialize``) is printed too.

Fold (``--fold N``): the log a server writes for N workflows of 3 worker tasks run by workers
(per task: scheduled and completed rows of ~1 KB JSON, the poll's IN_PROGRESS mark being held for
the update, the workflow's row, transitions; two requests' changes per commit, workflows
interleaved), committed ``--fold-every`` (700) commits at a time, each lot then folded
(``materialize``). Printed: the process CPU of the folds (DuckDB's
threads included) per worker task and per fold, and a fold's wall time.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402

from conductor_lab.engine.store.base import Batch, TaskRow, TransitionRow, WorkflowRow  # noqa: E402
from conductor_lab.engine.store.duckdb import DuckDBStore  # noqa: E402

PAD = os.urandom(60).hex()  # 120 hex chars of payload, so each JSON is ~300 B


def wf_row(wid: str, i: int, status: str = "RUNNING", t: int = 0) -> WorkflowRow:
    js = (
        f'{{"workflowId":"{wid}","workflowName":"bench_wf","version":1,"status":"{status}",'
        f'"input":{{"day":"2026-11-27","n":{i},"pad":"{PAD}"}},"updateTime":{t}}}'
    )
    return WorkflowRow(
        wid, "bench_wf", 1, status, f"corr-{i}", None, 0, 1_700_000_000_000 + i, t, 0, "snap-1", js
    )


def task_row(tid: str, wid: str, seq: int, status: str = "SCHEDULED", t: int = 0) -> TaskRow:
    js = (
        f'{{"taskId":"{tid}","workflowInstanceId":"{wid}","taskType":"fetch","status":"{status}",'
        f'"seq":{seq},"inputData":{{"pad":"{PAD}"}},"updateTime":{t}}}'
    )
    return TaskRow(tid, wid, seq, "SIMPLE", f"ref_{seq}", status, 0, None, t, t, 0, t, js)


def open_store(path: str, durable: bool) -> DuckDBStore:
    return DuckDBStore(path, durable=durable)


def prefill(store: DuckDBStore, n: int) -> tuple[list[str], list[tuple[str, str, int]]]:
    wids = [str(uuid.uuid4()) for _ in range(n)]
    tasks = [(str(uuid.uuid4()), w, 1) for w in wids]
    for s in range(0, n, 20_000):
        store.commit(
            Batch(
                workflows=[wf_row(w, s + k) for k, w in enumerate(wids[s : s + 20_000])],
                tasks=[task_row(t, w, q) for t, w, q in tasks[s : s + 20_000]],
            )
        )
        store.materialize()  # one chunk per fold: folding 100,000 at once outgrows the 256 MB memory limit
    store.checkpoint()
    return wids, tasks


def bench_sequential(store: DuckDBStore, wids: list[str], n: int, durable: bool) -> None:
    """One commit at a time, a fold thread beside them (as ``GroupCommitter._maintain``)."""
    batches: list[Batch] = []
    for i in range(n + 20):  # built before the clock runs
        w = wids[i % len(wids)]
        done, nxt = str(uuid.uuid4()), str(uuid.uuid4())
        trows = [task_row(done, w, 2, "COMPLETED", i), task_row(nxt, w, 3, "SCHEDULED", i)]
        batches.append(
            Batch(
                workflows=[wf_row(w, i, "RUNNING", i)],
                tasks=trows,
                transitions=[
                    TransitionRow(i, w, r.task_id, r.ref_name, r.task_type, r.status, None) for r in trows
                ],
            )
        )
    stop = threading.Event()
    folds = 0

    def maintainer() -> None:
        nonlocal folds
        while not stop.is_set():
            if store.needs_maintenance():
                store.maintain()
                folds += 1
            else:
                stop.wait(0.001)

    th = threading.Thread(target=maintainer, daemon=True)
    th.start()
    for b in batches[:20]:  # warm up
        store.commit(b)
    lat: list[float] = []
    t0 = os.times()
    for b in batches[20:]:
        s = time.perf_counter()
        store.commit(b)
        lat.append(time.perf_counter() - s)
    t1 = os.times()
    stop.set()
    th.join()
    q = statistics.quantiles(lat, n=100)
    cpu = (t1.user - t0.user) + (t1.system - t0.system)
    print(
        f"durable={durable!s:5} sequential {n} commits ({folds} folds beside them): p50 {statistics.median(lat) * 1e3:.3f} ms  "
        f"p90 {q[89] * 1e3:.3f} ms  p99 {q[98] * 1e3:.3f} ms  max {max(lat) * 1e3:.1f} ms  "
        f"cpu/commit {cpu / n * 1e3:.3f} ms",
        flush=True,
    )
    store.materialize()


def server_log(n: int) -> list[Batch]:
    """The commits of n 3-task workflows as the server makes them (see the module doc)."""
    pad = PAD * 6  # task JSON ~1 KB, as the server's
    changes: list[list[Batch]] = []
    for i in range(n):
        w = str(uuid.uuid4())
        tids = [str(uuid.uuid4()) for _ in range(3)]
        steps = [
            Batch(
                workflows=[wf_row(w, i)],
                tasks=[task_row(tids[0], w, 1, "SCHEDULED", 1)],
                transitions=[TransitionRow(1, w, None, None, None, "RUNNING", pad[:20])],
            )
        ]
        for k in range(3):
            t = 2 + 2 * k
            # the poll's IN_PROGRESS mark is held and goes with the update: its transition only
            polled = task_row(tids[k], w, k + 1, "IN_PROGRESS", t)
            rows = [task_row(tids[k], w, k + 1, "COMPLETED", t + 1)]
            if k < 2:
                rows.append(task_row(tids[k + 1], w, k + 2, "SCHEDULED", t + 1))
            done = "COMPLETED" if k == 2 else "RUNNING"
            steps.append(
                Batch(
                    workflows=[wf_row(w, i, done, t + 1)],
                    tasks=rows,
                    transitions=[
                        TransitionRow(t, w, polled.task_id, polled.ref_name, polled.task_type, "IN_PROGRESS", None),
                        *(TransitionRow(t + 1, w, r.task_id, r.ref_name, r.task_type, r.status, None) for r in rows),
                    ],
                )
            )
        for b in steps:
            b.tasks = [r._replace(json=r.json[:-1] + f',"pad":"{pad}"}}') for r in b.tasks]
        changes.append(steps)
    # workflows interleaved, 8 in flight, two requests' changes per commit
    out: list[Batch] = []
    flight = [iter(c) for c in changes]
    pending: list[Batch] = []
    while flight:
        for it in flight[:8]:
            b = next(it, None)
            if b is None:
                flight.remove(it)
                continue
            pending.append(b)
            if len(pending) == 2:
                out.append(
                    Batch(
                        workflows=pending[0].workflows + pending[1].workflows,
                        tasks=pending[0].tasks + pending[1].tasks,
                        transitions=pending[0].transitions + pending[1].transitions,
                    )
                )
                pending = []
    if pending:
        out.append(pending[0])
    return out


def bench_fold(args: argparse.Namespace, durable: bool) -> None:
    log = server_log(args.fold)
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        store = open_store(os.path.join(d, "bench.duckdb"), durable)
        prefill(store, args.prefill)
        cpu = 0.0
        walls: list[float] = []
        for s in range(0, len(log), args.fold_every):
            for b in log[s : s + args.fold_every]:
                store.commit(b)
            t0, w0 = os.times(), time.perf_counter()
            store.materialize()
            t1 = os.times()
            walls.append(time.perf_counter() - w0)
            cpu += (t1.user - t0.user) + (t1.system - t0.system)
        tasks = 3 * args.fold
        print(
            f"durable={durable!s:5} fold: {len(log):,} commits ({tasks:,} worker tasks) in {len(walls)} folds of "
            f"{args.fold_every}: CPU {cpu / tasks * 1e3:.3f} ms per task, {cpu / len(walls) * 1e3:.0f} ms per fold; "
            f"fold wall median {statistics.median(walls) * 1e3:.0f} ms",
            flush=True,
        )
        store.close()


def bench_commits(args: argparse.Namespace, durable: bool) -> None:
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        path = os.path.join(d, "bench.duckdb")
        store = open_store(path, durable)
        wids, tasks = prefill(store, args.prefill)
        if args.sequential:
            bench_sequential(store, wids, args.sequential, durable)
        recent = tasks[-1000:]
        rng = random.Random(42)
        clock = 1
        for n in (1, 10, 100, 1000):
            commits = max(5, min(200, args.rows // n))
            times: list[float] = []
            for _ in range(commits):
                clock += 1
                new: list[tuple[str, str, int]] = []
                trows: list[TaskRow] = []
                done: set[str] = set()
                for k in range(n):
                    if k % 2 == 0 and recent:  # complete a recent task
                        tid, w, q = recent.pop()
                        if tid in done:
                            continue
                        done.add(tid)
                        trows.append(task_row(tid, w, q, "COMPLETED", clock))
                    else:  # schedule a new one
                        w = wids[(clock * 7919 + k) % len(wids)]
                        t = (str(uuid.uuid4()), w, 2)
                        new.append(t)
                        trows.append(task_row(t[0], w, 2, "SCHEDULED", clock))
                ws = set(rng.sample(wids, n))  # running workflows are scattered over the table
                b = Batch(
                    workflows=[wf_row(w, clock, "RUNNING", clock) for w in ws],
                    tasks=trows,
                    transitions=[
                        TransitionRow(
                            clock, r.workflow_id, r.task_id, r.ref_name, r.task_type, r.status, None
                        )
                        for r in trows
                    ],
                )
                recent.extend(new)
                t0 = time.perf_counter()
                store.commit(b)
                times.append(time.perf_counter() - t0)
            med = statistics.median(times)
            p90 = sorted(times)[int(len(times) * 0.9) - 1]
            rows = 3 * n
            print(
                f"durable={durable!s:5} n={n:5d} "
                f"commits={commits:4d}  ms/commit median {med * 1e3:7.2f}  p90 {p90 * 1e3:7.2f}  "
                f"rows/s {rows / med:9,.0f}  (tasks/s {n / med:9,.0f})",
                flush=True,
            )
            t0 = time.perf_counter()
            folded = store.materialize()
            print(f"  materialize: {folded} commits folded in {(time.perf_counter() - t0) * 1e3:.1f} ms", flush=True)
        st = store.stats()
        print(f"  file before close: {st['file_size_bytes'] / 1e6:.1f} MB  rows: {st['rows']}")
        t0 = time.perf_counter()
        wid = wids[len(wids) // 2]
        for _ in range(100):
            store.get_tasks(wid)
        print(
            f"  get_tasks at {st['rows']['cl_tasks']:,} tasks: {(time.perf_counter() - t0) * 10:.2f} ms/call"
        )
        store.close()
        print(f"  file after close (checkpointed): {os.path.getsize(path) / 1e6:.1f} MB")


def bench_running(args: argparse.Namespace) -> None:
    path = args.db or os.path.join(args.dir or tempfile.gettempdir(), f"running_{args.running}.duckdb")
    if not os.path.exists(path):
        store = DuckDBStore(path, durable=False)
        t0 = time.perf_counter()
        step = 10_000  # one fold per commit of this size stays well under the 256 MB memory limit
        for s in range(0, args.running, step):
            ws, ts = [], []
            for i in range(s, min(args.running, s + step)):
                w = str(uuid.uuid4())
                ws.append(wf_row(w, i))
                ts.append(task_row(str(uuid.uuid4()), w, 1))
            store.commit(Batch(workflows=ws, tasks=ts))
            store.materialize()
        store.close()
        print(f"built {args.running:,} running workflows + tasks in {time.perf_counter() - t0:.1f} s")
    print(f"file {os.path.getsize(path) / 1e6:.0f} MB: {path}")
    for run in range(args.repeat):
        t0 = time.perf_counter()
        store = DuckDBStore(path)
        t1 = time.perf_counter()
        n = nt = 0
        first = 0.0
        for _wf, tjs in store.load_running(chunk=args.chunk):
            if n == 0:
                first = time.perf_counter() - t1
            n += 1
            nt += len(tjs)
        t2 = time.perf_counter()
        store.close()
        print(
            f"run {run}: open {t1 - t0:.2f} s, load_running {n:,} workflows / {nt:,} tasks in {t2 - t1:.2f} s "
            f"(first workflow after {first:.2f} s; {n / (t2 - t1):,.0f} workflows/s)",
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prefill", type=int, default=100_000, help="workflows+tasks already in the store")
    p.add_argument("--rows", type=int, default=20_000, help="task rows per batch size (caps commits at 200)")
    p.add_argument("--durable", choices=["both", "yes", "no"], default="both")
    p.add_argument("--sequential", type=int, default=2000, help="one-at-a-time commits (0 = skip)")
    p.add_argument(
        "--running", type=int, default=0, help="time load_running over N running workflows instead"
    )
    p.add_argument("--fold", type=int, default=0, help="fold a server-shaped log of N 3-task workflows instead")
    p.add_argument("--fold-every", type=int, default=700, help="commits per fold (--fold)")
    p.add_argument("--chunk", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--db", default=None, help="file for --running (built if absent)")
    p.add_argument("--dir", default=None, help="directory for temporary files")
    args = p.parse_args()
    print(f"duckdb {duckdb.__version__}, python {sys.version.split()[0]}, pid {os.getpid()}")
    if args.running:
        bench_running(args)
        return
    for durable in {"both": (True, False), "yes": (True,), "no": (False,)}[args.durable]:
        if args.fold:
            bench_fold(args, durable)
        else:
            bench_commits(args, durable)


if __name__ == "__main__":
    main()
