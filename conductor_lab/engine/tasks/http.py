"""HTTP: call an HTTP endpoint without blocking the engine loop (contract 4.21).

The request is made by ``run()`` on the shared ``HttpCaller`` (``engine/httpcall.py``: pooled
async client, a concurrency cap, per-request timeouts, cancellation when the workflow ends).
A 2xx answer completes the task (or leaves it IN_PROGRESS with ``asyncComplete``); anything else
fails it, retried per its TaskDef.
"""

from __future__ import annotations

from conductor_lab.engine import httpcall
from conductor_lab.engine.model import Task, TaskStatus, WorkflowTask
from conductor_lab.engine.tasks.base import Outcome, ScheduleContext, Services, TaskType


class Http(TaskType):
    TYPE = "HTTP"
    kind = "async"
    initial_status = TaskStatus.SCHEDULED

    def validate(self, node: WorkflowTask) -> list[str]:
        td = node.taskDefinition
        template = {**(td.inputTemplate if td is not None else {}), **node.inputParameters}
        problem = httpcall.validate_node_input(template)
        if problem is not None:
            return [f"inputParameters.{problem} (taskType: HTTP taskName: {node.name})"]
        return []

    def execute(self, task: Task, ctx: ScheduleContext) -> Outcome | None:
        # (re)start the call: when scheduled, and after a restart found it unfinished
        return Outcome(TaskStatus.IN_PROGRESS, run_async=True)

    async def run(self, task: Task, services: Services) -> Outcome:
        result = await services.http.call(task.inputData)
        status = TaskStatus.of(result.status)
        if status == TaskStatus.COMPLETED and task.node.asyncComplete:
            status = TaskStatus.IN_PROGRESS
        return Outcome(status, output=result.output, reason=result.reason)


TASK = Http()
