"""DO_WHILE: run the body, then again while ``loopCondition`` holds (contract 4.11).

The body runs at least once. Tasks of iteration N are named ``ref__N``; the DO_WHILE task's
``iteration`` counts the iterations and its output holds ``iteration`` and, per iteration,
``"N": {baseRef: output}``. ``items`` (or ``inputParameters._items``) iterates over a list with
``loopIndex`` / ``loopItem``. ``inputParameters.keepLastN`` deletes older iterations' tasks.

The loop is re-evaluated when a task of its current iteration changes; an iteration is complete
when every task of it is terminal and handled by the decider (so every in-loop successor exists).
"""

from __future__ import annotations

from typing import Any

from conductor_lab.engine import scripting
from conductor_lab.engine.model import Task, TaskStatus, WorkflowTask
from conductor_lab.engine.tasks.base import (
    Outcome,
    ScheduleContext,
    TaskType,
    base_ref,
    iteration_ref,
    nested_refs,
)


class DoWhile(TaskType):
    TYPE = "DO_WHILE"
    built_in = True
    reevaluate = True
    after_branch = "self"

    def validate(self, node: WorkflowTask) -> list[str]:
        errs: list[str] = []
        if not node.loopCondition and not self._list_mode(node):
            errs.append(f"loopCondition field is required for taskType: DO_WHILE taskName: {node.name}")
        if not node.loopOver:
            errs.append(f"loopOver field is required for taskType: DO_WHILE taskName: {node.name}")
        keep = node.inputParameters.get("keepLastN")
        if keep is not None and (not isinstance(keep, int) or isinstance(keep, bool) or keep < 1):
            errs.append(f"inputParameters.keepLastN must be a positive integer for taskType: DO_WHILE taskName: {node.name}")
        for inner in node.loopOver:
            if inner.type == "DO_WHILE":
                errs.append(
                    f"DO_WHILE task {inner.taskReferenceName} cannot be nested directly in DO_WHILE taskName: {node.name}"
                )
        return errs

    def schedule(self, node: WorkflowTask, ctx: ScheduleContext, iteration: int) -> list[Task]:
        task = ctx.new_task(node, self.TYPE, TaskStatus.IN_PROGRESS)
        task.taskDefName = self.TYPE
        task.inputData = ctx.input_for(node, task.taskId)
        return [task]

    def watches(self, task: Task, other: Task) -> bool:
        return other.iteration == task.iteration and base_ref(other) in nested_refs(task.node)

    def execute(self, task: Task, ctx: ScheduleContext) -> Outcome | None:
        node = task.node
        output = dict(task.outputData)
        iteration = task.iteration
        if iteration == 0:  # first evaluation: start iteration 1 (or finish an empty item list)
            if self._list_mode(node) and not self._items(task, ctx):
                output["iteration"] = 0
                return Outcome(TaskStatus.COMPLETED, output=output)
            return self._start(task, ctx, 1, output)

        refs = nested_refs(node)
        current = [t for r in refs if (t := ctx.task(iteration_ref(r, iteration))) is not None]
        outputs: dict[str, Any] = {}
        failures: list[str] = []
        for t in sorted(current, key=lambda t: t.seq or 1 << 62):
            if t.status.terminal and not t.status.successful:
                failures.append(f"{t.reasonForIncompletion} ")
                outputs[base_ref(t)] = t.outputData
                break
            outputs[base_ref(t)] = t.outputData
        if failures:
            output[str(iteration)] = outputs
            return Outcome(TaskStatus.FAILED, output=output, reason="".join(failures))
        for inner in node.loopOver:  # every direct body node ran, every task is done and handled
            if ctx.task(iteration_ref(inner.taskReferenceName, iteration)) is None:
                return None
        if any(not t.status.terminal or not (t.executed or t.retried) for t in current):
            return None

        output[str(iteration)] = outputs
        remove: list[Task] = []
        keep = node.inputParameters.get("keepLastN")
        if isinstance(keep, int) and not isinstance(keep, bool) and keep > 0 and iteration > keep:
            oldest_kept = iteration - keep + 1
            # the older keys went on earlier iterations: look at the keys present, not at 1..N
            for key in [k for k in output if k.isdigit() and int(k) < oldest_kept]:
                del output[key]
            remove = [t for t in ctx.wf.tasks if t is not task and 0 < t.iteration < oldest_kept and base_ref(t) in refs]
        try:
            again = self._condition(task, ctx, output)
        except Exception as exc:
            return Outcome(
                TaskStatus.FAILED_WITH_TERMINAL_ERROR,
                output=output,
                reason=f"Unable to evaluate condition {node.loopCondition}, exception {exc}",
                remove=remove,
            )
        if again:
            out = self._start(task, ctx, iteration + 1, output)
            out.remove = remove
            return out
        return Outcome(TaskStatus.COMPLETED, output=output, remove=remove)

    # -- helpers --------------------------------------------------------------------------------

    def _start(self, task: Task, ctx: ScheduleContext, iteration: int, output: dict[str, Any]) -> Outcome:
        output["iteration"] = iteration
        if self._list_mode(task.node):
            items = self._items(task, ctx)
            output["loopIndex"] = iteration - 1
            if iteration - 1 < len(items):
                output["loopItem"] = items[iteration - 1]
        # the body's input expressions may read the loop's own output (iteration, loopItem)
        ctx.see(task, output=output, iteration=iteration)
        try:
            scheduled = ctx.schedule(task.node.loopOver[0], iteration)
        finally:
            ctx.forget(task.referenceTaskName)
        return Outcome(output=output, iteration=iteration, schedule=scheduled)

    @staticmethod
    def _list_mode(node: WorkflowTask) -> bool:
        items = getattr(node, "items", None)
        if isinstance(items, str) and items.strip():
            return True
        v = node.inputParameters.get("_items")
        return (isinstance(v, str) and bool(v.strip())) or isinstance(v, list)

    @staticmethod
    def _items(task: Task, ctx: ScheduleContext) -> list[Any]:
        node = task.node
        value: Any = None
        items = getattr(node, "items", None)
        if isinstance(items, str) and items.strip():
            value = ctx.evaluate({"items": items}, task.taskId).get("items")
        if value is None and "_items" in node.inputParameters:
            value = ctx.evaluate(node.inputParameters, task.taskId).get("_items")
        if isinstance(value, list):
            return value
        return [] if value is None else [value]

    def _condition(self, task: Task, ctx: ScheduleContext, output: dict[str, Any]) -> bool:
        node = task.node
        bindings: dict[str, Any] = dict(ctx.evaluate(node.inputParameters, task.taskId) or {})
        bindings[task.referenceTaskName] = output
        for ref in nested_refs(node):
            t = ctx.latest(ref)
            if t is not None:
                bindings[ref] = t.outputData
        condition = node.loopCondition
        if self._list_mode(node):
            items = self._items(task, ctx)
            index = task.iteration - 1
            bindings["loopIndex"] = index
            if 0 <= index < len(items):
                bindings["loopItem"] = items[index]
            more = index < len(items) - 1
            if condition and condition.strip():
                return scripting.eval_bool(condition, bindings) and more
            return more
        return bool(condition) and scripting.eval_bool(condition or "false", bindings)


TASK = DoWhile()
