"""The decider: compare a workflow execution with its blueprint and say what happens next.

``decide(workflow, now, new_id=...)`` is pure: it reads the workflow (never mutates it), reads
no clock, makes no ids of its own and does no I/O, and returns a ``Decision``: tasks to schedule,
changes to existing tasks, effects for the executor, whether the workflow ends (and how), and
when the next time-based check is due. ``executor`` applies it.

A pass looks at the tasks that changed since the last pass (``changed``; all open tasks when it
is ``None``: a *full* pass, run on timers, recovery and explicit decides), so the cost of one task
update does not grow with the size of its workflow. Containers (JOIN, DO_WHILE, WAIT, ...) are
re-evaluated when a task they watch changed, and on full passes.

Semantics follow conductor-oss ``DeciderService`` (contract sections 6.2, 6.5-6.9); task types
live in ``engine/tasks`` behind the protocol in ``engine/tasks/base.py``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from conductor_lab.engine import params
from conductor_lab.engine.model import (
    Task,
    TaskDef,
    TaskStatus,
    Workflow,
    WorkflowDef,
    WorkflowStatus,
    WorkflowTask,
)
from conductor_lab.engine.tasks import type_of
from conductor_lab.engine.tasks.base import (
    MAX_REASON,
    Definitions,
    Effect,
    EvalDoc,
    Outcome,
    ScheduleContext,
    TerminateWorkflow,
    WorkflowIndex,
    in_loop,
    index_of,
    iteration_ref,
    positions,
)

__all__ = ["Decision", "collect", "decide", "next_nodes", "output_or_empty", "retry_delay_seconds", "workflow_output"]


@dataclass
class Decision:
    """What the executor must apply."""

    schedule: list[Task] = field(default_factory=list)
    updates: list[tuple[Task, dict[str, Any]]] = field(default_factory=list)
    remove: list[Task] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)
    effects: list[tuple[Task, Effect]] = field(default_factory=list)
    run_async: list[Task] = field(default_factory=list)
    complete: WorkflowStatus | None = None
    reason: str | None = None
    output: dict[str, Any] | None = None
    failed_task: Task | None = None
    cancel_open: bool = False  # cancel the open tasks even when the workflow ends successfully
    wake_at: int | None = None
    #: workflow attributes a control verb sets (applied before everything else)
    workflow_changes: dict[str, Any] = field(default_factory=dict)
    #: once applied, a pass over the tasks it touched would find nothing to do (see ``_settled``):
    #: the executor need not decide again
    settled: bool = False

    def wake(self, at: int) -> None:
        if self.wake_at is None or at < self.wake_at:
            self.wake_at = at

    @property
    def changed(self) -> bool:
        """Whether there is anything to apply (asking for async work counts: after a restart a
        full pass re-starts an HTTP call without changing the task)."""
        return bool(
            self.schedule or self.updates or self.remove or self.complete or self.run_async or self.effects
            or self.variables
        )

    def touched(self) -> list[Task]:
        """Tasks this decision changes or creates: the ``changed`` hint of the next pass."""
        return [t for t, _ in self.updates] + self.schedule


def _reevaluates(task_type: str) -> bool:
    return type_of(task_type).reevaluate


# --------------------------------------------------------------------------------------------
# Definition graph


def next_nodes(defn: WorkflowDef, node: WorkflowTask) -> list[WorkflowTask]:
    """The definition nodes that follow ``node`` once it is done."""
    found = positions(defn).get(node.taskReferenceName)
    if found is None:
        return []  # a node created at run time (dynamic fork branch): its branch ends with it
    parent, lst, idx = found
    if idx + 1 < len(lst):
        return [lst[idx + 1]]
    if parent is None:
        return []
    if type_of(parent.type).after_branch != "next":
        return []  # a fork branch ends (the JOIN waits) / a loop body ends (the loop re-evaluates)
    return next_nodes(defn, parent)


# --------------------------------------------------------------------------------------------
# Retries and timeouts


def retry_delay_seconds(td: TaskDef, retry_count: int, task_id: str) -> int:
    """Delay before the retry of an attempt whose ``retryCount`` is ``retry_count`` (contract 6.5)."""
    base = td.retryDelaySeconds
    if td.retryLogic == "LINEAR_BACKOFF":
        delay = base * td.backoffScaleFactor * (retry_count + 1)
    elif td.retryLogic == "EXPONENTIAL_BACKOFF":
        delay = base * (2**retry_count)
    else:
        delay = base
    delay = min(delay, 2**31 - 1)
    if td.maxRetryDelaySeconds > 0:
        delay = min(delay, td.maxRetryDelaySeconds)
    if td.backoffJitterMs > 0:
        # Deterministic jitter (the decider is pure): derived from the task id, rounded up to seconds.
        h = int.from_bytes(hashlib.blake2b(task_id.encode(), digest_size=4).digest(), "big")
        delay += (h % (td.backoffJitterMs + 1) + 999) // 1000
    return max(0, delay)


@dataclass(slots=True)
class _Timeout:
    reason: str
    policy: str  # RETRY | TIME_OUT_WF (response timeouts always retry)


def _check_timeouts(t: Task, td: TaskDef, idx: WorkflowIndex, now: int, d: Decision) -> _Timeout | None:
    """Total, task, poll and response timeouts for a non-terminal task; records the next deadline."""
    delay_ms = t.startDelayInSeconds * 1000
    if td.totalTimeoutSeconds > 0:
        first = _first_scheduled(idx, t)
        deadline = first + td.totalTimeoutSeconds * 1000
        if now >= deadline and td.timeoutPolicy != "ALERT_ONLY":
            return _Timeout(
                f"Task total timeout of {td.totalTimeoutSeconds} seconds exceeded. "
                f"Timeout policy configured to {td.timeoutPolicy}",
                td.timeoutPolicy,
            )
        if now < deadline:
            d.wake(deadline)
    if td.timeoutSeconds > 0 and t.startTime > 0:
        deadline = t.startTime + delay_ms + td.timeoutSeconds * 1000
        if now >= deadline:
            if td.timeoutPolicy != "ALERT_ONLY":
                elapsed = (now - t.startTime - delay_ms) // 1000
                return _Timeout(
                    f"Task timed out after {elapsed} seconds. Timeout configured as {td.timeoutSeconds} seconds. "
                    f"Timeout policy configured to {td.timeoutPolicy}",
                    td.timeoutPolicy,
                )
        else:
            d.wake(deadline)
    worker = type_of(t.node.type).kind == "worker"
    if t.status == TaskStatus.SCHEDULED and td.pollTimeoutSeconds and worker:
        deadline = t.scheduledTime + delay_ms + (td.pollTimeoutSeconds + t.callbackAfterSeconds) * 1000
        if now >= deadline:
            if td.timeoutPolicy != "ALERT_ONLY":
                return _Timeout(
                    f"Task poll timed out after {(now - t.scheduledTime - delay_ms) // 1000} seconds. "
                    f"Poll timeout configured as {td.pollTimeoutSeconds} seconds. "
                    f"Timeout policy configured to {td.timeoutPolicy}",
                    td.timeoutPolicy,
                )
        else:
            d.wake(deadline)
    if t.status == TaskStatus.IN_PROGRESS and t.responseTimeoutSeconds > 0 and worker:
        deadline = t.updateTime + (t.responseTimeoutSeconds + t.callbackAfterSeconds) * 1000
        if now >= deadline:
            return _Timeout(
                f"responseTimeout: {t.responseTimeoutSeconds} exceeded for the taskId: {t.taskId} "
                f"with Task Status: {t.status.value}",
                "RETRY",
            )
        d.wake(deadline)
    return None


def _first_scheduled(idx: WorkflowIndex, t: Task) -> int:
    first = idx.first.get(t.referenceTaskName)
    return first.scheduledTime if first is not None else t.scheduledTime


def _retry(t: Task, status: TaskStatus, ctx: ScheduleContext) -> Task | None:
    if not status.retriable:
        return None
    node = t.node
    if type_of(node.type).built_in:
        return None
    td = ctx.task_def(node)
    allowed = node.retryCount if node.retryCount is not None else td.retryCount
    if t.retryCount >= allowed:
        return None
    if td.totalTimeoutSeconds > 0 and ctx.now - _first_scheduled(ctx.idx, t) >= td.totalTimeoutSeconds * 1000:
        return None
    scheduled = ctx.schedule(node, t.iteration)
    if not scheduled:
        return None
    new = scheduled[0]
    delay = retry_delay_seconds(td, t.retryCount, t.taskId)
    new.retryCount = t.retryCount + 1
    new.retriedTaskId = t.taskId
    new.referenceTaskName = t.referenceTaskName
    new.iteration = t.iteration
    new.reasonForIncompletion = t.reasonForIncompletion
    new.startDelayInSeconds = delay
    new.callbackAfterSeconds = delay
    new.inputData = {**t.inputData, **new.inputData}
    return new


# --------------------------------------------------------------------------------------------
# The decider


def workflow_output(wf: Workflow, idx: WorkflowIndex | None = None) -> dict[str, Any]:
    """``outputParameters`` evaluated, else the last task's output (contract 6.9)."""
    op = wf.definition.outputParameters
    if op:
        out: dict[str, Any] = params.evaluate(op, EvalDoc(wf, idx or index_of(wf, _reevaluates)))
        return out
    if wf.tasks:
        return dict(wf.tasks[-1].outputData)
    return {}


