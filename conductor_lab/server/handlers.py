"""Thin handlers, one class per resource path: parse, call the executor, serialise.

Paths, parameters, content types and status codes follow conductor-oss (contract section 2); the
route table is in :mod:`conductor_lab.server.app`. No engine logic lives here: the only checks are
the ones conductor-oss makes while binding a request (types, ranges of query parameters).
"""

from __future__ import annotations

import asyncio
from typing import Any

from conductor_lab.engine.model import RESULT_STATUS_NAMES, Workflow
from conductor_lab.engine.services.tasks import status_mismatch
from conductor_lab.engine.sql import ARROW_STREAM, SqlRequest
from conductor_lab.errors import InvalidInput, MalformedBody, NotFound, validation_error
from conductor_lab.server import shapes
from conductor_lab.server.base import (
    JSON_TYPE,
    NO_CONTENT,
    BaseHandler,
    Body,
    Param,
    Unauthorized,
    api,
    ok_json,
    ok_text,
)

_WORKER_ID = Param("workerid", doc="id of the polling worker")
_DOMAIN = Param("domain", doc="task domain")


# ------------------------------------------------------------------------------------------------
# Metadata: /api/metadata


class TaskDefsHandler(BaseHandler):
    tag = "metadata"

    @api("All task definitions", returns=[ok_json("TaskDef[]")])
    def get(self) -> None:
        self.reply_json([td.to_json() for td in self.executor.get_task_defs()])

    @api("Create or overwrite task definitions", body=Body("array", "TaskDef"))
    async def post(self) -> None:
        await self.executor.register_task_defs(self.body())
        self.reply_empty()

    @api("Update a task definition (404 when it does not exist)", body=Body("object", "TaskDef"))
    async def put(self) -> None:
        await self.executor.update_task_def(self.body())
        self.reply_empty()


class TaskDefHandler(BaseHandler):
    tag = "metadata"

    @api("One task definition", returns=[ok_json("TaskDef")])
    def get(self, tasktype: str) -> None:
        self.reply_json(self.executor.get_task_def(tasktype).to_json())

    @api("Delete a task definition")
    async def delete(self, tasktype: str) -> None:
        await self.executor.delete_task_def(tasktype)
        self.reply_empty()


class WorkflowDefsHandler(BaseHandler):
    tag = "metadata"

    @api("All versions of all workflow definitions", returns=[ok_json("WorkflowDef[]")])
    def get(self) -> None:
        self.reply_json([wd.to_json() for wd in self.executor.get_workflow_defs()])

    @api(
        "Create a workflow definition (409 when name+version exists, unless overwrite)",
        query=[Param("overwrite", "bool", False, doc="replace an existing name+version")],
        body=Body("object", "WorkflowDef"),
    )
    async def post(self) -> None:
        await self.executor.register_workflow_def(self.body(), overwrite=self.q["overwrite"])
        self.reply_empty()

    @api(
        "Create or update workflow definitions",
        body=Body("array", "WorkflowDef"),
        returns=[ok_json("BulkResponse")],
    )
    async def put(self) -> None:
        self.reply_json(shapes.bulk_response(await self.executor.update_workflow_defs(self.body())))


class ValidateWorkflowDefHandler(BaseHandler):
    tag = "metadata"

    @api("Validate a workflow definition without storing it", body=Body("object", "WorkflowDef"))
    def post(self) -> None:
        self.executor.validate_workflow_def(self.body())
        self.reply_empty()


class WorkflowNamesHandler(BaseHandler):
    tag = "metadata"

    @api("Distinct workflow definition names", returns=[ok_json("string[]")])
    def get(self) -> None:
        self.reply_json(self.executor.get_workflow_names())


class WorkflowNamesAndVersionsHandler(BaseHandler):
    tag = "metadata"

    @api("Workflow definition summaries by name", returns=[ok_json("map<string, WorkflowDefSummary[]>")])
    def get(self) -> None:
        found = self.executor.get_workflow_names_and_versions()
        self.reply_json({name: shapes.definition_summaries(defs) for name, defs in found.items()})


class LatestWorkflowDefsHandler(BaseHandler):
    tag = "metadata"

    @api("Latest version of each workflow definition", returns=[ok_json("WorkflowDef[]")])
    def get(self) -> None:
        self.reply_json([wd.to_json() for wd in self.executor.get_latest_workflow_defs()])


class WorkflowDefVersionsHandler(BaseHandler):
    tag = "metadata"

    @api("Versions of one workflow definition", returns=[ok_json("WorkflowDefSummary[]")])
    def get(self, name: str) -> None:
        self.reply_json(shapes.definition_summaries(self.executor.get_workflow_versions(name)))


