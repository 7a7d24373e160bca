"""JOIN: waits for the tasks named in ``joinOn`` and gathers their outputs (contract 4.8).

Re-evaluated when one of its joined tasks changes. To keep that cheap for wide forks it keeps a
cursor over ``joinOn`` (tasks before it are known to be done), so completing a thousand branches
costs a thousand small steps, not a thousand scans; a failed joined task triggers a full scan.
"""

from __future__ import annotations

from typing import Any

from conductor_lab.engine.model import Task, TaskStatus, WorkflowTask
from conductor_lab.engine.tasks.base import Outcome, ScheduleContext, TaskType, iteration_ref

#: task id -> (its joinOn list, the refs, the same as a set): one update of a wide fork must not
#: rebuild the thousand refs; the list object itself is kept (not its id), so a replaced joinOn
#: (a dynamic fork rewrites its JOIN's input) is never mistaken for the cached one
_REFS: dict[str, tuple[list[Any], list[str], frozenset[str]]] = {}


def join_refs(task: Task) -> list[str]:
    """The reference names a JOIN waits for (with the loop suffix inside a DO_WHILE); do not mutate."""
    return _cached(task)[1]


def _ref_set(task: Task) -> frozenset[str]:
    return _cached(task)[2]


def _cached(task: Task) -> tuple[list[Any], list[str], frozenset[str]]:
    join_on = task.inputData.get("joinOn") or []
    cached = _REFS.get(task.taskId)
    if cached is not None and cached[0] is join_on:
        return cached
    if len(_REFS) > 4096:
        _REFS.clear()
    if task.iteration > 0:
        refs = [iteration_ref(str(r), task.iteration) for r in join_on]
    else:
        refs = [str(r) for r in join_on]
    entry = (join_on, refs, frozenset(refs))
    _REFS[task.taskId] = entry
    return entry


class Join(TaskType):
    TYPE = "JOIN"
    built_in = True
    reevaluate = True

    def schedule(self, node: WorkflowTask, ctx: ScheduleContext, iteration: int) -> list[Task]:
        task = ctx.new_task(node, self.TYPE, TaskStatus.IN_PROGRESS, iteration)
        task.taskDefName = self.TYPE
        task.inputData = {**ctx.input_for(node, task.taskId), "joinOn": list(node.joinOn)}
        return [task]

    def watches(self, task: Task, other: Task) -> bool:
        return other.referenceTaskName in _ref_set(task)

    def execute(self, task: Task, ctx: ScheduleContext) -> Outcome | None:
        refs = join_refs(task)
        changed = ctx.changed
        failure_seen = changed is None or any(
            c.status.terminal and not c.status.successful and self.watches(task, c) for c in changed
        )
        if not failure_seen:  # fast path: move the cursor over joined tasks that are done
            i = ctx.idx.cursors.get(task.taskId, 0)
            while i < len(refs):
                t = ctx.task(refs[i])
                if t is None or not t.status.terminal or not t.status.successful:
                    break
                i += 1
            ctx.idx.cursors[task.taskId] = i
            if i < len(refs):
                t = ctx.task(refs[i])
                if t is None or not t.status.terminal:
                    return None
        return self.evaluate(task, ctx, refs)

    def evaluate(self, task: Task, ctx: ScheduleContext, refs: list[str]) -> Outcome | None:
        """conductor-oss ``Join.execute`` over every joined task."""
        joined = [ctx.task(r) for r in refs]
        all_terminal = all(t is not None and t.status.terminal for t in joined)
        output: dict[str, Any] = {}
        optional_failures: list[str] = []
        for ref, t in zip(refs, joined, strict=True):
            if t is None:
                continue
            if t.outputData:
                output[ref] = t.outputData
            failed = (
                not t.status.successful and not t.node.optional and (not t.node.permissive or all_terminal)
            )
            if failed:
                reasons = " ".join(
                    j.reasonForIncompletion
                    for j in joined
                    if j is not None and not j.status.successful and j.reasonForIncompletion is not None
                )
                # a cancelled joined task (e.g. a terminated sub-workflow) cancels, not fails
                real_failure = any(
                    j is not None
                    and j.status.terminal
                    and not j.status.successful
                    and not j.node.optional
                    and j.status != TaskStatus.CANCELED
                    for j in joined
                )
                status = TaskStatus.FAILED if real_failure else TaskStatus.CANCELED
                return Outcome(status, output=output, reason=reasons)
            if t.node.optional and t.status == TaskStatus.COMPLETED_WITH_ERRORS:
                optional_failures.append(f"{t.taskDefName}/{t.taskId}")
        if not all_terminal:
            return None
        _REFS.pop(task.taskId, None)
        ctx.idx.cursors.pop(task.taskId, None)
        if optional_failures:
            return Outcome(
                TaskStatus.COMPLETED_WITH_ERRORS,
                output=output,
                reason=" ".join(optional_failures) + " completed with errors",
            )
        return Outcome(TaskStatus.COMPLETED, output=output)


TASK = Join()
