"""Stories for the leaf system tasks over the real HTTP API: WAIT, HUMAN, TERMINATE, SET_VARIABLE,
INLINE / LAMBDA, JSON_JQ_TRANSFORM, HTTP (against a local HTTP server) and EVENT (+ event handlers).

Blueprints: ``tests/fixtures/blueprints/leaf_*.json`` (registered under unique names by ``Story``).
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess, wait_until
from tests.scenario.harness import Story, summarize
from tests.server.util import assert_error, uid

pytestmark = pytest.mark.timeout(120)


def by_ref(wf: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The latest task per reference name."""
    return {t["referenceTaskName"]: t for t in wf["tasks"]}


def register_invalid(http: httpx.Client, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """Registering a definition with these tasks is refused (400); the error body."""
    name = uid("leaf_invalid")
    body = assert_error(
        http.post("/metadata/workflow", json={"name": name, "version": 1, "schemaVersion": 2, "tasks": tasks}), 400
    )
    assert http.get(f"/metadata/workflow/{name}").status_code == 404
    return body


def messages(body: dict[str, Any]) -> str:
    return " | ".join(str(e.get("message")) for e in body.get("validationErrors") or [])


# ------------------------------------------------------------------------------------------------
# WAIT


def test_wait_with_duration_completes_by_itself(http: httpx.Client) -> None:
    story = Story(http)
    story.register("leaf_wait")
    wid = story.start("leaf_wait_duration")
    assert story.summary(wid) == [("wait", "WAIT", "IN_PROGRESS")]
    wf = story.wait_workflow(wid, "COMPLETED", timeout=10)
    assert summarize(wf["tasks"]) == [("wait", "WAIT", "COMPLETED"), ("after", "NOOP", "COMPLETED")]
    wait = by_ref(wf)["wait"]
    assert wait["endTime"] - wait["scheduledTime"] >= 1000, wait  # not before its deadline
    assert wait["outputData"] == {}
    assert wf["output"] == {"waited": "COMPLETED"}


def test_wait_until_in_the_past_completes_at_once(http: httpx.Client) -> None:
    story = Story(http)
    story.register("leaf_wait")
    wid = story.start("leaf_wait_until_past")
    wf = story.wait_workflow(wid, "COMPLETED", timeout=1)  # no timer needed: the deadline has passed
    assert summarize(wf["tasks"]) == [("wait", "WAIT", "COMPLETED")]
    assert by_ref(wf)["wait"]["inputData"]["until"] == "2020-01-01 00:00 UTC"


def test_wait_without_inputs_waits_for_an_update_by_reference_name(http: httpx.Client) -> None:
    story = Story(http)
    story.register("leaf_wait")
    wid = story.start("leaf_wait_signal")
    wait = story.task(wid, "wait")
    assert wait["status"] == "IN_PROGRESS"
    assert story.poll("wait_signal", timeout_ms=50) is None  # not a worker task
    assert story.workflow(wid)["status"] == "RUNNING"

    r = http.post(f"/tasks/{wid}/wait/COMPLETED", json={"answer": 21})
    assert r.status_code == 200, r.text
    assert r.text == wait["taskId"]
    wf = story.wait_workflow(wid, "COMPLETED")
    assert summarize(wf["tasks"]) == [("wait", "WAIT", "COMPLETED"), ("check", "INLINE", "COMPLETED")]
    assert by_ref(wf)["wait"]["outputData"] == {"answer": 21}
    assert wf["output"] == {"answer": 21, "doubled": 42}


@pytest.mark.parametrize(
    ("inputs", "fragments"),
    [
        ({"duration": "1s", "until": "2030-01-01 00:00"}, ("duration", "until")),
        ({"duration": "soon"}, ("duration", "soon")),
        ({"until": "next tuesday"}, ("until", "next tuesday")),
    ],
    ids=["duration-and-until", "bad-duration", "bad-until"],
)
def test_wait_with_invalid_inputs_is_refused_at_registration(
    http: httpx.Client, inputs: dict[str, Any], fragments: tuple[str, ...]
) -> None:
    body = register_invalid(
        http, [{"name": "w", "taskReferenceName": "bad_wait", "type": "WAIT", "inputParameters": inputs}]
    )
    text = messages(body)
    assert "taskReferenceName: bad_wait" in text, body
    for fragment in fragments:
        assert fragment in text, (fragment, body)


# ------------------------------------------------------------------------------------------------
# HUMAN


def test_human_waits_until_updated_and_its_output_becomes_the_task_output(http: httpx.Client) -> None:
    story = Story(http)
    story.register("leaf_human")
    wid = story.start("leaf_human", {"request": {"amount": 500}})
    human = story.task(wid, "approve")
    assert (human["taskType"], human["status"]) == ("HUMAN", "IN_PROGRESS")
    assert human["inputData"] == {"request": {"amount": 500}}
    assert story.poll("approve", timeout_ms=50) is None and story.poll("HUMAN", timeout_ms=50) is None
    assert story.summary(wid) == [("approve", "HUMAN", "IN_PROGRESS")]

    r = http.post(
        "/tasks",
        json={"workflowInstanceId": wid, "taskId": human["taskId"], "status": "COMPLETED",
              "outputData": {"decision": "yes", "by": "alice"}},
    )  # fmt: skip
    assert r.status_code == 200 and r.text == human["taskId"], r.text
    wf = story.wait_workflow(wid, "COMPLETED")
    assert summarize(wf["tasks"]) == [
        ("approve", "HUMAN", "COMPLETED"),
        ("route", "SWITCH", "COMPLETED"),
        ("approved", "NOOP", "COMPLETED"),
    ]
    assert by_ref(wf)["approve"]["outputData"] == {"decision": "yes", "by": "alice"}
    assert wf["output"] == {"decision": "yes", "by": "alice"}


def test_human_failed_through_an_update_by_reference_name_fails_the_workflow(http: httpx.Client) -> None:
    story = Story(http)
    story.register("leaf_human")
    wid = story.start("leaf_human", {"request": {"amount": 1}})
    human = story.task(wid, "approve")
    r = http.post(f"/tasks/{wid}/approve/FAILED", json={"decision": "no"})
    assert r.status_code == 200 and r.text == human["taskId"], r.text
    wf = story.wait_workflow(wid, "FAILED")
    assert summarize(wf["tasks"]) == [("approve", "HUMAN", "FAILED")]
    assert by_ref(wf)["approve"]["outputData"] == {"decision": "no"}
    # conductor-oss: String.format("Task %s failed with status: %s and reason: '%s'", ...) of a null reason
    assert wf["reasonForIncompletion"] == f"Task {human['taskId']} failed with status: FAILED and reason: 'null'"


# ------------------------------------------------------------------------------------------------
# TERMINATE


def test_terminate_completed_ends_the_workflow_with_its_workflow_output(http: httpx.Client) -> None:
    story = Story(http)
    story.register("leaf_terminate")
    wid = story.start("leaf_terminate_completed", {"n": 41})
    wf = story.wait_workflow(wid, "COMPLETED")
    assert summarize(wf["tasks"]) == [("compute", "INLINE", "COMPLETED"), ("stop", "TERMINATE", "COMPLETED")]
    stop = by_ref(wf)["stop"]
    assert stop["outputData"] == {"n1": 42, "tag": "early"}
    assert wf["output"] == {"n1": 42, "tag": "early"}  # outputParameters are not evaluated
    assert wf["reasonForIncompletion"] == f"Workflow is COMPLETED by TERMINATE task: {stop['taskId']}"
    assert story.poll("leaf_terminate_never", timeout_ms=50) is None


def test_terminate_failed_fails_the_workflow_with_the_termination_reason(http: httpx.Client) -> None:
    story = Story(http)
    story.register("leaf_terminate")
    wid = story.start("leaf_terminate_failed", {"order": "o-7"})
    wf = story.wait_workflow(wid, "FAILED")
    assert summarize(wf["tasks"]) == [("stop", "TERMINATE", "COMPLETED")]
    assert wf["reasonForIncompletion"] == "order o-7 rejected"
    assert story.poll("leaf_terminate_never", timeout_ms=50) is None


def test_terminate_in_a_fork_branch_cancels_the_other_branch_and_the_join(http: httpx.Client) -> None:
    story = Story(http)
    story.register("leaf_terminate")
    wid = story.start("leaf_terminate_in_fork")
    assert story.summary(wid) == [
        ("fork", "FORK", "COMPLETED"),
        ("slow", story.name("leaf_terminate_slow"), "SCHEDULED"),
        ("fast", story.name("leaf_terminate_fast"), "SCHEDULED"),
        ("join", "JOIN", "IN_PROGRESS"),
    ]
    story.poll_and_complete("leaf_terminate_fast", {"who": "fast"})
    wf = story.wait_workflow(wid, "COMPLETED")
    assert summarize(wf["tasks"]) == [
        ("fork", "FORK", "COMPLETED"),
        ("slow", story.name("leaf_terminate_slow"), "CANCELED"),
        ("fast", story.name("leaf_terminate_fast"), "COMPLETED"),
        ("join", "JOIN", "CANCELED"),
        ("stop", "TERMINATE", "COMPLETED"),
    ]
    assert wf["output"] == {"winner": "fast"}
    # the cancelled worker task left its queue; nothing after the JOIN was scheduled
    assert story.poll("leaf_terminate_slow", timeout_ms=50) is None
    assert story.poll("leaf_terminate_never", timeout_ms=50) is None


def test_terminate_with_an_invalid_status_is_refused_at_registration(http: httpx.Client) -> None:
    body = register_invalid(
        http,
        [{"name": "t", "taskReferenceName": "bad_stop", "type": "TERMINATE",
          "inputParameters": {"terminationStatus": "PAUSED"}}],
    )  # fmt: skip
    assert "taskReferenceName: bad_stop" in messages(body) and "terminationStatus" in messages(body), body


# ------------------------------------------------------------------------------------------------
# SET_VARIABLE


def test_set_variable_is_visible_to_later_tasks(http: httpx.Client) -> None:
    story = Story(http)
    story.register("leaf_set_variable")
    wid = story.start("leaf_set_variable", {"x": 21})
    wf = story.wait_workflow(wid, "COMPLETED")
    tasks = by_ref(wf)
    assert tasks["use_x"]["inputData"]["x"] == 21 and tasks["use_x"]["inputData"]["label"] == "first"
    assert tasks["set_x"]["outputData"] == {}
    assert wf["variables"] == {"x": 21, "label": "second", "big": None}
    assert wf["output"] == {"used": "first:42", "x": 21}


def test_set_variable_over_256_kb_fails_terminally_and_keeps_the_variables(http: httpx.Client) -> None:
    story = Story(http)
    story.register("leaf_set_variable")
    wid = story.start("leaf_set_variable", {"x": 1, "big": "v" * (260 * 1024)})
    wf = story.wait_workflow(wid, "FAILED")
    assert summarize(wf["tasks"]) == [
        ("set_x", "SET_VARIABLE", "COMPLETED"),
        ("use_x", "INLINE", "COMPLETED"),
        ("set_big", "SET_VARIABLE", "FAILED_WITH_TERMINAL_ERROR"),
    ]
    big = by_ref(wf)["set_big"]
    assert "permissible limit" in big["reasonForIncompletion"] and "262144" in big["reasonForIncompletion"]
    assert big["retryCount"] == 0
    assert wf["variables"] == {"x": 1, "label": "first"}  # the oversized change was not applied
    assert wf["failedReferenceTaskNames"] == ["set_big"]


# ------------------------------------------------------------------------------------------------
# INLINE / LAMBDA


def test_inline_javascript_value_param_and_lambda(http: httpx.Client) -> None:
    story = Story(http)
    story.register("leaf_inline")
    wid = story.start("leaf_inline", {"a": 2, "b": 3, "items": ["x", "y"]})
    wf = story.wait_workflow(wid, "COMPLETED")
    assert [(r, tt) for r, tt, _ in summarize(wf["tasks"])] == [
        ("sum", "INLINE"), ("shape", "INLINE"), ("fn", "INLINE"), ("pick", "INLINE"), ("double", "LAMBDA")
    ]  # fmt: skip
    assert wf["output"] == {
        "sum": 5,
        "shape": {"total": 5, "parts": [2, 3], "nested": {"ok": True, "none": None}, "label": "x2"},
        "fn": ["X", "Y"],
        "pick": [2, 3],
        "double": 10,
    }
    assert by_ref(wf)["double"]["outputData"] == {"result": 10}


def test_inline_script_error_fails_the_task_terminally_with_the_message(http: httpx.Client) -> None:
    story = Story(http)
    story.register("leaf_inline")
    wid = story.start("leaf_inline_error", {"order": "o-9"})
    wf = story.wait_workflow(wid, "FAILED")
    assert summarize(wf["tasks"]) == [("boom", "INLINE", "FAILED_WITH_TERMINAL_ERROR")]
    boom = by_ref(wf)["boom"]
    assert "no stock for o-9" in boom["outputData"]["error"]
    assert "no stock for o-9" in boom["reasonForIncompletion"]
    assert "no stock for o-9" in wf["reasonForIncompletion"]
    assert story.poll("leaf_inline_never", timeout_ms=50) is None


def test_inline_infinite_loop_is_interrupted_and_the_server_keeps_serving(
    http: httpx.Client, server: ServerProcess
) -> None:
    story = Story(http)
    story.register("leaf_inline")
    t0 = time.monotonic()
    wid = story.start("leaf_inline_forever")
    assert time.monotonic() - t0 < 1.0, "the start waited for the script"
    assert story.summary(wid) == [("spin", "INLINE", "IN_PROGRESS")]

    # while the script spins: health answers fast, and a whole other workflow runs to its end
    with httpx.Client(timeout=5) as plain:
        for _ in range(5):
            h0 = time.monotonic()
            r = plain.get(server.url + "/health")
            assert r.status_code == 200 and r.json()["healthy"] is True
            assert time.monotonic() - h0 < 0.5  # well under a second while the script spins
    side = story.start("leaf_inline_side", {"k": 1})
    story.poll_and_complete("leaf_inline_worker", {"k": 41})
    assert story.wait_workflow(side, "COMPLETED")["output"] == {"k": 42}
    assert story.task(wid, "spin")["status"] == "IN_PROGRESS", "the loop must still be running"

    wf = story.wait_workflow(wid, "FAILED", timeout=20)
    elapsed = time.monotonic() - t0
    spin = by_ref(wf)["spin"]
    assert spin["status"] == "FAILED_WITH_TERMINAL_ERROR"
    assert spin["outputData"]["error"] == "Script not evaluated within 4 seconds, interrupted."
    assert spin["reasonForIncompletion"] == spin["outputData"]["error"]
    # the 4 s limit counts the server process's CPU time (QuickJS uses clock()): 2 cores can use
    # it up in 2 s of wall time; a machine busy with other work takes longer
    assert 2.0 <= elapsed <= 15.0, elapsed
    assert 2000 <= spin["endTime"] - spin["startTime"] <= 15000, spin


# ------------------------------------------------------------------------------------------------
# JSON_JQ_TRANSFORM


def test_jq_transform_result_and_result_list(http: httpx.Client) -> None:
    story = Story(http)
    story.register("leaf_jq")
    orders = [{"id": "a", "qty": 2, "price": 5}, {"id": "b", "qty": 1, "price": 7}]
    wid = story.start("leaf_jq", {"orders": orders})
    wf = story.wait_workflow(wid, "COMPLETED")
    tasks = by_ref(wf)
    assert tasks["merge"]["outputData"] == {
        "result": {"key3": ["a", "b", "c", "d"]},
        "resultList": [{"key3": ["a", "b", "c", "d"]}],
    }
    assert tasks["each"]["outputData"] == {
        "result": {"id": "a", "total": 10},
        "resultList": [{"id": "a", "total": 10}, {"id": "b", "total": 7}],
    }
    assert tasks["none"]["outputData"] == {"result": None, "resultList": []}
    assert wf["output"] == {
        "key3": ["a", "b", "c", "d"],
        "first": {"id": "a", "total": 10},
        "all": [{"id": "a", "total": 10}, {"id": "b", "total": 7}],
    }


def test_jq_compile_error_fails_the_task_with_jqs_message(http: httpx.Client) -> None:
    story = Story(http)
    story.register("leaf_jq")
    wid = story.start("leaf_jq_error")
    wf = story.wait_workflow(wid, "FAILED")
    assert summarize(wf["tasks"]) == [("broken", "JSON_JQ_TRANSFORM", "FAILED")]
    broken = by_ref(wf)["broken"]
    assert "syntax error" in broken["outputData"]["error"] and "compile error" in broken["outputData"]["error"]
    assert broken["reasonForIncompletion"] == broken["outputData"]["error"]


# ------------------------------------------------------------------------------------------------
# HTTP against a local server


class LocalHttp:
    """A threaded HTTP server on 127.0.0.1 with the routes the HTTP stories call."""

    def __init__(self) -> None:
        self.release = threading.Event()  # set at teardown: blocked handlers answer and exit
        self.arrived: dict[str, threading.Event] = {}
        self.disconnected: dict[str, threading.Event] = {}
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def key(self) -> str:
        """A fresh key for the keyed routes, with its events ready."""
        k = uid("k")
        with self.lock:
            self.arrived[k] = threading.Event()
            self.disconnected[k] = threading.Event()
        return k

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def reply(self, status: int, body: Any, content_type: str = "application/json") -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-Leaf", "yes")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                parts = path.strip("/").split("/")
                with srv.lock:
                    srv.calls[path] += 1
                    count = srv.calls[path]
                if path == "/json":
                    self.reply(200, {"hello": "world", "n": 3, "caller": self.headers.get("X-Caller"),
                                     "query": self.path.partition("?")[2]})  # fmt: skip
                elif path == "/missing":
                    self.reply(404, b"no such thing", "text/plain")
                elif parts[0] == "slow":
                    srv.arrived[parts[1]].set()
                    srv.release.wait(30)
                    self.reply(200, {"late": True})
                elif parts[0] == "flaky":
                    if count == 1:
                        self.reply(500, b"try again", "text/plain")
                    else:
                        self.reply(200, {"attempt": count})
                elif parts[0] == "hang":
                    srv.arrived[parts[1]].set()
                    if self.wait_for_disconnect():
                        srv.disconnected[parts[1]].set()
                        return
                    self.reply(200, {"late": True})
                else:
                    self.reply(400, b"unknown route", "text/plain")

            def wait_for_disconnect(self) -> bool:
                """Block until released (False) or the client closes the connection (True)."""
                sock = self.connection
                while not srv.release.is_set():
                    readable, _, _ = select.select([sock], [], [], 0.05)
                    if readable:
                        try:
                            data = sock.recv(1, socket.MSG_PEEK)
                        except OSError:
                            data = b""
                        if not data:
                            return True
                return False

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                self.reply(200, {"echo": json.loads(raw), "contentType": self.headers.get("Content-Type"),
                                 "method": "POST"})  # fmt: skip

        return Handler

    def __enter__(self) -> LocalHttp:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture(scope="module")
def local_http() -> Iterator[LocalHttp]:
    with LocalHttp() as srv:
        yield srv


def test_http_get_json(http: httpx.Client, local_http: LocalHttp) -> None:
    story = Story(http)
    story.register("leaf_http")
    wid = story.start("leaf_http_get", {"base": local_http.base})
    wf = story.wait_workflow(wid, "COMPLETED")
    assert summarize(wf["tasks"]) == [("get", "HTTP", "COMPLETED")]
    response = by_ref(wf)["get"]["outputData"]["response"]
    assert response["statusCode"] == 200 and response["reasonPhrase"] == "OK"
    assert response["body"] == {"hello": "world", "n": 3, "caller": "leaf", "query": "q=1"}
    assert response["headers"]["X-Leaf"] == ["yes"]
    assert response["headers"]["Content-Type"] == ["application/json"]
    assert wf["output"] == {"hello": "world", "status": 200}


def test_http_post_sends_a_json_body(http: httpx.Client, local_http: LocalHttp) -> None:
    story = Story(http)
    story.register("leaf_http")
    wid = story.start("leaf_http_post", {"base": local_http.base, "order": "o-1"})
    wf = story.wait_workflow(wid, "COMPLETED")
    assert wf["output"] == {
        "echo": {"echo": {"order": "o-1", "lines": [1, 2]}, "contentType": "application/json", "method": "POST"}
    }


def test_http_404_fails_the_task_and_the_workflow(http: httpx.Client, local_http: LocalHttp) -> None:
    story = Story(http)
    story.register("leaf_http")
    wid = story.start("leaf_http_404", {"base": local_http.base})
    wf = story.wait_workflow(wid, "FAILED")
    assert summarize(wf["tasks"]) == [("missing", "HTTP", "FAILED")]
    missing = by_ref(wf)["missing"]
    reason = missing["reasonForIncompletion"]
    assert reason.startswith("Failed to invoke HTTP task due to: "), reason
    assert "404" in reason and "/missing" in reason and "no such thing" in reason, reason
    assert isinstance(missing["outputData"]["response"], str) and "404" in missing["outputData"]["response"]
    assert wf["failedReferenceTaskNames"] == ["missing"]
    assert story.poll("leaf_http_never", timeout_ms=50) is None


def test_http_read_timeout_fails_the_task(http: httpx.Client, local_http: LocalHttp) -> None:
    story = Story(http)
    story.register("leaf_http")
    key = local_http.key()
    t0 = time.monotonic()
    wid = story.start("leaf_http_timeout", {"base": local_http.base, "key": key})
    wf = story.wait_workflow(wid, "FAILED", timeout=20)
    assert local_http.arrived[key].is_set()
    assert time.monotonic() - t0 < 5  # the 300 ms read timeout, not the handler, ended it
    assert summarize(wf["tasks"]) == [("slow", "HTTP", "FAILED")]
    reason = by_ref(wf)["slow"]["reasonForIncompletion"]
    assert reason.startswith("Failed to invoke HTTP task due to: ") and "Read timed out" in reason, reason


def test_http_retried_per_its_task_definition(http: httpx.Client, local_http: LocalHttp) -> None:
    story = Story(http)
    names = story.register("leaf_http")
    key = local_http.key()
    wid = story.start("leaf_http_retry", {"base": local_http.base, "key": key})
    wf = story.wait_workflow(wid, "COMPLETED")
    assert summarize(wf["tasks"]) == [("flaky", "HTTP", "FAILED"), ("flaky", "HTTP", "COMPLETED")]
    first, retry = wf["tasks"]
    assert first["taskDefName"] == names["leaf_http_retry"]
    assert "500" in first["reasonForIncompletion"] and "try again" in first["reasonForIncompletion"]
    assert retry["retryCount"] == 1 and retry["retriedTaskId"] == first["taskId"]
    assert wf["output"] == {"attempt": 2}
    assert local_http.calls[f"/flaky/{key}"] == 2


def test_http_call_in_flight_is_cancelled_when_the_workflow_is_terminated(
    http: httpx.Client, local_http: LocalHttp
) -> None:
    story = Story(http)
    story.register("leaf_http")
    key = local_http.key()
    wid = story.start("leaf_http_cancel", {"base": local_http.base, "key": key})
    assert local_http.arrived[key].wait(5), "the HTTP call never reached the server"
    assert story.task(wid, "hang")["status"] == "IN_PROGRESS"

    story.terminate(wid, "stop the call")
    wf = story.workflow(wid)
    assert wf["status"] == "TERMINATED" and wf["reasonForIncompletion"] == "stop the call"
    assert summarize(wf["tasks"]) == [
        ("fork", "FORK", "COMPLETED"),
        ("hang", "HTTP", "CANCELED"),
        ("side", story.name("leaf_http_side"), "CANCELED"),
        ("join", "JOIN", "CANCELED"),
    ]
    # the request itself was aborted (its readTimeOut is 60 s): the server sees the disconnect
    assert local_http.disconnected[key].wait(5), "the in-flight HTTP request was not cancelled"
    assert story.task(wid, "hang")["status"] == "CANCELED"  # a late outcome changes nothing


# ------------------------------------------------------------------------------------------------
# EVENT + event handlers


def add_handler(http: httpx.Client, handler: dict[str, Any]) -> str:
    r = http.post("/event", json={"active": True, **handler})
    assert r.status_code == 200, r.text
    return str(handler["name"])


def test_event_to_conductor_sink_triggers_a_start_workflow_handler(http: httpx.Client) -> None:
    story = Story(http)
    story.register("leaf_event")
    event = f"conductor:{story.name('leaf_event_publish')}:notify"
    handler = add_handler(http, {
        "name": uid("leaf_eh_start"),
        "event": event,
        "actions": [{
            "action": "start_workflow",
            "start_workflow": {
                "name": story.name("leaf_event_target"),
                "correlationId": "${workflowInstanceId}",
                "input": {"orderId": "${orderId}", "total": "${amount}", "from": "${workflowType}",
                          "note": "order ${orderId} paid"},
            },
        }],
    })  # fmt: skip
    try:
        wid = story.start("leaf_event_publish", {"orderId": "o-42", "amount": 12.5})
        wf = story.wait_workflow(wid, "COMPLETED")
        assert summarize(wf["tasks"]) == [("notify", "EVENT", "COMPLETED"), ("after", "NOOP", "COMPLETED")]
        # as conductor-oss: sink and asyncComplete are task input; the output (= the message) adds the
        # workflow's identity and the queue
        assert by_ref(wf)["notify"]["inputData"] == {
            "orderId": "o-42", "amount": 12.5, "sink": "conductor", "asyncComplete": False
        }  # fmt: skip
        notify = by_ref(wf)["notify"]["outputData"]
        assert notify == {
            "orderId": "o-42", "amount": 12.5, "sink": "conductor", "asyncComplete": False,
            "workflowInstanceId": wid, "workflowType": story.name("leaf_event_publish"), "workflowVersion": 1,
            "correlationId": None, "taskToDomain": {}, "event_produced": event,
        }  # fmt: skip
        assert wf["output"] == {"queue": event}

        def started() -> list[dict[str, Any]]:
            r = http.get(f"/workflow/{story.name('leaf_event_target')}/correlated/{wid}",
                         params={"includeClosed": True, "includeTasks": False})  # fmt: skip
            assert r.status_code == 200, r.text
            return r.json()  # type: ignore[no-any-return]

        [target] = wait_until(started, timeout=10, what="the handler's workflow")
        inp = target["input"]
        assert {k: inp[k] for k in ("orderId", "total", "from", "note")} == {
            "orderId": "o-42", "total": 12.5, "from": story.name("leaf_event_publish"), "note": "order o-42 paid"
        }  # fmt: skip
        assert inp["conductor.event.name"] == event and inp["conductor.event.messageId"]
        assert target["status"] == "RUNNING"
        polled = story.poll_and_complete("leaf_event_worker", {"done": True})
        assert polled["workflowInstanceId"] == target["workflowId"] and polled["inputData"] == {"orderId": "o-42"}
        story.wait_workflow(target["workflowId"], "COMPLETED")
    finally:
        http.delete(f"/event/{handler}")


def test_event_with_async_complete_is_completed_by_a_handler(http: httpx.Client) -> None:
    story = Story(http)
    story.register("leaf_event")
    event = f"conductor:{story.name('leaf_event_async')}:ask"
    handler = add_handler(http, {
        "name": uid("leaf_eh_complete"),
        "event": event,
        "condition": "$.question == 'ping'",
        "actions": [{
            "action": "complete_task",
            "complete_task": {"workflowId": "${workflowInstanceId}", "taskRefName": "ask",
                              "output": {"answer": "pong to ${question}"}},
        }],
    })  # fmt: skip
    try:
        # the condition does not hold: the EVENT task stays IN_PROGRESS (asyncComplete)
        other = story.start("leaf_event_async", {"question": "anyone?"})
        assert story.summary(other) == [("ask", "EVENT", "IN_PROGRESS")]
        assert story.task(other, "ask")["outputData"]["event_produced"] == event

        wid = story.start("leaf_event_async", {"question": "ping"})
        wf = story.wait_workflow(wid, "COMPLETED")
        assert summarize(wf["tasks"]) == [("ask", "EVENT", "COMPLETED"), ("after", "INLINE", "COMPLETED")]
        ask = by_ref(wf)["ask"]["outputData"]
        # the handler's substituted map replaces the task output (conductor-oss SimpleActionProcessor)
        assert ask == {
            "workflowId": wid, "taskId": None, "taskRefName": "ask", "reasonForIncompletion": None,
            "answer": "pong to ping", "conductor.event.name": event,
            "conductor.event.messageId": ask["conductor.event.messageId"],
        }  # fmt: skip
        assert ask["conductor.event.messageId"]
        assert wf["output"] == {"said": "got pong to ping"}

        assert story.summary(other) == [("ask", "EVENT", "IN_PROGRESS")]  # still waiting
        r = http.post(f"/tasks/{other}/ask/COMPLETED", json={"answer": "by hand"})
        assert r.status_code == 200, r.text
        assert story.wait_workflow(other, "COMPLETED")["output"] == {"said": "got by hand"}
    finally:
        http.delete(f"/event/{handler}")


def test_event_to_an_external_broker_sink_is_refused_at_registration(http: httpx.Client) -> None:
    body = register_invalid(http, [{"name": "e", "taskReferenceName": "to_sqs", "type": "EVENT", "sink": "sqs:x"}])
    text = messages(body)
    assert "taskReferenceName: to_sqs" in text and "sqs" in text and "conductor" in text, body
