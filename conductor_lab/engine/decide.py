"""The decider: compare a workflow execution with its blueprint and say what happens next.

``decide(workflow, now)`` is pure: it reads the workflow (never mutates it), reads no clock and
does no I/O, and returns a ``Decision``: tasks to schedule, changes to existing tasks, whether the
workflow ends (and how), and when the next time-based check is due. ``executor.py`` applies it.

Semantics follow conductor-oss ``DeciderService`` (contract sections 6.2, 6.5-6.9).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from conductor_lab.engine import ids, params
from conductor_lab.engine.model import (
    EMPTY,
    Task,
    TaskDef,
    TaskStatus,
    Workflow,
    WorkflowDef,
    WorkflowStatus,
    WorkflowTask,
)
from conductor_lab.engine.tasks import NOT_YET_SUPPORTED, kind_of

WorkflowView = Workflow

MAX_REASON = 500


new_uuid = ids.new_id


@dataclass(slots=True)
class Outcome:
    """How a system task advanced (returned by a task module's ``execute``)."""

    status: TaskStatus
    output: dict[str, Any] | None = None
    reason: str | None = None
    variables: dict[str, Any] | None = None  # keys put into workflow.variables


@dataclass
class Decision:
    """What the executor must apply."""

    schedule: list[Task] = field(default_factory=list)
    updates: list[tuple[Task, dict[str, Any]]] = field(default_factory=list)
    complete: WorkflowStatus | None = None
    reason: str | None = None
    output: dict[str, Any] | None = None
    failed_task: Task | None = None
    wake_at: int | None = None

    def wake(self, at: int) -> None:
        if self.wake_at is None or at < self.wake_at:
            self.wake_at = at

    @property
    def changed(self) -> bool:
        return bool(self.schedule or self.updates or self.complete)


class TerminateWorkflow(Exception):
    """Raised while scheduling when the workflow cannot go on (it ends FAILED with the reason)."""


# --------------------------------------------------------------------------------------------
# Evaluation document for ${...} expressions


class EvalDoc(Mapping[str, Any]):
    """The document expressions read (contract 5.2), built lazily per reference name."""

    __slots__ = ("_wf", "_latest", "_cache")

    def __init__(self, wf: Workflow) -> None:
        self._wf = wf
        self._latest: dict[str, Task] | None = None
        self._cache: dict[str, Any] = {}

    def _tasks(self) -> dict[str, Task]:
        if self._latest is None:
            latest: dict[str, Task] = {}
            for t in self._wf.tasks:  # ordered by seq: later attempts / iterations win
                latest[base_ref(t)] = t
            self._latest = latest
        return self._latest

    def __getitem__(self, key: str) -> Any:
        if key in self._cache:
            return self._cache[key]
        if key == "workflow":
            wf = self._wf
            value: Any = {
                "input": wf.input,
                "output": wf.output,
                "status": wf.status.value,
                "workflowId": wf.workflowId,
                "parentWorkflowId": wf.parentWorkflowId,
                "parentWorkflowTaskId": wf.parentWorkflowTaskId,
                "workflowType": wf.definition.name,
                "version": wf.definition.version,
                "correlationId": wf.correlationId,
                "reasonForIncompletion": wf.reasonForIncompletion,
                "schemaVersion": 2,
                "variables": wf.variables,
            }
        else:
            t = self._tasks().get(key)
            if t is None:
                raise KeyError(key)
            value = {
                "input": t.inputData,
                "output": t.outputData,
                "taskType": t.taskType,
                "status": t.status.value,
                "referenceTaskName": t.referenceTaskName,
                "retryCount": t.retryCount,
                "correlationId": t.correlationId,
                "pollCount": t.pollCount,
                "taskDefName": t.taskDefName,
                "scheduledTime": t.scheduledTime,
                "startTime": t.startTime,
                "endTime": t.endTime,
                "workflowInstanceId": t.workflowInstanceId,
                "taskId": t.taskId,
                "reasonForIncompletion": t.reasonForIncompletion,
                "callbackAfterSeconds": t.callbackAfterSeconds,
                "workerId": t.workerId,
                "iteration": t.iteration,
            }
        self._cache[key] = value
        return value

    def __contains__(self, key: object) -> bool:
        return key == "workflow" or key in self._tasks()

    def __iter__(self) -> Iterator[str]:
        yield "workflow"
        yield from self._tasks()

    def __len__(self) -> int:
        return 1 + len(self._tasks())


def base_ref(task: Task) -> str:
    """Reference name without a DO_WHILE ``__<iteration>`` suffix."""
    ref = task.referenceTaskName
    if task.iteration > 0 and "__" in ref:
        return ref.split("__", 1)[0]
    return ref


# --------------------------------------------------------------------------------------------
# Scheduling context handed to task modules


class ScheduleContext:
    """What a task module's ``schedule`` may use: ids, the clock value, inputs, definitions."""

    def __init__(self, wf: Workflow, now: int, new_id: Callable[[], str]) -> None:
        self.wf = wf
        self.now = now
        self._new_id = new_id
        self._doc: EvalDoc | None = None

    @property
    def doc(self) -> EvalDoc:
        if self._doc is None:
            self._doc = EvalDoc(self.wf)
        return self._doc

    def new_task(self, node: WorkflowTask, task_type: str, status: TaskStatus) -> Task:
        t = Task(self._new_id(), node, self.wf, task_type, status)
        t.scheduledTime = self.now
        t.updateTime = self.now
        if status.terminal:
            t.startTime = t.endTime = self.now
        return t

    def task_def(self, node: WorkflowTask) -> TaskDef:
        td = node.taskDefinition
        if td is None:  # snapshots are enriched at start; this covers hand-built definitions
            td = TaskDef.adhoc(node.name or node.type, simple=node.type == "SIMPLE")
        return td

    def input_for(self, node: WorkflowTask, task_id: str | None = None) -> dict[str, Any]:
        """Evaluated ``inputParameters`` over the TaskDef ``inputTemplate`` (contract 5.6)."""
        template = node.inputParameters
        td = node.taskDefinition
        defaults = td.inputTemplate if td is not None else None
        if defaults:
            template = {**defaults, **template}
        if not params.has_expressions(template):
            return template or EMPTY  # snapshot nodes are immutable: share, don't copy
        out: dict[str, Any] = params.evaluate(template, self.doc, task_id=task_id)
        if defaults:
            for k, v in out.items():
                if v is None and k in defaults:
                    out[k] = defaults[k]
        return out

    def schedule(self, node: WorkflowTask) -> list[Task]:
        """The runtime tasks for one node (containers call this for their first child)."""
        if node.type in NOT_YET_SUPPORTED:
            raise TerminateWorkflow(
                f"Task type {node.type} (task {node.taskReferenceName}) is not supported by this server yet"
            )
        tasks: list[Task] = kind_of(node.type).schedule(node, self)
        return tasks


# --------------------------------------------------------------------------------------------
# Definition graph


def _positions(defn: WorkflowDef) -> dict[str, tuple[WorkflowTask | None, list[WorkflowTask], int]]:
    cached: dict[str, tuple[WorkflowTask | None, list[WorkflowTask], int]] | None = getattr(defn, "_positions", None)
    if cached is not None:
        return cached
    pos: dict[str, tuple[WorkflowTask | None, list[WorkflowTask], int]] = {}

    def walk(lst: list[WorkflowTask], parent: WorkflowTask | None) -> None:
        for i, node in enumerate(lst):
            pos[node.taskReferenceName] = (parent, lst, i)
            for child in node.children():
                walk(child, node)

    walk(defn.tasks, None)
    defn._positions = pos  # type: ignore[attr-defined]
    return pos


def next_nodes(defn: WorkflowDef, node: WorkflowTask) -> list[WorkflowTask]:
    """The definition nodes that follow ``node`` once it is done."""
    found = _positions(defn).get(node.taskReferenceName)
    if found is None:
        return []
    parent, lst, idx = found
    if idx + 1 < len(lst):
        return [lst[idx + 1]]
    if parent is None:
        return []
    after = getattr(kind_of(parent.type), "after_branch", None)
    mode = after(parent) if after is not None else "next"
    if mode == "stop":
        return []
    if mode == "self":
        return [parent]
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


def _check_timeouts(t: Task, td: TaskDef, wf: Workflow, now: int, d: Decision) -> _Timeout | None:
    """Total, task, poll and response timeouts for a non-terminal task; records the next deadline."""
    delay_ms = t.startDelayInSeconds * 1000
    if td.totalTimeoutSeconds > 0:
        first = _first_scheduled(wf, t)
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
    if t.status == TaskStatus.SCHEDULED and td.pollTimeoutSeconds and kind_of(t.node.type).KIND == "worker":
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
    if t.status == TaskStatus.IN_PROGRESS and t.responseTimeoutSeconds > 0 and kind_of(t.node.type).KIND == "worker":
        deadline = t.updateTime + (t.responseTimeoutSeconds + t.callbackAfterSeconds) * 1000
        if now >= deadline:
            return _Timeout(
                f"responseTimeout: {t.responseTimeoutSeconds} exceeded for the taskId: {t.taskId} "
                f"with Task Status: {t.status.value}",
                "RETRY",
            )
        d.wake(deadline)
    return None


def _first_scheduled(wf: Workflow, t: Task) -> int:
    for other in wf.tasks:
        if other.referenceTaskName == t.referenceTaskName:
            return other.scheduledTime
    return t.scheduledTime


def _retry(t: Task, status: TaskStatus, ctx: ScheduleContext) -> Task | None:
    if not status.retriable:
        return None
    node = t.node
    if kind_of(node.type).BUILT_IN:
        return None
    td = ctx.task_def(node)
    allowed = node.retryCount if node.retryCount is not None else td.retryCount
    if t.retryCount >= allowed:
        return None
    if td.totalTimeoutSeconds > 0 and ctx.now - _first_scheduled(ctx.wf, t) >= td.totalTimeoutSeconds * 1000:
        return None
    scheduled = ctx.schedule(node)
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


def workflow_output(wf: Workflow) -> dict[str, Any]:
    """``outputParameters`` evaluated, else the last task's output (contract 6.9)."""
    op = wf.definition.outputParameters
    if op:
        out: dict[str, Any] = params.evaluate(op, EvalDoc(wf))
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
) -> Decision:
    d.schedule = []
    d.complete = status
    d.reason = reason[:MAX_REASON] if reason else reason
    d.failed_task = failed
    d.wake_at = None
    try:
        d.output = workflow_output(wf)
    except Exception:  # best effort on failure paths, as upstream
        d.output = {}
    return d


