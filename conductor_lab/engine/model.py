"""Conductor's data model with its JSON field names.

Blueprints (``TaskDef``, ``WorkflowDef``, ``WorkflowTask``) are parsed from and written back to
Conductor JSON with conductor-oss's defaults; unknown-but-valid fields are kept in ``extra`` and
written back unchanged. Runtime records (``Task``, ``Workflow``) use ``__slots__``: a server holds
up to a million running workflows in memory, so their footprint is kept small.

Status enums carry conductor-oss's ``terminal`` / ``successful`` / ``retriable`` flags; the engine
asks the flags and never lists status names.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any, ClassVar

from conductor_lab.errors import MalformedBody

# --------------------------------------------------------------------------------------------
# Status enums


class TaskStatus(str, Enum):
    """Task.Status with conductor-oss's (terminal, successful, retriable) flags."""

    terminal: bool
    successful: bool
    retriable: bool

    def __new__(cls, value: str, terminal: bool, successful: bool, retriable: bool) -> TaskStatus:
        obj = str.__new__(cls, value)
        obj._value_ = value
        obj.terminal = terminal
        obj.successful = successful
        obj.retriable = retriable
        return obj

    IN_PROGRESS = ("IN_PROGRESS", False, True, True)
    CANCELED = ("CANCELED", True, False, False)
    FAILED = ("FAILED", True, False, True)
    FAILED_WITH_TERMINAL_ERROR = ("FAILED_WITH_TERMINAL_ERROR", True, False, False)
    COMPLETED = ("COMPLETED", True, True, True)
    COMPLETED_WITH_ERRORS = ("COMPLETED_WITH_ERRORS", True, True, True)
    SCHEDULED = ("SCHEDULED", False, True, True)
    TIMED_OUT = ("TIMED_OUT", True, False, True)
    SKIPPED = ("SKIPPED", True, True, False)

    def __str__(self) -> str:
        return self.value

    @classmethod
    def of(cls, value: str) -> TaskStatus:
        """The member named ``value`` (ValueError if none)."""
        try:
            return _TASK_STATUSES[value]
        except (KeyError, TypeError):  # the Enum's own lookup raises its ValueError
            return cls(value)  # type: ignore[call-arg]


class WorkflowStatus(str, Enum):
    """Workflow.WorkflowStatus with conductor-oss's (terminal, successful) flags."""

    terminal: bool
    successful: bool

    def __new__(cls, value: str, terminal: bool, successful: bool) -> WorkflowStatus:
        obj = str.__new__(cls, value)
        obj._value_ = value
        obj.terminal = terminal
        obj.successful = successful
        return obj

    RUNNING = ("RUNNING", False, False)
    COMPLETED = ("COMPLETED", True, True)
    FAILED = ("FAILED", True, False)
    TIMED_OUT = ("TIMED_OUT", True, False)
    TERMINATED = ("TERMINATED", True, False)
    PAUSED = ("PAUSED", False, True)

    def __str__(self) -> str:
        return self.value

    @classmethod
    def of(cls, value: str) -> WorkflowStatus:
        """The member named ``value`` (ValueError if none)."""
        try:
            return _WORKFLOW_STATUSES[value]
        except (KeyError, TypeError):  # the Enum's own lookup raises its ValueError
            return cls(value)  # type: ignore[call-arg]


#: value -> member, for ``of`` (a dict lookup; calling the Enum class goes through its metaclass)
_TASK_STATUSES: dict[str, TaskStatus] = {s._value_: s for s in TaskStatus}
_WORKFLOW_STATUSES: dict[str, WorkflowStatus] = {s._value_: s for s in WorkflowStatus}


#: Task statuses a worker may report in a TaskResult.
RESULT_STATUSES = frozenset(
    {
        TaskStatus.IN_PROGRESS,
        TaskStatus.FAILED,
        TaskStatus.FAILED_WITH_TERMINAL_ERROR,
        TaskStatus.COMPLETED,
        TaskStatus.CANCELED,
    }
)

RESULT_STATUS_NAMES = frozenset(s.value for s in RESULT_STATUSES)

TIMEOUT_POLICIES = ("RETRY", "TIME_OUT_WF", "ALERT_ONLY")
WORKFLOW_TIMEOUT_POLICIES = ("TIME_OUT_WF", "ALERT_ONLY")
RETRY_LOGICS = ("FIXED", "LINEAR_BACKOFF", "EXPONENTIAL_BACKOFF")


# --------------------------------------------------------------------------------------------
# Field coercion (Jackson-like: numeric strings become ints, wrong shapes are errors)


def _where(owner: str, name: str) -> str:
    return f"{owner}[\"{name}\"]"


def _integral(v: Any, owner: str, name: str, java: str, bits: int) -> int:
    if isinstance(v, bool):
        raise MalformedBody(f"Cannot deserialize value of type `{java}` from Boolean value at {_where(owner, name)}")
    out: int | None = None
    if isinstance(v, int):
        out = v
    elif isinstance(v, float) and v.is_integer():
        out = int(v)
    elif isinstance(v, str):
        try:
            out = int(v.strip())
        except ValueError:
            pass
    if out is None:
        raise MalformedBody(
            f"Cannot deserialize value of type `{java}` from {type(v).__name__} {v!r} at {_where(owner, name)}"
        )
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if not low <= out <= high:  # Jackson: "Numeric value (...) out of range of int"
        raise MalformedBody(
            f"Numeric value ({v}) out of range of {java} ({low} - {high}) at {_where(owner, name)}"
        )
    return out


