"""Synchronous execution, signals, sync update by reference and mock-driven test runs (contract 7.11,
7.12; conductor-oss ``WorkflowResource.executeWorkflow`` / ``testWorkflow``, ``TaskResource``
``updateTaskSync`` / ``signalWorkflowTask*``, ``WorkflowSignalResponder``, ``NotificationResult``,
``WorkflowTestService``)."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from tests.conftest import ServerProcess
from tests.server.util import (
    JSON,
    assert_empty_200,
    assert_error,
    batch_poll,
    complete,
    get_workflow,
    poll_one,
    register_chain,
    simple_task,
    start,
    uid,
    workflow_def,
)

#: SignalResponse fields (common) and the two concrete shapes, as conductor-oss serialises them
COMMON = {"responseType", "targetWorkflowId", "targetWorkflowStatus", "requestId", "workflowId", "input",
          "output", "signalTimeout"}  # fmt: skip
WORKFLOW_RUN = COMMON | {"priority", "variables", "tasks", "createTime", "status", "updateTime"}
TASK_RUN = COMMON | {"taskType", "taskId", "referenceTaskName", "retryCount", "taskDefName", "workflowType",
                     "priority", "createTime", "updateTime", "status"}  # fmt: skip


def register(http: httpx.Client, wd: dict[str, Any]) -> None:
    r = http.post("/metadata/workflow", json=wd)
    assert r.status_code == 200, r.text


def execute(
    http: httpx.Client, name: str, version: int = 1, body: dict[str, Any] | None = None, **params: Any
) -> httpx.Response:
    return http.post(f"/workflow/execute/{name}/{version}", json=body or {"input": {}}, params=params)


def ok(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(JSON), r.headers
    body: dict[str, Any] = r.json()
    return body


def wait_task(ref: str) -> dict[str, Any]:
    """A WAIT that waits for a signal (no duration / until)."""
    return {"name": ref, "taskReferenceName": ref, "type": "WAIT"}


def inline(ref: str, expression: str, **inputs: Any) -> dict[str, Any]:
    return {
        "name": ref,
        "taskReferenceName": ref,
        "type": "INLINE",
        "inputParameters": {"evaluatorType": "graaljs", "expression": expression, **inputs},
    }


def by_ref(wf: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["referenceTaskName"]: t for t in wf["tasks"]}


# ------------------------------------------------------------------------------------------------
# POST /api/workflow/execute/{name}/{version}


def test_execute_of_system_tasks_only_answers_completed_at_once(http: httpx.Client) -> None:
    name = uid("exec_sys")
    for version, factor in ((1, 2), (2, 3)):
        register(
            http,
            workflow_def(
                name,
                [inline("calc", f"$.x * {factor}", x="${workflow.input.x}")],
                version=version,
                outputParameters={"y": "${calc.output.result}"},
            ),
        )
    began = time.monotonic()
    # version 0 is the latest; the body's name and version are overwritten by the path
    body = {"name": "not-this-one", "version": 1, "input": {"x": 7}, "correlationId": "corr-1"}
    run = ok(execute(http, name, 0, body, requestId="req-42", waitForSeconds=0))
    assert time.monotonic() - began < 5
    assert set(run) == WORKFLOW_RUN | {"correlationId"}
    assert run["responseType"] == "TARGET_WORKFLOW" and run["requestId"] == "req-42"
    assert run["status"] == run["targetWorkflowStatus"] == "COMPLETED"
    assert run["workflowId"] == run["targetWorkflowId"] and run["signalTimeout"] is False
    assert run["output"] == {"y": 21} and run["input"] == {"x": 7} and run["correlationId"] == "corr-1"
    assert [(t["referenceTaskName"], t["status"]) for t in run["tasks"]] == [("calc", "COMPLETED")]
    assert run["createTime"] > 0 and run["updateTime"] >= run["createTime"] and run["priority"] == 0
    stored = get_workflow(http, run["workflowId"])
    assert stored["status"] == "COMPLETED" and stored["workflowVersion"] == 2

    # no requestId (the SDK sends the literal "None"): a random UUID is echoed
    run = ok(execute(http, name, 1, {"input": {"x": 1}}, requestId="None", waitUntilTaskRef="None"))
    assert len(run["requestId"]) == 36 and run["output"] == {"y": 2}

    # a BLOCKING_TASK answer has no task to describe when the workflow ends without one: 500 upstream
    assert_error(execute(http, name, 1, {"input": {"x": 1}}, returnStrategy="BLOCKING_TASK"), 500,
                 "No blocking task")  # fmt: skip
    assert_error(execute(http, name, 1, {"input": {"x": 1}}, returnStrategy="NOPE"), 500, "NOPE")
    assert_error(execute(http, uid("missing"), 1), 404, "No such workflow defined")


def test_execute_with_an_inline_definition_marks_the_input_dynamic(http: httpx.Client) -> None:
    name = uid("exec_inline")
    wd = workflow_def(name, [inline("calc", "$.x + 1", x="${workflow.input.x}")],
                      outputParameters={"y": "${calc.output.result}"})  # fmt: skip
    run = ok(execute(http, name, 1, {"input": {"x": 1}, "workflowDef": wd}))
    assert run["status"] == "COMPLETED" and run["output"] == {"y": 2}
    assert run["input"] == {"x": 1, "_systemMetadata": {"dynamic": True}}


def test_execute_returns_once_the_awaited_task_has_ended(http: httpx.Client, server: ServerProcess) -> None:
    name, t1, t2 = uid("exec_ref"), uid("t"), uid("t")
    register_chain(http, name, [t1, t2])
    got: dict[str, Any] = {}
    answered = threading.Event()

    def executor() -> None:
        with httpx.Client(base_url=server.api, timeout=30) as c:
            got["response"] = execute(c, name, 1, {"input": {"n": 1}}, waitUntilTaskRef=f" other, {t1}",
                                      waitForSeconds=20)  # fmt: skip
        answered.set()

    thread = threading.Thread(target=executor)
    thread.start()
    task = poll_one(http, t1, timeout=5000)  # scheduled by the execute request, which is now waiting
    assert not answered.is_set()
    complete(http, task, {"done": 1})
    assert answered.wait(10), "execute did not answer after its task ended"
    thread.join(5)
    run = ok(got["response"])
    assert run["workflowId"] == task["workflowInstanceId"] and run["signalTimeout"] is False
    assert run["status"] == "RUNNING"
    tasks = by_ref(run)
    assert tasks[t1]["status"] == "COMPLETED" and tasks[t1]["outputData"] == {"done": 1}
    assert tasks[t2]["status"] == "SCHEDULED"
    http.delete(f"/workflow/{run['workflowId']}")


def test_execute_times_out_with_the_current_state(http: httpx.Client) -> None:
    name, t1 = uid("exec_timeout"), uid("t")
    register_chain(http, name, [t1])
    began = time.monotonic()
    run = ok(execute(http, name, 1, waitForSeconds=1))
    elapsed = time.monotonic() - began
    assert 0.9 <= elapsed < 5, elapsed
    assert run["signalTimeout"] is True and run["status"] == "RUNNING"
    assert run["responseType"] == "TARGET_WORKFLOW" and set(run) == WORKFLOW_RUN
    assert [t["status"] for t in run["tasks"]] == ["SCHEDULED"]
    http.delete(f"/workflow/{run['workflowId']}")


def test_each_return_strategy_describes_its_subject(http: httpx.Client) -> None:
    """A WAIT inside a sub-workflow blocks the parent: each strategy answers about a different
    subject; all answer at once."""
    child, parent = uid("exec_child"), uid("exec_parent")
    register(http, workflow_def(child, [wait_task("hold")]))
    sub = {"name": "sub", "taskReferenceName": "sub", "type": "SUB_WORKFLOW",
           "subWorkflowParam": {"name": child, "version": 1}}  # fmt: skip
    register(http, workflow_def(parent, [sub]))
    runs = {}
    for strategy in ("TARGET_WORKFLOW", "BLOCKING_WORKFLOW", "BLOCKING_TASK", "BLOCKING_TASK_INPUT"):
        began = time.monotonic()
        runs[strategy] = ok(execute(http, parent, 1, {"input": {"k": strategy}}, returnStrategy=strategy))
        assert time.monotonic() - began < 5
    for strategy, run in runs.items():
        assert run["responseType"] == strategy and run["signalTimeout"] is False
        assert run["targetWorkflowStatus"] == "RUNNING"
        parent_wf = get_workflow(http, run["targetWorkflowId"])
        assert parent_wf["input"] == {"k": strategy}
        child_id = by_ref(parent_wf)["sub"]["subWorkflowId"]
        child_wf = get_workflow(http, child_id)
        if strategy == "TARGET_WORKFLOW":
            assert set(run) == WORKFLOW_RUN and run["workflowId"] == run["targetWorkflowId"]
            assert [t["taskType"] for t in run["tasks"]] == ["SUB_WORKFLOW"] and run["status"] == "RUNNING"
        elif strategy == "BLOCKING_WORKFLOW":
            assert set(run) == WORKFLOW_RUN and run["workflowId"] == child_id != run["targetWorkflowId"]
            assert [(t["taskType"], t["status"]) for t in run["tasks"]] == [("WAIT", "IN_PROGRESS")]
        else:
            hold = by_ref(child_wf)["hold"]
            assert set(run) == TASK_RUN and run["workflowId"] == child_id
            assert run["taskId"] == hold["taskId"] and run["referenceTaskName"] == "hold"
            assert run["taskType"] == "WAIT" and run["status"] == "IN_PROGRESS"
            assert run["input"] == hold["inputData"] and run["createTime"] == hold["startTime"]
            assert run["workflowType"] == child

    # signal on the parent reaches the WAIT in its sub-workflow (depth-first): both complete
    target = runs["TARGET_WORKFLOW"]["workflowId"]
    assert_empty_200(http.post(f"/tasks/{target}/COMPLETED/signal", json={"answer": 42}))
    parent_wf = get_workflow(http, target)
    assert parent_wf["status"] == "COMPLETED"
    child_wf = get_workflow(http, by_ref(parent_wf)["sub"]["subWorkflowId"])
    assert by_ref(child_wf)["hold"]["outputData"] == {"answer": 42}
    for strategy in ("BLOCKING_WORKFLOW", "BLOCKING_TASK", "BLOCKING_TASK_INPUT"):
        http.delete(f"/workflow/{runs[strategy]['targetWorkflowId']}")


# ------------------------------------------------------------------------------------------------
# Signals: POST /api/tasks/{workflowId}/{status}/signal[/sync]


def test_execute_stops_at_a_wait_and_signal_sync_moves_to_the_next_one(http: httpx.Client) -> None:
    name = uid("signal")
    register(
        http,
        workflow_def(
            name,
            [wait_task("first"), inline("calc", "$.a + 1", a="${first.output.a}"), wait_task("second")],
            outputParameters={"calc": "${calc.output.result}", "last": "${second.output.b}"},
        ),
    )
    run = ok(execute(http, name))
    wid = run["workflowId"]
    assert run["status"] == "RUNNING" and run["signalTimeout"] is False
    assert [(t["referenceTaskName"], t["status"]) for t in run["tasks"]] == [("first", "IN_PROGRESS")]

    run = ok(http.post(f"/tasks/{wid}/COMPLETED/signal/sync", json={"a": 1}))
    assert set(run) == WORKFLOW_RUN and run["responseType"] == "TARGET_WORKFLOW"
    assert run["workflowId"] == run["targetWorkflowId"] == wid and run["signalTimeout"] is False
    assert len(run["requestId"]) == 36
    tasks = by_ref(run)
    assert tasks["first"]["status"] == "COMPLETED" and tasks["first"]["outputData"] == {"a": 1}
    assert tasks["calc"]["outputData"] == {"result": 2} and tasks["second"]["status"] == "IN_PROGRESS"

    run = ok(http.post(f"/tasks/{wid}/COMPLETED/signal/sync", json={"b": "x"},
                       params={"returnStrategy": "BLOCKING_WORKFLOW", "timeoutMillis": 2000}))  # fmt: skip
    assert run["status"] == run["targetWorkflowStatus"] == "COMPLETED"
    assert run["responseType"] == "BLOCKING_WORKFLOW" and run["output"] == {"calc": 2, "last": "x"}

    # nothing left to signal
    assert_error(http.post(f"/tasks/{wid}/COMPLETED/signal/sync", json={}), 404,
                 f"Found no blocked task in workflow {wid} to signal")  # fmt: skip
    assert_empty_200(http.post(f"/tasks/{wid}/COMPLETED/signal", json={}))


def test_signal_fails_a_timed_wait_too_and_waits_are_found_in_order(http: httpx.Client) -> None:
    """``signal`` targets the first open WAIT even with a duration (only the execute wait loop
    ignores timed WAITs)."""
    name = uid("signal_timed")
    nap = {**wait_task("nap"), "inputParameters": {"duration": "1 hour"}}
    register(http, workflow_def(name, [nap]))
    wid = start(http, name)
    assert_empty_200(http.post(f"/tasks/{wid}/FAILED/signal", json={"why": "no"}))
    wf = get_workflow(http, wid)
    assert wf["status"] == "FAILED"
    assert wf["tasks"][0]["status"] == "FAILED" and wf["tasks"][0]["outputData"] == {"why": "no"}


def test_signal_without_a_pending_wait(http: httpx.Client) -> None:
    name, t1 = uid("signal_none"), uid("t")
    register_chain(http, name, [t1])
    wid = start(http, name)
    assert_empty_200(http.post(f"/tasks/{wid}/COMPLETED/signal", json={"x": 1}))  # a no-op
    assert [t["status"] for t in get_workflow(http, wid)["tasks"]] == ["SCHEDULED"]
    body = assert_error(http.post(f"/tasks/{wid}/COMPLETED/signal/sync", json={}), 404)
    assert body["message"] == f"Found no blocked task in workflow {wid} to signal"
    missing = uid("wf")
    assert_error(http.post(f"/tasks/{missing}/COMPLETED/signal", json={}), 404,
                 f"No such workflow found by id: {missing}")  # fmt: skip
    assert_error(http.post(f"/tasks/{wid}/DONE/signal", json={}), 500, "DONE")
    http.delete(f"/workflow/{wid}")


# ------------------------------------------------------------------------------------------------
# POST /api/tasks/{workflowId}/{taskRefName}/{status}/sync


def test_update_by_reference_sync_answers_with_the_workflow(http: httpx.Client) -> None:
    name, t1, t2 = uid("wf"), uid("t"), uid("t")
    register_chain(http, name, [t1, t2])
    wid = start(http, name)
    r = http.post(f"/tasks/{wid}/{t1}/COMPLETED/sync", params={"workerid": "hook"}, json={"a": 1})
    wf = ok(r)
    assert wf["workflowId"] == wid and wf["status"] == "RUNNING" and "workflowDefinition" in wf
    states = [(t["referenceTaskName"], t["status"]) for t in wf["tasks"]]
    assert states == [(t1, "COMPLETED"), (t2, "SCHEDULED")]
    assert wf["tasks"][0]["outputData"] == {"a": 1} and wf["tasks"][0]["workerId"] == "hook"
    assert get_workflow(http, wid)["tasks"] == wf["tasks"]

    body = assert_error(http.post(f"/tasks/{wid}/{t1}/COMPLETED/sync", json={}), 404)
    assert body["message"] == f"Found no running task {t1} of workflow {wid} to update"
    missing = uid("wf")
    body = assert_error(http.post(f"/tasks/{missing}/{t1}/COMPLETED/sync", json={}), 404)
    assert body["message"] == f"Found no running task {t1} of workflow {missing} to update"
    assert_error(http.post(f"/tasks/{wid}/{t2}/DONE/sync", json={}), 500)

    wf = ok(http.post(f"/tasks/{wid}/{t2}/COMPLETED/sync", json={"b": 2}))
    assert wf["status"] == "COMPLETED"


# ------------------------------------------------------------------------------------------------
# POST /api/workflow/test


def switch_workflow(http: httpx.Client) -> tuple[str, str, str, str]:
    """a (worker) -> SWITCH on a's output -> left: bl (worker) | right: br (worker)."""
    name, ta, tl, tr = uid("wtest"), uid("ta"), uid("tl"), uid("tr")
    switch = {
        "name": "route",
        "taskReferenceName": "route",
        "type": "SWITCH",
        "evaluatorType": "value-param",
        "expression": "side",
        "inputParameters": {"side": "${a.output.side}"},
        "decisionCases": {"left": [simple_task(tl, "bl")], "right": [simple_task(tr, "br")]},
    }
    wd = workflow_def(name, [simple_task(ta, "a"), switch],
                      outputParameters={"side": "${a.output.side}", "v": "${br.output.v}"})  # fmt: skip
    register(http, wd)
    return name, ta, tl, tr