def decide(wf: Workflow, now: int, *, new_id: Callable[[], str] = new_uuid) -> Decision:
    """One decider pass over ``wf`` at time ``now`` (epoch ms)."""
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

    ctx = ScheduleContext(wf, now, new_id)
    try:
        if not wf.tasks:
            if not defn.tasks:
                return _finish(d, wf, WorkflowStatus.COMPLETED, None)
            d.schedule.extend(ctx.schedule(defn.tasks[0]))
            return d
        return _advance(wf, defn, ctx, d)
    except TerminateWorkflow as exc:
        return _finish(d, wf, WorkflowStatus.FAILED, str(exc))


def _advance(wf: Workflow, defn: WorkflowDef, ctx: ScheduleContext, d: Decision) -> Decision:
    now = ctx.now
    existing = {(t.referenceTaskName, t.retryCount) for t in wf.tasks}
    present_refs = {t.referenceTaskName for t in wf.tasks}
    skipped = {t.referenceTaskName for t in wf.tasks if t.status == TaskStatus.SKIPPED}
    effective: dict[str, TaskStatus] = {}  # taskId -> status after this pass's changes
    permissive_failures: list[Task] = []

    for t in list(wf.tasks):
        if t.retried or t.status == TaskStatus.SKIPPED or t.executed:
            if not t.retried and t.node.permissive and not t.node.optional and not t.status.successful:
                permissive_failures.append(t)
            continue
        status = t.status
        changes: dict[str, Any] = {}
        if not status.terminal:
            td = ctx.task_def(t.node)
            timeout = _check_timeouts(t, td, wf, now, d)
            if timeout is not None:
                status = TaskStatus.TIMED_OUT
                changes.update(status=status, reasonForIncompletion=timeout.reason, endTime=now)
                if timeout.policy == "TIME_OUT_WF":
                    d.updates.append((t, changes))
                    return _finish(
                        d, wf, WorkflowStatus.TIMED_OUT, _failure_reason(t, WorkflowStatus.TIMED_OUT, timeout.reason), t
                    )
        if status.terminal and not status.successful:
            retry = _retry(t, status, ctx)
            if retry is not None:
                changes.update(retried=True, executed=True)
                d.updates.append((t, changes))
                d.schedule.append(retry)
                existing.add((retry.referenceTaskName, retry.retryCount))
                effective[t.taskId] = status
                continue
            if t.node.optional:
                status = TaskStatus.COMPLETED_WITH_ERRORS
                changes["status"] = status
            elif t.node.permissive:
                permissive_failures.append(t)
            else:
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
                return _finish(d, wf, wf_status, _failure_reason(t, wf_status, reason), t)
        effective[t.taskId] = status
        if status.terminal:
            changes["executed"] = True
            d.updates.append((t, changes))
            for node in next_nodes(defn, t.node):
                for nxt in _skip_skipped(defn, node, skipped):
                    if (nxt.taskReferenceName, 0) in existing:
                        continue
                    new_tasks = ctx.schedule(nxt)
                    for nt in new_tasks:
                        existing.add((nt.referenceTaskName, nt.retryCount))
                    d.schedule.extend(new_tasks)
        elif changes:
            d.updates.append((t, changes))

    if d.schedule:
        return d
    # Completion check (contract 6.2 step 7).
    for t in wf.tasks:
        if t.retried:
            continue
        if not effective.get(t.taskId, t.status).terminal:
            return d
    for node in defn.tasks:
        if node.taskReferenceName not in present_refs:
            return d
    if permissive_failures:
        reason = ". ".join(
            _failure_reason(t, WorkflowStatus.FAILED, t.reasonForIncompletion) for t in permissive_failures
        )
        return _finish(d, wf, WorkflowStatus.FAILED, reason, permissive_failures[0])
    return _finish(d, wf, WorkflowStatus.COMPLETED, None)


def _skip_skipped(defn: WorkflowDef, node: WorkflowTask, skipped: set[str]) -> list[WorkflowTask]:
    """Jump over definition nodes that were skipped (their SKIPPED task stands in)."""
    if node.taskReferenceName not in skipped:
        return [node]
    out: list[WorkflowTask] = []
    for nxt in next_nodes(defn, node):
        out.extend(_skip_skipped(defn, nxt, skipped))
    return out


def _failure_reason(t: Task, wf_status: WorkflowStatus, reason: str | None) -> str:
    return f"Task {t.taskId} failed with status: {wf_status.value} and reason: '{reason}'"