def _int(v: Any, owner: str, name: str) -> int:
    """A Java ``int`` field."""
    return _integral(v, owner, name, "int", 32)


def _long(v: Any, owner: str, name: str) -> int:
    """A Java ``long`` field (epoch-ms times)."""
    return _integral(v, owner, name, "long", 64)


def _bool(v: Any, owner: str, name: str) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    if isinstance(v, int):
        return v != 0
    raise MalformedBody(f"Cannot deserialize value of type `boolean` from {v!r} at {_where(owner, name)}")


def _str(v: Any, owner: str, name: str) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool | int | float):
        return str(v).lower() if isinstance(v, bool) else str(v)
    raise MalformedBody(f"Cannot deserialize value of type `String` from {type(v).__name__} at {_where(owner, name)}")


def _map(v: Any, owner: str, name: str) -> dict[str, Any]:
    if isinstance(v, dict):
        return v
    raise MalformedBody(f"Cannot deserialize value of type `Map` from {type(v).__name__} at {_where(owner, name)}")


def _list(v: Any, owner: str, name: str) -> list[Any]:
    if isinstance(v, list):
        return v
    raise MalformedBody(f"Cannot deserialize value of type `List` from {type(v).__name__} at {_where(owner, name)}")


def _enum(choices: tuple[str, ...], java: str) -> Callable[[Any, str, str], str]:
    """A Java enum field; ``java`` is the enum's class name, as Jackson's message shows it."""

    def coerce(v: Any, owner: str, name: str) -> str:
        if isinstance(v, str) and v in choices:
            return v
        shown = f'String "{v}"' if isinstance(v, str) else f"{_json_kind(v)} value"
        raise MalformedBody(
            f"Cannot deserialize value of type `{java}` from {shown}: not one of the values accepted for Enum "
            f"class: [{', '.join(choices)}] at {_where(owner, name)}"
        )

    return coerce


def _json_kind(v: Any) -> str:
    return {dict: "Object", list: "Array", bool: "Boolean"}.get(type(v), "Number")


_TASKS = "com.netflix.conductor.common.metadata.tasks"
_WORKFLOW = "com.netflix.conductor.common.metadata.workflow"


def _any(v: Any, owner: str, name: str) -> Any:
    return v


_MISSING = object()

#: coercions that return a value of exactly this type unchanged (``parse`` skips the call)
_Coerce = Callable[[Any, str, str], Any]
_IDENTITY_TYPES: dict[_Coerce, type] = {_str: str, _map: dict, _list: list, _bool: bool}


def _copier(default: Any) -> Callable[[Any], Any] | None:
    """How ``parse`` copies a field's default for each instance: dicts and lists are not shared."""
    if default.__class__ is dict:
        return dict.copy
    if default.__class__ is list:
        return list.copy
    if isinstance(default, dict | list):
        return copy.copy
    return None


class _EmptyMap(dict[str, Any]):
    """The shared, immutable empty map of runtime records (saves a dict per record).

    Runtime maps (inputs, outputs, variables) are replaced, never changed in place; this one
    raises if anything tries.
    """

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("EMPTY is shared and immutable: assign a new dict instead")

    __setitem__ = __delitem__ = update = setdefault = pop = popitem = clear = __ior__ = _refuse  # type: ignore[assignment]

    def __copy__(self) -> dict[str, Any]:
        return {}

    def __deepcopy__(self, memo: Any) -> dict[str, Any]:
        return {}


EMPTY: dict[str, Any] = _EmptyMap()


