"""SQL over the history views through the sandbox (``engine.sql.run_sql``): p50/p90 per query.

    python bench/lab_sql.py              # 250,000 workflows + 1,000,000 tasks (fill ~20-40 s)
    python bench/lab_sql.py --quick      # 25,000 workflows + 100,000 tasks
    python bench/lab_sql.py --explain    # also print EXPLAIN ANALYZE of each query

No server: a ``DuckDBStore`` on a file in a temp dir, queried with ``run_sql`` as the notebook Lab
does (its own cursor per call, check + read-only transaction + Arrow record-batch stream).

The fill: ONE set-based INSERT per table generates the rows inside DuckDB (``range(N)``), shaped
like the engine's (the Task and Workflow JSON with the same fields and sizes, ~800 B per task,
time-ordered ids, ``ref__N`` names for loop iterations, the derived search columns), appended in
update-time order as the journal fold appends them. Each workflow has four tasks: ``fetch`` (a
retry in 5% of workflows), ``score``, and two iterations ``check__1``/``check__2`` of a loop body.
Statuses: 90% of workflows COMPLETED, 6% FAILED, 4% RUNNING (their last task SCHEDULED).

Queries, ``--runs`` (10) each after one warm-up run:

1. ``SELECT status, count(*), avg(run_s) FROM tasks GROUP BY 1`` (the target query)
2. ``SELECT ref_name, iteration, count(*), max(run_s) FROM tasks GROUP BY ALL`` (loop suffix stripped)
3. ``SELECT name, status, count(*), quantile_cont(duration_s, 0.9) FROM workflows GROUP BY ALL``
4. a JSON field: ``avg(CAST(output->>'$.score' AS DOUBLE))`` of the ``score`` tasks, by status (parses
   the JSON of every task row it keeps)

Target (issue): a count/group-by over 1,000,000 task rows < 300 ms (judged on query 1's p50; p90
shown). Queries 2-4 are shown for reference. Exit code 1 when query 1 misses it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import code_line, machine_line, mib, percentile, print_table, verdict  # noqa: E402

from conductor_lab.engine.sql import run_sql  # noqa: E402
from conductor_lab.engine.store.duckdb import DuckDBStore  # noqa: E402

GOAL_MS = 300.0
BASE_MS = 1_760_000_000_000
STEP_MS = 100  # one workflow started every 100 ms
TASKS_PER_WORKFLOW = 4
CHUNK = 25_000  # workflows per INSERT

QUERIES: list[tuple[str, str]] = [
    (
        "status count/avg (target)",
        "SELECT status, count(*) AS n, avg(run_s) AS avg_run_s FROM tasks GROUP BY 1",
    ),
    (
        "ref/iteration",
        "SELECT ref_name, iteration, count(*) AS n, max(run_s) AS max_run_s FROM tasks GROUP BY ALL",
    ),
    (
        "workflow p90 duration",
        "SELECT name, status, count(*) AS n, quantile_cont(duration_s, 0.9) AS p90_s "
        "FROM workflows GROUP BY ALL",
    ),
    (
        "JSON field",
        "SELECT status, avg(CAST(output->>'$.score' AS DOUBLE)) AS avg_score, count(*) AS n "
        "FROM tasks WHERE task_def_name = 'bench_sql_score' GROUP BY 1",
    ),
]

# ------------------------------------------------------------------------------------------------
# fill: SQL that generates engine-shaped rows (w = workflow number, k = task number in it)

_WF_STATUS = (
    "CASE WHEN w % 25 = 7 THEN 'RUNNING' WHEN w % 50 IN (3, 13, 23) THEN 'FAILED' ELSE 'COMPLETED' END"
)
_ID = "printf('%08x-%04x-7%03x-8%03x-%012x', {ms} >> 16, {ms} & 65535, {a}, {b}, {c})"  # uuid-v7 layout

WORKFLOWS_SQL = f"""
INSERT INTO cl_workflows
SELECT workflow_id, 'bench_sql_wf_' || (w % 5), 1, status, 'cust-' || (w % 100000), NULL, 0,
       create_time, update_time, end_time, 'snap-bench',
       format('{{{{"workflowId":"{{}}","status":"{{}}","correlationId":"cust-{{}}","priority":0,'
              '"lastRetriedTime":0,"createTime":{{}},"updateTime":{{}},"endTime":{{}},'
              '"input":{{{{"customer":"cust-{{}}","amount":{{}}}}}},"output":{{{{"score":{{}}}}}},'
              '"variables":{{{{}}}},"taskToDomain":{{{{}}}},"failedReferenceTaskNames":[],'
              '"failedTaskNames":[],"workflowName":"bench_sql_wf_{{}}","workflowVersion":1}}}}',
              workflow_id, status, w % 100000, create_time, update_time, end_time, w % 100000, w % 997,
              w % 100, w % 5)
