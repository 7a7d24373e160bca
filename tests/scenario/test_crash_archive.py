"""kill -9 inside an archive batch (``engine/store/archive.py``), injected at an exact point.

A real server runs with ``--archive-after 0`` (a workflow may go as soon as it ends), small
batches and ``CONDUCTOR_LAB_CRASH=<point>:<n>``, under a starter and workers; it kills itself at
the n-th time the archiver reaches the point:

* ``archive-after-write``: the batch's Parquet files are in place, nothing committed;
* ``archive-before-commit``: inside its DuckDB transaction (rows deleted, batch recorded), before COMMIT;
* ``archive-after-commit``: just after the COMMIT.

After the crash a server starts on the same file and archives on (without the crash point), then
stops; the invariant is checked on the file itself: every acknowledged workflow is exactly once in
the tables or the archive, with all its tasks, transitions and logs in the same place; every
Parquet file on disk belongs to a committed batch (the crashed batch's files were deleted at open
unless it committed); each workflow still answers ``GET /api/workflow/{id}`` and search.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import httpx
import pytest

from conductor_lab.client import ApiError, ConductorClient
from conductor_lab.engine.store.archive import archive_dir
from conductor_lab.engine.store.duckdb import DuckDBStore
from conductor_lab.engine.store.journal import CRASH_ENV
from tests.conftest import ServerProcess, wait_until

pytestmark = pytest.mark.timeout(180)

WF = {"name": "archive_crash_wf", "version": 1, "tasks": [{"name": "ac_a", "taskReferenceName": "a"}]}
TASK_DEFS = [{"name": "ac_a", "retryCount": 5, "retryDelaySeconds": 0, "responseTimeoutSeconds": 2, "timeoutSeconds": 0}]
ARCHIVING = ["--archive-after", "0", "--archive-interval", "0.05", "--archive-batch", "15"]


class Traffic:
    """A starter and two workers (each update carries a log line), recording what was acknowledged."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.started: list[str] = []
        self.errors: list[BaseException] = []
        self.threads = [threading.Thread(target=self._starter)] + [
            threading.Thread(target=self._worker) for _ in range(2)
        ]

    def __enter__(self) -> Traffic:
        for th in self.threads:
            th.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for th in self.threads:
            th.join(30)
        assert not any(th.is_alive() for th in self.threads)

    def _starter(self) -> None:
        with ConductorClient(self.url, timeout=5) as c:
            n = 0
            while True:
                try:
                    self.started.append(c.start_workflow("archive_crash_wf", {"n": n}))
                except (httpx.HTTPError, ApiError):
                    return  # the server died
                n += 1

    def _worker(self) -> None:
        with ConductorClient(self.url, timeout=5) as c:
            while True:
                try:
                    for t in c.batch_poll("ac_a", count=5, timeout_ms=100, worker_id="archive-crash"):
                        c.update_task(
                            {
                                "workflowInstanceId": t["workflowInstanceId"],
                                "taskId": t["taskId"],
                                "status": "COMPLETED",
                                "outputData": {"n": t["inputData"].get("n")},
                                "logs": [{"log": f"did {t['taskId']}", "createdTime": 1}],
                            }
                        )
                except (httpx.HTTPError, ApiError):
                    return
                except BaseException as exc:  # pragma: no cover - surfaced by the test
                    self.errors.append(exc)
                    return


def _parquet_files(db: Path) -> set[str]:
    root = archive_dir(db)
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def _where(store: DuckDBStore, sql: str) -> dict[str, int]:
    cur = store.cursor()
    try:
        return {r[0]: int(r[1]) for r in cur.execute(sql).fetchall()}
    finally:
        cur.close()


