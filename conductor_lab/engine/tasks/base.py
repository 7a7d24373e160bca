"""The contract between the decider and the task-type modules.

This module is a leaf: it imports the model and the expression engine only, and both the
decider (``engine/decide.py``) and every type module (``engine/tasks/*.py``) import it; neither
imports the other. It holds:

``TaskType``
    the protocol every type module implements (as one instance of a subclass): how a
    definition node becomes runtime tasks (``schedule``), how a scheduled task advances
    (``execute``, for system tasks; ``run`` for work off the event loop), whether it is looked at
    again on later decider passes (``reevaluate`` + ``watches``: JOIN, DO_WHILE, WAIT), where the
    flow goes when it ends (``proceeds``, ``after_branch``), whether it ends the workflow
    (``finishes``), how it is cancelled and how its definition node is validated.
``Outcome`` and the effects
    what ``execute``/``run`` return: a new status, output, variables, iteration, tasks to
    schedule or remove, and effects the executor carries out (start a workflow, publish an
    event, wake the workflow at T, run ``run()`` off the loop).
``ScheduleContext``
    what a module may use while deciding: the workflow (read-only), the clock value, injected
    ids, evaluated inputs, definitions, and scheduling of other nodes.
``WorkflowIndex``
    lookups over a workflow's tasks (latest attempt per reference name, open tasks, open
    containers) that keep one task update's cost independent of the workflow's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from conductor_lab.engine import params
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

Kind = Literal["worker", "sync", "async"]
Routing = Literal["next", "stop", "self"]

#: a workflow keeps its index between decider passes once it has this many tasks; smaller
#: workflows build a throw-away index per pass (cheaper than holding one per parked workflow)
INDEX_KEEP_THRESHOLD = 32

MAX_REASON = 500


class TerminateWorkflow(Exception):
    """Raised while deciding when the workflow cannot go on (it ends FAILED with the message)."""


# --------------------------------------------------------------------------------------------
# Outcomes and effects


@dataclass(slots=True)
class StartWorkflow:
    """Effect: start a workflow (SUB_WORKFLOW with a parent link, START_WORKFLOW without)."""

    workflow_id: str
    request: dict[str, Any]  # StartWorkflowRequest JSON (name, version, input, workflowDef, ...)
    parent_task: Task | None  # set for sub-workflows: the child reports back to this task


@dataclass(slots=True)
class Publish:
    """Effect: publish one message to an event queue (EVENT task)."""

    queue: str
    message_id: str
    payload: dict[str, Any]


Effect = StartWorkflow | Publish


@dataclass(slots=True)
class WorkflowEnd:
    """A task that ends its workflow (TERMINATE): status, reason and output."""

    status: WorkflowStatus
    reason: str | None
    output: dict[str, Any] | None  # None: evaluate the definition's outputParameters


@dataclass(slots=True)
class Outcome:
    """How a system task advanced. ``status=None`` keeps the status (output/iteration may change)."""

    status: TaskStatus | None = None
    output: dict[str, Any] | None = None
    reason: str | None = None
    variables: dict[str, Any] | None = None  # keys put into workflow.variables
    input: dict[str, Any] | None = None  # replaces inputData (SWITCH records its case)
    iteration: int | None = None  # DO_WHILE's current iteration
    schedule: list[Task] = field(default_factory=list)  # new tasks (DO_WHILE's next iteration)
    remove: list[Task] = field(default_factory=list)  # tasks deleted from the execution (keepLastN)
    effects: list[Effect] = field(default_factory=list)
    wake_at: int | None = None  # decide the workflow again at this time (epoch ms)
    run_async: bool = False  # the executor calls the type's ``run()`` off the decider
    sub_workflow_id: str | None = None

    @property
    def changed(self) -> bool:
        return bool(
            self.status is not None
            or self.output is not None
            or self.reason is not None
            or self.variables
            or self.input is not None
            or self.iteration is not None
            or self.schedule
            or self.remove
            or self.effects
            or self.run_async
            or self.sub_workflow_id is not None
        )

    def changes(self, task: Task, now: int) -> dict[str, Any]:
        """The attribute changes this outcome makes to ``task``."""
        out: dict[str, Any] = {}
        if self.status is not None and self.status != task.status:
            out["status"] = self.status
            if self.status.terminal:
                out["endTime"] = now
            if task.startTime == 0:
                out["startTime"] = now
        if self.output is not None:
            out["outputData"] = self.output
        if self.reason is not None:
            out["reasonForIncompletion"] = self.reason[:MAX_REASON]
        if self.input is not None:
            out["inputData"] = self.input
        if self.iteration is not None:
            out["iteration"] = self.iteration
        if self.sub_workflow_id is not None:
            out["subWorkflowId"] = self.sub_workflow_id
        return out


# --------------------------------------------------------------------------------------------
# The task-type protocol


class Services(Protocol):
    """What a type's ``run`` / ``cancel`` may use (the executor provides it)."""

    http: Any  # conductor_lab.engine.httpcall.HttpCaller

    async def in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run blocking work (scripts) on a worker thread."""
        ...

    def terminate_child(self, workflow_id: str, reason: str) -> None:
        """End a running workflow TERMINATED (the sub-workflow of a cancelled task)."""
        ...


class Definitions(Protocol):
    """Registered definitions the decider may read (sub-workflows, dynamic fork branches)."""

    def find_workflow_def(self, name: str, version: int | None) -> WorkflowDef | None:
        """The registered definition (latest version when ``version`` is None), else None."""
        ...

    def find_task_def(self, name: str) -> TaskDef | None:
        """The registered task definition, else None."""
        ...


class TaskType:
    """One Conductor task type. Subclass it in one module and add the instance to ``REGISTRY``.

    ``kind``: ``worker`` (queued for external workers), ``sync`` (advanced by the decider in
    the same pass) or ``async`` (``run()`` is awaited off the decider; HTTP).
    """

    TYPE: ClassVar[str] = ""
    #: aliases handled by the same module (DECISION for SWITCH, ...)
    ALIASES: ClassVar[tuple[str, ...]] = ()
    kind: ClassVar[Kind] = "sync"
    #: operators are never retried (SWITCH, FORK, JOIN, DO_WHILE, ...)
    built_in: ClassVar[bool] = False
    #: ``execute`` runs again on later passes while the task is open (when it ``watches`` a
    #: changed task, and on every full pass): JOIN, DO_WHILE, WAIT
    reevaluate: ClassVar[bool] = False
    #: for containers: where the flow goes after the last task of a nested list
    #: ("next": the node after the container; "stop": nowhere, a JOIN waits; "self": back to
    #: the container, which re-evaluates)
    after_branch: ClassVar[Routing] = "next"
    #: the status of the one task the default ``schedule`` creates
    initial_status: ClassVar[TaskStatus] = TaskStatus.IN_PROGRESS

    def validate(self, node: WorkflowTask) -> list[str]:
        """Messages for a malformed definition node (registration answers 400 with them)."""
        return []

    def schedule(self, node: WorkflowTask, ctx: ScheduleContext, iteration: int) -> list[Task]:
        """The runtime tasks for one node (the mapper half); by default one task of this type,
        ``initial_status``, with the evaluated input."""
        task = ctx.new_task(node, self.TYPE, self.initial_status, iteration)
        task.inputData = ctx.input_for(node, task.taskId)
        return [task]

    def execute(self, task: Task, ctx: ScheduleContext) -> Outcome | None:
        """Advance a scheduled system task; ``None`` means nothing changed."""
        return None

    def watches(self, task: Task, other: Task) -> bool:
        """Whether a change of ``other`` may change this (open, ``reevaluate``) task."""
        return False

    def proceeds(self, task: Task) -> bool:
        """Whether the node after this one is scheduled when the task ends."""
        return True

    def finishes(self, task: Task) -> WorkflowEnd | None:
        """A workflow end caused by this (terminal) task (TERMINATE)."""
        return None

    async def run(self, task: Task, services: Services) -> Outcome:
        """Work off the event loop for tasks whose outcome asked for it (``run_async``)."""
        raise NotImplementedError(f"{self.TYPE} has no asynchronous work")

    def cancel(self, task: Task, workflow: Workflow, services: Services) -> None:
        """The task was cancelled because ``workflow`` ended: undo what it started elsewhere."""


# --------------------------------------------------------------------------------------------
# Definition graph (pure functions of a definition, cached on its immutable snapshot)

Position = tuple[WorkflowTask | None, list[WorkflowTask], int]  # (parent, the list it is in, index)


def positions(defn: WorkflowDef) -> dict[str, Position]:
    """Where every node of a definition sits, by reference name."""
    cached: dict[str, Position] | None = getattr(defn, "_positions", None)
    if cached is not None:
        return cached
    pos: dict[str, Position] = {}

    def walk(lst: list[WorkflowTask], parent: WorkflowTask | None) -> None:
        for i, node in enumerate(lst):
            pos[node.taskReferenceName] = (parent, lst, i)
            for child in node.children():
                walk(child, node)

    walk(defn.tasks, None)
    defn._positions = pos  # type: ignore[attr-defined]
    return pos


def sibling_after(defn: WorkflowDef, node: WorkflowTask) -> WorkflowTask | None:
    """The node right after ``node`` in its own list (a FORK's JOIN)."""
    found = positions(defn).get(node.taskReferenceName)
    if found is None:
        return None
    _, lst, i = found
    return lst[i + 1] if i + 1 < len(lst) else None


def in_loop(defn: WorkflowDef, node: WorkflowTask) -> bool:
    """Whether ``node`` sits (at any depth) inside a DO_WHILE body."""
    pos = positions(defn)
    found = pos.get(node.taskReferenceName)
    while found is not None:
        parent = found[0]
        if parent is None:
            return False
        if parent.type == "DO_WHILE":
            return True
        found = pos.get(parent.taskReferenceName)
    return False


def nested_refs(node: WorkflowTask) -> frozenset[str]:
    """Reference names of every node nested in ``node`` (any depth), cached on the node."""
    cached: frozenset[str] | None = getattr(node, "_nested_refs", None)
    if cached is None:
        out: set[str] = set()
        stack = [n for lst in node.children() for n in lst]
        while stack:
            n = stack.pop()
            out.add(n.taskReferenceName)
            stack.extend(c for lst in n.children() for c in lst)
        cached = frozenset(out)
        node._nested_refs = cached  # type: ignore[attr-defined]
    return cached


# --------------------------------------------------------------------------------------------
# Index over a workflow's tasks


def base_ref(task: Task) -> str:
    """Reference name without a DO_WHILE ``__<iteration>`` suffix."""
    ref = task.referenceTaskName
    if task.iteration > 0 and "__" in ref:
        return ref.rsplit("__", 1)[0]
    return ref


def iteration_ref(ref: str, iteration: int) -> str:
    """The reference name of a loop task in one iteration (``ref__N``)."""
    return f"{ref}__{iteration}" if iteration > 0 else ref


class WorkflowIndex:
    """Lookups over ``wf.tasks`` kept current by appends (tasks are only ever appended; anything
    that removes or rewrites tasks drops the index with ``wf.index = None``)."""

    __slots__ = ("count", "by_ref", "by_base", "first", "open", "containers", "cursors")

    def __init__(self) -> None:
        self.count = 0
        self.by_ref: dict[str, Task] = {}  # full reference name -> latest attempt
        self.by_base: dict[str, Task] = {}  # base reference name -> latest attempt, any iteration
        self.first: dict[str, Task] = {}  # full reference name -> first attempt
        self.open: dict[str, Task] = {}  # not yet handled by the decider (pruned lazily)
        self.containers: dict[str, Task] = {}  # open tasks whose type re-evaluates
        self.cursors: dict[str, int] = {}  # per-JOIN progress through joinOn (transient)

    def sync(self, wf: Workflow, reevaluates: Callable[[str], bool]) -> None:
        tasks = wf.tasks
        for i in range(self.count, len(tasks)):
            t = tasks[i]
            ref = t.referenceTaskName
            self.by_ref[ref] = t
            self.by_base[base_ref(t)] = t
            self.first.setdefault(ref, t)
            if not (t.executed or t.retried or t.status == TaskStatus.SKIPPED):
                self.open[t.taskId] = t
                if not t.status.terminal and reevaluates(t.node.type):
                    self.containers[t.taskId] = t
        self.count = len(tasks)

    def open_tasks(self) -> list[Task]:
        """Tasks the decider has not handled yet (executed/retried ones are dropped here)."""
        stale = [tid for tid, t in self.open.items() if t.executed or t.retried]
        for tid in stale:
            del self.open[tid]
        return list(self.open.values())

    def open_containers(self) -> list[Task]:
        stale = [tid for tid, t in self.containers.items() if t.status.terminal or t.retried]
        for tid in stale:
            del self.containers[tid]
        return list(self.containers.values())

    def any_open(self, handled: set[str]) -> bool:
        """Whether any task still needs the decider, besides the ``handled`` ones (amortised:
        tasks found handled are dropped, so each is looked at once)."""
        stale: list[str] = []
        found = False
        for tid, t in self.open.items():
            if t.executed or t.retried:
                stale.append(tid)
            elif tid not in handled:
                found = True
                break
        for tid in stale:
            del self.open[tid]
        return found


def index_of(wf: Workflow, reevaluates: Callable[[str], bool]) -> WorkflowIndex:
    idx: WorkflowIndex | None = wf.index
    if idx is None:
        idx = WorkflowIndex()
        idx.sync(wf, reevaluates)
        if len(wf.tasks) >= INDEX_KEEP_THRESHOLD:
            wf.index = idx
    else:
        idx.sync(wf, reevaluates)
    return idx


# --------------------------------------------------------------------------------------------
# Evaluation document for ${...} expressions


class EvalDoc(Mapping[str, Any]):
    """The document expressions read (contract 5.2), built lazily per reference name."""

    __slots__ = ("_wf", "_idx", "_cache")

    def __init__(self, wf: Workflow, idx: WorkflowIndex) -> None:
        self._wf = wf
        self._idx = idx
        self._cache: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key in self._cache:
            return self._cache[key]
        if key == "workflow":
            value = workflow_doc(self._wf)
        else:
            t = self._idx.by_base.get(key) or self._idx.by_ref.get(key)
            if t is None:
                raise KeyError(key)
            value = task_doc(t)
        self._cache[key] = value
        return value

    def seed(self, key: str, value: dict[str, Any]) -> None:
        self._cache[key] = value

    def forget(self, key: str) -> None:
        self._cache.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key == "workflow" or key in self._idx.by_base or key in self._idx.by_ref

    def __iter__(self) -> Iterator[str]:
        yield "workflow"
        yield from self._idx.by_base

    def __len__(self) -> int:
        return 1 + len(self._idx.by_base)


def workflow_doc(wf: Workflow) -> dict[str, Any]:
    return {
        "input": wf.input,
        "output": wf.output,
        "status": wf.status._value_,  # the plain str (``.value`` is a slow Enum property)
        "workflowId": wf.workflowId,
        "parentWorkflowId": wf.parentWorkflowId,
        "parentWorkflowTaskId": wf.parentWorkflowTaskId,
        "workflowType": wf.definition.name,
        "version": wf.definition.version,
        "correlationId": wf.correlationId,
        "reasonForIncompletion": wf.reasonForIncompletion,
        "schemaVersion": 2,
        "variables": wf.variables,
        "taskToDomain": wf.taskToDomain or {},
    }


def task_doc(t: Task) -> dict[str, Any]:
    return {
        "input": t.inputData,
        "output": t.outputData,
        "taskType": t.taskType,
        "status": t.status._value_,
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
        "subWorkflowId": t.subWorkflowId,
    }


# --------------------------------------------------------------------------------------------
# Scheduling context handed to task modules


class ScheduleContext:
    """What a task module may use while deciding: never the store, the queue or the clock."""

    def __init__(
        self,
        wf: Workflow,
        now: int,
        new_id: Callable[[], str],
        idx: WorkflowIndex,
        type_of: Callable[[str], TaskType],
        defs: Definitions | None = None,
    ) -> None:
        self.wf = wf
        self.now = now
        self.new_id = new_id
        self.idx = idx
        self.type_of = type_of
        self.defs = defs
        self._doc: EvalDoc | None = None
        #: set by the decider before re-evaluating containers: the tasks changed since the
        #: previous pass (``None`` on a full pass)
        self.changed: list[Task] | None = None
        #: filled by ``schedule`` for the decider: effects, async work and wakes of tasks that
        #: advanced while being scheduled, and variables they set
        self.effects: list[tuple[Task, Effect]] = []
        self.run_async: list[Task] = []
        self.variables: dict[str, Any] = {}
        self.wake_at: int | None = None

    # -- reading -------------------------------------------------------------------------------

    @property
    def doc(self) -> EvalDoc:
        if self._doc is None:
            self._doc = EvalDoc(self.wf, self.idx)
        return self._doc

    def see(self, task: Task, **changes: Any) -> None:
        """Let expressions see ``task`` with ``changes`` (e.g. a new output) before they are applied."""
        self.doc.seed(task.referenceTaskName, {**task_doc(task), **changes})

    def forget(self, ref: str) -> None:
        """Drop the cached expression view of one task (back to its record)."""
        if self._doc is not None:
            self._doc.forget(ref)

    def task(self, ref: str) -> Task | None:
        """The latest attempt of the task with this full reference name (``ref__N`` in loops)."""
        return self.idx.by_ref.get(ref)

    def latest(self, base: str) -> Task | None:
        """The latest attempt of a base reference name, any iteration."""
        return self.idx.by_base.get(base)

    def workflow_def(self, name: str, version: int | None) -> WorkflowDef | None:
        """A registered definition (latest version when ``version`` is None)."""
        return self.defs.find_workflow_def(name, version) if self.defs is not None else None

    def registered_task_def(self, name: str | None) -> TaskDef | None:
        return self.defs.find_task_def(name) if self.defs is not None and name else None

    def variables_now(self) -> dict[str, Any]:
        """Workflow variables including the ones set earlier in this pass."""
        if self.variables:
            return {**self.wf.variables, **self.variables}
        return self.wf.variables

    def evaluate(self, template: Any, task_id: str | None = None) -> Any:
        """``${...}`` expressions in ``template`` over this workflow."""
        if not params.has_expressions(template):
            return template
        return params.evaluate(template, self.doc, task_id=task_id)

    # -- creating tasks --------------------------------------------------------------------

    def new_task(self, node: WorkflowTask, task_type: str, status: TaskStatus, iteration: int = 0) -> Task:
        t = Task(self.new_id(), node, self.wf, task_type, status)
        t.scheduledTime = self.now
        t.updateTime = self.now
        if iteration:
            t.iteration = iteration
            t.referenceTaskName = iteration_ref(node.taskReferenceName, iteration)
        if status.terminal or status == TaskStatus.IN_PROGRESS:
            t.startTime = self.now
        if status.terminal:
            t.endTime = self.now
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

    def schedule(self, node: WorkflowTask, iteration: int = 0) -> list[Task]:
        """The runtime tasks for one node; system tasks that can advance at once do so here."""
        tt = self.type_of(node.type)
        tasks = tt.schedule(node, self, iteration)
        if tt.kind == "worker" or tt.reevaluate:
            return tasks
        for t in tasks:
            # nested nodes a container scheduled through this method advanced there already
            if t.node is not node or t.status.terminal:
                continue
            outcome = tt.execute(t, self)
            if outcome is not None:
                self.absorb(t, outcome)
        return tasks

    def absorb(self, t: Task, outcome: Outcome) -> None:
        """Apply an outcome to a task created in this pass (not yet part of the workflow)."""
        for k, v in outcome.changes(t, self.now).items():
            setattr(t, k, v)
        if outcome.variables:
            self.variables.update(outcome.variables)
        for e in outcome.effects:
            self.effects.append((t, e))
        if outcome.run_async:
            self.run_async.append(t)
        if outcome.wake_at is not None:
            self.wake(outcome.wake_at)

    def wake(self, at: int) -> None:
        if self.wake_at is None or at < self.wake_at:
            self.wake_at = at


def reason(text: str) -> str:
    return text[:MAX_REASON]
