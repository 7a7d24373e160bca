"""SIMPLE and USER_DEFINED (unknown ``type``) tasks: queued for external workers (contract 4.2-4.3)."""

from __future__ import annotations

from conductor_lab.engine.model import Task, TaskStatus, WorkflowTask
from conductor_lab.engine.tasks.base import ScheduleContext, TaskType


def worker_task(node: WorkflowTask, ctx: ScheduleContext, task_type: str, iteration: int) -> Task:
    """A SCHEDULED task for workers polling ``task_type``, with its TaskDef's worker settings."""
    task = ctx.new_task(node, task_type, TaskStatus.SCHEDULED, iteration)
    td = ctx.task_def(node)
    task.inputData = ctx.input_for(node, task.taskId)
    task.responseTimeoutSeconds = td.responseTimeoutSeconds
    task.rateLimitPerFrequency = td.rateLimitPerFrequency
    task.rateLimitFrequencyInSeconds = td.rateLimitFrequencyInSeconds
    task.startDelayInSeconds = node.startDelay
    task.callbackAfterSeconds = node.startDelay
    return task


class Simple(TaskType):
    TYPE = "SIMPLE"
    kind = "worker"

    def schedule(self, node: WorkflowTask, ctx: ScheduleContext, iteration: int) -> list[Task]:
        """One SCHEDULED task; workers poll ``name`` (SIMPLE) or the ``type`` string (USER_DEFINED)."""
        task_type = node.name if node.type == self.TYPE else node.type
        return [worker_task(node, ctx, task_type, iteration)]


TASK = Simple()
