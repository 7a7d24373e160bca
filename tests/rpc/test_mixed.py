"""REST and gRPC on one real server at once: definitions over REST, workflows started over gRPC,
one worker on gRPC (BatchPoll + UpdateTask) and one on REST sharing the task types; every workflow
COMPLETED, every task done exactly once, and each workflow and task read through both transports
the same after conversion."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from conductor_lab.client import ConductorClient
from conductor_lab.rpc.convert import from_proto, to_proto
from conductor_lab.rpc.gen.model import tasks_pb2, workflows_pb2
from conductor_lab.rpc.gen.service import tasks_pb2 as ts
from conductor_lab.rpc.gen.service import workflows_pb2 as ws
from conductor_lab.rpc.gen.service.tasks_pb2_grpc import TaskServiceStub
from conductor_lab.rpc.gen.service.workflows_pb2_grpc import WorkflowServiceStub
from tests.conftest import ServerProcess
from tests.rpc.workers import GrpcWorker, Ledger, RestWorker, server_process, start_with_grpc

pytestmark = pytest.mark.timeout(180)

TYPES = ("mixed_a", "mixed_b", "mixed_c")
WF = {
    "name": "mixed_wf",
    "version": 1,
    "schemaVersion": 2,
    "tasks": [
        {"name": "mixed_a", "taskReferenceName": "a", "inputParameters": {"n": "${workflow.input.n}"}},
        {"name": "mixed_b", "taskReferenceName": "b", "inputParameters": {"m": "${a.output.m}"}},
        {"name": "mixed_c", "taskReferenceName": "c", "inputParameters": {"m": "${b.output.m}"}},
    ],
    "outputParameters": {"m": "${c.output.m}", "nested": "${c.output.nested}"},
}
# a long response timeout: nothing is handed out twice unless something is wrong
TASK_DEFS = [{"name": t, "retryCount": 0, "responseTimeoutSeconds": 120, "timeoutSeconds": 0} for t in TYPES]
WORKFLOWS = 40


@pytest.fixture
def mixed_server(tmp_path: Path) -> Iterator[tuple[ServerProcess, str, str]]:
    proc = server_process(tmp_path / "mixed.duckdb", tmp_path)
    url, target = start_with_grpc(proc)
    try:
        yield proc, url, target
    finally:
        code = proc.stop()
    assert code == 0, proc.output()


def test_rest_and_grpc_workers_share_task_types(mixed_server: tuple[ServerProcess, str, str]) -> None:
    proc, url, target = mixed_server
    with ConductorClient(url) as rest:
        rest.register_task_defs(TASK_DEFS)
        rest.register_workflow_def(WF)

    ledger = Ledger()
    stop = threading.Event()
    workers = [
        GrpcWorker(target, "grpc-worker", TYPES, ledger, stop, count=2),
        RestWorker(url, "rest-worker", TYPES, ledger, stop, count=2),
    ]
    for w in workers:
        w.start()
    channel = grpc.insecure_channel(target)
    try:
        workflows = WorkflowServiceStub(channel)
        started: dict[str, int] = {}
        for n in range(WORKFLOWS):
            request = to_proto(
                {"name": "mixed_wf", "input": {"n": n}, "correlationId": f"c{n}"},
                workflows_pb2.StartWorkflowRequest,
            )
            started[workflows.StartWorkflow(request, timeout=10).workflow_id] = n

        with ConductorClient(url) as rest:
            deadline = time.monotonic() + 90
            finals = {}
            for wid, n in started.items():
                wf = rest.wait_for_workflow(wid, timeout=max(1.0, deadline - time.monotonic()))
                assert wf["status"] == "COMPLETED", (wid, wf["status"], wf.get("reasonForIncompletion"))
                assert wf["output"] == {
                    "m": n + 3,
                    "nested": {"list": [1, 2.5, "x", None, True], "empty": {}},
                }
                finals[wid] = wf
            stop.set()
            for w in workers:
                w.join(30)
                assert not w.is_alive(), w.name
            assert not ledger.errors, ledger.errors

            # each task done exactly once, by the worker the server recorded
            all_tasks = {t["taskId"]: t for wf in finals.values() for t in wf["tasks"]}
            assert len(all_tasks) == WORKFLOWS * len(TYPES)
            assert set(ledger.acked) == set(all_tasks)
            assert {t: len(ws_) for t, ws_ in ledger.delivered.items() if len(ws_) != 1} == {}
            for task_id, task in all_tasks.items():
                assert task["status"] == "COMPLETED"
                assert task["workerId"] == ledger.acked[task_id][1]
            assert ledger.acked_by("grpc-worker"), "the gRPC worker did no task"
            assert ledger.acked_by("rest-worker"), "the REST worker did no task"

            # status read through both transports: equal after conversion
            tasks_stub = TaskServiceStub(channel)
            for wid in started:
                over_rest = rest.get_workflow(wid)
                over_grpc = workflows.GetWorkflowStatus(
                    ws.GetWorkflowStatusRequest(workflow_id=wid, include_tasks=True), timeout=10
                )
                assert over_grpc == to_proto(over_rest, workflows_pb2.Workflow)
                assert from_proto(over_grpc)["status"] == over_rest["status"] == "COMPLETED"
                assert len(over_grpc.tasks) == len(over_rest["tasks"]) == len(TYPES)
            some = sorted(all_tasks)[:: len(all_tasks) // 10]
            for task_id in some:
                over_rest = rest.get_task(task_id)
                over_grpc = tasks_stub.GetTask(ts.GetTaskRequest(task_id=task_id), timeout=10).task
                assert over_grpc == to_proto(over_rest, tasks_pb2.Task)
                assert from_proto(over_grpc)["outputData"] == over_rest["outputData"]
    finally:
        stop.set()
        channel.close()
        for w in workers:
            w.join(30)