@pytest.mark.parametrize(
    ("point", "n"),
    [("archive-after-write", 2), ("archive-before-commit", 2), ("archive-after-commit", 2), ("archive-before-commit", 1)],
)
def test_kill9_inside_an_archive_batch_keeps_every_workflow_exactly_once(tmp_path: Path, point: str, n: int) -> None:
    db = tmp_path / "arch.duckdb"
    proc = ServerProcess(db, ARCHIVING, log_dir=tmp_path, env={CRASH_ENV: f"{point}:{n}"})
    proc.start()
    with ConductorClient(proc.url) as c:
        c.register_task_defs(TASK_DEFS)
        c.register_workflow_def(WF)
    with Traffic(proc.url) as traffic:
        wait_until(lambda: not proc.alive(), timeout=60, what=f"the server to kill itself at {point}:{n}")
    assert proc.proc is not None and proc.proc.returncode == -9, proc.output()
    assert not traffic.errors, traffic.errors
    acked = list(traffic.started)
    assert acked, "no start was acknowledged before the crash"
    on_disk = _parquet_files(db)
    assert on_disk, "the crash left no Parquet file"

    # a new server on the same file (no crash point) archives on
    proc.env = None
    proc.start()
    orphans = re.search(r"deleted (\d+) Parquet files of an unfinished archive batch", proc.output())
    if point == "archive-after-commit":
        assert orphans is None, proc.output()  # the crashed batch committed: its files are the archive's
    else:
        assert orphans is not None and int(orphans.group(1)) == 4, proc.output()  # one file per table
    with ConductorClient(proc.url) as c:
        done = threading.Event()

        def worker() -> None:  # whatever was still running finishes
            with ConductorClient(proc.url, timeout=10) as wc:
                while not done.is_set():
                    for t in wc.batch_poll("ac_a", count=10, timeout_ms=100, worker_id="after-crash"):
                        wc.update_task(
                            {"workflowInstanceId": t["workflowInstanceId"], "taskId": t["taskId"], "status": "COMPLETED"}
                        )

        th = threading.Thread(target=worker)
        th.start()
        try:
            for wid in acked:
                assert c.wait_for_workflow(wid, timeout=60)["status"] == "COMPLETED"
        finally:
            done.set()
            th.join(30)
        # every acknowledged workflow answers GET, from the tables or the archive, with its task
        for wid in acked:
            wf = c.get_workflow(wid)
            assert wf["workflowId"] == wid and len(wf["tasks"]) >= 1
        # (a start in flight at the crash may have been logged without its answer: one more)
        hits = c.search_workflows(query="workflowType IN (archive_crash_wf)", size=0)["totalHits"]
        assert hits >= len(acked)
    assert proc.stop() == 0, proc.output()

    # the invariant, on the file itself
    with DuckDBStore(db) as store:
        stats = store.stats()["archive"]
        assert stats["batches"] >= n
        committed = set()
        for (files,) in store.cursor().execute("SELECT files FROM cl_archive_batches").fetchall():
            committed |= set(json.loads(files))
        assert _parquet_files(db) == committed  # no orphan left behind

        live = _where(store, "SELECT workflow_id, count(*) FROM cl_workflows GROUP BY ALL")
        archived = _where(store, "SELECT workflow_id, count(*) FROM cl_archive_workflows GROUP BY ALL")
        assert not set(live) & set(archived), "a workflow is both in the tables and in the archive"
        assert all(v == 1 for v in (*live.values(), *archived.values()))
        assert set(acked) <= set(live) | set(archived)
        assert hits == len(live) + len(archived)  # search counted each once
        assert archived, "nothing was archived"
        # tasks, transitions and logs are where their workflow is
        for table, place in (("cl_tasks", live), ("cl_archive_tasks", archived)):
            tasks = _where(store, f"SELECT workflow_id, count(*) FROM {table} GROUP BY ALL")
            assert set(tasks) == set(place), table
        for table, place in (("cl_transitions", live), ("cl_archive_transitions", archived)):
            moves = _where(store, f"SELECT workflow_id, count(*) FROM {table} GROUP BY ALL")
            assert set(moves) == set(place) and all(v >= 2 for v in moves.values()), table
        for logs, tasks, place in (
            ("cl_task_logs", "cl_tasks", live),
            ("cl_archive_task_logs", "cl_archive_tasks", archived),
        ):
            by_wf = _where(
                store,
                f"SELECT t.workflow_id, count(*) FROM {logs} l JOIN {tasks} t USING (task_id) GROUP BY ALL",
            )
            assert set(by_wf) <= set(place), logs
        # logs written before the crash were not lost with their archived tasks
        assert _where(store, "SELECT 'n', count(*) FROM task_logs WHERE workflow_id IS NULL") == {"n": 0}
        assert store.cursor().execute("SELECT count(*) FROM workflows").fetchall() == [(len(live) + len(archived),)]
