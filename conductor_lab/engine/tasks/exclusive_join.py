"""EXCLUSIVE_JOIN: after a SWITCH, take the output of whichever joined branch ran (contract 4.9)."""

from __future__ import annotations

from conductor_lab.engine.model import Task, TaskStatus, WorkflowTask
from conductor_lab.engine.params import to_java_string
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
        reason = ""
        for ref in join_on:
            t = ctx.task(ref)
            if t is None or t.status == TaskStatus.SKIPPED:
                continue
            found, done = t, t.status.terminal
            joined = [j for r in join_on if (j := ctx.task(r)) is not None]
            failed = not t.status.successful and (
                not t.node.permissive or (len(joined) == len(join_on) and all(j.status.terminal for j in joined))
            )
            if failed:  # upstream: the reasons of every unsuccessful joined task
                reason = " ".join(to_java_string(j.reasonForIncompletion) for j in joined if not j.status.successful)
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
                    if failed:
                        reason = f"{to_java_string(t.reasonForIncompletion)} "
                    break
            elif found is None:
                # no joined task ran and there is no default: complete with an empty output
                # (conductor-oss leaves the join IN_PROGRESS for ever here)
                done = True
        if failed and found is not None:
            return Outcome(TaskStatus.FAILED, reason=reason)
        if done:
            return Outcome(TaskStatus.COMPLETED, output=dict(found.outputData) if found is not None else {})
        return None


TASK = ExclusiveJoin()
