"""SUB_WORKFLOW: run another workflow as one task of this one (contract 4.12).

Scheduling resolves the child's definition (registered by name/version, or inline in
``subWorkflowParam.workflowDefinition``) and records it in the task input; the first execution
picks the child's id and asks the executor to start it (an effect, so the decider stays pure).
The child reports back when it ends: the task mirrors its status and takes its output.
"""

from __future__ import annotations

from typing import Any

from conductor_lab.engine.model import Task, TaskStatus, Workflow, WorkflowStatus, WorkflowTask
from conductor_lab.engine.tasks.base import (
    Outcome,
    ScheduleContext,
    Services,
    StartWorkflow,
    TaskType,
    TerminateWorkflow,
)

#: child workflow status -> parent task status
CHILD_TO_TASK = {
    WorkflowStatus.RUNNING: TaskStatus.IN_PROGRESS,
    WorkflowStatus.PAUSED: TaskStatus.IN_PROGRESS,
    WorkflowStatus.COMPLETED: TaskStatus.COMPLETED,
    WorkflowStatus.FAILED: TaskStatus.FAILED,
    WorkflowStatus.TERMINATED: TaskStatus.CANCELED,
    WorkflowStatus.TIMED_OUT: TaskStatus.TIMED_OUT,
}


class SubWorkflow(TaskType):
    TYPE = "SUB_WORKFLOW"

    def validate(self, node: WorkflowTask) -> list[str]:
        p = node.subWorkflowParam
        if not p:
            return [f"subWorkflowParam field is required for taskType: SUB_WORKFLOW taskName: {node.name}"]
        if not p.get("name") and not p.get("workflowDefinition"):
            return [f"subWorkflowParam.name field is required for taskType: SUB_WORKFLOW taskName: {node.name}"]
        version = p.get("version")
        if version is not None and not isinstance(version, int) and not (isinstance(version, str) and "${" in version):
            try:
                int(str(version))
            except ValueError:
                return [f"subWorkflowParam.version must be an integer for taskType: SUB_WORKFLOW taskName: {node.name}"]
        return []

    def schedule(self, node: WorkflowTask, ctx: ScheduleContext, iteration: int) -> list[Task]:
        task = ctx.new_task(node, self.TYPE, TaskStatus.SCHEDULED, iteration)
        raw: dict[str, Any] = node.subWorkflowParam or {}
        inline = raw.get("workflowDefinition")
        if isinstance(inline, str):  # a ${...} expression naming a definition: resolve it
            p: dict[str, Any] = ctx.evaluate(raw, task.taskId)
            inline = p.get("workflowDefinition")
            if isinstance(inline, str):  # it did not resolve to a definition
                inline = None
        else:  # an inline definition is taken as is: its own ${...} belong to the child
            p = ctx.evaluate({k: v for k, v in raw.items() if k != "workflowDefinition"}, task.taskId)
        name = p.get("name") or (inline.get("name") if isinstance(inline, dict) else None)
        version = p.get("version")
        if version is not None:
            try:
                version = int(version)
            except (TypeError, ValueError):
                version = None
        if not isinstance(inline, dict) and version is None:
            wd = ctx.workflow_def(str(name), None)
            if wd is None:
                raise TerminateWorkflow(  # conductor-oss names the sub-workflow, not the task
                    f"The Task {name} defined as a sub-workflow has no workflow definition available "
                )
            version = wd.version
        elif isinstance(inline, dict) and version is None:
            version = inline.get("version") or 1
        task.inputData = {
            "subWorkflowName": name,
            "subWorkflowVersion": version,
            "subWorkflowTaskToDomain": p.get("taskToDomain"),
            "subWorkflowDefinition": inline,
            "priority": p.get("priority"),
            "workflowInput": ctx.input_for(node, task.taskId),
        }
        return [task]

    def execute(self, task: Task, ctx: ScheduleContext) -> Outcome | None:
        if task.status != TaskStatus.SCHEDULED or task.subWorkflowId:
            return None
        inp = task.inputData
        child_input = inp.get("workflowInput") or {k: v for k, v in inp.items()}
        inline = inp.get("subWorkflowDefinition")
        if isinstance(inline, dict):
            child_input = {**child_input, "_systemMetadata": {"dynamic": True}}
        wf = ctx.wf
        request: dict[str, Any] = {
            "name": inp.get("subWorkflowName"),
            "version": inp.get("subWorkflowVersion"),
            "input": child_input,
            "correlationId": wf.correlationId,
            "taskToDomain": inp.get("subWorkflowTaskToDomain") or wf.taskToDomain or {},
            "priority": inp.get("priority") if isinstance(inp.get("priority"), int) else wf.priority,
        }
        if isinstance(inline, dict):
            request["workflowDef"] = inline
        child_id = ctx.new_id()
        return Outcome(
            TaskStatus.IN_PROGRESS,
            output={"subWorkflowId": child_id},
            sub_workflow_id=child_id,
            effects=[StartWorkflow(child_id, request, task)],
        )

    def cancel(self, task: Task, workflow: Workflow, services: Services) -> None:
        if task.subWorkflowId:
            reason = (
                f"Parent workflow has been terminated with reason: {workflow.reasonForIncompletion}"
                if workflow.reasonForIncompletion
                else f"Parent workflow has been terminated with status {workflow.status.value}"
            )
            services.terminate_child(task.subWorkflowId, reason)


def child_result(task: Task, status: WorkflowStatus, output: dict[str, Any], reason: str | None,
                 name: str, version: int, child_id: str) -> Outcome:
    """The parent task's outcome when its child ends (conductor-oss ``SubWorkflow.execute``)."""
    task_status = CHILD_TO_TASK[status]
    out = {**output, "subWorkflowId": child_id}
    why = None
    if not task_status.successful:
        why = f"Sub workflow {name}.{version}/{child_id} failure reason: {reason}"
    return Outcome(task_status, output=out, reason=why)


TASK = SubWorkflow()
