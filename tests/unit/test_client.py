"""conductor_lab.client against httpx.MockTransport fakes (no sockets, no server)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from conductor_lab.client import (
    ApiError,
    ConductorClient,
    NonRetryableError,
    TaskInProgress,
    Worker,
    WorkerRunner,
)
from tests.conftest import wait_until

Handler = Callable[[httpx.Request], httpx.Response]


def make_client(handler: Handler, base_url: str = "http://conductor") -> ConductorClient:
    return ConductorClient(base_url, transport=httpx.MockTransport(handler))


class Recorder:
    """Answers every request with a canned response and remembers the request."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.response

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def text(body: str) -> httpx.Response:
    return httpx.Response(200, text=body, headers={"Content-Type": "text/plain"})


def json_response(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=orjson.dumps(body), headers={"Content-Type": "application/json"})


EMPTY = httpx.Response(200)
NO_CONTENT = httpx.Response(204)


# -- request shapes ------------------------------------------------------------------------------

SHAPES = [
    pytest.param(
        lambda c: c.start_workflow("order flow", {"a": 1}, version=2, correlation_id="c-1"),
        text("wf-1"),
        ("POST", "/api/workflow/order%20flow", {"version": "2", "correlationId": "c-1"}, {"a": 1}),
        "wf-1",
        id="start_workflow",
    ),
    pytest.param(
        lambda c: c.start_workflow("w"),
        text("wf-2"),
        ("POST", "/api/workflow/w", {}, {}),
        "wf-2",
        id="start_workflow-no-input",
    ),
    pytest.param(
        lambda c: c.start({"name": "w", "input": {"x": 1}, "taskToDomain": {"*": "d"}}),
        text("wf-3"),
        ("POST", "/api/workflow", {}, {"name": "w", "input": {"x": 1}, "taskToDomain": {"*": "d"}}),
        "wf-3",
        id="start",
    ),
    pytest.param(
        lambda c: c.get_workflow("wf-1", include_tasks=False),
        json_response({"workflowId": "wf-1", "status": "RUNNING"}),
        ("GET", "/api/workflow/wf-1", {"includeTasks": "false"}, None),
        {"workflowId": "wf-1", "status": "RUNNING"},
        id="get_workflow",
    ),
    pytest.param(
        lambda c: c.terminate("wf-1", reason="no longer needed"),
        EMPTY,
        ("DELETE", "/api/workflow/wf-1", {"reason": "no longer needed"}, None),
        None,
        id="terminate",
    ),
    pytest.param(
        lambda c: c.remove_workflow("wf-1", archive=False),
        EMPTY,
        ("DELETE", "/api/workflow/wf-1/remove", {"archiveWorkflow": "false"}, None),
        None,
        id="remove_workflow",
    ),
    pytest.param(
        lambda c: c.search_workflows("status IN (RUNNING)", size=5, sort="startTime:DESC"),
        json_response({"totalHits": 0, "results": []}),
        (
            "GET",
            "/api/workflow/search",
            {
                "query": "status IN (RUNNING)",
                "freeText": "*",
                "start": "0",
                "size": "5",
                "sort": "startTime:DESC",
            },
            None,
        ),
        {"totalHits": 0, "results": []},
        id="search_workflows",
    ),
    pytest.param(
        lambda c: c.correlated("w", "c-1", include_closed=True),
        json_response([]),
        ("GET", "/api/workflow/w/correlated/c-1", {"includeClosed": "true", "includeTasks": "false"}, None),
        [],
        id="correlated",
    ),
    pytest.param(
        lambda c: c.running_workflows("w"),
        json_response(["wf-1"]),
        ("GET", "/api/workflow/running/w", {"version": "1"}, None),
        ["wf-1"],
        id="running_workflows",
    ),
    pytest.param(
        lambda c: c.retry("wf-1"),
        NO_CONTENT,
        ("POST", "/api/workflow/wf-1/retry", {"resumeSubworkflowTasks": "false"}, None),
        None,
        id="retry-204",
    ),
    pytest.param(
        lambda c: c.rerun("wf-1", {"reRunFromTaskId": "t-1"}),
        text("wf-1"),
        ("POST", "/api/workflow/wf-1/rerun", {}, {"reRunFromTaskId": "t-1"}),
        "wf-1",
        id="rerun",
    ),
    pytest.param(
        lambda c: c.decide("wf-1"),
        EMPTY,
        ("PUT", "/api/workflow/decide/wf-1", {}, None),
        None,
        id="decide",
    ),
    pytest.param(
        lambda c: c.register_workflow_def({"name": "w", "version": 1}, overwrite=True),
        EMPTY,
        ("POST", "/api/metadata/workflow", {"overwrite": "true"}, {"name": "w", "version": 1}),
        None,
        id="register_workflow_def",
    ),
    pytest.param(
        lambda c: c.get_workflow_def("a/b", version=3),
        json_response({"name": "w", "version": 3}),
        ("GET", "/api/metadata/workflow/a%2Fb", {"version": "3"}, None),
        {"name": "w", "version": 3},
        id="get_workflow_def",
    ),
    pytest.param(
        lambda c: c.delete_workflow_def("w", 3),
        EMPTY,
        ("DELETE", "/api/metadata/workflow/w/3", {}, None),
        None,
        id="delete_workflow_def",
    ),
    pytest.param(
        lambda c: c.register_task_defs([{"name": "t"}]),
        EMPTY,
        ("POST", "/api/metadata/taskdefs", {}, [{"name": "t"}]),
        None,
        id="register_task_defs",
    ),
    pytest.param(
        lambda c: c.batch_poll("t", count=4, timeout_ms=500, worker_id="w1", domain="d"),
        json_response([{"taskId": "t-1"}]),
        (
            "GET",
            "/api/tasks/poll/batch/t",
            {"workerid": "w1", "domain": "d", "count": "4", "timeout": "500"},
            None,
        ),
        [{"taskId": "t-1"}],
        id="batch_poll",
    ),
    pytest.param(
        lambda c: c.update_task({"taskId": "t-1", "workflowInstanceId": "wf-1", "status": "COMPLETED"}),
        text("t-1"),
        ("POST", "/api/tasks", {}, {"taskId": "t-1", "workflowInstanceId": "wf-1", "status": "COMPLETED"}),
        "t-1",
        id="update_task",
    ),
    pytest.param(
        lambda c: c.update_task_by_ref("wf-1", "ref_1", "COMPLETED", {"ok": True}, worker_id="me"),
        text("t-9"),
        ("POST", "/api/tasks/wf-1/ref_1/COMPLETED", {"workerid": "me"}, {"ok": True}),
        "t-9",
        id="update_task_by_ref",
    ),
    pytest.param(
        lambda c: c.queue_size("t", domain="d"),
        json_response(7),
        ("GET", "/api/tasks/queue/size", {"taskType": "t", "domain": "d"}, None),
        7,
        id="queue_size",
    ),
    pytest.param(
        lambda c: c.version(),
        text("3.22.0"),
        ("GET", "/api/version", {}, None),
        "3.22.0",
        id="version",
    ),
]


