"""End-to-end throughput and latency of the server over HTTP, with separate worker processes.

    python bench/throughput.py                     # 3,000 workflows, durable then --no-fsync
    python bench/throughput.py --quick             # small smoke run
    python bench/throughput.py --no-durable-compare --profile   # durable only, py-spy on the server
    python bench/throughput.py --compare-metrics   # durable, metrics on / --no-metrics, alternated (ABBA)

Workflow under test: 3 SIMPLE tasks in a chain (each task's input references the previous task's
output). Phases, each on the same fresh server and DuckDB file:

a. start: ``--starters`` processes x ``--starter-threads`` keep-alive connections start N
   workflows as fast as they can (no worker running) -> starts/s, start latency.
b. workers: ``--workers`` processes x ``--threads`` threads (one task type per thread) drain the
   3N tasks: batch poll, then ``POST /api/tasks/update-v2``; a task handed back by update-v2 is
   executed at once. Ends when the N-th workflow's last task is answered; checked by search.
   -> tasks/s, workflows/s, update latency, poll-to-update latency (task in hand -> update answered).
c. idle latency: one process, one long-polling thread per task type (timeout 5000 ms) and a
   starter thread that starts one workflow at a time and waits for it -> start->COMPLETED,
   task done -> next task in the next worker's hands.
d. a-c again on a server started with ``--no-fsync``; durable/no-fsync ratios.

``--compare-metrics`` instead runs a and b (no c, no --no-fsync run) on fresh durable servers with
metrics on and with ``--no-metrics``, in the order on, off, off, on (``--compare-rounds`` 2; drift
between runs cancels out), scraping ``/metrics`` every ``--scrape-interval`` seconds while the
metrics-on server runs, and prints tasks/s and update p99 of each run and the on/off ratios.

All clients use stdlib ``http.client`` (keep-alive), not httpx, so client CPU steals less of the
machine from the server. Clocks are CLOCK_MONOTONIC, comparable between processes.

Concurrency matters: every state-changing request is answered after its group commit, so
throughput ~= requests in flight / commit-bound latency (Little's law). The defaults (4 x 12
worker connections, 2 x 32 starter connections) keep enough requests in flight for the server,
not the load generator, to be the limit; fewer connections give lower latency and lower rates.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from array import array
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    PySpy,
    RawClient,
    Server,
    code_line,
    find_py_spy,
    load_line,
    machine_line,
    mib,
    mono,
    ms,
    percentile,
    print_table,
    rate,
    ratio,
    verdict,
)

WF_NAME = "bench_tp_wf"
TASK_TYPES = ("bench_tp_a", "bench_tp_b", "bench_tp_c")
IDLE_WF = "bench_idle_wf"
IDLE_TYPES = ("bench_idle_a", "bench_idle_b", "bench_idle_c")

# the targets (2-core machine)
TARGET_TASKS_PER_S = 1000.0
TARGET_STARTS_PER_S = 2000.0
TARGET_UPDATE_P99 = 0.050
TARGET_IDLE_WF = 0.015
TARGET_NEXT_P50 = 0.005
TARGET_NEXT_P99 = 0.025


def task_def(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "retryCount": 0,
        "timeoutSeconds": 0,
        "responseTimeoutSeconds": 600,
        "ownerEmail": "bench@example.com",
    }


def chain_def(name: str, types: tuple[str, ...]) -> dict[str, Any]:
    tasks = []
    prev: str | None = None
    for t in types:
        inputs = {"n": "${workflow.input.n}"} if prev is None else {"prev": f"${{{prev}.output.v}}"}
        tasks.append({"name": t, "taskReferenceName": t, "type": "SIMPLE", "inputParameters": inputs})
        prev = t
    return {
        "name": name,
        "version": 1,
        "schemaVersion": 2,
        "tasks": tasks,
        "outputParameters": {"v": f"${{{types[-1]}.output.v}}"},
        "ownerEmail": "bench@example.com",
    }


def register(api: str) -> None:
    c = RawClient(api)
    try:
        c.register_task_defs([task_def(t) for t in TASK_TYPES + IDLE_TYPES])
        c.register_workflow_def(chain_def(WF_NAME, TASK_TYPES))
        c.register_workflow_def(chain_def(IDLE_WF, IDLE_TYPES))
    finally:
        c.close()


def result_for(task: dict[str, Any], worker_id: str) -> dict[str, Any]:
    return {
        "workflowInstanceId": task["workflowInstanceId"],
        "taskId": task["taskId"],
        "status": "COMPLETED",
        "workerId": worker_id,
        "outputData": {"v": task["taskId"][:8], "by": worker_id},
    }


# ------------------------------------------------------------------------------------------------
# phase a: starter processes


def starter_proc(
    api: str, name: str, first: int, count: int, threads: int, ready: Any, go: MpEvent, out: Any
) -> None:
    """Start ``count`` workflows over ``threads`` connections; put (latencies, t_first, t_last, errors)."""
    try:
        lat = array("d")
        lock = threading.Lock()
        next_i = [first]
        end = first + count
        errors = [0]
        stamps: list[float] = []

        def run() -> None:
            c = RawClient(api)
            c.json("GET", "/health")  # connect before the clock starts
            mine = array("d")
            go.wait()
            t_first = mono()
            while True:
                with lock:
                    i = next_i[0]
                    if i >= end:
                        break
                    next_i[0] = i + 1
                t0 = mono()
                try:
                    c.start_workflow(name, {"n": i})
                except Exception:
                    errors[0] += 1
                    c.close()
                    continue
                mine.append(mono() - t0)
            t_last = mono()
            c.close()
            with lock:
                lat.extend(mine)
                stamps.extend((t_first, t_last))

        ts = [threading.Thread(target=run) for _ in range(threads)]
        for t in ts:
            t.start()
        ready.put(1)
        for t in ts:
            t.join()
        out.put((lat.tobytes(), min(stamps), max(stamps), errors[0]))
    except Exception:
        ready.put(1)
        out.put(traceback.format_exc())


@dataclass
class StartFigures:
    n: int
    seconds: float
    lat: list[float]
    errors: int

    @property
    def per_s(self) -> float:
        return rate(self.n, self.seconds)


def phase_start(api: str, n: int, starters: int, threads: int) -> StartFigures:
    ctx = mp.get_context("spawn")
    ready, out = ctx.Queue(), ctx.Queue()
    go = ctx.Event()
    share = [n // starters + (1 if i < n % starters else 0) for i in range(starters)]
    procs = []
    first = 0
    for i in range(starters):
        p = ctx.Process(target=starter_proc, args=(api, WF_NAME, first, share[i], threads, ready, go, out))
        p.start()
        procs.append(p)
        first += share[i]
    for _ in procs:
        ready.get(timeout=120)
    time.sleep(0.2)  # let every thread reach go.wait() with its connection open
    t_go = mono()
    go.set()
    lat: list[float] = []
    t_end = t_go
    errors = 0
    for _ in procs:
        got = out.get(timeout=3600)
        if isinstance(got, str):
            raise RuntimeError(f"starter failed:\n{got}")
        raw, _t_first, t_last, errs = got
        a = array("d")
        a.frombytes(raw)
        lat.extend(a)
        t_end = max(t_end, t_last)
        errors += errs
    for p in procs:
        p.join(30)
    return StartFigures(len(lat), t_end - t_go, lat, errors)


# ------------------------------------------------------------------------------------------------
# phase b: worker processes


def worker_proc(
    api: str,
    idx: int,
    threads: int,
    poll_count: int,
    ready: Any,
    go: MpEvent,
    stop: MpEvent,
    done: Synchronized[int],
    out: Any,
) -> None:
    """``threads`` threads, thread k polls TASK_TYPES[(idx + k) % 3]; put the figures on ``out``."""
    try:
        upd = array("d")
        p2u = array("d")
        slow = array("d")  # (start, duration) pairs of updates slower than SLOW_UPDATE_S
        counts = {"tasks": 0, "polls": 0, "empty_polls": 0, "errors": 0, "chained": 0}
        last_done = [0.0]
        lock = threading.Lock()
        last_type = TASK_TYPES[-1]

        def run(task_type: str, wid: str) -> None:
            c = RawClient(api)
            c.json("GET", "/health")
            my_upd, my_p2u, my_slow = array("d"), array("d"), array("d")
            n = polls = empty = errs = chained = 0
            my_last = 0.0
            go.wait()
            while not stop.is_set():
                try:
                    tasks = c.batch_poll(task_type, poll_count, 200, wid)
                except Exception:
                    errs += 1
                    c.close()
                    time.sleep(0.05)
                    continue
                t_got = mono()
                polls += 1
                if not tasks:
                    empty += 1
                    continue
                todo = [(t, t_got) for t in tasks]
                while todo:
                    task, got_at = todo.pop(0)
                    body = result_for(task, wid)
                    t0 = mono()
                    try:
                        nxt = c.update_v2(body)
                    except Exception:
                        errs += 1
                        c.close()
                        continue
                    t1 = mono()
                    my_upd.append(t1 - t0)
                    if t1 - t0 > SLOW_UPDATE_S:
                        my_slow.extend((t0, t1 - t0))
                    my_p2u.append(t1 - got_at)
                    n += 1
                    if task["taskType"] == last_type:
                        with done.get_lock():
                            done.value += 1
                        my_last = t1
                    if nxt:
                        chained += 1
                        todo.append((nxt, t1))
            c.close()
            with lock:
                upd.extend(my_upd)
                slow.extend(my_slow)
                p2u.extend(my_p2u)
                counts["tasks"] += n
                counts["polls"] += polls
                counts["empty_polls"] += empty
                counts["errors"] += errs
                counts["chained"] += chained
                last_done[0] = max(last_done[0], my_last)

        ts = []
        for k in range(threads):
            tt = TASK_TYPES[(idx + k) % len(TASK_TYPES)]
            ts.append(threading.Thread(target=run, args=(tt, f"w{idx}-{k}")))
        for t in ts:
            t.start()
        ready.put(1)
        for t in ts:
            t.join()
        out.put((upd.tobytes(), p2u.tobytes(), slow.tobytes(), counts, last_done[0]))
    except Exception:
        ready.put(1)
        out.put(traceback.format_exc())


SLOW_UPDATE_S = 0.050  # updates slower than this are recorded as stall intervals


def merge_intervals(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Union of overlapping (start, end) intervals, sorted."""
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


