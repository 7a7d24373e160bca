"""TERMINATE: end the workflow with a status, a reason and an output (contract 4.16)."""

from __future__ import annotations

from typing import Any

from conductor_lab.engine.model import Task, TaskStatus, WorkflowStatus, WorkflowTask
from conductor_lab.engine.tasks.base import Outcome, ScheduleContext, TaskType, WorkflowEnd

STATUSES = ("COMPLETED", "FAILED", "TERMINATED")


class Terminate(TaskType):
    TYPE = "TERMINATE"

    def validate(self, node: WorkflowTask) -> list[str]:
        errs: list[str] = []
        status = node.inputParameters.get("terminationStatus")
        if status not in STATUSES and not (isinstance(status, str) and "${" in status):
            errs.append(
                "terminationStatus field is required for taskType: TERMINATE, and must be COMPLETED or FAILED "
                f"taskName: {node.name}"
            )
        if node.optional:
            errs.append(f"terminate task cannot be optional, taskName: {node.name}")
        return errs

    def execute(self, task: Task, ctx: ScheduleContext) -> Outcome | None:
        if task.inputData.get("terminationStatus") not in STATUSES:
            return Outcome(TaskStatus.FAILED, reason="given termination status is not valid")
        out: Any = task.inputData.get("workflowOutput")
        if isinstance(out, dict):
            output = dict(out)
        elif out is None:
            output = {}
        else:
            output = {"output": out}
        return Outcome(TaskStatus.COMPLETED, output=output)

    def proceeds(self, task: Task) -> bool:
        return False

    def finishes(self, task: Task) -> WorkflowEnd | None:
        status = WorkflowStatus.of(str(task.inputData.get("terminationStatus")))
        reason = task.inputData.get("terminationReason") or (
            f"Workflow is {status.value} by TERMINATE task: {task.taskId}"
        )
        return WorkflowEnd(status, str(reason), dict(task.outputData) or None)


TASK = Terminate()