def _finish(
    d: Decision,
    wf: Workflow,
    status: WorkflowStatus,
    reason: str | None,
    failed: Task | None = None,
    output: dict[str, Any] | None = None,
) -> Decision:
    d.schedule = []
    d.effects = []
    d.run_async = []
    d.complete = status
    d.reason = reason[:MAX_REASON] if reason else reason
    d.failed_task = failed
    d.wake_at = None
    d.output = output if output is not None else output_or_empty(wf)
    return d


def output_or_empty(wf: Workflow) -> dict[str, Any]:
    """The workflow's output as it stands (best effort on failure paths, as upstream)."""
    try:
        return workflow_output(wf)
    except Exception:
        return {}


def decide(
    wf: Workflow,
    now: int,
    *,
    new_id: Callable[[], str],
    changed: Iterable[Task] | None = None,
    defs: Definitions | None = None,
) -> Decision:
    """One decider pass over ``wf`` at time ``now`` (epoch ms).

    ``new_id`` makes the ids of new tasks (and of workflows they start); ``changed`` names the
    tasks changed since the previous pass (``None``: look at every open task); ``defs`` looks up
    registered definitions (sub-workflows, dynamic fork branches).
    """
    d = Decision()
    if wf.status.terminal:
        return d
    defn = wf.definition
    if defn.timeoutSeconds > 0:
        deadline = (wf.lastRetriedTime or wf.createTime) + defn.timeoutSeconds * 1000
        if now >= deadline:
            if defn.timeoutPolicy == "TIME_OUT_WF":
                elapsed = (now - (wf.lastRetriedTime or wf.createTime)) // 1000
                return _finish(
                    d,
                    wf,
                    WorkflowStatus.TIMED_OUT,
                    f"Workflow timed out after {elapsed} seconds. Timeout configured as {defn.timeoutSeconds} "
                    "seconds. Timeout policy configured to TIME_OUT_WF",
                )
        else:
            d.wake(deadline)
    if wf.status == WorkflowStatus.PAUSED:
        return d

    idx = index_of(wf, _reevaluates)
    ctx = ScheduleContext(wf, now, new_id, idx, type_of, defs)
    try:
        if not wf.tasks:
            if not defn.tasks:
                return _finish(d, wf, WorkflowStatus.COMPLETED, None)
            d.schedule.extend(ctx.schedule(defn.tasks[0]))
            collect(d, ctx)
        else:
            _advance(wf, defn, ctx, d, None if changed is None else list(changed))
        d.settled = _settled(d, idx)
        return d
    except TerminateWorkflow as exc:
        return _finish(d, wf, WorkflowStatus.FAILED, str(exc))


