"""Run Python functions as Conductor workers over the REST API.

    def greet(task: dict) -> dict:
        return {"greeting": f"hello {task['inputData']['name']}"}

    with WorkerRunner("http://127.0.0.1:8080", [Worker("greet", greet)]):
        ...  # workflows using the "greet" task now make progress

What ``fn`` returns decides the TaskResult (see :meth:`Worker.execute`). The loop follows the
official SDK: long-poll a batch, execute, report with ``update-v2`` and run the task it hands
back straight away; fall back to ``POST /tasks`` for good when update-v2 answers 404/405.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any

from conductor_lab.client.errors import ApiError
from conductor_lab.client.http import ConductorClient

log = logging.getLogger(__name__)

Json = dict[str, Any]
MAX_BACKOFF_SECONDS = 2.0
REPORT_ATTEMPTS = 3


class NonRetryableError(Exception):
    """Raise from a worker to fail the task with FAILED_WITH_TERMINAL_ERROR (no retries)."""


@dataclass(frozen=True)
class TaskInProgress:
    """Return from a worker to report IN_PROGRESS; the task comes back after the callback delay."""

    callback_after_seconds: int = 0
    output: Json | None = None


@dataclass
class Worker:
    """A task type and the function that executes it."""

    task_type: str
    fn: Callable[[Json], Any]
    _: KW_ONLY
    domain: str | None = None
    poll_count: int = 1
    poll_timeout_ms: int = 1000

    def execute(self, task: Json, worker_id: str | None = None) -> Json:
        """Run ``fn`` on a polled task and turn the outcome into a TaskResult dict.

        dict -> COMPLETED with it as output; other value -> COMPLETED with ``{"result": value}``;
        TaskInProgress -> IN_PROGRESS + callbackAfterSeconds; NonRetryableError ->
        FAILED_WITH_TERMINAL_ERROR; any other exception -> FAILED. Failures carry the traceback as a log.
        """
        result: Json = {"workflowInstanceId": task.get("workflowInstanceId"), "taskId": task.get("taskId")}
        if worker_id is not None:
            result["workerId"] = worker_id
        try:
            value = self.fn(task)
        except Exception as exc:
            terminal = isinstance(exc, NonRetryableError)
            result["status"] = "FAILED_WITH_TERMINAL_ERROR" if terminal else "FAILED"
            result["reasonForIncompletion"] = str(exc) or type(exc).__name__
            result["outputData"] = {}
            result["logs"] = [
                {
                    "log": traceback.format_exc(),
                    "taskId": task.get("taskId"),
                    "createdTime": int(time.time() * 1000),
                }
            ]
        else:
            if isinstance(value, TaskInProgress):
                result["status"] = "IN_PROGRESS"
                result["callbackAfterSeconds"] = value.callback_after_seconds
                result["outputData"] = value.output or {}
            else:
                result["status"] = "COMPLETED"
                result["outputData"] = value if isinstance(value, dict) else {"result": value}
        return result


_COUNTER_FOR_STATUS = {
    "COMPLETED": "completed",
    "IN_PROGRESS": "in_progress",
    "FAILED": "failed",
    "FAILED_WITH_TERMINAL_ERROR": "failed",
}


class WorkerRunner:
    """Poll-execute-report threads for a list of workers (one client per thread).

    ``client`` is a base URL or a zero-argument factory returning a :class:`ConductorClient`
    (tests pass one built on ``httpx.MockTransport``).
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
        counters = ("polled", "completed", "failed", "in_progress", "errors")
        self._stats = {w.task_type: dict.fromkeys(counters, 0) for w in self.workers}

    @property
    def stats(self) -> dict[str, dict[str, int]]:
        """Counters per task type: polled, completed, failed, in_progress, errors (a snapshot)."""
        with self._lock:
            return {task_type: dict(c) for task_type, c in self._stats.items()}

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        if any(t.is_alive() for t in self._threads):
            raise RuntimeError("WorkerRunner is already running")
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._loop, args=(w,), name=f"worker-{w.task_type}-{i}", daemon=True)
            for w in self.workers
            for i in range(self.threads_per_worker)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop polling; tasks in hand are finished and reported. True when every thread exited in time."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def __enter__(self) -> WorkerRunner:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the loop --------------------------------------------------------------------------------

    def _count(self, task_type: str, counter: str, n: int = 1) -> None:
        with self._lock:
            self._stats[task_type][counter] += n

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
                self._count(worker.task_type, "polled", len(tasks))
                for task in tasks:  # polled tasks are ours: finish them even when stopping
                    self._work(client, worker, task)

    def _work(self, client: ConductorClient, worker: Worker, task: Json | None) -> None:
        """Execute a task, report it, and keep going while update-v2 hands back the next one."""
        while task and task.get("taskId"):
            result = worker.execute(task, self.worker_id)
            self._count(worker.task_type, _COUNTER_FOR_STATUS.get(result["status"], "completed"))
            task = self._report(client, worker, result)
            if task and task.get("taskId"):
                self._count(worker.task_type, "polled")

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
