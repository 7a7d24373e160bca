"""The Tornado application: conductor-oss's REST paths under ``/api`` mapped to thin handlers.

Order matters: Tornado takes the first route whose pattern matches, so literal segments come
before ``{param}`` segments at the same position (``/api/metadata/workflow/names`` before
``/api/metadata/workflow/{name}``, ``/api/tasks/poll/batch/{tasktype}`` before
``/api/tasks/{workflowId}/{taskRefName}/{status}``), as Spring's "fewest variables wins" rule
would choose. ``tests/server/test_routes.py`` checks that no route is shadowed by an earlier one.
"""

from __future__ import annotations

import socket
from typing import Any

import tornado.web

from conductor_lab.server import admin
from conductor_lab.server import handlers as h
from conductor_lab.server.backup_handler import BackupHandler
from conductor_lab.server.base import NotFoundHandler, Route, ServerContext
from conductor_lab.server.http1 import log_access
from conductor_lab.server.openapi import build_openapi

ROUTES: tuple[Route, ...] = (
    # the hot paths first (a worker's update and poll, a start, a workflow read): Tornado tries
    # the patterns in this order, and each miss costs a regex match per request
    Route("/api/tasks", h.TasksHandler),
    Route("/api/tasks/update-v2", h.UpdateTaskV2Handler),
    Route("/api/tasks/poll/batch/{tasktype}", h.BatchPollHandler),
    Route("/api/tasks/poll/{tasktype}", h.PollHandler),
    Route("/api/workflow", h.StartWorkflowHandler),
    # the two-segment literals under /api/workflow come before /api/workflow/{workflowId}
    Route("/api/workflow/search", h.WorkflowSearchHandler),
    Route("/api/workflow/search-v2", h.WorkflowSearchV2Handler),
    Route("/api/workflow/search-by-tasks", h.WorkflowSearchByTasksHandler),
    Route("/api/workflow/search-by-tasks-v2", h.WorkflowSearchByTasksV2Handler),
    Route("/api/workflow/test", h.TestWorkflowHandler),
    Route("/api/workflow/{workflowId}", h.WorkflowHandler),
    # health, version, docs
    Route("/health", h.HealthHandler),
    Route("/api/health", h.HealthHandler),
    Route("/api/version", h.VersionHandler),
    Route("/api/token", h.TokenHandler),
    Route("/api-docs", h.OpenApiHandler),
    Route("/api/openapi.json", h.OpenApiHandler),
    # running it as a service: Prometheus metrics, status (server/admin.py)
    Route("/metrics", admin.MetricsHandler),
    Route("/api/admin/status", admin.StatusHandler),
    Route("/api/admin/backup", BackupHandler),
    # metadata
    Route("/api/metadata/taskdefs", h.TaskDefsHandler),
    Route("/api/metadata/taskdefs/{tasktype}", h.TaskDefHandler),
    Route("/api/metadata/workflow", h.WorkflowDefsHandler),
    Route("/api/metadata/workflow/validate", h.ValidateWorkflowDefHandler),
    Route("/api/metadata/workflow/names", h.WorkflowNamesHandler),
    Route("/api/metadata/workflow/names-and-versions", h.WorkflowNamesAndVersionsHandler),
    Route("/api/metadata/workflow/latest-versions", h.LatestWorkflowDefsHandler),
    Route("/api/metadata/workflow/{name}/versions", h.WorkflowDefVersionsHandler),
    Route("/api/metadata/workflow/{name}/{version:int}", h.WorkflowDefVersionHandler),
    Route("/api/metadata/workflow/{name}", h.WorkflowDefHandler),
    # workflows
    Route("/api/workflow/execute/{name}/{version:int}", h.ExecuteWorkflowHandler),
    Route("/api/workflow/running/{name}", h.RunningWorkflowsHandler),
    Route("/api/workflow/decide/{workflowId}", h.DecideHandler),
    Route("/api/workflow/bulk/pause", h.BulkPauseHandler),
    Route("/api/workflow/bulk/resume", h.BulkResumeHandler),
    Route("/api/workflow/bulk/restart", h.BulkRestartHandler),
    Route("/api/workflow/bulk/retry", h.BulkRetryHandler),
    Route("/api/workflow/bulk/terminate", h.BulkTerminateHandler),
    Route("/api/workflow/bulk/remove", h.BulkRemoveHandler),
    Route("/api/workflow/bulk/terminate-remove", h.BulkTerminateRemoveHandler),
    Route("/api/workflow/{name}/correlated/{correlationId}", h.CorrelatedHandler),
    Route("/api/workflow/{name}/correlated", h.CorrelatedBatchHandler),
    Route("/api/workflow/{workflowId}/status", h.WorkflowStatusHandler),
    Route("/api/workflow/{workflowId}/tasks", h.WorkflowTasksHandler),
    Route("/api/workflow/{workflowId}/remove", h.RemoveWorkflowHandler),
    Route("/api/workflow/{workflowId}/terminate-remove", h.TerminateRemoveHandler),
    Route("/api/workflow/{workflowId}/pause", h.PauseHandler),
    Route("/api/workflow/{workflowId}/resume", h.ResumeHandler),
    Route("/api/workflow/{workflowId}/skiptask/{taskReferenceName}", h.SkipTaskHandler),
    Route("/api/workflow/{workflowId}/rerun", h.RerunHandler),
    Route("/api/workflow/{workflowId}/restart", h.RestartHandler),
    Route("/api/workflow/{workflowId}/retry", h.RetryHandler),
    Route("/api/workflow/{workflowId}/resetcallbacks", h.ResetCallbacksHandler),
    # tasks
    Route("/api/tasks/search", h.TaskSearchHandler),
    Route("/api/tasks/search-v2", h.TaskSearchV2Handler),
    Route("/api/tasks/queue/size", h.QueueSizeHandler),
    Route("/api/tasks/queue/sizes", h.QueueSizesHandler),
    Route("/api/tasks/queue/all", h.QueueAllHandler),
    Route("/api/tasks/queue/requeue/{tasktype}", h.RequeueHandler),
    Route("/api/tasks/queue/polldata/all", h.AllPollDataHandler),
    Route("/api/tasks/queue/polldata", h.PollDataHandler),
    Route("/api/tasks/{taskId}/log", h.TaskLogHandler),
    Route("/api/tasks/{workflowId}/{status}/signal/sync", h.SignalSyncHandler),
    Route("/api/tasks/{workflowId}/{status}/signal", h.SignalHandler),
    Route("/api/tasks/{workflowId}/{taskRefName}/{status}/sync", h.UpdateTaskSyncHandler),
    Route("/api/tasks/{workflowId}/{taskRefName}/{status}", h.UpdateTaskByRefHandler),
    Route("/api/tasks/{taskId}", h.TaskHandler),
    # conductor_lab's own (notebook live views)
    Route("/api/lab/workflow/{workflowId}/watch", h.WorkflowWatchHandler),
    Route("/api/lab/sql", h.LabSqlHandler),
    # event handlers
    Route("/api/event", h.EventHandlersHandler),
    Route("/api/event/{name}", h.EventHandlerHandler),
)

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024