@pytest.mark.parametrize(("call", "response", "expected", "result"), SHAPES)
def test_request_shapes(call: Callable[[ConductorClient], Any], response, expected, result) -> None:
    method, path, params, body = expected
    recorder = Recorder(response)
    with make_client(recorder) as client:
        assert call(client) == result
    request = recorder.last
    assert request.method == method
    assert request.url.raw_path.decode().partition("?")[0] == path  # as sent, percent-encoded
    assert dict(request.url.params) == params
    if body is None:
        assert request.content == b""
    else:
        assert request.headers["content-type"] == "application/json"
        assert orjson.loads(request.content) == body


def test_queue_sizes_repeats_the_task_type_parameter() -> None:
    recorder = Recorder(json_response({"a": 1, "b": 0}))
    with make_client(recorder) as client:
        assert client.queue_sizes(["a", "b"]) == {"a": 1, "b": 0}
    assert recorder.last.url.params.get_list("taskType") == ["a", "b"]


def test_task_log_is_sent_as_raw_text() -> None:
    recorder = Recorder(EMPTY)
    with make_client(recorder) as client:
        client.add_task_log("t-1", 'step 1 done: {"x": 1}')
    assert recorder.last.url.path == "/api/tasks/t-1/log"
    assert recorder.last.headers["content-type"].startswith("text/plain")
    assert recorder.last.content == b'step 1 done: {"x": 1}'


@pytest.mark.parametrize(
    "base_url", ["http://conductor", "http://conductor/", "http://conductor/api", "http://conductor/api/"]
)
def test_base_url_with_or_without_api(base_url: str) -> None:
    recorder = Recorder(json_response({"healthy": True}))
    with make_client(recorder, base_url) as client:
        assert client.health() == {"healthy": True}
    assert str(recorder.last.url) == "http://conductor/api/health"


def test_text_ids_are_returned_verbatim() -> None:
    with make_client(Recorder(text("5f0c2e1a-0000-4000-8000-000000000000"))) as client:
        assert client.start_workflow("w") == "5f0c2e1a-0000-4000-8000-000000000000"


