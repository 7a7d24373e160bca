"""``POST /api/lab/sql`` over a real server: the history views hold what the REST API answers for
the same run, answers in JSON and Arrow, every sandbox refusal as a 400, limits, the token, and
polls answered while a slow query runs."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from conductor_lab.client.errors import ApiError
from conductor_lab.client.http import ConductorClient
from tests.conftest import ServerProcess, wait_until
from tests.server.util import (
    assert_error,
    batch_poll,
    complete,
    get_workflow,
    poll_one,
    simple_task,
    uid,
    workflow_def,
)

ARROW = "application/vnd.apache.arrow.stream"


def sql(http: httpx.Client, query: str, params: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    r = http.post("/lab/sql", json={"query": query, "params": params, **extra})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"columns", "rows", "truncated", "elapsedMs"}
    return body


def records(body: dict[str, Any]) -> list[dict[str, Any]]:
    names = [c["name"] for c in body["columns"]]
    return [dict(zip(names, row, strict=True)) for row in body["rows"]]


def iso(ms: int) -> str | None:
    """The JSON answer's form of an epoch-ms time (0 = unset -> null)."""
    if not ms:
        return None
    return (dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=ms)).isoformat() + "Z"


@dataclass
class Story:
    """One workflow run through the server: a failed then retried task, a log line, a 2-iteration loop."""

    name: str
    workflow_id: str
    workflow: dict[str, Any]  # GET /workflow/{id} after it completed
    logs: dict[str, list[dict[str, Any]]]  # taskId -> GET /tasks/{id}/log


@pytest.fixture(scope="module")
def story(http: httpx.Client) -> Story:
    name, t1, t2 = uid("sql_wf"), uid("sql_t1"), uid("sql_t2")
    r = http.post(
        "/metadata/taskdefs",
        json=[{"name": t1, "retryCount": 1, "retryDelaySeconds": 0}, {"name": t2, "retryCount": 0}],
    )
    assert r.status_code == 200, r.text
    loop = {
        "name": "loop",
        "taskReferenceName": "loop",
        "type": "DO_WHILE",
        "loopCondition": "if ($.loop['iteration'] < 2) { true; } else { false; }",
        "loopOver": [simple_task(t2, "b")],
    }
    wd = workflow_def(name, [simple_task(t1, "a", x="${workflow.input.x}"), loop])
    assert http.post("/metadata/workflow", json=wd).status_code == 200
    r = http.post(f"/workflow/{name}", json={"x": 5}, params={"correlationId": "sql-c1"})
    assert r.status_code == 200, r.text
    wid = r.text
    first = poll_one(http, t1, worker_id="w-fail")
    r = http.post(
        "/tasks",
        json={
            "workflowInstanceId": wid,
            "taskId": first["taskId"],
            "status": "FAILED",
            "reasonForIncompletion": "boom",
        },
    )
    assert r.status_code == 200, r.text
    again = poll_one(http, t1, worker_id="w-ok")
    assert http.post(f"/tasks/{again['taskId']}/log", content="hello from a").status_code == 200
    complete(http, again, {"y": 1})
    for i in range(2):
        complete(http, poll_one(http, t2, worker_id="w-loop"), {"i": i})

    def completed() -> dict[str, Any] | None:
        w = get_workflow(http, wid)
        return w if w["status"] == "COMPLETED" else None

    wf = wait_until(completed, what="workflow COMPLETED")
    logs = {}
    for t in wf["tasks"]:
        r = http.get(f"/tasks/{t['taskId']}/log")
        logs[t["taskId"]] = r.json() if r.content else []  # no logs: an empty answer, as conductor-oss
    return Story(name, wid, wf, logs)


# ---------------------------------------------------------------------------------------------
# the views hold what the REST API answers