def _settled(d: Decision, idx: WorkflowIndex) -> bool:
    """Whether the pass after ``d`` is applied (over the tasks it touched) would change nothing.

    True in the plain case of a worker-task workflow: every updated task is marked handled
    (``executed``/``retried``: the next pass skips it), every new task is a worker task waiting
    for a worker (the next pass would only check its timeouts, whose deadlines ``collect`` has
    already put into ``wake_at``), and nothing else happens (no container to re-evaluate, no
    effects, variables, removals, asynchronous work or end). In that case the completion check
    of the next pass finds the open new tasks, or what this pass found open, and stops there.
    Anything else gets the next pass, as before.
    """
    if d.complete is not None or d.remove or d.effects or d.run_async or d.variables:
        return False
    for _, changes in d.updates:
        if not (changes.get("executed") or changes.get("retried")):
            return False
    for t in d.schedule:
        if t.status != TaskStatus.SCHEDULED or t.startTime or type_of(t.node.type).kind != "worker":
            return False
    return not idx.open_containers()


def collect(d: Decision, ctx: ScheduleContext) -> Decision:
    """Move what tasks did while being scheduled (effects, variables, wakes) into the decision."""
    if ctx.variables:
        d.variables.update(ctx.variables)
    d.effects.extend(ctx.effects)
    d.run_async.extend(ctx.run_async)
    if ctx.wake_at is not None:
        d.wake(ctx.wake_at)
    for t in d.schedule:  # deadlines of the new tasks
        if not t.status.terminal:
            td = t.node.taskDefinition
            if td is not None and (td.totalTimeoutSeconds or td.pollTimeoutSeconds):
                _check_timeouts(t, td, ctx.idx, ctx.now, d)
    ctx.variables = {}
    ctx.effects = []
    ctx.run_async = []
    ctx.wake_at = None
    return d


