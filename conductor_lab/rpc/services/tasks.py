"""``conductor.grpc.tasks.TaskService`` over the engine's task operations (as ``/api/tasks``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, TypeAlias

import grpc.aio

from conductor_lab.errors import NotFound
from conductor_lab.rpc.convert import from_proto, to_proto
from conductor_lab.rpc.gen.model import tasks_pb2 as model
from conductor_lab.rpc.gen.service import search_pb2
from conductor_lab.rpc.gen.service import tasks_pb2 as api
from conductor_lab.rpc.gen.service.tasks_pb2_grpc import TaskServiceServicer
from conductor_lab.rpc.services.search import search_args
from conductor_lab.rpc.status import Unimplemented, optional, streaming, unary
from conductor_lab.server import shapes

if TYPE_CHECKING:
    from conductor_lab.engine.executor import Executor

Ctx: TypeAlias = grpc.aio.ServicerContext

#: ``Poll`` waits as long as ``GET /api/tasks/poll/{tasktype}``; ``BatchPoll`` with timeout 0 too.
POLL_TIMEOUT_MS = 100


class TaskService(TaskServiceServicer):
    """Workers poll and update here; the rest reads tasks, logs and queue sizes."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    @unary
    async def Poll(self, request: api.PollRequest, context: Ctx) -> api.PollResponse:
        """One task, or a response without ``task`` (conductor-oss ends the call with no message,
        which its own stubs report as an error; docs/compat.md)."""
        found = await self.executor.poll(
            request.task_type,
            worker_id=optional(request.worker_id),
            domain=optional(request.domain),
            count=1,
            timeout_ms=POLL_TIMEOUT_MS,
        )
        if not found:
            return api.PollResponse()
        return api.PollResponse(task=to_proto(shapes.task(found[0]), model.Task))

    @streaming
    async def BatchPoll(self, request: api.BatchPollRequest, context: Ctx) -> AsyncIterator[model.Task]:
        """Up to ``count`` (0: 1) tasks within ``timeout`` ms (0: 100), one message each."""
        timeout = request.timeout or POLL_TIMEOUT_MS  # the engine refuses more than REST allows
        found = await self.executor.poll(
            request.task_type,
            worker_id=optional(request.worker_id),
            domain=optional(request.domain),
            count=request.count or 1,
            timeout_ms=timeout,
        )
        for task in found:
            yield to_proto(shapes.task(task), model.Task)

    @unary
    async def UpdateTask(self, request: api.UpdateTaskRequest, context: Ctx) -> api.UpdateTaskResponse:
        task_id = await self.executor.update_task(from_proto(request.result))
        return api.UpdateTaskResponse(task_id=task_id)

    @unary
    async def AddLog(self, request: api.AddLogRequest, context: Ctx) -> api.AddLogResponse:
        await self.executor.add_task_log(request.task_id, request.log)
        return api.AddLogResponse()

    @unary
    async def GetTaskLogs(self, request: api.GetTaskLogsRequest, context: Ctx) -> api.GetTaskLogsResponse:
        rows = await self.executor.get_task_logs(request.task_id)
        return api.GetTaskLogsResponse(logs=[to_proto(x, model.TaskExecLog) for x in shapes.task_logs(rows)])

    @unary
    async def GetTask(self, request: api.GetTaskRequest, context: Ctx) -> api.GetTaskResponse:
        try:
            task = await self.executor.get_task(request.task_id)
        except NotFound:  # conductor-oss's gRPC message
            raise NotFound(f"No such task found by id={request.task_id}") from None
        return api.GetTaskResponse(task=to_proto(shapes.task(task), model.Task))

    @unary
    async def GetQueueSizesForTasks(self, request: api.QueueSizesRequest, context: Ctx) -> api.QueueSizesResponse:
        return api.QueueSizesResponse(queue_for_task=self.executor.queue_sizes(list(request.task_types)))

    @unary
    async def GetQueueInfo(self, request: api.QueueInfoRequest, context: Ctx) -> api.QueueInfoResponse:
        return api.QueueInfoResponse(queues=self.executor.queue_all())

    @unary
    async def GetQueueAllInfo(self, request: api.QueueAllInfoRequest, context: Ctx) -> api.QueueAllInfoResponse:
        raise Unimplemented("GetQueueAllInfo: the in-process queue has no shards; use GetQueueInfo")

    @unary
    async def Search(self, request: search_pb2.Request, context: Ctx) -> api.TaskSummarySearchResult:
        total, found = await self.executor.search_tasks(**search_args(request))
        return api.TaskSummarySearchResult(
            total_hits=total, results=[to_proto(shapes.task_summary(t), model.TaskSummary) for t in found]
        )

    @unary
    async def SearchV2(self, request: search_pb2.Request, context: Ctx) -> api.TaskSearchResult:
        total, found = await self.executor.search_tasks(**search_args(request), with_nodes=True)
        return api.TaskSearchResult(total_hits=total, results=[to_proto(t, model.Task) for t in shapes.tasks(found)])
