"""Retention to Parquet (``--archive-after``): archiving N finished workflows while the server serves.

    python bench/archive.py              # 1,000,000 finished workflows (3 tasks each; fill ~2-4 min)
    python bench/archive.py --quick      # 100,000
    python bench/archive.py --batch 5000 # workflows per archive batch (default: the server's, 2,000)
    python bench/archive.py --keep-fill /tmp/a1m.duckdb   # fill once into that file, reuse a copy next time

1. Fill (in-process, no server): ONE set-based INSERT per table and chunk generates engine-shaped
   rows inside DuckDB: each workflow ~1 KB of JSON, 3 tasks (~600 B each), 5 transitions, one task
   log line; all finished (90% COMPLETED, 10% FAILED) over ``--days`` (5) days ending 40 days ago.
2. Archive under load: the real server (CLI) starts on the file with ``--archive-after 30`` (every
   workflow is due) and archives at once; meanwhile ONE client thread runs a light worker load on
   its own keep-alive connection (start a one-task workflow, poll it, complete it, in a loop) and
   times each poll and each update. Printed: the archive's total time (server start to the last
   batch committed, from the server's log line), its batches, batch p50/p99/max and the fold lock
   held per batch (p50/p99/max, same log line), and poll/update p50/p99/max during archiving and
   then for the same number of seconds after it (the baseline, same server, archiver idle); then
   ``GET /api/workflow/{id}`` of archived workflows (p50/max of ``--runs`` x 4 random ones).
3. ``lab.sql``-style aggregates over tables + archive (in-process ``run_sql`` after the server
   stopped): count by status and name with the p50 duration of ``workflows``, and a count by
   status of ``tasks``; p50/p90 of ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import duckdb  # noqa: E402
from _common import RawClient, Server, code_line, machine_line, mib, percentile, print_table  # noqa: E402

from conductor_lab.engine.sql import run_sql  # noqa: E402
from conductor_lab.engine.store.duckdb import DuckDBStore  # noqa: E402

DAY_MS = 86_400_000
CHUNK = 50_000
_ID = "printf('%08x-%04x-7%03x-8%03x-%012x', {ms} >> 16, {ms} & 65535, {a}, {b}, {c})"  # uuid-v7 layout
_PAD = "repeat('x', 700)"  # brings a workflow's JSON to ~1 KB
_STATUS = "CASE WHEN w % 10 = 3 THEN 'FAILED' ELSE 'COMPLETED' END"

_BASE = f"""
SELECT w, create_time, create_time + 2000 + (w % 7) * 300 AS end_time, {_STATUS} AS status,
       {_ID.format(ms="create_time", a="w % 4096", b="(w // 4096) % 4096", c="w")} AS workflow_id
FROM (SELECT range AS w, ? + range * ? AS create_time FROM range(?, ?))
"""

WORKFLOWS_SQL = f"""
INSERT INTO cl_workflows
SELECT workflow_id, 'bench_archive_wf_' || (w % 5), 1, status, 'cust-' || (w % 100000), NULL, 0,
       create_time, end_time, end_time, 'snap-bench',
       format('{{{{"workflowId":"{{}}","status":"{{}}","correlationId":"cust-{{}}","priority":0,'
              '"createTime":{{}},"updateTime":{{}},"endTime":{{}},"input":{{{{"customer":"cust-{{}}",'
              '"note":"{{}}"}}}},"output":{{{{"score":{{}}}}}},"variables":{{{{}}}},"taskToDomain":{{{{}}}},'
              '"workflowName":"bench_archive_wf_{{}}","workflowVersion":1}}}}',
              workflow_id, status, w % 100000, create_time, end_time, end_time, w % 100000, {_PAD}, w % 100, w % 5)
FROM ({_BASE})
"""

TASKS_SQL = f"""
INSERT INTO cl_tasks
SELECT task_id, workflow_id, k + 1, 'SIMPLE', 'step_' || k, t_status, 0, NULL, scheduled, scheduled + 5,
       scheduled + 300, scheduled + 300,
       format('{{{{"taskType":"bench_archive_step_{{}}","status":"{{}}","referenceTaskName":"step_{{}}",'
              '"seq":{{}},"taskDefName":"bench_archive_step_{{}}","scheduledTime":{{}},"startTime":{{}},'
              '"endTime":{{}},"updateTime":{{}},"workflowInstanceId":"{{}}","workflowType":"bench_archive_wf_{{}}",'
              '"taskId":"{{}}","workerId":"worker-{{}}","inputData":{{{{"customer":"cust-{{}}","blob":"{{}}"}}}},'
              '"outputData":{{{{"score":{{}}}}}}}}}}',
              k, t_status, k, k + 1, k, scheduled, scheduled + 5, scheduled + 300, scheduled + 300, workflow_id,
              w % 5, task_id, w % 16, w % 100000, repeat('y', 250), (w + k) % 100),
       'bench_archive_step_' || k, 'bench_archive_wf_' || (w % 5)