def _advance(
    wf: Workflow, defn: WorkflowDef, ctx: ScheduleContext, d: Decision, changed: list[Task] | None
) -> None:
    now = ctx.now
    idx = ctx.idx
    full = changed is None
    candidates = idx.open_tasks() if changed is None else changed
    pending_refs: set[str] = set()  # references scheduled in this pass (dedupe)
    touched: set[str] = set()  # ids of tasks this pass changes

    # 1. tasks that changed: timeouts, retries, failures, and what follows the finished ones
    for t in candidates:
        if t.retried or t.executed or t.status == TaskStatus.SKIPPED or t.taskId in touched:
            continue
        status = t.status
        changes: dict[str, Any] = {}
        tt = type_of(t.node.type)
        if not status.terminal:
            td = ctx.task_def(t.node)
            timeout = _check_timeouts(t, td, idx, now, d)
            if timeout is not None:
                status = TaskStatus.TIMED_OUT
                changes.update(status=status, reasonForIncompletion=timeout.reason, endTime=now)
                if timeout.policy == "TIME_OUT_WF":
                    d.updates.append((t, changes))
                    _finish(d, wf, WorkflowStatus.TIMED_OUT, _failure_reason(t, WorkflowStatus.TIMED_OUT, timeout.reason), t)
                    return
            elif full and tt.kind != "worker" and not tt.reevaluate:
                # an open system task found by a full pass (after a restart): let it go on
                _take(d, ctx, t, tt.execute(t, ctx), touched, pending_refs)
                continue
        if status.terminal and not status.successful:
            retry = _retry(t, status, ctx)
            if retry is not None:
                changes.update(retried=True, executed=True)
                d.updates.append((t, changes))
                touched.add(t.taskId)
                d.schedule.append(retry)
                continue
            if t.node.optional:
                status = TaskStatus.COMPLETED_WITH_ERRORS
                changes["status"] = status
            elif not t.node.permissive:
                wf_status = (
                    WorkflowStatus.TIMED_OUT
                    if status == TaskStatus.TIMED_OUT
                    else WorkflowStatus.TERMINATED
                    if status == TaskStatus.CANCELED
                    else WorkflowStatus.FAILED
                )
                if changes:
                    d.updates.append((t, changes))
                reason = changes.get("reasonForIncompletion", t.reasonForIncompletion)
                _finish(d, wf, wf_status, _failure_reason(t, wf_status, reason), t)
                return
        if status.terminal:
            changes["executed"] = True
            d.updates.append((t, changes))
            touched.add(t.taskId)
            end = tt.finishes(t) if status.successful else None
            if end is not None:
                output = end.output if end.output else None
                _finish(d, wf, end.status, end.reason, None if end.status.successful else t, output)
                d.cancel_open = True
                return
            if tt.proceeds(t):
                _schedule_next(defn, ctx, d, t, pending_refs)
        elif changes:
            d.updates.append((t, changes))
            touched.add(t.taskId)

    # 2. containers whose watched tasks changed (they see this pass's changes on the next pass)
    containers = idx.open_containers()
    ctx.changed = changed
    if containers:
        changed_now = [t for t, _ in d.updates]
        changed_ids = {t.taskId for t in changed} if changed is not None else set()
        for w in containers:
            if w.taskId in touched:
                continue
            tt = type_of(w.node.type)
            if not (full or w.taskId in changed_ids or any(tt.watches(w, c) for c in changed or ())):
                continue
            if any(tt.watches(w, u) for u in changed_now):
                continue  # a watched task changes in this pass: look again on the next one
            _take(d, ctx, w, tt.execute(w, ctx), touched, pending_refs)

    collect(d, ctx)
    # 3. completion (contract 6.2 step 7): nothing new, every task terminal and handled (the
    # ones handled in this pass count)
    if d.schedule or d.remove or d.effects or d.run_async or d.complete:
        return
    handled = {t.taskId for t, ch in d.updates if ch.get("executed")}
    if idx.any_open(handled):
        return
    for node in defn.tasks:
        if node.taskReferenceName not in idx.by_ref:
            return
    permissive_failures = [
        t
        for t in wf.tasks
        if not t.retried and t.node.permissive and not t.node.optional and t.status.terminal and not t.status.successful
    ]
    if permissive_failures:
        reason = ". ".join(
            _failure_reason(t, WorkflowStatus.FAILED, t.reasonForIncompletion) for t in permissive_failures
        )
        _finish(d, wf, WorkflowStatus.FAILED, reason, permissive_failures[0])
        return
    _finish(d, wf, WorkflowStatus.COMPLETED, None)