def test_workflow_test_runs_on_mocks_to_completion(http: httpx.Client) -> None:
    name, ta, tl, tr = switch_workflow(http)
    request = {
        "name": name,
        "version": 1,
        "input": {"k": 1},
        "taskRefToMockOutput": {
            "a": [{"status": "COMPLETED", "output": {"side": "right"}}],
            "bl": [{"output": {"v": "never"}}],
            "br": [{"output": {"v": 2}, "executionTime": 1500, "queueWaitTime": 500}],
        },
    }
    wf = ok(http.post("/workflow/test", json=request))
    assert wf["status"] == "COMPLETED" and wf["output"] == {"side": "right", "v": 2}
    assert [(t["referenceTaskName"], t["status"]) for t in wf["tasks"]] == [
        ("a", "COMPLETED"), ("route", "COMPLETED"), ("br", "COMPLETED"),
    ]  # fmt: skip
    tasks = by_ref(wf)
    assert tasks["a"]["outputData"] == {"side": "right"} and tasks["br"]["outputData"] == {"v": 2}
    br = tasks["br"]
    assert br["endTime"] - br["startTime"] >= 1500 and br["startTime"] - br["scheduledTime"] >= 500
    domain = wf["taskToDomain"]["*"]
    assert domain and tasks["a"]["domain"] == domain and br["domain"] == domain
    assert get_workflow(http, wf["workflowId"])["status"] == "COMPLETED"


