"""kill -9 in the middle of containers (FORK_JOIN, DO_WHILE, SUB_WORKFLOW, FORK_JOIN_DYNAMIC): a
new server on the same DuckDB file has everything that was acknowledged before the kill, and the
workflow runs to completion with the right output and task list.

Every test runs its own server (``ServerProcess``) on a temporary DuckDB file. Blueprints:
``tests/fixtures/blueprints/crash_*.json``.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess
from tests.scenario.harness import Story, summarize

pytestmark = pytest.mark.timeout(120)

#: what must survive of every task acknowledged before the kill
DURABLE_FIELDS = (
    "taskId", "referenceTaskName", "taskType", "taskDefName", "status", "inputData", "outputData", "seq",
    "iteration", "retryCount", "subWorkflowId", "scheduledTime", "startTime", "endTime",
)  # fmt: skip


class Crashable:
    """A server of its own, killed with SIGKILL and restarted on the same file."""

    def __init__(self, tmp_path: Path) -> None:
        self.proc = ServerProcess(tmp_path / "crash.duckdb", log_dir=tmp_path)
        self.proc.start()
        self.http = httpx.Client(base_url=self.proc.api, timeout=15)
        self.story = Story(self.http, worker_id="crash-worker")

    def kill9_and_restart(self) -> None:
        self.http.close()
        self.proc.kill9()
        assert not self.proc.alive()
        self.proc.start()
        self.http = httpx.Client(base_url=self.proc.api, timeout=15)
        self.story.http = self.http

    def close(self) -> int | None:
        self.http.close()
        return self.proc.stop()


@pytest.fixture
def crash(tmp_path: Path) -> Iterator[Crashable]:
    c = Crashable(tmp_path)
    try:
        yield c
    finally:
        code = c.close()
    assert code == 0, f"server did not shut down cleanly (exit {code}):\n{c.proc.output()}"


def durable(wf: dict[str, Any]) -> dict[str, Any]:
    """The parts of a workflow that an acknowledged change made durable."""
    return {
        "workflowId": wf["workflowId"],
        "input": wf["input"],
        "variables": wf.get("variables"),
        "tasks": {t["taskId"]: {k: t.get(k) for k in DURABLE_FIELDS} for t in wf["tasks"]},
    }


def assert_survived(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Every task that existed before the kill is there after it, unchanged."""
    b, a = durable(before), durable(after)
    assert (a["workflowId"], a["input"], a["variables"]) == (b["workflowId"], b["input"], b["variables"])
    assert after["status"] == before["status"] == "RUNNING"
    for task_id, task in b["tasks"].items():
        assert a["tasks"].get(task_id) == task, f"task {task['referenceTaskName']} changed over the crash"
    assert len(after["tasks"]) == len(before["tasks"]), summarize(after["tasks"])


def test_kill9_inside_a_fork_join(crash: Crashable) -> None:
    story = crash.story
    story.register("crash_fork_join")
    wid = story.start("crash_fork_join", {"n": 3})
    story.poll_and_complete("crash_fj_a", {"v": 10})
    before = story.workflow(wid)
    a, b = story.name("crash_fj_a"), story.name("crash_fj_b")
    assert summarize(before["tasks"]) == [
        ("fork", "FORK", "COMPLETED"), ("a", a, "COMPLETED"), ("b", b, "SCHEDULED"), ("join", "JOIN", "IN_PROGRESS")
    ]  # fmt: skip

    crash.kill9_and_restart()

    assert_survived(before, story.workflow(wid))
    assert story.poll("crash_fj_a", timeout_ms=50) is None  # the completed branch is not delivered again
    polled = story.poll_and_complete("crash_fj_b", {"v": 20})
    assert polled["taskId"] == before["tasks"][2]["taskId"] and polled["inputData"] == {"n": 3}
    c = story.poll_and_complete("crash_fj_c", {"sum": 30})
    assert c["inputData"] == {"a": 10, "b": 20}

    wf = story.wait_workflow(wid, "COMPLETED")
    assert summarize(wf["tasks"]) == [
        ("fork", "FORK", "COMPLETED"),
        ("a", a, "COMPLETED"),
        ("b", b, "COMPLETED"),
        ("join", "JOIN", "COMPLETED"),
        ("c", story.name("crash_fj_c"), "COMPLETED"),
    ]
    assert wf["output"] == {"sum": 30, "joined": {"a": {"v": 10}, "b": {"v": 20}}}