@dataclass
class WorkerFigures:
    workflows: int
    tasks: int
    seconds: float
    upd: list[float]
    p2u: list[float]
    counts: dict[str, int]
    completed_by_search: int
    timed_out: bool
    server_cpu_s: float = math.nan
    profile: str = ""
    stalls: list[tuple[float, float]] = field(default_factory=list)  # merged slow-update intervals

    @property
    def tasks_per_s(self) -> float:
        return rate(self.tasks, self.seconds)

    @property
    def workflows_per_s(self) -> float:
        return rate(self.workflows, self.seconds)


def phase_workers(
    server: Server,
    n: int,
    workers: int,
    threads: int,
    poll_count: int,
    time_limit: float,
    profile_path: Path | None,
) -> WorkerFigures:
    ctx = mp.get_context("spawn")
    ready, out = ctx.Queue(), ctx.Queue()
    go, stop = ctx.Event(), ctx.Event()
    done = ctx.Value("q", 0)
    procs = [
        ctx.Process(target=worker_proc, args=(server.api, i, threads, poll_count, ready, go, stop, done, out))
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    time.sleep(0.2)
    spy = PySpy(server.pid, profile_path) if profile_path is not None else None
    cpu0 = server.cpu_seconds()
    t_go = mono()
    go.set()
    timed_out = False
    last_report = t_go
    while done.value < n:
        time.sleep(0.002)
        now = mono()
        if now - t_go > time_limit:
            timed_out = True
            break
        if now - last_report > 10:
            last_report = now
            print(f"    ... {done.value}/{n} workflows done after {now - t_go:.0f}s", flush=True)
    t_seen = mono()
    cpu1 = server.cpu_seconds()
    if spy is not None:
        spy.stop()
    stop.set()
    upd: list[float] = []
    p2u: list[float] = []
    slow: list[tuple[float, float]] = []
    counts: dict[str, int] = {}
    t_last = 0.0
    for _ in procs:
        got = out.get(timeout=120)
        if isinstance(got, str):
            raise RuntimeError(f"worker failed:\n{got}")
        raw_u, raw_p, raw_s, c, last = got
        sl = array("d")
        sl.frombytes(raw_s)
        slow.extend(zip(sl[0::2], sl[1::2], strict=True))
        a, b = array("d"), array("d")
        a.frombytes(raw_u)
        b.frombytes(raw_p)
        upd.extend(a)
        p2u.extend(b)
        for k, v in c.items():
            counts[k] = counts.get(k, 0) + v
        t_last = max(t_last, last)
    for p in procs:
        p.join(30)
    end = t_last if t_last > t_go else t_seen
    completed = RawClient(server.api).search_total(f"workflowType = '{WF_NAME}' AND status = 'COMPLETED'")
    figs = WorkerFigures(
        workflows=int(done.value),
        tasks=counts.get("tasks", 0),
        seconds=end - t_go,
        upd=upd,
        p2u=p2u,
        counts=counts,
        completed_by_search=completed,
        timed_out=timed_out,
        server_cpu_s=cpu1 - cpu0,
        stalls=merge_intervals([(a - t_go, a - t_go + d) for a, d in slow]),
    )
    if spy is not None:
        figs.profile = spy.top(18)
    return figs


# ------------------------------------------------------------------------------------------------
# phase c: idle latency, all clocks in one process


@dataclass
class IdleFigures:
    e2e: list[float] = field(default_factory=list)  # start request sent -> 3rd update answered
    first: list[float] = field(default_factory=list)  # start request sent -> task 1 in hand
    next_after_ans: list[float] = field(default_factory=list)  # update answered -> next task in hand
    next_after_sent: list[float] = field(default_factory=list)  # update sent -> next task in hand
    start_rtt: list[float] = field(default_factory=list)  # start request round trip (one commit)
    update_rtt: list[float] = field(default_factory=list)  # update-v2 round trip (one commit)
    health_rtt: list[float] = field(default_factory=list)  # GET /api/health round trip (no commit)
    verified: int = 0
    failures: int = 0


def phase_idle(api: str, n: int, warmup: int) -> IdleFigures:
    stop = threading.Event()
    lock = threading.Lock()
    got: dict[tuple[str, int], float] = {}
    sent: dict[tuple[str, int], float] = {}
    answered: dict[tuple[str, int], float] = {}
    finished: dict[str, threading.Event] = {}

    def event_for(wid: str) -> threading.Event:
        with lock:
            return finished.setdefault(wid, threading.Event())

    def worker(k: int) -> None:
        c = RawClient(api)
        tt = IDLE_TYPES[k]
        wid_name = f"idle-{k}"
        while not stop.is_set():
            try:
                tasks = c.batch_poll(tt, 1, 5000, wid_name)
            except Exception:
                if stop.is_set():
                    return
                c.close()
                time.sleep(0.01)
                continue
            t1 = mono()
            todo = [(t, t1) for t in tasks]
            while todo:
                task, t_in_hand = todo.pop(0)
                w = task["workflowInstanceId"]
                got[(w, k)] = t_in_hand
                t_s = mono()
                sent[(w, k)] = t_s
                try:
                    nxt = c.update_v2(result_for(task, wid_name))
                except Exception:
                    c.close()
                    continue
                t_a = mono()
                answered[(w, k)] = t_a
                if k == len(IDLE_TYPES) - 1:
                    event_for(w).set()
                if nxt:
                    todo.append((nxt, t_a))

    ts = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(len(IDLE_TYPES))]
    for t in ts:
        t.start()
    time.sleep(0.3)  # workers are parked in their long polls
    figs = IdleFigures()
    starter = RawClient(api)
    checked = RawClient(api)
    ids: list[tuple[str, float]] = []
    for i in range(warmup + n):
        time.sleep(0.002)
        t0 = mono()
        w = starter.start_workflow(IDLE_WF, {"n": i})
        t_started = mono()
        if not event_for(w).wait(10):
            figs.failures += 1
            continue
        if i >= warmup:
            ids.append((w, t0))
            figs.start_rtt.append(t_started - t0)
    for _ in range(n):
        t0 = mono()
        checked.json("GET", "/health")
        figs.health_rtt.append(mono() - t0)
    stop.set()
    last = len(IDLE_TYPES) - 1
    for w, t0 in ids:
        figs.e2e.append(answered[(w, last)] - t0)
        figs.first.append(got[(w, 0)] - t0)
        for k in range(last + 1):
            figs.update_rtt.append(answered[(w, k)] - sent[(w, k)])
        for k in range(last):
            figs.next_after_ans.append(got[(w, k + 1)] - answered[(w, k)])
            figs.next_after_sent.append(got[(w, k + 1)] - sent[(w, k)])
    for w, _ in ids[-20:]:
        if checked.get_workflow(w, include_tasks=False).get("status") == "COMPLETED":
            figs.verified += 1
    starter.close()
    checked.close()
    return figs


