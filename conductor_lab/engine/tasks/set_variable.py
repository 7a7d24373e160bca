"""SET_VARIABLE: writes each input key into ``workflow.variables`` (shallow put, no deletion)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from conductor_lab.engine.model import Task, TaskStatus, WorkflowTask

if TYPE_CHECKING:
    from conductor_lab.engine.decide import Outcome, ScheduleContext, WorkflowView

TYPE = "SET_VARIABLE"
KIND = "sync"
BUILT_IN = False

#: conductor-oss ``maxWorkflowVariablesPayloadSizeThreshold`` (256 KB).
MAX_VARIABLES_BYTES = 256 * 1024


def schedule(node: WorkflowTask, ctx: ScheduleContext) -> list[Task]:
    task = ctx.new_task(node, TYPE, TaskStatus.IN_PROGRESS)
    task.inputData = ctx.input_for(node, task.taskId)
    return [task]


def execute(task: Task, view: WorkflowView) -> Outcome:
    from conductor_lab.engine.decide import Outcome

    merged = {**view.variables, **task.inputData}
    size = len(orjson.dumps(merged, default=str))
    if size > MAX_VARIABLES_BYTES:
        return Outcome(
            TaskStatus.FAILED_WITH_TERMINAL_ERROR,
            reason=(
                f"The variables payload size: {size} of workflow: {task.workflowInstanceId} "
                f"is greater than the permissible limit: {MAX_VARIABLES_BYTES} bytes"
            ),
        )
    return Outcome(TaskStatus.COMPLETED, variables=dict(task.inputData))
