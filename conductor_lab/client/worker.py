"""Run Python functions as Conductor workers over the REST API.

    def fetch(url: str, retries: int = 3) -> dict:       # inputData bound by parameter name
        print("fetching", url)                            # -> a line in the task's log
        return {"status": 200}

    def greet(task: dict) -> dict:                        # first parameter `task`: the polled task
        return {"greeting": f"hello {task['inputData']['name']}"}

    with WorkerRunner("http://127.0.0.1:8080", [Worker("fetch", fetch, threads=4), Worker("greet", greet)]):
        ...  # workflows using "fetch" and "greet" tasks now make progress

How a task becomes a call of ``fn`` is decided once, from its signature (see :class:`Worker`);
what ``fn`` returns decides the TaskResult (see :meth:`Worker.execute`). What ``fn`` prints and
logs on its thread becomes the task's log (:mod:`conductor_lab.client.capture`).

The loop follows the official SDK: long-poll a batch, execute, report with ``update-v2`` and run
the task it hands back straight away; fall back to ``POST /tasks`` for good when update-v2 answers
404/405.
"""

from __future__ import annotations

import asyncio
import collections.abc
import inspect
import logging
import re
import socket
import threading
import time
import traceback
import typing
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Literal

import orjson

from conductor_lab.client import capture
from conductor_lab.client.errors import ApiError
from conductor_lab.client.http import ConductorClient

log = logging.getLogger(__name__)

Json = dict[str, Any]
Binding = Literal["auto", "task", "inputs"]
MAX_BACKOFF_SECONDS = 2.0
REPORT_ATTEMPTS = 3
MAX_LOG_ENTRIES = 10  # TaskExecLogs per TaskResult the server keeps; the traceback takes the last
RATE_WINDOW_SECONDS = 5.0


class NonRetryableError(Exception):
    """Raise from a worker to fail the task with FAILED_WITH_TERMINAL_ERROR (no retries)."""


class MissingInputError(Exception):
    """The task's inputData lacks a required parameter of the worker function (the task FAILS,
    retryably: a retry after the input is fixed can pass)."""


@dataclass(frozen=True)
class TaskInProgress:
    """Return from a worker to report IN_PROGRESS; the task comes back after the callback delay."""

    callback_after_seconds: int = 0
    output: Json | None = None


# ------------------------------------------------------------------------------------------------
# Binding a polled task to a function call

_TASKISH_TEXT = re.compile(
    r"^(?:typing\.)?(?:dict|Dict|Mapping|MutableMapping|Json|JSON|JsonDict|\w*Task|\w*TaskJson)(?:\[.*\])?$"
)
_KEYWORD_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _is_taskish(annotation: Any) -> bool:
    """dict / Mapping / a TypedDict / a class named ``...Task`` (or such text, when unevaluated)."""
    if annotation is inspect.Parameter.empty:
        return False
    if isinstance(annotation, str):
        return bool(_TASKISH_TEXT.match(annotation.replace(" ", "")))
    origin = typing.get_origin(annotation) or annotation
    if origin in (dict, collections.abc.Mapping, collections.abc.MutableMapping):
        return True
    if typing.is_typeddict(origin):
        return True
    return isinstance(origin, type) and origin.__name__.endswith("Task")


