"""Search over a million stored workflows: p50/p99 of five representative queries.

    python bench/search.py              # 1,000,000 workflows + 3,000,000 tasks (fill ~1-2 min)
    python bench/search.py --quick      # 100,000 workflows + 300,000 tasks
    python bench/search.py --explain    # also print EXPLAIN ANALYZE of each query's SQL

No HTTP: an in-process ``Executor`` over a DuckDB file in a temp dir, the searches awaited on the
engine's own loop through its API (``search_workflows`` / ``search_tasks``: parse, barrier, SQL
on a reader thread, rebuilding the page's model objects), as the REST handlers call them.

The fill (see ``fill``): a real executor registers ``--types`` (20) workflow definitions of three
SIMPLE tasks and runs one workflow of each to completion, so the stored rows are the engine's own;
then ONE set-based INSERT per table copies those rows N times inside DuckDB (``range(N)``,
``json_merge_patch`` of the template JSON with each copy's id, status, times, correlation id and
input), ordered by update time as the journal fold appends them. No Python per row: 1,000,000
workflows + 3,000,000 tasks take about a minute. Statuses: 85% COMPLETED, 6% FAILED, 3% TERMINATED,
2% TIMED_OUT, 3.5% RUNNING, 0.5% PAUSED (the running ones wait on their third task, SCHEDULED:
they are loaded into memory and queued at start, as after a restart, and nothing times out while
the queries run, so the engine writes nothing meanwhile); one workflow starts every 100 ms (1,000,000 span ~28 hours); ids are time-ordered (v7
layout) like the engine's.

The five queries, ``--runs`` (50) times each with fresh random values, after 3 warm-up runs:

1. ``workflowType = <type> AND status IN (FAILED,TIMED_OUT)``: page of 100, default order
2. ``correlationId = <id>``
3. ``startTime > t AND startTime < t+1h``, ``sort=startTime:DESC``, page of 100
4. ``freeText=cust-<n>``: a customer id in the workflows' input (case-insensitive substring)
5. task search ``taskType = bench_search_c AND status IN (FAILED,CANCELED)`` (or
   ``IN (SCHEDULED,IN_PROGRESS)``), ``sort=updateTime:DESC``, page of 100 (TaskSummary)

Goal (issue): p99 < 200 ms for each. Exit code 1 when a query misses it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import code_line, load_line, machine_line, mib, percentile, print_table, verdict  # noqa: E402

from conductor_lab.engine import search  # noqa: E402
from conductor_lab.engine.executor import Executor  # noqa: E402
from conductor_lab.engine.store.duckdb import DuckDBStore  # noqa: E402
from conductor_lab.engine.store.duckdb_search import (  # noqa: E402
    TASK_FIELDS,
    WORKFLOW_FIELDS,
    compile_query,
)

GOAL_P99_MS = 200.0
STEP_MS = 100  # one workflow started every 100 ms
TASKS = "abc"
CUSTOMERS = 100_000


def type_name(i: int) -> str:
    return f"bench_search_wf_{i}"


# ------------------------------------------------------------------------------------------------
# fill


async def templates(path: Path, types: int) -> None:
    """Run one workflow of each type to completion through a real executor (the rows to copy)."""
    ex = Executor(DuckDBStore(path, durable=False))
    await ex.start()
    try:
        await ex.register_task_defs([{"name": f"bench_search_{c}", "retryCount": 0} for c in TASKS])
        for i in range(types):
            await ex.register_workflow_def(
                {
                    "name": type_name(i),
                    "version": 1,
                    "schemaVersion": 2,
                    "tasks": [
                        {
                            "name": f"bench_search_{c}",
                            "taskReferenceName": c,
                            "type": "SIMPLE",
                            "inputParameters": {"customerId": "${workflow.input.customerId}"},
                        }
                        for c in TASKS
                    ],
                }
            )
            wid = await ex.start_workflow(
                {"name": type_name(i), "input": {"customerId": "cust-0", "amount": 1, "region": "eu"}}
            )
            for c in TASKS:
                (t,) = await ex.poll(f"bench_search_{c}", worker_id="bench", count=1, timeout_ms=1000)
                await ex.update_task(
                    {"workflowInstanceId": wid, "taskId": t.taskId, "status": "COMPLETED",
                     "outputData": {"ok": True, "rows": 3}}  # fmt: skip
                )
    finally:
        await ex.close()


def _v7(ms: str, seed: str) -> str:
    """SQL: a v7-layout UUID string from epoch-ms expression ``ms`` and a per-row ``seed`` string."""
    h = f"lower(lpad(to_hex({ms}), 12, '0'))"
    r = f"md5({seed})"
    return (
        f"substr({h}, 1, 8) || '-' || substr({h}, 9, 4) || '-7' || substr({r}, 1, 3) || '-' || "
        f"substr('89ab', (ascii(substr({r}, 4, 1)) % 4) + 1, 1) || substr({r}, 5, 3) || '-' || substr({r}, 8, 12)"
    )


WORKFLOW_STATUS = (
    "CASE WHEN p < 850 THEN 'COMPLETED' WHEN p < 910 THEN 'FAILED' WHEN p < 940 THEN 'TERMINATED' "
    "WHEN p < 960 THEN 'TIMED_OUT' WHEN p < 995 THEN 'RUNNING' ELSE 'PAUSED' END"
)
TASK_STATUS = (
    "CASE WHEN k < 3 OR status = 'COMPLETED' THEN 'COMPLETED' WHEN status = 'FAILED' THEN 'FAILED' "
    "WHEN status IN ('TERMINATED', 'TIMED_OUT') THEN 'CANCELED' ELSE 'SCHEDULED' END"
)


def fill(path: Path, n: int, types: int, base: int) -> tuple[float, float]:
    """Copy the template rows ``n`` times with set-based SQL; returns (workflow s, task s)."""
    con = duckdb.connect(str(path))
    con.execute("SET memory_limit = '4GB'")
    con.execute("SET preserve_insertion_order = true")
    con.execute(
        "CREATE TEMP TABLE tw AS SELECT CAST(regexp_extract(workflow_name, '(\\d+)$', 1) AS INTEGER) AS ti, "
        "workflow_name AS name, snapshot_id, json FROM cl_workflows"
    )
    con.execute(
        "CREATE TEMP TABLE tt AS SELECT DISTINCT ON (ref_name) ref_name, seq AS k, json FROM cl_tasks ORDER BY ref_name"
    )
    con.execute("DELETE FROM cl_tasks")
    con.execute("DELETE FROM cl_workflows")
    con.execute("DELETE FROM cl_transitions")
    t0 = time.perf_counter()
    con.execute(
        f"""
        CREATE TEMP TABLE g AS
        SELECT i, {base} + i * {STEP_MS} AS ct, CAST(hash(i, 1) % {types} AS INTEGER) AS ti,
               CAST(hash(i, 2) % 1000 AS INTEGER) AS p, 'corr-' || i AS corr,
               'cust-' || (hash(i, 3) % {CUSTOMERS}) AS cust, CAST(hash(i, 4) % 10000 AS INTEGER) AS amount,
               ['eu', 'us', 'apac'][CAST(hash(i, 5) % 3 AS INTEGER) + 1] AS region
        FROM range({n}) r(i)
        """
    )
    con.execute(
        f"""
        CREATE TEMP TABLE gw AS
        SELECT g.*, {WORKFLOW_STATUS} AS status, {_v7("ct", "CAST(i AS VARCHAR)")} AS id,
               tw.name, tw.snapshot_id, tw.json AS tj
        FROM g JOIN tw USING (ti)
        """
    )
    con.execute(
        """
        INSERT INTO cl_workflows
        SELECT id, name, 1, status, corr, NULL, 0, ct, ut, et, snapshot_id,
               CAST(json_merge_patch(tj, json_object(
                   'workflowId', id, 'status', status, 'correlationId', corr,
                   'createTime', ct, 'updateTime', ut, 'endTime', et,
                   'input', json_object('customerId', cust, 'amount', amount, 'region', region),
                   'output', CASE WHEN status = 'COMPLETED' THEN json_object('ok', true, 'rows', 3)
                                  ELSE json_object() END,
                   'reasonForIncompletion', CASE WHEN status IN ('FAILED', 'TIMED_OUT', 'TERMINATED')
                                                 THEN 'bench: ' || lower(status) END)) AS VARCHAR)
        FROM (SELECT *, CASE WHEN status IN ('RUNNING', 'PAUSED') THEN ct + 1400 ELSE ct + 2100 END AS ut,
                     CASE WHEN status IN ('RUNNING', 'PAUSED') THEN 0 ELSE ct + 2100 END AS et FROM gw)
        ORDER BY ut
        """
    )
    t1 = time.perf_counter()
    con.execute(
        f"""
        INSERT INTO cl_tasks
        SELECT tid, id, k, 'bench_search_' || ref, ref, tst, 0, NULL, sch, st, et, ut,
               CAST(json_merge_patch(x.json, json_object(
                   'taskId', tid, 'workflowInstanceId', id, 'status', tst, 'correlationId', corr,
                   'workflowType', name, 'scheduledTime', sch, 'startTime', st, 'endTime', et, 'updateTime', ut,
                   'inputData', json_object('customerId', cust),
                   'outputData', CASE WHEN tst = 'COMPLETED' THEN json_object('ok', true, 'rows', 3)
                                      ELSE json_object() END)) AS VARCHAR),
               'bench_search_' || ref, name
        FROM (
            SELECT gw.*, tt.ref_name AS ref, tt.k, tt.json, {TASK_STATUS} AS tst,
                   ct + (tt.k - 1) * 700 AS sch,
                   {_v7("ct + (tt.k - 1) * 700", "CAST(i AS VARCHAR) || tt.ref_name")} AS tid
            FROM gw, tt
        ) x
        CROSS JOIN LATERAL (
            SELECT CASE WHEN tst = 'SCHEDULED' THEN 0 ELSE sch + 5 END AS st,
                   CASE WHEN tst IN ('SCHEDULED', 'IN_PROGRESS') THEN 0 ELSE sch + 600 END AS et,
                   CASE WHEN tst = 'SCHEDULED' THEN sch WHEN tst = 'IN_PROGRESS' THEN sch + 5 ELSE sch + 600 END
                       AS ut
        )
        ORDER BY ut
        """
    )
    t2 = time.perf_counter()
    con.execute("CHECKPOINT")
    con.close()
    return t1 - t0, t2 - t1


# ------------------------------------------------------------------------------------------------
# queries


class Query:
    def __init__(self, label: str, kind: str, make: Callable[[random.Random], dict[str, Any]]) -> None:
        self.label = label
        self.kind = kind  # "workflows" | "tasks"
        self.make = make
        self.lat: list[float] = []
        self.store_lat: list[float] = []
        self.hits: list[int] = []
        self.example: dict[str, Any] = {}


def queries(n: int, types: int, base: int) -> list[Query]:
    span = n * STEP_MS

    def by_type(r: random.Random) -> dict[str, Any]:
        return {"query": f"workflowType = '{type_name(r.randrange(types))}' AND status IN (FAILED,TIMED_OUT)"}

    def by_corr(r: random.Random) -> dict[str, Any]:
        return {"query": f"correlationId = 'corr-{r.randrange(n)}'"}

    def by_time(r: random.Random) -> dict[str, Any]:
        t = base + r.randrange(max(1, span - 3_600_000))
        return {"query": f"startTime > {t} AND startTime < {t + 3_600_000}", "sort": "startTime:DESC"}

    def free(r: random.Random) -> dict[str, Any]:
        return {"free_text": f"cust-{r.randrange(CUSTOMERS)}"}

    def tasks(r: random.Random) -> dict[str, Any]:
        statuses = r.choice(["FAILED,CANCELED", "SCHEDULED,IN_PROGRESS"])  # only the 3rd task ends otherwise
        return {"query": f"taskType = 'bench_search_c' AND status IN ({statuses})", "sort": "updateTime:DESC"}

    return [
        Query("1 workflowType + status IN", "workflows", by_type),
        Query("2 correlationId =", "workflows", by_corr),
        Query("3 startTime range, DESC", "workflows", by_time),
        Query("4 freeText (input value)", "workflows", free),
        Query("5 tasks: taskType + status IN", "tasks", tasks),
    ]


async def measure(ex: Executor, qs: list[Query], runs: int, seed: int) -> None:
    rnd = random.Random(seed)
    for q in qs:
        call = ex.search_workflows if q.kind == "workflows" else ex.search_tasks
        store_call = ex.store.search_workflows if q.kind == "workflows" else ex.store.search_tasks
        for i in range(runs + 3):
            params = q.make(rnd)
            if i == 3:
                q.example = params
            t0 = time.perf_counter()
            total, _ = await call(**params)
            lat = (time.perf_counter() - t0) * 1000
            parsed = search.parse(**params)
            t0 = time.perf_counter()
            store_total, _ = await ex.rt.read(store_call, parsed)
            store_ms = (time.perf_counter() - t0) * 1000
            assert store_total == total, (q.label, store_total, total)
            if i >= 3:  # warm-up
                q.lat.append(lat)
                q.store_lat.append(store_ms)
                q.hits.append(total)


def explain(path: Path, qs: list[Query]) -> None:
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET memory_limit = '256MB'")
    for q in qs:
        parsed = search.parse(**q.example)
        if q.kind == "workflows":
            c = compile_query(parsed, WORKFLOW_FIELDS, key="workflow_id", default_order="create_time")
            table = "cl_workflows"
        else:
            c = compile_query(parsed, TASK_FIELDS, key="task_id", default_order="scheduled_time")
            table = "cl_tasks"
        sql = f"SELECT rowid FROM {table} WHERE {c.where} ORDER BY {c.order} LIMIT 100"
        print(f"\n### {q.label}: {q.example}\n{sql}")
        print(con.execute(f"EXPLAIN ANALYZE {sql}", c.params).fetchall()[0][1])
    con.close()


# ------------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, tmp: Path) -> int:
    n = 100_000 if args.quick and not args.workflows else (args.workflows or 1_000_000)
    path = tmp / "search.duckdb"
    print(machine_line())
    print(code_line())
    print(f"workflows: {n:,}, tasks: {3 * n:,}, types: {args.types}, runs per query: {args.runs}")

    t0 = time.perf_counter()
    if args.reuse and path.exists():
        con = duckdb.connect(str(path), read_only=True)
        row = con.execute("SELECT count(*), min(create_time) FROM cl_workflows").fetchone()
        con.close()
        assert row is not None and row[0] == n, f"{path} holds {row[0] if row else 0:,} workflows, not {n:,}"
        base = int(row[1])
        print(f"reusing {path} ({mib(path.stat().st_size)})")
    else:
        path.unlink(missing_ok=True)
        await templates(path, args.types)
        base = int(time.time() * 1000) - n * STEP_MS - 3_600_000
        tw, tt = fill(path, n, args.types, base)
        print(f"fill: templates + {n:,} workflows in {tw:.1f} s + {3 * n:,} tasks in {tt:.1f} s "
              f"(total {time.perf_counter() - t0:.1f} s), file {mib(path.stat().st_size)}")  # fmt: skip

    t0 = time.perf_counter()
    ex = Executor(DuckDBStore(path, durable=False))
    await ex.start()
    print(f"executor start (recovery of {len(ex.workflows):,} running/paused workflows): "
          f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
    qs = queries(n, args.types, base)
    try:
        total, sample = await ex.search_workflows(query="status = 'FAILED'", size=1)
        assert total > 0 and sample and sample[0].tasks == []
        wf = await ex.get_workflow(sample[0].workflowId)  # the copies are real executions
        assert len(wf.tasks) == 3 and wf.tasks[2].status.value == "FAILED", wf.tasks
        commits = ex.stats()["commits"]
        await measure(ex, qs, args.runs, args.seed)
        if ex.stats()["commits"] != commits:
            print(f"warning: the engine committed {ex.stats()['commits'] - commits} batches while the queries ran")
    finally:
        await ex.close()
    if args.explain:
        explain(path, qs)

    print()
    rows = []
    ok_all = True
    for q in qs:
        p99 = percentile(q.lat, 99)
        ok = p99 < GOAL_P99_MS
        ok_all &= ok
        rows.append([
            q.label,
            f"{percentile(q.lat, 50):.1f}",
            f"{p99:.1f}",
            f"{max(q.lat):.1f}",
            f"{percentile(q.store_lat, 50):.1f}",
            f"{statistics.median(q.hits):,.0f}",
            verdict(ok),
        ])  # fmt: skip
    print_table(["query (through the service)", "p50 ms", "p99 ms", "max ms", "store p50 ms", "hits (median)",
                 f"p99 < {GOAL_P99_MS:.0f} ms"], rows)  # fmt: skip
    print(f"\n{load_line()}")
    print(f"goal: p99 < {GOAL_P99_MS:.0f} ms for each query over {n:,} stored workflows: {verdict(ok_all)}")
    return 0 if ok_all else 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="100,000 workflows")
    p.add_argument("--workflows", type=int, default=0, help="stored workflows (default 1,000,000)")
    p.add_argument("--types", type=int, default=20, help="workflow definitions")
    p.add_argument("--runs", type=int, default=50, help="timed runs per query (after 3 warm-up runs)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of each query's page SQL")
    p.add_argument("--dir", help="put the DuckDB file here (kept)")
    p.add_argument("--reuse", action="store_true", help="with --dir: use the file filled by an earlier run")
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tmp = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench-search-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        return asyncio.run(run(args, tmp))
    finally:
        if not args.dir and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        elif args.keep:
            print(f"kept: {tmp}")


if __name__ == "__main__":
    sys.exit(main())