class Bean:
    """A JSON object with known fields (defaults, coercion) and preserved unknown ones.

    Subclasses declare ``FIELDS`` as ``(json name, default, coerce)``; a default that is a dict or
    list is copied per instance. Attributes use the JSON names (Conductor's vocabulary).
    """

    FIELDS: ClassVar[tuple[tuple[str, Any, Callable[[Any, str, str], Any]], ...]] = ()
    _NAMES: ClassVar[frozenset[str]] = frozenset()
    #: ``FIELDS`` prepared for ``parse``: (name, default, coerce, the type ``coerce`` returns as it
    #: is (no call needed), how to copy the default (None: shared))
    _PLAN: ClassVar[tuple[tuple[str, Any, _Coerce, type, Callable[[Any], Any] | None], ...]] = ()
    extra: dict[str, Any]

    def __init_subclass__(cls) -> None:
        cls._NAMES = frozenset(f[0] for f in cls.FIELDS)
        cls._PLAN = tuple(
            (name, default, coerce, _IDENTITY_TYPES.get(coerce, type(None)), _copier(default))
            for name, default, coerce in cls.FIELDS
        )

    @classmethod
    def parse(cls, data: Any) -> Any:
        if isinstance(data, cls):
            return data
        if not isinstance(data, dict):
            raise MalformedBody(f"Cannot deserialize {cls.__name__} from {type(data).__name__}")
        obj = cls.__new__(cls)
        owner = cls.__name__
        get = data.get
        for name, default, coerce, exact, fresh in cls._PLAN:
            v = get(name, _MISSING)
            if v is _MISSING or v is None:
                v = default if fresh is None else fresh(default)
            elif v.__class__ is not exact:  # a value of exactly that type is returned as it is
                v = coerce(v, owner, name)
            setattr(obj, name, v)
        names = cls._NAMES
        obj.extra = {k: v for k, v in data.items() if k not in names}
        obj._post_parse()
        return obj

    def _post_parse(self) -> None:
        """Hook for nested parsing."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, _default, _coerce in self.FIELDS:
            v = getattr(self, name)
            if v is None:
                continue
            out[name] = _dump(v)
        for k, v in self.extra.items():
            out.setdefault(k, v)
        return out



def _dump(v: Any) -> Any:
    if isinstance(v, Bean):
        return v.to_json()
    if isinstance(v, list):
        return [_dump(x) for x in v]
    if isinstance(v, dict):
        return {k: _dump(x) for k, x in v.items()}
    return v


# --------------------------------------------------------------------------------------------
# Blueprints


class TaskDef(Bean):
    """A task definition (``/api/metadata/taskdefs``)."""

    name: str
    retryCount: int
    retryLogic: str
    retryDelaySeconds: int
    backoffScaleFactor: int
    maxRetryDelaySeconds: int
    backoffJitterMs: int
    timeoutSeconds: int
    timeoutPolicy: str
    responseTimeoutSeconds: int
    pollTimeoutSeconds: int | None
    totalTimeoutSeconds: int
    concurrentExecLimit: int | None
    rateLimitPerFrequency: int
    rateLimitFrequencyInSeconds: int
    inputTemplate: dict[str, Any]
    createTime: int
    updateTime: int
    createdBy: str | None

    FIELDS = (
        ("name", None, _str),
        ("description", None, _str),
        ("retryCount", 3, _int),
        ("timeoutSeconds", 0, _long),
        ("inputKeys", [], _list),
        ("outputKeys", [], _list),
        ("timeoutPolicy", "TIME_OUT_WF", _enum(TIMEOUT_POLICIES, f"{_TASKS}.TaskDef$TimeoutPolicy")),
        ("retryLogic", "FIXED", _enum(RETRY_LOGICS, f"{_TASKS}.TaskDef$RetryLogic")),
        ("retryDelaySeconds", 60, _int),
        ("responseTimeoutSeconds", 3600, _long),
        ("concurrentExecLimit", None, _int),
        ("inputTemplate", {}, _map),
        ("rateLimitPerFrequency", 0, _int),
        ("rateLimitFrequencyInSeconds", 1, _int),
        ("isolationGroupId", None, _str),
        ("executionNameSpace", None, _str),
        ("ownerEmail", None, _str),
        ("pollTimeoutSeconds", None, _int),
        ("backoffScaleFactor", 1, _int),
        ("baseType", None, _str),
        ("totalTimeoutSeconds", 0, _long),
        ("maxRetryDelaySeconds", 0, _int),
        ("backoffJitterMs", 0, _int),
        ("inputSchema", None, _map),
        ("outputSchema", None, _map),
        ("enforceSchema", False, _bool),
        ("runtimeMetadata", None, _list),
        ("taskStatusListenerEnabled", None, _bool),
        ("ownerApp", None, _str),
        ("createTime", 0, _long),
        ("updateTime", 0, _long),
        ("createdBy", None, _str),
        ("updatedBy", None, _str),
    )

    def _post_parse(self) -> None:
        # The SDK sometimes sends snake_case keys inside embedded definitions.
        if "enforce_schema" in self.extra and isinstance(self.extra["enforce_schema"], bool):
            self.enforceSchema = self.extra.pop("enforce_schema")

    @classmethod
    def adhoc(cls, name: str, *, simple: bool) -> TaskDef:
        """conductor-oss's synthesized definition for a task with no registered TaskDef."""
        td = cls.parse({"name": name})
        if not simple:
            td.retryCount = 0
            td.responseTimeoutSeconds = 0
        td.extra = {}
        return td