def test_workflows_view_matches_the_workflow_api(http: httpx.Client, story: Story) -> None:
    body = sql(http, "SELECT * FROM workflows WHERE workflow_id = ?", [story.workflow_id])
    types = {c["name"]: c["type"] for c in body["columns"]}
    assert (types["created_at"], types["duration_s"], types["input"]) == ("TIMESTAMP", "DOUBLE", "JSON")
    (row,) = records(body)
    wf = story.workflow
    assert (row["name"], row["version"], row["status"]) == (story.name, wf["workflowVersion"], "COMPLETED")
    assert row["correlation_id"] == "sql-c1" and row["parent_workflow_id"] is None
    assert row["created_at"] == iso(wf["createTime"]) and row["ended_at"] == iso(wf["endTime"])
    assert row["updated_at"] == iso(wf["updateTime"])
    assert row["duration_s"] == pytest.approx((wf["endTime"] - wf["createTime"]) / 1000)
    assert (row["input"], row["output"], row["variables"]) == (wf["input"], wf["output"], wf["variables"])
    assert row["failed_task_names"] == wf["failedTaskNames"] and row["reason"] == wf.get(
        "reasonForIncompletion"
    )


def test_tasks_view_matches_the_tasks_of_the_workflow_api(http: httpx.Client, story: Story) -> None:
    got = records(sql(http, "SELECT * FROM tasks WHERE workflow_id = ? ORDER BY seq", [story.workflow_id]))
    want = sorted(story.workflow["tasks"], key=lambda t: t["seq"])
    assert [r["task_id"] for r in got] == [t["taskId"] for t in want]
    for row, task in zip(got, want, strict=True):
        assert row["seq"] == task["seq"] and row["status"] == task["status"]
        assert (row["task_type"], row["task_def_name"]) == (task["taskType"], task["taskDefName"])
        assert row["full_ref_name"] == task["referenceTaskName"] and row["workflow_name"] == story.name
        assert row["ref_name"] == task["referenceTaskName"].split("__")[0]
        if task["taskType"] != "DO_WHILE":  # the loop task's own "iteration" counts its iterations
            assert row["iteration"] == task["iteration"]
        assert (row["retry_count"], row["attempt"]) == (task["retryCount"], task["retryCount"] + 1)
        assert row["worker_id"] == task.get("workerId") and row["poll_count"] == task["pollCount"]
        assert row["reason"] == task.get("reasonForIncompletion")
        for col, field in (
            ("scheduled_at", "scheduledTime"),
            ("started_at", "startTime"),
            ("ended_at", "endTime"),
            ("updated_at", "updateTime"),
        ):
            assert row[col] == iso(task[field]), (col, row[col], task[field])
        if task["startTime"] and task["endTime"]:
            assert row["run_s"] == pytest.approx((task["endTime"] - task["startTime"]) / 1000)
            assert row["wait_s"] == pytest.approx((task["startTime"] - task["scheduledTime"]) / 1000)
        assert (row["input"], row["output"]) == (task["inputData"], task["outputData"])
    by_ref = [(r["ref_name"], r["iteration"], r["status"], r["attempt"]) for r in got]
    assert by_ref == [
        ("a", 0, "FAILED", 1),
        ("a", 0, "COMPLETED", 2),
        ("loop", 0, "COMPLETED", 1),
        ("b", 1, "COMPLETED", 1),
        ("b", 2, "COMPLETED", 1),
    ]


def test_transitions_and_logs_match_the_api(http: httpx.Client, story: Story) -> None:
    rows = records(
        sql(http, "SELECT * FROM transitions WHERE workflow_id = ? ORDER BY n", [story.workflow_id])
    )
    assert rows[0]["task_id"] is None and rows[0]["status"] == "RUNNING"
    assert rows[-1]["task_id"] is None and rows[-1]["status"] == "COMPLETED"
    last = {r["task_id"]: r["status"] for r in rows if r["task_id"]}  # each task's newest change
    assert last == {t["taskId"]: t["status"] for t in story.workflow["tasks"]}
    failed = [r for r in rows if r["status"] == "FAILED"]
    assert [(r["ref_name"], r["reason"]) for r in failed] == [("a", "boom")]
    logs = records(sql(http, "SELECT * FROM task_logs WHERE workflow_id = ?", [story.workflow_id]))
    want = [
        (tid, entry["log"], iso(entry["createdTime"]))
        for tid, entries in story.logs.items()
        for entry in entries
    ]
    assert [(r["task_id"], r["log"], r["created_at"]) for r in logs] == want
    assert want and want[0][1] == "hello from a"


