"""REST contract: search (contract section 8): /api/workflow/search, /search-v2, /search-by-tasks(-v2),
/api/tasks/search, /search-v2 over the real server, in conductor-oss's SQL-index syntax.

Every query is scoped to this module's own workflow types (``workflowType = <uid>``), so data of
other tests on the shared server cannot interfere. No test waits: a search sees every
acknowledged change (the engine waits for the commit in flight, the store folds its journal).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.server.util import assert_error, batch_poll, complete, get_workflow, simple_task, uid, workflow_def

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def search(http: httpx.Client, path: str = "/workflow/search", **params: Any) -> dict[str, Any]:
    r = http.get(path, params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"totalHits", "results"}, body
    return body


def ids(result: dict[str, Any], key: str = "workflowId") -> list[str]:
    return [item[key] for item in result["results"]]


@dataclass
class Fleet:
    """Two workflow types; six executions in known states (module-scoped: built once)."""

    name: str
    other: str
    t1: str
    t2: str
    alice: str  # c-0's customer: unique to this module, for free text across everything stored
    wf: list[dict[str, Any]]  # the executions as GET /workflow/{id} returns them (after the setup)
    other_id: str

    def by_corr(self, corr: str) -> str:
        return next(w["workflowId"] for w in self.wf if w.get("correlationId") == corr)

    def where(self, pred: Any) -> list[str]:
        return sorted(w["workflowId"] for w in self.wf if pred(w))


def _fail(http: httpx.Client, task: dict[str, Any]) -> None:
    r = http.post(
        "/tasks",
        json={
            "workflowInstanceId": task["workflowInstanceId"],
            "taskId": task["taskId"],
            "status": "FAILED",
            "reasonForIncompletion": "card declined",
        },
    )
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def fleet(http: httpx.Client) -> Fleet:
    name, other, t1, t2 = uid("srch"), uid("srch_other"), uid("srch_t1"), uid("srch_t2")
    alice = uid("Alice-Smith")
    r = http.post("/metadata/taskdefs", json=[{"name": t, "retryCount": 0} for t in (t1, t2)])
    assert r.status_code == 200, r.text
    tasks = [simple_task(t1, customer="${workflow.input.customer}"), simple_task(t2)]
    for n in (name, other):
        assert http.post("/metadata/workflow", json=workflow_def(n, tasks)).status_code == 200
    inputs = [
        ("c-0", {"customer": alice, "amount": 10}),  # COMPLETED
        ("c-1", {"customer": "bob", "amount": 20}),  # RUNNING, t1 done
        ("c-2", {"customer": "carol", "amount": 30}),  # TERMINATED
        ("c-3", {"customer": "dave", "amount": 40}),  # FAILED (t1 failed)
        ("x-4", {"customer": "erin 50%", "amount": 50}),  # RUNNING, nothing done
    ]
    wids = []
    for corr, inp in inputs:
        r = http.post(f"/workflow/{name}", json=inp, params={"correlationId": corr})
        assert r.status_code == 200, r.text
        wids.append(r.text)
    other_id = http.post(f"/workflow/{other}", json={"customer": "zed"}, params={"correlationId": "c-9"}).text
    polled = {t["workflowInstanceId"]: t for t in batch_poll(http, t1, count=10, timeout=2000)}
    assert set(wids) <= set(polled), polled
    complete(http, polled[wids[0]], {"ok": True})
    complete(http, polled[wids[1]], {"ok": True})
    _fail(http, polled[wids[3]])
    assert http.delete(f"/workflow/{wids[2]}", params={"reason": "stop"}).status_code == 200
    t2_tasks = {t["workflowInstanceId"]: t for t in batch_poll(http, t2, count=10, timeout=2000)}
    complete(http, t2_tasks[wids[0]], {"rows": 3})
    wf = [get_workflow(http, w, include_tasks=False) for w in wids]
    assert [w["status"] for w in wf] == ["COMPLETED", "RUNNING", "TERMINATED", "FAILED", "RUNNING"]
    return Fleet(name, other, t1, t2, alice, wf, other_id)


# ------------------------------------------------------------------------------------------------
# workflow search: the query syntax


def test_equality_in_lists_and_combined_and(http: httpx.Client, fleet: Fleet) -> None:
    n = fleet.name
    everything = search(http, query=f"workflowType = '{n}'")
    assert everything["totalHits"] == 5 and sorted(ids(everything)) == fleet.where(lambda w: True)
    both = search(http, query=f"workflowType IN ({n},{fleet.other})")
    assert both["totalHits"] == 6 and fleet.other_id in ids(both)
    # the UI's spelling: no spaces, double quotes
    assert search(http, query=f'workflowType="{fleet.other}"')["totalHits"] == 1
    running = search(http, query=f"workflowType = '{n}' AND status = 'RUNNING'")
    assert sorted(ids(running)) == fleet.where(lambda w: w["status"] == "RUNNING")
    ended = search(http, query=f"workflowType = {n} AND status IN (FAILED, TERMINATED)")  # spaces in a list
    assert sorted(ids(ended)) == fleet.where(lambda w: w["status"] in ("FAILED", "TERMINATED"))
    single = search(http, query=f"workflowType = {n} AND status IN (COMPLETED)")  # a one-value IN is '='
    assert ids(single) == [fleet.by_corr("c-0")]
    three = search(http, query=f"workflowType = {n} AND status IN (RUNNING,FAILED) AND correlationId = 'c-3'")
    assert ids(three) == [fleet.by_corr("c-3")]
    assert search(http, query=f"workflowType = {n} AND status = 'PAUSED'") == {"totalHits": 0, "results": []}
    # fields the index does not know are ignored, as conductor-oss's SQL index does
    assert search(http, query=f"workflowType = {n} AND noSuchField = 1")["totalHits"] == 5
    by_id = search(http, query=f"workflowId = {fleet.by_corr('c-2')}")
    assert ids(by_id) == [fleet.by_corr("c-2")]


def test_correlation_id_equality_and_wildcards(http: httpx.Client, fleet: Fleet) -> None:
    n = fleet.name
    assert ids(search(http, query=f"workflowType = {n} AND correlationId = 'c-1'")) == [fleet.by_corr("c-1")]
    assert search(http, query=f"workflowType = {n} AND correlationId = 'c-'")["totalHits"] == 0  # '=' is exact
    like = search(http, query=f"workflowType = {n} AND correlationId = 'c-*'")  # '*' -> LIKE
    assert sorted(ids(like)) == fleet.where(lambda w: w["correlationId"].startswith("c-"))
    assert search(http, query=f"workflowType = {n} AND correlationId = 'C-*'")["totalHits"] == 4  # lower(..) LIKE
    assert search(http, query=f"workflowType = {n} AND correlationId = '*-4'")["totalHits"] == 1
    corr_in = search(http, query=f"workflowType = {n} AND correlationId IN (c-0,x-4,nope)")
    assert sorted(ids(corr_in)) == sorted([fleet.by_corr("c-0"), fleet.by_corr("x-4")])


def test_time_ranges_on_start_update_and_end_time(http: httpx.Client, fleet: Fleet) -> None:
    n = fleet.name
    starts = sorted(w["startTime"] for w in fleet.wf)
    assert len(set(starts)) == 5, starts  # started one after the other
    lo, hi = starts[1], starts[3]
    between = search(http, query=f"workflowType = {n} AND startTime > {lo} AND startTime < {hi}")
    assert ids(between) == fleet.where(lambda w: lo < w["startTime"] < hi) and between["totalHits"] == 1
    after = search(http, query=f"workflowType = {n} AND startTime > {lo}")
    assert sorted(ids(after)) == fleet.where(lambda w: w["startTime"] > lo)
    assert search(http, query=f"workflowType = {n} AND startTime < {starts[0]}")["totalHits"] == 0
    updates = sorted({w["updateTime"] for w in fleet.wf})
    cut = updates[len(updates) // 2]
    upd = search(http, query=f"workflowType = {n} AND updateTime > {cut}")
    assert sorted(ids(upd)) == fleet.where(lambda w: w["updateTime"] > cut) and upd["totalHits"] > 0
    upd_lt = search(http, query=f"workflowType = {n} AND updateTime < {cut}")
    assert sorted(ids(upd_lt)) == fleet.where(lambda w: w["updateTime"] < cut)
    # endTime is 0 until a workflow ends (conductor-oss's index keeps the epoch)
    ended = search(http, query=f"workflowType = {n} AND endTime > 0")
    assert sorted(ids(ended)) == fleet.where(lambda w: w["status"] in ("COMPLETED", "FAILED", "TERMINATED"))


def test_free_text(http: httpx.Client, fleet: Fleet) -> None:
    n = fleet.name
    scoped = f"workflowType = {n}"
    assert ids(search(http, query=scoped, freeText=fleet.alice.lower())) == [fleet.by_corr("c-0")]  # any case
    assert ids(search(http, query=scoped, freeText="ALICE")) == [fleet.by_corr("c-0")]
    assert search(http, query=scoped, freeText="*")["totalHits"] == 5
    assert ids(search(http, query=scoped, freeText="50%")) == [fleet.by_corr("x-4")]  # % is literal
    assert search(http, query=scoped, freeText="5_%")["totalHits"] == 0  # _ is literal
    assert ids(search(http, query=scoped, freeText="card declined")) == [fleet.by_corr("c-3")]  # the reason
    # freeText alone, across everything stored (the input value is unique to this module)
    assert ids(search(http, freeText=fleet.alice.upper())) == [fleet.by_corr("c-0")]


def test_sort_asc_desc_on_two_fields(http: httpx.Client, fleet: Fleet) -> None:
    n = fleet.name
    by_start = sorted(fleet.wf, key=lambda w: w["startTime"])
    asc = search(http, query=f"workflowType = {n}", sort="startTime:ASC")
    assert ids(asc) == [w["workflowId"] for w in by_start]
    desc = search(http, query=f"workflowType = {n}", sort="startTime:DESC")
    assert ids(desc) == [w["workflowId"] for w in reversed(by_start)]
    assert ids(search(http, query=f"workflowType = {n}", sort="startTime")) == ids(asc)  # ASC by default
    # two fields, separated by '|': status ascending, then the newest first within a status
    two = search(http, query=f"workflowType = {n}", sort="status:ASC|startTime:DESC")
    expected = sorted(fleet.wf, key=lambda w: (w["status"], -w["startTime"]))
    assert ids(two) == [w["workflowId"] for w in expected]
    two_desc = search(http, query=f"workflowType = {n}", sort="status:desc|startTime:asc")
    expected = sorted(fleet.wf, key=lambda w: (w["status"], -w["startTime"]), reverse=True)
    assert ids(two_desc) == [w["workflowId"] for w in expected]
    by_corr = search(http, query=f"workflowType = {n}", sort="correlationId:DESC")
    assert [s["correlationId"] for s in by_corr["results"]] == ["x-4", "c-3", "c-2", "c-1", "c-0"]
    # unknown sort fields and directions are ignored
    assert ids(search(http, query=f"workflowType = {n}", sort="bogus:DESC|startTime:UP")) == ids(asc)


def test_paging_with_start_size_and_total_hits(http: httpx.Client, fleet: Fleet) -> None:
    n = fleet.name
    seen: list[str] = []
    for start in (0, 2, 4):
        page = search(http, query=f"workflowType = {n}", sort="startTime:ASC", start=start, size=2)
        assert page["totalHits"] == 5
        assert len(page["results"]) == min(2, 5 - start)
        seen += ids(page)
    assert seen == [w["workflowId"] for w in sorted(fleet.wf, key=lambda w: w["startTime"])]
    beyond = search(http, query=f"workflowType = {n}", start=10, size=2)
    assert beyond == {"totalHits": 5, "results": []}
    assert search(http, query=f"workflowType = {n}", size=0) == {"totalHits": 5, "results": []}
    # with freeText (the count comes from the same scan as the page)
    free = search(http, query=f"workflowType = {n}", freeText="CUSTOMER", start=1, size=2, sort="startTime:ASC")
    assert free["totalHits"] == 5 and ids(free) == seen[1:3]
    assert search(http, query=f"workflowType = {n}", freeText="customer", start=9) == {"totalHits": 5, "results": []}


# ------------------------------------------------------------------------------------------------
# shapes


def test_workflow_summary_fields(http: httpx.Client, fleet: Fleet) -> None:
    done = fleet.wf[0]
    (s,) = search(http, query=f"workflowId = {done['workflowId']}")["results"]
    assert s["workflowType"] == fleet.name and s["version"] == 1 and s["workflowId"] == done["workflowId"]
    assert s["correlationId"] == "c-0" and s["status"] == "COMPLETED"
    for field in ("startTime", "updateTime", "endTime"):
        assert ISO.match(s[field]), (field, s[field])
    assert s["executionTime"] == done["endTime"] - done["startTime"]
    assert s["input"] == f"{{customer={fleet.alice}, amount=10}}"  # Java Map.toString()
    assert s["inputSize"] == len(s["input"]) and s["outputSize"] == len(s["output"])
    assert s["failedReferenceTaskNames"] == "" and s["failedTaskNames"] == []
    assert s["priority"] == 0 and s["taskToDomain"] == {} and s["parentWorkflowId"] == ""
    assert s["classifier"] == "workflow"
    assert "reasonForIncompletion" not in s  # nulls are omitted
    (running,) = search(http, query=f"workflowId = {fleet.by_corr('x-4')}")["results"]
    assert "endTime" not in running and running["executionTime"] == 0
    assert running["output"] == "{}" and running["outputSize"] == 2
    (failed,) = search(http, query=f"workflowId = {fleet.by_corr('c-3')}")["results"]
    assert failed["status"] == "FAILED" and "card declined" in failed["reasonForIncompletion"]
    assert failed["failedReferenceTaskNames"] == fleet.t1 and failed["failedTaskNames"] == [fleet.t1]


def test_search_v2_returns_workflows_without_tasks(http: httpx.Client, fleet: Fleet) -> None:
    n = fleet.name
    v1 = search(http, query=f"workflowType = {n}", sort="startTime:ASC")
    v2 = search(http, "/workflow/search-v2", query=f"workflowType = {n}", sort="startTime:ASC")
    assert v2["totalHits"] == 5 and ids(v2) == ids(v1)
    first = v2["results"][0]
    expected = fleet.wf[0]
    assert first["tasks"] == [] and first["workflowDefinition"]["name"] == n
    assert first["input"] == {"customer": fleet.alice, "amount": 10}  # a map, not a string
    for field in ("status", "startTime", "endTime", "correlationId", "output", "workflowName", "workflowVersion"):
        assert first[field] == expected[field], field
    page = search(http, "/workflow/search-v2", query=f"workflowType = {n}", start=3, size=5)
    assert page["totalHits"] == 5 and len(page["results"]) == 2
    body = assert_error(http.get("/workflow/search-v2", params={"size": 5001}), 400)
    assert body["validationErrors"] == [
        {
            "path": "searchWorkflowsV2.size",
            "message": "Cannot return more than 5000 workflows. Please use pagination.",
            "invalidValue": "5001",
        }
    ]


# ------------------------------------------------------------------------------------------------
# task search


def test_task_search_by_type_status_and_workflow_type(http: httpx.Client, fleet: Fleet) -> None:
    done = search(http, "/tasks/search", query=f"taskType = {fleet.t1} AND status = COMPLETED")
    assert done["totalHits"] == 2
    assert sorted(ids(done)) == sorted([fleet.by_corr("c-0"), fleet.by_corr("c-1")])
    failed = search(http, "/tasks/search", query=f"taskType = {fleet.t1} AND status IN (FAILED,TIMED_OUT)")
    assert ids(failed) == [fleet.by_corr("c-3")]
    both = search(http, "/tasks/search", query=f"taskType IN ({fleet.t1},{fleet.t2})")
    assert both["totalHits"] == 5 + 1 + 2  # t1 of the five; t1 of the other type (queued); t2 of c-0 and c-1
    scoped = search(http, "/tasks/search", query=f"workflowType = {fleet.name} AND taskType = {fleet.t2}")
    assert sorted(ids(scoped)) == sorted([fleet.by_corr("c-0"), fleet.by_corr("c-1")])
    by_def = search(http, "/tasks/search", query=f"taskDefName IN ({fleet.t2}) AND status = 'IN_PROGRESS'")
    assert ids(by_def) == [fleet.by_corr("c-1")]
    # sorted and paged
    pages = [
        search(http, "/tasks/search", query=f"taskType = {fleet.t1}", sort="updateTime:DESC", start=s, size=3)
        for s in (0, 3)
    ]
    assert [p["totalHits"] for p in pages] == [6, 6]
    times = [t["updateTime"] for p in pages for t in p["results"]]
    assert len(times) == 6 and times == sorted(times, reverse=True)
    task_id = pages[0]["results"][0]["taskId"]
    assert ids(search(http, "/tasks/search", query=f'taskId="{task_id}"'), "taskId") == [task_id]
    assert search(http, "/tasks/search", query=f"taskType = {fleet.t1}", freeText=fleet.alice)["totalHits"] == 1


def test_task_summary_and_v2_shapes(http: httpx.Client, fleet: Fleet) -> None:
    wid = fleet.by_corr("c-0")
    (s,) = search(http, "/tasks/search", query=f"taskType = {fleet.t1} AND status = COMPLETED",
                  freeText=wid)["results"]  # fmt: skip
    full = next(t for t in get_workflow(http, wid)["tasks"] if t["taskType"] == fleet.t1)
    assert s["taskId"] == full["taskId"] and s["workflowId"] == wid and s["workflowType"] == fleet.name
    assert s["taskType"] == fleet.t1 and s["taskDefName"] == fleet.t1 and s["status"] == "COMPLETED"
    assert s["correlationId"] == "c-0" and s["workflowPriority"] == 0
    for field in ("scheduledTime", "startTime", "updateTime", "endTime"):
        assert ISO.match(s[field]), (field, s[field])
    assert s["executionTime"] == full["endTime"] - full["startTime"]
    assert s["queueWaitTime"] == full["startTime"] - full["scheduledTime"]
    assert s["input"] == f"{{customer={fleet.alice}}}" and s["output"] == "{ok=true}"
    # a task nobody polled: unset times are formatted too (the epoch)
    name, t = uid("srch_q"), uid("srch_q_t")
    assert http.post("/metadata/workflow", json=workflow_def(name, [simple_task(t)])).status_code == 200
    assert http.post(f"/workflow/{name}", json={}).status_code == 200
    (queued,) = search(http, "/tasks/search", query=f"taskType = {t} AND status = SCHEDULED")["results"]
    assert queued["startTime"] == "1970-01-01T00:00:00.000Z" and queued["endTime"] == "1970-01-01T00:00:00.000Z"
    assert queued["executionTime"] == 0 and queued["queueWaitTime"] == 0
    # v2: full Task objects, with their workflowTask
    v2 = search(http, "/tasks/search-v2", query=f"taskType = {fleet.t1} AND status = COMPLETED", sort="startTime:ASC")
    assert v2["totalHits"] == 2
    t = next(t for t in v2["results"] if t["taskId"] == full["taskId"])
    assert t["workflowTask"]["taskReferenceName"] == fleet.t1 and t["inputData"] == {"customer": fleet.alice}
    assert t["outputData"] == {"ok": True} and t["workflowInstanceId"] == wid
    assert search(http, "/tasks/search", query=f"taskType = {fleet.t1}", size=6000)["totalHits"] == 6  # no cap


def test_search_by_tasks(http: httpx.Client, fleet: Fleet) -> None:
    found = search(http, "/workflow/search-by-tasks", query=f"taskType = {fleet.t1} AND status = COMPLETED",
                   sort="startTime:ASC")  # fmt: skip
    assert ids(found) == [fleet.by_corr("c-0"), fleet.by_corr("c-1")]
    assert found["totalHits"] == 2 and found["results"][0]["workflowType"] == fleet.name
    # two matching tasks of one workflow: listed once; totalHits as conductor-oss counts it
    wid = fleet.by_corr("c-0")
    dup = search(http, "/workflow/search-by-tasks", query=f"taskType IN ({fleet.t1},{fleet.t2})", freeText=wid)
    assert ids(dup) == [wid] and dup["totalHits"] == 1
    v2 = search(http, "/workflow/search-by-tasks-v2", query=f"taskType = {fleet.t1} AND status = FAILED")
    assert ids(v2) == [fleet.by_corr("c-3")] and v2["results"][0]["tasks"] == []


# ------------------------------------------------------------------------------------------------
# filters from request parameters, consistency, errors


def test_top_level_only_parent_workflow_id_and_classifier(http: httpx.Client) -> None:
    parent, child, t = uid("srch_parent"), uid("srch_child"), uid("srch_ct")
    assert http.post("/metadata/workflow", json=workflow_def(child, [simple_task(t)])).status_code == 200
    sub = {"name": "sub", "taskReferenceName": "sub", "type": "SUB_WORKFLOW",
           "subWorkflowParam": {"name": child, "version": 1}}  # fmt: skip
    agent = workflow_def(parent, [sub], metadata={"agent_sdk": "x"})
    assert http.post("/metadata/workflow", json=agent).status_code == 200, "register"
    pid = http.post(f"/workflow/{parent}", json={}).text
    both = f"workflowType IN ({parent},{child})"
    assert search(http, query=both)["totalHits"] == 2
    top = search(http, query=both, topLevelOnly="true")
    assert ids(top) == [pid]
    (kid,) = search(http, query=f"parentWorkflowId = {pid}")["results"]
    assert kid["workflowType"] == child and kid["parentWorkflowId"] == pid
    assert ids(search(http, query=f"workflowType = {parent} AND parentWorkflowId = ''")) == [pid]
    # classifier: derived from the definition's metadata (agent_sdk -> "agent")
    (p,) = search(http, query=f"workflowType = {parent}")["results"]
    assert p["classifier"] == "agent" and kid["classifier"] == "workflow"
    assert ids(search(http, query=both, classifier="agent")) == [pid]
    assert ids(search(http, query=both, classifier="workflow")) == [kid["workflowId"]]
    assert search(http, query=both, classifier="agent, workflow")["totalHits"] == 2
    assert ids(search(http, query=f"{both} AND classifier = 'agent'")) == [pid]


def test_search_sees_every_acknowledged_change_at_once(http: httpx.Client) -> None:
    name, t = uid("srch_now"), uid("srch_now_t")
    assert http.post("/metadata/workflow", json=workflow_def(name, [simple_task(t)])).status_code == 200
    wid = http.post(f"/workflow/{name}", json={}).text
    assert ids(search(http, query=f"workflowType = {name} AND status = RUNNING")) == [wid]  # no waiting
    (task,) = batch_poll(http, t, timeout=2000)
    complete(http, task)
    assert ids(search(http, query=f"workflowType = {name} AND status = COMPLETED")) == [wid]
    assert search(http, "/tasks/search", query=f"taskType = {t} AND status = COMPLETED")["totalHits"] == 1


@pytest.mark.parametrize(
    ("query", "clause"),
    [
        ("status != FAILED", "status != FAILED"),  # not in the SQL index's grammar
        ("workflowType = x AND status != RUNNING", "status != RUNNING"),
        ("status in (RUNNING)", "status in (RUNNING)"),  # operators are upper case
        ("status IS NULL", "status IS NULL"),
        ("!!!", "!!!"),
        ("startTime > yesterday", "startTime > yesterday"),  # epoch milliseconds expected
        ("startTime >= 5", "startTime >= 5"),
    ],
)
def test_bad_query_is_400(http: httpx.Client, query: str, clause: str) -> None:
    for path in ("/workflow/search", "/workflow/search-v2", "/tasks/search", "/tasks/search-v2"):
        assert_error(http.get(path, params={"query": query}), 400, f"Incorrectly formatted query string: {clause}")


def test_or_is_not_an_operator(http: httpx.Client, fleet: Fleet) -> None:
    """conductor-oss's SQL index has no OR: the rest of the clause is the value."""
    body = search(http, query=f"workflowType = {fleet.name} AND correlationId = c-0 OR correlationId = c-1")
    assert body == {"totalHits": 0, "results": []}


def test_size_limits(http: httpx.Client) -> None:
    body = assert_error(http.get("/workflow/search", params={"size": 5001}), 400)
    assert body["validationErrors"][0]["path"] == "searchWorkflows.size"
    assert http.get("/workflow/search", params={"size": 5000, "query": "workflowType = nothing"}).status_code == 200
    assert_error(http.get("/workflow/search", params={"size": "lots"}), 500)  # a type mismatch, as Spring
    assert_error(http.get("/workflow/search", params={"start": -1}), 400)
