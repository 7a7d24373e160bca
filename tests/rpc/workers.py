"""Thread workers for the gRPC scenario tests (``test_mixed.py``, ``tests/scenario/test_crash_grpc.py``).

``GrpcWorker`` polls with ``TaskService.BatchPoll`` and answers with ``UpdateTask`` through the
committed stubs on a blocking ``grpc`` channel, as a conductor-oss gRPC worker would. When the
server goes away (UNAVAILABLE, or a deadline passing while it restarts) it drops what it holds,
closes the channel, backs off and reconnects, until told to stop. ``RestWorker`` does the same
over REST (httpx, ``conductor_lab.client``). Both record in one :class:`Ledger` what the server
handed out and what it ACKNOWLEDGED, which is what the tests check after the fact.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx

from conductor_lab.client import ApiError, ConductorClient
from conductor_lab.rpc.convert import from_proto, to_proto
from conductor_lab.rpc.gen.model import tasks_pb2
from conductor_lab.rpc.gen.service import tasks_pb2 as ts
from conductor_lab.rpc.gen.service.tasks_pb2_grpc import TaskServiceStub
from tests.conftest import ServerProcess, wait_until

Json = dict[str, Any]
#: task JSON -> the ``outputData`` of its COMPLETED result
Handler = Callable[[Json], Json]

GRPC_LISTENING = re.compile(r"conductor-lab gRPC listening on (\S+)")
#: calls that mean "the server is not there (now)": reconnect and carry on
RECONNECT_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
#: grpc's own reconnect backoff starts at 1 s and grows to 120 s; a restart here takes seconds
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 500),
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_with_grpc(proc: ServerProcess) -> tuple[str, str]:
    """Start ``proc`` (its extra args carry ``--grpc-port``); returns (base URL, gRPC target)."""
    url = proc.start()
    out = proc.log_dir / f"server-{proc.starts}.out"
    m = wait_until(
        lambda: GRPC_LISTENING.search(out.read_text(errors="replace")), what="the gRPC listening line"
    )
    assert m is not None
    return url, m.group(1)


def server_process(
    db: Path, log_dir: Path, *, http_port: int = 0, grpc_port: int | None = None
) -> ServerProcess:
    """A ``serve`` subprocess on fixed ports (a restart keeps them; the later ``--port`` wins)."""
    grpc_port = free_port() if grpc_port is None else grpc_port
    return ServerProcess(db, ["--port", str(http_port), "--grpc-port", str(grpc_port)], log_dir=log_dir)


@dataclass
class Ledger:
    """What the server handed out and acknowledged, across all workers (thread-safe)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    delivered: dict[str, list[str]] = field(default_factory=dict)  # taskId -> workers it went to
    acked: dict[str, tuple[str, str]] = field(default_factory=dict)  # taskId -> (workflowId, worker)
    #: taskIds handed out again after their COMPLETED update was acknowledged (must stay empty)
    redelivered_after_ack: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)  # anything but "server gone"

    def on_delivery(self, task_id: str, worker: str) -> None:
        with self.lock:
            self.delivered.setdefault(task_id, []).append(worker)
            if task_id in self.acked:
                self.redelivered_after_ack.append(task_id)

    def on_ack(self, task_id: str, workflow_id: str, worker: str) -> None:
        with self.lock:
            self.acked[task_id] = (workflow_id, worker)

    def acked_by(self, worker: str) -> set[str]:
        with self.lock:
            return {t for t, (_, w) in self.acked.items() if w == worker}

    def count(self) -> int:
        with self.lock:
            return len(self.acked)


def add_one(task: Json) -> Json:
    """The scenarios' task: ``m = (n or m) + 1``, plus nested values that must survive the transports."""
    data = task.get("inputData") or {}
    n = data.get("n") if data.get("n") is not None else data.get("m")
    return {"m": (n or 0) + 1, "nested": {"list": [1, 2.5, "x", None, True], "empty": {}}}


