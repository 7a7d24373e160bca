"""System tasks inside the engine: throughput of sync system tasks, script cost, and scale in one workflow.

    python bench/system_tasks.py              # full run (~1-2 min on 2 cores)
    python bench/system_tasks.py --quick      # smoke run (< 60 s)
    python bench/system_tasks.py --profile    # also cProfile the width-1000 update phase

No HTTP: an in-process ``Executor`` on a real DuckDB file in a temp dir (fsync on), driven from the
engine's own event loop, so the figures are the engine's (decider, task types, group commit), not
the web stack's. Each phase gets a fresh executor and DuckDB file.

1. ``sys``: a workflow of ~50 system tasks: a DO_WHILE of 10 iterations whose body is a SWITCH
   (javascript) -> its branch's NOOP -> INLINE -> SET_VARIABLE -> JSON_JQ_TRANSFORM. N workflows are
   started with ``--concurrency`` starts in flight; every start is answered after the commit that
   holds the whole run (it completes inside the start). Figures: workflows/s, system tasks/s, task
   status transitions/s as committed (rows of the transitions history), per-start wall p50/p99.
2. ``inline``: one INLINE-style evaluation (``scripting.evaluate``) median/p99, and a one-INLINE
   workflow started end to end (one at a time, durable).
3. scale inside one workflow: (a) a FORK_JOIN_DYNAMIC of 1,000 SIMPLE branches + JOIN, completed by
   in-process workers (``poll`` in batches of 100 + ``update_task``); (b) a DO_WHILE of 1,000
   iterations with one SIMPLE task, completed by one in-process worker; (c) the engine's cost of ONE
   task update (``TaskService._update``: decide + apply, before the commit) in a dynamic fork of
   width 10, 100 and 1,000, sampled in the middle of the run, and the durable ``update_task`` time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import os
import platform
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import code_line, load_line, machine_line, percentile, print_table, verdict  # noqa: E402

from conductor_lab.engine import scripting  # noqa: E402
from conductor_lab.engine.executor import Executor  # noqa: E402
from conductor_lab.engine.model import Task  # noqa: E402
from conductor_lab.engine.store.base import TransitionRow  # noqa: E402
from conductor_lab.engine.store.duckdb import DuckDBStore  # noqa: E402

T = TypeVar("T")

# goals (issue): durable system-task transitions/s; one INLINE evaluation; update cost flat in size
GOAL_TRANSITIONS_PER_S = 5000.0
GOAL_INLINE_MEDIAN_S = 0.001
GOAL_UPDATE_RATIO = 1.5  # cost@1000 / cost@10 "close to 1"

LEAF = "bench_st_leaf"
BODY = "bench_st_body"
OWNER = "bench@example.com"

INLINE_EXPR = (
    "(function () { var s = 0; for (var i = 0; i < $.items.length; i++) { s += $.items[i].qty * $.items[i].price; }"
    " return {total: s, count: $.items.length, big: s > 100}; })()"
)
INLINE_INPUT = {"items": [{"sku": f"sku-{i}", "qty": i % 3 + 1, "price": 2.5 + i} for i in range(10)]}


def ms(seconds: float) -> str:
    if seconds != seconds:  # NaN
        return "n/a"
    v = seconds * 1000
    return f"{v:.3f} ms" if v < 1 else f"{v:.2f} ms" if v < 10 else f"{v:.1f} ms"


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} us"


# ------------------------------------------------------------------------------------------------
# definitions


def sys_loop_def(iterations: int, js: bool = True) -> dict[str, Any]:
    """~5 system tasks per iteration. ``js=False``: the same shape without JavaScript (value-param SWITCH and
    INLINE, an ``_items`` loop without a loopCondition), to tell the engine's cost from the scripts'."""
    route: dict[str, Any] = {
        "name": "route", "taskReferenceName": "route", "type": "SWITCH",
        "decisionCases": {
            "even": [{"name": "n_even", "taskReferenceName": "n_even", "type": "NOOP"}],
            "odd": [{"name": "n_odd", "taskReferenceName": "n_odd", "type": "NOOP"}],
        },
    }
    calc: dict[str, Any] = {"name": "calc", "taskReferenceName": "calc", "type": "INLINE"}
    loop: dict[str, Any] = {"name": "loop", "taskReferenceName": "loop", "type": "DO_WHILE"}
    if js:
        route.update(evaluatorType="javascript", expression="$.i % 2 == 0 ? 'even' : 'odd'",
                     inputParameters={"i": "${loop.output.iteration}"})
        calc["inputParameters"] = {"evaluatorType": "javascript", "expression": "$.i * 2 + $.base",
                                   "i": "${loop.output.iteration}", "base": "${workflow.input.base}"}
        loop["loopCondition"] = f"$.loop.iteration < {iterations}"
    else:
        route.update(evaluatorType="value-param", expression="parity",
                     inputParameters={"parity": "${loop.output.loopItem}"})
        calc["inputParameters"] = {"evaluatorType": "value-param", "expression": "i",
                                   "i": "${loop.output.iteration}"}
        loop["inputParameters"] = {"_items": ["odd" if i % 2 else "even" for i in range(1, iterations + 1)]}
    body = [
        route,
        calc,
        {
            "name": "keep", "taskReferenceName": "keep", "type": "SET_VARIABLE",
            "inputParameters": {"last": "${calc.output.result}"},
        },
        {
            "name": "shape", "taskReferenceName": "shape", "type": "JSON_JQ_TRANSFORM",
            "inputParameters": {"queryExpression": "{v: (.x + 1), tag: .tag}", "x": "${calc.output.result}",
                                "tag": "${workflow.input.tag}"},
        },
    ]
    loop["loopOver"] = body
    return {
        "name": "bench_st_sys" if js else "bench_st_sys_nojs", "version": 1, "schemaVersion": 2,
        "ownerEmail": OWNER, "tasks": [loop],
        "outputParameters": {"last": "${workflow.variables.last}", "shape": "${shape.output.result}"},
    }


ONE_INLINE = {
    "name": "bench_st_inline", "version": 1, "schemaVersion": 2, "ownerEmail": OWNER,
    "tasks": [{"name": "calc", "taskReferenceName": "calc", "type": "INLINE",
               "inputParameters": {"expression": INLINE_EXPR, "items": "${workflow.input.items}"}}],
}

FORK = {
    "name": "bench_st_fork", "version": 1, "schemaVersion": 2, "ownerEmail": OWNER,
    "tasks": [
        # the branch list comes from a task output, so the workflow row stays small
        {"name": "gen", "taskReferenceName": "gen", "type": "INLINE",
         "inputParameters": {"expression": "Array.from({length: $.n}, function (_, i) { return i; })",
                             "n": "${workflow.input.n}"}},
        {"name": "fan", "taskReferenceName": "fan", "type": "FORK_JOIN_DYNAMIC",
         "inputParameters": {"forkTaskName": LEAF, "forkTaskInputs": "${gen.output.result}"}},
        {"name": "join", "taskReferenceName": "join", "type": "JOIN"},
    ],
}


def loop_def(iterations: int, keep_last_n: int | None = None) -> dict[str, Any]:
    loop: dict[str, Any] = {
        "name": "loop", "taskReferenceName": "loop", "type": "DO_WHILE",
        "loopCondition": f"$.loop.iteration < {iterations}",
        "loopOver": [{"name": BODY, "taskReferenceName": "body", "type": "SIMPLE",
                      "inputParameters": {"i": "${loop.output.iteration}"}}],
    }
    if keep_last_n is not None:
        loop["inputParameters"] = {"keepLastN": keep_last_n}
    return {"name": "bench_st_big_loop", "version": 1, "schemaVersion": 2, "ownerEmail": OWNER, "tasks": [loop]}


TASK_DEFS = [
    {"name": LEAF, "retryCount": 0, "responseTimeoutSeconds": 3600, "ownerEmail": OWNER},
    {"name": BODY, "retryCount": 0, "responseTimeoutSeconds": 3600, "ownerEmail": OWNER},
]


# ------------------------------------------------------------------------------------------------
# harness


async def with_executor(tmp: Path, name: str, story: Callable[[Executor], Awaitable[T]]) -> T:
    """Run ``story`` on a fresh executor over a fresh DuckDB file (fsync on)."""
    path = tmp / f"{name}.duckdb"
    ex = Executor(DuckDBStore(path, durable=True))
    await ex.start()
    try:
        await ex.register_task_defs(TASK_DEFS)
        return await story(ex)
    finally:
        await ex.close()
        for p in (path, Path(str(path) + ".wal")):
            if p.exists():
                p.unlink()


async def status_of(ex: Executor, wid: str) -> str:
    wf = ex.workflows.get(wid)
    if wf is not None:
        return wf.status.value
    return (await ex.get_workflow(wid)).status.value


def result(task: Task, output: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"workflowInstanceId": task.workflowInstanceId, "taskId": task.taskId, "status": "COMPLETED",
            "workerId": "bench", "outputData": output if output is not None else {"ok": True}}


class TransitionCounter:
    """Counts task status transitions handed to the group committer (committed once awaited)."""

    def __init__(self, ex: Executor) -> None:
        self.tasks = 0
        self.workflows = 0
        committer = ex.committer
        original = committer.transition

        def counted(row: TransitionRow) -> None:
            if row.task_id is None:
                self.workflows += 1
            else:
                self.tasks += 1
            original(row)

        committer.transition = counted  # type: ignore[method-assign]


# ------------------------------------------------------------------------------------------------
# 1. many system tasks


@dataclass
class SysFigures:
    workflows: int
    tasks_per_wf: int
    seconds: float
    transitions: int
    lat: list[float]
    cpu: float
    commits: int
    alone: list[float]  # one start at a time

    @property
    def tasks(self) -> int:
        return self.workflows * self.tasks_per_wf


async def phase_sys(
    ex: Executor, n: int, concurrency: int, iterations: int, profile: cProfile.Profile | None = None, js: bool = True
) -> SysFigures:
    definition = sys_loop_def(iterations, js)
    name = definition["name"]
    await ex.register_workflow_def(definition, overwrite=True)
    for i in range(5):  # warm up: JavaScript context, jq compile cache, code paths
        await ex.start_workflow({"name": name, "input": {"base": i, "tag": "warm"}})
    alone: list[float] = []
    for i in range(max(10, n // 10)):  # one at a time: a workflow's own latency, commit included
        t0 = time.perf_counter()
        await ex.start_workflow({"name": name, "input": {"base": i, "tag": "alone"}})
        alone.append(time.perf_counter() - t0)
    await ex.committer.flush()
    counter = TransitionCounter(ex)
    sem = asyncio.Semaphore(concurrency)
    lat: list[float] = []
    ids: list[str] = []

    async def one(i: int) -> None:
        async with sem:
            t0 = time.perf_counter()
            wid = await ex.start_workflow({"name": name, "input": {"base": i, "tag": f"t{i}"}})
            lat.append(time.perf_counter() - t0)
            ids.append(wid)

    commits0 = ex.committer.commits
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    if profile is not None:  # the loop thread only (deciding, scripts, serialising), not the commit thread
        profile.enable()
    await asyncio.gather(*(one(i) for i in range(n)))
    if profile is not None:
        profile.disable()
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    statuses = {await status_of(ex, wid) for wid in ids}
    assert statuses == {"COMPLETED"}, statuses
    wf = ex.workflows.get(ids[-1])
    tasks_per_wf = len(wf.tasks) if wf is not None else len((await ex.get_workflow(ids[-1])).tasks)
    return SysFigures(n, tasks_per_wf, seconds, counter.tasks, lat, cpu, ex.committer.commits - commits0, alone)


# ------------------------------------------------------------------------------------------------
# 2. INLINE


@dataclass
class InlineFigures:
    evals: list[float]
    starts: list[float]


def inline_evals(n: int) -> list[float]:
    expected = scripting.evaluate(INLINE_EXPR, INLINE_INPUT)
    assert expected["count"] == 10, expected
    for _ in range(50):
        scripting.evaluate(INLINE_EXPR, INLINE_INPUT)
    out: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        scripting.evaluate(INLINE_EXPR, INLINE_INPUT)
        out.append(time.perf_counter() - t0)
    return out


async def phase_inline_starts(ex: Executor, n: int) -> list[float]:
    await ex.register_workflow_def(ONE_INLINE, overwrite=True)
    for _ in range(5):
        await ex.start_workflow({"name": "bench_st_inline", "input": INLINE_INPUT})
    out: list[float] = []
    last = ""
    for _ in range(n):
        t0 = time.perf_counter()
        last = await ex.start_workflow({"name": "bench_st_inline", "input": INLINE_INPUT})
        out.append(time.perf_counter() - t0)
    assert await status_of(ex, last) == "COMPLETED"
    return out


# ------------------------------------------------------------------------------------------------
# 3. scale inside one workflow


async def run_fork(ex: Executor, width: int, workers: int) -> tuple[float, float, int]:
    """(wall seconds start -> COMPLETED, start seconds, tasks) for one dynamic fork of ``width``."""
    await ex.register_workflow_def(FORK, overwrite=True)
    t0 = time.perf_counter()
    wid = await ex.start_workflow({"name": "bench_st_fork", "input": {"n": width}})
    started = time.perf_counter() - t0
    done = asyncio.Event()

    async def worker() -> None:
        while not done.is_set():
            got = await ex.poll(LEAF, worker_id="bench", count=100, timeout_ms=20)
            if got:
                await asyncio.gather(*(ex.update_task(result(t)) for t in got))
            elif await status_of(ex, wid) != "RUNNING":
                done.set()

    await asyncio.gather(*(worker() for _ in range(workers)))
    wall = time.perf_counter() - t0
    assert await status_of(ex, wid) == "COMPLETED"
    wf = await ex.get_workflow(wid)
    join = [t for t in wf.tasks if t.referenceTaskName == "join"][0]
    assert len(join.outputData) == width, len(join.outputData)
    return wall, started, len(wf.tasks)


async def run_loop(ex: Executor, iterations: int, keep_last_n: int | None = None) -> tuple[float, list[float]]:
    """(wall seconds, per-iteration seconds) for a DO_WHILE of ``iterations`` SIMPLE tasks."""
    await ex.register_workflow_def(loop_def(iterations, keep_last_n), overwrite=True)
    t0 = time.perf_counter()
    wid = await ex.start_workflow({"name": "bench_st_big_loop", "input": {}})
    per: list[float] = []
    last = t0
    for _ in range(iterations):
        got = await ex.poll(BODY, worker_id="bench", count=1, timeout_ms=5000)
        assert got, "no loop task delivered"
        await ex.update_task(result(got[0], {"i": got[0].inputData["i"]}))
        now = time.perf_counter()
        per.append(now - last)
        last = now
    wall = time.perf_counter() - t0
    assert await status_of(ex, wid) == "COMPLETED"
    return wall, per


@dataclass
class UpdateFigures:
    width: int
    workflows: int
    sync: list[float] = field(default_factory=list)  # TaskService._update: decide + apply
    durable: list[float] = field(default_factory=list)  # _update + its group commit


async def run_update_cost(ex: Executor, width: int, workflows: int, profile: cProfile.Profile | None,
                          seed: int = 7) -> UpdateFigures:
    """Complete ``workflows`` dynamic forks of ``width`` one update at a time (durable, in a shuffled
    order); time the updates in the middle half of each run."""
    await ex.register_workflow_def(FORK, overwrite=True)
    figures = UpdateFigures(width, workflows)
    rng = random.Random(seed)
    update = ex.task_ops._update
    for _ in range(workflows):
        wid = await ex.start_workflow({"name": "bench_st_fork", "input": {"n": width}})
        polled: list[dict[str, Any]] = []
        while len(polled) < width:
            got = await ex.poll(LEAF, worker_id="bench", count=100, timeout_ms=1000)
            assert got, "branches not delivered"
            polled.extend(got)
        rng.shuffle(polled)
        lo, hi = width // 4, (3 * width) // 4
        for i, t in enumerate(polled):
            r = result(t)
            sample = lo <= i < hi
            if sample and profile is not None:
                profile.enable()
            t0 = time.perf_counter()
            await update(r)
            t1 = time.perf_counter()
            if sample and profile is not None:
                profile.disable()
            await ex.committer.barrier()
            t2 = time.perf_counter()
            if sample:
                figures.sync.append(t1 - t0)
                figures.durable.append(t2 - t0)
        assert await status_of(ex, wid) == "COMPLETED"
        ex.rt.forget(wid)  # keep memory flat between the runs
    return figures


# ------------------------------------------------------------------------------------------------
# report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller counts (< 60 s)")
    p.add_argument("--workflows", type=int, help="phase 1 workflows (default 200, --quick 50)")
    p.add_argument("--concurrency", type=int, default=32, help="phase 1 starts in flight (default 32)")
    p.add_argument("--iterations", type=int, default=10, help="phase 1 DO_WHILE iterations (default 10)")
    p.add_argument("--inline-evals", type=int, help="phase 2 evaluations (default 5000, --quick 1000)")
    p.add_argument("--inline-starts", type=int, help="phase 2 one-INLINE starts (default 300, --quick 100)")
    p.add_argument("--fork-width", type=int, default=1000, help="phase 3a branches (default 1000)")
    p.add_argument("--fork-workers", type=int, default=4, help="phase 3a in-process workers (default 4)")
    p.add_argument("--loop-iterations", type=int, help="phase 3b iterations (default 1000, --quick 300)")
    p.add_argument("--widths", default="10,100,1000", help="phase 3c fork widths (default 10,100,1000)")
    p.add_argument("--samples", type=int, help="phase 3c sampled updates per width (default 500, --quick 250)")
    p.add_argument("--phases", default="1,2,3a,3b,3c", help="phases to run (default 1,2,3a,3b,3c)")
    p.add_argument("--profile", action="store_true",
                   help="cProfile phase 1's starts and the sampled updates of the widest fork in 3c")
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = p.parse_args(argv)
    q = args.quick
    args.workflows = args.workflows or (50 if q else 200)
    args.inline_evals = args.inline_evals or (1000 if q else 5000)
    args.inline_starts = args.inline_starts or (100 if q else 300)
    args.loop_iterations = args.loop_iterations or (300 if q else 1000)
    args.samples = args.samples or (250 if q else 500)
    args.widths = [int(w) for w in str(args.widths).split(",") if w.strip()]
    args.phases = {x.strip() for x in str(args.phases).split(",") if x.strip()}
    return args


def print_profile(profile: cProfile.Profile, title: str, n: int = 30) -> None:
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(key).print_stats(n)
        text = out.getvalue()
        body = text[text.find("   ncalls"):] if "   ncalls" in text else text
        print(f"\ncProfile of {title}, by {key}:\n{body.rstrip()}")


async def report_sys(args: argparse.Namespace, tmp: Path, rows: list[list[str]]) -> bool:
    print(f"\n[1] {args.workflows} workflows of a {args.iterations}-iteration DO_WHILE of system tasks, "
          f"{args.concurrency} starts in flight; scripts in JavaScript (the goal's workflow), then the same shape "
          "without JavaScript ...", flush=True)
    profile = cProfile.Profile() if args.profile else None
    runs: list[SysFigures] = []
    for js in (True, False):

        async def story(ex: Executor, js: bool = js) -> SysFigures:
            return await phase_sys(ex, args.workflows, args.concurrency, args.iterations, profile if js else None, js)

        runs.append(await with_executor(tmp, "sys", story))

    def col(f: SysFigures) -> list[str]:
        return [
            f"{f.workflows} x {f.tasks_per_wf}",
            f"{f.seconds:.2f} s / {f.commits}",
            f"{f.workflows / f.seconds:,.0f}",
            f"{f.tasks / f.seconds:,.0f}",
            f"{f.transitions} ({f.transitions / f.tasks:.2f}/task)",
            f"{f.transitions / f.seconds:,.0f}",
            f"{2 * f.tasks / f.seconds:,.0f}",
            f"{ms(percentile(f.lat, 50))} / {ms(percentile(f.lat, 99))}",
            f"{ms(percentile(f.alone, 50))} / {ms(percentile(f.alone, 99))}",
            ms(f.cpu / f.workflows),
            us(f.cpu / f.tasks),
        ]

    labels = [
        "workflows x tasks (incl. the DO_WHILE)",
        "wall / group commits",
        "workflows/s",
        "system tasks/s",
        "task transitions committed",
        "task transitions/s (committed)",
        "tasks x 2 /s (SCHEDULED->COMPLETED)",
        f"per-start wall p50 / p99 ({args.concurrency} in flight)",
        f"per-start wall p50 / p99 (one at a time, {len(runs[0].alone)})",
        "process CPU per workflow",
        "process CPU per system task",
    ]
    js_run, plain = runs
    print_table(["figure", "javascript (SWITCH, INLINE, loopCondition)", "no JavaScript (value-param, _items)"],
                [[label, a, b] for label, a, b in zip(labels, col(js_run), col(plain), strict=True)])
    if profile is not None:
        print_profile(profile, "phase 1, javascript (the loop thread: decide + apply + scripts; not the commit thread)")
    tr_rate = js_run.transitions / js_run.seconds
    good = tr_rate >= GOAL_TRANSITIONS_PER_S
    rows.append(["1 system-task transitions/s, durable", f"{tr_rate:,.0f}/s", f">= {GOAL_TRANSITIONS_PER_S:,.0f}/s",
                 verdict(good)])
    rows.append(["1 system tasks/s (tasks x 2 /s)",
                 f"{js_run.tasks / js_run.seconds:,.0f} ({2 * js_run.tasks / js_run.seconds:,.0f})", "", ""])
    rows.append(["1 the same without JavaScript: transitions/s (tasks x 2 /s)",
                 f"{plain.transitions / plain.seconds:,.0f}/s ({2 * plain.tasks / plain.seconds:,.0f})", "", ""])
    rows.append(["1 per-workflow wall p50 / p99, under load",
                 f"{ms(percentile(js_run.lat, 50))} / {ms(percentile(js_run.lat, 99))}",
                 f"({args.concurrency} in flight)", ""])
    rows.append(["1 per-workflow wall p50 / p99, one at a time",
                 f"{ms(percentile(js_run.alone, 50))} / {ms(percentile(js_run.alone, 99))}", "", ""])
    rows.append(["1 process CPU per system task (without JavaScript)",
                 f"{us(js_run.cpu / js_run.tasks)} ({us(plain.cpu / plain.tasks)})", "", ""])
    return good


async def report_inline(args: argparse.Namespace, tmp: Path, rows: list[list[str]]) -> bool:
    print(f"\n[2] INLINE: {args.inline_evals} evaluations, {args.inline_starts} one-INLINE workflow starts ...",
          flush=True)
    evals = inline_evals(args.inline_evals)
    starts = await with_executor(tmp, "inline", lambda ex: phase_inline_starts(ex, args.inline_starts))
    med = statistics.median(evals)
    print_table(
        ["figure", "p50", "p99", "max"],
        [
            ["scripting.evaluate (10-item reduce)", ms(med), ms(percentile(evals, 99)), ms(max(evals))],
            ["one-INLINE workflow start, durable", ms(statistics.median(starts)), ms(percentile(starts, 99)),
             ms(max(starts))],
        ],
    )
    good = med < GOAL_INLINE_MEDIAN_S
    rows.append(["2 INLINE evaluation median / p99", f"{ms(med)} / {ms(percentile(evals, 99))}", "median < 1 ms",
                 verdict(good)])
    rows.append(["2 one-INLINE workflow start p50 / p99",
                 f"{ms(statistics.median(starts))} / {ms(percentile(starts, 99))}", "(durable, one at a time)", ""])
    return good


async def report_fork(args: argparse.Namespace, tmp: Path, rows: list[list[str]]) -> bool:
    print(f"\n[3a] FORK_JOIN_DYNAMIC of {args.fork_width} SIMPLE branches, {args.fork_workers} in-process workers "
          "(batch polls of 100) ...", flush=True)
    wall, started, ntasks = await with_executor(
        tmp, "fork", lambda ex: run_fork(ex, args.fork_width, args.fork_workers)
    )
    print(f"start (schedules {ntasks} tasks, durable): {ms(started)}; start -> COMPLETED: {wall:.2f} s "
          f"({args.fork_width / wall:,.0f} branch updates/s)")
    rows.append([f"3a dynamic fork of {args.fork_width}: start -> COMPLETED", f"{wall:.2f} s",
                 f"(start {ms(started)})", ""])
    return True


async def report_loop(args: argparse.Namespace, tmp: Path, rows: list[list[str]]) -> bool:
    n = args.loop_iterations
    print(f"\n[3b] DO_WHILE of {n} iterations, one SIMPLE task each, one in-process worker; "
          "without and with keepLastN=10 ...", flush=True)
    table = []
    for keep in (None, 10):
        lwall, per = await with_executor(tmp, "loop", lambda ex, k=keep: run_loop(ex, n, k))
        k = max(1, min(100, len(per) // 5))
        first, last = statistics.median(per[1:k + 1]), statistics.median(per[-k:])
        label = "keepLastN=10" if keep else "all iterations kept"
        table.append([label, f"{lwall:.2f} s", ms(lwall / n), ms(first), ms(last), f"{last / first:.2f}x"])
        rows.append([f"3b DO_WHILE of {n} ({label}): start -> COMPLETED", f"{lwall:.2f} s",
                     f"(iteration last/first {k}: {last / first:.2f}x)", ""])
    print_table(["loop", "start -> COMPLETED", "per iteration", f"median first {k}", f"median last {k}",
                 "last/first"], table)
    print("(one iteration = a poll and an update, each answered after its group commit)")
    return True


async def report_updates(args: argparse.Namespace, tmp: Path, rows: list[list[str]]) -> bool:
    print(f"\n[3c] one task update vs the workflow's size (dynamic forks of {args.widths}, shuffled completion, "
          f"~{args.samples} updates sampled per width in the middle half of each run) ...", flush=True)
    profile = cProfile.Profile() if args.profile else None
    ups = {w: UpdateFigures(w, 0) for w in args.widths}
    rounds = 2  # interleaved, so a change in the machine's load hits every width alike
    for r in range(rounds):
        for width in args.widths:
            gc.collect()
            n_wf = max(1, round(args.samples / rounds / max(1, width // 2)))
            prof = profile if width == max(args.widths) else None

            async def story(ex: Executor, w: int = width, n: int = n_wf, p: cProfile.Profile | None = prof,
                            seed: int = r) -> UpdateFigures:
                return await run_update_cost(ex, w, n, p, seed)

            got = await with_executor(tmp, f"upd{width}", story)
            ups[width].workflows += got.workflows
            ups[width].sync.extend(got.sync)
            ups[width].durable.extend(got.durable)
    table = []
    for u in ups.values():
        table.append([str(u.width), str(u.workflows), str(len(u.sync)), us(statistics.median(u.sync)),
                      us(percentile(u.sync, 90)), ms(statistics.median(u.durable)), ms(percentile(u.durable, 99))])
    print_table(["width", "workflows", "samples", "_update p50", "_update p90", "durable p50", "durable p99"], table)
    small, big = ups[args.widths[0]], ups[args.widths[-1]]
    ratio = statistics.median(big.sync) / statistics.median(small.sync)
    dratio = statistics.median(big.durable) / statistics.median(small.durable)
    print(f"ratio cost@{big.width} / cost@{small.width}: engine part (_update: decide + apply) {ratio:.2f}x; "
          f"durable update_task {dratio:.2f}x")
    if profile is not None:
        print_profile(profile, f"the sampled updates at width {big.width}")
    good = ratio <= GOAL_UPDATE_RATIO
    rows.append([f"3c one update, engine part @{small.width} / @{big.width}",
                 f"{us(statistics.median(small.sync))} / {us(statistics.median(big.sync))}", "", ""])
    rows.append([f"3c ratio cost@{big.width} / cost@{small.width} (engine part)", f"{ratio:.2f}x",
                 f"<= {GOAL_UPDATE_RATIO}x (flat)", verdict(good)])
    rows.append([f"3c ratio durable update_task @{big.width} / @{small.width}", f"{dratio:.2f}x", "(commit-bound)", ""])
    return good


PHASES = (("1", report_sys), ("2", report_inline), ("3a", report_fork), ("3b", report_loop), ("3c", report_updates))


async def main_async(args: argparse.Namespace, tmp: Path) -> int:
    rows: list[list[str]] = []
    ok = True
    for key, phase in PHASES:
        if key in args.phases:
            ok &= await phase(args, tmp, rows)
    print(f"\nsummary ({os.cpu_count()} cpus, python {platform.python_version()}, {load_line()}):")
    print_table(["figure", "value", "goal", ""], rows)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(machine_line(), flush=True)
    print(code_line(), flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="cl-bench-systasks-"))
    t0 = time.perf_counter()
    try:
        code = asyncio.run(main_async(args, tmp))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"\nfiles kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
