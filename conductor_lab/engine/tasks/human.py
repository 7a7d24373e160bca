"""HUMAN: IN_PROGRESS until completed or failed through the task-update APIs (contract 4.15)."""

from __future__ import annotations

from conductor_lab.engine.model import Task, TaskStatus, WorkflowTask
from conductor_lab.engine.tasks.base import ScheduleContext, TaskType


class Human(TaskType):
    TYPE = "HUMAN"

    def schedule(self, node: WorkflowTask, ctx: ScheduleContext, iteration: int) -> list[Task]:
        task = ctx.new_task(node, self.TYPE, TaskStatus.IN_PROGRESS, iteration)
        task.inputData = ctx.input_for(node, task.taskId)
        return [task]


TASK = Human()
