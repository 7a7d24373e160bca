"""Control verbs over the real HTTP API (contract section 7): pause, resume, retry, restart, rerun,
skip, reset callbacks, requeue, bulk, and failure workflows.

Blueprints: ``tests/fixtures/blueprints/verbs.json``. Each story asserts the task list and the
workflow after each step, and the conductor-oss status codes and messages of verbs used in the
wrong state.
"""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import wait_until
from tests.scenario.harness import Story
from tests.server.util import assert_empty_200, assert_error, batch_poll, uid, workflow_def


@pytest.fixture
def story(http: httpx.Client) -> Story:
    s = Story(http)
    s.register("verbs")
    return s


def put(http: httpx.Client, path: str) -> httpx.Response:
    return http.put(path)


# --------------------------------------------------------------------------------------------
# pause / resume


def test_pause_stops_scheduling_and_resume_goes_on(story: Story, http: httpx.Client) -> None:
    wid = story.start("linear", {"x": 1})
    assert_empty_200(put(http, f"/workflow/{wid}/pause"))
    assert story.workflow(wid)["status"] == "PAUSED"
    assert_empty_200(put(http, f"/workflow/{wid}/pause"))  # already paused: no-op
    # the task already queued can still be polled and completed...
    story.poll_and_complete("task_a", {"v": 1})
    # ...but nothing new is scheduled while paused
    assert story.summary(wid) == [("a", story.name("task_a"), "COMPLETED")]
    assert story.poll("task_b", timeout_ms=200) is None
    assert_empty_200(put(http, f"/workflow/{wid}/resume"))
    wf = story.workflow(wid)
    assert wf["status"] == "RUNNING" and wf["lastRetriedTime"] > 0
    story.poll_and_complete("task_b", {"v": 2})
    story.poll_and_complete("task_c", {"v": 3})
    assert story.wait_workflow(wid, "COMPLETED")["output"] == {"b": 2, "c": 3}


def test_pause_and_resume_in_the_wrong_state(story: Story, http: httpx.Client) -> None:
    wid = story.start("linear", {"x": 1})
    body = assert_error(put(http, f"/workflow/{wid}/resume"), 500)
    assert body["message"] == f"The workflow {wid} is not PAUSED so cannot resume. Current status is RUNNING"
    story.terminate(wid, "stop")
    name = story.name("linear")
    assert_error(put(http, f"/workflow/{wid}/pause"), 409, f"Workflow {name}.1/{wid} has ended, status cannot be updated.")
    assert_error(put(http, "/workflow/no-such-id/pause"), 404)


# --------------------------------------------------------------------------------------------
# retry


def test_retry_gives_the_failed_task_a_new_attempt(story: Story, http: httpx.Client) -> None:
    wid = story.start("linear", {"x": 1})
    body = assert_error(http.post(f"/workflow/{wid}/retry"), 404)
    assert body["message"] == "Workflow is still running.  status=RUNNING"
    story.poll_and_complete("task_a", {"v": 1})
    failed = story.poll_and_fail("task_b", "boom")
    story.wait_workflow(wid, "FAILED")
    r = http.post(f"/workflow/{wid}/retry")
    assert r.status_code == 204, r.text
    wf = story.workflow(wid)
    assert wf["status"] == "RUNNING" and wf.get("reasonForIncompletion") is None
    tasks = wf["tasks"]
    assert [(t["referenceTaskName"], t["status"], t["retryCount"]) for t in tasks] == [
        ("a", "COMPLETED", 0),
        ("b", "FAILED", 0),
        ("b", "SCHEDULED", 1),
    ]
    assert tasks[1]["retried"] is True and tasks[2]["retriedTaskId"] == failed["taskId"]
    assert tasks[2]["inputData"] == {"a": 1}  # input evaluated again
    story.poll_and_complete("task_b", {"v": 2})
    story.poll_and_complete("task_c", {"v": 3})
    story.wait_workflow(wid, "COMPLETED")
    body = assert_error(http.post(f"/workflow/{wid}/retry"), 409)
    assert body["message"].startswith("There are no retryable tasks!")