class WorkflowTask(Bean):
    """A node of a workflow definition."""

    name: str
    taskReferenceName: str
    type: str
    inputParameters: dict[str, Any]
    optional: bool
    permissive: bool
    retryCount: int | None
    startDelay: int
    asyncComplete: bool
    taskDefinition: TaskDef | None
    decisionCases: dict[str, list[WorkflowTask]]
    defaultCase: list[WorkflowTask]
    forkTasks: list[list[WorkflowTask]]
    loopOver: list[WorkflowTask]
    joinOn: list[str]
    subWorkflowParam: dict[str, Any] | None
    sink: str | None
    caseValueParam: str | None
    caseExpression: str | None
    evaluatorType: str | None
    expression: str | None
    dynamicTaskNameParam: str | None
    loopCondition: str | None
    #: created at run time (dynamic fork branches): persisted with its task, not in a snapshot
    runtime: bool = False

    FIELDS = (
        ("name", None, _str),
        ("taskReferenceName", None, _str),
        ("description", None, _str),
        ("inputParameters", {}, _map),
        ("type", "SIMPLE", _str),
        ("dynamicTaskNameParam", None, _str),
        ("caseValueParam", None, _str),
        ("caseExpression", None, _str),
        ("scriptExpression", None, _str),
        ("decisionCases", {}, _map),
        ("dynamicForkJoinTasksParam", None, _str),
        ("dynamicForkTasksParam", None, _str),
        ("dynamicForkTasksInputParamName", None, _str),
        ("defaultCase", [], _list),
        ("forkTasks", [], _list),
        ("startDelay", 0, _int),
        ("subWorkflowParam", None, _map),
        ("joinOn", [], _list),
        ("joinMode", None, _str),
        ("sink", None, _str),
        ("optional", False, _bool),
        ("taskDefinition", None, _map),
        ("rateLimited", None, _bool),
        ("defaultExclusiveJoinTask", [], _list),
        ("asyncComplete", False, _bool),
        ("loopCondition", None, _str),
        ("loopOver", [], _list),
        ("items", None, _any),
        ("retryCount", None, _int),
        ("evaluatorType", None, _str),
        ("expression", None, _str),
        ("onStateChange", {}, _map),
        ("joinStatus", None, _str),
        ("cacheConfig", None, _map),
        ("permissive", False, _bool),
        ("metadata", None, _map),
    )

    def _post_parse(self) -> None:
        if self.taskDefinition is not None:
            self.taskDefinition = TaskDef.parse(self.taskDefinition)
        if self.decisionCases:
            self.decisionCases = {
                str(k): [WorkflowTask.parse(t) for t in _list(v, "decisionCases", str(k))]
                for k, v in self.decisionCases.items()
            }
        if self.defaultCase:
            self.defaultCase = [WorkflowTask.parse(t) for t in self.defaultCase]
        if self.forkTasks:
            self.forkTasks = [
                [WorkflowTask.parse(t) for t in _list(branch, "WorkflowTask", "forkTasks")]
                for branch in self.forkTasks
            ]
        if self.loopOver:
            self.loopOver = [WorkflowTask.parse(t) for t in self.loopOver]
        if self.type == "":
            self.type = "SIMPLE"

    def children(self) -> list[list[WorkflowTask]]:
        """Every nested task list (branches, fork lanes, loop body)."""
        lists: list[list[WorkflowTask]] = list(self.decisionCases.values())
        if self.defaultCase:
            lists.append(self.defaultCase)
        lists.extend(self.forkTasks)
        if self.loopOver:
            lists.append(self.loopOver)
        return lists


class WorkflowDef(Bean):
    """A workflow definition (blueprint)."""

    name: str
    version: int
    tasks: list[WorkflowTask]
    outputParameters: dict[str, Any]
    failureWorkflow: str | None
    schemaVersion: int
    restartable: bool
    timeoutPolicy: str
    timeoutSeconds: int
    variables: dict[str, Any]
    inputTemplate: dict[str, Any]
    createTime: int | None
    updateTime: int | None

    FIELDS = (
        ("name", None, _str),
        ("description", None, _str),
        ("version", 1, _int),
        ("tasks", [], _list),
        ("inputParameters", [], _list),
        ("outputParameters", {}, _map),
        ("failureWorkflow", None, _str),
        ("failureWorkflowVersion", None, _int),
        ("schemaVersion", 2, _int),
        ("restartable", True, _bool),
        ("workflowStatusListenerEnabled", False, _bool),
        ("workflowStatusListenerSink", None, _str),
        ("ownerEmail", None, _str),
        ("timeoutPolicy", "ALERT_ONLY", _enum(WORKFLOW_TIMEOUT_POLICIES, f"{_WORKFLOW}.WorkflowDef$TimeoutPolicy")),
        ("timeoutSeconds", 0, _long),
        ("variables", {}, _map),
        ("inputTemplate", {}, _map),
        ("rateLimitConfig", None, _map),
        ("inputSchema", None, _map),
        ("outputSchema", None, _map),
        ("enforceSchema", True, _bool),
        ("metadata", {}, _map),
        ("cacheConfig", None, _map),
        ("maskedFields", [], _list),
        ("ownerApp", None, _str),
        ("createTime", None, _long),
        ("updateTime", None, _long),
        ("createdBy", None, _str),
        ("updatedBy", None, _str),
    )

    def _post_parse(self) -> None:
        self.tasks = [WorkflowTask.parse(t) for t in self.tasks]
        self._index: dict[str, WorkflowTask] | None = None

    @property
    def key(self) -> str:
        return f"{self.name}.{self.version}"

    def all_tasks(self) -> Iterable[WorkflowTask]:
        """Every node, nested ones included, depth first in definition order."""
        stack: list[WorkflowTask] = list(reversed(self.tasks))
        while stack:
            node = stack.pop()
            yield node
            for lst in reversed(node.children()):
                stack.extend(reversed(lst))

    def node(self, ref: str) -> WorkflowTask | None:
        """The node with that taskReferenceName (index built once)."""
        if self._index is None:
            self._index = {n.taskReferenceName: n for n in self.all_tasks()}
        return self._index.get(ref)


def summary(wd: WorkflowDef) -> dict[str, Any]:
    """WorkflowDefSummary JSON."""
    out: dict[str, Any] = {"name": wd.name, "version": wd.version}
    if wd.createTime is not None:
        out["createTime"] = wd.createTime
    if wd.updateTime is not None:
        out["updateTime"] = wd.updateTime
    return out


# --------------------------------------------------------------------------------------------
# Runtime records