def test_json_fields_and_groupings_answer_from_the_views(http: httpx.Client, story: Story) -> None:
    body = sql(
        http,
        "SELECT ref_name, count(*) AS n, max(iteration) AS loops, "
        "max(CAST(output->>'$.i' AS INTEGER)) AS last_i FROM tasks "
        "WHERE workflow_id = ? GROUP BY ref_name ORDER BY ref_name",
        [story.workflow_id],
    )
    assert body["rows"] == [["a", 2, 0, None], ["b", 2, 2, 1], ["loop", 1, 0, None]]
    assert [c["type"] for c in body["columns"]] == ["VARCHAR", "BIGINT", "INTEGER", "INTEGER"]


# ---------------------------------------------------------------------------------------------
# Arrow answers and the client


def test_arrow_answer_when_accept_asks_for_it(http: httpx.Client, story: Story) -> None:
    r = http.post(
        "/lab/sql",
        json={
            "query": "SELECT task_id, scheduled_at, output FROM tasks WHERE workflow_id = ? ORDER BY seq",
            "params": [story.workflow_id],
        },
        headers={"Accept": ARROW},
    )
    assert r.status_code == 200 and r.headers["content-type"] == ARROW
    table = pa.ipc.open_stream(r.content).read_all()
    assert table.num_rows == 5 and table.schema.field("scheduled_at").type == pa.timestamp("us")
    assert table.schema.field("output").metadata == {b"duckdb.type": b"JSON"}
    assert table.schema.metadata[b"truncated"] == b"false"


def test_client_sql_returns_arrow_and_raises_on_refusal(server: ServerProcess, story: Story) -> None:
    with ConductorClient(server.url) as client:
        table = client.sql(
            "SELECT ref_name, status FROM tasks WHERE workflow_id = ? ORDER BY seq",
            [story.workflow_id],
            max_rows=3,
        )
        assert table.column("ref_name").to_pylist() == ["a", "a", "loop"]
        assert table.schema.metadata[b"truncated"] == b"true"
        with pytest.raises(ApiError) as info:
            client.sql("DELETE FROM cl_tasks")
        assert info.value.status == 400 and "only a SELECT" in info.value.message


# ---------------------------------------------------------------------------------------------
# refusals and limits over HTTP


def refused(http: httpx.Client, query: str, *fragments: str) -> dict[str, Any]:
    return assert_error(http.post("/lab/sql", json={"query": query}), 400, *fragments)


