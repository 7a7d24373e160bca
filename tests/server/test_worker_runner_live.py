"""WorkerRunner with plain functions against a real conductor-lab server (the session subprocess):
parallel threads, failures with their traceback and printed lines in the task log, graceful
stop with tasks in hand, and restart."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conductor_lab.client import ConductorClient, Worker, WorkerRunner
from tests.conftest import ServerProcess, wait_until
from tests.server.util import register_chain, simple_task, start, uid, workflow_def

Json = dict[str, Any]


@pytest.fixture
def client(server: ServerProcess) -> Iterator[ConductorClient]:
    with ConductorClient(server.url) as c:
        yield c


@pytest.fixture
def runners() -> Iterator[list[WorkerRunner]]:
    """Runners appended here are stopped at teardown even when the test fails."""
    started: list[WorkerRunner] = []
    yield started
    for runner in started:
        runner.stop(timeout=5)


def register_task(http: httpx.Client, name: str, retry_count: int = 0) -> None:
    r = http.post(
        "/metadata/taskdefs", json=[{"name": name, "retryCount": retry_count, "responseTimeoutSeconds": 60}]
    )
    assert r.status_code == 200, r.text


def worker_threads(task_type: str) -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(f"worker-{task_type}-")]


def test_a_workflow_of_20_tasks_completes_with_4_threads(
    http: httpx.Client, client: ConductorClient, server: ServerProcess, runners: list[WorkerRunner]
) -> None:
    task_type, name = uid("lane_step"), uid("lanes")
    register_task(http, task_type)
    lanes = [
        [simple_task(task_type, f"l{lane}_s{step}", lane=lane, step=step) for step in range(5)]
        for lane in range(4)
    ]
    fork = {"name": "fork", "taskReferenceName": "fork", "type": "FORK_JOIN", "forkTasks": lanes}
    join = {
        "name": "join",
        "taskReferenceName": "join",
        "type": "JOIN",
        "joinOn": [f"l{i}_s4" for i in range(4)],
    }
    r = http.post("/metadata/workflow", json=workflow_def(name, [fork, join]))
    assert r.status_code == 200, r.text
    executed_by: set[str] = set()
    overlapped = threading.Event()
    runner: WorkerRunner

    def lane_step(lane: int, step: int) -> Json:
        executed_by.add(threading.current_thread().name)
        if step == 0:  # the lanes start together: a second task starts while the first is running
            if runner.stats[task_type]["running"] >= 2:
                overlapped.set()
            assert overlapped.wait(10), "no two tasks ran at the same time"
        return {"v": lane * 10 + step}

    runner = WorkerRunner(
        server.url, [Worker(task_type, lane_step, threads=4, poll_timeout_ms=100)], worker_id="lab"
    )
    runners.append(runner)
    runner.start()
    workflow_id = start(http, name)
    workflow = client.wait_for_workflow(workflow_id, timeout=30)
    assert runner.stop(timeout=5)

    assert workflow["status"] == "COMPLETED", workflow.get("reasonForIncompletion")
    simple = [t for t in workflow["tasks"] if t["taskType"] == task_type]
    assert len(simple) == 20 and {t["status"] for t in simple} == {"COMPLETED"}
    assert {t["referenceTaskName"]: t["outputData"]["v"] for t in simple} == {
        f"l{lane}_s{step}": lane * 10 + step for lane in range(4) for step in range(5)
    }
    assert {t["workerId"] for t in simple} == {"lab"}
    assert len(executed_by) >= 2
    stats = runner.stats[task_type]
    assert (stats["completed"], stats["failed"], stats["running"], stats["errors"]) == (20, 0, 0, 0)


def test_an_exception_fails_the_task_with_reason_traceback_and_printed_lines(
    http: httpx.Client, client: ConductorClient, server: ServerProcess, runners: list[WorkerRunner]
) -> None:
    task_type, name = uid("parse"), uid("parse_wf")
    register_task(http, task_type, retry_count=0)
    register_chain(http, name, [task_type])

    def parse(task: Json) -> Json:
        print("parsing rows of", task["workflowInstanceId"])
        logging.getLogger("lab.parse").warning("row 7 looks odd")
        raise ValueError("bad row 7")

    runner = WorkerRunner(server.url, [Worker(task_type, parse, poll_timeout_ms=100)])
    runners.append(runner)
    runner.start()
    workflow_id = start(http, name)
    workflow = client.wait_for_workflow(workflow_id, timeout=30)
    assert runner.stop(timeout=5)

    assert workflow["status"] == "FAILED"
    [t] = workflow["tasks"]
    assert (t["status"], t["reasonForIncompletion"]) == ("FAILED", "bad row 7")
    logs = client.get_task_logs(t["taskId"])
    assert [entry["log"] for entry in logs[:2]] == [
        f"parsing rows of {workflow_id}",
        "WARNING lab.parse: row 7 looks odd",
    ]
    assert logs[2]["log"].startswith("Traceback") and "ValueError: bad row 7" in logs[2]["log"]
    assert all(entry["taskId"] == t["taskId"] for entry in logs)
    assert runner.stats[task_type]["failed"] == 1


def test_prints_on_success_and_a_missing_input_reach_the_server(
    http: httpx.Client, client: ConductorClient, server: ServerProcess, runners: list[WorkerRunner]
) -> None:
    task_type, name = uid("greet"), uid("greet_wf")
    register_task(http, task_type, retry_count=0)
    greet_task = {**simple_task(task_type, "greet"), "inputParameters": {"name": "${workflow.input.name}"}}
    no_input = simple_task(task_type, "greet")  # no inputParameters: inputData has no "name"
    for wf_name, node in ((name, greet_task), (name + "_no_input", no_input)):
        assert http.post("/metadata/workflow", json=workflow_def(wf_name, [node])).status_code == 200

    def greet(name: str, punctuation: str = "!") -> Json:
        print(f"greeting {name}")
        return {"greeting": f"hello {name}{punctuation}"}

    runner = WorkerRunner(server.url, [Worker(task_type, greet, poll_timeout_ms=100)])
    runners.append(runner)
    runner.start()
    ok = client.wait_for_workflow(start(http, name, {"name": "lab"}), timeout=30)
    missing = client.wait_for_workflow(start(http, name + "_no_input"), timeout=30)
    assert runner.stop(timeout=5)

    assert ok["status"] == "COMPLETED" and ok["tasks"][0]["outputData"] == {"greeting": "hello lab!"}
    assert [entry["log"] for entry in client.get_task_logs(ok["tasks"][0]["taskId"])] == ["greeting lab"]
    [t] = missing["tasks"]
    assert (t["status"], t["reasonForIncompletion"]) == (
        "FAILED",
        "missing input 'name' for greet(name, punctuation)",
    )


def test_stop_while_tasks_run_reports_them_and_the_runner_restarts(
    http: httpx.Client, client: ConductorClient, server: ServerProcess, runners: list[WorkerRunner]
) -> None:
    task_type, name = uid("slow"), uid("slow_wf")
    register_task(http, task_type)
    register_chain(http, name, [task_type])
    hold = threading.Event()  # set: tasks wait for stop(); clear: they return at once
    hold.set()
    runner: WorkerRunner

    def slow(task: Json) -> Json:
        if hold.is_set():
            wait_until(lambda: runner.stopping, what="stop() while the task is in hand")
        return {"by": threading.current_thread().name}

    runner = WorkerRunner(server.url, [Worker(task_type, slow, threads=2, poll_timeout_ms=100)])
    runners.append(runner)
    runner.start()
    first = [start(http, name) for _ in range(2)]
    wait_until(lambda: runner.stats[task_type]["running"] == 2, what="both tasks in hand")
    assert runner.stop(timeout=10)
    assert worker_threads(task_type) == []
    for workflow_id in first:  # reported while stopping: nothing is left for the response timeout
        workflow = client.get_workflow(workflow_id)
        assert workflow["status"] == "COMPLETED"
        assert workflow["tasks"][0]["outputData"]["by"].startswith(f"worker-{task_type}-")

    hold.clear()
    runner.start()
    again = client.wait_for_workflow(start(http, name), timeout=30)
    assert again["status"] == "COMPLETED"
    assert runner.stop(timeout=5)
    assert worker_threads(task_type) == []
    assert runner.stats[task_type]["completed"] == 3 and runner.starts == 2
