"""REST over archived workflows (``--archive-after``): GET, tasks, search, SQL, and the verbs' 409.

A real server (in-process, its own DuckDB file) archives as soon as a workflow ends
(``archive_after_days=0``, a round every 50 ms); the test waits until its workflows are in the
archive and out of the tables, then reads them back through the API.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conductor_lab.client import ConductorClient
from conductor_lab.server.run import ServerHandle, start_server
from tests.conftest import wait_until
from tests.server.util import batch_poll, simple_task, uid, workflow_def


@pytest.fixture
def archiving(tmp_path: Path) -> Iterator[ServerHandle]:
    handle = start_server(tmp_path / "arch.duckdb", archive_after_days=0, archive_interval_s=0.05)
    try:
        yield handle
    finally:
        assert handle.stop()


def _rows(handle: ServerHandle, sql: str) -> list[tuple[Any, ...]]:
    cur = handle.executor.store.cursor()  # type: ignore[attr-defined]
    try:
        return list(cur.execute(sql).fetchall())
    finally:
        cur.close()


def test_archived_workflows_answer_get_search_and_sql_and_refuse_verbs(archiving: ServerHandle) -> None:
    name, task = uid("arch_wf"), uid("arch_task")
    with httpx.Client(base_url=archiving.url + "/api", timeout=10) as http:
        assert http.post("/metadata/taskdefs", json=[{"name": task}]).status_code == 200
        assert http.post("/metadata/workflow", json=workflow_def(name, [simple_task(task)])).status_code == 200
        ids = []
        for i in range(3):
            r = http.post(f"/workflow/{name}", json={"order": f"order-{i}"})
            assert r.status_code == 200, r.text
            ids.append(r.text)
        for t in batch_poll(http, task, count=3, timeout=1000):
            r = http.post(
                "/tasks",
                json={
                    "workflowInstanceId": t["workflowInstanceId"],
                    "taskId": t["taskId"],
                    "status": "COMPLETED",
                    "outputData": {"done": t["inputData"]},
                    "logs": [{"log": "shipped", "createdTime": 1}],
                },
            )
            assert r.status_code == 200, r.text

        def moved() -> bool:
            archived = {r[0] for r in _rows(archiving, "SELECT workflow_id FROM cl_archive_workflows")}
            live = {r[0] for r in _rows(archiving, "SELECT workflow_id FROM cl_workflows")}
            return set(ids) <= archived and not set(ids) & live

        wait_until(moved, timeout=20, what="the finished workflows to be archived")

        wid = ids[1]
        r = http.get(f"/workflow/{wid}")
        assert r.status_code == 200, r.text
        wf = r.json()
        assert wf["status"] == "COMPLETED" and wf["input"] == {"order": "order-1"} and len(wf["tasks"]) == 1
        task_id = wf["tasks"][0]["taskId"]
        r = http.get(f"/tasks/{task_id}")
        assert r.status_code == 200 and r.json()["status"] == "COMPLETED", r.text
        r = http.get(f"/tasks/{task_id}/log")
        assert r.status_code == 200 and [x["log"] for x in r.json()] == ["shipped"], r.text

        for path in ("/workflow/search", "/workflow/search-v2"):
            r = http.get(path, params={"query": f"workflowType IN ({name})", "freeText": "order-2"})
            assert r.status_code == 200, r.text
            assert r.json()["totalHits"] == 1 and r.json()["results"][0]["workflowId"] == ids[2]
        r = http.get("/workflow/search", params={"query": f"workflowType IN ({name}) AND status IN (COMPLETED)"})
        assert r.json()["totalHits"] == 3
        r = http.get("/tasks/search", params={"query": f"taskType IN ({task})"})
        assert r.status_code == 200 and r.json()["totalHits"] == 3, r.text

        # a verb on an archived workflow: 409 with the reason
        r = http.post(f"/workflow/{wid}/retry")
        assert r.status_code == 409, r.text
        assert "is archived" in r.json()["message"] and "read-only" in r.json()["message"]
        r = http.delete(f"/workflow/{wid}/remove")
        assert r.status_code == 409, r.text

    with ConductorClient(archiving.url) as c:
        table = c.sql(f"SELECT status, count(*) AS n FROM workflows WHERE name = '{name}' GROUP BY ALL")
        assert table.to_pylist() == [{"status": "COMPLETED", "n": 3}]
        logs = c.sql(f"SELECT count(*) AS n FROM task_logs WHERE workflow_id = '{wid}'")
        assert logs.to_pylist() == [{"n": 1}]
    archive = archiving.executor.store.stats()["archive"]
    assert archive["workflows"] >= 3 and archive["files"] >= 4 and archive["bytes"] > 0