def test_retry_inside_a_fork_branch(story: Story, http: httpx.Client) -> None:
    wid = story.start("forked")
    story.poll_and_fail("task_a", "left broke")
    story.wait_workflow(wid, "FAILED")
    assert dict((ref, status) for ref, _, status in story.summary(wid)) == {
        "fork": "COMPLETED", "left": "FAILED", "right": "CANCELED", "join": "CANCELED",
    }  # fmt: skip
    assert http.post(f"/workflow/{wid}/retry").status_code == 204
    summary = story.summary(wid)
    assert ("join", "JOIN", "IN_PROGRESS") in summary  # reopened in place
    assert [s for s in summary if s[0] in ("left", "right")][-2:] == [
        ("left", story.name("task_a"), "SCHEDULED"),
        ("right", story.name("task_b"), "SCHEDULED"),
    ]
    story.poll_and_complete("task_a", {"l": 1})
    story.poll_and_complete("task_b", {"r": 2})
    story.poll_and_complete("task_c")
    wf = story.wait_workflow(wid, "COMPLETED")
    join = [t for t in wf["tasks"] if t["referenceTaskName"] == "join"][0]
    assert join["outputData"] == {"left": {"l": 1}, "right": {"r": 2}} and join["retryCount"] == 1


def _failed_parent(story: Story) -> tuple[str, str]:
    wid = story.start("parent")
    cid = story.task(wid, "sub")["subWorkflowId"]
    story.poll_and_fail("task_x", "child broke")
    story.wait_workflow(cid, "FAILED")
    story.wait_workflow(wid, "FAILED")
    return wid, cid


def test_retry_resuming_the_sub_workflow(story: Story, http: httpx.Client) -> None:
    wid, cid = _failed_parent(story)
    assert http.post(f"/workflow/{wid}/retry", params={"resumeSubworkflowTasks": "true"}).status_code == 204
    # the same child runs again (its failed task retried); the parent's SUB_WORKFLOW task reopened
    assert story.workflow(cid)["status"] == "RUNNING"
    wf = story.workflow(wid)
    assert wf["status"] == "RUNNING"
    assert [(t["referenceTaskName"], t["status"], t["subWorkflowId"]) for t in wf["tasks"]] == [
        ("sub", "IN_PROGRESS", cid)
    ]
    story.poll_and_complete("task_x")
    story.poll_and_complete("task_y", {"v": 7})
    story.wait_workflow(cid, "COMPLETED")
    story.wait_tasks(wid, lambda ts: any(t["referenceTaskName"] == "p2" for t in ts))
    story.poll_and_complete("task_c")
    wf = story.wait_workflow(wid, "COMPLETED")
    assert wf["tasks"][1]["inputData"] == {"y": 7}


def test_retry_starts_a_new_sub_workflow(story: Story, http: httpx.Client) -> None:
    wid, cid = _failed_parent(story)
    assert http.post(f"/workflow/{wid}/retry").status_code == 204
    tasks = story.tasks(wid)
    assert [(t["referenceTaskName"], t["status"]) for t in tasks] == [("sub", "FAILED"), ("sub", "IN_PROGRESS")]
    new_child = tasks[1]["subWorkflowId"]
    assert new_child and new_child != cid
    assert story.workflow(cid)["status"] == "FAILED"  # the old child is left as it was
    story.poll_and_complete("task_x")
    story.poll_and_complete("task_y", {"v": 1})
    story.wait_workflow(new_child, "COMPLETED")
    story.poll_and_complete("task_c")
    story.wait_workflow(wid, "COMPLETED")


# --------------------------------------------------------------------------------------------
# restart / rerun


def test_restart_with_the_latest_definition(story: Story, http: httpx.Client) -> None:
    wid = story.start("linear", {"x": 5}, correlationId="corr-1")
    assert_error(http.post(f"/workflow/{wid}/restart"), 409, "is not in terminal state, unable to restart.")
    for name in ("task_a", "task_b", "task_c"):
        story.poll_and_complete(name, {"v": name})
    story.wait_workflow(wid, "COMPLETED")
    # version 2: a single different task
    v2 = workflow_def(story.name("linear"), [{"name": story.name("task_c"), "taskReferenceName": "only"}], version=2)
    assert http.post("/metadata/workflow", json=v2).status_code == 200
    assert http.post(f"/workflow/{wid}/restart").status_code == 204
    wf = story.workflow(wid)
    assert (wf["status"], wf["workflowVersion"], wf["input"], wf["correlationId"]) == ("RUNNING", 1, {"x": 5}, "corr-1")
    assert story.summary(wid) == [("a", story.name("task_a"), "SCHEDULED")]
    story.terminate(wid, "again")
    assert http.post(f"/workflow/{wid}/restart", params={"useLatestDefinitions": "true"}).status_code == 204
    wf = story.workflow(wid)
    assert wf["workflowVersion"] == 2 and story.summary(wid) == [("only", story.name("task_c"), "SCHEDULED")]
    story.poll_and_complete("task_c")
    story.wait_workflow(wid, "COMPLETED")