class WorkflowDefHandler(BaseHandler):
    tag = "metadata"

    @api(
        "One workflow definition (latest version unless given)",
        query=[Param("version", "int", doc="definition version; latest when absent")],
        returns=[ok_json("WorkflowDef")],
    )
    def get(self, name: str) -> None:
        self.reply_json(self.executor.get_workflow_def(name, self.q["version"]).to_json())


class WorkflowDefVersionHandler(BaseHandler):
    tag = "metadata"

    @api("Delete one version of a workflow definition")
    async def delete(self, name: str, version: int) -> None:
        await self.executor.delete_workflow_def(name, version)
        self.reply_empty()


# ------------------------------------------------------------------------------------------------
# Workflows: /api/workflow


def _priority(value: int) -> int:
    """The ``priority`` query parameter of start-by-name (``WorkflowService.startWorkflow``'s
    ``@Min``/``@Max`` messages; a StartWorkflowRequest body says ``priority: N should be ...``)."""
    if not 0 <= value <= 99:
        message = "99 is the maximum priority value" if value > 99 else "0 is the minimum priority value"
        raise validation_error("startWorkflow.priority", message, str(value))  # invalidValue: a string
    return value


class StartWorkflowHandler(BaseHandler):
    tag = "workflow"
    lean = frozenset({"post"})

    @api(
        "Start a workflow from a StartWorkflowRequest (inline workflowDef allowed)",
        body=Body("object", "StartWorkflowRequest"),
        returns=[ok_text("the new workflow id")],
    )
    async def post(self) -> None:
        self.reply_text(await self.executor.start_workflow(self.body()))


class WorkflowHandler(BaseHandler):
    """``/api/workflow/{workflowId}``; for POST the segment is a workflow *name* (start by name)."""

    tag = "workflow"
    lean = frozenset({"get", "post"})

    @api(
        "Start a workflow by name; the path segment is the workflow name, the body its input",
        query=[
            Param("version", "int", doc="definition version; latest when absent"),
            Param("correlationId"),
            Param("priority", "int", 0, doc="0..99"),
        ],
        body=Body("any", "map", "workflow input (a JSON object)"),
        returns=[ok_text("the new workflow id")],
    )
    async def post(self, workflow_id: str) -> None:
        name, workflow_input = workflow_id, self.body()
        if workflow_input is not None and not isinstance(workflow_input, dict):
            raise MalformedBody(
                "JSON parse error: Cannot deserialize value of type `Map` (expected a JSON object)"
            )
        workflow_id = await self.executor.start_workflow_by_name(
            name,
            workflow_input,
            version=self.q["version"],
            correlation_id=self.q["correlationId"],
            priority=_priority(self.q["priority"]),
        )
        self.reply_text(workflow_id)

    @api(
        "One workflow execution",
        query=[Param("includeTasks", "bool", True)],
        returns=[ok_json("Workflow")],
    )
    async def get(self, workflow_id: str) -> None:
        wf = await self.executor.get_workflow(workflow_id)
        self.reply_json(
            shapes.workflow(wf, self.executor.definition_json(wf), include_tasks=self.q["includeTasks"])
        )

    @api("Terminate a workflow", query=[Param("reason", doc="reason for termination")])
    async def delete(self, workflow_id: str) -> None:
        await self.executor.terminate_workflow(workflow_id, self.q["reason"])
        self.reply_empty()


class WorkflowStatusHandler(BaseHandler):
    tag = "workflow"

    @api(
        "A small status object for one workflow",
        query=[Param("includeOutput", "bool", False), Param("includeVariables", "bool", False)],
        returns=[ok_json("WorkflowStatus")],
    )
    async def get(self, workflow_id: str) -> None:
        wf = await self.executor.get_workflow(workflow_id)
        self.reply_json(
            shapes.workflow_status(
                wf, include_output=self.q["includeOutput"], include_variables=self.q["includeVariables"]
            )
        )


class WorkflowTasksHandler(BaseHandler):
    tag = "workflow"

    @api(
        "A page of a workflow's tasks (ordered by seq)",
        query=[
            Param("start", "int", 0),
            Param("count", "int", 15),
            Param("status", "str[]", doc="task statuses to keep (repeatable, case-insensitive)"),
        ],
        returns=[ok_json("SearchResult<Task>")],
    )
    async def get(self, workflow_id: str) -> None:
        total, page = await self.executor.get_workflow_tasks(
            workflow_id,
            start=self.q["start"],
            count=self.q["count"],
            statuses=[s.upper() for s in self.q["status"]],
        )
        self.reply_json(shapes.search_result(total, shapes.tasks(page)))


class RemoveWorkflowHandler(BaseHandler):
    tag = "workflow"

    @api(
        "Remove a workflow (archiving requires a terminal workflow: 400 otherwise)",
        query=[Param("archiveWorkflow", "bool", True)],
    )
    async def delete(self, workflow_id: str) -> None:
        await self.executor.remove_workflow(workflow_id, archive=self.q["archiveWorkflow"])
        self.reply_empty()