def test_kill9_in_iteration_2_of_a_do_while(crash: Crashable) -> None:
    story = crash.story
    story.register("crash_do_while")
    wid = story.start("crash_do_while", {"limit": 3})
    first = story.poll_and_complete("crash_dw_step", {"v": 1})
    assert first["referenceTaskName"] == "step__1" and first["inputData"] == {"i": 1}
    before = story.workflow(wid)
    step, after_name = story.name("crash_dw_step"), story.name("crash_dw_after")
    assert summarize(before["tasks"]) == [
        ("loop", "DO_WHILE", "IN_PROGRESS"),
        ("step__1", step, "COMPLETED"),
        ("tenfold__1", "INLINE", "COMPLETED"),
        ("step__2", step, "SCHEDULED"),
    ]
    loop_before = before["tasks"][0]
    assert loop_before["iteration"] == 2

    crash.kill9_and_restart()

    assert_survived(before, story.workflow(wid))
    second = story.poll_and_complete("crash_dw_step", {"v": 2})
    assert second["referenceTaskName"] == "step__2" and second["inputData"] == {"i": 2}
    third = story.poll_and_complete("crash_dw_step", {"v": 3})
    assert third["referenceTaskName"] == "step__3" and third["inputData"] == {"i": 3}
    last = story.poll_and_complete("crash_dw_after", {"done": "yes"})
    assert last["inputData"] == {"iterations": 3, "last": 30}

    wf = story.wait_workflow(wid, "COMPLETED")
    assert summarize(wf["tasks"]) == [
        ("loop", "DO_WHILE", "COMPLETED"),
        ("step__1", step, "COMPLETED"),
        ("tenfold__1", "INLINE", "COMPLETED"),
        ("step__2", step, "COMPLETED"),
        ("tenfold__2", "INLINE", "COMPLETED"),
        ("step__3", step, "COMPLETED"),
        ("tenfold__3", "INLINE", "COMPLETED"),
        ("after", after_name, "COMPLETED"),
    ]
    assert wf["output"] == {
        "loop": {
            "iteration": 3,
            "1": {"step": {"v": 1}, "tenfold": {"result": 10}},
            "2": {"step": {"v": 2}, "tenfold": {"result": 20}},
            "3": {"step": {"v": 3}, "tenfold": {"result": 30}},
        },
        "after": "yes",
    }


def test_kill9_while_a_sub_workflow_runs(crash: Crashable) -> None:
    story = crash.story
    story.register("crash_sub_workflow")
    wid = story.start("crash_parent")
    story.poll_and_complete("crash_sw_before", {"x": 5})
    parent_before = story.workflow(wid)
    sub = parent_before["tasks"][1]
    assert (sub["referenceTaskName"], sub["status"]) == ("sub", "IN_PROGRESS") and sub["subWorkflowId"]
    child_id = sub["subWorkflowId"]
    child_before = story.workflow(child_id)
    assert child_before["parentWorkflowId"] == wid and child_before["input"] == {"x": 5}
    assert summarize(child_before["tasks"]) == [("child_task", story.name("crash_sw_child_task"), "SCHEDULED")]

    crash.kill9_and_restart()

    assert_survived(parent_before, story.workflow(wid))
    child_after = story.workflow(child_id)
    assert_survived(child_before, child_after)
    assert (child_after["parentWorkflowId"], child_after["parentWorkflowTaskId"]) == (wid, sub["taskId"])

    polled = story.poll_and_complete("crash_sw_child_task", {"y": 6})
    assert polled["workflowInstanceId"] == child_id and polled["inputData"] == {"x": 5}
    child = story.wait_workflow(child_id, "COMPLETED")
    assert child["output"] == {"y": 7}
    after = story.poll_and_complete("crash_sw_after", {"z": 8})
    assert after["inputData"] == {"y": 7}

    wf = story.wait_workflow(wid, "COMPLETED")
    assert summarize(wf["tasks"]) == [
        ("before", story.name("crash_sw_before"), "COMPLETED"),
        ("sub", "SUB_WORKFLOW", "COMPLETED"),
        ("after", story.name("crash_sw_after"), "COMPLETED"),
    ]
    assert wf["tasks"][1]["outputData"] == {"y": 7, "subWorkflowId": child_id}
    assert wf["output"] == {"y": 7, "z": 8, "child": child_id}