def _signature(fn: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(fn, eval_str=True)
    except (NameError, SyntaxError, TypeError):  # annotations naming things that are not importable
        try:
            return inspect.signature(fn)
        except (TypeError, ValueError):
            return None
    except ValueError:  # builtins without a signature
        return None


@dataclass(frozen=True)
class _Call:
    """How a task becomes the arguments of ``fn``: the whole task, or inputData by parameter name."""

    pass_task: bool
    task_keyword: str | None = None  # the task goes by this keyword (a keyword-only first parameter)
    positional: tuple[str, ...] = ()  # positional-only parameters
    keywords: tuple[str, ...] = ()  # parameters passed by keyword
    required: frozenset[str] = frozenset()
    var_keyword: bool = False  # **kwargs takes the inputs no parameter names
    display: str = "fn()"

    @classmethod
    def of(cls, fn: Callable[..., Any], bind: Binding) -> _Call:
        name = getattr(fn, "__name__", None) or type(fn).__name__
        sig = _signature(fn)
        if sig is None:
            return cls(pass_task=True, display=f"{name}(task)")
        params = list(sig.parameters.values())
        shown = [
            ("*" if p.kind == p.VAR_POSITIONAL else "**" if p.kind == p.VAR_KEYWORD else "") + p.name
            for p in params
        ]
        display = f"{name}({', '.join(shown)})"
        first = params[0] if params else None
        wants_task = (
            first is not None
            and first.kind not in (first.VAR_POSITIONAL, first.VAR_KEYWORD)
            and (first.name == "task" or _is_taskish(first.annotation))
        )
        if bind == "task" or (bind == "auto" and wants_task):
            keyword = first.name if first is not None and first.kind == first.KEYWORD_ONLY else None
            return cls(pass_task=True, task_keyword=keyword, display=display)
        return cls(
            pass_task=False,
            positional=tuple(p.name for p in params if p.kind == p.POSITIONAL_ONLY),
            keywords=tuple(p.name for p in params if p.kind in _KEYWORD_KINDS),
            required=frozenset(
                p.name
                for p in params
                if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            ),
            var_keyword=any(p.kind == p.VAR_KEYWORD for p in params),
            display=display,
        )

    def arguments(self, task: Json) -> tuple[tuple[Any, ...], Json]:
        if self.pass_task:
            return ((), {self.task_keyword: task}) if self.task_keyword else ((task,), {})
        inputs = task.get("inputData") or {}
        missing = [n for n in (*self.positional, *self.keywords) if n in self.required and n not in inputs]
        if missing:
            noun = "input" if len(missing) == 1 else "inputs"
            names = ", ".join(repr(n) for n in missing)
            raise MissingInputError(f"missing {noun} {names} for {self.display}")
        args: list[Any] = []
        for n in self.positional:  # an absent optional one ends the positional run
            if n not in inputs:
                break
            args.append(inputs[n])
        kwargs = {n: inputs[n] for n in self.keywords if n in inputs}
        if self.var_keyword:
            taken = set(self.positional) | set(self.keywords)
            kwargs.update((k, v) for k, v in inputs.items() if k not in taken)
        return tuple(args), kwargs


def _user_traceback(exc: BaseException) -> str:
    """The traceback from the worker function's frame on (this module's frames left out)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))


def _run_coroutine(coro: Any) -> Any:
    """Run a coroutine to completion; in a helper thread if this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    outcome: list[Any] = []
    cap = capture.current()

    def run() -> None:
        with capture.bound(cap):
            try:
                outcome.append((True, asyncio.run(coro)))
            except BaseException as exc:
                outcome.append((False, exc))

    helper = threading.Thread(target=run, name="worker-coroutine", daemon=True)
    helper.start()
    helper.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


# ------------------------------------------------------------------------------------------------
# Worker


@dataclass
class Worker:
    """A task type and the function that executes it.

    Binding (``bind="auto"``): when the first parameter is named ``task`` or annotated as a dict /
    Mapping / TypedDict / ``...Task`` class, ``fn`` receives the polled task JSON. Otherwise the
    task's ``inputData`` is bound to the parameters by name: defaults apply, ``**kwargs`` takes the
    inputs no parameter names, other extra inputs are ignored, and a missing required input FAILS
    the task with ``missing input 'x' for fetch(x, y)``. ``bind="task"`` / ``"inputs"`` force a mode
    (e.g. ``def save(record: dict)`` wanting the input ``record`` needs ``bind="inputs"``).

    ``threads``: polling threads for this worker (``None``: the runner's ``threads_per_worker``).
    ``capture_output``: prints and log records (``log_level`` and up) of ``fn``'s thread become
    task log lines, at most ``capture_limit`` characters per task.
    """

    task_type: str
    fn: Callable[..., Any]
    _: KW_ONLY
    domain: str | None = None
    poll_count: int = 1
    poll_timeout_ms: int = 1000
    threads: int | None = None
    bind: Binding = "auto"
    capture_output: bool = True
    log_level: int = logging.INFO
    capture_limit: int = capture.CAPTURE_LIMIT
    _call: _Call = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, not {self.threads}")
        if self.bind not in ("auto", "task", "inputs"):
            raise ValueError(f"bind must be 'auto', 'task' or 'inputs', not {self.bind!r}")
        self._call = _Call.of(self.fn, self.bind)

    @classmethod
    def from_function(
        cls,
        task_type: str,
        fn: Callable[..., Any],
        *,
        threads: int | None = None,
        poll_count: int = 1,
        poll_timeout_ms: int = 1000,
        domain: str | None = None,
        bind: Binding = "auto",
        capture_output: bool = True,
        log_level: int = logging.INFO,
    ) -> Worker:
        """A worker for any function (the constructor with keywords only; reads well at call sites)."""
        return cls(
            task_type,
            fn,
            threads=threads,
            poll_count=poll_count,
            poll_timeout_ms=poll_timeout_ms,
            domain=domain,
            bind=bind,
            capture_output=capture_output,
            log_level=log_level,
        )

    @property
    def signature(self) -> str:
        """How ``fn`` is called, e.g. ``fetch(url, retries)``."""
        return self._call.display

    @property
    def passes_task(self) -> bool:
        """True when ``fn`` receives the whole task rather than its inputs."""
        return self._call.pass_task

    def call(self, task: Json) -> Any:
        """Call ``fn`` for a task (binding its inputs); a coroutine result is run to completion."""
        args, kwargs = self._call.arguments(task)
        value = self.fn(*args, **kwargs)
        if inspect.iscoroutine(value):
            value = _run_coroutine(value)
        return value

    def execute(self, task: Json, worker_id: str | None = None) -> Json:
        """Run ``fn`` on a polled task and turn the outcome into a TaskResult dict.

        dict -> COMPLETED with it as output; None -> COMPLETED with ``{}``; other value ->
        COMPLETED with ``{"result": value}``; TaskInProgress -> IN_PROGRESS + callbackAfterSeconds;
        NonRetryableError -> FAILED_WITH_TERMINAL_ERROR; any other exception (a missing input too)
        -> FAILED. What ``fn`` printed/logged goes in ``logs``; failures add the traceback.
        """
        task_id = task.get("taskId")
        result: Json = {"workflowInstanceId": task.get("workflowInstanceId"), "taskId": task_id}
        if worker_id is not None:
            result["workerId"] = worker_id
        logs: list[Json] = []
        if self.capture_output:
            with (
                capture.routing(self.log_level),
                capture.capturing(self.capture_limit, self.log_level) as cap,
            ):
                failure = self._run(task, result)
            logs = cap.log_entries(task_id, MAX_LOG_ENTRIES - 1)
        else:
            failure = self._run(task, result)
        if failure is not None:
            logs.append({"log": failure, "taskId": task_id, "createdTime": int(time.time() * 1000)})
        if logs:
            result["logs"] = logs
        return result

    def _run(self, task: Json, result: Json) -> str | None:
        """Call ``fn`` and fill ``result``'s status/output; returns the traceback text on failure."""
        try:
            value = self.call(task)
        except MissingInputError as exc:
            self._fail(result, "FAILED", str(exc))
            return None  # fn did not run: no traceback
        except Exception as exc:
            terminal = isinstance(exc, NonRetryableError)
            self._fail(
                result, "FAILED_WITH_TERMINAL_ERROR" if terminal else "FAILED", str(exc) or type(exc).__name__
            )
            return _user_traceback(exc)
        if isinstance(value, TaskInProgress):
            output = value.output or {}
        else:
            output = value if isinstance(value, dict) else {} if value is None else {"result": value}
        try:
            orjson.dumps(output)  # fail here, with a reason, rather than when reporting
        except TypeError as exc:
            self._fail(result, "FAILED", f"output of {self.signature} is not JSON serializable: {exc}")
            return None
        if isinstance(value, TaskInProgress):
            result["status"] = "IN_PROGRESS"
            result["callbackAfterSeconds"] = value.callback_after_seconds
        else:
            result["status"] = "COMPLETED"
        result["outputData"] = output
        return None

    @staticmethod
    def _fail(result: Json, status: str, reason: str) -> None:
        result["status"] = status
        result["reasonForIncompletion"] = reason
        result["outputData"] = {}


# ------------------------------------------------------------------------------------------------
# Runner statistics


@dataclass(frozen=True)
class TaskTypeStats:
    """Counters of one task type at one moment (a row of the progress display)."""

    task_type: str
    threads: int
    polled: int
    completed: int
    failed: int
    in_progress: int
    errors: int
    running: int  # tasks being executed right now
    rate: float  # tasks finished per second over the last RATE_WINDOW_SECONDS
    last_poll_age: float | None  # seconds since a poll last answered (None: never)
    last_poll_time: float | None  # when it answered, epoch seconds


@dataclass(frozen=True)
class RunnerSnapshot:
    """The runner's state ("running" | "stopping" | "stopped") and one row per task type."""

    state: str
    starts: int
    types: tuple[TaskTypeStats, ...]


_COUNTERS = ("polled", "completed", "failed", "in_progress", "errors", "running")
_COUNTER_FOR_STATUS = {
    "COMPLETED": "completed",
    "IN_PROGRESS": "in_progress",
    "FAILED": "failed",
    "FAILED_WITH_TERMINAL_ERROR": "failed",
}


@dataclass
class _TypeCounters:
    threads: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNTERS, 0))
    last_poll: float | None = None  # time.monotonic()
    last_poll_time: float | None = None  # time.time()
    finished: deque[float] = field(default_factory=deque)  # monotonic finish times, last window