class DecideHandler(BaseHandler):
    tag = "workflow"

    @api("Run one decider pass now")
    async def put(self, workflow_id: str) -> None:
        await self.executor.decide(workflow_id)
        self.reply_empty()


def _workflows(executor: Any, found: list[Workflow], include_tasks: bool) -> list[dict[str, Any]]:
    return [shapes.workflow(wf, executor.definition_json(wf), include_tasks=include_tasks) for wf in found]


class TerminateRemoveHandler(BaseHandler):
    tag = "workflow"

    @api(
        "Terminate a workflow, then remove it",
        query=[Param("reason", doc="reason for termination"), Param("archiveWorkflow", "bool", True)],
    )
    async def delete(self, workflow_id: str) -> None:
        await self.executor.terminate_workflow(workflow_id, self.q["reason"])
        await self.executor.remove_workflow(workflow_id, archive=self.q["archiveWorkflow"])
        self.reply_empty()


class PauseHandler(BaseHandler):
    tag = "workflow"

    @api("Pause: nothing new is scheduled, running tasks finish (409 when the workflow has ended)")
    async def put(self, workflow_id: str) -> None:
        await self.executor.pause_workflow(workflow_id)
        self.reply_empty()


class ResumeHandler(BaseHandler):
    tag = "workflow"

    @api("Resume a paused workflow (500 when it is not PAUSED, as conductor-oss)")
    async def put(self, workflow_id: str) -> None:
        await self.executor.resume_workflow(workflow_id)
        self.reply_empty()


class SkipTaskHandler(BaseHandler):
    tag = "workflow"

    @api("Skip a task not reached yet: the flow jumps over it (500 when not RUNNING, unknown or already there)")
    async def put(self, workflow_id: str, task_reference_name: str) -> None:
        await self.executor.skip_task(workflow_id, task_reference_name)
        self.reply_empty()


class RerunHandler(BaseHandler):
    tag = "workflow"

    @api(
        "Rerun a finished workflow from the start or from a task, with new input (the same id)",
        body=Body("object", "RerunWorkflowRequest"),
        returns=[ok_text("the workflow id")],
    )
    async def post(self, workflow_id: str) -> None:
        self.reply_text(await self.executor.rerun_workflow(workflow_id, self.body()))


class RestartHandler(BaseHandler):
    tag = "workflow"

    @api(
        "Restart a finished workflow from its first task (same id, input and correlation id)",
        query=[Param("useLatestDefinitions", "bool", False)],
        returns=[NO_CONTENT],
    )
    async def post(self, workflow_id: str) -> None:
        await self.executor.restart_workflow(workflow_id, use_latest_definitions=self.q["useLatestDefinitions"])
        self.reply_no_content()


class RetryHandler(BaseHandler):
    tag = "workflow"

    @api(
        "Retry the failed tasks of a finished workflow",
        query=[Param("resumeSubworkflowTasks", "bool", False, doc="retry inside a failed sub-workflow")],
        returns=[NO_CONTENT],
    )
    async def post(self, workflow_id: str) -> None:
        await self.executor.retry_workflow(
            workflow_id, resume_subworkflow_tasks=self.q["resumeSubworkflowTasks"]
        )
        self.reply_no_content()


class ResetCallbacksHandler(BaseHandler):
    tag = "workflow"

    @api("Make worker tasks waiting out a callbackAfterSeconds pollable now", returns=[NO_CONTENT])
    async def post(self, workflow_id: str) -> None:
        await self.executor.reset_callbacks(workflow_id)
        self.reply_no_content()


# Synchronous execution, signals and test runs (contract 7.11, 7.12)

_RETURN_STRATEGY = Param(
    "returnStrategy",
    default="TARGET_WORKFLOW",
    doc="TARGET_WORKFLOW, BLOCKING_WORKFLOW, BLOCKING_TASK or BLOCKING_TASK_INPUT",
)
_RETURN_STRATEGIES = ("TARGET_WORKFLOW", "BLOCKING_WORKFLOW", "BLOCKING_TASK", "BLOCKING_TASK_INPUT")


def _return_strategy(value: str) -> str:
    if value not in _RETURN_STRATEGIES:  # MethodArgumentTypeMismatchException upstream: 500
        raise MalformedBody(
            "Failed to convert value of type 'java.lang.String' to required type "
            "'org.conductoross.conductor.model.WorkflowSignalReturnStrategy'; "
            f"No enum constant org.conductoross.conductor.model.WorkflowSignalReturnStrategy.{value}"
        )
    return value


def _task_result_status(status: str) -> str:
    """A ``{status}`` path variable (``TaskResult.Status``); anything else is Spring's 500."""
    if status not in RESULT_STATUS_NAMES:
        raise MalformedBody(status_mismatch(status))
    return status