def test_workflow_test_stops_at_a_task_without_mock_and_workers_never_see_it(http: httpx.Client) -> None:
    name, ta, tl, tr = switch_workflow(http)
    request = {"name": name, "version": 1, "taskRefToMockOutput": {"a": [{"output": {"side": "left"}}]}}
    wf = ok(http.post("/workflow/test", json=request))
    assert wf["status"] == "RUNNING"
    assert [(t["referenceTaskName"], t["status"]) for t in wf["tasks"]] == [
        ("a", "COMPLETED"), ("route", "COMPLETED"), ("bl", "SCHEDULED"),
    ]  # fmt: skip
    domain = wf["taskToDomain"]["*"]
    assert by_ref(wf)["bl"]["domain"] == domain
    assert batch_poll(http, tl, timeout=100, workerid="real-worker") == []  # real workers: nothing
    polled = batch_poll(http, tl, timeout=100, workerid="w", domain=domain)  # it waits in the test domain
    assert [t["workflowInstanceId"] for t in polled] == [wf["workflowId"]]
    http.delete(f"/workflow/{wf['workflowId']}")


def test_workflow_test_drives_sub_workflows_with_their_own_mocks(http: httpx.Client) -> None:
    child, parent, tc, tp = uid("wtest_child"), uid("wtest_parent"), uid("tc"), uid("tp")
    register(http, workflow_def(child, [simple_task(tc, "c")], outputParameters={"c": "${c.output.c}"}))
    sub = {"name": "sub", "taskReferenceName": "sub", "type": "SUB_WORKFLOW",
           "subWorkflowParam": {"name": child, "version": 1}}  # fmt: skip
    register(http, workflow_def(parent, [sub, simple_task(tp, "p", c="${sub.output.c}")]))
    request = {
        "name": parent,
        "taskRefToMockOutput": {"p": [{"status": "FAILED", "output": {"try": 1}}, {"output": {"try": 2}}]},
        "subWorkflowTestRequest": {"sub": {"taskRefToMockOutput": {"c": [{"output": {"c": "from-child"}}]}}},
    }
    wf = ok(http.post("/workflow/test", json=request))
    assert wf["status"] == "COMPLETED"
    attempts = [t for t in wf["tasks"] if t["referenceTaskName"] == "p"]
    states = [(t["status"], t["outputData"]) for t in attempts]
    assert states == [("FAILED", {"try": 1}), ("COMPLETED", {"try": 2})]
    assert attempts[0]["inputData"] == {"c": "from-child"}
    child_wf = get_workflow(http, by_ref(wf)["sub"]["subWorkflowId"])
    assert child_wf["status"] == "COMPLETED" and child_wf["output"] == {"c": "from-child"}
    assert child_wf["taskToDomain"]["*"] == wf["taskToDomain"]["*"]

    assert_error(http.post("/workflow/test", json={"name": parent, "taskRefToMockOutput": {"p": {}}}), 500)
    assert_error(http.post("/workflow/test", json={"name": uid("missing")}), 404)