def test_every_kind_of_refusal_is_a_400(http: httpx.Client, tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("user,password\nroot,hunter2\n")
    target = tmp_path / "out.csv"
    refused(http, "INSERT INTO cl_meta VALUES ('k', 'v')", "only a SELECT", "INSERT")
    refused(http, "CREATE TABLE stolen AS SELECT * FROM cl_tasks", "only a SELECT", "CREATE")
    refused(http, "ATTACH ':memory:' AS other", "ATTACH")
    refused(http, f"COPY (SELECT * FROM tasks) TO '{target}'", "COPY")
    refused(http, f"SELECT * FROM read_csv('{secret}')", "read_csv")
    refused(http, f"SELECT * FROM '{secret}'", "is not available here")
    refused(http, "PRAGMA database_list", "PRAGMA")
    refused(http, "SET memory_limit = '8GB'", "SET")
    refused(http, "SELECT 1; SELECT 2", "exactly one SQL statement")
    refused(http, "SELECT current_setting('memory_limit')", "current_setting")
    refused(http, "SELEC 1", "syntax error")
    refused(http, "SELECT nope FROM tasks", "Binder Error")
    assert not target.exists()
    assert_error(http.post("/lab/sql", json={"query": ""}), 400, "non-empty")
    assert_error(http.post("/lab/sql", json={"query": "SELECT 1", "maxRows": -1}), 400, "maxRows")
    assert_error(http.post("/lab/sql", json={"query": "SELECT 1", "params": "x"}), 400, "params")


def test_huge_results_are_truncated_at_the_row_limit(http: httpx.Client) -> None:
    body = sql(http, "SELECT * FROM range(1000) r(i)", maxRows=10)
    assert body["truncated"] is True and [r[0] for r in body["rows"]] == list(range(10))
    r = http.post(
        "/lab/sql", json={"query": "SELECT * FROM range(250000)", "maxRows": 10**9}, headers={"Accept": ARROW}
    )
    table = pa.ipc.open_stream(r.content).read_all()
    assert table.num_rows == 100_000 and table.schema.metadata[b"truncated"] == b"true"  # the server's cap


def test_slow_query_hits_the_time_limit(http: httpx.Client) -> None:
    r = http.post(
        "/lab/sql", json={"query": "SELECT count(*) FROM range(1000000000000)", "timeoutSeconds": 0.5}
    )
    assert_error(r, 400, "query exceeded the 0.5 s limit")
    assert sql(http, "SELECT 42 AS x")["rows"] == [[42]]


def test_polls_and_updates_are_answered_while_a_slow_query_runs(
    server: ServerProcess, http: httpx.Client
) -> None:
    task_type = uid("sql_busy_t")
    name = uid("sql_busy")
    assert http.post("/metadata/taskdefs", json=[{"name": task_type, "retryCount": 0}]).status_code == 200
    assert (
        http.post("/metadata/workflow", json=workflow_def(name, [simple_task(task_type)])).status_code == 200
    )
    answer: list[httpx.Response] = []
    sent = time.monotonic()

    def slow() -> None:
        with httpx.Client(base_url=server.api, timeout=30) as other:
            answer.append(
                other.post(
                    "/lab/sql",
                    json={"query": "SELECT count(*) FROM range(1000000000000)", "timeoutSeconds": 3},
                )
            )

    t = threading.Thread(target=slow)
    t.start()
    done: list[float] = []  # when each full start -> poll -> complete cycle was answered
    while t.is_alive():
        wid = http.post(f"/workflow/{name}", json={}).text
        task = poll_one(http, task_type)
        complete(http, task)
        assert get_workflow(http, wid, include_tasks=False)["status"] == "COMPLETED"
        batch_poll(http, task_type, timeout=0)  # an empty poll
        done.append(time.monotonic())
    t.join()
    answered = time.monotonic()
    assert_error(answer[0], 400, "query exceeded the 3 s limit")
    # the query ran for its full 3 s: cycles kept being answered inside that window, and no cycle
    # waited for the query (a blocked loop would show one gap of about 3 s); counts are loose,
    # as this machine may be shared
    beside = [d for d in done if sent + 0.5 < d < answered - 0.5]
    assert len(beside) >= 2, (len(done), len(beside))
    gaps = [b - a for a, b in zip([sent, *done], done, strict=False)]
    assert max(gaps) < 2.0, gaps


# ---------------------------------------------------------------------------------------------
# the token


def test_sql_needs_the_token_like_every_api_route(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "t.duckdb", ["--token", "s3cret"], log_dir=tmp_path) as proc:
        r = httpx.post(proc.api + "/lab/sql", json={"query": "SELECT 1"})
        assert_error(r, 401, "token")
        r = httpx.post(
            proc.api + "/lab/sql",
            json={"query": "SELECT 1 AS one"},
            headers={"Authorization": "Bearer s3cret"},
        )
        assert r.status_code == 200 and r.json()["rows"] == [[1]]
        with ConductorClient(proc.url, headers={"Authorization": "Bearer s3cret"}) as client:
            assert client.sql("SELECT count(*) AS n FROM workflows").column("n").to_pylist() == [0]
        with ConductorClient(proc.url) as client, pytest.raises(ApiError) as info:
            client.sql("SELECT 1")
        assert info.value.status == 401