class ExecuteWorkflowHandler(BaseHandler):
    tag = "workflow"

    @api(
        "Start a workflow and wait until it ends, reaches a blocking task, or waitForSeconds pass",
        query=[
            Param("requestId", doc="echoed in the response; a random UUID when absent"),
            Param("waitUntilTaskRef", doc="comma-separated task reference names: return once one has ended"),
            Param("waitForSeconds", "int", 10, doc="0 means 10"),
            Param("consistency", default="DURABLE", doc="accepted and ignored"),
            _RETURN_STRATEGY,
        ],
        body=Body("object", "StartWorkflowRequest", "name and version are taken from the path"),
        returns=[ok_json("SignalResponse", "WorkflowRun or TaskRun, by returnStrategy")],
        doc="Path version 0 means the latest version. A WAIT without duration/until anywhere in the "
        "workflow or its running sub-workflows is a blocking task; on timeout signalTimeout is true.",
    )
    async def post(self, name: str, version: int) -> None:
        result = await self.executor.execute_workflow(
            name,
            version,
            self.body(),
            request_id=self.q["requestId"],
            wait_until_task_ref=self.q["waitUntilTaskRef"],
            wait_for_seconds=self.q["waitForSeconds"],
            return_strategy=_return_strategy(self.q["returnStrategy"]),
        )
        self.reply_json(shapes.signal_response(result))


class TestWorkflowHandler(BaseHandler):
    tag = "workflow"

    @api(
        "Run a workflow with mocked task results (taskRefToMockOutput) in a random task domain",
        body=Body("object", "WorkflowTestRequest"),
        returns=[ok_json("Workflow")],
    )
    async def post(self) -> None:
        wf = await self.executor.test_workflow(self.body())
        self.reply_json(shapes.workflow(wf, self.executor.definition_json(wf)))


# ------------------------------------------------------------------------------------------------
# Bulk: /api/workflow/bulk (a JSON array of 1..1000 workflow ids; BulkResponse)

_IDS = Body("array", "string", "workflow ids (1 to 1000)")


class _BulkHandler(BaseHandler):
    tag = "bulk"

    async def run(self, verb: str, **options: Any) -> None:
        ok, errors = await self.executor.bulk(verb, self.body(), **options)
        self.reply_json({"bulkSuccessfulResults": ok, "bulkErrorResults": errors})


class BulkPauseHandler(_BulkHandler):
    @api("Pause each workflow", body=_IDS, returns=[ok_json("BulkResponse")])
    async def put(self) -> None:
        await self.run("pause")


class BulkResumeHandler(_BulkHandler):
    @api("Resume each workflow", body=_IDS, returns=[ok_json("BulkResponse")])
    async def put(self) -> None:
        await self.run("resume")


class BulkRestartHandler(_BulkHandler):
    @api(
        "Restart each workflow",
        query=[Param("useLatestDefinitions", "bool", False)],
        body=_IDS,
        returns=[ok_json("BulkResponse")],
    )
    async def post(self) -> None:
        await self.run("restart", use_latest_definitions=self.q["useLatestDefinitions"])


class BulkRetryHandler(_BulkHandler):
    @api("Retry each workflow", body=_IDS, returns=[ok_json("BulkResponse")])
    async def post(self) -> None:
        await self.run("retry")


class BulkTerminateHandler(_BulkHandler):
    @api("Terminate each workflow", query=[Param("reason")], body=_IDS, returns=[ok_json("BulkResponse")])
    async def post(self) -> None:
        await self.run("terminate", reason=self.q["reason"])


class BulkRemoveHandler(_BulkHandler):
    @api(
        "Remove each workflow",
        query=[Param("archiveWorkflow", "bool", True)],
        body=_IDS,
        returns=[ok_json("BulkResponse")],
    )
    async def delete(self) -> None:
        await self.run("remove", archive=self.q["archiveWorkflow"])


class BulkTerminateRemoveHandler(_BulkHandler):
    @api(
        "Terminate, then remove each workflow (an id succeeding both steps is listed twice, as upstream)",
        query=[Param("archiveWorkflow", "bool", True), Param("reason")],
        body=_IDS,
        returns=[ok_json("BulkResponse")],
    )
    async def delete(self) -> None:
        await self.run("terminate-remove", archive=self.q["archiveWorkflow"], reason=self.q["reason"])


class CorrelatedHandler(BaseHandler):
    tag = "workflow"

    @api(
        "Executions of a workflow type with a correlation id",
        query=[Param("includeClosed", "bool", False), Param("includeTasks", "bool", False)],
        returns=[ok_json("Workflow[]")],
    )
    async def get(self, name: str, correlation_id: str) -> None:
        found = await self.executor.get_correlated(name, correlation_id, include_closed=self.q["includeClosed"])
        self.reply_json(_workflows(self.executor, found, self.q["includeTasks"]))