def test_update_task_by_ref_with_no_match_returns_empty_string() -> None:
    with make_client(Recorder(EMPTY)) as client:
        assert client.update_task_by_ref("wf-1", "ref", "COMPLETED") == ""


def test_no_content_answers() -> None:
    with make_client(Recorder(NO_CONTENT)) as client:
        assert client.poll("t") is None
        assert client.update_task_v2({"taskId": "t-1", "workflowInstanceId": "wf-1"}) is None
        assert client.get_task_logs("t-1") == []
        assert client.batch_poll("t") == []


def test_api_error_uses_the_conductor_message() -> None:
    body = {"status": 404, "message": "No such workflow found by id: abc", "retryable": False}
    with make_client(Recorder(json_response(body, status=404))) as client:
        with pytest.raises(ApiError) as info:
            client.get_workflow("abc")
    assert info.value.status == 404
    assert info.value.message == "No such workflow found by id: abc"
    assert info.value.body == body
    assert info.value.retryable is False


def test_api_error_with_a_plain_text_body() -> None:
    response = httpx.Response(409, text="Workflow wf-1 is not in RUNNING state")
    with make_client(Recorder(response)) as client:
        with pytest.raises(ApiError) as info:
            client.pause("wf-1")
    assert (info.value.status, info.value.message) == (409, "Workflow wf-1 is not in RUNNING state")
    assert info.value.body == "Workflow wf-1 is not in RUNNING state"


def test_api_error_without_a_body_uses_the_reason_phrase() -> None:
    with make_client(Recorder(httpx.Response(500))) as client:
        with pytest.raises(ApiError) as info:
            client.version()
    assert (info.value.status, info.value.message) == (500, "Internal Server Error")


def test_batch_poll_stretches_the_read_timeout_by_the_long_poll() -> None:
    recorder = Recorder(json_response([]))
    client = ConductorClient("http://conductor", timeout=2.0, transport=httpx.MockTransport(recorder))
    with client:
        client.batch_poll("t", timeout_ms=3000)
    assert recorder.last.extensions["timeout"]["read"] == pytest.approx(5.0)


def test_wait_for_workflow_returns_once_terminal() -> None:
    statuses = iter(["RUNNING", "RUNNING", "COMPLETED"])

    def handler(request: httpx.Request) -> httpx.Response:
        return json_response({"workflowId": "wf-1", "status": next(statuses)})

    with make_client(handler) as client:
        assert client.wait_for_workflow("wf-1", timeout=5)["status"] == "COMPLETED"


def test_wait_for_workflow_times_out_with_the_last_status() -> None:
    with make_client(Recorder(json_response({"status": "PAUSED"}))) as client:
        with pytest.raises(TimeoutError, match="PAUSED"):
            client.wait_for_workflow("wf-1", timeout=0.05)


# -- worker outcome mapping ----------------------------------------------------------------------

TASK = {"taskId": "t-1", "workflowInstanceId": "wf-1", "taskType": "t", "inputData": {"n": 2}}


def test_dict_result_completes_with_that_output() -> None:
    result = Worker("t", lambda task: {"double": task["inputData"]["n"] * 2}).execute(TASK, "me")
    assert result == {
        "workflowInstanceId": "wf-1",
        "taskId": "t-1",
        "workerId": "me",
        "status": "COMPLETED",
        "outputData": {"double": 4},
    }


def test_non_dict_result_is_wrapped() -> None:
    result = Worker("t", lambda task: [1, 2]).execute(TASK)
    assert (result["status"], result["outputData"]) == ("COMPLETED", {"result": [1, 2]})
    assert "workerId" not in result


def test_exception_fails_the_task_with_reason_and_traceback() -> None:
    def boom(task: dict[str, Any]) -> None:
        raise ValueError("bad input")

    result = Worker("t", boom).execute(TASK)
    assert result["status"] == "FAILED"
    assert result["reasonForIncompletion"] == "bad input"
    [entry] = result["logs"]
    assert entry["taskId"] == "t-1"
    assert "Traceback" in entry["log"] and "ValueError: bad input" in entry["log"]
    assert entry["createdTime"] > 1_000_000_000_000  # epoch milliseconds


def test_non_retryable_error_is_a_terminal_failure() -> None:
    def give_up(task: dict[str, Any]) -> None:
        raise NonRetryableError("account closed")

    result = Worker("t", give_up).execute(TASK)
    assert (result["status"], result["reasonForIncompletion"]) == (
        "FAILED_WITH_TERMINAL_ERROR",
        "account closed",
    )