# ------------------------------------------------------------------------------------------------
# Runner


class WorkerRunner:
    """Poll-execute-report threads for a list of workers (one client per thread).

    ``client`` is a base URL or a zero-argument factory returning a :class:`ConductorClient`
    (tests pass one built on ``httpx.MockTransport``). Each worker gets ``worker.threads`` threads
    (default ``threads_per_worker``). A runner can be started again after ``stop()``.
    """

    def __init__(
        self,
        client: str | Callable[[], ConductorClient],
        workers: Sequence[Worker],
        *,
        threads_per_worker: int = 1,
        worker_id: str | None = None,
    ) -> None:
        if isinstance(client, str):
            base_url = client
            self._client_factory: Callable[[], ConductorClient] = lambda: ConductorClient(base_url)
        else:
            self._client_factory = client
        self.workers = list(workers)
        self.threads_per_worker = threads_per_worker
        self.worker_id = worker_id or socket.gethostname()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._use_v2 = True
        self._lock = threading.Lock()
        self._starts = 0
        self._stopped_at: float | None = None
        self._started_at = 0.0
        self._routing_levels: list[int] = []
        self._types: dict[str, _TypeCounters] = {}
        for w in self.workers:
            self._types.setdefault(w.task_type, _TypeCounters()).threads += self.threads_for(w)

    def threads_for(self, worker: Worker) -> int:
        return worker.threads or self.threads_per_worker

    @property
    def stats(self) -> dict[str, dict[str, int]]:
        """Counters per task type: polled, completed, failed, in_progress, errors, running (a snapshot)."""
        with self._lock:
            return {task_type: dict(c.counts) for task_type, c in self._types.items()}

    def snapshot(self) -> RunnerSnapshot:
        """State, counters, recent rate and last-poll age per task type; cheap, for displays."""
        starts = self._starts  # before the state (see start())
        state = self.state
        now = time.monotonic()
        end = self._stopped_at if self._stopped_at is not None else now
        window = min(RATE_WINDOW_SECONDS, max(end - self._started_at, 0.0))
        rows = []
        with self._lock:
            for task_type, c in self._types.items():
                recent = sum(1 for t in c.finished if t >= end - window) if window > 0 else 0
                rows.append(
                    TaskTypeStats(
                        task_type=task_type,
                        threads=c.threads,
                        polled=c.counts["polled"],
                        completed=c.counts["completed"],
                        failed=c.counts["failed"],
                        in_progress=c.counts["in_progress"],
                        errors=c.counts["errors"],
                        running=c.counts["running"],
                        rate=recent / window if window > 0 else 0.0,
                        last_poll_age=None if c.last_poll is None else now - c.last_poll,
                        last_poll_time=c.last_poll_time,
                    )
                )
        return RunnerSnapshot(state=state, starts=starts, types=tuple(rows))

    @property
    def state(self) -> str:
        """One of "running", "stopping" (stop() called, threads finishing their tasks), "stopped"."""
        alive = any(t.is_alive() for t in self._threads)
        if not alive:
            return "stopped"
        return "stopping" if self._stop.is_set() else "running"

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def starts(self) -> int:
        """How many times ``start()`` has been called (displays use it to notice a restart)."""
        return self._starts

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        if any(t.is_alive() for t in self._threads):
            raise RuntimeError("WorkerRunner is already running")
        self._stop.clear()
        self._started_at = time.monotonic()
        self._stopped_at = None
        for level in sorted({w.log_level for w in self.workers if w.capture_output}):
            capture.install(level)  # held until stop(): no stream swapping per task
            self._routing_levels.append(level)
        self._threads = [
            threading.Thread(target=self._loop, args=(w,), name=f"worker-{w.task_type}-{i}", daemon=True)
            for w in self.workers
            for i in range(self.threads_for(w))
        ]
        for thread in self._threads:
            thread.start()
        self._starts += 1  # after the threads: whoever sees the new count also sees them alive

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop polling; tasks in hand are finished and reported. True when every thread exited in time.

        The stdout/stderr routers are released either way (the last holder restores the originals).
        """
        self._stop.set()
        deadline = time.monotonic() + timeout
        me = threading.current_thread()
        for thread in self._threads:
            if thread is not me:
                thread.join(max(0.0, deadline - time.monotonic()))
        ended = not any(t.is_alive() and t is not me for t in self._threads)
        if self._stopped_at is None and self._starts:
            self._stopped_at = time.monotonic()
        while self._routing_levels:
            capture.release(self._routing_levels.pop())
        return ended

    def __enter__(self) -> WorkerRunner:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        types = ", ".join(self._types)
        return f"WorkerRunner({self.state}, [{types}], worker_id={self.worker_id!r})"

    # -- the loop --------------------------------------------------------------------------------

    def _count(self, task_type: str, counter: str, n: int = 1) -> None:
        with self._lock:
            self._types[task_type].counts[counter] += n

    def _polled(self, task_type: str, n: int) -> None:
        with self._lock:
            c = self._types[task_type]
            c.counts["polled"] += n
            c.last_poll = time.monotonic()
            c.last_poll_time = time.time()

    def _finished(self, task_type: str, status: str) -> None:
        now = time.monotonic()
        with self._lock:
            c = self._types[task_type]
            c.counts[_COUNTER_FOR_STATUS.get(status, "completed")] += 1
            c.counts["running"] -= 1
            c.finished.append(now)
            while c.finished and c.finished[0] < now - RATE_WINDOW_SECONDS:
                c.finished.popleft()

    def _loop(self, worker: Worker) -> None:
        backoff = 0.0
        with self._client_factory() as client:
            while not self._stop.is_set():
                try:
                    tasks = client.batch_poll(
                        worker.task_type,
                        count=worker.poll_count,
                        timeout_ms=worker.poll_timeout_ms,
                        worker_id=self.worker_id,
                        domain=worker.domain,
                    )
                    backoff = 0.0
                except Exception as exc:  # transport error, 5xx, garbage body: back off and keep going
                    self._count(worker.task_type, "errors")
                    backoff = min(max(backoff * 2, 0.1), MAX_BACKOFF_SECONDS)
                    log.warning("poll %s failed (%s); retrying in %.1fs", worker.task_type, exc, backoff)
                    self._stop.wait(backoff)
                    continue
                self._polled(worker.task_type, len(tasks))
                for task in tasks:  # polled tasks are ours: finish them even when stopping
                    self._work(client, worker, task)

    def _work(self, client: ConductorClient, worker: Worker, task: Json | None) -> None:
        """Execute a task, report it, and keep going while update-v2 hands back the next one."""
        while task and task.get("taskId"):
            self._count(worker.task_type, "running")
            status = "FAILED"
            try:
                result = worker.execute(task, self.worker_id)
                status = result["status"]
            finally:
                self._finished(worker.task_type, status)
            task = self._report(client, worker, result)
            if task and task.get("taskId"):
                self._polled(worker.task_type, 1)

    def _report(self, client: ConductorClient, worker: Worker, result: Json) -> Json | None:
        """Send a TaskResult (a few attempts); return the next task if the server handed one back."""
        delay = 0.1
        for attempt in range(1, REPORT_ATTEMPTS + 1):
            try:
                # While stopping, use v1 so the server does not hand us another task.
                if self._use_v2 and not self._stop.is_set():
                    try:
                        return client.update_task_v2(result)
                    except ApiError as exc:
                        if exc.status not in (404, 405):
                            raise
                        log.info("update-v2 answered %s; using POST /tasks from now on", exc.status)
                        self._use_v2 = False
                client.update_task(result)
                return None
            except Exception as exc:
                self._count(worker.task_type, "errors")
                rejected = isinstance(exc, ApiError) and exc.status < 500  # resending will not help
                if rejected or attempt == REPORT_ATTEMPTS:
                    log.error("dropping result of task %s: %s", result.get("taskId"), exc)
                    return None
                self._stop.wait(delay)
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)
        return None
