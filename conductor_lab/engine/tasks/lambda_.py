"""LAMBDA (deprecated): ``scriptExpression`` is the body of a JavaScript function (contract 4.19).

Like INLINE it runs on the engine loop for a short slice, then on a worker thread. Errors fail
the task retriably (FAILED), as conductor-oss.
"""

from __future__ import annotations

from conductor_lab.engine import scripting
from conductor_lab.engine.model import Task, TaskStatus, WorkflowTask
from conductor_lab.engine.tasks.base import Outcome, ScheduleContext, Services, TaskType
from conductor_lab.engine.tasks.inline import LOOP_SLICE_MS


class Lambda(TaskType):
    TYPE = "LAMBDA"

    def validate(self, node: WorkflowTask) -> list[str]:
        script = node.inputParameters.get("scriptExpression") or getattr(node, "scriptExpression", None)
        if not isinstance(script, str) or not script.strip():
            return [f"inputParameters.scriptExpression field is required for taskType: LAMBDA taskName: {node.name}"]
        return []

    def schedule(self, node: WorkflowTask, ctx: ScheduleContext, iteration: int) -> list[Task]:
        task = ctx.new_task(node, self.TYPE, TaskStatus.IN_PROGRESS, iteration)
        task.inputData = ctx.input_for(node, task.taskId)
        return [task]

    def execute(self, task: Task, ctx: ScheduleContext) -> Outcome | None:
        return self.evaluate(task, LOOP_SLICE_MS)

    async def run(self, task: Task, services: Services) -> Outcome:
        outcome: Outcome = await services.in_thread(self.evaluate, task, None)
        return outcome

    def evaluate(self, task: Task, slice_ms: int | None) -> Outcome:
        script = task.inputData.get("scriptExpression") or getattr(task.node, "scriptExpression", None)
        if not isinstance(script, str) or not script.strip():
            return _failed("Empty 'scriptExpression' in Lambda task's input parameters")
        try:
            result = scripting.evaluate_function_body(script, task.inputData, timeout_ms=slice_ms)
        except scripting.ScriptTimeout as exc:
            if slice_ms is not None:
                return Outcome(run_async=True)
            return _failed(str(exc))
        except scripting.ScriptError as exc:
            return _failed(str(exc))
        return Outcome(TaskStatus.COMPLETED, output={"result": result})


def _failed(message: str) -> Outcome:
    return Outcome(TaskStatus.FAILED, output={"error": message}, reason=message)


TASK = Lambda()