def test_task_in_progress_sets_the_callback() -> None:
    result = Worker("t", lambda task: TaskInProgress(5, {"progress": 0.5})).execute(TASK)
    assert result["status"] == "IN_PROGRESS"
    assert result["callbackAfterSeconds"] == 5
    assert result["outputData"] == {"progress": 0.5}


# -- worker runner against a fake server ---------------------------------------------------------


class FakeConductor:
    """Just enough of /api/tasks for a worker: a queue per type, batch poll, update-v2 and v1 update."""

    def __init__(self, *, v2: bool = True, chain: bool = True) -> None:
        self.v2 = v2
        self.chain = chain
        self.queues: dict[str, list[dict[str, Any]]] = {}
        self.types: dict[str, str] = {}
        self.results: list[dict[str, Any]] = []
        self.calls: list[tuple[str, str]] = []
        self.cond = threading.Condition()

    def enqueue(self, task_type: str, *task_ids: str) -> None:
        with self.cond:
            for task_id in task_ids:
                task = {
                    "taskId": task_id,
                    "workflowInstanceId": "wf-1",
                    "taskType": task_type,
                    "inputData": {},
                }
                self.queues.setdefault(task_type, []).append(task)
                self.types[task_id] = task_type
            self.cond.notify_all()

    def results_for(self, task_id: str) -> list[dict[str, Any]]:
        with self.cond:
            return [r for r in self.results if r["taskId"] == task_id]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        with self.cond:
            self.calls.append((request.method, path))
            if path.startswith("/api/tasks/poll/batch/"):
                queue = self.queues.setdefault(path.rsplit("/", 1)[1], [])
                count = int(request.url.params["count"])
                self.cond.wait_for(lambda: bool(queue), timeout=int(request.url.params["timeout"]) / 1000)
                tasks, queue[:] = queue[:count], queue[count:]
                return json_response(tasks)
            if path == "/api/tasks/update-v2":
                if not self.v2:
                    return json_response(
                        {"status": 404, "message": "No static resource", "retryable": False}, 404
                    )
                result = orjson.loads(request.content)
                self.results.append(result)
                queue = self.queues[self.types[result["taskId"]]]
                if self.chain and result["status"] == "COMPLETED" and queue:
                    return json_response(queue.pop(0))
                return NO_CONTENT
            if path == "/api/tasks" and request.method == "POST":
                result = orjson.loads(request.content)
                self.results.append(result)
                return text(result["taskId"])
        return json_response({"status": 404, "message": f"no route {path}", "retryable": False}, 404)


@pytest.fixture
def fake() -> FakeConductor:
    return FakeConductor()


def runner_for(handler: Handler, workers: list[Worker], **kwargs: Any) -> WorkerRunner:
    return WorkerRunner(lambda: make_client(handler), workers, worker_id="test-worker", **kwargs)


@pytest.fixture
def running() -> Iterator[list[WorkerRunner]]:
    """Runners appended here are stopped at teardown even when the test fails."""
    runners: list[WorkerRunner] = []
    yield runners
    for runner in runners:
        runner.stop(timeout=2)


def test_runner_executes_and_reports_through_update_v2(fake: FakeConductor, running) -> None:
    fake.enqueue("double", "double-1", "double-2", "double-3")
    seen: list[str] = []

    def double(task: dict[str, Any]) -> dict[str, Any]:
        seen.append(task["taskId"])
        return {"ok": True}

    runner = runner_for(fake, [Worker("double", double, poll_timeout_ms=20)])
    running.append(runner)
    runner.start()
    wait_until(lambda: len(fake.results) == 3)
    assert runner.stop(timeout=2)

    assert seen == ["double-1", "double-2", "double-3"]
    assert {r["status"] for r in fake.results} == {"COMPLETED"}
    assert {r["workerId"] for r in fake.results} == {"test-worker"}
    # one poll handed out double-1; update-v2 handed back double-2 and then double-3
    assert ("POST", "/api/tasks") not in fake.calls
    stats = runner.stats["double"]
    assert (stats["polled"], stats["completed"], stats["failed"], stats["errors"]) == (3, 3, 0, 0)


def test_update_v2_chaining_skips_the_poll(running) -> None:
    fake = FakeConductor()
    fake.enqueue("t", "t-1", "t-2")
    polls_before_second: list[int] = []

    def work(task: dict[str, Any]) -> dict[str, Any]:
        if task["taskId"] == "t-2":
            polls_before_second.append(sum(1 for _, p in fake.calls if p.startswith("/api/tasks/poll/")))
        return {}

    runner = runner_for(fake, [Worker("t", work, poll_count=1, poll_timeout_ms=20)])
    running.append(runner)
    runner.start()
    wait_until(lambda: len(fake.results) == 2)
    assert polls_before_second == [1]  # t-2 arrived in the update-v2 answer, not from a second poll


