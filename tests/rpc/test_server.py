"""The gRPC listener in-process (``start_server(grpc_port=0)``) with ``grpc.aio`` clients from the
committed stubs: every RPC, the error table, auth, health, reflection, the message size limit, and
the CLI starting and stopping both listeners."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc
import grpc.aio
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from conductor_lab.errors import ConductorLabError, Conflict, InvalidInput, NotFound, PayloadTooLarge
from conductor_lab.rpc.convert import to_proto, value_of
from conductor_lab.rpc.gen.model import definitions_pb2, events_pb2, tasks_pb2, workflows_pb2
from conductor_lab.rpc.gen.service import events_pb2 as ev
from conductor_lab.rpc.gen.service import (
    events_pb2_grpc,
    metadata_pb2_grpc,
    search_pb2,
    tasks_pb2_grpc,
    workflows_pb2_grpc,
)
from conductor_lab.rpc.gen.service import metadata_pb2 as md
from conductor_lab.rpc.gen.service import tasks_pb2 as ts
from conductor_lab.rpc.gen.service import workflows_pb2 as ws
from conductor_lab.rpc.server import SERVICE_NAMES
from conductor_lab.rpc.status import INTERNAL_MESSAGE, Unimplemented, status_of
from conductor_lab.server.run import ServerHandle, start_server
from tests.conftest import ServerProcess, wait_until
from tests.server.util import uid

T = TypeVar("T")
Code = grpc.StatusCode


class Stubs:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.tasks = tasks_pb2_grpc.TaskServiceStub(channel)
        self.workflows = workflows_pb2_grpc.WorkflowServiceStub(channel)
        self.metadata = metadata_pb2_grpc.MetadataServiceStub(channel)
        self.events = events_pb2_grpc.EventServiceStub(channel)
        self.health = health_pb2_grpc.HealthStub(channel)


def call(target: str, fn: Callable[[Stubs], Awaitable[T]], metadata: Any = None) -> T:
    """Run ``fn`` against fresh stubs on a new ``grpc.aio`` channel."""

    async def main() -> T:
        async with grpc.aio.insecure_channel(target) as channel:
            return await fn(Stubs(channel))

    return asyncio.run(main())


def status(target: str, fn: Callable[[Stubs], Awaitable[Any]]) -> tuple[grpc.StatusCode, str]:
    """The status code and details of a call expected to fail."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        call(target, fn)
    return info.value.code(), info.value.details() or ""


async def collect(stream: Any) -> list[Any]:
    return [item async for item in stream]


@pytest.fixture(scope="module")
def target(lab: ServerHandle) -> str:
    assert lab.grpc_target is not None
    return lab.grpc_target


def register(target: str, task_type: str, workflow_name: str, **wf: Any) -> None:
    """A one-task workflow over gRPC (the task definition too)."""

    async def go(s: Stubs) -> None:
        await s.metadata.CreateTasks(md.CreateTasksRequest(defs=[definitions_pb2.TaskDef(name=task_type, retry_count=1)]))
        wd = definitions_pb2.WorkflowDef(
            name=workflow_name,
            version=1,
            restartable=True,
            tasks=[definitions_pb2.WorkflowTask(name=task_type, task_reference_name="only", type="SIMPLE", retry_count=-1)],
            **wf,
        )
        await s.metadata.CreateWorkflow(md.CreateWorkflowRequest(workflow=wd))

    call(target, go)


def start(target: str, name: str, **fields: Any) -> str:
    """Start over gRPC; ``fields``: the StartWorkflowRequest's other JSON fields."""
    request = to_proto({"name": name, **fields}, workflows_pb2.StartWorkflowRequest)

    async def go(s: Stubs) -> str:
        return (await s.workflows.StartWorkflow(request)).workflow_id

    return call(target, go)


def workflow(target: str, workflow_id: str, include_tasks: bool = True) -> workflows_pb2.Workflow:
    async def go(s: Stubs) -> workflows_pb2.Workflow:
        return await s.workflows.GetWorkflowStatus(
            ws.GetWorkflowStatusRequest(workflow_id=workflow_id, include_tasks=include_tasks)
        )

    return call(target, go)


def poll(target: str, task_type: str, count: int = 1, timeout: int = 1000) -> list[tasks_pb2.Task]:
    async def go(s: Stubs) -> list[tasks_pb2.Task]:
        return await collect(
            s.tasks.BatchPoll(ts.BatchPollRequest(task_type=task_type, worker_id="g1", count=count, timeout=timeout))
        )

    return call(target, go)


