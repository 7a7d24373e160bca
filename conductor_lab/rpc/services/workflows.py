"""``conductor.grpc.workflows.WorkflowService`` over the engine's workflow operations
(as ``/api/workflow``). proto3 zero values keep conductor-oss's gRPC meaning: version 0 is the
latest definition, an unset ``include_tasks`` / ``archive_workflow`` is false."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

import grpc.aio

from conductor_lab.engine.model import Workflow
from conductor_lab.rpc.convert import from_proto, to_proto
from conductor_lab.rpc.gen.model import workflows_pb2 as model
from conductor_lab.rpc.gen.service import search_pb2
from conductor_lab.rpc.gen.service import workflows_pb2 as api
from conductor_lab.rpc.gen.service.workflows_pb2_grpc import WorkflowServiceServicer
from conductor_lab.rpc.services.search import search_args
from conductor_lab.rpc.status import optional, unary
from conductor_lab.server import shapes

if TYPE_CHECKING:
    from conductor_lab.engine.executor import Executor

Ctx: TypeAlias = grpc.aio.ServicerContext


class WorkflowService(WorkflowServiceServicer):
    """Start, read and steer workflow executions."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    def _workflow(self, wf: Workflow, include_tasks: bool) -> model.Workflow:
        body = shapes.workflow(wf, self.executor.definition_json(wf), include_tasks=include_tasks)
        return to_proto(body, model.Workflow)

    @unary
    async def StartWorkflow(self, request: model.StartWorkflowRequest, context: Ctx) -> api.StartWorkflowResponse:
        body: dict[str, Any] = from_proto(request)
        if not body.get("version"):  # 0: the latest version (conductor-oss: GRPCHelper.optional)
            body.pop("version", None)
        return api.StartWorkflowResponse(workflow_id=await self.executor.start_workflow(body))

    @unary
    async def GetWorkflows(self, request: api.GetWorkflowsRequest, context: Ctx) -> api.GetWorkflowsResponse:
        found = await self.executor.get_correlated_batch(
            request.name, list(request.correlation_id), include_closed=request.include_closed
        )
        out = api.GetWorkflowsResponse()
        for correlation_id, wfs in found.items():
            out.workflows_by_id[correlation_id].workflows.extend(
                self._workflow(wf, request.include_tasks) for wf in wfs
            )
        return out

    @unary
    async def GetWorkflowStatus(self, request: api.GetWorkflowStatusRequest, context: Ctx) -> model.Workflow:
        return self._workflow(await self.executor.get_workflow(request.workflow_id), request.include_tasks)

    @unary
    async def RemoveWorkflow(self, request: api.RemoveWorkflowRequest, context: Ctx) -> api.RemoveWorkflowResponse:
        await self.executor.remove_workflow(request.workflod_id, archive=request.archive_workflow)
        return api.RemoveWorkflowResponse()

    @unary
    async def GetRunningWorkflows(
        self, request: api.GetRunningWorkflowsRequest, context: Ctx
    ) -> api.GetRunningWorkflowsResponse:
        ids = await self.executor.running_workflow_ids(
            request.name,
            version=request.version or 1,  # as REST's default (conductor-oss's gRPC passes 0 on)
            start_time=request.start_time or None,
            end_time=request.end_time or None,
        )
        return api.GetRunningWorkflowsResponse(workflow_ids=ids)

    @unary
    async def DecideWorkflow(self, request: api.DecideWorkflowRequest, context: Ctx) -> api.DecideWorkflowResponse:
        await self.executor.decide(request.workflow_id)
        return api.DecideWorkflowResponse()

    @unary
    async def PauseWorkflow(self, request: api.PauseWorkflowRequest, context: Ctx) -> api.PauseWorkflowResponse:
        await self.executor.pause_workflow(request.workflow_id)
        return api.PauseWorkflowResponse()

    @unary
    async def ResumeWorkflow(self, request: api.ResumeWorkflowRequest, context: Ctx) -> api.ResumeWorkflowResponse:
        await self.executor.resume_workflow(request.workflow_id)
        return api.ResumeWorkflowResponse()

    @unary
    async def SkipTaskFromWorkflow(self, request: api.SkipTaskRequest, context: Ctx) -> api.SkipTaskResponse:
        skip = from_proto(request.request) if request.HasField("request") else None
        await self.executor.skip_task(request.workflow_id, request.task_reference_name, skip)
        return api.SkipTaskResponse()

    @unary
    async def RerunWorkflow(self, request: model.RerunWorkflowRequest, context: Ctx) -> api.RerunWorkflowResponse:
        body = from_proto(request)
        workflow_id = await self.executor.rerun_workflow(request.re_run_from_workflow_id, body)
        return api.RerunWorkflowResponse(workflow_id=workflow_id)

    @unary
    async def RestartWorkflow(self, request: api.RestartWorkflowRequest, context: Ctx) -> api.RestartWorkflowResponse:
        await self.executor.restart_workflow(
            request.workflow_id, use_latest_definitions=request.use_latest_definitions
        )
        return api.RestartWorkflowResponse()

    @unary
    async def RetryWorkflow(self, request: api.RetryWorkflowRequest, context: Ctx) -> api.RetryWorkflowResponse:
        await self.executor.retry_workflow(
            request.workflow_id, resume_subworkflow_tasks=request.resume_subworkflow_tasks
        )
        return api.RetryWorkflowResponse()

    @unary
    async def ResetWorkflowCallbacks(
        self, request: api.ResetWorkflowCallbacksRequest, context: Ctx
    ) -> api.ResetWorkflowCallbacksResponse:
        await self.executor.reset_callbacks(request.workflow_id)
        return api.ResetWorkflowCallbacksResponse()

    @unary
    async def TerminateWorkflow(
        self, request: api.TerminateWorkflowRequest, context: Ctx
    ) -> api.TerminateWorkflowResponse:
        await self.executor.terminate_workflow(request.workflow_id, optional(request.reason))
        return api.TerminateWorkflowResponse()

    async def _summaries(self, found: list[Workflow]) -> list[model.WorkflowSummary]:
        return [to_proto(shapes.workflow_summary(wf), model.WorkflowSummary) for wf in found]

    @unary
    async def Search(self, request: search_pb2.Request, context: Ctx) -> api.WorkflowSummarySearchResult:
        total, found = await self.executor.search_workflows(**search_args(request))
        return api.WorkflowSummarySearchResult(total_hits=total, results=await self._summaries(found))

    @unary
    async def SearchByTasks(self, request: search_pb2.Request, context: Ctx) -> api.WorkflowSummarySearchResult:
        total, found = await self.executor.search_workflows_by_tasks(**search_args(request))
        return api.WorkflowSummarySearchResult(total_hits=total, results=await self._summaries(found))

    @unary
    async def SearchV2(self, request: search_pb2.Request, context: Ctx) -> api.WorkflowSearchResult:
        total, found = await self.executor.search_workflows(**search_args(request), method="searchWorkflowsV2")
        return api.WorkflowSearchResult(total_hits=total, results=[self._workflow(wf, False) for wf in found])

    @unary
    async def SearchByTasksV2(self, request: search_pb2.Request, context: Ctx) -> api.WorkflowSearchResult:
        total, found = await self.executor.search_workflows_by_tasks(**search_args(request))
        return api.WorkflowSearchResult(total_hits=total, results=[self._workflow(wf, False) for wf in found])
