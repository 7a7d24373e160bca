"""kill -9 of a server with gRPC workers attached: starts and task updates are acknowledged over
gRPC; the server is SIGKILLed mid-run and restarted on the SAME HTTP and gRPC ports; the same
worker threads reconnect by themselves (UNAVAILABLE -> back off -> new channel). Afterwards every
acknowledged start and update is there, no task whose COMPLETED update was acknowledged is ever
handed out again, and every acknowledged workflow runs to COMPLETED.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import pytest

from conductor_lab.client import ConductorClient
from conductor_lab.rpc.convert import to_proto
from conductor_lab.rpc.gen.model import workflows_pb2
from conductor_lab.rpc.gen.service.workflows_pb2_grpc import WorkflowServiceStub
from tests.conftest import wait_until
from tests.rpc.workers import RECONNECT_CODES, GrpcWorker, Ledger, free_port, server_process, start_with_grpc

pytestmark = pytest.mark.timeout(240)

WF = {
    "name": "grpc_crash_wf",
    "version": 1,
    "tasks": [
        {"name": "gc_a", "taskReferenceName": "a", "inputParameters": {"n": "${workflow.input.n}"}},
        {"name": "gc_b", "taskReferenceName": "b", "inputParameters": {"m": "${a.output.m}"}},
    ],
    "outputParameters": {"m": "${b.output.m}"},
}
TASK_DEFS = [
    # short response timeout: tasks polled before the crash and never reported are re-delivered
    {"name": name, "retryCount": 5, "retryDelaySeconds": 0, "responseTimeoutSeconds": 2, "timeoutSeconds": 0}
    for name in ("gc_a", "gc_b")
]


class Starter(threading.Thread):
    """Starts workflows over gRPC until the server goes away; records the acknowledged ones."""

    def __init__(self, target: str, errors: list[BaseException]) -> None:
        super().__init__(name="grpc-starter", daemon=True)
        self.target = target
        self.errors = errors
        self.started: list[tuple[str, int]] = []  # (workflowId, n) of acknowledged starts

    def run(self) -> None:
        with grpc.insecure_channel(self.target) as channel:
            stub = WorkflowServiceStub(channel)
            n = 0
            while True:
                request = to_proto(
                    {"name": WF["name"], "input": {"n": n}}, workflows_pb2.StartWorkflowRequest
                )
                try:
                    workflow_id = stub.StartWorkflow(request, timeout=10).workflow_id
                except grpc.RpcError as exc:
                    if exc.code() not in RECONNECT_CODES:
                        self.errors.append(exc)
                    return  # the server died mid-call: this start was not acknowledged
                self.started.append((workflow_id, n))
                n += 1


def test_kill9_with_grpc_workers_attached(tmp_path: Path) -> None:
    proc = server_process(tmp_path / "crash.duckdb", tmp_path, http_port=free_port())
    url, target = start_with_grpc(proc)
    with ConductorClient(url) as c:
        c.register_task_defs(TASK_DEFS)
        c.register_workflow_def(WF)

    ledger = Ledger()
    stop = threading.Event()
    workers = [
        GrpcWorker(target, f"grpc-{i}", (task_type,), ledger, stop, count=5)
        for i, task_type in enumerate(("gc_a", "gc_b", "gc_a"))
    ]
    starter = Starter(target, ledger.errors)
    try:
        for th in (starter, *workers):
            th.start()
        wait_until(
            lambda: len(starter.started) >= 150 and ledger.count() >= 100,
            timeout=60,
            what="traffic before the crash",
        )
        proc.kill9()  # mid-stream: starts, polls and updates are in flight
        starter.join(30)
        assert not starter.is_alive()
        acked_starts = list(starter.started)
        with ledger.lock:
            acked_before = dict(ledger.acked)
        wait_until(
            lambda: all(w.reconnects for w in workers), timeout=30, what="every worker saw the server go"
        )

        url_after, target_after = start_with_grpc(proc)  # same file, same ports; the workers find it
        assert (url_after, target_after) == (url, target)
        wait_until(
            lambda: ledger.count() > len(acked_before), timeout=60, what="a gRPC update after the restart"
        )

        with ConductorClient(url) as c:
            for task_id, (workflow_id, _) in acked_before.items():
                task = c.get_task(task_id)
                assert task["status"] == "COMPLETED", (
                    f"acknowledged update of {task_id} lost: {task['status']}"
                )
                assert task["workflowInstanceId"] == workflow_id
            deadline = time.monotonic() + 120
            for workflow_id, n in acked_starts:
                wf = c.wait_for_workflow(workflow_id, timeout=max(1.0, deadline - time.monotonic()))
                assert wf["input"] == {"n": n}
                assert wf["status"] == "COMPLETED", (
                    workflow_id,
                    wf["status"],
                    wf.get("reasonForIncompletion"),
                )
                assert wf["output"] == {"m": n + 2}
    finally:
        stop.set()
        for th in workers:
            th.join(30)
    assert not any(th.is_alive() for th in workers)
    assert not ledger.errors, ledger.errors
    assert ledger.redelivered_after_ack == [], "tasks handed out again after an acknowledged COMPLETED update"
    assert proc.stop() == 0, proc.output()