def complete(target: str, task: tasks_pb2.Task, **output: Any) -> str:
    result = to_proto(
        {
            "workflowInstanceId": task.workflow_instance_id,
            "taskId": task.task_id,
            "status": "COMPLETED",
            "outputData": output,
        },
        tasks_pb2.TaskResult,
    )

    async def go(s: Stubs) -> str:
        return (await s.tasks.UpdateTask(ts.UpdateTaskRequest(result=result))).task_id

    return call(target, go)


# ------------------------------------------------------------------------------------------------
# Health, reflection


def test_health_serves_every_service(target: str) -> None:
    async def go(s: Stubs) -> list[int]:
        names = ("", *SERVICE_NAMES)
        return [(await s.health.Check(health_pb2.HealthCheckRequest(service=n))).status for n in names]

    assert call(target, go) == [health_pb2.HealthCheckResponse.SERVING] * 5


def test_reflection_lists_the_services(target: str) -> None:
    async def go(s: Stubs) -> set[str]:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            answers = await collect(stub.ServerReflectionInfo(iter([request])))
        return {svc.name for svc in answers[0].list_services_response.service}

    assert set(SERVICE_NAMES) | {"grpc.health.v1.Health"} <= call(target, go)


# ------------------------------------------------------------------------------------------------
# A worker over gRPC; the same workflow read over REST


def test_worker_round_trip_over_grpc(target: str, rest: httpx.Client) -> None:
    task_type, name = uid("g_task"), uid("g_wf")
    register(target, task_type, name)
    workflow_id = start(target, name, input={"n": 7}, correlationId="corr")

    [task] = poll(target, task_type)
    assert (task.workflow_instance_id, task.reference_task_name) == (workflow_id, "only")
    assert task.status == tasks_pb2.Task.IN_PROGRESS and task.worker_id == "g1"
    assert task.workflow_task.retry_count == -1  # null retryCount travels as -1

    async def logs(s: Stubs) -> list[str]:
        await s.tasks.AddLog(ts.AddLogRequest(task_id=task.task_id, log="half way"))
        return [x.log for x in (await s.tasks.GetTaskLogs(ts.GetTaskLogsRequest(task_id=task.task_id))).logs]

    assert call(target, logs) == ["half way"]
    assert complete(target, task, answer=42, items=[1, None, "x"]) == task.task_id

    async def get_task(s: Stubs) -> tasks_pb2.Task:
        return (await s.tasks.GetTask(ts.GetTaskRequest(task_id=task.task_id))).task

    done = call(target, get_task)
    assert done.status == tasks_pb2.Task.COMPLETED
    assert value_of(done.output_data["answer"]) == 42 and value_of(done.output_data["items"]) == [1, None, "x"]

    wf = workflow(target, workflow_id)
    assert wf.status == workflows_pb2.Workflow.COMPLETED and [t.task_id for t in wf.tasks] == [task.task_id]
    assert len(workflow(target, workflow_id, include_tasks=False).tasks) == 0
    over_rest = rest.get(f"/workflow/{workflow_id}").json()
    assert over_rest["status"] == "COMPLETED" and over_rest["correlationId"] == wf.correlation_id == "corr"
    assert over_rest["tasks"][0]["outputData"] == {"answer": 42, "items": [1, None, "x"]}


def test_empty_poll_answers_a_response_without_task(target: str) -> None:
    async def go(s: Stubs) -> ts.PollResponse:
        return await s.tasks.Poll(ts.PollRequest(task_type=uid("nothing"), worker_id="w"))

    assert not call(target, go).HasField("task")


def test_poll_one_and_batch_of_several(target: str) -> None:
    task_type, name = uid("g_batch"), uid("g_wf")
    register(target, task_type, name)
    ids = {start(target, name) for _ in range(3)}

    async def one(s: Stubs) -> ts.PollResponse:
        return await s.tasks.Poll(ts.PollRequest(task_type=task_type, worker_id="w"))

    first = call(target, one).task
    rest = poll(target, task_type, count=5)
    assert {first.workflow_instance_id, *(t.workflow_instance_id for t in rest)} == ids


def test_batch_poll_timeout_limit(target: str) -> None:
    code, details = status(
        target, lambda s: collect(s.tasks.BatchPoll(ts.BatchPollRequest(task_type="x", timeout=5001)))
    )
    assert code == Code.INVALID_ARGUMENT and "5 seconds" in details


