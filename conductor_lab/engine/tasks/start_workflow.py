"""START_WORKFLOW: start another workflow and move on at once; the output carries its id (contract 4.13)."""

from __future__ import annotations

from typing import Any

from conductor_lab.engine.model import Task, TaskStatus
from conductor_lab.engine.params import to_java_string
from conductor_lab.engine.tasks.base import Outcome, ScheduleContext, StartWorkflow, TaskType


class StartWorkflowTask(TaskType):
    TYPE = "START_WORKFLOW"
    initial_status = TaskStatus.SCHEDULED

    def execute(self, task: Task, ctx: ScheduleContext) -> Outcome | None:
        if task.status != TaskStatus.SCHEDULED:
            return None
        req = task.inputData.get("startWorkflow")
        if not isinstance(req, dict):
            return Outcome(TaskStatus.FAILED, reason="Missing 'startWorkflow' in input data.")
        name = req.get("name")
        if not name and not isinstance(req.get("workflowDef"), dict):
            return Outcome(
                TaskStatus.FAILED,
                reason="startWorkflow validation failed. 'name' -> Workflow name cannot be null or empty. ",
            )
        version = req.get("version")
        if not isinstance(req.get("workflowDef"), dict):
            if ctx.workflow_def(str(name), version if isinstance(version, int) else None) is None:
                return Outcome(
                    TaskStatus.FAILED,
                    reason=f"No such workflow defined. name={name}, version={to_java_string(version)}",
                )
        wf = ctx.wf
        request: dict[str, Any] = dict(req)
        if not request.get("correlationId"):
            request["correlationId"] = wf.correlationId
        if not request.get("taskToDomain"):
            request["taskToDomain"] = wf.taskToDomain or {}
        new_id = ctx.new_id()
        return Outcome(
            TaskStatus.COMPLETED,
            output={"workflowId": new_id},
            effects=[StartWorkflow(new_id, request, None)],
        )


TASK = StartWorkflowTask()