# ------------------------------------------------------------------------------------------------
# one full run (a, b, c) on one server


@dataclass
class RunFigures:
    durable: bool
    start: StartFigures
    work: WorkerFigures
    idle: IdleFigures
    rss: dict[str, int]
    db_bytes: dict[str, int]
    server_start_s: float
    stop_s: float
    exit_code: int | None
    loads: list[str]
    metrics: bool = True


class Scraper:
    """Scrapes ``GET /metrics`` every ``interval`` seconds in a thread while in use (0: never),
    as Prometheus would, so the metrics-on figures include the scrapes' cost."""

    def __init__(self, server: Server, interval: float) -> None:
        self.server = server
        self.interval = interval
        self.count = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Scraper:
        if self.interval > 0:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        url = self.server.url + "/metrics"
        while not self._stop.wait(self.interval):
            try:
                with urllib.request.urlopen(url, timeout=30) as r:
                    r.read()
                self.count += 1
            except OSError:
                self.failures += 1


def one_run(
    args: argparse.Namespace, durable: bool, tmp: Path, *, metrics: bool = True, idle: bool = True, tag: str = ""
) -> RunFigures:
    label = ("durable (group commit, fsync)" if durable else "no fsync") + ("" if metrics else ", --no-metrics")
    db = tmp / (("durable" if durable else "nofsync") + tag + ".duckdb")
    extra = [] if metrics else ["--no-metrics"]
    server = Server(db, durable=durable, log_dir=tmp, log_level=args.server_log_level, extra_args=extra)
    scraper = Scraper(server, args.scrape_interval if metrics and args.compare_metrics else 0.0)
    print(f"\n=== run: {label}; db {db}", flush=True)
    rss: dict[str, int] = {}
    sizes: dict[str, int] = {}
    loads = [load_line()]
    t_srv = server.start()
    try:
        print(f"  server pid {server.pid} listening at {server.url} after {t_srv:.2f}s", flush=True)
        register(server.api)
        rss["idle"] = server.rss()

        print(f"  a. starting {args.workflows} workflows: {args.starters} processes x "
              f"{args.starter_threads} connections ...", flush=True)  # fmt: skip
        st = phase_start(server.api, args.workflows, args.starters, args.starter_threads)
        rss["after a"] = server.rss()
        sizes["after a"] = server.db_bytes()
        print(f"     {st.n} started in {st.seconds:.2f}s = {st.per_s:,.0f}/s; latency p50 "
              f"{ms(percentile(st.lat, 50))} p99 {ms(percentile(st.lat, 99))}; errors {st.errors}", flush=True)  # fmt: skip
        loads.append(load_line())

        print(f"  b. draining {3 * st.n} tasks: {args.workers} processes x {args.threads} threads, "
              f"poll count {args.poll_count}, update-v2 chaining ...", flush=True)  # fmt: skip
        profile_path = tmp / f"profile-{'durable' if durable else 'nofsync'}{tag}.txt" if args.profile else None
        with scraper:
            wk = phase_workers(
                server, st.n, args.workers, args.threads, args.poll_count, args.time_limit, profile_path
            )
        rss["after b"] = server.rss()
        sizes["after b"] = server.db_bytes()
        print(f"     {wk.workflows} workflows / {wk.tasks} tasks in {wk.seconds:.2f}s = "
              f"{wk.tasks_per_s:,.0f} tasks/s, {wk.workflows_per_s:,.0f} workflows/s; "
              f"COMPLETED by search: {wk.completed_by_search}; server CPU {wk.server_cpu_s:.1f}s "
              f"({wk.server_cpu_s / wk.seconds * 100:.0f}% of one core); {wk.counts}", flush=True)  # fmt: skip
        loads.append(load_line())
        if scraper.interval:
            print(f"     /metrics scraped {scraper.count} times during b (failures {scraper.failures})", flush=True)
        idle_figs = IdleFigures()
        if idle:
            print(f"  c. idle latency: {args.idle_workflows} workflows one at a time, 3 long-polling "
                  "workers ...", flush=True)  # fmt: skip
            idle_figs = phase_idle(server.api, args.idle_workflows, args.idle_warmup)
            rss["after c"] = server.rss()
            sizes["after c"] = server.db_bytes()
            print(f"     start->COMPLETED p50 {ms(percentile(idle_figs.e2e, 50))} "
                  f"p99 {ms(percentile(idle_figs.e2e, 99))}; "
                  f"done->next p50 {ms(percentile(idle_figs.next_after_ans, 50))} "
                  f"p99 {ms(percentile(idle_figs.next_after_ans, 99))}", flush=True)  # fmt: skip
            loads.append(load_line())
    finally:
        stop_s = server.stop()
    sizes["after stop"] = server.db_bytes()
    if server.returncode() != 0:
        print(f"  server exit code {server.returncode()}:\n{server.output()}")
    return RunFigures(durable, st, wk, idle_figs, rss, sizes, t_srv, stop_s, server.returncode(), loads, metrics)