def test_queue_sizes_and_info(target: str) -> None:
    task_type, name = uid("g_queue"), uid("g_wf")
    register(target, task_type, name)
    start(target, name)
    start(target, name)

    async def go(s: Stubs) -> tuple[ts.QueueSizesResponse, ts.QueueInfoResponse]:
        sizes = await s.tasks.GetQueueSizesForTasks(ts.QueueSizesRequest(task_types=[task_type]))
        return sizes, await s.tasks.GetQueueInfo(ts.QueueInfoRequest())

    sizes, info = call(target, go)
    assert dict(sizes.queue_for_task) == {task_type: 2}
    assert info.queues[task_type] == 2
    code, _ = status(target, lambda s: s.tasks.GetQueueAllInfo(ts.QueueAllInfoRequest()))
    assert code == Code.UNIMPLEMENTED


# ------------------------------------------------------------------------------------------------
# Workflow verbs


def test_workflow_verbs(target: str, rest: httpx.Client) -> None:
    task_type, name = uid("g_verbs"), uid("g_wf")
    register(target, task_type, name)
    wid = start(target, name, correlationId="verbs")

    async def pause_resume(s: Stubs) -> list[int]:
        seen = []
        await s.workflows.PauseWorkflow(ws.PauseWorkflowRequest(workflow_id=wid))
        seen.append((await s.workflows.GetWorkflowStatus(ws.GetWorkflowStatusRequest(workflow_id=wid))).status)
        await s.workflows.ResumeWorkflow(ws.ResumeWorkflowRequest(workflow_id=wid))
        await s.workflows.DecideWorkflow(ws.DecideWorkflowRequest(workflow_id=wid))
        await s.workflows.ResetWorkflowCallbacks(ws.ResetWorkflowCallbacksRequest(workflow_id=wid))
        seen.append((await s.workflows.GetWorkflowStatus(ws.GetWorkflowStatusRequest(workflow_id=wid))).status)
        return seen

    assert call(target, pause_resume) == [workflows_pb2.Workflow.PAUSED, workflows_pb2.Workflow.RUNNING]

    async def running_and_correlated(s: Stubs) -> tuple[list[str], list[str]]:
        running = await s.workflows.GetRunningWorkflows(ws.GetRunningWorkflowsRequest(name=name, version=1))
        found = await s.workflows.GetWorkflows(ws.GetWorkflowsRequest(name=name, correlation_id=["verbs", "none"]))
        assert list(found.workflows_by_id["none"].workflows) == []
        return list(running.workflow_ids), [w.workflow_id for w in found.workflows_by_id["verbs"].workflows]

    assert call(target, running_and_correlated) == ([wid], [wid])

    async def terminate(s: Stubs) -> None:
        await s.workflows.TerminateWorkflow(ws.TerminateWorkflowRequest(workflow_id=wid, reason="enough"))

    call(target, terminate)
    wf = workflow(target, wid)
    assert wf.status == workflows_pb2.Workflow.TERMINATED and wf.reason_for_incompletion == "enough"

    async def retry(s: Stubs) -> None:
        await s.workflows.RetryWorkflow(ws.RetryWorkflowRequest(workflow_id=wid))

    call(target, retry)
    assert workflow(target, wid).status == workflows_pb2.Workflow.RUNNING

    call(target, terminate)

    async def restart(s: Stubs) -> None:
        await s.workflows.RestartWorkflow(ws.RestartWorkflowRequest(workflow_id=wid, use_latest_definitions=True))

    call(target, restart)
    assert workflow(target, wid).status == workflows_pb2.Workflow.RUNNING
    call(target, terminate)

    async def rerun(s: Stubs) -> str:
        request = to_proto({"reRunFromWorkflowId": wid, "workflowInput": {"again": True}}, workflows_pb2.RerunWorkflowRequest)
        return (await s.workflows.RerunWorkflow(request)).workflow_id

    assert call(target, rerun) == wid
    again = workflow(target, wid)
    assert again.status == workflows_pb2.Workflow.RUNNING and value_of(again.input["again"]) is True

    async def skip(s: Stubs) -> None:
        request = to_proto({"taskOutput": {"skipped": 1}}, workflows_pb2.SkipTaskRequest)
        await s.workflows.SkipTaskFromWorkflow(ws.SkipTaskRequest(workflow_id=wid, task_reference_name="only", request=request))

    code, details = status(target, skip)  # "only" is already scheduled: IllegalState (500 over REST)
    assert code == Code.FAILED_PRECONDITION and "already been processed" in details
    call(target, terminate)

    async def remove(s: Stubs) -> None:
        await s.workflows.RemoveWorkflow(ws.RemoveWorkflowRequest(workflod_id=wid, archive_workflow=False))

    call(target, remove)
    assert rest.get(f"/workflow/{wid}").status_code == 404


