"""Live view latency: a task's status change -> the live graph's ``status`` trait, under load.

An embedded ``Lab`` (engine + server in this process, as in a notebook kernel) runs a background
load of about ``--rate`` worker tasks per second (two-task workflows started at rate/2 per second,
completed by a cell worker). Meanwhile a probe workflow of WAIT tasks is displayed as a live view
(``run.view()``); the benchmark completes one WAIT task at a time through the API and measures from
just before the update request to the moment the view's ``status`` shows that task COMPLETED
(the watch thread's long poll, the coalescing, the status computation, the trait write). With no
kernel here the watch thread applies updates itself; in JupyterLab the same update then crosses the
comm to the browser, where the ESM applies it as a delta (``bench/widget_render.py`` measures that
part: a 50-node delta in a few ms).

    .venv/bin/python bench/live_view.py                  # 100 probes at ~100 tasks/s of load
    .venv/bin/python bench/live_view.py --rate 0 --probes 50   # idle server
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import code_line, load_line, machine_line, ms, percentile  # noqa: E402
from conductor_lab.lab import Lab  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--probes", type=int, default=100, help="status changes measured")
    ap.add_argument("--rate", type=float, default=100.0, help="background worker tasks per second (0: none)")
    ap.add_argument("--gap", type=float, default=0.3,
                    help="seconds between probes (above the view's 0.2 s coalescing period, so each probe "
                         "measures one change, not the wait of a burst)")  # fmt: skip
    args = ap.parse_args()
    print(machine_line())
    print(code_line())

    with tempfile.TemporaryDirectory() as tmp, Lab(Path(tmp) / "live.duckdb") as lab:
        lab.register({"name": "bench_load", "tasks": [
            {"name": "bench_load_a", "taskReferenceName": "a", "type": "SIMPLE"},
            {"name": "bench_load_b", "taskReferenceName": "b", "type": "SIMPLE"},
        ]})  # fmt: skip
        refs = [f"w{i}" for i in range(args.probes)]
        lab.register({"name": "bench_probe", "tasks": [
            {"name": "wait", "taskReferenceName": r, "type": "WAIT"} for r in refs
        ]})  # fmt: skip

        done = {"tasks": 0}
        lock = threading.Lock()

        def work(task: dict[str, Any]) -> dict[str, Any]:
            with lock:
                done["tasks"] += 1
            return {"ok": True}

        lab.worker("bench_load_a", threads=2)(work)
        lab.worker("bench_load_b", threads=2)(work)
        stop = threading.Event()

        def starter() -> None:
            client = lab.new_client()
            interval = 2.0 / args.rate
            next_at = time.monotonic()
            while not stop.is_set():
                client.start({"name": "bench_load", "input": {}})
                next_at += interval
                stop.wait(max(0.0, next_at - time.monotonic()))

        load = threading.Thread(target=starter, daemon=True)
        if args.rate > 0:
            load.start()

        probe = lab.start("bench_probe")
        view = probe.view()
        seen: dict[str, float] = {}
        arrived = threading.Condition()

        def on_status(change: dict[str, Any]) -> None:
            now = time.perf_counter()
            with arrived:
                for node, entry in change["new"].items():
                    if entry.get("status") == "COMPLETED" and node not in seen:
                        seen[node] = now
                arrived.notify_all()

        view.observe(on_status, "status")
        client = lab.new_client()
        t_load0, tasks0 = time.monotonic(), done["tasks"]
        latencies: list[float] = []
        for ref in refs:
            deadline = time.monotonic() + 10
            with arrived:  # the task is scheduled (the previous completion scheduled it)
                arrived.wait_for(lambda r=ref: r in view.status, 10)
            time.sleep(args.gap)  # pacing of the probes, see --gap
            t0 = time.perf_counter()
            client.update_task_by_ref(probe.id, ref, "COMPLETED", {"probe": ref})
            with arrived:
                ok = arrived.wait_for(lambda r=ref: r in seen, max(0.0, deadline - time.monotonic()))
            if not ok:
                print(f"probe {ref}: no update within 10 s", file=sys.stderr)
                return 1
            latencies.append(seen[ref] - t0)
        load_rate = (done["tasks"] - tasks0) / (time.monotonic() - t_load0)
        stop.set()
        client.close()

    print(load_line())
    print(f"background load: {load_rate:.0f} worker tasks/s (asked {args.rate:.0f}); probes: {len(latencies)}")
    print(f"one status change -> live view status trait: p50 {ms(percentile(latencies, 50))}  "
          f"p90 {ms(percentile(latencies, 90))}  p99 {ms(percentile(latencies, 99))}  "
          f"max {ms(max(latencies))}")  # fmt: skip
    print(f"live view updates applied: {view_updates(probe)}; a burst of changes is coalesced to at most 5 "
          f"updates a second, so a change inside a burst waits up to 200 ms more")  # fmt: skip
    return 0


def view_updates(run: Any) -> int:
    return int(run._live.updates) if run._live is not None else 0


if __name__ == "__main__":
    sys.exit(main())
