"""Worker throughput of a notebook function under ``WorkerRunner``, with 1 thread and with 8.

    python bench/notebook_worker.py                  # 500 single-task workflows per configuration
    python bench/notebook_worker.py --workflows 2000 --work-ms 20 --threads 1,4,8

What runs: a ``conductor-lab serve`` subprocess on a temporary DuckDB file (``--embedded``: an
embedded ``Lab`` in this process instead, engine and server sharing the interpreter with the
workers as in a notebook kernel; the CPU column is then the whole process's), one workflow definition
per configuration with one SIMPLE task, and in this process the runner a notebook would use:
``WorkerRunner(url, [Worker(task_type, score, threads=K)])`` over ``ConductorClient`` (httpx),
batch poll + ``update-v2`` chaining, output capture on (each task prints a line). ``score(n)``
returns a small dict; ``--work-ms`` makes it wait that long first (an I/O-bound worker, where
threads matter most).

Per configuration: N workflows are started first (not timed, from 8 keep-alive connections), then
the runner is started and the clock runs until the N-th task is reported. Figures: worker tasks/s,
server CPU ms per task, and the K-thread / 1-thread ratio. Checks: every workflow COMPLETED (by
search), no errors counted by the runner, stdout restored after stop.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RawClient, Server, code_line, load_line, machine_line, print_table, rate, ratio  # noqa: E402

from conductor_lab.client import Worker, WorkerRunner  # noqa: E402


@dataclass
class Figures:
    threads: int
    n: int
    seconds: float
    server_cpu: float
    errors: int
    failed: int
    completed_by_search: int

    @property
    def per_s(self) -> float:
        return rate(self.n, self.seconds)


def register(api: str, task_type: str, wf_name: str) -> None:
    c = RawClient(api)
    try:
        c.register_task_defs([{"name": task_type, "retryCount": 0, "responseTimeoutSeconds": 600}])
        task = {
            "name": task_type,
            "taskReferenceName": "score",
            "type": "SIMPLE",
            "inputParameters": {"n": "${workflow.input.n}"},
        }
        c.register_workflow_def({"name": wf_name, "version": 1, "schemaVersion": 2, "tasks": [task]})
    finally:
        c.close()


def start_all(api: str, wf_name: str, n: int, connections: int = 8) -> None:
    """Start n workflows over a few keep-alive connections (before the clock starts)."""
    next_i = iter(range(n))
    lock = threading.Lock()

    def run() -> None:
        c = RawClient(api)
        try:
            while True:
                with lock:
                    i = next(next_i, None)
                if i is None:
                    return
                c.start_workflow(wf_name, {"n": i})
        finally:
            c.close()

    threads = [threading.Thread(target=run) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def measure(server: Any, threads: int, n: int, work_ms: float, time_limit: float) -> Figures:
    task_type, wf_name = f"bench_nb_score_t{threads}", f"bench_nb_wf_t{threads}"
    register(server.api, task_type, wf_name)
    start_all(server.api, wf_name, n)

    def score(n: int) -> dict[str, Any]:
        if work_ms:
            time.sleep(work_ms / 1000)
        print("scored", n)
        return {"score": n * 2, "parity": n % 2}

    stdout = sys.stdout
    runner = WorkerRunner(server.url, [Worker(task_type, score, threads=threads, poll_timeout_ms=200)])
    cpu0 = server.cpu_seconds()
    t0 = time.perf_counter()
    runner.start()
    deadline = t0 + time_limit
    while True:
        stats = runner.stats[task_type]
        done = stats["completed"] + stats["failed"]
        if done >= n or time.perf_counter() > deadline:
            break
        time.sleep(0.002)
    seconds = time.perf_counter() - t0
    cpu = server.cpu_seconds() - cpu0
    if not runner.stop(timeout=10):
        print(f"  warning: {threads}-thread runner did not stop in time", file=sys.stderr)
    assert sys.stdout is stdout, "stdout not restored after stop"
    c = RawClient(server.api)
    try:
        completed = c.search_total(f"workflowType IN ({wf_name}) AND status IN (COMPLETED)")
    finally:
        c.close()
    stats = runner.stats[task_type]
    return Figures(threads, done, seconds, cpu, stats["errors"], stats["failed"], completed)


class EmbeddedLab:
    """The bench's ``Server`` interface over an embedded ``Lab`` (engine + server in this process)."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.lab: Any = None
        self.url = ""
        self.api = ""

    def start(self) -> None:
        from conductor_lab.lab import Lab

        self.lab = Lab(self.db)
        self.url = self.lab.url
        self.api = self.url + "/api"

    def cpu_seconds(self) -> float:
        t = os.times()
        return t.user + t.system

    def stop(self) -> None:
        if self.lab is not None:
            self.lab.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--workflows", type=int, default=500, help="single-task workflows per configuration (500)"
    )
    ap.add_argument("--threads", default="1,8", help="thread counts to compare, comma-separated (1,8)")
    ap.add_argument("--work-ms", type=float, default=0.0, help="time the function waits before returning (0)")
    ap.add_argument("--time-limit", type=float, default=300.0, help="give up a configuration after this long")
    ap.add_argument("--no-fsync", action="store_true", help="run the server with --no-fsync")
    ap.add_argument("--embedded", action="store_true", help="an embedded Lab in this process (a notebook kernel)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (DuckDB file, server logs)")
    args = ap.parse_args()
    counts = [int(x) for x in args.threads.split(",")]

    print(machine_line())
    print(code_line())
    tmp = Path(tempfile.mkdtemp(prefix="bench_nb_worker_"))
    server: Any = (
        EmbeddedLab(tmp / "c.duckdb") if args.embedded else Server(tmp / "c.duckdb", durable=not args.no_fsync, log_dir=tmp)
    )
    results: list[Figures] = []
    try:
        server.start()
        mode = "embedded Lab" if args.embedded else "--no-fsync" if args.no_fsync else "durable"
        print(f"server: {server.url} ({mode}), {load_line()}")
        print(
            f"{args.workflows} single-task workflows per configuration, function work {args.work_ms:g} ms\n"
        )
        for k in counts:
            results.append(measure(server, k, args.workflows, args.work_ms, args.time_limit))
    finally:
        server.stop()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    base = results[0]
    print_table(
        [
            "threads",
            "tasks",
            "seconds",
            "tasks/s",
            "process CPU ms/task" if args.embedded else "server CPU ms/task",
            f"vs {base.threads} thread(s)",
            "checks",
        ],
        [
            [
                f.threads,
                f.n,
                f"{f.seconds:.2f}",
                f"{f.per_s:,.0f}",
                f"{f.server_cpu * 1000 / max(f.n, 1):.2f}",
                ratio(f.per_s, base.per_s),
                "ok"
                if (f.errors, f.failed, f.completed_by_search) == (0, 0, args.workflows)
                else f"errors {f.errors}, failed {f.failed}, completed {f.completed_by_search}",
            ]
            for f in results
        ],
    )
    print(f"\n{load_line()}")
    return 0 if all(f.completed_by_search == args.workflows for f in results) else 1


if __name__ == "__main__":
    sys.exit(main())
