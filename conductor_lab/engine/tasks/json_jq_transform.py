"""JSON_JQ_TRANSFORM: run a jq program (real jq) over the task input (contract 4.20).

The program sees the whole input object (``.key1`` is ``inputParameters.key1``); ``result`` is
the first value it emits and ``resultList`` all of them. Compile and run errors fail the task
with jq's message in ``output.error``.
"""

from __future__ import annotations

from conductor_lab.engine import scripting
from conductor_lab.engine.model import Task, TaskStatus, WorkflowTask
from conductor_lab.engine.tasks.base import Outcome, ScheduleContext, TaskType


class JsonJqTransform(TaskType):
    TYPE = "JSON_JQ_TRANSFORM"

    def validate(self, node: WorkflowTask) -> list[str]:
        td = node.taskDefinition
        query = node.inputParameters.get("queryExpression")
        if query is None and td is not None:
            query = td.inputTemplate.get("queryExpression")
        if query is None:
            return [f"queryExpression field is required for taskType: JSON_JQ_TRANSFORM taskName: {node.name}"]
        return []

    def execute(self, task: Task, ctx: ScheduleContext) -> Outcome | None:
        query = task.inputData.get("queryExpression")
        if not isinstance(query, str) or not query.strip():
            message = "Missing 'queryExpression' in input parameters"
            return Outcome(TaskStatus.FAILED, output={"error": message}, reason=message)
        try:
            values = scripting.jq_transform(query, task.inputData)
        except scripting.ScriptError as exc:
            message = str(exc)
            return Outcome(TaskStatus.FAILED, output={"error": message}, reason=message)
        return Outcome(
            TaskStatus.COMPLETED,
            output={"result": values[0] if values else None, "resultList": values},
        )


TASK = JsonJqTransform()
