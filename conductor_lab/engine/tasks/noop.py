"""NOOP: completes in the same decider pass, with no output."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conductor_lab.engine.model import Task, TaskStatus, WorkflowTask

if TYPE_CHECKING:
    from conductor_lab.engine.decide import Outcome, ScheduleContext, WorkflowView

TYPE = "NOOP"
KIND = "sync"
BUILT_IN = False


def schedule(node: WorkflowTask, ctx: ScheduleContext) -> list[Task]:
    task = ctx.new_task(node, TYPE, TaskStatus.IN_PROGRESS)
    task.inputData = ctx.input_for(node, task.taskId)
    return [task]


def execute(task: Task, view: WorkflowView) -> Outcome:
    from conductor_lab.engine.decide import Outcome

    return Outcome(TaskStatus.COMPLETED)