class Task:
    """A runtime task (one attempt of one node)."""

    __slots__ = (
        "taskId",
        "taskType",
        "status",
        "inputData",
        "outputData",
        "referenceTaskName",
        "taskDefName",
        "workflowInstanceId",
        "workflowType",
        "correlationId",
        "workflowPriority",
        "retryCount",
        "retriedTaskId",
        "retried",
        "executed",
        "seq",
        "pollCount",
        "scheduledTime",
        "startTime",
        "endTime",
        "updateTime",
        "startDelayInSeconds",
        "callbackAfterSeconds",
        "responseTimeoutSeconds",
        "reasonForIncompletion",
        "workerId",
        "domain",
        "iteration",
        "subWorkflowId",
        "parentTaskId",
        "rateLimitPerFrequency",
        "rateLimitFrequencyInSeconds",
        "firstStartTime",
        "extra",
        "node",
    )

    taskId: str
    taskType: str
    status: TaskStatus
    inputData: dict[str, Any]
    outputData: dict[str, Any]
    referenceTaskName: str
    taskDefName: str
    workflowInstanceId: str
    workflowType: str
    correlationId: str | None
    workflowPriority: int
    retryCount: int
    retriedTaskId: str | None
    retried: bool
    executed: bool
    seq: int
    pollCount: int
    scheduledTime: int
    startTime: int
    endTime: int
    updateTime: int
    startDelayInSeconds: int
    callbackAfterSeconds: int
    responseTimeoutSeconds: int
    reasonForIncompletion: str | None
    workerId: str | None
    domain: str | None
    iteration: int
    subWorkflowId: str | None
    parentTaskId: str | None
    rateLimitPerFrequency: int
    rateLimitFrequencyInSeconds: int
    firstStartTime: int
    extra: dict[str, Any] | None
    node: WorkflowTask

    def __init__(self, task_id: str, node: WorkflowTask, wf: Workflow, task_type: str, status: TaskStatus) -> None:
        self.taskId = task_id
        self.node = node
        self.taskType = task_type
        self.status = status
        self.inputData = EMPTY
        self.outputData = EMPTY
        self.referenceTaskName = node.taskReferenceName
        self.taskDefName = node.name or task_type
        self.workflowInstanceId = wf.workflowId
        self.workflowType = wf.definition.name
        self.correlationId = wf.correlationId
        self.workflowPriority = wf.priority
        self.retryCount = 0
        self.retriedTaskId = None
        self.retried = False
        self.executed = False
        self.seq = 0
        self.pollCount = 0
        self.scheduledTime = 0
        self.startTime = 0
        self.endTime = 0
        self.updateTime = 0
        self.startDelayInSeconds = 0
        self.callbackAfterSeconds = 0
        self.responseTimeoutSeconds = 0
        self.reasonForIncompletion = None
        self.workerId = None
        self.domain = None
        self.iteration = 0
        self.subWorkflowId = None
        self.parentTaskId = None
        self.rateLimitPerFrequency = 0
        self.rateLimitFrequencyInSeconds = 1
        self.firstStartTime = 0
        self.extra = None

    # Fields persisted and served; order = Conductor's Task JSON.
    SCALARS: ClassVar[tuple[str, ...]] = (
        "taskType",
        "status",
        "referenceTaskName",
        "retryCount",
        "seq",
        "correlationId",
        "pollCount",
        "taskDefName",
        "scheduledTime",
        "startTime",
        "endTime",
        "updateTime",
        "startDelayInSeconds",
        "retriedTaskId",
        "retried",
        "executed",
        "callbackFromWorker",
        "responseTimeoutSeconds",
        "workflowInstanceId",
        "workflowType",
        "taskId",
        "reasonForIncompletion",
        "callbackAfterSeconds",
        "workerId",
        "domain",
        "rateLimitPerFrequency",
        "rateLimitFrequencyInSeconds",
        "workflowPriority",
        "iteration",
        "subWorkflowId",
        "parentTaskId",
        "firstStartTime",
    )

    #: always true (conductor-oss's field); a class constant (read with the scalars)
    callbackFromWorker: ClassVar[bool] = True

    def state_json(self) -> dict[str, Any]:
        """The task's own state (no ``workflowTask``): what the store persists.

        Built on every commit of a task and every answer carrying it (~4 times per worker task):
        the non-None scalars in ``SCALARS`` order, ``status`` as its value, come from straight-line
        code generated from ``SCALARS`` (``_scalars_reader``)."""
        out = _task_scalars(self)
        out["inputData"] = self.inputData
        out["outputData"] = self.outputData
        if self.extra:
            for k, v in self.extra.items():
                out.setdefault(k, v)
        if self.node.runtime:  # its definition node exists nowhere else: keep it with the task
            out["workflowTask"] = node_json_cached(self.node)
        return out

    def to_json(self) -> dict[str, Any]:
        """Conductor's Task JSON, computed fields included."""
        out = self.state_json()
        node_json = node_json_cached(self.node)
        out["workflowTask"] = node_json
        out["queueWaitTime"] = max(0, self.startTime - self.scheduledTime) if self.startTime else 0
        out["loopOverTask"] = self.iteration > 0
        td = node_json.get("taskDefinition")
        if td is not None:
            out["taskDefinition"] = td
        return out

    @classmethod
    def from_state(cls, data: dict[str, Any], node: WorkflowTask) -> Task:
        """Rebuild from ``state_json`` (restart recovery: once per stored task)."""
        t = cls.__new__(cls)
        t.node = node
        _task_loader(t, data)
        t.status = TaskStatus.of(t.status)
        t.inputData = data.get("inputData") or EMPTY
        t.outputData = data.get("outputData") or EMPTY
        # the keys no attribute holds, kept to be written back (a C-level subset test first)
        t.extra = None if data.keys() <= _TASK_KNOWN else {k: v for k, v in data.items() if k not in _TASK_KNOWN} or None
        return t


