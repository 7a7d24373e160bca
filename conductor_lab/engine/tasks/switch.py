"""SWITCH and the legacy DECISION: choose one branch and schedule its first task (contract 4.5-4.6).

The case is evaluated while scheduling (the mapper half, as conductor-oss): the SWITCH task is
created with ``case`` in its input and ``evaluationResult`` / ``selectedCase`` in its output,
together with the first task of the chosen branch, and completes in the same pass. When a branch
was scheduled (``hasChildren``), the flow continues after the branch's last task, not after the
SWITCH itself.
"""

from __future__ import annotations

from typing import Any

from conductor_lab.engine import scripting
from conductor_lab.engine.model import Task, TaskStatus, WorkflowTask
from conductor_lab.engine.params import to_java_string
from conductor_lab.engine.tasks.base import Outcome, ScheduleContext, TaskType, TerminateWorkflow

EVALUATORS = ("value-param", "javascript", "graaljs")


def syntax_error(script: str) -> str | None:
    """The JavaScript engine's message when ``script`` does not parse, else None; the script is
    parsed, never run (conductor-oss ``ScriptEvaluator.validateScriptSyntax``: registration must
    not evaluate, the inputs still hold unresolved ``${...}`` placeholders)."""
    try:
        scripting.evaluate("new Function($.src), null", {"src": script}, timeout_ms=1000)
    except scripting.ScriptError as exc:  # a timeout or an engine problem is no validation failure
        message = str(exc)
        if message.startswith("SyntaxError") and not isinstance(exc, scripting.ScriptTimeout):
            return message
    return None


def script_errors(script: str | None, task_type: str, name: str) -> list[str]:
    """``WorkflowTaskTypeConstraint.validateScriptExpression``'s message for a malformed script."""
    if not script:
        return []
    problem = syntax_error(script)
    if problem is None:
        return []
    return [f"Expression is not well formatted: {problem}, taskType: {task_type} taskName {name}"]


class Switch(TaskType):
    TYPE = "SWITCH"
    built_in = True

    def validate(self, node: WorkflowTask) -> list[str]:
        errs: list[str] = []
        if not node.evaluatorType:
            errs.append(f"evaluatorType field is required for taskType: SWITCH taskName: {node.name}")
        elif node.evaluatorType not in EVALUATORS:
            errs.append(
                f"evaluatorType '{node.evaluatorType}' of taskType: SWITCH taskName: {node.name} is not supported; "
                f"use one of {', '.join(EVALUATORS)}"
            )
        elif not node.expression:
            errs.append(f"expression field is required for taskType: SWITCH taskName: {node.name}")
        if not node.decisionCases:
            errs.append(f"decisionCases should have atleast one task for taskType: SWITCH taskName: {node.name}")
        if node.evaluatorType == "javascript":  # as conductor-oss: not for graaljs
            errs.extend(script_errors(node.expression, self.TYPE, node.name))
        return errs

    def case_of(self, node: WorkflowTask, task_input: dict[str, Any]) -> str:
        """The selected case (Java ``"" + value``); raises on evaluation errors."""
        expression = node.expression or ""
        if node.evaluatorType == "value-param":
            return to_java_string(task_input.get(expression))
        if node.evaluatorType in ("javascript", "graaljs"):
            return to_java_string(scripting.evaluate(expression, task_input))
        raise TerminateWorkflow(f"No evaluator registered for type: {node.evaluatorType}")

    def branch(self, node: WorkflowTask, case: str) -> list[WorkflowTask]:
        # only an absent key falls back to defaultCase: an explicitly empty case runs nothing
        selected = node.decisionCases.get(case)
        return node.defaultCase if selected is None else selected

    def schedule(self, node: WorkflowTask, ctx: ScheduleContext, iteration: int) -> list[Task]:
        task = ctx.new_task(node, self.TYPE, TaskStatus.IN_PROGRESS, iteration)
        task.taskDefName = self.TYPE
        task_input = dict(ctx.input_for(node, task.taskId))
        try:
            case = self.case_of(node, task_input)
        except TerminateWorkflow:
            raise
        except Exception as exc:  # evaluation errors fail the SWITCH task (never retried)
            task.inputData = task_input
            task.status = TaskStatus.FAILED
            task.endTime = ctx.now
            task.reasonForIncompletion = str(exc)[:500]
            return [task]
        task_input["case"] = case
        task.outputData = self.output(case)
        tasks = [task]
        branch = self.branch(node, case)
        if branch:
            tasks.extend(ctx.schedule(branch[0], iteration))
            task_input["hasChildren"] = "true"
        task.inputData = task_input
        return tasks

    def output(self, case: str) -> dict[str, Any]:
        return {"evaluationResult": [case], "selectedCase": case}

    def execute(self, task: Task, ctx: ScheduleContext) -> Outcome | None:
        return Outcome(TaskStatus.COMPLETED)

    def proceeds(self, task: Task) -> bool:
        return task.inputData.get("hasChildren") is None


class Decision(Switch):
    """DECISION (deprecated): ``caseExpression`` in JavaScript, else the ``caseValueParam`` input."""

    TYPE = "DECISION"

    def validate(self, node: WorkflowTask) -> list[str]:
        errs: list[str] = []
        if not node.caseValueParam and not node.caseExpression:
            errs.append(
                f"caseValueParam or caseExpression field is required for taskType: DECISION taskName: {node.name}"
            )
        if not node.decisionCases:
            errs.append(f"decisionCases should have atleast one task for taskType: DECISION taskName: {node.name}")
        errs.extend(script_errors(node.caseExpression, self.TYPE, node.name))
        return errs

    def case_of(self, node: WorkflowTask, task_input: dict[str, Any]) -> str:
        if node.caseExpression and node.caseExpression.strip():
            try:
                return to_java_string(scripting.evaluate(node.caseExpression, task_input))
            except scripting.ScriptError as exc:  # conductor-oss fails the workflow here
                raise TerminateWorkflow(f"Error while evaluating script: {node.caseExpression}: {exc}") from exc
        return to_java_string(task_input.get(node.caseValueParam or ""))

    def branch(self, node: WorkflowTask, case: str) -> list[WorkflowTask]:
        return node.decisionCases.get(case) or node.defaultCase  # missing or empty -> default

    def output(self, case: str) -> dict[str, Any]:
        return {"caseOutput": [case]}


SWITCH = Switch()
DECISION = Decision()
