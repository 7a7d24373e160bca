"""SET_VARIABLE: writes each input key into ``workflow.variables`` (shallow put, no deletion; contract 4.17)."""

from __future__ import annotations

import orjson

from conductor_lab.engine.model import Task, TaskStatus
from conductor_lab.engine.tasks.base import Outcome, ScheduleContext, TaskType

#: conductor-oss ``maxWorkflowVariablesPayloadSizeThreshold`` (256 KB).
MAX_VARIABLES_BYTES = 256 * 1024


class SetVariable(TaskType):
    TYPE = "SET_VARIABLE"

    def execute(self, task: Task, ctx: ScheduleContext) -> Outcome | None:
        merged = {**ctx.variables_now(), **task.inputData}
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


TASK = SetVariable()