FROM (
    SELECT *, {_ID.format(ms="scheduled", a="k", b="w % 4096", c="w * 3 + k")} AS task_id,
           CASE WHEN status = 'FAILED' AND k = 2 THEN 'FAILED' ELSE 'COMPLETED' END AS t_status
    FROM (SELECT *, create_time + k * 600 AS scheduled FROM ({_BASE}), range(3) AS t(k))
)
"""

TRANSITIONS_SQL = f"""
INSERT INTO cl_transitions
SELECT ts, workflow_id, task_id, ref, typ, st, NULL, NULL FROM (
    SELECT create_time AS ts, workflow_id, NULL AS task_id, NULL AS ref, NULL AS typ, 'RUNNING' AS st, w, 0 AS o
    FROM ({_BASE})
    UNION ALL
    SELECT create_time + k * 600 + 300, workflow_id,
           {_ID.format(ms="create_time + k * 600", a="k", b="w % 4096", c="w * 3 + k")},
           'step_' || k, 'SIMPLE', CASE WHEN status = 'FAILED' AND k = 2 THEN 'FAILED' ELSE 'COMPLETED' END, w, 1 + k
    FROM ({_BASE}), range(3) AS t(k)
    UNION ALL
    SELECT end_time, workflow_id, NULL, NULL, NULL, status, w, 9 FROM ({_BASE})
) ORDER BY ts, w, o
"""

LOGS_SQL = f"""
INSERT INTO cl_task_logs
SELECT {_ID.format(ms="create_time", a="0", b="w % 4096", c="w * 3")}, create_time + 100,
       'fetched order of cust-' || (w % 100000)