def _take(
    d: Decision, ctx: ScheduleContext, t: Task, outcome: Outcome | None, touched: set[str], pending: set[str]
) -> None:
    """Record what an existing task's ``execute`` returned."""
    if outcome is None:
        return
    if outcome.wake_at is not None:
        d.wake(outcome.wake_at)
    if not outcome.changed:
        return
    ch = outcome.changes(t, ctx.now)
    if ch:
        d.updates.append((t, ch))
        touched.add(t.taskId)
    for nt in outcome.schedule:
        pending.add(nt.referenceTaskName)
    d.schedule.extend(outcome.schedule)
    d.remove.extend(outcome.remove)
    if outcome.variables:
        d.variables.update(outcome.variables)
    d.effects.extend((t, e) for e in outcome.effects)
    if outcome.run_async:
        d.run_async.append(t)


def _schedule_next(defn: WorkflowDef, ctx: ScheduleContext, d: Decision, t: Task, pending: set[str]) -> None:
    for node in next_nodes(defn, t.node):
        for nxt in _skip_skipped(defn, node, ctx.idx):
            iteration = t.iteration if t.iteration and in_loop(defn, nxt) else 0
            ref = iteration_ref(nxt.taskReferenceName, iteration)
            if ref in pending or ref in ctx.idx.by_ref:
                continue
            new_tasks = ctx.schedule(nxt, iteration)
            for nt in new_tasks:
                pending.add(nt.referenceTaskName)
            d.schedule.extend(new_tasks)


def _skip_skipped(defn: WorkflowDef, node: WorkflowTask, idx: WorkflowIndex) -> list[WorkflowTask]:
    """Jump over definition nodes that were skipped (their SKIPPED task stands in)."""
    t = idx.by_ref.get(node.taskReferenceName)
    if t is None or t.status != TaskStatus.SKIPPED:
        return [node]
    out: list[WorkflowTask] = []
    for nxt in next_nodes(defn, node):
        out.extend(_skip_skipped(defn, nxt, idx))
    return out


def _failure_reason(t: Task, wf_status: WorkflowStatus, reason: str | None) -> str:
    why = "null" if reason is None else reason  # Java's String.format of a null
    return f"Task {t.taskId} failed with status: {wf_status.value} and reason: '{why}'"