def test_skip_a_task_not_reached_yet(target: str) -> None:
    task_type, name = uid("g_skip"), uid("g_wf")

    async def go(s: Stubs) -> None:
        await s.metadata.CreateTasks(md.CreateTasksRequest(defs=[definitions_pb2.TaskDef(name=task_type)]))
        nodes = [
            definitions_pb2.WorkflowTask(name=task_type, task_reference_name=ref, type="SIMPLE", retry_count=-1)
            for ref in ("a", "b")
        ]
        await s.metadata.CreateWorkflow(md.CreateWorkflowRequest(workflow=definitions_pb2.WorkflowDef(name=name, version=1, tasks=nodes)))

    call(target, go)
    wid = start(target, name)

    async def skip(s: Stubs) -> None:
        request = to_proto({"taskOutput": {"skipped": 1}}, workflows_pb2.SkipTaskRequest)
        await s.workflows.SkipTaskFromWorkflow(ws.SkipTaskRequest(workflow_id=wid, task_reference_name="b", request=request))

    call(target, skip)
    [a] = poll(target, task_type)
    complete(target, a)
    wf = wait_until(lambda: (w := workflow(target, wid)).status == workflows_pb2.Workflow.COMPLETED and w)
    assert [(t.reference_task_name, t.status) for t in wf.tasks] == [
        ("a", tasks_pb2.Task.COMPLETED),
        ("b", tasks_pb2.Task.SKIPPED),
    ]
    assert value_of(wf.tasks[1].output_data["skipped"]) == 1


def test_searches(target: str) -> None:
    task_type, name = uid("g_search"), uid("g_wf")
    register(target, task_type, name)
    wid = start(target, name)
    query = f"workflowType = '{name}'"

    async def go(s: Stubs) -> list[Any]:
        request = search_pb2.Request(query=query)
        return [
            await s.workflows.Search(request),
            await s.workflows.SearchV2(request),
            await s.workflows.SearchByTasks(search_pb2.Request(query=f"taskType = '{task_type}'")),
            await s.workflows.SearchByTasksV2(search_pb2.Request(query=f"taskType = '{task_type}'")),
            await s.tasks.Search(search_pb2.Request(query=f"taskType = '{task_type}'")),
            await s.tasks.SearchV2(search_pb2.Request(query=f"taskType = '{task_type}'")),
        ]

    summaries, full, by_tasks, by_tasks_v2, task_summaries, tasks = call(target, go)
    assert [r.workflow_id for r in summaries.results] == [wid] and summaries.total_hits == 1
    assert summaries.results[0].status == workflows_pb2.Workflow.RUNNING
    assert [r.workflow_id for r in full.results] == [wid] and len(full.results[0].tasks) == 0
    assert [r.workflow_id for r in by_tasks.results] == [wid] == [r.workflow_id for r in by_tasks_v2.results]
    assert [r.workflow_id for r in task_summaries.results] == [wid] and task_summaries.results[0].task_type == task_type
    assert [t.workflow_task.task_reference_name for t in tasks.results] == ["only"]
    code, details = status(target, lambda s: s.workflows.Search(search_pb2.Request(size=5001)))
    assert code == Code.INVALID_ARGUMENT and "5000" in details


# ------------------------------------------------------------------------------------------------
# Metadata and events