class CorrelatedBatchHandler(BaseHandler):
    tag = "workflow"

    @api(
        "Executions of a workflow type for several correlation ids",
        query=[Param("includeClosed", "bool", False), Param("includeTasks", "bool", False)],
        body=Body("array", "string", "correlation ids"),
        returns=[ok_json("map<string, Workflow[]>")],
    )
    async def post(self, name: str) -> None:
        ids = self.body()
        if not all(isinstance(i, str) for i in ids):
            raise MalformedBody(
                "JSON parse error: Cannot deserialize value of type `List<String>` from non-string items"
            )
        found = await self.executor.get_correlated_batch(name, ids, include_closed=self.q["includeClosed"])
        self.reply_json({cid: _workflows(self.executor, wfs, self.q["includeTasks"]) for cid, wfs in found.items()})


class RunningWorkflowsHandler(BaseHandler):
    tag = "workflow"

    @api(
        "Ids of RUNNING workflows of one version (or of any status created in [startTime, endTime])",
        query=[
            Param("version", "int", 1, doc="defaults to 1, not to the latest version"),
            Param("startTime", "long"),
            Param("endTime", "long"),
        ],
        returns=[ok_json("string[]")],
    )
    async def get(self, name: str) -> None:
        ids = await self.executor.running_workflow_ids(
            name, version=self.q["version"], start_time=self.q["startTime"], end_time=self.q["endTime"]
        )
        self.reply_json(ids)


# ------------------------------------------------------------------------------------------------
# Tasks: /api/tasks


class BatchPollHandler(BaseHandler):
    tag = "tasks"
    lean = frozenset({"get"})

    @api(
        "Long-poll up to `count` tasks for up to `timeout` ms (200 [] when none)",
        query=[
            _WORKER_ID,
            _DOMAIN,
            Param("count", "int", 1),
            Param("timeout", "int", 100, doc="milliseconds, at most 5000"),
        ],
        returns=[ok_json("Task[]")],
    )
    async def get(self, tasktype: str) -> None:
        tasks = await self.executor.poll(
            tasktype,
            worker_id=self.q["workerid"],
            domain=self.q["domain"],
            count=self.q["count"],
            timeout_ms=self.q["timeout"],
        )
        self.reply_json(shapes.tasks(tasks))


class PollHandler(BaseHandler):
    tag = "tasks"
    lean = frozenset({"get"})

    @api(
        "Poll one task (waits up to 100 ms; 204 when none)",
        query=[_WORKER_ID, _DOMAIN],
        returns=[ok_json("Task"), NO_CONTENT],
    )
    async def get(self, tasktype: str) -> None:
        tasks = await self.executor.poll(
            tasktype, worker_id=self.q["workerid"], domain=self.q["domain"], count=1, timeout_ms=100
        )
        if tasks:
            self.reply_json(shapes.task(tasks[0]))
        else:
            self.reply_no_content()


class TasksHandler(BaseHandler):
    tag = "tasks"
    lean = frozenset({"post"})

    @api(
        "Update a task with a TaskResult", body=Body("object", "TaskResult"), returns=[ok_text("the task id")]
    )
    async def post(self) -> None:
        self.reply_text(await self.executor.update_task(self.body()))


class UpdateTaskV2Handler(BaseHandler):
    tag = "tasks"
    lean = frozenset({"post"})

    @api(
        "Update a task; returns the next task of the same type for the worker, or 204",
        body=Body("object", "TaskResult"),
        returns=[ok_json("Task"), NO_CONTENT],
    )
    async def post(self) -> None:
        result = self.body()
        for field, what in (("workflowInstanceId", "Workflow Id"), ("taskId", "Task ID")):
            if not result.get(field):  # controller-level @Valid upstream: 500, not 400 as on POST /api/tasks
                raise MalformedBody(f"Validation failed for argument [0]: {what} cannot be null or empty")
        task = await self.executor.update_task_v2(result)
        if task:
            self.reply_json(shapes.task(task))
        else:
            self.reply_no_content()


class UpdateTaskByRefHandler(BaseHandler):
    tag = "tasks"

    @api(
        "Update the pending task with this reference name; output is merged",
        query=[_WORKER_ID],
        body=Body("object", "map", "task output"),
        returns=[ok_text("the task id; empty body when no pending task matched")],
    )
    async def post(self, workflow_id: str, task_ref_name: str, status: str) -> None:
        task_id = await self.executor.update_task_by_ref(
            workflow_id, task_ref_name, _task_result_status(status), self.body(), worker_id=self.q["workerid"]
        )
        if task_id:
            self.reply_text(task_id)
        else:
            self.reply_empty()