def _scalars_reader(
    names: tuple[str, ...], enum: str, label: str = "record"
) -> Callable[[Any], dict[str, Any]]:
    """A function ``(record) -> {name: value}`` for the attributes ``names`` that are not None, in
    that order, the ``enum`` attribute as its value (``.value`` is a slow Enum property).

    Generated as straight-line code (one attribute read and one None test per name, as
    ``dataclasses`` generates its methods): 2-2.5x faster than a comprehension over the names
    (~1.2 against ~3 us for a Task), on the path of every commit of a task or workflow."""
    lines = ["def read_scalars(record):", "    out = {}"]
    for name in names:
        if not name.isidentifier():
            raise ValueError(f"not an attribute name: {name!r}")
        value = "v._value_ if isinstance(v, Enum) else v" if name == enum else "v"
        lines += [f"    v = record.{name}", "    if v is not None:", f"        out[{name!r}] = {value}"]
    lines.append("    return out")
    namespace: dict[str, Any] = {"Enum": Enum}
    # the code is built from the names above only; profiles show it as "<Task scalars>"
    exec(compile("\n".join(lines), f"<{label} scalars>", "exec"), namespace)
    reader: Callable[[Any], dict[str, Any]] = namespace["read_scalars"]
    return reader


_task_scalars = _scalars_reader(Task.SCALARS, "status", "Task")

_TASK_DEFAULTS: dict[str, Any] = {
    "retryCount": 0,
    "retried": False,
    "executed": False,
    "seq": 0,
    "pollCount": 0,
    "scheduledTime": 0,
    "startTime": 0,
    "endTime": 0,
    "updateTime": 0,
    "startDelayInSeconds": 0,
    "callbackAfterSeconds": 0,
    "responseTimeoutSeconds": 0,
    "workflowPriority": 0,
    "iteration": 0,
    "rateLimitPerFrequency": 0,
    "rateLimitFrequencyInSeconds": 1,
    "firstStartTime": 0,
}


def _scalars_loader(
    names: tuple[str, ...],
    label: str,
    *,
    defaults: dict[str, Any] | None = None,
    or_zero: tuple[str, ...] = (),
    interned: tuple[str, ...] = (),
) -> Callable[[Any, dict[str, Any]], None]:
    """A function ``(record, data) -> None`` that sets each attribute in ``names`` from ``data``:
    ``data.get(name, defaults[name])`` (the default only for a missing key), ``or 0`` for the names
    in ``or_zero``, and strings ``sys.intern``ed for the names in ``interned`` (a million recovered
    tasks share one copy of each type's strings).

    The counterpart of ``_scalars_reader``, generated the same way: straight-line code, 2-3x faster
    than ``setattr`` in a loop over the names, on the path of every record restart recovery loads."""
    defaults = defaults or {}
    lines = ["def load_scalars(record, data):", "    get = data.get"]
    for name in names:
        if not name.isidentifier():
            raise ValueError(f"not an attribute name: {name!r}")
        value = f"get({name!r}, {defaults[name]!r})" if name in defaults else f"get({name!r})"
        if name in or_zero:
            value += " or 0"
        if name in interned:
            lines += [f"    v = {value}", f"    record.{name} = intern(v) if v.__class__ is str else v"]
        else:
            lines.append(f"    record.{name} = {value}")
    namespace: dict[str, Any] = {"intern": sys.intern}
    # the code is built from the names and the defaults' reprs (ints and bools) only
    exec(compile("\n".join(lines), f"<{label} loader>", "exec"), namespace)
    loader: Callable[[Any, dict[str, Any]], None] = namespace["load_scalars"]
    return loader


_task_loader = _scalars_loader(
    tuple(n for n in Task.SCALARS if n != "callbackFromWorker"),  # a class constant, not stored per task
    "Task",
    defaults=_TASK_DEFAULTS,
    interned=("taskType", "taskDefName", "workflowType", "referenceTaskName"),
)
#: the keys of a stored task that attributes hold (the rest goes to ``extra``)
_TASK_KNOWN = frozenset(Task.SCALARS) | {"inputData", "outputData", "workflowTask"}


def node_json_cached(node: WorkflowTask) -> dict[str, Any]:
    """A node's JSON, computed once per (immutable) snapshot node."""
    cached: dict[str, Any] | None = getattr(node, "_json", None)
    if cached is None:
        cached = node.to_json()
        node._json = cached  # type: ignore[attr-defined]
    return cached