def test_metadata_service(target: str) -> None:
    task_type, name = uid("g_meta"), uid("g_wf")
    register(target, task_type, name, description="first")

    async def go(s: Stubs) -> tuple[md.GetWorkflowResponse, md.GetTaskResponse]:
        await s.metadata.UpdateTask(
            md.UpdateTaskRequest(task=definitions_pb2.TaskDef(name=task_type, retry_count=5, description="d"))
        )
        v2 = definitions_pb2.WorkflowDef(
            name=name,
            version=2,
            tasks=[definitions_pb2.WorkflowTask(name=task_type, task_reference_name="only", retry_count=-1)],
        )
        await s.metadata.ValidateWorkflow(md.ValidateWorkflowRequest(workflow=v2))
        await s.metadata.UpdateWorkflows(md.UpdateWorkflowsRequest(defs=[v2]))
        latest = await s.metadata.GetWorkflow(md.GetWorkflowRequest(name=name))  # version 0: the latest
        return latest, await s.metadata.GetTask(md.GetTaskRequest(task_type=task_type))

    latest, td = call(target, go)
    assert latest.workflow.version == 2 and latest.workflow.schema_version == 2
    assert (td.task.retry_count, td.task.description) == (5, "d")

    code, details = status(target, lambda s: s.metadata.ValidateWorkflow(md.ValidateWorkflowRequest(
        workflow=definitions_pb2.WorkflowDef(name=name, schema_version=1)
    )))
    assert code == Code.INVALID_ARGUMENT and "schemaVersion" in details
    code, details = status(target, lambda s: s.metadata.CreateWorkflow(md.CreateWorkflowRequest(
        workflow=definitions_pb2.WorkflowDef(
            name=name, version=1, tasks=[definitions_pb2.WorkflowTask(name=task_type, task_reference_name="only")]
        )
    )))
    assert code == Code.FAILED_PRECONDITION and "already exists" in details

    async def delete(s: Stubs) -> None:
        await s.metadata.DeleteTask(md.DeleteTaskRequest(task_type=task_type))

    call(target, delete)
    code, details = status(target, lambda s: s.metadata.GetTask(md.GetTaskRequest(task_type=task_type)))
    assert (code, details) == (Code.NOT_FOUND, f"No such TaskDef found by taskType={task_type}")
    code, _ = status(target, lambda s: s.metadata.GetWorkflow(md.GetWorkflowRequest(name=uid("none"))))
    assert code == Code.NOT_FOUND


def test_event_service(target: str) -> None:
    name, event = uid("g_handler"), f"conductor:{uid('wf')}:ref"
    handler = to_proto(
        {
            "name": name,
            "event": event,
            "active": True,
            "actions": [{"action": "complete_task", "complete_task": {"workflowId": "w", "taskRefName": "r"}}],
        },
        events_pb2.EventHandler,
    )

    async def go(s: Stubs) -> tuple[list[str], list[events_pb2.EventHandler], list[Any]]:
        await s.events.AddEventHandler(ev.AddEventHandlerRequest(handler=handler))
        every = [h.name for h in await collect(s.events.GetEventHandlers(ev.GetEventHandlersRequest()))]
        handler.active = False
        await s.events.UpdateEventHandler(ev.UpdateEventHandlerRequest(handler=handler))
        inactive = await collect(s.events.GetEventHandlersForEvent(ev.GetEventHandlersForEventRequest(event=event)))
        active = await collect(
            s.events.GetEventHandlersForEvent(ev.GetEventHandlersForEventRequest(event=event, active_only=True))
        )
        await s.events.RemoveEventHandler(ev.RemoveEventHandlerRequest(name=name))
        return every, inactive, active

    every, found, active = call(target, go)
    assert name in every and active == []
    assert [(h.name, h.active) for h in found] == [(name, False)]
    assert found[0].actions[0].action == events_pb2.EventHandler.Action.COMPLETE_TASK
    code, _ = status(target, lambda s: s.events.RemoveEventHandler(ev.RemoveEventHandlerRequest(name=name)))
    assert code == Code.NOT_FOUND


# ------------------------------------------------------------------------------------------------
# Errors


def test_not_found_without_stack_traces(target: str) -> None:
    async def go(s: Stubs) -> Any:
        return await s.workflows.GetWorkflowStatus(ws.GetWorkflowStatusRequest(workflow_id="missing"))

    with pytest.raises(grpc.aio.AioRpcError) as info:
        call(target, go)
    err = info.value
    assert err.code() == Code.NOT_FOUND and "missing" in (err.details() or "")
    assert "Traceback" not in (err.details() or "") and "File " not in (err.details() or "")
    assert all(key != "grpc-status-details-bin" for key, _ in err.trailing_metadata() or ())


def test_invalid_argument_from_a_bad_request(target: str) -> None:
    code, details = status(target, lambda s: s.workflows.StartWorkflow(workflows_pb2.StartWorkflowRequest(name=uid("x"), priority=100)))
    assert code == Code.INVALID_ARGUMENT and "priority" in details


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (NotFound("gone"), Code.NOT_FOUND),
        (InvalidInput("bad"), Code.INVALID_ARGUMENT),
        (Conflict("exists"), Code.FAILED_PRECONDITION),
        (PayloadTooLarge("big"), Code.RESOURCE_EXHAUSTED),
        (ConductorLabError("ours"), Code.INTERNAL),
        (Unimplemented("later"), Code.UNIMPLEMENTED),
    ],
)
def test_error_table(exc: ConductorLabError, code: grpc.StatusCode) -> None:
    assert status_of(exc) == (code, exc.message)