# ------------------------------------------------------------------------------------------------
# report


def p(values: list[float], q: float) -> float:
    return percentile(values, q)


def report(runs: list[RunFigures], args: argparse.Namespace) -> None:
    d = runs[0]
    nf = runs[1] if len(runs) > 1 else None
    print("\n" + "=" * 100)
    print(f"bench/throughput.py: {args.workflows} workflows x 3 SIMPLE tasks; {args.starters} starter processes"
          f" x {args.starter_threads} connections; {args.workers} worker processes x {args.threads} threads, "
          f"poll count {args.poll_count}; idle latency over {args.idle_workflows} workflows")  # fmt: skip
    print(machine_line())
    print(code_line())
    print(f"server log level: {args.server_log_level or 'default (INFO: one access-log line per request)'}")

    rows: list[list[object]] = []

    def fig(name: str, get: Any, fmt: Any, lower_is_better: bool = True) -> None:
        a = get(d)
        row: list[object] = [name, fmt(a)]
        if nf is not None:
            b = get(nf)
            row += [fmt(b), ratio(a, b)]
        rows.append(row)

    fig("a. workflow starts/s", lambda r: r.start.per_s, lambda v: f"{v:,.0f}")
    fig("a. start latency p50", lambda r: p(r.start.lat, 50), ms)
    fig("a. start latency p99", lambda r: p(r.start.lat, 99), ms)
    fig("b. worker tasks/s", lambda r: r.work.tasks_per_s, lambda v: f"{v:,.0f}")
    fig("b. workflows/s", lambda r: r.work.workflows_per_s, lambda v: f"{v:,.0f}")
    fig("b. update latency p50", lambda r: p(r.work.upd, 50), ms)
    fig("b. update latency p90", lambda r: p(r.work.upd, 90), ms)
    fig("b. update latency p99", lambda r: p(r.work.upd, 99), ms)
    fig("b. update latency max", lambda r: max(r.work.upd, default=math.nan), ms)
    fig("b. poll-to-update p50", lambda r: p(r.work.p2u, 50), ms)
    fig("b. poll-to-update p99", lambda r: p(r.work.p2u, 99), ms)
    fig(
        "b. server CPU (% of one core)",
        lambda r: r.work.server_cpu_s / r.work.seconds * 100,
        lambda v: f"{v:.0f}%",
    )
    fig(
        "b. server CPU ms per task",
        lambda r: r.work.server_cpu_s / max(1, r.work.tasks) * 1000,
        lambda v: f"{v:.3f}",
    )
    fig("c. idle start->COMPLETED p50", lambda r: p(r.idle.e2e, 50), ms)
    fig("c. idle start->COMPLETED p99", lambda r: p(r.idle.e2e, 99), ms)
    fig("c. idle start->task 1 in hand p50", lambda r: p(r.idle.first, 50), ms)
    fig("c. done(answered)->next in hand p50", lambda r: p(r.idle.next_after_ans, 50), ms)
    fig("c. done(answered)->next in hand p99", lambda r: p(r.idle.next_after_ans, 99), ms)
    fig("c. done(sent)->next in hand p50", lambda r: p(r.idle.next_after_sent, 50), ms)
    fig("c. done(sent)->next in hand p99", lambda r: p(r.idle.next_after_sent, 99), ms)
    fig("c. idle start round trip p50", lambda r: p(r.idle.start_rtt, 50), ms)
    fig("c. idle update-v2 round trip p50", lambda r: p(r.idle.update_rtt, 50), ms)
    fig("c. idle GET /health round trip p50", lambda r: p(r.idle.health_rtt, 50), ms)
    for key in ("idle", "after a", "after b", "after c"):
        fig(f"server RSS {key}", lambda r, k=key: float(r.rss[k]), mib)  # type: ignore[misc]
    for key in ("after b", "after c", "after stop"):
        fig(f"DuckDB file+wal {key}", lambda r, k=key: float(r.db_bytes[k]), mib)  # type: ignore[misc]
    fig("server start (s)", lambda r: r.server_start_s, lambda v: f"{v:.2f}")
    fig("server stop on SIGTERM (s)", lambda r: r.stop_s, lambda v: f"{v:.2f}")
    headers = ["figure", "durable"] + (["no fsync", "durable/no-fsync"] if nf else [])
    print()
    print_table(headers, rows)

    print("\ntargets (durable run):")
    t_rows = [
        ["worker tasks/s end-to-end", f"{d.work.tasks_per_s:,.0f}", ">= 1,000", verdict(d.work.tasks_per_s >= TARGET_TASKS_PER_S)],
        ["workflow starts/s", f"{d.start.per_s:,.0f}", ">= 2,000", verdict(d.start.per_s >= TARGET_STARTS_PER_S)],
        ["task update p99 under load (b)", ms(p(d.work.upd, 99)), "< 50 ms", verdict(p(d.work.upd, 99) < TARGET_UPDATE_P99)],
        ["idle 3-task start->COMPLETED p50", ms(p(d.idle.e2e, 50)), "< 15 ms", verdict(p(d.idle.e2e, 50) < TARGET_IDLE_WF)],
        ["  (same, p99; informational)", ms(p(d.idle.e2e, 99)), "< 15 ms", verdict(p(d.idle.e2e, 99) < TARGET_IDLE_WF)],
        ["idle done(answered)->next p50", ms(p(d.idle.next_after_ans, 50)), "< 5 ms", verdict(p(d.idle.next_after_ans, 50) < TARGET_NEXT_P50)],
        ["idle done(answered)->next p99", ms(p(d.idle.next_after_ans, 99)), "< 25 ms", verdict(p(d.idle.next_after_ans, 99) < TARGET_NEXT_P99)],
        ["idle done(sent)->next p50 (stricter)", ms(p(d.idle.next_after_sent, 50)), "< 5 ms", verdict(p(d.idle.next_after_sent, 50) < TARGET_NEXT_P50)],
        ["idle done(sent)->next p99 (stricter)", ms(p(d.idle.next_after_sent, 99)), "< 25 ms", verdict(p(d.idle.next_after_sent, 99) < TARGET_NEXT_P99)],
    ]  # fmt: skip
    print_table(["target", "measured", "target", "verdict"], t_rows)

    print("\nchecks:")
    for r in runs:
        name = "durable" if r.durable else "no fsync"
        w = r.work
        ok = (
            w.workflows == r.start.n
            and w.completed_by_search == r.start.n
            and not w.timed_out
            and r.start.errors == 0
            and w.counts.get("errors", 0) == 0
            and r.idle.failures == 0
            and r.exit_code == 0
        )
        print(f"  {name}: started {r.start.n} (errors {r.start.errors}); completed by workers {w.workflows}, "
              f"by search {w.completed_by_search}; tasks {w.tasks}; worker errors {w.counts.get('errors', 0)}; "
              f"timed out {w.timed_out}; idle failures {r.idle.failures}, verified COMPLETED "
              f"{r.idle.verified}/{min(20, len(r.idle.e2e))}; server exit {r.exit_code} -> "
              f"{'OK' if ok else 'PROBLEM'}")  # fmt: skip
        print(f"    load average during the run: {' | '.join(r.loads)}")
        if w.stalls:
            longest = max(b - a for a, b in w.stalls)
            spans = ", ".join(f"{a:.2f}-{b:.2f}s" for a, b in w.stalls[:12])
            more = " ..." if len(w.stalls) > 12 else ""
            print(f"    phase b stalls (windows in which some update took > {SLOW_UPDATE_S * 1000:.0f} ms): "
                  f"{len(w.stalls)}, longest {longest * 1000:.0f} ms, at {spans}{more}")  # fmt: skip
        if w.profile:
            print(f"\n  py-spy profile of the server during phase b ({name}):")
            print("    " + w.profile.replace("\n", "\n    "))


