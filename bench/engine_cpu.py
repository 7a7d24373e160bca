"""The engine's CPU per worker task, without HTTP (issue 8).

    python bench/engine_cpu.py --quick        # ~20 s: warm-up 4 s, window 12 s
    python bench/engine_cpu.py                # warm-up 5 s, window 30 s
    python bench/engine_cpu.py --profile      # also cProfile the loop thread over the window
    python bench/engine_cpu.py --repeats 3    # fresh executor and file per repeat

An in-process ``Executor`` on a real DuckDB file in a temp dir, opened as ``conductor-lab serve``
opens it (``DuckDBStore(path, durable=True)``, metrics on, ``gc.freeze()`` after recovery), driven
on its own event loop in the shape of ``perf_probe.py --only throughput``: a 3-SIMPLE-task
sequential workflow (each task's input is the previous task's output), ``--workers`` (4)
asyncio "workers" that batch-poll (``count`` 20, 200 ms long poll) each task type in turn and
complete each polled task with ``update_task`` one at a time, and ``--starters`` (2) coroutines
keeping ``--inflight`` (500) workflows started and not yet finished. A poll's answer is encoded as
the REST handler encodes it (``Task.to_json`` + ``orjson.dumps``), so the model's JSON is counted;
the HTTP parsing and writing are not.

Figures over the window after the warm-up: worker tasks/s, process CPU per task
(``time.process_time()``: every thread: the loop, the commit writer, the fold, DuckDB's own
threads), the loop thread's CPU per task (``time.thread_time()`` on the loop), and the CPU of
each thread group (``/proc/self/task/<tid>/stat``). The workers and starters run on the loop
too: their share (building results, the bookkeeping) is part of the loop thread's figure.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import os
import pstats
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import code_line, load_line, machine_line  # noqa: E402

from conductor_lab.engine.executor import Executor  # noqa: E402
from conductor_lab.engine.store.duckdb import DuckDBStore  # noqa: E402

OWNER = "bench@example.com"
WORKFLOW = "bench_ecpu_wf"
TYPES = [f"bench_ecpu_t{i}" for i in (1, 2, 3)]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: short names of the thread groups in the figures
THREAD_KEYS = {
    "loop (main)": "loop",
    "conductor-lab-commit": "commit",
    "conductor-lab-maintain": "fold",
    "conductor-lab-read": "read",
    "native (DuckDB)": "duckdb",
}


def definitions() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """perf_probe's throughput workflow: three SIMPLE tasks, each passing ``x`` on."""
    task_defs = [
        {"name": t, "retryCount": 0, "responseTimeoutSeconds": 60, "ownerEmail": OWNER} for t in TYPES
    ]
    tasks = [
        {
            "name": t,
            "taskReferenceName": f"r{i}",
            "type": "SIMPLE",
            "inputParameters": {"x": "${workflow.input.x}" if i == 0 else f"${{r{i - 1}.output.x}}"},
        }
        for i, t in enumerate(TYPES)
    ]
    wdef = {
        "name": WORKFLOW,
        "version": 1,
        "schemaVersion": 2,
        "ownerEmail": OWNER,
        "tasks": tasks,
        "outputParameters": {"x": "${r2.output.x}"},
    }
    return task_defs, wdef


# ------------------------------------------------------------------------------------------------
# CPU per thread


def thread_cpu() -> dict[str, tuple[float, float]]:
    """CPU seconds (user, system) per thread group of this process, from ``/proc``.

    Python threads are named by ``threading`` (``conductor-lab-commit_0`` -> ``conductor-lab-commit``);
    threads Python does not know (DuckDB's) are summed as ``native (DuckDB)``.
    """
    names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
    out: dict[str, tuple[float, float]] = {}
    for tid_s in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid_s}/stat", "rb") as f:
                stat = f.read().decode()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        user, system = int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS  # utime, stime
        name = names.get(int(tid_s))
        group = "native (DuckDB)" if name is None else re.sub(r"_\d+$", "", name)
        if int(tid_s) == threading.main_thread().native_id:
            group = "loop (main)"
        u, s = out.get(group, (0.0, 0.0))
        out[group] = (u + user, s + system)
    return out


@dataclass
class Snapshot:
    t: float
    tasks: int
    workflows: int
    process_cpu: float
    loop_cpu: float
    threads: dict[str, tuple[float, float]]
    commits: int