class UpdateTaskSyncHandler(BaseHandler):
    tag = "tasks"

    @api(
        "Update the pending task with this reference name and answer with the workflow (404 when none)",
        query=[_WORKER_ID],
        body=Body("object", "map", "task output (merged)"),
        returns=[ok_json("Workflow")],
    )
    async def post(self, workflow_id: str, task_ref_name: str, status: str) -> None:
        wf = await self.executor.update_task_sync(
            workflow_id, task_ref_name, _task_result_status(status), self.body(), worker_id=self.q["workerid"]
        )
        self.reply_json(shapes.workflow(wf, self.executor.definition_json(wf)))


class SignalHandler(BaseHandler):
    tag = "tasks"

    @api(
        "Complete or fail the first pending WAIT task (also in running sub-workflows); no-op when none",
        body=Body("object", "map", "task output (merged)"),
    )
    async def post(self, workflow_id: str, status: str) -> None:
        await self.executor.signal_task(workflow_id, _task_result_status(status), self.body())
        self.reply_empty()


class SignalSyncHandler(BaseHandler):
    tag = "tasks"

    @api(
        "Signal the pending WAIT task, then wait for the next blocking task or the end (404 when none)",
        query=[_RETURN_STRATEGY, Param("timeoutMillis", "long", 5000)],
        body=Body("object", "map", "task output (merged)"),
        returns=[ok_json("SignalResponse", "WorkflowRun or TaskRun, by returnStrategy")],
    )
    async def post(self, workflow_id: str, status: str) -> None:
        result = await self.executor.signal_task_sync(
            workflow_id,
            _task_result_status(status),
            self.body(),
            return_strategy=_return_strategy(self.q["returnStrategy"]),
            timeout_ms=self.q["timeoutMillis"],
        )
        self.reply_json(shapes.signal_response(result))


class TaskHandler(BaseHandler):
    tag = "tasks"

    @api("One task", returns=[ok_json("Task")])
    async def get(self, task_id: str) -> None:
        try:
            task = await self.executor.get_task(task_id)
        except NotFound:  # TaskResource's own message (its service answers null)
            raise NotFound(f"Task not found for taskId: {task_id}") from None
        self.reply_json(shapes.task(task))


class TaskLogHandler(BaseHandler):
    tag = "tasks"

    @api("Append a log line; the raw body is the line, verbatim", body=Body("text", "string", "the log line"))
    async def post(self, task_id: str) -> None:
        await self.executor.add_task_log(task_id, self.body())
        self.reply_empty()

    @api("A task's log lines (204 when none)", returns=[ok_json("TaskExecLog[]"), NO_CONTENT])
    async def get(self, task_id: str) -> None:
        logs = await self.executor.get_task_logs(task_id)
        if logs:
            self.reply_json(shapes.task_logs(logs))
        else:
            self.reply_no_content()


class RequeueHandler(BaseHandler):
    tag = "tasks"

    @api("Put every pending worker task of a type back into its queue", returns=[ok_text("how many")])
    def post(self, tasktype: str) -> None:
        self.reply_text(str(self.executor.requeue(tasktype)))


class QueueSizeHandler(BaseHandler):
    tag = "tasks"

    @api(
        "Number of tasks waiting in one queue",
        query=[
            Param("taskType", required=True),
            _DOMAIN,
            Param("isolationGroupId"),
            Param("executionNamespace"),
        ],
        returns=[ok_json("integer")],
    )
    def get(self) -> None:
        size = self.executor.queue_size(
            self.q["taskType"],
            domain=self.q["domain"],
            isolation_group_id=self.q["isolationGroupId"],
            execution_namespace=self.q["executionNamespace"],
        )
        self.reply_json(size)


class QueueSizesHandler(BaseHandler):
    tag = "tasks"

    @api(
        "Sizes of the default (no-domain) queues of several task types (deprecated upstream)",
        query=[Param("taskType", "str[]", doc="repeatable")],
        returns=[ok_json("map<string, integer>")],
    )
    def get(self) -> None:
        self.reply_json(self.executor.queue_sizes(self.q["taskType"]))


class QueueAllHandler(BaseHandler):
    tag = "tasks"

    @api("Sizes of every queue, by queue name", returns=[ok_json("map<string, integer>")])
    def get(self) -> None:
        self.reply_json(self.executor.queue_all())


class PollDataHandler(BaseHandler):
    tag = "tasks"

    @api(
        "Last poll per domain for a task type",
        query=[Param("taskType", required=True)],
        returns=[ok_json("PollData[]")],
    )
    def get(self) -> None:
        self.reply_json(shapes.poll_data_list(self.executor.poll_data(self.q["taskType"])))


class AllPollDataHandler(BaseHandler):
    tag = "tasks"

    @api("Last poll of every queue", returns=[ok_json("PollData[]")])
    def get(self) -> None:
        self.reply_json(shapes.poll_data_list(self.executor.all_poll_data()))


# ------------------------------------------------------------------------------------------------
# Health, version, token, OpenAPI


