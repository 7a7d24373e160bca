"""EXCLUSIVE_JOIN: after a SWITCH, take the output of whichever joined branch ran (contract 4.9)."""

from __future__ import annotations

from conductor_lab.engine.model import Task, TaskStatus, WorkflowTask
from conductor_lab.engine.tasks.base import Outcome, ScheduleContext, TaskType, iteration_ref


def _refs(task: Task, key: str) -> list[str]:
    refs = task.inputData.get(key) or []
    return [iteration_ref(str(r), task.iteration) for r in refs]


class ExclusiveJoin(TaskType):
    TYPE = "EXCLUSIVE_JOIN"
    built_in = True
    reevaluate = True

    def schedule(self, node: WorkflowTask, ctx: ScheduleContext, iteration: int) -> list[Task]:
        task = ctx.new_task(node, self.TYPE, TaskStatus.IN_PROGRESS, iteration)
        task.taskDefName = self.TYPE
        task.inputData = {
            **ctx.input_for(node, task.taskId),
            "joinOn": list(node.joinOn),
            "defaultExclusiveJoinTask": list(getattr(node, "defaultExclusiveJoinTask", None) or []),
        }
        return [task]

    def watches(self, task: Task, other: Task) -> bool:
        ref = other.referenceTaskName
        return ref in _refs(task, "joinOn") or ref in _refs(task, "defaultExclusiveJoinTask")

    def execute(self, task: Task, ctx: ScheduleContext) -> Outcome | None:
        join_on = _refs(task, "joinOn")
        found: Task | None = None
        done = False
        failed = False
        for ref in join_on:
            t = ctx.task(ref)
            if t is None or t.status == TaskStatus.SKIPPED:
                continue
            found, done = t, t.status.terminal
            failed = not t.status.successful and (
                not t.node.permissive or all((j := ctx.task(r)) is not None and j.status.terminal for r in join_on)
            )
            break
        if not done and not failed:
            defaults = _refs(task, "defaultExclusiveJoinTask")
            if defaults:
                for ref in defaults:
                    t = ctx.task(ref)
                    if t is None or t.status == TaskStatus.SKIPPED:
                        continue
                    found, done = t, t.status.terminal
                    failed = not t.status.successful
                    break
            else:
                done = True
        if failed and found is not None:
            return Outcome(TaskStatus.FAILED, reason=f"{found.reasonForIncompletion} ")
        if done:
            return Outcome(TaskStatus.COMPLETED, output=dict(found.outputData) if found is not None else {})
        return None


TASK = ExclusiveJoin()