@dataclass
class Counters:
    tasks: int = 0
    workflows: int = 0
    started: int = 0
    errors: int = 0
    inflight_samples: list[int] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------
# one run


async def drive(ex: Executor, args: argparse.Namespace, profile: cProfile.Profile | None) -> dict[str, Any]:
    c = Counters()
    stop = asyncio.Event()
    room = asyncio.Event()
    room.set()

    async def worker(idx: int) -> None:
        worker_id = f"bench-ecpu-w{idx}"
        last = len(TYPES) - 1
        while not stop.is_set():
            for ti, task_type in enumerate(TYPES):
                if stop.is_set():
                    break
                tasks = await ex.poll(task_type, worker_id=worker_id, count=args.poll_count, timeout_ms=200)
                if not tasks:
                    continue
                orjson.dumps([t.to_json() for t in tasks])  # the REST answer (shapes.tasks + dumps)
                for t in tasks:
                    result = {
                        "workflowInstanceId": t.workflowInstanceId,
                        "taskId": t.taskId,
                        "status": "COMPLETED",
                        "workerId": worker_id,
                        "outputData": {"x": t.inputData.get("x")},
                    }
                    try:
                        await ex.update_task(result)
                    except Exception:
                        c.errors += 1
                        continue
                    c.tasks += 1
                    if ti == last:
                        c.workflows += 1
                        room.set()

    async def starter(seq: int, step: int) -> None:
        while not stop.is_set():
            if c.started - c.workflows >= args.inflight:
                room.clear()
                await room.wait()
                continue
            c.started += 1
            try:
                await ex.start_workflow_by_name(WORKFLOW, {"x": seq})
            except Exception:
                c.errors += 1
            seq += step

    async def sampler() -> None:
        while not stop.is_set():
            await asyncio.sleep(0.25)
            c.inflight_samples.append(c.started - c.workflows)

    def snap() -> Snapshot:
        return Snapshot(
            time.perf_counter(),
            c.tasks,
            c.workflows,
            time.process_time(),
            time.thread_time(),
            thread_cpu(),
            ex.committer.commits,
        )

    jobs = [asyncio.create_task(worker(i)) for i in range(args.workers)]
    jobs += [asyncio.create_task(starter(i, args.starters)) for i in range(args.starters)]
    jobs.append(asyncio.create_task(sampler()))
    await asyncio.sleep(args.warmup)
    c.inflight_samples.clear()
    a = snap()
    if profile is not None:
        profile.enable()
    await asyncio.sleep(args.window)
    if profile is not None:
        profile.disable()
    b = snap()
    stop.set()
    room.set()
    await asyncio.gather(*jobs, return_exceptions=True)
    span = b.t - a.t
    tasks = b.tasks - a.tasks
    threads = {
        k: (u - a.threads.get(k, (0.0, 0.0))[0], s - a.threads.get(k, (0.0, 0.0))[1])
        for k, (u, s) in b.threads.items()
    }
    return {
        "span": span,
        "tasks": tasks,
        "tasks_per_s": tasks / span,
        "workflows_per_s": (b.workflows - a.workflows) / span,
        "cpu_per_task_ms": (b.process_cpu - a.process_cpu) / tasks * 1000 if tasks else float("nan"),
        "loop_cpu_per_task_ms": (b.loop_cpu - a.loop_cpu) / tasks * 1000 if tasks else float("nan"),
        "process_cpu_pct": (b.process_cpu - a.process_cpu) / span * 100,
        "loop_cpu_pct": (b.loop_cpu - a.loop_cpu) / span * 100,
        "tasks_per_commit": tasks / max(1, b.commits - a.commits),
        "inflight_avg": statistics.fmean(c.inflight_samples) if c.inflight_samples else 0.0,
        "errors": c.errors,
        "threads_ms_per_task": {
            k: (u / tasks * 1000, s / tasks * 1000) for k, (u, s) in threads.items() if tasks
        },
    }


async def one_run(
    tmp: Path, idx: int, args: argparse.Namespace, profile: cProfile.Profile | None
) -> dict[str, Any]:
    path = ":memory:" if args.memory else tmp / f"engine_cpu_{idx}.duckdb"
    store = DuckDBStore(path, durable=not args.no_fsync)
    ex = Executor(store, metrics=not args.no_metrics)
    await ex.start()
    try:
        gc.collect()  # as open_server(freeze_gc=True) does after recovery
        gc.freeze()
        task_defs, wdef = definitions()
        await ex.register_task_defs(task_defs)
        await ex.register_workflow_def(wdef)
        return await drive(ex, args, profile)
    finally:
        await ex.close()
        gc.unfreeze()