class HealthHandler(BaseHandler):
    tag = "health"

    @api("Always healthy while the server answers", returns=[ok_json("HealthCheckStatus")])
    def get(self) -> None:
        self.reply_json({"healthResults": [], "healthy": True})


class VersionHandler(BaseHandler):
    tag = "health"

    @api("Server version", returns=[ok_text("the version")])
    def get(self) -> None:
        self.reply_text(self.ctx.version)


class TokenHandler(BaseHandler):
    """Open mode (no token configured): 404, so the official SDK stops asking (sdk-contract §3).

    With a token configured, ``{"keyId": any, "keySecret": <token>}`` is exchanged for
    ``{"token": <token>}``, so the official SDK works with ``CONDUCTOR_AUTH_SECRET=<token>``.
    """

    tag = "health"

    @api(
        "Exchange key credentials for a token (404 when the server runs without a token)",
        body=Body("object", "GenerateTokenRequest"),
        returns=[ok_json("TokenResponse")],
    )
    def post(self) -> None:
        token = self.ctx.token
        if token is None:
            raise NotFound("No static resource api/token.")
        secret = self.body().get("keySecret")
        if not isinstance(secret, str) or secret != token:
            raise Unauthorized("Invalid keySecret")
        self.reply_json({"token": token})


class OpenApiHandler(BaseHandler):
    tag = "health"

    @api("This server's OpenAPI 3 document", returns=[ok_json("OpenAPI")])
    def get(self) -> None:
        self.reply_json(self.ctx.openapi)


# ------------------------------------------------------------------------------------------------
# Events: /api/event


class EventHandlersHandler(BaseHandler):
    tag = "events"

    @api("All event handlers", returns=[ok_json("EventHandler[]")])
    def get(self) -> None:
        self.reply_json(self.executor.events.get_handlers())

    @api(
        "Add an event handler (409 when the name exists; name, event and actions are required)",
        body=Body("object", "EventHandler"),
    )
    async def post(self) -> None:
        await self.executor.events.add_handler(self.body())
        self.reply_empty()

    @api("Update an event handler by name (404 when it does not exist)", body=Body("object", "EventHandler"))
    async def put(self) -> None:
        await self.executor.events.update_handler(self.body())
        self.reply_empty()


class EventHandlerHandler(BaseHandler):
    """``/api/event/{name}``: GET reads the segment as an event string (``conductor:wf:ref``, colons
    allowed), DELETE as a handler name, as conductor-oss's two mappings on the same path do."""

    tag = "events"

    @api(
        "Event handlers whose event equals the path segment exactly (e.g. conductor:my_wf:notify_ref)",
        query=[Param("activeOnly", "bool", True, doc="only active handlers")],
        returns=[ok_json("EventHandler[]")],
    )
    def get(self, name: str) -> None:
        self.reply_json(self.executor.events.get_handlers_for_event(name, self.q["activeOnly"]))

    @api("Remove an event handler by name (404 when it does not exist)")
    async def delete(self, name: str) -> None:
        await self.executor.events.remove_handler(name)
        self.reply_empty()


# ------------------------------------------------------------------------------------------------
# Search: /api/workflow/search*, /api/tasks/search* (contract section 8)

_SORT = Param("sort", doc="field[:ASC|DESC], several separated by '|' (e.g. startTime:DESC|workflowId:ASC)")
_FREE_TEXT = Param("freeText", default="*", doc="'*' = all; else a case-insensitive substring of the stored JSON")
_QUERY = Param("query", doc="clauses joined by ' AND ' (=, >, <, IN): workflowType = 'x' AND status IN (FAILED,TIMED_OUT)")
_SEARCH_QUERY = (Param("start", "int", 0), Param("size", "int", 100), _SORT, _FREE_TEXT, _QUERY)
_WORKFLOW_SEARCH_QUERY = (
    Param("start", "int", 0),
    Param("size", "int", 100, doc="at most 5000"),
    _SORT,
    _FREE_TEXT,
    _QUERY,
    Param("classifier", doc="comma-separated classifiers (workflow, agent): adds classifier IN (...)"),
    Param("topLevelOnly", "bool", False, doc="only workflows without a parent: adds parentWorkflowId=\"\""),
)


def _search_args(q: dict[str, Any], *, workflows: bool = False) -> dict[str, Any]:
    args = {"start": q["start"], "size": q["size"], "sort": q["sort"], "free_text": q["freeText"], "query": q["query"]}
    if workflows:
        args.update(classifier=q["classifier"], top_level_only=q["topLevelOnly"])
    return args


class WorkflowSearchHandler(BaseHandler):
    tag = "workflow"

    @api("Search workflows", query=_WORKFLOW_SEARCH_QUERY, returns=[ok_json("SearchResult<WorkflowSummary>")])
    async def get(self) -> None:
        total, found = await self.executor.search_workflows(**_search_args(self.q, workflows=True))
        self.reply_json(shapes.search_result(total, [shapes.workflow_summary(wf) for wf in found]))


