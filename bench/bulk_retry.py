"""A bulk retry of many failed workflows while a worker keeps polling, over HTTP.

    python bench/bulk_retry.py              # 10,000 failed workflows
    python bench/bulk_retry.py --quick      # 1,000

A real server (durable, fsync on) on a temp DuckDB file. Setup: N workflows of one worker task
each are started and their task is failed (no retries), so N workflows are FAILED; P "probe"
workflows wait with a task in another queue. Measured: ``POST /api/workflow/bulk/retry`` over all
N ids in chunks of 1,000 (the API's limit), wall time and retries/s; meanwhile one worker thread
polls the probe queue one task at a time (``timeout=100`` ms, then completes it) and records
each poll's latency: p50/p99 and the longest, i.e. how well the server keeps serving while the
bulk retry runs. Before the run the same worker's poll latency on the idle server is measured, as
the baseline for the ratio. Afterwards every retried workflow is checked RUNNING by search.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    RawClient,
    Server,
    code_line,
    load_line,
    machine_line,
    percentile,
    print_table,
    verdict,
)

WORKFLOW, TASK, PROBE_WORKFLOW, PROBE_TASK = "bulk_wf", "bulk_task", "probe_wf", "probe_task"
CHUNK = 1000


def setup(api: str, n: int, probes: int, threads: int) -> list[str]:
    c = RawClient(api)
    c.register_task_defs([
        {"name": TASK, "retryCount": 0, "responseTimeoutSeconds": 600},
        {"name": PROBE_TASK, "retryCount": 0, "responseTimeoutSeconds": 600},
    ])  # fmt: skip
    c.register_workflow_def({"name": WORKFLOW, "version": 1, "tasks": [{"name": TASK, "taskReferenceName": "t"}]})
    c.register_workflow_def(
        {"name": PROBE_WORKFLOW, "version": 1, "tasks": [{"name": PROBE_TASK, "taskReferenceName": "p"}]}
    )

    def start_many(k: int) -> list[str]:
        cl = RawClient(api)
        try:
            return [cl.start_workflow(WORKFLOW, {"i": i}) for i in range(k)]
        finally:
            cl.close()

    with ThreadPoolExecutor(threads) as pool:
        ids = [w for part in pool.map(start_many, [n // threads + (1 if i < n % threads else 0) for i in range(threads)])
               for w in part]  # fmt: skip

    def fail_all(_: int) -> int:
        cl = RawClient(api)
        done = 0
        try:
            while True:
                got = cl.batch_poll(TASK, 100, 200, "failer")
                if not got:
                    return done
                for t in got:
                    cl.update({"workflowInstanceId": t["workflowInstanceId"], "taskId": t["taskId"],
                               "status": "FAILED", "reasonForIncompletion": "bench"})  # fmt: skip
                    done += 1
        finally:
            cl.close()

    with ThreadPoolExecutor(threads) as pool:
        failed = sum(pool.map(fail_all, range(threads)))
    assert failed == n, (failed, n)
    for i in range(probes):
        c.start_workflow(PROBE_WORKFLOW, {"i": i})
    deadline = time.monotonic() + 120
    while c.search_total(f"workflowType = {WORKFLOW} AND status = FAILED") < n:
        assert time.monotonic() < deadline, "workflows did not all fail"
        time.sleep(0.05)
    c.close()
    return ids


class Prober(threading.Thread):
    """Polls the probe queue one task at a time and completes it; records each poll's latency."""

    def __init__(self, api: str) -> None:
        super().__init__(daemon=True)
        self.client = RawClient(api)
        self.latencies: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            t0 = time.perf_counter()
            got = self.client.batch_poll(PROBE_TASK, 1, 100, "prober")
            self.latencies.append(time.perf_counter() - t0)
            for t in got:
                self.client.update({"workflowInstanceId": t["workflowInstanceId"], "taskId": t["taskId"],
                                    "status": "COMPLETED", "outputData": {}})  # fmt: skip
        self.client.close()


def probe_for(api: str, seconds: float) -> list[float]:
    p = Prober(api)
    p.start()
    time.sleep(seconds)  # a measuring window, not a wait for a condition
    p.stop.set()
    p.join()
    return p.latencies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workflows", type=int, default=10_000)
    ap.add_argument("--quick", action="store_true", help="1,000 workflows")
    ap.add_argument("--probes", type=int, default=20_000, help="probe workflows waiting in the probe queue")
    ap.add_argument("--threads", type=int, default=8, help="client threads for the setup")
    args = ap.parse_args()
    n = 1000 if args.quick else args.workflows
    print(machine_line())
    print(code_line())
    with tempfile.TemporaryDirectory(prefix="cl-bench-bulk-") as tmp:
        server = Server(Path(tmp) / "bulk.duckdb", log_level="WARNING")
        server.start()
        try:
            t0 = time.perf_counter()
            ids = setup(server.api, n, min(args.probes, 4 * n), args.threads)
            print(f"setup: {n:,} FAILED workflows in {time.perf_counter() - t0:.1f} s", flush=True)
            idle = probe_for(server.api, 2.0)

            prober = Prober(server.api)
            prober.start()
            c = RawClient(server.api, timeout=600)
            t0 = time.perf_counter()
            ok = 0
            errors = 0
            for i in range(0, n, CHUNK):
                res = c.json("POST", "/workflow/bulk/retry", ids[i : i + CHUNK])
                ok += len(res["bulkSuccessfulResults"])
                errors += len(res["bulkErrorResults"])
            wall = time.perf_counter() - t0
            prober.stop.set()
            prober.join()
            running = c.search_total(f"workflowType = {WORKFLOW} AND status = RUNNING")
            c.close()
        finally:
            server.stop()
    busy = prober.latencies
    print(load_line())
    rows = [
        ["workflows retried (errors)", f"{ok:,} ({errors})", f"{n:,}", verdict(ok == n and errors == 0)],
        ["RUNNING after the retry (search)", f"{running:,}", f"{n:,}", verdict(running == n)],
        ["bulk retry wall time", f"{wall:.2f} s", "", ""],
        ["retries/s", f"{ok / wall:,.0f}", "", ""],
        ["poll latency idle p50 / p99", f"{1000 * percentile(idle, 50):.2f} / {1000 * percentile(idle, 99):.2f} ms",
         f"({len(idle)} polls)", ""],
        ["poll latency during the retry p50 / p99 / max",
         f"{1000 * percentile(busy, 50):.2f} / {1000 * percentile(busy, 99):.2f} / {1000 * max(busy):.1f} ms",
         f"({len(busy)} polls)", ""],
        ["p99 during / idle", f"{percentile(busy, 99) / percentile(idle, 99):.1f}x", "", ""],
    ]  # fmt: skip
    print_table(["figure", "value", "expected", ""], rows)


if __name__ == "__main__":
    main()