class Workflow:
    """A running or finished workflow execution."""

    __slots__ = (
        "workflowId",
        "status",
        "input",
        "output",
        "variables",
        "tasks",
        "correlationId",
        "priority",
        "parentWorkflowId",
        "parentWorkflowTaskId",
        "reRunFromWorkflowId",
        "reasonForIncompletion",
        "event",
        "taskToDomain",
        "failedReferenceTaskNames",
        "failedTaskNames",
        "definition",
        "snapshotId",
        "lastRetriedTime",
        "createTime",
        "updateTime",
        "endTime",
        "createdBy",
        "ownerApp",
        "extra",
        "index",
    )

    workflowId: str
    status: WorkflowStatus
    input: dict[str, Any]
    output: dict[str, Any]
    variables: dict[str, Any]
    tasks: list[Task]
    correlationId: str | None
    priority: int
    parentWorkflowId: str | None
    parentWorkflowTaskId: str | None
    reRunFromWorkflowId: str | None
    reasonForIncompletion: str | None
    event: str | None
    taskToDomain: dict[str, str] | None
    failedReferenceTaskNames: list[str] | None
    failedTaskNames: list[str] | None
    definition: WorkflowDef
    snapshotId: str
    lastRetriedTime: int
    createTime: int
    updateTime: int
    endTime: int
    createdBy: str | None
    ownerApp: str | None
    extra: dict[str, Any] | None
    index: Any  # engine.tasks.base.WorkflowIndex for large workflows (derived, not persisted)

    def __init__(self, workflow_id: str, definition: WorkflowDef, snapshot_id: str, now: int) -> None:
        self.workflowId = workflow_id
        self.status = WorkflowStatus.RUNNING
        self.input = EMPTY
        self.output = EMPTY
        self.variables = copy.deepcopy(definition.variables) if definition.variables else EMPTY
        self.tasks = []
        self.correlationId = None
        self.priority = 0
        self.parentWorkflowId = None
        self.parentWorkflowTaskId = None
        self.reRunFromWorkflowId = None
        self.reasonForIncompletion = None
        self.event = None
        self.taskToDomain = None
        self.failedReferenceTaskNames = None
        self.failedTaskNames = None
        self.definition = definition
        self.snapshotId = snapshot_id
        self.lastRetriedTime = 0
        self.createTime = now
        self.updateTime = now
        self.endTime = 0
        self.createdBy = None
        self.ownerApp = None
        self.extra = None
        self.index = None

    SCALARS: ClassVar[tuple[str, ...]] = (
        "workflowId",
        "status",
        "correlationId",
        "priority",
        "parentWorkflowId",
        "parentWorkflowTaskId",
        "reRunFromWorkflowId",
        "reasonForIncompletion",
        "event",
        "lastRetriedTime",
        "createTime",
        "updateTime",
        "endTime",
        "createdBy",
        "ownerApp",
    )

    def state_json(self) -> dict[str, Any]:
        """The workflow's own state without tasks and definition: what the store persists.

        The scalars as in ``Task.state_json``."""
        out = _workflow_scalars(self)
        out["input"] = self.input
        out["output"] = self.output
        out["variables"] = self.variables
        out["taskToDomain"] = self.taskToDomain or {}
        out["failedReferenceTaskNames"] = self.failedReferenceTaskNames or []
        out["failedTaskNames"] = self.failedTaskNames or []
        out["workflowName"] = self.definition.name
        out["workflowVersion"] = self.definition.version
        if self.extra:
            for k, v in self.extra.items():
                out.setdefault(k, v)
        return out

    def to_json(self, *, include_tasks: bool = True, definition_json: dict[str, Any] | None = None) -> dict[str, Any]:
        """Conductor's Workflow JSON."""
        out = self.state_json()
        out["tasks"] = [t.to_json() for t in self.tasks] if include_tasks else []
        out["workflowDefinition"] = definition_json if definition_json is not None else self.definition.to_json()
        out["startTime"] = self.createTime
        out["history"] = []
        out["rateLimited"] = False
        return out

    @classmethod
    def from_state(cls, data: dict[str, Any], definition: WorkflowDef, snapshot_id: str) -> Workflow:
        """Rebuild from ``state_json`` (restart recovery: once per running workflow)."""
        wf = cls.__new__(cls)
        _workflow_loader(wf, data)
        wf.status = WorkflowStatus.of(wf.status)
        wf.input = data.get("input") or EMPTY
        wf.output = data.get("output") or EMPTY
        wf.variables = data.get("variables") or EMPTY
        wf.taskToDomain = data.get("taskToDomain") or None
        wf.failedReferenceTaskNames = data.get("failedReferenceTaskNames") or None
        wf.failedTaskNames = data.get("failedTaskNames") or None
        wf.definition = definition
        wf.snapshotId = snapshot_id
        wf.tasks = []
        wf.index = None
        wf.extra = (
            None if data.keys() <= _WORKFLOW_KNOWN else {k: v for k, v in data.items() if k not in _WORKFLOW_KNOWN} or None
        )
        return wf


_workflow_scalars = _scalars_reader(Workflow.SCALARS, "status", "Workflow")
_workflow_loader = _scalars_loader(
    Workflow.SCALARS, "Workflow", or_zero=("priority", "lastRetriedTime", "createTime", "updateTime", "endTime")
)
#: the keys of a stored workflow that attributes hold or ``state_json`` derives (the rest: ``extra``)
_WORKFLOW_KNOWN = frozenset(Workflow.SCALARS) | {
    "input",
    "output",
    "variables",
    "taskToDomain",
    "failedReferenceTaskNames",
    "failedTaskNames",
    "workflowName",
    "workflowVersion",
}


# --------------------------------------------------------------------------------------------
# Requests


class TaskResult(Bean):
    """Body of ``POST /api/tasks`` and ``/api/tasks/update-v2``."""

    workflowInstanceId: str | None
    taskId: str | None
    status: str | None
    outputData: dict[str, Any] | None
    reasonForIncompletion: str | None
    callbackAfterSeconds: int
    workerId: str | None
    logs: list[Any]
    extendLease: bool
    subWorkflowId: str | None

    FIELDS = (
        ("workflowInstanceId", None, _str),
        ("taskId", None, _str),
        ("reasonForIncompletion", None, _str),
        ("callbackAfterSeconds", 0, _long),
        ("workerId", None, _str),
        ("status", None, _enum(tuple(s.value for s in TaskStatus if s in RESULT_STATUSES), f"{_TASKS}.TaskResult$Status")),
        ("outputData", None, _map),
        ("logs", [], _list),
        ("externalOutputPayloadStoragePath", None, _str),
        ("subWorkflowId", None, _str),
        ("extendLease", False, _bool),
        ("executionMetadata", None, _map),
    )


