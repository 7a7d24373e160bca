"""Workers from plain functions: binding, outcomes, async, thread-local output capture, the runner's
counters and lifecycle, and the progress display (no server: a fake over httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import io
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any, TypedDict

import pytest

from conductor_lab.client import capture
from conductor_lab.client.worker import (
    MAX_LOG_ENTRIES,
    NonRetryableError,
    TaskInProgress,
    Worker,
    WorkerRunner,
)
from conductor_lab.widgets.progress import TextProgress, WorkerProgress, render_html, render_text
from tests.conftest import wait_until
from tests.unit.test_client import FakeConductor, make_client

Json = dict[str, Any]


def task(**inputs: Any) -> Json:
    return {"taskId": "t-1", "workflowInstanceId": "wf-1", "taskType": "t", "inputData": inputs}


def outcome(result: Json) -> tuple[str, Json]:
    return result["status"], result["outputData"]


def log_text(result: Json) -> str:
    return "\n".join(entry["log"] for entry in result.get("logs", []))


@pytest.fixture(autouse=True)
def routing_is_released() -> Iterator[None]:
    """Every test must leave sys.stdout/stderr and the root logger as it found them."""
    stdout, stderr, level, handlers = sys.stdout, sys.stderr, logging.root.level, list(logging.root.handlers)
    yield
    assert not capture.installed()
    assert (sys.stdout, sys.stderr) == (stdout, stderr)
    assert (logging.root.level, logging.root.handlers) == (level, handlers)


# -- binding -------------------------------------------------------------------------------------


def test_a_first_parameter_named_task_receives_the_task() -> None:
    def work(task, extra=1):  # type: ignore[no-untyped-def]
        return {"id": task["taskId"], "n": task["inputData"]["n"], "extra": extra}

    worker = Worker("t", work)
    assert worker.passes_task
    assert outcome(worker.execute(task(n=2))) == ("COMPLETED", {"id": "t-1", "n": 2, "extra": 1})


class TaskJson(TypedDict):
    taskId: str
    inputData: Json


def by_typed_dict(t: TaskJson) -> Json:
    return {"id": t["taskId"]}


def by_mapping(t: dict[str, Any]) -> Json:
    return {"id": t["taskId"]}


def test_a_dict_or_task_annotated_first_parameter_receives_the_task() -> None:
    class Task:  # a local class: its annotation text cannot be evaluated, the name still counts
        pass

    def by_class(t: Task) -> Json:
        return {"id": t["taskId"]}  # type: ignore[index]

    for fn in (by_typed_dict, by_mapping, by_class):
        assert outcome(Worker("t", fn).execute(task())) == ("COMPLETED", {"id": "t-1"}), fn


def test_inputs_are_bound_by_name_with_defaults_and_extras_ignored() -> None:
    def fetch(url: str, retries: int = 3) -> Json:
        return {"url": url, "retries": retries}

    worker = Worker.from_function("fetch", fetch, threads=2, poll_count=4)
    assert (worker.threads, worker.poll_count) == (2, 4)
    assert not worker.passes_task and worker.signature == "fetch(url, retries)"
    assert outcome(worker.execute(task(url="u", unrelated=True))) == ("COMPLETED", {"url": "u", "retries": 3})
    assert outcome(worker.execute(task(url="u", retries=0)))[1] == {"url": "u", "retries": 0}


def test_var_keyword_gets_the_inputs_no_parameter_names() -> None:
    def fn(a: int, /, b: int, *, c: int = 0, **rest: Any) -> Json:
        return {"a": a, "b": b, "c": c, "rest": rest}

    result = Worker("t", fn).execute(task(a=1, b=2, c=3, d=4, **{"not an identifier": 5}))
    assert outcome(result) == (
        "COMPLETED",
        {"a": 1, "b": 2, "c": 3, "rest": {"d": 4, "not an identifier": 5}},
    )


def test_bind_overrides_the_automatic_choice() -> None:
    def save(record: dict[str, Any]) -> Json:
        return {"saved": record}

    assert Worker("t", save).passes_task
    assert outcome(Worker("t", save, bind="inputs").execute(task(record={"k": 1}))) == (
        "COMPLETED",
        {"saved": {"k": 1}},
    )
    assert Worker("t", lambda whole: {"id": whole["taskId"]}, bind="task").execute(task())["outputData"] == {
        "id": "t-1"
    }


def test_a_keyword_only_task_parameter_and_a_bad_bind() -> None:
    def work(*, task: Json, extra: int = 1) -> Json:
        return {"id": task["taskId"], "extra": extra}

    assert outcome(Worker("t", work).execute(task())) == ("COMPLETED", {"id": "t-1", "extra": 1})
    with pytest.raises(ValueError, match="bind must be"):
        Worker("t", work, bind="everything")  # type: ignore[arg-type]


def test_functions_without_parameters_or_signature() -> None:
    assert outcome(Worker("t", lambda: {"pong": True}).execute(task(x=1))) == ("COMPLETED", {"pong": True})
    # a builtin has no signature: it gets the task, as before function binding existed
    assert outcome(Worker("t", dict).execute(task(x=1)))[1]["inputData"] == {"x": 1}


def test_a_missing_required_input_fails_retryably_with_the_signature() -> None:
    def fetch(x: int, y: int) -> Json:
        raise AssertionError("must not be called")

    result = Worker("fetch", fetch).execute(task(y=1))
    assert result["status"] == "FAILED"
    assert result["reasonForIncompletion"] == "missing input 'x' for fetch(x, y)"
    assert "logs" not in result  # nothing ran: no traceback
    many = Worker("fetch", fetch).execute(task())
    assert many["reasonForIncompletion"] == "missing inputs 'x', 'y' for fetch(x, y)"


# -- outcomes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": 1}, ("COMPLETED", {"a": 1})),
        (None, ("COMPLETED", {})),
        (7, ("COMPLETED", {"result": 7})),
        ([1, "x"], ("COMPLETED", {"result": [1, "x"]})),
        (TaskInProgress(9, {"p": 0.5}), ("IN_PROGRESS", {"p": 0.5})),
    ],
)
def test_return_shapes(value: Any, expected: tuple[str, Json]) -> None:
    result = Worker("t", lambda: value).execute(task())
    assert outcome(result) == expected
    if isinstance(value, TaskInProgress):
        assert result["callbackAfterSeconds"] == 9


def test_exceptions_fail_with_the_reason_and_the_functions_traceback() -> None:
    def explode(n: int) -> None:
        raise ValueError(f"bad n={n}")

    def give_up() -> None:
        raise NonRetryableError("account closed")

    result = Worker("t", explode).execute(task(n=3))
    assert (result["status"], result["reasonForIncompletion"]) == ("FAILED", "bad n=3")
    trace = log_text(result)
    assert trace.startswith("Traceback") and "in explode" in trace and "ValueError: bad n=3" in trace
    assert "worker.py" not in trace  # the runner's own frames are left out
    terminal = Worker("t", give_up).execute(task())
    assert (terminal["status"], terminal["reasonForIncompletion"]) == (
        "FAILED_WITH_TERMINAL_ERROR",
        "account closed",
    )


def test_output_that_is_not_json_fails_the_task_with_a_reason() -> None:
    result = Worker("t", lambda: {"when": object()}).execute(task())
    assert result["status"] == "FAILED"
    assert result["reasonForIncompletion"].startswith("output of <lambda>() is not JSON serializable")


# -- async functions -----------------------------------------------------------------------------


async def double_later(n: int) -> Json:
    await asyncio.sleep(0)
    print("doubling", n)
    return {"double": n * 2}


def test_coroutine_functions_run_to_completion() -> None:
    result = Worker("t", double_later).execute(task(n=4))
    assert outcome(result) == ("COMPLETED", {"double": 8})
    assert log_text(result) == "doubling 4"


def test_coroutine_functions_from_inside_a_running_loop() -> None:
    async def main() -> Json:
        return Worker("t", double_later).execute(task(n=5))  # a notebook cell calling execute() itself

    result = asyncio.run(main())
    assert outcome(result) == ("COMPLETED", {"double": 10})
    assert log_text(result) == "doubling 5"  # printed in the helper thread, still this task's


def test_async_exceptions_fail_the_task() -> None:
    async def broken() -> None:
        await asyncio.sleep(0)
        raise RuntimeError("async boom")

    result = Worker("t", broken).execute(task())
    assert (result["status"], result["reasonForIncompletion"]) == ("FAILED", "async boom")
    assert "RuntimeError: async boom" in log_text(result)


# -- capture -------------------------------------------------------------------------------------


def test_prints_and_log_records_become_task_logs_on_success() -> None:
    def chatty(n: int) -> Json:
        print("fetching", n, "rows")
        print("partial", end="")
        print(" line")
        print()  # empty lines are dropped
        print("to stderr", file=sys.stderr)
        logging.getLogger("app.fetch").info("fetched %d rows", n)
        logging.getLogger("app.fetch").debug("not at the capture level")
        return {"n": n}

    result = Worker("t", chatty).execute(task(n=3))
    assert result["status"] == "COMPLETED"
    assert [e["log"] for e in result["logs"]] == [
        "fetching 3 rows",
        "partial line",
        "to stderr",
        "INFO app.fetch: fetched 3 rows",
    ]
    assert all(e["taskId"] == "t-1" and e["createdTime"] > 1_000_000_000_000 for e in result["logs"])


def test_failure_keeps_the_printed_lines_before_the_traceback() -> None:
    def fails() -> None:
        print("step 1 done")
        logging.getLogger("app").warning("about to fail")
        raise KeyError("missing")

    logs = [e["log"] for e in Worker("t", fails).execute(task())["logs"]]
    assert logs[:2] == ["step 1 done", "WARNING app: about to fail"]
    assert logs[2].startswith("Traceback") and "KeyError: 'missing'" in logs[2]


def test_capture_is_off_on_request() -> None:
    result = Worker("t", lambda: print("hello"), capture_output=False).execute(task())
    assert "logs" not in result


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_only_the_worker_thread_is_captured(capsys: pytest.CaptureFixture[str]) -> None:
    """While the function runs, another thread (the notebook) prints and logs: untouched."""
    in_fn, main_done = threading.Event(), threading.Event()
    collector = ListHandler()
    logging.root.addHandler(collector)
    level = logging.root.level
    logging.root.setLevel(logging.WARNING)  # Python's default, whatever pytest was told
    results: list[Json] = []

    def work() -> None:
        print("from the worker")
        logging.getLogger("app").warning("worker warning")
        in_fn.set()
        assert main_done.wait(5)

    try:
        thread = threading.Thread(target=lambda: results.append(Worker("t", work).execute(task())))
        thread.start()
        assert in_fn.wait(5)
        assert isinstance(sys.stdout, capture._Router)  # routing is held while the task runs
        print("from the notebook")
        logging.getLogger("app").warning("notebook warning")
        logging.getLogger("app").info("notebook info")  # root is at WARNING: still dropped
        main_done.set()
        thread.join(5)
    finally:
        logging.root.removeHandler(collector)
        logging.root.setLevel(level)

    assert log_text(results[0]) == "from the worker\nWARNING app: worker warning"
    out = capsys.readouterr().out
    assert "from the notebook" in out and "from the worker" not in out
    # the handler configured before keeps its level (WARNING) for every thread: the worker's warning
    # reaches it as it always did, the notebook's INFO (passed by the lowered root level) does not
    assert [r.getMessage() for r in collector.records] == ["worker warning", "notebook warning"]


def test_last_resort_output_of_other_threads_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    """With no handler configured, a warning still reaches stderr through logging.lastResort."""
    saved = logging.root.handlers[:]
    logging.root.handlers.clear()  # pytest's own capture handlers would hide lastResort
    try:
        with capture.routing():
            logging.getLogger("app").warning("nobody configured logging")
            logging.getLogger("app").info("below lastResort's level")
    finally:
        logging.root.handlers[:] = saved
    assert capsys.readouterr().err == "nobody configured logging\n"


def test_captured_text_is_capped_with_a_truncation_line() -> None:
    def flood() -> None:
        for i in range(200):
            print(f"line {i:03d} " + "x" * 90)
        print("y" * 5000, end="")  # a partial line over the cap must not grow without bound

    worker = Worker("t", flood, capture_limit=1000)
    logs = [e["log"] for e in worker.execute(task())["logs"]]
    text = "\n".join(logs)
    assert text.startswith("line 000 ")
    assert sum(len(line) for line in text.split("\n")[:-1]) <= 1000
    dropped = 200 * len("line 000 " + "x" * 90) + 5000 - 1000  # newlines are not counted
    assert text.endswith(f"[output truncated: {dropped} more characters; the limit is 1000 per task]")


def test_many_lines_are_packed_into_the_entries_the_server_keeps() -> None:
    def noisy() -> None:
        for i in range(50):
            print(f"line {i}")
        raise RuntimeError("after the noise")

    logs = Worker("t", noisy).execute(task())["logs"]
    assert len(logs) == MAX_LOG_ENTRIES
    assert "\n".join(e["log"] for e in logs[:-1]).split("\n") == [f"line {i}" for i in range(50)]
    assert "RuntimeError: after the noise" in logs[-1]["log"]


def test_routing_holds_are_counted_and_the_last_release_restores() -> None:
    original = sys.stdout
    capture.install()
    capture.install(logging.DEBUG)
    assert isinstance(sys.stdout, capture._Router) and logging.root.level == logging.DEBUG
    capture.release(logging.DEBUG)
    assert isinstance(sys.stdout, capture._Router)
    capture.release()
    assert sys.stdout is original


def test_a_stream_replaced_meanwhile_is_left_alone() -> None:
    original = sys.stdout
    replacement = io.StringIO()
    capture.install()
    try:
        router = sys.stdout
        sys.stdout = replacement  # e.g. contextlib.redirect_stdout in a cell
        capture.release()
        assert sys.stdout is replacement
        assert router.isatty() == original.isatty()  # attributes forward to the original
    finally:
        sys.stdout = original


# -- the runner ----------------------------------------------------------------------------------


def runner_for(fake: FakeConductor, workers: list[Worker], **kwargs: Any) -> WorkerRunner:
    return WorkerRunner(lambda: make_client(fake), workers, worker_id="test-worker", **kwargs)


@pytest.fixture
def runners() -> Iterator[list[WorkerRunner]]:
    """Runners appended here are stopped at teardown even when the test fails."""
    started: list[WorkerRunner] = []
    yield started
    for r in started:
        r.stop(timeout=2)


def test_the_runner_captures_per_task_and_restores_stdout_after_stop(runners: list[WorkerRunner]) -> None:
    fake = FakeConductor()
    fake.enqueue("greet", "g-1", "g-2")
    for i, t in enumerate(fake.queues["greet"]):
        t["inputData"] = {"name": f"n{i}"}

    def greet(name: str) -> Json:
        print("hello", name)
        return {"greeting": name}

    original = sys.stdout
    runner = runner_for(fake, [Worker("greet", greet, poll_timeout_ms=20)])
    runners.append(runner)
    runner.start()
    assert isinstance(sys.stdout, capture._Router)
    wait_until(lambda: len(fake.results) == 2)
    assert runner.stop(timeout=2)
    assert sys.stdout is original and not capture.installed()
    assert {r["taskId"]: log_text(r) for r in fake.results} == {"g-1": "hello n0", "g-2": "hello n1"}


def test_threads_per_worker_running_counter_and_snapshot(runners: list[WorkerRunner]) -> None:
    fake = FakeConductor(chain=False)
    fake.enqueue("slow", *(f"s-{i}" for i in range(3)))
    release = threading.Event()

    def slow() -> None:
        assert release.wait(5)

    runner = runner_for(
        fake,
        [
            Worker("slow", slow, threads=3, poll_timeout_ms=20),
            Worker("idle", lambda: None, poll_timeout_ms=20),
        ],
    )
    runners.append(runner)
    assert runner.snapshot().state == "stopped"
    runner.start()
    assert sorted(t.name for t in threading.enumerate() if t.name.startswith("worker-slow")) == [
        "worker-slow-0",
        "worker-slow-1",
        "worker-slow-2",
    ]
    wait_until(lambda: runner.stats["slow"]["running"] == 3, what="three tasks in hand at once")
    snapshot = runner.snapshot()
    slow_row, idle_row = snapshot.types
    assert (snapshot.state, snapshot.starts) == ("running", 1)
    assert (slow_row.task_type, slow_row.threads, slow_row.polled, slow_row.running) == ("slow", 3, 3, 3)
    assert slow_row.last_poll_age is not None and slow_row.last_poll_age >= 0
    assert slow_row.last_poll_time is not None and slow_row.last_poll_time > 1_000_000_000
    assert (idle_row.threads, idle_row.completed) == (1, 0)
    release.set()
    wait_until(lambda: len(fake.results) == 3)
    assert runner.stop(timeout=2)
    final = runner.snapshot().types[0]
    assert (final.running, final.completed, final.rate > 0) == (0, 3, True)


def test_stop_while_tasks_run_reports_them_and_restart_works(runners: list[WorkerRunner]) -> None:
    fake = FakeConductor()
    fake.enqueue("t", "t-1")
    started = threading.Event()
    runner: WorkerRunner

    def work(task: Json) -> Json:
        if task["taskId"] == "t-1":
            started.set()
            wait_until(lambda: runner.stopping)  # stop() is called while we hold the task
        return {"id": task["taskId"]}

    runner = runner_for(fake, [Worker("t", work, poll_timeout_ms=20)])
    runners.append(runner)
    runner.start()
    assert started.wait(5)
    assert runner.state == "running"
    assert runner.stop(timeout=5)
    assert runner.state == "stopped"
    assert [r["outputData"] for r in fake.results] == [{"id": "t-1"}]
    assert not [t for t in threading.enumerate() if t.name.startswith("worker-t-")]

    fake.enqueue("t", "t-2")
    runner.start()  # again, with the same counters
    wait_until(lambda: len(fake.results) == 2)
    assert runner.stop(timeout=5)
    assert runner.stats["t"]["completed"] == 2 and runner.starts == 2


def test_start_twice_is_refused(runners: list[WorkerRunner]) -> None:
    runner = runner_for(FakeConductor(), [Worker("t", lambda: None, poll_timeout_ms=20)])
    runners.append(runner)
    runner.start()
    with pytest.raises(RuntimeError, match="already running"):
        runner.start()


# -- progress display ----------------------------------------------------------------------------


def test_text_and_html_snapshots_are_stable() -> None:
    runner = runner_for(FakeConductor(), [Worker("fetch <x>", lambda: None, threads=2)])
    progress = WorkerProgress(runner)
    assert not progress.live and progress.widget is None  # no running loop: a snapshot
    text = repr(progress)
    assert text == repr(progress) and "0x" not in text
    assert text.splitlines()[0] == "WorkerProgress(stopped)"
    assert text.splitlines()[2].split() == "fetch <x> ■ stopped 2 0 0 0 0 0 0.0 never".split()
    bundle = progress._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}
    assert "fetch &lt;x&gt;" in bundle["text/html"] and "<table" in bundle["text/html"]
    assert render_text(runner.snapshot()) in text
    assert render_html(runner.snapshot()) == progress._repr_html_()


def test_live_progress_refreshes_on_the_loop_and_ends_when_the_runner_stops(
    runners: list[WorkerRunner],
) -> None:
    fake = FakeConductor()
    fake.enqueue("t", *(f"t-{i}" for i in range(5)))
    runner = runner_for(fake, [Worker("t", lambda: {"ok": True}, poll_timeout_ms=20)])
    runners.append(runner)
    value_threads: set[str] = set()

    async def cell() -> WorkerProgress:
        progress = WorkerProgress(runner, interval=0.01, live=True)
        progress.table.observe(lambda change: value_threads.add(threading.current_thread().name), "value")
        assert progress.live and "application/vnd.jupyter.widget-view+json" in progress._repr_mimebundle_()
        runner.start()
        while len(fake.results) < 5:
            await asyncio.sleep(0.01)
        assert await asyncio.to_thread(runner.stop, 2)
        while progress.live:  # the timer makes its final refresh and ends by itself
            await asyncio.sleep(0.01)
        assert "stopped" in progress.table.value and ">5<" in progress.table.value  # completed = 5

        fake.enqueue("t", "t-5")
        runner.start()  # a restart: watch() re-arms the timer
        progress.watch()
        while len(fake.results) < 6:
            await asyncio.sleep(0.01)
        assert await asyncio.to_thread(runner.stop, 2)
        while progress.live:
            await asyncio.sleep(0.01)
        return progress

    loop_thread = threading.current_thread().name
    progress = asyncio.run(cell())
    assert progress.refreshes >= 2
    assert value_threads == {loop_thread}  # widgets were only written on the loop's thread
    final = progress.table.value
    assert "stopped" in final and ">6<" in final
    progress.close()


def test_text_progress_draws_tqdm_bars_until_the_runner_stops(runners: list[WorkerRunner]) -> None:
    fake = FakeConductor()
    fake.enqueue("t", "t-1", "t-2")
    runner = runner_for(fake, [Worker("t", lambda: None, poll_timeout_ms=20)])
    runners.append(runner)
    out = io.StringIO()
    display = TextProgress(runner, interval=0.01, file=out)
    runner.start()
    wait_until(lambda: len(fake.results) == 2)
    assert runner.stop(timeout=2)
    assert display.join(5)
    assert "t: 2task" in out.getvalue() and "stopped" in out.getvalue()