FROM (
    SELECT w, {_ID.format(ms="create_time", a="w % 4096", b="(w // 4096) % 4096", c="w")} AS workflow_id,
           status, create_time,
           create_time + CASE WHEN status = 'RUNNING' THEN 900 ELSE 1500 + (w % 7) * 300 END AS update_time,
           CASE WHEN status = 'RUNNING' THEN 0 ELSE create_time + 1500 + (w % 7) * 300 END AS end_time
    FROM (SELECT range AS w, {BASE_MS} + range * {STEP_MS} AS create_time, {_WF_STATUS} AS status
          FROM range(?, ?))
)
ORDER BY update_time
"""

_REF = "CASE k WHEN 0 THEN 'fetch' WHEN 1 THEN 'score' WHEN 2 THEN 'check__1' ELSE 'check__2' END"
_DEF = "CASE k WHEN 0 THEN 'bench_sql_fetch' WHEN 1 THEN 'bench_sql_score' ELSE 'bench_sql_check' END"
_TASK_STATUS = (
    "CASE WHEN wf_status = 'RUNNING' AND k = 3 THEN 'SCHEDULED' "
    "WHEN wf_status = 'FAILED' AND k = 3 THEN 'FAILED' ELSE 'COMPLETED' END"
)

TASKS_SQL = f"""
INSERT INTO cl_tasks
SELECT task_id, workflow_id, k + 1, task_def, ref, status, retry, NULL, scheduled, started, ended,
       greatest(scheduled, started, ended),
       format('{{{{"taskType":"{{}}","status":"{{}}","referenceTaskName":"{{}}","retryCount":{{}},'
              '"seq":{{}},"correlationId":"cust-{{}}","pollCount":1,"taskDefName":"{{}}",'
              '"scheduledTime":{{}},"startTime":{{}},"endTime":{{}},"updateTime":{{}},'
              '"startDelayInSeconds":0,"retried":false,"executed":{{}},"callbackFromWorker":true,'
              '"responseTimeoutSeconds":3600,"workflowInstanceId":"{{}}","workflowType":"bench_sql_wf_{{}}",'
              '"taskId":"{{}}","callbackAfterSeconds":0,"workerId":"worker-{{}}","rateLimitPerFrequency":0,'
              '"rateLimitFrequencyInSeconds":1,"workflowPriority":0,"iteration":{{}},"firstStartTime":0,'
              '"inputData":{{{{"customer":"cust-{{}}","amount":{{}}}}}},'
              '"outputData":{{{{"score":{{}},"note":"scored by worker {{}}"}}}}}}}}',
              task_def, status, ref, retry, k + 1, w % 100000, task_def, scheduled, started, ended,
              greatest(scheduled, started, ended), status <> 'SCHEDULED', workflow_id, w % 5, task_id, w % 16,
              CASE WHEN k >= 2 THEN k - 1 ELSE 0 END, w % 100000, w % 997, (w * 7 + k) % 100, w % 16),
       task_def, 'bench_sql_wf_' || (w % 5)
