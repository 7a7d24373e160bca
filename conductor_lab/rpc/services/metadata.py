"""``conductor.grpc.metadata.MetadataService`` over the engine's definition operations
(as ``/api/metadata``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

import grpc.aio

from conductor_lab.errors import NotFound
from conductor_lab.rpc.convert import from_proto, to_proto
from conductor_lab.rpc.gen.model import definitions_pb2 as model
from conductor_lab.rpc.gen.service import metadata_pb2 as api
from conductor_lab.rpc.gen.service.metadata_pb2_grpc import MetadataServiceServicer
from conductor_lab.rpc.status import unary

if TYPE_CHECKING:
    from conductor_lab.engine.executor import Executor

Ctx: TypeAlias = grpc.aio.ServicerContext


class MetadataService(MetadataServiceServicer):
    """Register, read, validate and delete workflow and task definitions."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    @unary
    async def CreateWorkflow(self, request: api.CreateWorkflowRequest, context: Ctx) -> api.CreateWorkflowResponse:
        await self.executor.register_workflow_def(from_proto(request.workflow), overwrite=False)
        return api.CreateWorkflowResponse()

    @unary
    async def ValidateWorkflow(
        self, request: api.ValidateWorkflowRequest, context: Ctx
    ) -> api.ValidateWorkflowResponse:
        self.executor.validate_workflow_def(from_proto(request.workflow))
        return api.ValidateWorkflowResponse()

    @unary
    async def UpdateWorkflows(self, request: api.UpdateWorkflowsRequest, context: Ctx) -> api.UpdateWorkflowsResponse:
        await self.executor.update_workflow_defs([from_proto(d) for d in request.defs])
        return api.UpdateWorkflowsResponse()

    @unary
    async def GetWorkflow(self, request: api.GetWorkflowRequest, context: Ctx) -> api.GetWorkflowResponse:
        try:
            wd = self.executor.get_workflow_def(request.name, request.version or None)
        except NotFound:  # conductor-oss's gRPC message
            raise NotFound(f"No such workflow found by name={request.name}") from None
        return api.GetWorkflowResponse(workflow=to_proto(wd.to_json(), model.WorkflowDef))

    @unary
    async def CreateTasks(self, request: api.CreateTasksRequest, context: Ctx) -> api.CreateTasksResponse:
        await self.executor.register_task_defs([from_proto(d) for d in request.defs])
        return api.CreateTasksResponse()

    @unary
    async def UpdateTask(self, request: api.UpdateTaskRequest, context: Ctx) -> api.UpdateTaskResponse:
        await self.executor.update_task_def(from_proto(request.task))
        return api.UpdateTaskResponse()

    @unary
    async def GetTask(self, request: api.GetTaskRequest, context: Ctx) -> api.GetTaskResponse:
        try:
            td = self.executor.get_task_def(request.task_type)
        except NotFound:
            raise NotFound(f"No such TaskDef found by taskType={request.task_type}") from None
        return api.GetTaskResponse(task=to_proto(td.to_json(), model.TaskDef))

    @unary
    async def DeleteTask(self, request: api.DeleteTaskRequest, context: Ctx) -> api.DeleteTaskResponse:
        await self.executor.delete_task_def(request.task_type)
        return api.DeleteTaskResponse()