# ------------------------------------------------------------------------------------------------
# Wire details: unknown task ids, priority out of range


def test_unknown_task_and_priority_messages(http: httpx.Client) -> None:
    missing = uid("task")
    body = assert_error(http.get(f"/tasks/{missing}"), 404)
    assert body["message"] == f"Task not found for taskId: {missing}"
    name, t1 = uid("wf"), uid("t")
    register_chain(http, name, [t1])
    wid = start(http, name)
    result = {"workflowInstanceId": wid, "taskId": missing, "status": "COMPLETED"}
    body = assert_error(http.post("/tasks", json=result), 404)
    assert body["message"] == f"No such task found by id: {missing}"
    body = assert_error(http.post("/tasks", json={**result, "workflowInstanceId": "nowhere"}), 404)
    assert body["message"] == "No such workflow found by id: nowhere"

    r = http.post(f"/workflow/{name}", params={"priority": 100}, json={})
    assert r.status_code == 400, r.text
    assert r.json()["validationErrors"] == [
        {"path": "startWorkflow.priority", "message": "99 is the maximum priority value", "invalidValue": "100"}
    ]
    r = http.post(f"/workflow/{name}", params={"priority": -1}, json={})
    assert r.json()["validationErrors"][0]["message"] == "0 is the minimum priority value"
    r = http.post("/workflow", json={"name": name, "priority": 100})
    assert r.status_code == 400, r.text
    assert r.json()["validationErrors"][0]["message"] == "priority: 100 should be maximum 99"
    http.delete(f"/workflow/{wid}")


def test_workflow_test_mock_execution_time_meets_the_task_timeout(http: httpx.Client) -> None:
    """``executionTime`` backdates the task: a still-running mock past ``timeoutSeconds`` times out."""
    slow, name = uid("slow"), uid("wtest_timeout")
    r = http.post("/metadata/taskdefs", json=[{"name": slow, "timeoutSeconds": 1, "responseTimeoutSeconds": 1,
                                               "timeoutPolicy": "TIME_OUT_WF", "retryCount": 0}])  # fmt: skip
    assert r.status_code == 200, r.text
    register(http, workflow_def(name, [simple_task(slow, "s")]))
    mock = {"status": "IN_PROGRESS", "output": {"p": 1}, "executionTime": 5000}
    wf = ok(http.post("/workflow/test", json={"name": name, "taskRefToMockOutput": {"s": [mock]}}))
    assert wf["status"] == "TIMED_OUT"
    assert [(t["status"], t["outputData"]) for t in wf["tasks"]] == [("TIMED_OUT", {"p": 1})]
    assert "Task timed out after 5 seconds" in wf["tasks"][0]["reasonForIncompletion"]
