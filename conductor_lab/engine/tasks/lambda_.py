"""LAMBDA (deprecated): ``scriptExpression`` is the body of a JavaScript function (contract 4.19).

Like INLINE it runs on the engine loop for a short slice, then on a worker thread. Errors fail
the task retriably (FAILED), as conductor-oss.
"""

from __future__ import annotations

from typing import Any

from conductor_lab.engine import scripting
from conductor_lab.engine.model import Task, TaskStatus, WorkflowTask
from conductor_lab.engine.tasks.inline import ScriptTask


class Lambda(ScriptTask):
    TYPE = "LAMBDA"
    error_status = TaskStatus.FAILED

    def validate(self, node: WorkflowTask) -> list[str]:
        script = node.inputParameters.get("scriptExpression") or getattr(node, "scriptExpression", None)
        if not isinstance(script, str) or not script.strip():
            return [f"inputParameters.scriptExpression field is required for taskType: LAMBDA taskName: {node.name}"]
        return []

    def script(self, task: Task, timeout_ms: int | None) -> Any:
        script = task.inputData.get("scriptExpression") or getattr(task.node, "scriptExpression", None)
        if not isinstance(script, str) or not script.strip():
            raise scripting.ScriptError("Empty 'scriptExpression' in Lambda task's input parameters")
        return scripting.evaluate_function_body(script, task.inputData, timeout_ms=timeout_ms)


TASK = Lambda()