class _Worker(threading.Thread):
    def __init__(
        self,
        name: str,
        task_types: Iterable[str],
        ledger: Ledger,
        stop: threading.Event,
        handler: Handler,
        *,
        count: int,
        timeout_ms: int,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.task_types = tuple(task_types)
        self.ledger = ledger
        self.stop_event = stop
        self.handler = handler
        self.count = count
        self.timeout_ms = timeout_ms
        self.reconnects = 0

    def result(self, task: Json) -> Json:
        return {
            "workflowInstanceId": task["workflowInstanceId"],
            "taskId": task["taskId"],
            "status": "COMPLETED",
            "workerId": self.name,
            "outputData": self.handler(task),
        }


class GrpcWorker(_Worker):
    """BatchPoll + UpdateTask over gRPC, round-robin over ``task_types``, reconnecting on UNAVAILABLE."""

    def __init__(
        self,
        target: str,
        name: str,
        task_types: Iterable[str],
        ledger: Ledger,
        stop: threading.Event,
        handler: Handler = add_one,
        *,
        count: int = 5,
        timeout_ms: int = 200,
        call_timeout: float = 10.0,
        backoff: tuple[float, float] = (0.05, 0.5),
    ) -> None:
        super().__init__(name, task_types, ledger, stop, handler, count=count, timeout_ms=timeout_ms)
        self.target = target
        self.call_timeout = call_timeout
        self.backoff = backoff

    def run(self) -> None:
        delay = self.backoff[0]
        while not self.stop_event.is_set():
            channel = grpc.insecure_channel(self.target, options=CHANNEL_OPTIONS)
            try:
                self._serve(TaskServiceStub(channel))  # returns when told to stop
                return
            except grpc.RpcError as exc:
                if exc.code() not in RECONNECT_CODES:
                    self.ledger.errors.append(exc)
                    return
                self.reconnects += 1
            except BaseException as exc:  # pragma: no cover - surfaced by the test
                self.ledger.errors.append(exc)
                return
            finally:
                channel.close()
            self.stop_event.wait(delay)
            delay = min(delay * 2, self.backoff[1])

    def _serve(self, stub: TaskServiceStub) -> None:
        i = 0
        while not self.stop_event.is_set():
            task_type = self.task_types[i % len(self.task_types)]
            i += 1
            request = ts.BatchPollRequest(
                task_type=task_type, worker_id=self.name, count=self.count, timeout=self.timeout_ms
            )
            polled = list(stub.BatchPoll(request, timeout=self.call_timeout + self.timeout_ms / 1000))
            for proto in polled:
                task = from_proto(proto)
                self.ledger.on_delivery(task["taskId"], self.name)
            for proto in polled:
                task = from_proto(proto)
                result = to_proto(self.result(task), tasks_pb2.TaskResult)
                answer = stub.UpdateTask(ts.UpdateTaskRequest(result=result), timeout=self.call_timeout)
                assert answer.task_id == task["taskId"], (answer.task_id, task["taskId"])
                self.ledger.on_ack(task["taskId"], task["workflowInstanceId"], self.name)


class RestWorker(_Worker):
    """``GET /api/tasks/poll/batch`` + ``POST /api/tasks`` over httpx, round-robin over ``task_types``."""

    def __init__(
        self,
        url: str,
        name: str,
        task_types: Iterable[str],
        ledger: Ledger,
        stop: threading.Event,
        handler: Handler = add_one,
        *,
        count: int = 5,
        timeout_ms: int = 200,
    ) -> None:
        super().__init__(name, task_types, ledger, stop, handler, count=count, timeout_ms=timeout_ms)
        self.url = url

    def run(self) -> None:
        try:
            with ConductorClient(self.url, timeout=10) as c:
                i = 0
                while not self.stop_event.is_set():
                    task_type = self.task_types[i % len(self.task_types)]
                    i += 1
                    polled = c.batch_poll(
                        task_type, count=self.count, timeout_ms=self.timeout_ms, worker_id=self.name
                    )
                    for task in polled:
                        self.ledger.on_delivery(task["taskId"], self.name)
                    for task in polled:
                        assert c.update_task(self.result(task)) == task["taskId"]
                        self.ledger.on_ack(task["taskId"], task["workflowInstanceId"], self.name)
        except (httpx.HTTPError, ApiError, AssertionError) as exc:
            self.ledger.errors.append(exc)