def test_rerun_from_a_middle_task_with_new_input(story: Story, http: httpx.Client) -> None:
    wid = story.start("linear", {"x": 1})
    assert_error(http.post(f"/workflow/{wid}/rerun", json={}), 409, "unable to rerun.")
    story.poll_and_complete("task_a", {"v": 1})
    b = story.poll_and_complete("task_b", {"v": 2})
    story.poll_and_complete("task_c", {"v": 3})
    story.wait_workflow(wid, "COMPLETED")
    r = http.post(f"/workflow/{wid}/rerun", json={"reRunFromTaskId": b["taskId"], "taskInput": {"a": 99}})
    assert r.status_code == 200 and r.text == wid
    tasks = story.tasks(wid)
    assert [(t["referenceTaskName"], t["status"]) for t in tasks] == [("a", "COMPLETED"), ("b", "SCHEDULED")]
    assert tasks[1]["taskId"] == b["taskId"] and tasks[1]["inputData"] == {"a": 99}  # reset in place
    again = story.poll_and_complete("task_b", {"v": 20})
    assert again["taskId"] == b["taskId"]
    story.poll_and_complete("task_c", {"v": 30})
    assert story.wait_workflow(wid, "COMPLETED")["output"] == {"b": 20, "c": 30}
    # from the start, with new workflow input
    r = http.post(f"/workflow/{wid}/rerun", json={"workflowInput": {"x": 42}, "correlationId": "c2"})
    assert r.status_code == 200
    wf = story.workflow(wid)
    assert (wf["input"], wf["correlationId"]) == ({"x": 42}, "c2")
    assert story.summary(wid) == [("a", story.name("task_a"), "SCHEDULED")]
    assert story.poll("task_a")["inputData"] == {"x": 42}  # type: ignore[index]
    assert_error(http.post(f"/workflow/{wid}/rerun", json={"reRunFromTaskId": "nope"}), 409)


def test_rerun_an_unknown_task_is_400(story: Story, http: httpx.Client) -> None:
    wid = story.start("linear", {"x": 1})
    story.terminate(wid, "stop")
    assert_error(http.post(f"/workflow/{wid}/rerun", json={"reRunFromTaskId": "no-such-task"}), 400,
                 "Task no-such-task not found")  # fmt: skip


# --------------------------------------------------------------------------------------------
# skip, reset callbacks, requeue


def test_skip_a_task_not_reached_yet(story: Story, http: httpx.Client) -> None:
    wid = story.start("linear", {"x": 1})
    assert_empty_200(put(http, f"/workflow/{wid}/skiptask/b"))
    assert ("b", story.name("task_b"), "SKIPPED") in story.summary(wid)
    assert_error(put(http, f"/workflow/{wid}/skiptask/b"), 500, "has already been processed")
    assert_error(put(http, f"/workflow/{wid}/skiptask/zzz"), 500, "does not exist")
    story.poll_and_complete("task_a", {"v": 1})
    story.poll_and_complete("task_c", {"v": 3})  # b is jumped over
    wf = story.wait_workflow(wid, "COMPLETED")
    assert [(t["referenceTaskName"], t["status"]) for t in wf["tasks"]] == [
        ("a", "COMPLETED"), ("b", "SKIPPED"), ("c", "COMPLETED"),
    ]  # fmt: skip


