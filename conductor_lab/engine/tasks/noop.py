"""NOOP: completes in the same decider pass, with no output (contract 4.24)."""

from __future__ import annotations

from conductor_lab.engine.model import Task, TaskStatus, WorkflowTask
from conductor_lab.engine.tasks.base import Outcome, ScheduleContext, TaskType


class Noop(TaskType):
    TYPE = "NOOP"

    def schedule(self, node: WorkflowTask, ctx: ScheduleContext, iteration: int) -> list[Task]:
        task = ctx.new_task(node, self.TYPE, TaskStatus.IN_PROGRESS, iteration)
        task.inputData = ctx.input_for(node, task.taskId)
        return [task]

    def execute(self, task: Task, ctx: ScheduleContext) -> Outcome | None:
        return Outcome(TaskStatus.COMPLETED)


TASK = Noop()