def report_metrics(runs: list[RunFigures], args: argparse.Namespace) -> None:
    """--compare-metrics: each run's figures, then metrics on / off (means over the rounds)."""
    print("\n" + "=" * 100)
    print(f"bench/throughput.py --compare-metrics: {args.workflows} workflows x 3 SIMPLE tasks per run; "
          f"{args.workers} worker processes x {args.threads} threads; /metrics scraped every "
          f"{args.scrape_interval:g}s during b on the metrics-on server")  # fmt: skip
    print(machine_line())
    print(code_line())
    rows: list[list[object]] = []
    for i, r in enumerate(runs):
        w = r.work
        ok = (
            w.workflows == r.start.n == w.completed_by_search
            and not w.timed_out
            and r.start.errors == 0
            and w.counts.get("errors", 0) == 0
            and r.exit_code == 0
        )
        rows.append([
            i + 1, "on" if r.metrics else "off", f"{r.start.per_s:,.0f}", f"{w.tasks_per_s:,.0f}",
            ms(p(w.upd, 50)), ms(p(w.upd, 99)), f"{w.server_cpu_s / max(1, w.tasks) * 1000:.3f}",
            "OK" if ok else "PROBLEM",
        ])  # fmt: skip
    print_table(["run", "metrics", "starts/s", "tasks/s", "update p50", "update p99", "CPU ms/task", "check"], rows)

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else math.nan

    on = [r for r in runs if r.metrics]
    off = [r for r in runs if not r.metrics]
    tps_on, tps_off = mean([r.work.tasks_per_s for r in on]), mean([r.work.tasks_per_s for r in off])
    p99_on, p99_off = mean([p(r.work.upd, 99) for r in on]), mean([p(r.work.upd, 99) for r in off])
    cpu_on = mean([r.work.server_cpu_s / max(1, r.work.tasks) for r in on])
    cpu_off = mean([r.work.server_cpu_s / max(1, r.work.tasks) for r in off])
    cost = 1.0 - tps_on / tps_off if tps_off else math.nan
    cpu_cost = cpu_on / cpu_off - 1.0 if cpu_off else math.nan

    def spread(values: list[float], fmt: Any) -> str:
        return f"{fmt(min(values))} - {fmt(max(values))}" if values else "n/a"

    def count(v: float) -> str:
        return f"{v:,.0f}"

    print()
    print_table(
        ["figure (mean over runs)", "metrics on", "--no-metrics", "on/off", "range on", "range off"],
        [
            ["b. worker tasks/s", count(tps_on), count(tps_off), ratio(tps_on, tps_off),
             spread([r.work.tasks_per_s for r in on], count), spread([r.work.tasks_per_s for r in off], count)],
            ["b. update latency p99", ms(p99_on), ms(p99_off), ratio(p99_on, p99_off),
             spread([p(r.work.upd, 99) for r in on], ms), spread([p(r.work.upd, 99) for r in off], ms)],
            ["b. server CPU ms per task", f"{cpu_on * 1000:.3f}", f"{cpu_off * 1000:.3f}", ratio(cpu_on, cpu_off),
             "", ""],
        ],
    )  # fmt: skip
    print(f"\nthroughput cost of metrics: {cost * 100:+.1f}% (goal < 3%) -> {verdict(cost < 0.03)}; "
          f"server CPU per task {cpu_cost * 100:+.1f}%")  # fmt: skip
    print("(the machine is shared: when the tasks/s ranges overlap, the CPU per task is the steadier figure)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workflows", type=int, default=3000, help="N workflows of 3 tasks (default 3000)")
    ap.add_argument("--workers", type=int, default=4, help="worker processes (default 4)")
    ap.add_argument(
        "--threads", type=int, default=12, help="threads per worker process, one task type each (default 12)"
    )
    ap.add_argument(
        "--poll-count", type=int, default=1, help="batch poll count (default 1; update-v2 chains anyway)"
    )
    ap.add_argument("--starters", type=int, default=2, help="starter processes (default 2)")
    ap.add_argument(
        "--starter-threads", type=int, default=32, help="connections per starter process (default 32)"
    )
    ap.add_argument("--idle-workflows", type=int, default=200, help="workflows for the idle latency phase")
    ap.add_argument("--idle-warmup", type=int, default=10, help="idle-phase workflows run first, not counted")
    ap.add_argument("--quick", action="store_true", help="small smoke run (300 workflows, 50 idle)")
    ap.add_argument("--no-durable-compare", action="store_true", help="skip the --no-fsync run")
    ap.add_argument("--time-limit", type=float, default=600.0, help="give up phase b after this many seconds")
    ap.add_argument("--profile", action="store_true", help="py-spy record the server during phase b")
    ap.add_argument("--server-log-level", default=None,
                    help="server --log-level (default: the server's own default, INFO)")  # fmt: skip
    ap.add_argument("--keep", action="store_true", help="keep the temp directory (db files, server logs)")
    ap.add_argument("--compare-metrics", action="store_true",
                    help="phases a-b with metrics on and with --no-metrics, alternated (on, off, off, on, ...)")  # fmt: skip
    ap.add_argument("--compare-rounds", type=int, default=2, help="--compare-metrics: on/off pairs (default 2)")
    ap.add_argument("--scrape-interval", type=float, default=5.0,
                    help="--compare-metrics: scrape /metrics every S seconds during b (default 5; 0: never)")  # fmt: skip
    args = ap.parse_args(argv)
    if args.quick:
        args.workflows = min(args.workflows, 300)
        args.idle_workflows = min(args.idle_workflows, 50)
        args.idle_warmup = min(args.idle_warmup, 5)
    if args.profile and find_py_spy() is None:
        ap.error("--profile needs py-spy (pip install py-spy)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(machine_line(), flush=True)
    print(code_line(), flush=True)
    tmpdir = tempfile.mkdtemp(prefix="cl-bench-throughput-")
    tmp = Path(tmpdir)
    runs: list[RunFigures] = []
    try:
        if args.compare_metrics:
            for i in range(args.compare_rounds):  # ABBA: on off, off on, ...
                for on in (True, False) if i % 2 == 0 else (False, True):
                    runs.append(one_run(args, True, tmp, metrics=on, idle=False, tag=f"-{len(runs)}"))
            report_metrics(runs, args)
            return 0
        runs.append(one_run(args, True, tmp))
        if not args.no_durable_compare:
            runs.append(one_run(args, False, tmp))
        report(runs, args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        if args.keep or args.profile:
            print(f"\nfiles kept in {tmp}")
        else:
            for f in tmp.iterdir():
                f.unlink()
            os.rmdir(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