FROM ({_BASE})
"""


def fill(path: Path, workflows: int, days: float, now_ms: int) -> float:
    """Finished workflows over ``days`` days ending 40 days before ``now_ms``; seconds taken."""
    span = int(days * DAY_MS)
    base = now_ms - 40 * DAY_MS - span
    step = max(1, span // max(1, workflows))
    began = time.monotonic()
    with DuckDBStore(path, durable=False) as store:
        cur = store.cursor()
        try:
            cur.execute("INSERT INTO cl_snapshots VALUES ('snap-bench', '{\"name\":\"bench_archive_wf\",\"tasks\":[]}')")
            for lo in range(0, workflows, CHUNK):
                hi = min(workflows, lo + CHUNK)
                cur.execute("BEGIN TRANSACTION")
                for sql in (WORKFLOWS_SQL, TASKS_SQL, LOGS_SQL):
                    cur.execute(sql, [base, step, lo, hi])
                cur.execute(TRANSITIONS_SQL, [base, step, lo, hi] * 3)
                cur.execute("COMMIT")
                print(f"  filled {hi:,} workflows ({time.monotonic() - began:.0f} s)", flush=True)
            cur.execute("CHECKPOINT")
        finally:
            cur.close()
    return time.monotonic() - began


class Load:
    """One client: start a one-task workflow, poll its task, complete it; poll and update timed."""

    def __init__(self, api: str) -> None:
        self.c = RawClient(api)
        self.polls: list[tuple[float, float]] = []  # (when, seconds)
        self.updates: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            self.c.start_workflow("bench_archive_live", {"n": 1})
            t0 = time.monotonic()
            got = self.c.batch_poll("bench_archive_live_task", 1, 1000, "bench")
            t1 = time.monotonic()
            self.polls.append((t0, t1 - t0))
            for t in got:
                t2 = time.monotonic()
                self.c.update(
                    {"workflowInstanceId": t["workflowInstanceId"], "taskId": t["taskId"], "status": "COMPLETED"}
                )
                self.updates.append((t2, time.monotonic() - t2))
            time.sleep(0.01)  # a light load: ~50-90 workflows/s


def figures(samples: list[tuple[float, float]], lo: float, hi: float) -> tuple[str, str, str, int]:
    xs = [s * 1000 for t, s in samples if lo <= t < hi]
    if not xs:
        return "-", "-", "-", 0
    return f"{percentile(xs, 50):.2f}", f"{percentile(xs, 99):.2f}", f"{max(xs):.1f}", len(xs)


ROUND = re.compile(
    r"archived (\d+) finished workflows .* in (\d+) batches, ([\d.]+) s \(batch p50 (\S+) ms, p99 (\S+) ms, "
    r"longest batch (\d+) ms; fold lock held p50 (\S+), p99 (\S+), max (\S+) ms\)"
)


def archive_under_load(path: Path, workflows: int, batch: int | None, runs: int) -> None:
    extra = ["--archive-after", "30", "--archive-interval", "3600"]
    if batch:
        extra += ["--archive-batch", str(batch)]
    server = Server(path, durable=True, extra_args=extra, log_dir=path.parent)
    started = time.monotonic()
    server.start()
    try:
        c = RawClient(server.api)
        c.register_task_defs([{"name": "bench_archive_live_task", "responseTimeoutSeconds": 60}])
        c.register_workflow_def(
            {
                "name": "bench_archive_live",
                "version": 1,
                "tasks": [{"name": "bench_archive_live_task", "taskReferenceName": "t", "type": "SIMPLE"}],
            }
        )
        load = Load(server.api)
        load.thread.start()
        while not ROUND.search(server.output()):
            if time.monotonic() - started > 3600:
                raise TimeoutError("archiving took more than an hour")
            time.sleep(0.2)
        done = time.monotonic()
        m = ROUND.search(server.output())
        assert m is not None
        moved, batches, seconds = int(m.group(1)), int(m.group(2)), float(m.group(3))
        p50, p99, longest, h50, h99, hmax = m.group(4, 5, 6, 7, 8, 9)
        during = done - started
        time.sleep(min(during, 30.0))  # the baseline: the same server, the archiver idle
        load.stop.set()
        load.thread.join(10)
        after = time.monotonic()
        print(f"\narchived {moved:,} of {workflows:,} workflows in {seconds:.1f} s ({moved / seconds:,.0f} workflows/s), "
              f"{batches} batches; batch p50 / p99 / max {p50} / {p99} / {longest} ms; fold lock held per batch "
              f"p50 / p99 / max {h50} / {h99} / {hmax} ms; archive on disk {mib(archive_bytes(path))}")
        rows = []
        for label, lo, hi in (("during archiving", started, done), ("after (archiver idle)", done, after)):
            rows.append([label, "poll", *figures(load.polls, lo, hi)])
            rows.append([label, "update", *figures(load.updates, lo, hi)])
        print_table(["window", "call", "p50 ms", "p99 ms", "max ms", "calls"], rows)
        get_archived(c, path, runs)
    finally:
        server.stop()


def get_archived(c: RawClient, path: Path, runs: int) -> None:
    """``GET /api/workflow/{id}?includeTasks=true`` of archived workflows spread over the archive."""
    rng = random.Random(7)
    root = Path(str(path) + ".archive") / "workflows"
    files = sorted(root.glob("*/*.parquet"))
    if not files:
        return
    con = duckdb.connect()
    ids = []
    for f in rng.sample(files, min(len(files), 4 * runs)):
        ids.append(con.execute(f"SELECT workflow_id FROM read_parquet('{f}') USING SAMPLE 1 ROWS").fetchone()[0])
    con.close()
    times = []
    for wid in ids:
        t0 = time.perf_counter()
        wf = c.get_workflow(wid)
        times.append((time.perf_counter() - t0) * 1000)
        assert wf["workflowId"] == wid and len(wf["tasks"]) == 3, wf
    print(f"GET /api/workflow/{{id}} of an archived workflow ({len(ids)} spread over {len(files)} batches): "
          f"p50 {percentile(times, 50):.1f} ms, max {max(times):.1f} ms")


def archive_bytes(path: Path) -> int:
    root = Path(str(path) + ".archive")
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0


QUERIES = [
    (
        "workflows: count, p50 duration by status/name",
        "SELECT status, name, count(*) AS n, quantile_cont(duration_s, 0.5) AS p50_s FROM workflows GROUP BY ALL",
    ),
    ("tasks: count by status", "SELECT status, count(*) AS n FROM tasks GROUP BY ALL"),
]


def aggregates(path: Path, runs: int) -> None:
    with DuckDBStore(path) as store:
        a = store.stats()
        print(f"\ntables: {a['rows']['cl_workflows']:,} workflows; archive: {a['archive']}")
        rows = []
        for label, query in QUERIES:
            run_sql(store, query)
            times = [run_sql(store, query).elapsed_s * 1000 for _ in range(runs)]
            total = run_sql(store, "SELECT count(*) AS n FROM workflows").table.column(0)[0].as_py()
            rows.append([label, f"{percentile(times, 50):.0f}", f"{percentile(times, 90):.0f}", f"{total:,}"])
        print_table(["query (tables + archive)", "p50 ms", "p90 ms", "workflows seen"], rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workflows", type=int, default=1_000_000)
    p.add_argument("--quick", action="store_true", help="100,000 workflows")
    p.add_argument("--days", type=float, default=5.0, help="the finished workflows' end days")
    p.add_argument("--batch", type=int, default=None, help="--archive-batch of the server")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    p.add_argument(
        "--keep-fill", type=Path, default=None,
        help="fill into this file once (kept) and archive a copy of it; reused when it exists",
    )
    args = p.parse_args(argv)
    n = 100_000 if args.quick else args.workflows
    print(machine_line())
    print(code_line())
    tmp = Path(tempfile.mkdtemp(prefix="bench-archive-"))
    try:
        path = tmp / "archive.duckdb"
        if args.keep_fill is not None and args.keep_fill.exists():
            shutil.copyfile(args.keep_fill, path)
            print(f"fill: copied {args.keep_fill} ({mib(path.stat().st_size)})")
        else:
            print(f"fill: {n:,} finished workflows, 3 tasks each ...", flush=True)
            secs = fill(path, n, args.days, int(time.time() * 1000))
            print(f"fill: {secs:.0f} s, database {mib(path.stat().st_size)}")
            if args.keep_fill is not None:
                shutil.copyfile(path, args.keep_fill)
        archive_under_load(path, n, args.batch, args.runs)
        aggregates(path, args.runs)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