def print_run(r: dict[str, Any], label: str) -> None:
    print(f"# {label}: {r['tasks']} tasks in {r['span']:.1f} s, {load_line()}")
    print(f"worker_tasks_per_s: {r['tasks_per_s']:.0f} tasks/s")
    print(f"workflows_completed_per_s: {r['workflows_per_s']:.0f} wf/s")
    print(f"cpu_per_task: {r['cpu_per_task_ms']:.3f} ms")
    print(f"loop_cpu_per_task: {r['loop_cpu_per_task_ms']:.3f} ms")
    print(f"process_cpu: {r['process_cpu_pct']:.0f} %")
    print(f"loop_cpu: {r['loop_cpu_pct']:.0f} %")
    print(f"tasks_per_commit: {r['tasks_per_commit']:.2f} tasks")
    print(f"inflight_avg: {r['inflight_avg']:.0f} workflows")
    print(f"errors: {r['errors']} count")
    for name, (u, s) in sorted(r["threads_ms_per_task"].items(), key=lambda kv: -sum(kv[1])):
        key = re.sub(r"\W+", "_", THREAD_KEYS.get(name, name)).strip("_")
        print(f"thread_{key}_cpu_per_task: {u + s:.3f} ms (user {u:.3f}, system {s:.3f})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="warm-up 4 s, window 12 s (~20 s in all)")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--starters", type=int, default=2)
    ap.add_argument("--inflight", type=int, default=500)
    ap.add_argument("--poll-count", type=int, default=20)
    ap.add_argument("--warmup", type=float, help="seconds (default 5; --quick 4)")
    ap.add_argument("--window", type=float, help="seconds (default 30; --quick 12)")
    ap.add_argument("--repeats", type=int, default=1, help="runs, each on a fresh executor and file")
    ap.add_argument("--no-fsync", action="store_true", help="DuckDBStore(durable=False)")
    ap.add_argument("--no-metrics", action="store_true", help="Executor(metrics=False)")
    ap.add_argument(
        "--memory", action="store_true", help="DuckDBStore(':memory:'): no commit log, the loop's share alone"
    )
    ap.add_argument("--profile", action="store_true", help="cProfile the loop thread over the window")
    ap.add_argument("--profile-top", type=int, default=40)
    ap.add_argument("--dir", help="directory for the DuckDB files (default: a temp dir, removed)")
    args = ap.parse_args()
    args.warmup = args.warmup if args.warmup is not None else (4.0 if args.quick else 5.0)
    args.window = args.window if args.window is not None else (12.0 if args.quick else 30.0)

    print(machine_line())
    print(code_line())
    print(
        f"# engine_cpu: workers={args.workers} starters={args.starters} inflight={args.inflight} "
        f"poll_count={args.poll_count} warmup={args.warmup:g}s window={args.window:g}s "
        f"durable={not args.no_fsync} metrics={not args.no_metrics} memory={args.memory}"
    )
    tmp = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="engine_cpu_"))
    tmp.mkdir(parents=True, exist_ok=True)
    profile = cProfile.Profile() if args.profile else None
    if profile is not None:
        print("# --profile: cProfile slows the loop thread; its figures are not comparable with a plain run")
    runs: list[dict[str, Any]] = []
    try:
        for i in range(args.repeats):
            r = asyncio.run(one_run(tmp, i, args, profile))
            runs.append(r)
            print_run(r, f"run {i + 1}/{args.repeats}")
    finally:
        if not args.dir:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.repeats > 1:
        print("# median over the runs")
        for key, unit, fmt in (
            ("tasks_per_s", "tasks/s", "{:.0f}"),
            ("cpu_per_task_ms", "ms", "{:.3f}"),
            ("loop_cpu_per_task_ms", "ms", "{:.3f}"),
        ):
            median = statistics.median(r[key] for r in runs)
            print(f"median_{key.removesuffix('_ms')}: {fmt.format(median)} {unit}")
    if profile is not None:
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out)
        stats.sort_stats("tottime").print_stats(args.profile_top)
        stats.sort_stats("cumulative").print_stats(args.profile_top)
        print(out.getvalue())
    return 1 if any(r["errors"] for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
