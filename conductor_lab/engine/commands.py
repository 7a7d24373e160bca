"""Control verbs as state transitions: the decider's siblings (contract section 7).

Each verb reads a workflow (never mutates it), checks conductor-oss's preconditions (raising the
same errors: 409, 404, 500 IllegalState, 400) and returns a ``Decision`` the executor applies like
any decider pass: workflow attribute changes, task updates, tasks removed or created. The
executor then runs the decider (a full pass) so the flow goes on from the new state. Like
``decide()`` they are pure: no clock (``now`` is passed in), no ids of their own, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conductor_lab.engine.decide import Decision, collect
from conductor_lab.engine.model import (
    EMPTY,
    Task,
    TaskStatus,
    Workflow,
    WorkflowDef,
    WorkflowStatus,
)
from conductor_lab.engine.tasks import type_of
from conductor_lab.engine.tasks.base import Definitions, ScheduleContext, index_of
from conductor_lab.errors import Conflict, IllegalState, InvalidInput, NotFound

#: task statuses a retry gives a new attempt (the last attempt of each reference name)
RETRIABLE = (
    TaskStatus.FAILED,
    TaskStatus.FAILED_WITH_TERMINAL_ERROR,
    TaskStatus.TIMED_OUT,
    TaskStatus.CANCELED,
)


def _name(wf: Workflow) -> str:
    """``WorkflowModel.toShortString()``."""
    return f"{wf.definition.name}.{wf.definition.version}/{wf.workflowId}"


def _full_name(wf: Workflow) -> str:
    """``WorkflowModel.toString()``: the short form and the status."""
    return f"{_name(wf)}.{wf.status.value}"


def _reopens_in_place(t: Task) -> bool:
    """Containers (FORK, JOIN, EXCLUSIVE_JOIN, DO_WHILE) are reopened, not attempted again."""
    tt = type_of(t.node.type)
    return tt.reevaluate and tt.kind == "sync" and tt.built_in


def _reopen(t: Task) -> dict[str, Any]:
    return {
        "status": TaskStatus.IN_PROGRESS,
        "retryCount": t.retryCount + 1,
        "executed": False,
        "endTime": 0,
        "reasonForIncompletion": None,
    }


def _running(now: int, **extra: Any) -> dict[str, Any]:
    """Workflow attributes of a workflow brought back to RUNNING."""
    return {
        "status": WorkflowStatus.RUNNING,
        "reasonForIncompletion": None,
        "failedReferenceTaskNames": None,
        "failedTaskNames": None,
        "endTime": 0,
        **extra,
    }


# --------------------------------------------------------------------------------------------
# pause / resume


def pause(wf: Workflow) -> Decision | None:
    """PAUSED: nothing new is scheduled; running tasks finish. ``None``: already paused."""
    if wf.status.terminal:
        raise Conflict(f"Workflow {_name(wf)} has ended, status cannot be updated.")
    if wf.status == WorkflowStatus.PAUSED:
        return None
    return Decision(workflow_changes={"status": WorkflowStatus.PAUSED})


def resume(wf: Workflow, now: int) -> Decision:
    """RUNNING again; the workflow-timeout clock restarts (``lastRetriedTime``)."""
    if wf.status != WorkflowStatus.PAUSED:
        raise IllegalState(
            f"The workflow {wf.workflowId} is not PAUSED so cannot resume. Current status is {wf.status.value}"
        )
    return Decision(workflow_changes={"status": WorkflowStatus.RUNNING, "lastRetriedTime": now})


# --------------------------------------------------------------------------------------------
# retry


def retry(
    wf: Workflow, now: int, *, new_id: Callable[[], str], defs: Definitions | None = None
) -> Decision:
    """A new attempt of every failed, timed-out or cancelled task (the last attempt of each
    reference name; the retry budget of the TaskDef does not apply); containers reopen in place."""
    if not wf.status.terminal:
        raise NotFound(f"Workflow is still running.  status={wf.status.value}")
    if not wf.tasks:
        raise Conflict("Workflow has not started yet")
    d = Decision()
    if not _retry_tasks(wf, d, _context(wf, now, new_id, defs)) and wf.status != WorkflowStatus.TIMED_OUT:
        raise Conflict("There are no retryable tasks! Use restart if you want to attempt entire workflow execution again.")
    d.workflow_changes = _running(now, lastRetriedTime=now)
    return d


def resume_parent(
    parent: Workflow, task: Task, now: int, *, new_id: Callable[[], str], defs: Definitions | None = None
) -> Decision:
    """The parent of a sub-workflow that runs again: its SUB_WORKFLOW ``task`` is reopened (same
    child), and a finished parent runs again with its other failed tasks retried."""
    d = Decision()
    d.updates.append((task, {**_reopen(task), "retryCount": task.retryCount}))
    if parent.status.terminal:
        _retry_tasks(parent, d, _context(parent, now, new_id, defs), keep=task)
        d.workflow_changes = _running(now, lastRetriedTime=now)
    return d


def _retry_tasks(wf: Workflow, d: Decision, ctx: ScheduleContext, keep: Task | None = None) -> bool:
    """Add to ``d`` a new attempt of (or reopen) the last attempt of each reference name that
    failed, timed out or was cancelled; ``keep`` is left alone. Whether anything was retried."""
    last: dict[str, Task] = {}
    for t in wf.tasks:  # in seq order: later attempts win
        if not t.retried:
            last[t.referenceTaskName] = t
    retried = False
    for t in last.values():
        if t is keep or t.status not in RETRIABLE:
            continue
        retried = True
        if _reopens_in_place(t):
            d.updates.append((t, _reopen(t)))
            continue
        d.updates.append((t, {"retried": True, "executed": True}))
        d.schedule.append(_new_attempt(t, ctx))
    collect(d, ctx)
    return retried


def _context(wf: Workflow, now: int, new_id: Callable[[], str], defs: Definitions | None) -> ScheduleContext:
    return ScheduleContext(wf, now, new_id, index_of(wf, lambda tt: type_of(tt).reevaluate), type_of, defs)


def _new_attempt(t: Task, ctx: ScheduleContext) -> Task:
    scheduled = ctx.schedule(t.node, t.iteration)
    new = scheduled[0]
    new.retryCount = t.retryCount + 1
    new.retriedTaskId = t.taskId
    new.referenceTaskName = t.referenceTaskName
    new.iteration = t.iteration
    return new


# --------------------------------------------------------------------------------------------
# restart / rerun


def restart(wf: Workflow, now: int, definition: tuple[str, WorkflowDef] | None = None) -> Decision:
    """Start over with the same id, input, correlation id, variables and domains: every task is
    deleted. ``definition``: (snapshot id, snapshot) to run instead (``useLatestDefinitions``)."""
    if not wf.status.terminal:
        raise Conflict(f"Workflow: {_full_name(wf)} is not in terminal state, unable to restart.")
    restarted_with = definition[1] if definition else wf.definition
    if not restarted_with.restartable and wf.status == WorkflowStatus.COMPLETED:
        shown = f"{restarted_with.name}.{restarted_with.version}/{wf.workflowId}.{wf.status.value}"
        raise NotFound(f"Workflow: {shown} is non-restartable")  # toString() after setWorkflowDefinition
    changes = _running(now, output=EMPTY, createTime=now, lastRetriedTime=0, updateTime=now)
    changes["variables"] = _initial_variables(definition[1] if definition else wf.definition)
    if definition is not None:
        changes["snapshotId"], changes["definition"] = definition
    return Decision(remove=list(wf.tasks), workflow_changes=changes)


def _initial_variables(defn: WorkflowDef) -> dict[str, Any]:
    return dict(defn.variables) if defn.variables else EMPTY


def rerun(
    wf: Workflow,
    now: int,
    *,
    task_id: str | None,
    workflow_input: dict[str, Any] | None,
    task_input: dict[str, Any] | None,
    correlation_id: str | None,
) -> Decision:
    """Run again from the start or from one task (its later tasks deleted, it reset in place)."""
    if not wf.status.terminal:
        raise Conflict(f"Workflow: {_full_name(wf)} is not in terminal state, unable to rerun.")
    changes = _running(now)
    if workflow_input is not None:
        changes["input"] = workflow_input
    if correlation_id is not None:
        changes["correlationId"] = correlation_id
    if task_id is None:
        changes.update(output=EMPTY, lastRetriedTime=0, variables=_initial_variables(wf.definition))
        return Decision(remove=list(wf.tasks), workflow_changes=changes)
    target = next((t for t in wf.tasks if t.taskId == task_id), None)
    if target is None:
        raise InvalidInput(f"Task {task_id} not found")
    changes["lastRetriedTime"] = now
    d = Decision(workflow_changes=changes)
    d.remove = [t for t in wf.tasks if t.seq > target.seq]
    tt = type_of(target.node.type)
    reset: dict[str, Any] = {
        # as newly scheduled: worker tasks are queued again, system tasks run again
        "status": TaskStatus.SCHEDULED if tt.kind == "worker" else tt.initial_status,
        "outputData": EMPTY,
        "reasonForIncompletion": None,
        "retried": False,
        "executed": False,
        "pollCount": 0,
        "scheduledTime": now,
        "startTime": 0,
        "endTime": 0,
        "callbackAfterSeconds": 0,
        "workerId": None,
        "subWorkflowId": None,
    }
    if task_input is not None:
        reset["inputData"] = task_input
    d.updates.append((target, reset))
    for t in wf.tasks:  # earlier unsuccessful tasks are reopened
        if t.seq < target.seq and t.status.terminal and not t.status.successful and not t.retried:
            if _reopens_in_place(t):
                d.updates.append((t, _reopen(t)))
    return d


# --------------------------------------------------------------------------------------------
# skip, reset callbacks


def skip(
    wf: Workflow,
    ref: str,
    now: int,
    *,
    new_id: Callable[[], str],
    task_input: dict[str, Any] | None = None,
    task_output: dict[str, Any] | None = None,
) -> Decision:
    """A SKIPPED task for a node not reached yet: the flow jumps over it when it gets there."""
    if wf.status != WorkflowStatus.RUNNING:
        raise IllegalState(f"The workflow {wf.workflowId} is not running so the task referenced by {ref} cannot be skipped")
    node = wf.definition.node(ref)
    if node is None:
        raise IllegalState(f"The task referenced by {ref} does not exist in the WorkflowDefinition {wf.definition.name}")
    if any(t.referenceTaskName == ref for t in wf.tasks):
        raise IllegalState(f"The task referenced {ref} has already been processed, cannot be skipped")
    t = Task(new_id(), node, wf, node.name or node.type, TaskStatus.SKIPPED)
    t.scheduledTime = t.startTime = t.endTime = t.updateTime = now
    t.inputData = task_input or EMPTY
    t.outputData = task_output or EMPTY
    return Decision(schedule=[t])


def reset_callbacks(wf: Workflow) -> Decision:
    """Worker tasks waiting out a ``callbackAfterSeconds`` become pollable now."""
    if wf.status.terminal:
        raise Conflict(f"Workflow is in terminal state. Status = {wf.status.value}")
    d = Decision()
    for t in wf.tasks:
        if (
            t.status == TaskStatus.SCHEDULED
            and t.callbackAfterSeconds > 0
            and type_of(t.node.type).kind == "worker"
        ):
            d.updates.append((t, {"callbackAfterSeconds": 0}))
    return d
