"""Workers over gRPC against workers over REST: same server, same run, same load.

    python bench/grpc_vs_rest.py             # 3,000 tasks per transport, 2 rounds
    python bench/grpc_vs_rest.py --quick     # smoke run: 400 tasks per transport, 1 round

One ``conductor-lab serve --grpc-port P`` (durable) serves both transports. Three modes, each on
its own one-SIMPLE-task workflow and task type:

* ``grpc``: ``TaskService.BatchPoll`` (server streaming) then ``TaskService.UpdateTask`` per task,
  blocking ``grpc`` channels (one per thread, each on its own connection);
* ``rest``: ``GET /api/tasks/poll/batch/{type}`` then ``POST /api/tasks`` per task;
* ``rest-v2``: the same poll, then ``POST /api/tasks/update-v2``, which hands back the next task
  of the type (executed at once, so fewer polls).

For each mode: ``--tasks`` workflows are started over REST (not timed), then ``--workers``
processes x ``--threads`` threads drain them (poll count ``--poll-count``, 200 ms long poll) and
the figures are taken: tasks/s (go -> last update answered), update round trip p50/p99 (the update
call alone, as the worker sees it), server CPU per task (user+system of the server process from
/proc/PID/stat via psutil over the drain window, polls included) and the worker processes' own
CPU per task. The modes run in the order grpc, rest, rest-v2, then reversed in the next round
(``--rounds``), so drift over the run hits them alike; figures are medians over the rounds.
Every workflow is checked COMPLETED by search after its drain.

Clients: REST through stdlib ``http.client`` keep-alive connections (``_common.RawClient``); gRPC
through grpcio's blocking stubs from ``conductor_lab/rpc/gen``, building ``TaskResult`` protos
directly (as a gRPC worker would), not through the JSON converter.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
import traceback
from array import array
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

from _common import (
    RawClient,
    Server,
    code_line,
    load_line,
    machine_line,
    mono,
    ms,
    percentile,
    print_table,
    rate,
    ratio,
)

MODES = ("grpc", "rest", "rest-v2")
POLL_TIMEOUT_MS = 200


def task_type(mode: str) -> str:
    return f"bench_grpc_{mode.replace('-', '_')}"


def workflow_name(mode: str) -> str:
    return task_type(mode) + "_wf"


def register(api: str) -> None:
    c = RawClient(api)
    try:
        c.register_task_defs(
            [
                {"name": task_type(m), "retryCount": 0, "timeoutSeconds": 0, "responseTimeoutSeconds": 600,
                 "ownerEmail": "bench@example.com"}
                for m in MODES
            ]
        )  # fmt: skip
        for m in MODES:
            c.register_workflow_def(
                {
                    "name": workflow_name(m),
                    "version": 1,
                    "schemaVersion": 2,
                    "tasks": [{"name": task_type(m), "taskReferenceName": "only", "type": "SIMPLE",
                               "inputParameters": {"n": "${workflow.input.n}"}}],
                    "outputParameters": {"v": "${only.output.v}"},
                    "ownerEmail": "bench@example.com",
                }
            )  # fmt: skip
    finally:
        c.close()


def start_all(api: str, mode: str, n: int, threads: int = 8) -> None:
    """Start ``n`` workflows of ``mode`` over REST with ``threads`` connections (not timed)."""
    next_i = [0]
    lock = threading.Lock()
    failures: list[str] = []

    def run() -> None:
        c = RawClient(api)
        try:
            while True:
                with lock:
                    i = next_i[0]
                    if i >= n:
                        return
                    next_i[0] = i + 1
                c.start_workflow(workflow_name(mode), {"n": i})
        except Exception as exc:
            failures.append(repr(exc))
        finally:
            c.close()

    ts = [threading.Thread(target=run) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if failures:
        raise RuntimeError(f"starting {mode} workflows failed: {failures[:3]}")


# ------------------------------------------------------------------------------------------------
# worker processes


def _rest_loop(api: str, mode: str, wid: str, poll_count: int, go: MpEvent, stop: MpEvent,
               done: Synchronized[int], upd: array[float]) -> tuple[int, int, int, float]:  # fmt: skip
    c = RawClient(api)
    c.json("GET", "/health")  # connected before the clock starts
    n = polls = errors = 0
    last = 0.0
    tt = task_type(mode)
    go.wait()
    while not stop.is_set():
        try:
            todo = c.batch_poll(tt, poll_count, POLL_TIMEOUT_MS, wid)
        except Exception:
            errors += 1
            c.close()
            continue
        polls += 1
        while todo:
            task = todo.pop(0)
            body = {"workflowInstanceId": task["workflowInstanceId"], "taskId": task["taskId"],
                    "status": "COMPLETED", "workerId": wid, "outputData": {"v": task["taskId"][:8], "by": wid}}  # fmt: skip
            t0 = mono()
            try:
                if mode == "rest-v2":
                    nxt = c.update_v2(body)
                    if nxt:
                        todo.append(nxt)
                else:
                    c.update(body)
            except Exception:
                errors += 1
                c.close()
                continue
            last = mono()
            upd.append(last - t0)
            n += 1
            with done.get_lock():
                done.value += 1
    c.close()
    return n, polls, errors, last


def _grpc_loop(target: str, wid: str, poll_count: int, go: MpEvent, stop: MpEvent,
               done: Synchronized[int], upd: array[float]) -> tuple[int, int, int, float]:  # fmt: skip
    import grpc
    from google.protobuf import struct_pb2

    from conductor_lab.rpc.gen.model import tasks_pb2 as model
    from conductor_lab.rpc.gen.service import tasks_pb2 as api
    from conductor_lab.rpc.gen.service.tasks_pb2_grpc import TaskServiceStub

    # its own connection, as each REST thread has (grpc shares subchannels between channels otherwise)
    channel = grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
    grpc.channel_ready_future(channel).result(timeout=30)
    stub = TaskServiceStub(channel)
    request = api.BatchPollRequest(
        task_type=task_type("grpc"), worker_id=wid, count=poll_count, timeout=POLL_TIMEOUT_MS
    )
    by = struct_pb2.Value(string_value=wid)
    n = polls = errors = 0
    last = 0.0
    go.wait()
    while not stop.is_set():
        try:
            tasks = list(stub.BatchPoll(request, timeout=30))
        except grpc.RpcError:
            errors += 1
            continue
        polls += 1
        for task in tasks:
            result = model.TaskResult(
                workflow_instance_id=task.workflow_instance_id,
                task_id=task.task_id,
                status=model.TaskResult.COMPLETED,
                worker_id=wid,
                output_data={"v": struct_pb2.Value(string_value=task.task_id[:8]), "by": by},
            )
            t0 = mono()
            try:
                stub.UpdateTask(api.UpdateTaskRequest(result=result), timeout=30)
            except grpc.RpcError:
                errors += 1
                continue
            last = mono()
            upd.append(last - t0)
            n += 1
            with done.get_lock():
                done.value += 1
    channel.close()
    return n, polls, errors, last


def worker_proc(mode: str, api: str, target: str, idx: int, threads: int, poll_count: int,
                ready: Any, go: MpEvent, stop: MpEvent, done: Synchronized[int], out: Any) -> None:  # fmt: skip
    """``threads`` threads of ``mode``; puts (update latencies, counts, last answer, own CPU s)."""
    try:
        lock = threading.Lock()
        upd = array("d")
        totals = {"tasks": 0, "polls": 0, "errors": 0}
        last = [0.0]

        def run(k: int) -> None:
            mine = array("d")
            wid = f"{mode}-{idx}-{k}"
            if mode == "grpc":
                n, polls, errors, t_last = _grpc_loop(target, wid, poll_count, go, stop, done, mine)
            else:
                n, polls, errors, t_last = _rest_loop(api, mode, wid, poll_count, go, stop, done, mine)
            with lock:
                upd.extend(mine)
                totals["tasks"] += n
                totals["polls"] += polls
                totals["errors"] += errors
                last[0] = max(last[0], t_last)

        ts = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
        for t in ts:
            t.start()
        ready.put(1)
        go.wait()
        cpu0 = sum(os.times()[:2])
        for t in ts:
            t.join()
        out.put((upd.tobytes(), totals, last[0], sum(os.times()[:2]) - cpu0))
    except Exception:
        ready.put(1)
        out.put(traceback.format_exc())


@dataclass
class ModeFigures:
    mode: str
    round: int
    tasks: int
    seconds: float
    upd: list[float]
    polls: int
    errors: int
    server_cpu_s: float
    client_cpu_s: float
    completed: int
    timed_out: bool

    @property
    def tasks_per_s(self) -> float:
        return rate(self.tasks, self.seconds)

    @property
    def server_ms_per_task(self) -> float:
        return self.server_cpu_s / max(1, self.tasks) * 1000

    @property
    def client_ms_per_task(self) -> float:
        return self.client_cpu_s / max(1, self.tasks) * 1000


def completed_count(api: str, mode: str) -> int:
    c = RawClient(api)
    try:
        return c.search_total(f"workflowType = '{workflow_name(mode)}' AND status = 'COMPLETED'")
    finally:
        c.close()


def drain(server: Server, target: str, mode: str, rnd: int, args: argparse.Namespace) -> ModeFigures:
    ctx = mp.get_context("spawn")
    ready, out = ctx.Queue(), ctx.Queue()
    go, stop = ctx.Event(), ctx.Event()
    done = ctx.Value("q", 0)
    procs = [
        ctx.Process(
            target=worker_proc,
            args=(mode, server.api, target, i, args.threads, args.poll_count, ready, go, stop, done, out),
        )
        for i in range(args.workers)
    ]
    completed_before = completed_count(server.api, mode)  # earlier rounds' workflows of this mode
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    time.sleep(0.3)  # every thread connected and waiting on go
    cpu0 = server.cpu_seconds()
    t_go = mono()
    go.set()
    timed_out = False
    while done.value < args.tasks:
        time.sleep(0.002)
        if mono() - t_go > args.time_limit:
            timed_out = True
            break
    cpu1 = server.cpu_seconds()
    t_seen = mono()
    stop.set()
    upd: list[float] = []
    totals: dict[str, int] = {"tasks": 0, "polls": 0, "errors": 0}
    t_last = 0.0
    client_cpu = 0.0
    for _ in procs:
        got = out.get(timeout=120)
        if isinstance(got, str):
            raise RuntimeError(f"worker failed:\n{got}")
        raw, counts, last, cpu = got
        a = array("d")
        a.frombytes(raw)
        upd.extend(a)
        for k, v in counts.items():
            totals[k] += v
        t_last = max(t_last, last)
        client_cpu += cpu
    for p in procs:
        p.join(30)
    end = t_last if t_last > t_go else t_seen
    completed = completed_count(server.api, mode) - completed_before
    return ModeFigures(mode, rnd, totals["tasks"], end - t_go, upd, totals["polls"], totals["errors"],
                       cpu1 - cpu0, client_cpu, completed, timed_out)  # fmt: skip


# ------------------------------------------------------------------------------------------------
# the run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(args: argparse.Namespace, tmp: Path) -> tuple[list[ModeFigures], int | None, list[str]]:
    port = free_port()
    target = f"127.0.0.1:{port}"
    server = Server(
        tmp / "grpc.duckdb",
        log_dir=tmp,
        log_level=args.server_log_level,
        extra_args=["--grpc-port", str(port)],
    )
    loads = [load_line()]
    t_srv = server.start()
    figures: list[ModeFigures] = []
    try:
        print(
            f"server pid {server.pid}: REST {server.url}, gRPC {target}, listening after {t_srv:.2f}s",
            flush=True,
        )
        register(server.api)
        for rnd in range(args.rounds):
            order = MODES if rnd % 2 == 0 else tuple(reversed(MODES))
            for mode in order:
                start_all(server.api, mode, args.tasks)
                f = drain(server, target, mode, rnd, args)
                figures.append(f)
                print(f"  round {rnd + 1} {mode:8s}: {f.tasks} tasks in {f.seconds:.2f}s = {f.tasks_per_s:,.0f}/s; "
                      f"update p50 {ms(percentile(f.upd, 50))} p99 {ms(percentile(f.upd, 99))}; server CPU "
                      f"{f.server_ms_per_task:.3f} ms/task ({f.server_cpu_s / f.seconds * 100:.0f}% of a core), "
                      f"workers {f.client_ms_per_task:.3f} ms/task; polls {f.polls}, errors {f.errors}, "
                      f"COMPLETED by search {f.completed}/{f.tasks}", flush=True)  # fmt: skip
                loads.append(load_line())
    finally:
        server.stop()
    if server.returncode() != 0:
        print(f"server exit code {server.returncode()}:\n{server.output()}")
    return figures, server.returncode(), loads


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(
    figures: list[ModeFigures], exit_code: int | None, loads: list[str], args: argparse.Namespace
) -> bool:
    print("\n" + "=" * 100)
    print(f"bench/grpc_vs_rest.py: {args.tasks} one-task workflows per transport per round, {args.rounds} round(s); "
          f"{args.workers} worker processes x {args.threads} threads, poll count {args.poll_count}; durable server")  # fmt: skip
    print(machine_line())
    print(code_line())
    print(f"server log level: {args.server_log_level or 'default'}; load: {' | '.join(loads)}")
    by_mode = {m: [f for f in figures if f.mode == m] for m in MODES}

    def fig(mode: str, get: Any) -> float:
        return median([get(f) for f in by_mode[mode]])

    rows_spec: list[tuple[str, Any, Any]] = [
        ("worker tasks/s", lambda f: f.tasks_per_s, lambda v: f"{v:,.0f}"),
        ("update p50", lambda f: percentile(f.upd, 50), ms),
        ("update p99", lambda f: percentile(f.upd, 99), ms),
        ("server CPU ms per task", lambda f: f.server_ms_per_task, lambda v: f"{v:.3f}"),
        ("server CPU (% of a core)", lambda f: f.server_cpu_s / f.seconds * 100, lambda v: f"{v:.0f}%"),
        ("worker CPU ms per task", lambda f: f.client_ms_per_task, lambda v: f"{v:.3f}"),
        ("polls per task", lambda f: f.polls / max(1, f.tasks), lambda v: f"{v:.2f}"),
    ]
    rows = []
    for name, get, fmt in rows_spec:
        g, r, v2 = (fig(m, get) for m in MODES)
        rows.append([name, fmt(g), fmt(r), fmt(v2), ratio(g, r), ratio(g, v2)])
    print()
    print_table(
        ["figure (median of rounds)", "gRPC", "REST /tasks", "REST update-v2", "gRPC/REST", "gRPC/update-v2"],
        rows,
    )
    ok = exit_code == 0
    for f in figures:
        good = f.tasks == args.tasks and f.completed == args.tasks and f.errors == 0 and not f.timed_out
        ok = ok and good
        if not good:
            print(f"  PROBLEM in round {f.round + 1} {f.mode}: tasks {f.tasks}, COMPLETED {f.completed}, "
                  f"errors {f.errors}, timed out {f.timed_out}")  # fmt: skip
    print(
        f"\nchecks: every workflow COMPLETED, no errors, server exit {exit_code} -> {'OK' if ok else 'PROBLEM'}"
    )
    return ok


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--tasks", type=int, default=3000, help="one-task workflows per transport per round (3000)"
    )
    ap.add_argument("--workers", type=int, default=4, help="worker processes (default 4)")
    ap.add_argument(
        "--threads", type=int, default=6, help="threads (connections) per worker process (default 6)"
    )
    ap.add_argument("--poll-count", type=int, default=5, help="tasks asked for per poll (default 5)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds; the order of modes alternates (default 2)")
    ap.add_argument("--time-limit", type=float, default=600.0, help="give up a drain after this many seconds")
    ap.add_argument("--server-log-level", default=None, help="the server's --log-level (default: its own)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 400 tasks, 2 x 4 threads, 1 round")
    ap.add_argument("--keep", action="store_true", help="keep the temp directory (db file, server logs)")
    args = ap.parse_args(argv)
    if args.quick:
        args.tasks, args.workers, args.threads, args.rounds = 400, 2, 4, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-grpc-"))
    try:
        figures, code, loads = run(args, tmp)
        ok = report(figures, code, loads, args)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