class WorkflowSearchV2Handler(BaseHandler):
    tag = "workflow"

    @api(
        "Search workflows; full workflows (without tasks)",
        query=_WORKFLOW_SEARCH_QUERY,
        returns=[ok_json("SearchResult<Workflow>")],
    )
    async def get(self) -> None:
        total, found = await self.executor.search_workflows(**_search_args(self.q, workflows=True), method="searchWorkflowsV2")
        self.reply_json(shapes.search_result(total, _workflows(self.executor, found, False)))


class WorkflowSearchByTasksHandler(BaseHandler):
    tag = "workflow"

    @api(
        "Search tasks; the workflows of the page's tasks, each once",
        query=_SEARCH_QUERY,
        returns=[ok_json("SearchResult<WorkflowSummary>")],
    )
    async def get(self) -> None:
        total, found = await self.executor.search_workflows_by_tasks(**_search_args(self.q))
        self.reply_json(shapes.search_result(total, [shapes.workflow_summary(wf) for wf in found]))


class WorkflowSearchByTasksV2Handler(BaseHandler):
    tag = "workflow"

    @api(
        "Search tasks; the full workflows (without tasks) of the page's tasks, each once",
        query=_SEARCH_QUERY,
        returns=[ok_json("SearchResult<Workflow>")],
    )
    async def get(self) -> None:
        total, found = await self.executor.search_workflows_by_tasks(**_search_args(self.q))
        self.reply_json(shapes.search_result(total, _workflows(self.executor, found, False)))


class TaskSearchHandler(BaseHandler):
    tag = "tasks"

    @api("Search tasks", query=_SEARCH_QUERY, returns=[ok_json("SearchResult<TaskSummary>")])
    async def get(self) -> None:
        total, found = await self.executor.search_tasks(**_search_args(self.q))
        self.reply_json(shapes.search_result(total, [shapes.task_summary(t) for t in found]))


class TaskSearchV2Handler(BaseHandler):
    tag = "tasks"

    @api("Search tasks; full tasks", query=_SEARCH_QUERY, returns=[ok_json("SearchResult<Task>")])
    async def get(self) -> None:
        total, found = await self.executor.search_tasks(**_search_args(self.q), with_nodes=True)
        self.reply_json(shapes.search_result(total, shapes.tasks(found)))


MAX_WATCH_TIMEOUT_MS = 30_000


class WorkflowWatchHandler(BaseHandler):
    """conductor_lab's own long poll for live views (not in conductor-oss): answer when it changes."""

    tag = "lab"

    @api(
        "Wait until a workflow differs from `version` (a token an earlier answer gave), then answer it",
        query=[
            Param("version", doc="the version last seen; absent: answer at once"),
            Param("timeoutMs", "int", 0, doc="how long to wait for a change, at most 30000"),
            Param("includeTasks", "bool", True),
        ],
        returns=[ok_json("WorkflowWatch", "{version, changed, workflow (null when unchanged)}")],
    )
    async def get(self, workflow_id: str) -> None:
        timeout_ms = self.q["timeoutMs"]
        if not 0 <= timeout_ms <= MAX_WATCH_TIMEOUT_MS:
            raise InvalidInput(f"timeoutMs must be between 0 and {MAX_WATCH_TIMEOUT_MS}")
        try:
            version, wf = await self.executor.watch_workflow(workflow_id, self.q["version"], timeout_ms / 1000)
        except asyncio.CancelledError:  # the server is shutting down: "nothing changed" ends the wait
            self.reply_json({"version": self.q["version"] or "", "changed": False, "workflow": None})
            return
        body = None
        if wf is not None:
            body = shapes.workflow(wf, self.executor.definition_json(wf), include_tasks=self.q["includeTasks"])
        self.reply_json({"version": version, "changed": wf is not None, "workflow": body})


class LabSqlHandler(BaseHandler):
    """conductor_lab's own: one read-only SQL SELECT over the history views (docs/sql.md)."""

    tag = "lab"

    @api(
        "Run one read-only SQL SELECT over the history views; Arrow IPC stream when Accept asks for it",
        body=Body("object", "SqlRequest", '{"query", "params"?, "maxRows"?, "timeoutSeconds"?}'),
        returns=[ok_json("SqlResult", "{columns, rows, truncated, elapsedMs}, or an Arrow IPC stream")],
        doc="maxRows at most 100000, timeoutSeconds at most 30; the views and rules: docs/sql.md",
    )
    async def post(self) -> None:
        arrow = ARROW_STREAM in self.request.headers.get("Accept", "")
        payload = await self.executor.sql_answer(SqlRequest.from_json(self.body()), arrow=arrow)
        self.set_header("Content-Type", ARROW_STREAM if arrow else JSON_TYPE)
        self.finish(payload)