def test_reset_callbacks_makes_a_waiting_task_pollable(story: Story, http: httpx.Client) -> None:
    wid = story.start("linear", {"x": 1})
    a = story.poll("task_a")
    assert a is not None
    r = http.post("/tasks", json={"workflowInstanceId": wid, "taskId": a["taskId"], "status": "IN_PROGRESS",
                                  "callbackAfterSeconds": 3600})  # fmt: skip
    assert r.status_code == 200
    assert story.poll("task_a", timeout_ms=100) is None
    assert http.post(f"/workflow/{wid}/resetcallbacks").status_code == 204
    again = story.poll("task_a")
    assert again is not None and again["taskId"] == a["taskId"]
    story.terminate(wid, "done")
    assert_error(http.post(f"/workflow/{wid}/resetcallbacks"), 409)


def test_requeue_counts_pending_worker_tasks(story: Story, http: httpx.Client) -> None:
    wids = [story.start("linear", {"x": i}) for i in range(3)]
    r = http.post(f"/tasks/queue/requeue/{story.name('task_a')}")
    assert r.status_code == 200 and r.text == "3"
    assert http.get("/tasks/queue/size", params={"taskType": story.name("task_a")}).json() == 3
    for wid in wids:
        story.terminate(wid, "done")


# --------------------------------------------------------------------------------------------
# bulk


def test_bulk_verbs_report_each_id(story: Story, http: httpx.Client) -> None:
    a, b = story.start("linear", {"x": 1}), story.start("linear", {"x": 2})
    r = http.put("/workflow/bulk/pause", json=[a, b, "missing-id"])
    assert r.status_code == 200
    res = r.json()
    assert res["bulkSuccessfulResults"] == [a, b] and list(res["bulkErrorResults"]) == ["missing-id"]
    assert {story.workflow(a)["status"], story.workflow(b)["status"]} == {"PAUSED"}
    r = http.put("/workflow/bulk/resume", json=[a, b])
    assert r.json() == {"bulkSuccessfulResults": [a, b], "bulkErrorResults": {}}
    r = http.post("/workflow/bulk/terminate", json=[a, b], params={"reason": "bulk stop"})
    assert r.json()["bulkSuccessfulResults"] == [a, b]
    assert story.workflow(a)["reasonForIncompletion"] == "bulk stop"
    r = http.post("/workflow/bulk/retry", json=[a])
    assert r.json()["bulkSuccessfulResults"] == [a] and story.workflow(a)["status"] == "RUNNING"
    r = http.request("DELETE", "/workflow/bulk/terminate-remove", json=[a])
    assert r.json()["bulkSuccessfulResults"] == [a, a]
    assert http.get(f"/workflow/{a}").status_code == 404
    assert_error(http.put("/workflow/bulk/pause", json=[]), 400)


# --------------------------------------------------------------------------------------------
# failure workflow


def test_failure_workflow_gets_the_failed_workflows_input_and_identity(http: httpx.Client, story: Story) -> None:
    handler, failing, worker = uid("on_failure"), uid("failing"), uid("fragile")
    assert http.post("/metadata/taskdefs", json=[{"name": worker, "retryCount": 0, "responseTimeoutSeconds": 60}]).status_code == 200
    assert http.post("/metadata/workflow", json=workflow_def(handler, [{"name": uid("noop"), "taskReferenceName": "n", "type": "NOOP"}])).status_code == 200
    wd = workflow_def(failing, [{"name": worker, "taskReferenceName": "w"}], failureWorkflow=handler)
    assert http.post("/metadata/workflow", json=wd).status_code == 200
    wid = http.post(f"/workflow/{failing}", json={"order": 7}).text
    [task] = batch_poll(http, worker, timeout=2000)
    story.update(task, "FAILED", reason="disk full")
    wf = story.wait_workflow(wid, "FAILED")
    fid = wf["output"]["conductor.failure_workflow"]
    failure = story.wait_workflow(fid, "COMPLETED")
    inp = failure["input"]
    assert inp["order"] == 7 and inp["workflowId"] == wid and inp["failureStatus"] == "FAILED"
    assert inp["failureTaskId"] == task["taskId"] and "disk full" in inp["reason"]
    assert inp["failedWorkflow"]["workflowId"] == wid
    # terminate through the API starts no failure workflow
    wid2 = http.post(f"/workflow/{failing}", json={}).text
    story.terminate(wid2, "stop")
    assert "conductor.failure_workflow" not in story.workflow(wid2)["output"]
    wait_until(lambda: story.workflow(wid2)["status"] == "TERMINATED")