FROM (
    SELECT *, {_ID.format(ms="scheduled", a="k", b="w % 4096", c="w * 4 + k")} AS task_id,
           CASE WHEN status = 'SCHEDULED' THEN 0 ELSE scheduled + 5 + (w % 11) END AS started,
           CASE WHEN status = 'SCHEDULED' THEN 0 ELSE scheduled + 5 + (w % 11) + 100 + ((w + k) % 13) * 20 END
               AS ended
    FROM (
        SELECT w, k, {_REF} AS ref, {_DEF} AS task_def, {_TASK_STATUS} AS status,
               CASE WHEN k = 0 AND w % 20 = 1 THEN 1 ELSE 0 END AS retry,
               {_ID.format(ms="create_time", a="w % 4096", b="(w // 4096) % 4096", c="w")} AS workflow_id,
               create_time + k * 350 AS scheduled
        FROM (SELECT w, {BASE_MS} + w * {STEP_MS} AS create_time, {_WF_STATUS} AS wf_status
              FROM range(?, ?) AS r(w)), range({TASKS_PER_WORKFLOW}) AS t(k)
    )
)
ORDER BY greatest(scheduled, started, ended)
"""


def fill(store: DuckDBStore, workflows: int) -> float:
    """Generate the rows straight into the base tables; returns the seconds it took.

    In chunks of ``CHUNK`` workflows: one INSERT of a million ordered task rows needs more than
    the store's 256 MB memory limit to sort.
    """
    started = time.monotonic()
    cur = store.cursor()
    try:
        for lo in range(0, workflows, CHUNK):
            hi = min(workflows, lo + CHUNK)
            cur.execute("BEGIN TRANSACTION")
            cur.execute(WORKFLOWS_SQL, [lo, hi])
            cur.execute(TASKS_SQL, [lo, hi])
            cur.execute("COMMIT")
        cur.execute("CHECKPOINT")
    finally:
        cur.close()
    return time.monotonic() - started


def measure(store: DuckDBStore, runs: int) -> list[tuple[str, list[float], int]]:
    out = []
    for label, query in QUERIES:
        run_sql(store, query)  # warm-up (and the function list, once per process)
        times = []
        rows = 0
        for _ in range(runs):
            result = run_sql(store, query)
            times.append(result.elapsed_s * 1000.0)
            rows = result.table.num_rows
        out.append((label, times, rows))
    return out


def explain(store: DuckDBStore) -> None:
    cur = store.cursor()
    try:
        for label, query in QUERIES:
            print(f"\n-- {label}\n{cur.execute('EXPLAIN ANALYZE ' + query).fetchall()[0][1]}")
    finally:
        cur.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workflows", type=int, default=250_000, help="workflows to store (4 tasks each)")
    p.add_argument("--quick", action="store_true", help="25,000 workflows (100,000 tasks)")
    p.add_argument("--runs", type=int, default=10, help="timed runs per query")
    p.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of each query")
    p.add_argument("--keep", action="store_true", help="keep the temp dir with the DuckDB file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workflows = 25_000 if args.quick else args.workflows
    print(machine_line())
    print(code_line())
    tmp = Path(tempfile.mkdtemp(prefix="bench-lab-sql-"))
    try:
        path = tmp / "lab_sql.duckdb"
        store = DuckDBStore(path, durable=False)
        try:
            seconds = fill(store, workflows)
            counts = run_sql(store, "SELECT (SELECT count(*) FROM cl_workflows) AS w, "
                                    "(SELECT count(*) FROM cl_tasks) AS t").table.to_pylist()[0]  # fmt: skip
            size = path.stat().st_size
            print(f"fill: {counts['w']:,} workflows + {counts['t']:,} tasks in {seconds:.1f} s, {mib(size)}")
            results = measure(store, args.runs)
            print(
                f"\n{args.runs} runs per query after one warm-up; ms (run_sql: check + run + Arrow fetch)\n"
            )
            print_table(
                ["query", "rows", "p50 ms", "p90 ms", "max ms"],
                [
                    (label, rows, f"{percentile(t, 50):.1f}", f"{percentile(t, 90):.1f}", f"{max(t):.1f}")
                    for label, t, rows in results
                ],
            )
            target = percentile(results[0][1], 50)
            ok = target < GOAL_MS
            print(
                f"\ntarget: group-by over {counts['t']:,} task rows p50 {target:.1f} ms "
                f"(p90 {percentile(results[0][1], 90):.1f} ms) < {GOAL_MS:.0f} ms: {verdict(ok)}"
            )
            if args.explain:
                explain(store)
        finally:
            store.close()
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