class RerunWorkflowRequest(Bean):
    """Body of ``POST /api/workflow/{id}/rerun``."""

    reRunFromWorkflowId: str | None
    workflowInput: dict[str, Any] | None
    reRunFromTaskId: str | None
    taskInput: dict[str, Any] | None
    correlationId: str | None

    FIELDS = (
        ("reRunFromWorkflowId", None, _str),
        ("workflowInput", None, _map),
        ("reRunFromTaskId", None, _str),
        ("taskInput", None, _map),
        ("correlationId", None, _str),
    )


class StartWorkflowRequest(Bean):
    """Body of ``POST /api/workflow``."""

    name: str | None
    version: int | None
    correlationId: str | None
    input: dict[str, Any] | None
    taskToDomain: dict[str, str]
    workflowDef: dict[str, Any] | None
    priority: int

    FIELDS = (
        ("name", None, _str),
        ("version", None, _int),
        ("correlationId", None, _str),
        ("input", {}, _map),
        ("taskToDomain", {}, _map),
        ("workflowDef", None, _map),
        ("externalInputPayloadStoragePath", None, _str),
        ("priority", 0, _int),
        ("createdBy", None, _str),
        ("idempotencyKey", None, _str),
        ("idempotencyStrategy", None, _str),
    )


def task_exec_log(log: str, task_id: str, created_time: int) -> dict[str, Any]:
    """TaskExecLog JSON."""
    return {"log": log, "taskId": task_id, "createdTime": created_time}


def poll_data(queue_name: str, domain: str | None, worker_id: str | None, last_poll_time: int) -> dict[str, Any]:
    """PollData JSON."""
    out: dict[str, Any] = {"queueName": queue_name}
    if domain:
        out["domain"] = domain
    if worker_id:
        out["workerId"] = worker_id
    out["lastPollTime"] = last_poll_time
    return out


# --------------------------------------------------------------------------------------------
# Event handlers (``/api/event``; contract §3.10, §10)

#: ``EventHandler.Action.Type`` (conductor-oss's snake_case names).
EVENT_ACTIONS = (
    "start_workflow",
    "complete_task",
    "fail_task",
    "terminate_workflow",
    "update_workflow_variables",
    "start_agent",
)

#: ``EventExecution.Status``.
EVENT_EXECUTION_STATUSES = ("IN_PROGRESS", "COMPLETED", "FAILED", "SKIPPED")


class StartWorkflow(Bean):
    """``EventHandler.StartWorkflow``: the parameters of a ``start_workflow`` action."""

    name: str | None
    version: int | None
    correlationId: str | None
    input: dict[str, Any]
    taskToDomain: dict[str, Any] | None

    FIELDS = (
        ("name", None, _str),
        ("version", None, _int),
        ("correlationId", None, _str),
        ("input", {}, _map),
        ("taskToDomain", None, _map),
    )


class TaskDetails(Bean):
    """``EventHandler.TaskDetails``: the parameters of a ``complete_task`` / ``fail_task`` action."""

    workflowId: str | None
    taskRefName: str | None
    output: dict[str, Any]
    taskId: str | None
    reasonForIncompletion: str | None

    FIELDS = (
        ("workflowId", None, _str),
        ("taskRefName", None, _str),
        ("output", {}, _map),
        ("taskId", None, _str),
        ("reasonForIncompletion", None, _str),
    )


class EventAction(Bean):
    """``EventHandler.Action``: what a handler does with a matching message.

    The parameters of the actions conductor_lab does not execute (``terminate_workflow``,
    ``update_workflow_variables``, ``start_agent``) are kept as plain maps.
    """

    action: str | None
    start_workflow: StartWorkflow | None
    complete_task: TaskDetails | None
    fail_task: TaskDetails | None
    expandInlineJSON: bool

    FIELDS = (
        ("action", None, _enum(EVENT_ACTIONS, "com.netflix.conductor.common.metadata.events.EventHandler$Action$Type")),
        ("start_workflow", None, _map),
        ("complete_task", None, _map),
        ("fail_task", None, _map),
        ("expandInlineJSON", False, _bool),
        ("terminate_workflow", None, _map),
        ("update_workflow_variables", None, _map),
        ("start_agent", None, _map),
    )

    def _post_parse(self) -> None:
        if self.start_workflow is not None:
            self.start_workflow = StartWorkflow.parse(self.start_workflow)
        if self.complete_task is not None:
            self.complete_task = TaskDetails.parse(self.complete_task)
        if self.fail_task is not None:
            self.fail_task = TaskDetails.parse(self.fail_task)


class EventHandler(Bean):
    """An event handler (``/api/event``): on a message for ``event``, if ``condition``, run ``actions``.

    ``active`` defaults to false, as in conductor-oss: an inactive handler is never triggered.
    """

    name: str | None
    event: str | None
    condition: str | None
    actions: list[EventAction]
    active: bool
    evaluatorType: str | None

    FIELDS = (
        ("name", None, _str),
        ("event", None, _str),
        ("condition", None, _str),
        ("actions", [], _list),
        ("active", False, _bool),
        ("evaluatorType", None, _str),
    )

    def _post_parse(self) -> None:
        self.actions = [EventAction.parse(a) for a in self.actions]
