"""REST contract: /api/tasks (poll, update, update-v2, update by ref, logs, queues, poll data)."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from tests.conftest import ServerProcess, wait_until
from tests.server.util import (
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


def queue_size(http: httpx.Client, task_type: str) -> int:
    r = http.get("/tasks/queue/size", params={"taskType": task_type})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    return r.json()


def test_empty_polls(http: httpx.Client) -> None:
    unknown = uid("never")
    r = http.get(f"/tasks/poll/{unknown}", params={"workerid": "w"})
    assert r.status_code == 204 and r.content == b""
    r = http.get(f"/tasks/poll/batch/{unknown}", params={"count": 5, "timeout": 50})
    assert r.status_code == 200 and r.json() == []
    r = http.get(f"/tasks/poll/batch/{unknown}")  # defaults count=1, timeout=100
    assert r.status_code == 200 and r.json() == []
    assert_error(http.get(f"/tasks/poll/batch/{unknown}", params={"timeout": 5001}), 400,
                 "Long Poll Timeout value cannot be more than 5 seconds")  # fmt: skip


def test_long_poll_returns_when_a_task_is_scheduled_during_the_wait(
    http: httpx.Client, server: ServerProcess
) -> None:
    name, t1 = uid("wf"), uid("t")
    register_chain(http, name, [t1])
    got: dict[str, Any] = {}

    def poller() -> None:
        with httpx.Client(base_url=server.api, timeout=30) as c:
            began = time.monotonic()
            got["tasks"] = c.get(f"/tasks/poll/batch/{t1}", params={"timeout": 4000, "workerid": "lp"}).json()
            got["elapsed"] = time.monotonic() - began

    thread = threading.Thread(target=poller)
    thread.start()
    wait_until(
        lambda: any(
            p.get("workerId") == "lp"
            for p in http.get("/tasks/queue/polldata", params={"taskType": t1}).json()
        )
    )
    wid = start(http, name)
    thread.join(10)
    assert [t["workflowInstanceId"] for t in got["tasks"]] == [wid]
    assert got["elapsed"] < 3.5, got


def test_poll_update_next_task_until_completed(http: httpx.Client) -> None:
    name, t1, t2 = uid("wf"), uid("t"), uid("t")
    wd = workflow_def(
        name,
        [simple_task(t1, x="${workflow.input.x}"), simple_task(t2, y=f"${{{t1}.output.doubled}}")],
        outputParameters={"result": f"${{{t2}.output.result}}"},
    )
    http.post("/metadata/workflow", json=wd).raise_for_status()
    wid = start(http, name, {"x": 21})

    task = poll_one(http, t1, worker_id="worker-a")
    assert (task["status"], task["pollCount"], task["workerId"]) == ("IN_PROGRESS", 1, "worker-a")
    assert task["inputData"] == {"x": 21} and task["workflowInstanceId"] == wid and task["taskType"] == t1
    assert queue_size(http, t2) == 0
    complete(http, task, {"doubled": 42})
    assert queue_size(http, t2) == 1  # scheduled before the update was answered

    second = poll_one(http, t2)
    assert second["inputData"] == {"y": 42}
    complete(http, second, {"result": "done"})
    wf = get_workflow(http, wid)
    assert wf["status"] == "COMPLETED" and wf["output"] == {"result": "done"}
    assert [t["status"] for t in wf["tasks"]] == ["COMPLETED", "COMPLETED"]
    got = http.get(f"/tasks/{task['taskId']}").json()
    assert got["status"] == "COMPLETED" and got["outputData"] == {"doubled": 42}


def test_update_errors(http: httpx.Client) -> None:
    assert_error(http.post("/tasks", json={"taskId": "x", "status": "COMPLETED"}), 400)
    assert_error(http.post("/tasks", json={"workflowInstanceId": "x", "status": "COMPLETED"}), 400)
    missing = uid("task")
    body = assert_error(
        http.post("/tasks", json={"workflowInstanceId": "w", "taskId": missing, "status": "COMPLETED"}), 404
    )
    assert body["message"] == "No such workflow found by id: w"  # the workflow is read first, as upstream
    body = assert_error(http.get(f"/tasks/{missing}"), 404)
    assert body["message"] == f"Task not found for taskId: {missing}"
    assert_error(http.post("/tasks/update-v2", json={"taskId": "x", "status": "COMPLETED"}), 500)
    assert_error(http.post("/tasks", json=[1]), 500)


def test_update_v2_hands_back_the_next_task_of_the_same_type(http: httpx.Client) -> None:
    name, t1 = uid("wf"), uid("t")
    register_chain(http, name, [t1])
    w1, w2 = start(http, name), start(http, name)
    first = poll_one(http, t1, worker_id="v2")
    result = {"workflowInstanceId": first["workflowInstanceId"], "taskId": first["taskId"], "status": "COMPLETED",
              "workerId": "v2", "outputData": {"ok": True}}  # fmt: skip
    r = http.post("/tasks/update-v2", json=result)
    assert r.status_code == 200, r.text
    nxt = r.json()
    assert nxt["taskType"] == t1 and nxt["status"] == "IN_PROGRESS" and nxt["workerId"] == "v2"
    assert {first["workflowInstanceId"], nxt["workflowInstanceId"]} == {w1, w2}
    r = http.post("/tasks/update-v2", json={**result, "workflowInstanceId": nxt["workflowInstanceId"],
                                            "taskId": nxt["taskId"]})  # fmt: skip
    assert r.status_code == 204 and r.content == b""
    assert get_workflow(http, w1)["status"] == get_workflow(http, w2)["status"] == "COMPLETED"


def test_update_by_reference_name(http: httpx.Client) -> None:
    name, t1, t2 = uid("wf"), uid("t"), uid("t")
    register_chain(http, name, [t1, t2])
    wid = start(http, name)
    r = http.post(f"/tasks/{wid}/{t1}/COMPLETED", params={"workerid": "hook"}, json={"a": 1})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    wf = get_workflow(http, wid)
    assert r.text == wf["tasks"][0]["taskId"]
    assert wf["tasks"][0]["status"] == "COMPLETED" and wf["tasks"][0]["outputData"] == {"a": 1}
    assert wf["tasks"][1]["status"] == "SCHEDULED"
    assert_empty_200(http.post(f"/tasks/{wid}/{t1}/COMPLETED", json={}))  # nothing pending with that ref
    assert_error(http.post(f"/tasks/{wid}/{t2}/DONE", json={}), 500)


def test_in_progress_with_callback_is_redelivered_with_the_same_id(http: httpx.Client) -> None:
    name, t1 = uid("wf"), uid("t")
    register_chain(http, name, [t1])
    start(http, name)
    task = poll_one(http, t1)
    r = http.post("/tasks", json={"workflowInstanceId": task["workflowInstanceId"], "taskId": task["taskId"],
                                  "status": "IN_PROGRESS", "callbackAfterSeconds": 1, "outputData": {"p": 1}})  # fmt: skip
    assert r.status_code == 200 and r.text == task["taskId"]
    assert http.get(f"/tasks/{task['taskId']}").json()["status"] == "SCHEDULED"
    assert batch_poll(http, t1, timeout=0) == []  # not visible before the callback delay
    again = wait_until(lambda: batch_poll(http, t1, timeout=500), timeout=10, what="re-delivery")
    assert again[0]["taskId"] == task["taskId"] and again[0]["pollCount"] == 2


def test_extend_lease_does_not_requeue(http: httpx.Client) -> None:
    name, t1 = uid("wf"), uid("t")
    register_chain(http, name, [t1])
    start(http, name)
    task = poll_one(http, t1)
    r = http.post("/tasks", json={"workflowInstanceId": task["workflowInstanceId"], "taskId": task["taskId"],
                                  "status": "IN_PROGRESS", "extendLease": True})  # fmt: skip
    assert r.status_code == 200 and r.text == task["taskId"]
    assert queue_size(http, t1) == 0
    assert batch_poll(http, t1, timeout=200) == []
    got = http.get(f"/tasks/{task['taskId']}").json()
    assert got["status"] == "IN_PROGRESS" and got["pollCount"] == 1


def test_task_logs(http: httpx.Client) -> None:
    name, t1 = uid("wf"), uid("t")
    register_chain(http, name, [t1])
    start(http, name)
    task = poll_one(http, t1)
    raw = 'hello \\"world\\"\\nline2'  # what the SDK sends: json.dumps(msg).strip('"')
    r = http.post(
        f"/tasks/{task['taskId']}/log", content=raw.encode(), headers={"Content-Type": "application/json"}
    )
    assert_empty_200(r)
    assert_empty_200(http.post(f"/tasks/{task['taskId']}/log", content=b"second"))
    logs = http.get(f"/tasks/{task['taskId']}/log").json()
    assert [entry["log"] for entry in logs] == [raw, "second"]
    assert all(entry["taskId"] == task["taskId"] and entry["createdTime"] > 0 for entry in logs)

    start(http, name)
    other = poll_one(http, t1)
    r = http.get(f"/tasks/{other['taskId']}/log")
    assert r.status_code == 204 and r.content == b""


def test_queue_sizes_are_exact(http: httpx.Client) -> None:
    name, t1 = uid("wf"), uid("t")
    register_chain(http, name, [t1])
    start(http, name)
    start(http, name)
    assert queue_size(http, t1) == 2
    poll_one(http, t1)
    assert queue_size(http, t1) == 1
    poll_one(http, t1)
    assert queue_size(http, t1) == 0
    start(http, name)
    sizes = http.get("/tasks/queue/sizes", params=[("taskType", t1), ("taskType", "nothing_here")]).json()
    assert sizes == {t1: 1, "nothing_here": 0}
    assert http.get("/tasks/queue/all").json()[t1] == 1
    assert_error(http.get("/tasks/queue/size"), 500, "taskType")


def test_poll_data(http: httpx.Client) -> None:
    t1 = uid("t")
    batch_poll(http, t1, timeout=0, workerid="pd-worker")
    data = http.get("/tasks/queue/polldata", params={"taskType": t1}).json()
    assert len(data) == 1
    assert data[0]["queueName"] == t1 and data[0]["workerId"] == "pd-worker" and data[0]["lastPollTime"] > 0
    every = http.get("/tasks/queue/polldata/all").json()
    assert any(d["queueName"] == t1 for d in every)
    assert_error(http.get("/tasks/queue/polldata"), 500, "taskType")


def test_single_poll_returns_one_task(http: httpx.Client) -> None:
    name, t1 = uid("wf"), uid("t")
    register_chain(http, name, [t1])
    wid = start(http, name)
    r = http.get(f"/tasks/poll/{t1}", params={"workerid": "single", "domain": "None"})
    assert r.status_code == 200, r.text
    task = r.json()
    assert (task["workflowInstanceId"], task["status"], task["workerId"]) == (wid, "IN_PROGRESS", "single")
    assert http.get(f"/tasks/poll/{t1}").status_code == 204


def test_a_retried_attempt_that_completes_has_no_reason(http: httpx.Client) -> None:
    """conductor-oss's updateTask sets the reason from every TaskResult, also to none: the attempt
    that completes after an automatic retry does not keep the failed attempt's reason."""
    name = uid("reason")
    r = http.post("/metadata/taskdefs", json=[{"name": name, "retryCount": 1, "retryDelaySeconds": 0}])
    assert r.status_code == 200, r.text
    register_chain(http, name, [name])
    wid = start(http, name)
    first = poll_one(http, name)
    r = http.post("/tasks", json={"workflowInstanceId": wid, "taskId": first["taskId"], "status": "FAILED",
                                  "reasonForIncompletion": "boom"})  # fmt: skip
    assert r.status_code == 200, r.text
    second = wait_until(lambda: poll_one(http, name), 10, what="the retry is scheduled")
    complete(http, second, {"ok": True})
    tasks = get_workflow(http, wid)["tasks"]
    assert [t["status"] for t in tasks] == ["FAILED", "COMPLETED"]
    assert tasks[0]["reasonForIncompletion"] == "boom"
    assert not tasks[1].get("reasonForIncompletion")