def test_unexpected_errors_are_internal_and_say_nothing() -> None:
    assert status_of(RuntimeError("secret path /etc/x")) == (Code.INTERNAL, INTERNAL_MESSAGE)


def test_validation_errors_are_spelled_out() -> None:
    from conductor_lab.errors import validation_error

    code, message = status_of(validation_error("startWorkflow.priority", "99 is the maximum priority value"))
    assert code == Code.INVALID_ARGUMENT and "startWorkflow.priority: 99 is the maximum" in message


# ------------------------------------------------------------------------------------------------
# Limits and auth (their own servers)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    handle = start_server(
        Path(tmp_path_factory.mktemp("guarded")) / "g.duckdb", port=0, grpc_port=0, token="s3cret", max_body_bytes=4096
    )
    try:
        yield handle
    finally:
        assert handle.stop()


def _with_metadata(handle: ServerHandle, metadata: tuple[tuple[str, str], ...]) -> Callable[[Stubs], Awaitable[Any]]:
    async def go(s: Stubs) -> Any:
        return await s.tasks.Poll(ts.PollRequest(task_type="t"), metadata=metadata)

    return go


@pytest.mark.parametrize(
    "metadata", [(), (("authorization", "Bearer nope"),), (("authorization", "s3cret"),)], ids=["missing", "wrong", "no-bearer"]
)
def test_auth_refuses(guarded: ServerHandle, metadata: tuple[tuple[str, str], ...]) -> None:
    assert guarded.grpc_target is not None
    code, details = status(guarded.grpc_target, _with_metadata(guarded, metadata))
    assert code == Code.UNAUTHENTICATED and "Bearer" in details


def test_auth_refuses_streams_too(guarded: ServerHandle) -> None:
    assert guarded.grpc_target is not None
    code, _ = status(guarded.grpc_target, lambda s: collect(s.tasks.BatchPoll(ts.BatchPollRequest(task_type="t"))))
    assert code == Code.UNAUTHENTICATED


def test_auth_accepts_the_token_and_health_is_open(guarded: ServerHandle) -> None:
    assert guarded.grpc_target is not None
    answer = call(guarded.grpc_target, _with_metadata(guarded, (("authorization", "Bearer s3cret"),)))
    assert not answer.HasField("task")

    async def health(s: Stubs) -> int:
        return (await s.health.Check(health_pb2.HealthCheckRequest())).status

    assert call(guarded.grpc_target, health) == health_pb2.HealthCheckResponse.SERVING


def test_messages_above_the_body_limit_are_refused(guarded: ServerHandle) -> None:
    assert guarded.grpc_target is not None
    log = "x" * 5000

    async def go(s: Stubs) -> Any:
        return await s.tasks.AddLog(
            ts.AddLogRequest(task_id="t", log=log), metadata=(("authorization", "Bearer s3cret"),)
        )

    code, _ = status(guarded.grpc_target, go)
    assert code == Code.RESOURCE_EXHAUSTED


# ------------------------------------------------------------------------------------------------
# The CLI


def test_cli_starts_and_stops_both_listeners(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path / "cli.duckdb", ["--grpc-port", "0"], log_dir=tmp_path)
    url = proc.start()
    try:
        out = tmp_path / "server-1.out"
        m = wait_until(lambda: re.search(r"conductor-lab gRPC listening on (\S+)", out.read_text()), what="gRPC line")
        grpc_target = m.group(1)
        assert httpx.get(url + "/health").status_code == 200

        async def health(s: Stubs) -> int:
            return (await s.health.Check(health_pb2.HealthCheckRequest())).status

        assert call(grpc_target, health) == health_pb2.HealthCheckResponse.SERVING
    finally:
        code = proc.stop()
    assert code == 0, proc.output()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        call(grpc_target, health)
    assert info.value.code() == Code.UNAVAILABLE


def test_a_grpc_port_in_use_is_a_startup_error(tmp_path: Path) -> None:
    import socket

    from conductor_lab.server.startup import StartupError

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(StartupError, match=f"cannot listen for gRPC on 127.0.0.1 port {port}.*--grpc-port"):
            start_server(tmp_path / "busy.duckdb", port=0, grpc_port=port)