def test_falls_back_to_v1_when_update_v2_is_missing(running) -> None:
    fake = FakeConductor(v2=False)
    fake.enqueue("t", "t-1", "t-2", "t-3")
    runner = runner_for(fake, [Worker("t", lambda task: {"done": True}, poll_timeout_ms=20)])
    running.append(runner)
    runner.start()
    wait_until(lambda: len(fake.results) == 3)
    assert runner.stop(timeout=2)

    assert fake.calls.count(("POST", "/api/tasks/update-v2")) == 1  # tried once, then never again
    assert fake.calls.count(("POST", "/api/tasks")) == 3
    assert runner.stats["t"]["errors"] == 0


def test_failures_and_in_progress_are_reported_and_counted(fake: FakeConductor, running) -> None:
    fake.enqueue("t", "t-ok", "t-fail", "t-terminal", "t-wait")

    def work(task: dict[str, Any]) -> Any:
        match task["taskId"]:
            case "t-fail":
                raise RuntimeError("flaky")
            case "t-terminal":
                raise NonRetryableError("nope")
            case "t-wait":
                return TaskInProgress(30)
        return 42

    runner = runner_for(fake, [Worker("t", work, poll_count=4, poll_timeout_ms=20)])
    running.append(runner)
    runner.start()
    wait_until(lambda: len(fake.results) == 4)
    by_id = {r["taskId"]: r for r in fake.results}
    assert by_id["t-ok"]["outputData"] == {"result": 42}
    assert by_id["t-fail"]["status"] == "FAILED"
    assert by_id["t-terminal"]["status"] == "FAILED_WITH_TERMINAL_ERROR"
    assert (by_id["t-wait"]["status"], by_id["t-wait"]["callbackAfterSeconds"]) == ("IN_PROGRESS", 30)
    stats = runner.stats["t"]
    assert (stats["completed"], stats["failed"], stats["in_progress"]) == (1, 2, 1)


def test_graceful_stop_finishes_and_reports_the_task_in_hand(fake: FakeConductor, running) -> None:
    fake.enqueue("slow", "slow-1", "slow-2")
    started = threading.Event()
    runner: WorkerRunner

    def slow(task: dict[str, Any]) -> dict[str, Any]:
        started.set()
        wait_until(lambda: runner.stopping)  # stop() has been called while we hold the task
        return {"finished": True}

    runner = runner_for(fake, [Worker("slow", slow, poll_timeout_ms=20)])
    running.append(runner)
    runner.start()
    assert started.wait(5)
    assert runner.stop(timeout=5)

    assert fake.results_for("slow-1") == [
        {
            "workflowInstanceId": "wf-1",
            "taskId": "slow-1",
            "workerId": "test-worker",
            "status": "COMPLETED",
            "outputData": {"finished": True},
        }
    ]
    # reported with v1 while stopping, so the server did not hand over slow-2
    assert fake.calls[-1] == ("POST", "/api/tasks")
    assert fake.queues["slow"][0]["taskId"] == "slow-2"


def test_transport_errors_back_off_and_recover(running) -> None:
    fake = FakeConductor()
    fake.enqueue("t", "t-1")
    failures = iter(range(2))

    def flaky(request: httpx.Request) -> httpx.Response:
        if next(failures, None) is not None:
            raise httpx.ConnectError("connection refused", request=request)
        return fake(request)

    runner = runner_for(flaky, [Worker("t", lambda task: {}, poll_timeout_ms=20)])
    running.append(runner)
    runner.start()
    wait_until(lambda: len(fake.results) == 1)
    assert runner.stats["t"]["errors"] == 2


def test_stop_interrupts_the_back_off(running) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    runner = runner_for(down, [Worker("t", lambda task: {})], threads_per_worker=2)
    running.append(runner)
    runner.start()
    wait_until(lambda: runner.stats["t"]["errors"] >= 8)  # both threads are now in 0.8 s+ waits
    began = time.monotonic()
    assert runner.stop(timeout=5)
    assert time.monotonic() - began < 0.5


def test_runner_is_a_context_manager(fake: FakeConductor) -> None:
    fake.enqueue("t", "t-1")
    with runner_for(fake, [Worker("t", lambda task: {}, poll_timeout_ms=20)]) as runner:
        wait_until(lambda: len(fake.results) == 1)
    assert runner.stopping
    assert runner.stats["t"]["completed"] == 1
