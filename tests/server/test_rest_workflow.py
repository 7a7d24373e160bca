"""REST contract: /api/workflow (start, get, status, correlated, running, search, terminate, remove)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import wait_until
from tests.server.util import (
    assert_empty_200,
    assert_error,
    batch_poll,
    complete,
    get_workflow,
    register_chain,
    simple_task,
    start,
    uid,
    workflow_def,
)


def test_start_by_name_returns_a_text_id_and_schedules_the_first_task(http: httpx.Client) -> None:
    name, t1 = uid("wf"), uid("t")
    register_chain(http, name, [t1])
    wid = start(http, name, {"x": 1}, correlationId="c-1")
    wf = get_workflow(http, wid)
    assert (wf["workflowId"], wf["status"], wf["input"], wf["correlationId"]) == (
        wid,
        "RUNNING",
        {"x": 1},
        "c-1",
    )
    assert wf["workflowName"] == name and wf["workflowVersion"] == 1
    assert [(t["referenceTaskName"], t["status"]) for t in wf["tasks"]] == [(t1, "SCHEDULED")]
    assert wf["tasks"][0]["taskType"] == t1
    lean = get_workflow(http, wid, include_tasks=False)
    assert lean.get("tasks", []) == [] and lean["status"] == "RUNNING"


def test_start_with_start_workflow_request(http: httpx.Client) -> None:
    name, t1 = uid("wf"), uid("t")
    register_chain(http, name, [t1])
    r = http.post(
        "/workflow",
        json={"name": name, "version": 1, "input": {"k": "v"}, "correlationId": "cc", "priority": 5},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain"), r.text
    wf = get_workflow(http, r.text)
    assert (wf["input"], wf["correlationId"], wf["priority"]) == ({"k": "v"}, "cc", 5)


def test_start_with_an_inline_workflow_def(http: httpx.Client) -> None:
    name, t1 = uid("inline"), uid("t")
    request = {"name": name, "input": {"a": 1}, "workflowDef": workflow_def(name, [simple_task(t1)])}
    r = http.post("/workflow", json=request)
    assert r.status_code == 200, r.text
    wf = get_workflow(http, r.text)
    assert wf["status"] == "RUNNING" and wf["tasks"][0]["taskType"] == t1
    assert_error(http.get(f"/metadata/workflow/{name}"), 404)  # inline defs are not registered


def test_start_errors(http: httpx.Client) -> None:
    missing = uid("missing")
    assert_error(http.post(f"/workflow/{missing}", json={}), 404, missing)
    assert_error(http.post("/workflow", json={"name": missing}), 404, missing)
    assert assert_error(http.post("/workflow", json={"input": {}}), 400)["validationErrors"]
    name = uid("wf")
    register_chain(http, name, [uid("t")])
    assert_error(http.post(f"/workflow/{name}", params={"priority": 100}, json={}), 400)
    assert_error(http.post(f"/workflow/{name}", params={"priority": "high"}, json={}), 500)
    assert_error(http.post("/workflow", json={"name": name, "priority": 100}), 400)
    assert_error(http.post(f"/workflow/{name}", json=[1, 2]), 500)


def test_none_literals_are_ignored_like_the_sdk_sends_them(http: httpx.Client) -> None:
    name = uid("wf")
    register_chain(http, name, [uid("t")])
    http.post(
        "/metadata/workflow", json=workflow_def(name, [simple_task(uid("t"))], version=2)
    ).raise_for_status()
    wid = start(http, name, version="None", correlationId="None", priority="None")
    wf = get_workflow(http, wid, include_tasks=False)
    assert wf["workflowVersion"] == 2 and "correlationId" not in wf and wf["priority"] == 0


def test_get_unknown_workflow_is_404_with_the_id(http: httpx.Client) -> None:
    wid = uid("nope")
    assert_error(http.get(f"/workflow/{wid}"), 404, wid)
    assert_error(http.get(f"/workflow/{wid}/status"), 404, wid)
    assert_error(http.put(f"/workflow/decide/{wid}", json={}), 404, wid)
    assert_error(http.delete(f"/workflow/{wid}"), 404, wid)


def test_status_endpoint(http: httpx.Client) -> None:
    name = uid("wf")
    register_chain(http, name, [uid("t")])
    wid = start(http, name, correlationId="corr")
    r = http.get(f"/workflow/{wid}/status")
    assert r.json() == {"workflowId": wid, "correlationId": "corr", "status": "RUNNING"}
    full = http.get(
        f"/workflow/{wid}/status", params={"includeOutput": "true", "includeVariables": "True"}
    ).json()
    assert full["output"] == {} and full["variables"] == {}


def test_workflow_tasks_page(http: httpx.Client) -> None:
    name, t1, t2 = uid("wf"), uid("t"), uid("t")
    register_chain(http, name, [t1, t2])
    wid = start(http, name)
    complete(http, batch_poll(http, t1, timeout=2000)[0], {"n": 1})
    page = http.get(f"/workflow/{wid}/tasks", params={"start": 0, "count": 1}).json()
    assert page["totalHits"] == 2 and [t["taskType"] for t in page["results"]] == [t1]
    page = http.get(f"/workflow/{wid}/tasks", params=[("status", "scheduled")]).json()
    assert page["totalHits"] == 1 and page["results"][0]["taskType"] == t2


def test_terminate_and_remove(http: httpx.Client) -> None:
    name = uid("wf")
    register_chain(http, name, [uid("t")])
    wid = start(http, name)
    assert_error(http.delete(f"/workflow/{wid}/remove"), 400, wid)  # archiving needs a terminal workflow
    assert_empty_200(
        http.delete(f"/workflow/{wid}", params={"reason": "because", "triggerFailureWorkflow": "True"})
    )
    wf = get_workflow(http, wid)
    assert wf["status"] == "TERMINATED" and wf["reasonForIncompletion"] == "because"
    assert_empty_200(http.delete(f"/workflow/{wid}"))  # already terminated: no-op
    assert_empty_200(http.delete(f"/workflow/{wid}/remove", params={"archiveWorkflow": "True"}))
    assert_error(http.get(f"/workflow/{wid}"), 404, wid)

    running = start(http, name)
    assert_empty_200(http.delete(f"/workflow/{running}/remove", params={"archiveWorkflow": "False"}))
    assert_error(http.get(f"/workflow/{running}"), 404, running)


def test_terminate_a_completed_workflow_is_409(http: httpx.Client) -> None:
    name, t1 = uid("wf"), uid("t")
    register_chain(http, name, [t1])
    wid = start(http, name)
    complete(http, batch_poll(http, t1, timeout=2000)[0])
    assert get_workflow(http, wid)["status"] == "COMPLETED"
    assert_error(http.delete(f"/workflow/{wid}"), 409)


def test_decide(http: httpx.Client) -> None:
    name = uid("wf")
    register_chain(http, name, [uid("t")])
    wid = start(http, name)
    assert_empty_200(http.put(f"/workflow/decide/{wid}", json={}))


def test_correlated_and_running(http: httpx.Client) -> None:
    name, other = uid("wf"), uid("wf")
    register_chain(http, name, [uid("t")])
    register_chain(http, other, [uid("t")])
    a = start(http, name, correlationId="k1")
    b = start(http, name, correlationId="k1")
    c = start(http, name, correlationId="k2")
    start(http, other, correlationId="k1")
    http.delete(f"/workflow/{b}").raise_for_status()

    found = http.get(f"/workflow/{name}/correlated/k1").json()
    assert [w["workflowId"] for w in found] == [a] and found[0].get("tasks", []) == []
    closed = http.get(
        f"/workflow/{name}/correlated/k1", params={"includeClosed": "true", "includeTasks": "true"}
    ).json()
    assert sorted(w["workflowId"] for w in closed) == sorted([a, b]) and all(w["tasks"] for w in closed)

    batch = http.post(
        f"/workflow/{name}/correlated", params={"includeClosed": "True"}, json=["k1", "k2", "k3"]
    ).json()
    assert {k: sorted(w["workflowId"] for w in v) for k, v in batch.items()} == {
        "k1": sorted([a, b]), "k2": [c], "k3": [],
    }  # fmt: skip

    running = http.get(f"/workflow/running/{name}").json()
    assert sorted(running) == sorted([a, c])
    assert http.get(f"/workflow/running/{name}", params={"version": 2}).json() == []


def test_search(http: httpx.Client) -> None:
    name = uid("wf")
    register_chain(http, name, [uid("t")])
    ids = [start(http, name, correlationId=f"s{i}") for i in range(3)]
    http.delete(f"/workflow/{ids[0]}").raise_for_status()

    def search(**params: object) -> dict[str, Any]:
        r = http.get("/workflow/search", params={"queryId": "", **params})
        assert r.status_code == 200, r.text
        return r.json()

    result = search(query=f"workflowType = '{name}'")
    assert result["totalHits"] == 3 and sorted(s["workflowId"] for s in result["results"]) == sorted(ids)
    summary = result["results"][0]
    assert summary["workflowType"] == name and isinstance(summary["startTime"], str)
    running = search(query=f"workflowType = '{name}' AND status = 'RUNNING'")
    assert sorted(s["workflowId"] for s in running["results"]) == sorted(ids[1:])
    terminated = search(query=f"workflowType = '{name}' AND status IN (TERMINATED,FAILED)")
    assert [s["workflowId"] for s in terminated["results"]] == [ids[0]]
    by_corr = search(query=f"workflowType = '{name}' AND correlationId = 's2'")
    assert [s["workflowId"] for s in by_corr["results"]] == [ids[2]]
    page = search(query=f"workflowType = '{name}'", start=0, size=2, sort="startTime:DESC")
    assert page["totalHits"] == 3 and len(page["results"]) == 2

    body = assert_error(http.get("/workflow/search", params={"size": 5001}), 400)  # @Max: a constraint violation
    assert body["validationErrors"][0]["message"] == "Cannot return more than 5000 workflows. Please use pagination."
    assert_error(http.get("/workflow/search", params={"size": "lots"}), 500)


def test_completed_workflow_is_visible_to_search_and_status(http: httpx.Client) -> None:
    name, t1 = uid("wf"), uid("t")
    register_chain(http, name, [t1], outputParameters={"r": f"${{{t1}.output.r}}"})
    wid = start(http, name)
    complete(http, batch_poll(http, t1, timeout=2000)[0], {"r": 42})
    status = http.get(f"/workflow/{wid}/status", params={"includeOutput": "true"}).json()
    assert status == {"workflowId": wid, "output": {"r": 42}, "status": "COMPLETED"}
    wait_until(
        lambda: (
            http.get(
                "/workflow/search", params={"query": f"workflowType = '{name}' AND status = 'COMPLETED'"}
            ).json()["totalHits"]
            == 1
        ),
        what="completed workflow in search",
    )
