"""NOOP: completes in the same decider pass, with no output (contract 4.24)."""

from __future__ import annotations

from conductor_lab.engine.model import Task, TaskStatus
from conductor_lab.engine.tasks.base import Outcome, ScheduleContext, TaskType


class Noop(TaskType):
    TYPE = "NOOP"

    def execute(self, task: Task, ctx: ScheduleContext) -> Outcome | None:
        return Outcome(TaskStatus.COMPLETED)


TASK = Noop()
