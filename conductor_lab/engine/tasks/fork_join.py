"""FORK_JOIN: start every branch at once; the JOIN that follows waits for them (contract 4.7).

The runtime task has type ``FORK`` and is COMPLETED when created, together with the first task
of each branch and the JOIN (which must be the next node). Branches end with their last task
(``after_branch = "stop"``): only the JOIN moves the flow on.
"""

from __future__ import annotations

from conductor_lab.engine.model import Task, TaskStatus, WorkflowTask
from conductor_lab.engine.tasks.base import ScheduleContext, TaskType, TerminateWorkflow, sibling_after

FORK = "FORK"


def join_after(node: WorkflowTask, ctx: ScheduleContext, message: str) -> WorkflowTask:
    join = sibling_after(ctx.wf.definition, node)
    if join is None or join.type != "JOIN":
        raise TerminateWorkflow(message)
    return join


class ForkJoin(TaskType):
    TYPE = "FORK_JOIN"
    built_in = True
    after_branch = "stop"

    def validate(self, node: WorkflowTask) -> list[str]:
        if not node.forkTasks or not any(node.forkTasks):
            return [f"forkTasks should have atleast one task for taskType: FORK_JOIN taskName: {node.name}"]
        return []

    def schedule(self, node: WorkflowTask, ctx: ScheduleContext, iteration: int) -> list[Task]:
        join = join_after(node, ctx, "Fork task definition is not followed by a join task.  Check the blueprint")
        fork = ctx.new_task(node, FORK, TaskStatus.COMPLETED, iteration)
        fork.taskDefName = FORK
        fork.inputData = ctx.input_for(node, fork.taskId)
        tasks = [fork]
        for branch in node.forkTasks:
            if branch:
                tasks.extend(ctx.schedule(branch[0], iteration))
        tasks.extend(ctx.schedule(join, iteration))
        return tasks

    def proceeds(self, task: Task) -> bool:
        return False  # the JOIN was scheduled with the fork


TASK = ForkJoin()
