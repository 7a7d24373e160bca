"""INLINE: evaluate a JavaScript expression over the task input in an embedded QuickJS (contract 4.18).

The script first runs on the engine loop with a short time slice (most scripts take well under
a millisecond, so chains of system tasks still complete inside one request); a script that
needs longer is run again on a worker thread with the full time limit while the loop goes on
serving (scripts are pure functions of their input, so the re-run is safe).
"""

from __future__ import annotations

from typing import Any, ClassVar

from conductor_lab.engine import scripting
from conductor_lab.engine.model import Task, TaskStatus, WorkflowTask
from conductor_lab.engine.tasks.base import Outcome, ScheduleContext, Services, TaskType

#: time a script may hold the engine loop before it moves to a worker thread
LOOP_SLICE_MS = 50
EVALUATORS = ("javascript", "graaljs", "value-param")


class ScriptTask(TaskType):
    """A task whose outcome is a script's result: a slice on the loop, then a worker thread."""

    #: the status a script error gives (INLINE: not retried; LAMBDA: retried)
    error_status: ClassVar[TaskStatus] = TaskStatus.FAILED_WITH_TERMINAL_ERROR

    def execute(self, task: Task, ctx: ScheduleContext) -> Outcome | None:
        return self.evaluate(task, LOOP_SLICE_MS)

    async def run(self, task: Task, services: Services) -> Outcome:
        outcome: Outcome = await services.in_thread(self.evaluate, task, None)
        return outcome

    def evaluate(self, task: Task, slice_ms: int | None) -> Outcome:
        """The outcome of the script; with ``slice_ms``, a run that needs longer asks for ``run()``."""
        try:
            result = self.script(task, slice_ms)
        except scripting.ScriptTimeout as exc:
            if slice_ms is not None:
                return Outcome(run_async=True)
            return self.error(str(exc))
        except scripting.ScriptError as exc:
            return self.error(str(exc))
        return Outcome(TaskStatus.COMPLETED, output={"result": result})

    def script(self, task: Task, timeout_ms: int | None) -> Any:
        """Run the task's script (raises ``ScriptError``)."""
        raise NotImplementedError

    def error(self, message: str) -> Outcome:
        return Outcome(self.error_status, output={"error": message}, reason=message)


class Inline(ScriptTask):
    TYPE = "INLINE"

    def validate(self, node: WorkflowTask) -> list[str]:
        ip = node.inputParameters
        td = node.taskDefinition
        template = {**(td.inputTemplate if td is not None else {}), **ip}
        errs: list[str] = []
        expression = template.get("expression")
        if not isinstance(expression, str) or not expression.strip():
            errs.append(f"inputParameters.expression field is required for taskType: INLINE taskName: {node.name}")
        evaluator = template.get("evaluatorType", "javascript")
        if isinstance(evaluator, str) and "${" not in evaluator and evaluator not in EVALUATORS:
            errs.append(
                f"inputParameters.evaluatorType '{evaluator}' of taskType: INLINE taskName: {node.name} is not "
                f"supported; use one of {', '.join(EVALUATORS)}"
            )
        return errs

    def script(self, task: Task, timeout_ms: int | None) -> Any:
        inp = task.inputData
        evaluator = inp.get("evaluatorType", "javascript")
        expression = inp.get("expression")
        if not isinstance(evaluator, str) or not evaluator.strip():
            raise scripting.ScriptError(
                "Empty 'evaluatorType' in INLINE task's input parameters. A non-empty String value must be provided."
            )
        if evaluator not in EVALUATORS:
            raise scripting.ScriptError(f"Unknown evaluator '{evaluator}' in INLINE task.")
        if not isinstance(expression, str) or not expression.strip():
            raise scripting.ScriptError(
                "Empty 'expression' in Inline task's input parameters. A non-empty String value must be provided."
            )
        if evaluator == "value-param":
            return inp.get(expression)
        return scripting.evaluate(expression, inp, timeout_ms=timeout_ms)


TASK = Inline()
