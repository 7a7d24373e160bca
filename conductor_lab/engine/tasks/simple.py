"""SIMPLE and USER_DEFINED (unknown type) tasks: queued for external workers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conductor_lab.engine.model import Task, TaskStatus, WorkflowTask

if TYPE_CHECKING:
    from conductor_lab.engine.decide import ScheduleContext

TYPE = "SIMPLE"
KIND = "worker"
BUILT_IN = False


def schedule(node: WorkflowTask, ctx: ScheduleContext) -> list[Task]:
    """One SCHEDULED task; workers poll ``name`` (SIMPLE) or the ``type`` string (USER_DEFINED)."""
    task_type = node.name if node.type == TYPE else node.type
    task = ctx.new_task(node, task_type, TaskStatus.SCHEDULED)
    td = ctx.task_def(node)
    task.inputData = ctx.input_for(node, task.taskId)
    task.responseTimeoutSeconds = td.responseTimeoutSeconds
    task.rateLimitPerFrequency = td.rateLimitPerFrequency
    task.rateLimitFrequencyInSeconds = td.rateLimitFrequencyInSeconds
    task.startDelayInSeconds = node.startDelay
    task.callbackAfterSeconds = node.startDelay
    return [task]