def log_request(handler: tornado.web.RequestHandler) -> None:
    """Tornado's access log hook, in the lean layer's format (``http1.log_access``)."""
    request = handler.request
    log_access(handler.get_status(), request.method or "", request.uri or "", request.remote_ip,
               request.request_time())  # fmt: skip


def server_version() -> str:
    import conductor_lab

    return str(getattr(conductor_lab, "__version__", None) or "0.1.0")


def make_app(
    executor: Any,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    instance: str | None = None,
    token: str | None = None,
    routes: tuple[Route, ...] = ROUTES,
) -> tornado.web.Application:
    """The application serving ``executor`` (see ``conductor_lab.engine.executor.Executor``).

    ``token``: when set, every ``/api`` request must carry ``Authorization: Bearer <token>`` (or
    ``X-Authorization: <token>``); ``/health`` stays open.
    """
    version = server_version()
    ctx = ServerContext(
        executor=executor,
        instance=instance if instance is not None else socket.gethostname(),
        version=version,
        max_body_bytes=max_body_bytes,
        token=token or None,
        openapi=build_openapi(routes, version),
    )
    rules = [(r.pattern, r.handler, {"ctx": ctx, "route": r}) for r in routes]
    return tornado.web.Application(
        rules,
        default_handler_class=NotFoundHandler,
        default_handler_args={"ctx": ctx},
        log_function=log_request,
        conductor_ctx=ctx,
        conductor_routes=routes,
    )