def test_kill9_inside_a_dynamic_fork_with_runtime_branches(crash: Crashable) -> None:
    story = crash.story
    story.register("crash_dynamic_fork")
    x, y = story.name("crash_df_x"), story.name("crash_df_y")
    branches = [
        {"name": x, "taskReferenceName": "x", "type": "SIMPLE"},
        {"name": y, "taskReferenceName": "y", "type": "SIMPLE", "inputParameters": {"fixed": "from-node"}},
        {"name": "hold", "taskReferenceName": "w", "type": "WAIT"},
    ]
    inputs = {"x": {"n": 1}, "y": {"n": 2}, "w": {"why": "signal"}}
    wid = story.start("crash_dynamic_fork", {"tasks": branches, "inputs": inputs})
    story.poll_and_complete("crash_df_x", {"v": 1})
    before = story.workflow(wid)
    assert summarize(before["tasks"]) == [
        ("dyn", "FORK", "COMPLETED"),
        ("x", x, "COMPLETED"),
        ("y", y, "SCHEDULED"),
        ("w", "WAIT", "IN_PROGRESS"),
        ("join", "JOIN", "IN_PROGRESS"),
    ]
    assert before["tasks"][0]["inputData"]["forkedTasks"] == ["x", "y", "w"]
    assert before["tasks"][4]["inputData"]["joinOn"] == ["x", "y", "w"]

    crash.kill9_and_restart()

    after = story.workflow(wid)
    assert_survived(before, after)
    # the runtime nodes came back with their tasks: type, name and inputs as created
    nodes = {t["referenceTaskName"]: t.get("workflowTask") for t in after["tasks"]}
    assert nodes["y"]["name"] == y and nodes["y"]["type"] == "SIMPLE"
    assert nodes["w"]["type"] == "WAIT"
    polled = story.poll_and_complete("crash_df_y", {"v": 2})
    assert polled["referenceTaskName"] == "y" and polled["inputData"] == {"fixed": "from-node", "n": 2}
    assert story.workflow(wid)["status"] == "RUNNING"  # the WAIT branch holds the JOIN
    r = story.http.post(f"/tasks/{wid}/w/COMPLETED", json={"v": 3})
    assert r.status_code == 200 and r.text == before["tasks"][3]["taskId"], r.text

    wf = story.wait_workflow(wid, "COMPLETED")
    assert summarize(wf["tasks"]) == [
        ("dyn", "FORK", "COMPLETED"),
        ("x", x, "COMPLETED"),
        ("y", y, "COMPLETED"),
        ("w", "WAIT", "COMPLETED"),
        ("join", "JOIN", "COMPLETED"),
        ("total", "INLINE", "COMPLETED"),
    ]
    assert wf["output"] == {"total": 6, "joined": {"x": {"v": 1}, "y": {"v": 2}, "w": {"v": 3}}}


class CallOnce:
    """A local HTTP server whose first call hangs (until the caller goes away) and whose later calls
    answer ``{"attempt": n}`` at once."""

    def __init__(self) -> None:
        self.calls = 0
        self.first_arrived = threading.Event()
        self.first_abandoned = threading.Event()
        self.stop = threading.Event()
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                srv.calls += 1
                attempt = srv.calls
                if attempt == 1:
                    srv.first_arrived.set()
                    while not srv.stop.is_set():  # until the client's socket closes (the kill)
                        if select.select([self.connection], [], [], 0.05)[0]:
                            try:
                                if self.connection.recv(1, socket.MSG_PEEK):
                                    continue
                            except OSError:
                                pass
                            srv.first_abandoned.set()
                            return
                    return
                data = json.dumps({"attempt": attempt}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def test_kill9_with_an_http_call_in_flight_and_a_wait_timer_pending(crash: Crashable) -> None:
    story = crash.story
    story.register("crash_http_wait")
    remote = CallOnce()
    try:
        t0 = time.monotonic()
        wid = story.start("crash_http_wait", {"base": remote.base, "key": "k1"})
        assert remote.first_arrived.wait(5), "the HTTP call never reached the server"
        before = story.workflow(wid)
        assert summarize(before["tasks"]) == [
            ("fork", "FORK", "COMPLETED"),
            ("call", "HTTP", "IN_PROGRESS"),
            ("pause", "WAIT", "IN_PROGRESS"),
            ("join", "JOIN", "IN_PROGRESS"),
        ]

        crash.kill9_and_restart()

        assert remote.first_abandoned.wait(5), "the killed server's connection stayed open"
        # the call is made again by the new server; the WAIT's timer was rebuilt from the store
        wf = story.wait_workflow(wid, "COMPLETED", timeout=15)
        assert time.monotonic() - t0 >= 2.0
        assert summarize(wf["tasks"]) == [
            ("fork", "FORK", "COMPLETED"),
            ("call", "HTTP", "COMPLETED"),
            ("pause", "WAIT", "COMPLETED"),
            ("join", "JOIN", "COMPLETED"),
        ]
        call, pause = wf["tasks"][1], wf["tasks"][2]
        assert call["taskId"] == before["tasks"][1]["taskId"] and call["retryCount"] == 0
        assert pause["taskId"] == before["tasks"][2]["taskId"]
        assert pause["endTime"] - pause["scheduledTime"] >= 2000, pause
        assert remote.calls == 2
        assert wf["output"] == {"answer": 2.0}
    finally:
        remote.close()
