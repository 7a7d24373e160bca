"""Build Conductor workflow definitions in Python; the only product is plain Conductor JSON.

::

    from conductor_lab.builder import simple, switch, inline, workflow, ref_output, wf_input

    wf = workflow(
        "orders",
        simple("fetch", input={"url": wf_input("url")})
        >> switch("route", ref_output("fetch", "kind"), {
               "big": simple("review"),
               "small": inline("price", "$.n * 2", input={"n": ref_output("fetch", "n")}),
           })
        >> simple("notify"),
    )
    wf.to_dict()      # a WorkflowDef dict, ready for POST /api/metadata/workflow
    wf.task_defs()    # default TaskDef dicts for the SIMPLE tasks (fetch, review, notify)

Every builder returns a :class:`Task` (one WorkflowTask node; ``fork`` and ``fork_dynamic`` also
emit the JOIN that must follow them); ``a >> b`` chains tasks into a :class:`Seq`, and a plain list
is accepted wherever a Seq is. Nothing here talks to a server or knows the engine: what a user
reads in ``to_dict()`` is exactly what they would write for conductor-oss, so it carries over.

Mistakes fail when the builder is called (or when ``workflow()`` assembles the tree), with a
:class:`BuilderError` naming the task: a duplicate ``taskReferenceName``, an empty switch or fork
lane, a ``${ref...}`` naming no task, a value that is not JSON. Options that are WorkflowTask
fields (``optional``, ``retryCount``, ``startDelay``, ...) may be given in Conductor's camelCase or
in snake_case (``retry_count=2``). Refs only need to be given where they must be unique by
construction: ``simple("fetch")`` uses ``fetch`` as its ref, ``fetch_2`` for the second one, ...
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeAlias

__all__ = [
    "BuilderError",
    "Seq",
    "Task",
    "Workflow",
    "dynamic",
    "event",
    "fork",
    "fork_dynamic",
    "http",
    "human",
    "inline",
    "jq",
    "loop",
    "noop",
    "ref_input",
    "ref_output",
    "set_variable",
    "simple",
    "start_workflow",
    "sub_workflow",
    "switch",
    "task",
    "terminate",
    "wait",
    "wf_input",
    "wf_var",
    "workflow",
]

JsonDict = dict[str, Any]

#: the ``ownerEmail`` written into workflow and task definitions unless told otherwise (conductor-oss
#: servers configured with ``ownerEmailMandatory`` refuse definitions without one)
DEFAULT_OWNER_EMAIL = "lab@example.com"

#: every WorkflowTask field of conductor-oss (contract 3.3), in Conductor's spelling
WORKFLOW_TASK_FIELDS = frozenset(
    {
        "name", "taskReferenceName", "description", "type", "inputParameters", "optional",
        "permissive", "retryCount", "startDelay", "asyncComplete", "taskDefinition", "rateLimited",
        "dynamicTaskNameParam", "caseValueParam", "caseExpression", "evaluatorType", "expression",
        "decisionCases", "defaultCase", "forkTasks", "joinOn", "joinMode", "joinStatus",
        "defaultExclusiveJoinTask", "dynamicForkTasksParam", "dynamicForkTasksInputParamName",
        "dynamicForkJoinTasksParam", "subWorkflowParam", "loopCondition", "loopOver", "items", "sink",
        "scriptExpression", "cacheConfig", "onStateChange", "metadata",
    }
)  # fmt: skip

#: the fields any typed builder accepts as options (the others are what the builder itself writes)
COMMON_OPTIONS = frozenset(
    {
        "name", "description", "optional", "permissive", "retryCount", "startDelay", "asyncComplete",
        "taskDefinition", "rateLimited", "cacheConfig", "onStateChange", "metadata",
    }
)  # fmt: skip

#: TaskDef fields ``Workflow.task_defs(**overrides)`` accepts (contract 3.1)
TASK_DEF_FIELDS = frozenset(
    {
        "description", "retryCount", "retryLogic", "retryDelaySeconds", "backoffScaleFactor",
        "maxRetryDelaySeconds", "backoffJitterMs", "timeoutSeconds", "timeoutPolicy",
        "responseTimeoutSeconds", "pollTimeoutSeconds", "totalTimeoutSeconds", "concurrentExecLimit",
        "rateLimitPerFrequency", "rateLimitFrequencyInSeconds", "inputKeys", "outputKeys",
        "inputTemplate", "isolationGroupId", "executionNameSpace", "ownerEmail", "baseType",
        "runtimeMetadata", "inputSchema", "outputSchema", "enforceSchema", "taskStatusListenerEnabled",
    }
)  # fmt: skip

#: conductor-oss's TaskDef defaults (contract 3.1): a default definition behaves like none at all
TASK_DEF_DEFAULTS: JsonDict = {
    "retryCount": 3,
    "retryLogic": "FIXED",
    "retryDelaySeconds": 60,
    "timeoutSeconds": 0,
    "timeoutPolicy": "TIME_OUT_WF",
    "responseTimeoutSeconds": 3600,
}

#: task lists nested in a WorkflowTask, as (field, shape): a list, a map of lists, a list of lists
_NESTED = (("decisionCases", "map"), ("defaultCase", "list"), ("forkTasks", "lanes"), ("loopOver", "list"))
_HTTP_METHODS = ("GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH")
_TERMINATION_STATUSES = ("COMPLETED", "FAILED", "TERMINATED")
_SWITCH_EVALUATORS = ("value-param", "javascript", "graaljs")
_BAD_REF_CHARS = re.compile(r"[\s.${}\[\]]")
_WHOLE_EXPRESSION = re.compile(r"\$\{[^{}$]+\}")
_EXPRESSION = re.compile(r"\$\{([^}$]*)\}")


class BuilderError(ValueError):
    """A workflow that cannot be built; the message names the task (its ref) and what to change."""


# --------------------------------------------------------------------------------------------
# Small checks (each raises BuilderError with the place it was called from)


def _type_name(value: Any) -> str:
    return type(value).__name__


def _text(value: Any, where: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BuilderError(f"{where}: {what} must be a non-empty string, got {value!r} ({_type_name(value)})")
    return value


def _ref_name(value: Any, where: str, what: str = "ref") -> str:
    ref = _text(value, where, what)
    bad = _BAD_REF_CHARS.search(ref)
    if bad:
        raise BuilderError(
            f"{where}: {what} {ref!r} contains {bad.group()!r}; a taskReferenceName is read back in "
            "${ref.output...} expressions, so use letters, digits, '_' and '-'"
        )
    return ref


def _count(value: Any, where: str, what: str, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise BuilderError(f"{where}: {what} must be an integer >= {minimum}, got {value!r}")
    return value


def _json(value: Any, where: str) -> Any:
    """A JSON-able copy of ``value`` (tuples become lists); anything else is an error naming where."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        out: JsonDict = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise BuilderError(f"{where}: key {k!r} ({_type_name(k)}) must be a string, as JSON keys are")
            out[k] = _json(v, f"{where}.{k}")
        return out
    if isinstance(value, list | tuple):
        return [_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Task | Seq | Workflow):
        raise BuilderError(
            f"{where}: a {_type_name(value)} cannot be a value; refer to a task's result with "
            "ref_output('ref', 'key') or task.output('key')"
        )
    raise BuilderError(f"{where}: {value!r} ({_type_name(value)}) is not a JSON value")


def _input(value: Any, where: str) -> JsonDict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise BuilderError(f"{where}: input must be a dict of inputParameters, got {_type_name(value)}")
    result: JsonDict = _json(value, f"{where} input")
    return result


def _camel(key: str) -> str:
    """``retry_count`` -> ``retryCount``; camelCase keys are kept."""
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _options(opts: Mapping[str, Any], where: str, allowed: frozenset[str], known: frozenset[str]) -> JsonDict:
    """Options given as Conductor field names (camelCase or snake_case), checked and JSON-copied."""
    out: JsonDict = {}
    for key, value in opts.items():
        field = _camel(key)
        if field not in allowed:
            if field in known:
                raise BuilderError(
                    f"{where}: {key} is written by the builder itself; use task(type, ref, ...) "
                    "to write every field by hand"
                )
            near = difflib.get_close_matches(field, sorted(allowed), n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise BuilderError(
                f"{where}: unknown option {key!r}{hint}; options: {', '.join(sorted(allowed))}"
            )
        if field in out:
            raise BuilderError(f"{where}: option {field} given twice")
        out[field] = _json(value, f"{where} {key}")
    for field in ("optional", "permissive", "asyncComplete", "rateLimited"):
        if field in out and not isinstance(out[field], bool):
            raise BuilderError(f"{where}: {field} must be True or False, got {out[field]!r}")
    for field in ("retryCount", "startDelay"):
        if field in out:
            _count(out[field], where, field)
    if "name" in out:
        _text(out["name"], where, "name")
    return out


def _path(segments: Sequence[str | int], where: str) -> str:
    out = ""
    for seg in segments:
        if isinstance(seg, int) and not isinstance(seg, bool):
            out += f"[{seg}]"
        else:
            out += "." + _text(seg, where, "path segment")
    return out


# --------------------------------------------------------------------------------------------
# ${...} helpers


def ref_output(ref: str | Task, *path: str | int) -> str:
    """``ref_output("fetch", "rows")`` -> ``"${fetch.output.rows}"``; ints index lists (``[0]``).

    A :class:`Task` may stand for its ref; a SIMPLE task without an explicit ref stands for its
    name, which is the ref of the *first* task of that name in a workflow."""
    name = ref.ref if isinstance(ref, Task) else _ref_name(ref, "ref_output()")
    return "${" + name + ".output" + _path(path, "ref_output()") + "}"


def ref_input(ref: str | Task, *path: str | int) -> str:
    """``ref_input("fetch", "url")`` -> ``"${fetch.input.url}"`` (the task's evaluated input)."""
    name = ref.ref if isinstance(ref, Task) else _ref_name(ref, "ref_input()")
    return "${" + name + ".input" + _path(path, "ref_input()") + "}"


def wf_input(*path: str | int) -> str:
    """``wf_input("url")`` -> ``"${workflow.input.url}"``; no path: the whole workflow input."""
    return "${workflow.input" + _path(path, "wf_input()") + "}"


def wf_var(*path: str | int) -> str:
    """``wf_var("count")`` -> ``"${workflow.variables.count}"`` (written by SET_VARIABLE tasks)."""
    return "${workflow.variables" + _path(path, "wf_var()") + "}"


# --------------------------------------------------------------------------------------------
# Task and Seq


Chain: TypeAlias = "Task | Seq | Sequence[Task | Seq]"


class Task:
    """One WorkflowTask node (plus the JOIN after a fork), immutable once built.

    ``ref`` is None only for SIMPLE tasks left to the default ref (their name, de-duplicated when
    the workflow is assembled). Nested task lists (switch cases, fork lanes, a loop body) are kept
    as :class:`Seq` objects and turned into JSON together with the rest of the workflow, so refs
    are assigned and checked across the whole tree.
    """

    __slots__ = ("_fields", "_join_ref", "_nested", "_ref", "kind", "name", "type")

    def __init__(
        self,
        type: str,
        name: str,
        ref: str | None,
        fields: JsonDict | None = None,
        *,
        kind: str | None = None,
        nested: Mapping[str, Seq | Mapping[str, Seq] | Sequence[Seq]] | None = None,
        join_ref: str | None = None,
    ) -> None:
        self.type = type
        self.name = name
        self._ref = ref
        self._fields: JsonDict = dict(fields or {})
        self._nested: dict[str, Seq | Mapping[str, Seq] | Sequence[Seq]] = dict(nested or {})
        self._join_ref = join_ref
        #: the builder that made it, for messages ("switch 'route': ...")
        self.kind = kind or type.lower()

    @property
    def ref(self) -> str:
        """The explicit taskReferenceName, or the name for a SIMPLE task given none."""
        return self._ref if self._ref is not None else self.name

    @property
    def explicit_ref(self) -> str | None:
        return self._ref

    @property
    def join_ref(self) -> str | None:
        """The JOIN emitted after a fork (None for other tasks)."""
        return self._join_ref

    @property
    def where(self) -> str:
        return f"{self.kind} {self.ref!r}"

    def output(self, *path: str | int) -> str:
        """``${<ref>.output...}`` for this task (see :func:`ref_output`)."""
        return ref_output(self, *path)

    def with_options(self, **opts: Any) -> Task:
        """A copy with more WorkflowTask options (``optional=True``, ``retry_count=2``, ...)."""
        if self.kind == "task":
            allowed = WORKFLOW_TASK_FIELDS - {"type", "taskReferenceName"}
        elif self.kind == "simple":
            if "name" in opts:
                raise BuilderError(
                    f"{self.where}: a SIMPLE task's name is the task type workers poll; "
                    "build another simple(name, ...) instead"
                )
            allowed = COMMON_OPTIONS - {"name"}
        else:
            allowed = COMMON_OPTIONS
        extra = _options(opts, self.where, allowed, WORKFLOW_TASK_FIELDS)
        if self.type == "TERMINATE" and extra.get("optional"):
            raise BuilderError(f"{self.where}: a TERMINATE task cannot be optional")
        name = extra.pop("name", self.name)
        return Task(
            self.type,
            name,
            self._ref,
            {**self._fields, **extra},
            kind=self.kind,
            nested=self._nested,
            join_ref=self._join_ref,
        )

    def __rshift__(self, other: Chain) -> Seq:
        return Seq((self,)) >> other

    def __rrshift__(self, other: Chain) -> Seq:
        return _as_seq(other, "the left side of >>") >> self

    def __repr__(self) -> str:
        ref = "" if self._ref is None or self._ref == self.name else f", ref={self._ref!r}"
        return f"Task({self.type}, {self.name!r}{ref})"

    # -- assembly ------------------------------------------------------------------------------

    def _children(self) -> Iterator[Seq]:
        for value in self._nested.values():
            if isinstance(value, Seq):
                yield value
            elif isinstance(value, Mapping):
                yield from value.values()
            else:
                yield from value

    def _emit(self, ctx: _Assembly) -> list[JsonDict]:
        ref = ctx.ref_for(self)
        node: JsonDict = {
            "name": self.name,
            "taskReferenceName": ref,
            "type": self.type,
            "inputParameters": {},
        }
        node.update(copy.deepcopy(self._fields))
        for field, value in self._nested.items():
            if isinstance(value, Seq):
                node[field] = ctx.emit(value)
            elif isinstance(value, Mapping):
                node[field] = {case: ctx.emit(seq) for case, seq in value.items()}
            else:
                node[field] = [ctx.emit(lane) for lane in value]
        if self._join_ref is None:
            return [node]
        join_on = [lane[-1]["taskReferenceName"] for lane in node.get("forkTasks", [])]
        join = {
            "name": self._join_ref,
            "taskReferenceName": self._join_ref,
            "type": "JOIN",
            "inputParameters": {},
            "joinOn": join_on,
        }
        return [node, join]


class Seq:
    """Tasks in order (``a >> b >> c``); immutable, ``>>`` returns a new Seq."""

    __slots__ = ("tasks",)

    def __init__(self, tasks: Iterable[Task] = ()) -> None:
        self.tasks: tuple[Task, ...] = tuple(tasks)

    def __rshift__(self, other: Chain) -> Seq:
        return Seq(self.tasks + _as_seq(other, "the right side of >>").tasks)

    def __rrshift__(self, other: Chain) -> Seq:
        return Seq(_as_seq(other, "the left side of >>").tasks + self.tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)

    def __getitem__(self, i: int) -> Task:
        return self.tasks[i]

    def __repr__(self) -> str:
        return "Seq(" + " >> ".join(t.ref for t in self.tasks) + ")"


def _as_seq(value: Any, where: str) -> Seq:
    """A task, a Seq or a (possibly nested) list of them, as one Seq."""
    if isinstance(value, Seq):
        return value
    if isinstance(value, Task):
        return Seq((value,))
    if isinstance(value, list | tuple):
        tasks: list[Task] = []
        for item in value:
            tasks.extend(_as_seq(item, where).tasks)
        return Seq(tasks)
    hint = "; to run a workflow as a task use sub_workflow(ref, wf)" if isinstance(value, Workflow) else ""
    raise BuilderError(
        f"{where}: expected a task, a Seq (a >> b) or a list of tasks, got {_type_name(value)}{hint}"
    )


# --------------------------------------------------------------------------------------------
# Assembly: refs are reserved (explicit ones), then assigned in definition order


class _Assembly:
    def __init__(self, where: str, body: Seq) -> None:
        self.where = where
        self.reserved: dict[str, Task] = {}
        self.used: set[str] = set()
        self._reserve(body)

    def _reserve(self, seq: Seq) -> None:
        for node in seq:
            for ref in (node.explicit_ref, node.join_ref):
                if ref is None:
                    continue
                other = self.reserved.get(ref)
                if other is not None:
                    same = " (the same task object used twice: build a second one)" if other is node else ""
                    raise BuilderError(
                        f"{self.where}: duplicate taskReferenceName {ref!r}: {other.where} and "
                        f"{node.where}{same}; every task in a workflow needs its own ref"
                    )
                self.reserved[ref] = node
            for child in node._children():
                self._reserve(child)

    def ref_for(self, node: Task) -> str:
        if node.explicit_ref is not None:
            return node.explicit_ref
        candidate, n = node.name, 1
        while candidate in self.reserved or candidate in self.used:
            n += 1
            candidate = f"{node.name}_{n}"
        self.used.add(candidate)
        return candidate

    def emit(self, seq: Seq) -> list[JsonDict]:
        out: list[JsonDict] = []
        for node in seq:
            out.extend(node._emit(self))
        return out


def _walk(tasks: Iterable[Any]) -> Iterator[JsonDict]:
    """Every task dict, nested ones included, depth first in definition order."""
    for node in tasks:
        if not isinstance(node, dict):
            continue
        yield node
        for field, shape in _NESTED:
            value = node.get(field)
            if not value:
                continue
            if shape == "map" and isinstance(value, dict):
                for case in value.values():
                    yield from _walk(case or [])
            elif shape == "lanes" and isinstance(value, list):
                for lane in value:
                    yield from _walk(lane or [])
            elif isinstance(value, list):
                yield from _walk(value)


def _expressions(value: Any, key: str) -> Iterator[tuple[str, str]]:
    """(input key, expression) for each ``${...}`` in an input value; ``$${`` is a literal."""
    if isinstance(value, str):
        for expr in _EXPRESSION.findall(value.replace("$${", "")):
            yield key, expr
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _expressions(v, f"{key}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _expressions(v, f"{key}[{i}]")


def _check_references(where: str, tasks: list[JsonDict], output: JsonDict) -> None:
    """Every ``${head...}`` in any task's inputParameters and in the workflow's outputParameters
    names ``workflow``, a task of this workflow, or an environment value (conductor-oss checks only
    top-level tasks at registration; a typo anywhere is caught here)."""
    nodes = list(_walk(tasks))
    refs = {str(n.get("taskReferenceName")) for n in nodes}
    places = [
        (f"task {n.get('taskReferenceName')!r} inputParameters", n.get("inputParameters") or {})
        for n in nodes
    ]
    places.append(("outputParameters", output))
    for place, params in places:
        for key, expr in _expressions(params, ""):
            head = re.split(r"[.\[]", expr.strip(), maxsplit=1)[0]
            if not head or head == "workflow" or head in refs or head in os.environ or head.isupper():
                continue
            near = difflib.get_close_matches(head, sorted(refs), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise BuilderError(
                f"{where}: {place}{key} refers to ${{{expr}}}, but no task has the ref {head!r}{hint} "
                "(pass check_refs=False to workflow() to allow it)"
            )


# --------------------------------------------------------------------------------------------
# Builders


def _system(
    type_: str, kind: str, ref: Any, opts: Mapping[str, Any], fields: JsonDict | None = None, **kw: Any
) -> Task:
    """A system task: ``name`` defaults to the ref (a TaskDef of that name is used if registered)."""
    where = f"{kind} {ref!r}" if isinstance(ref, str) else f"{kind}()"
    ref = _ref_name(ref, where)
    options = _options(opts, where, COMMON_OPTIONS, WORKFLOW_TASK_FIELDS)
    name = options.pop("name", ref)
    return Task(type_, name, ref, {**(fields or {}), **options}, kind=kind, **kw)


def simple(name: str, ref: str | None = None, input: Mapping[str, Any] | None = None, **opts: Any) -> Task:
    """A worker task (SIMPLE): workers polling ``name`` execute it.

    ``ref`` defaults to ``name`` (``name_2``, ``name_3``... when the name occurs again in the
    workflow). ``opts`` are WorkflowTask options: ``optional``, ``retry_count``, ``start_delay``...
    """
    if not isinstance(name, str) or not name.strip():
        raise BuilderError(
            f"simple(): name must be a non-empty string (the task type workers poll), got "
            f"{name!r} ({_type_name(name)})"
        )
    where = f"simple {ref or name!r}"
    if ref is not None:
        _ref_name(ref, where)
    elif _BAD_REF_CHARS.search(name):
        _ref_name(name, where, "name (the default ref)")
    fields = {"inputParameters": _input(input, where)}
    options = _options(opts, where, COMMON_OPTIONS - {"name"}, WORKFLOW_TASK_FIELDS | {"name"})
    return Task("SIMPLE", name, ref, {**fields, **options}, kind="simple")


def http(
    ref: str,
    uri: str,
    method: str = "GET",
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    *,
    accept: str | None = None,
    content_type: str | None = None,
    connection_timeout_ms: int | None = None,
    read_timeout_ms: int | None = None,
    **opts: Any,
) -> Task:
    """An HTTP call made by the server (``inputParameters.http_request``); output ``response``
    = ``{body, headers, statusCode, reasonPhrase}``."""
    where = f"http {ref!r}"
    request: JsonDict = {"uri": _text(uri, where, "uri"), "method": _text(method, where, "method").upper()}
    if "${" not in method and request["method"] not in _HTTP_METHODS:
        raise BuilderError(f"{where}: method {method!r} is not one of {', '.join(_HTTP_METHODS)}")
    if headers is not None:
        request["headers"] = _input(headers, f"{where} headers")
    if body is not None:
        request["body"] = _json(body, f"{where} body")
    for key, value in (("accept", accept), ("contentType", content_type)):
        if value is not None:
            request[key] = _text(value, where, key)
    for key, ms in (("connectionTimeOut", connection_timeout_ms), ("readTimeOut", read_timeout_ms)):
        if ms is not None:
            request[key] = _count(ms, where, key, 1)
    return _system("HTTP", "http", ref, opts, {"inputParameters": {"http_request": request}})


def _script_input(where: str, input: Mapping[str, Any] | None, reserved: JsonDict) -> JsonDict:
    values = _input(input, where)
    clash = sorted(set(values) & set(reserved))
    if clash:
        raise BuilderError(f"{where}: input key {clash[0]!r} is written by the builder; rename it")
    return {**reserved, **values}


def inline(ref: str, expression: str, input: Mapping[str, Any] | None = None, **opts: Any) -> Task:
    """JavaScript run by the server (INLINE); ``$`` is the task input, output ``{"result": ...}``."""
    where = f"inline {ref!r}"
    script = {"evaluatorType": "javascript", "expression": _text(expression, where, "expression")}
    return _system("INLINE", "inline", ref, opts, {"inputParameters": _script_input(where, input, script)})


def jq(ref: str, query: str, input: Mapping[str, Any] | None = None, **opts: Any) -> Task:
    """A jq program over the task input (JSON_JQ_TRANSFORM); output ``result`` and ``resultList``."""
    where = f"jq {ref!r}"
    program = {"queryExpression": _text(query, where, "query")}
    return _system(
        "JSON_JQ_TRANSFORM", "jq", ref, opts, {"inputParameters": _script_input(where, input, program)}
    )


def set_variable(ref: str, **values: Any) -> Task:
    """Write ``workflow.variables`` (SET_VARIABLE); every keyword is a variable, read back with
    :func:`wf_var`. Options go through ``.with_options(...)``."""
    where = f"set_variable {ref!r}"
    if not values:
        raise BuilderError(f"{where}: give at least one variable, e.g. set_variable({ref!r}, count=0)")
    return _system("SET_VARIABLE", "set_variable", ref, {}, {"inputParameters": _input(values, where)})


def wait(ref: str, duration: str | int | None = None, until: str | None = None, **opts: Any) -> Task:
    """Wait (WAIT): for ``duration`` ("30s", "1d 6h", or seconds as an int), until ``until``
    ("yyyy-MM-dd HH:mm"), or, with neither, until the task is completed through the API."""
    where = f"wait {ref!r}"
    if duration is not None and until is not None:
        raise BuilderError(f"{where}: give duration or until, not both")
    params: JsonDict = {}
    if isinstance(duration, int) and not isinstance(duration, bool):
        params["duration"] = f"{_count(duration, where, 'duration')}s"
    elif duration is not None:
        params["duration"] = _text(duration, where, "duration")
    if until is not None:
        params["until"] = _text(until, where, "until")
    return _system("WAIT", "wait", ref, opts, {"inputParameters": params})


def human(ref: str, input: Mapping[str, Any] | None = None, **opts: Any) -> Task:
    """A task a person completes through the task-update API (HUMAN)."""
    return _system("HUMAN", "human", ref, opts, {"inputParameters": _input(input, f"human {ref!r}")})


def terminate(
    ref: str, status: str = "COMPLETED", output: Any = None, reason: str | None = None, **opts: Any
) -> Task:
    """End the workflow now with ``status`` (COMPLETED, FAILED or TERMINATED) (TERMINATE)."""
    where = f"terminate {ref!r}"
    status = _text(status, where, "status")
    if "${" not in status and status.upper() not in _TERMINATION_STATUSES:
        raise BuilderError(f"{where}: status {status!r} is not one of {', '.join(_TERMINATION_STATUSES)}")
    params: JsonDict = {"terminationStatus": status if "${" in status else status.upper()}
    if reason is not None:
        params["terminationReason"] = _text(reason, where, "reason")
    if output is not None:
        params["workflowOutput"] = _json(output, f"{where} output")
    task_ = _system("TERMINATE", "terminate", ref, opts, {"inputParameters": params})
    if task_._fields.get("optional"):
        raise BuilderError(f"{where}: a TERMINATE task cannot be optional")
    return task_


def event(ref: str, sink: str, input: Mapping[str, Any] | None = None, **opts: Any) -> Task:
    """Publish the task input to ``sink`` (EVENT): ``"conductor"``, ``"conductor:<queue>"``, ..."""
    where = f"event {ref!r}"
    return _system(
        "EVENT",
        "event",
        ref,
        opts,
        {"sink": _text(sink, where, "sink"), "inputParameters": _input(input, where)},
    )


def sub_workflow(
    ref: str,
    name: str | Workflow,
    version: int | None = None,
    input: Mapping[str, Any] | None = None,
    **opts: Any,
) -> Task:
    """Run another workflow and wait for it (SUB_WORKFLOW). ``name`` is a registered workflow's
    name (latest version unless ``version``), or a :class:`Workflow`, embedded inline."""
    where = f"sub_workflow {ref!r}"
    param: JsonDict
    if isinstance(name, Workflow):
        if version is not None and version != name.version:
            raise BuilderError(
                f"{where}: version {version} differs from the embedded workflow's {name.version}"
            )
        param = {"name": name.name, "version": name.version, "workflowDefinition": name.to_dict()}
    else:
        param = {"name": _text(name, where, "name")}
        if version is not None:
            param["version"] = _count(version, where, "version", 1)
    return _system(
        "SUB_WORKFLOW",
        "sub_workflow",
        ref,
        opts,
        {"subWorkflowParam": param, "inputParameters": _input(input, where)},
    )


def start_workflow(
    ref: str,
    name: str | Workflow,
    input: Mapping[str, Any] | None = None,
    *,
    version: int | None = None,
    correlation_id: str | None = None,
    **opts: Any,
) -> Task:
    """Start another (registered) workflow and move on without waiting (START_WORKFLOW); output
    ``workflowId``."""
    where = f"start_workflow {ref!r}"
    if isinstance(name, Workflow):
        version = name.version if version is None else version
        name = name.name
    request: JsonDict = {"name": _text(name, where, "name")}
    if version is not None:
        request["version"] = _count(version, where, "version", 1)
    if correlation_id is not None:
        request["correlationId"] = _text(correlation_id, where, "correlation_id")
    request["input"] = _input(input, where)
    return _system(
        "START_WORKFLOW", "start_workflow", ref, opts, {"inputParameters": {"startWorkflow": request}}
    )


def dynamic(ref: str, param_name: str, input: Mapping[str, Any] | None = None, **opts: Any) -> Task:
    """A worker task whose type is chosen at run time (DYNAMIC): ``input[param_name]`` names it."""
    where = f"dynamic {ref!r}"
    values = _input(input, where)
    _text(param_name, where, "param_name")
    if param_name not in values:
        raise BuilderError(
            f"{where}: input has no {param_name!r} key; it names the task to run, "
            f"e.g. input={{{param_name!r}: wf_input('task')}}"
        )
    return _system(
        "DYNAMIC", "dynamic", ref, opts, {"dynamicTaskNameParam": param_name, "inputParameters": values}
    )


def noop(ref: str, **opts: Any) -> Task:
    """A task that does nothing (NOOP): a placeholder, or a join point after a switch."""
    return _system("NOOP", "noop", ref, opts, {"inputParameters": {}})


def _case_key(key: Any, where: str) -> str:
    """Case keys as Conductor compares them: the Java string of the value (``True`` -> ``"true"``)."""
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, str):
        return key
    raise BuilderError(f"{where}: case key {key!r} ({_type_name(key)}) must be a string")


def switch(
    ref: str,
    expression: str,
    cases: Mapping[Any, Chain],
    default: Chain | None = None,
    *,
    evaluator: str | None = None,
    input: Mapping[str, Any] | None = None,
    **opts: Any,
) -> Task:
    """Run one branch (SWITCH). ``cases`` maps values to a task, a Seq or a list (``[]`` runs
    nothing); ``default`` runs when no case matches.

    * ``expression`` a ``${...}`` reference: a ``value-param`` switch on its value;
    * ``evaluator="javascript"``: ``expression`` is JavaScript over the task input ``$``;
    * ``evaluator="value-param"`` with a bare key: the value of ``input[key]``.
    """
    where = f"switch {ref!r}"
    _ref_name(ref, where)
    _text(expression, where, "expression")
    values = _input(input, where)
    if evaluator is None:
        if not _WHOLE_EXPRESSION.fullmatch(expression.strip()):
            raise BuilderError(
                f"{where}: expression {expression!r} is not a ${{...}} reference; pass "
                "evaluator='javascript' for a script, or evaluator='value-param' with an input key"
            )
        evaluator = "value-param"
    if evaluator not in _SWITCH_EVALUATORS:
        raise BuilderError(f"{where}: evaluator {evaluator!r} is not one of {', '.join(_SWITCH_EVALUATORS)}")
    if evaluator == "value-param" and _WHOLE_EXPRESSION.fullmatch(expression.strip()):
        if "switchCaseValue" in values:
            raise BuilderError(f"{where}: input key 'switchCaseValue' is written by the builder; rename it")
        values = {"switchCaseValue": expression.strip(), **values}
        expression = "switchCaseValue"
    elif evaluator == "value-param" and expression not in values:
        raise BuilderError(f"{where}: value-param expression {expression!r} must be a key of input")
    if not isinstance(cases, Mapping) or not cases:
        raise BuilderError(f"{where}: cases is empty; give at least one, e.g. {{'yes': task}}")
    branches: dict[str, Seq] = {}
    for key, branch in cases.items():
        case = _case_key(key, where)
        if case in branches:
            raise BuilderError(f"{where}: case {case!r} is given twice")
        branches[case] = _as_seq(branch, f"{where} case {case!r}")
    nested: dict[str, Any] = {"decisionCases": branches}
    if default is not None:
        nested["defaultCase"] = _as_seq(default, f"{where} default")
    fields = {"evaluatorType": evaluator, "expression": expression, "inputParameters": values}
    return _system("SWITCH", "switch", ref, opts, fields, nested=nested)


def fork(ref: str, *lanes: Chain, join_ref: str | None = None, **opts: Any) -> Task:
    """Run lanes in parallel (FORK_JOIN), followed by a JOIN (``join_ref``, default ``<ref>_join``)
    waiting on the last task of each lane; the JOIN's output maps those refs to their outputs."""
    where = f"fork {ref!r}"
    _ref_name(ref, where)
    if not lanes:
        raise BuilderError(f"{where}: give at least one lane, e.g. fork({ref!r}, a, b >> c)")
    seqs: list[Seq] = []
    for i, lane in enumerate(lanes, 1):
        seq = _as_seq(lane, f"{where} lane {i}")
        if not seq.tasks:
            raise BuilderError(f"{where}: lane {i} is empty")
        last = seq.tasks[-1]
        if last.type in ("SWITCH", "DECISION"):
            raise BuilderError(
                f"{where}: lane {i} ends with {last.where}; a JOIN on a switch does not wait for its branch "
                f"(the switch completes at once), so end the lane with a task after it, e.g. noop('{last.ref}_done')"
            )
        seqs.append(seq)
    join = _ref_name(join_ref if join_ref is not None else f"{ref}_join", where, "join_ref")
    return _system("FORK_JOIN", "fork", ref, opts, {}, nested={"forkTasks": seqs}, join_ref=join)


def fork_dynamic(
    ref: str,
    tasks_param: str,
    input_param: str,
    input: Mapping[str, Any] | None = None,
    *,
    join_ref: str | None = None,
    **opts: Any,
) -> Task:
    """Fork tasks listed at run time (FORK_JOIN_DYNAMIC), followed by its JOIN: ``input[tasks_param]``
    is a list of WorkflowTask dicts, ``input[input_param]`` maps each of their refs to its input."""
    where = f"fork_dynamic {ref!r}"
    values = _input(input, where)
    for what, key in (("tasks_param", tasks_param), ("input_param", input_param)):
        _text(key, where, what)
        if key not in values:
            raise BuilderError(f"{where}: input has no {key!r} key (named by {what})")
    join = _ref_name(join_ref if join_ref is not None else f"{ref}_join", where, "join_ref")
    fields = {
        "dynamicForkTasksParam": tasks_param,
        "dynamicForkTasksInputParamName": input_param,
        "inputParameters": values,
    }
    return _system("FORK_JOIN_DYNAMIC", "fork_dynamic", ref, opts, fields, join_ref=join)


def loop(
    ref: str,
    body: Chain,
    condition: str | None = None,
    items: str | Sequence[Any] | None = None,
    keep_last_n: int | None = None,
    *,
    times: int | None = None,
    input: Mapping[str, Any] | None = None,
    **opts: Any,
) -> Task:
    """Repeat ``body`` (DO_WHILE; it always runs once) while ``condition`` holds.

    ``condition`` is JavaScript over ``$`` (``$.<ref>['iteration']``, ``$.<body ref>.<key>``, the
    loop's input); ``times=3`` writes ``$.<ref>['iteration'] < 3``; ``items`` (a ``${...}`` list or
    a literal list) runs once per element (``loopItem``, ``loopIndex`` in the loop's output);
    ``keep_last_n`` keeps only the last N iterations' tasks.
    """
    where = f"loop {ref!r}"
    _ref_name(ref, where)
    seq = _as_seq(body, f"{where} body")
    if not seq.tasks:
        raise BuilderError(f"{where}: body is empty")
    for node in seq:
        if node.type == "DO_WHILE":
            raise BuilderError(
                f"{where}: {node.where} cannot be nested directly in a loop; wrap it in a "
                "sub_workflow, or put it inside a fork or switch"
            )
    if times is not None:
        if condition is not None:
            raise BuilderError(f"{where}: give condition or times, not both")
        condition = f"$.{ref}['iteration'] < {_count(times, where, 'times', 1)}"
    if condition is None and items is None:
        raise BuilderError(f"{where}: give condition= (e.g. \"$.{ref}['iteration'] < 3\"), times= or items=")
    fields: JsonDict = {"inputParameters": _input(input, where)}
    if condition is not None:
        fields["loopCondition"] = _text(condition, where, "condition")
    if isinstance(items, str):
        fields["items"] = _text(items, where, "items")
    elif items is not None:
        if not isinstance(items, list | tuple):
            raise BuilderError(
                f"{where}: items must be a ${{...}} expression or a list, got {_type_name(items)}"
            )
        fields["inputParameters"]["_items"] = _json(items, f"{where} items")
    if keep_last_n is not None:
        fields["inputParameters"]["keepLastN"] = _count(keep_last_n, where, "keep_last_n", 1)
    return _system("DO_WHILE", "loop", ref, opts, fields, nested={"loopOver": seq})


def task(type: str, ref: str, *, input: Mapping[str, Any] | None = None, **fields: Any) -> Task:
    """Any WorkflowTask, field by field (the escape hatch): ``task("KAFKA_PUBLISH", "k", input=...)``.

    ``fields`` are WorkflowTask fields (camelCase or snake_case); ``name`` defaults to the ref.
    Nested task lists (``loopOver``, ``defaultCase``, ``decisionCases``, ``forkTasks``) may be
    builder objects or raw dicts. A FORK_JOIN made here gets no automatic JOIN (``fork()`` does)."""
    where = f"task {ref!r}"
    _text(type, where, "type")
    _ref_name(ref, where)
    nested: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    for key, value in fields.items():
        field = _camel(key)
        shape = dict(_NESTED).get(field)
        if shape is not None and not _is_raw(value, shape):
            if shape == "map":
                if not isinstance(value, Mapping):
                    raise BuilderError(f"{where}: {field} must map case values to tasks")
                nested[field] = {
                    _case_key(k, where): _as_seq(v, f"{where} {field}") for k, v in value.items()
                }
            elif shape == "lanes":
                nested[field] = [_as_seq(lane, f"{where} {field}") for lane in value]
            else:
                nested[field] = _as_seq(value, f"{where} {field}")
        else:
            raw[key] = value
    options = _options(raw, where, WORKFLOW_TASK_FIELDS - {"type", "taskReferenceName"}, WORKFLOW_TASK_FIELDS)
    if input is not None:
        if "inputParameters" in options:
            raise BuilderError(f"{where}: give input= or inputParameters=, not both")
        options["inputParameters"] = _input(input, where)
    name = options.pop("name", ref)
    return Task(type, name, ref, options, kind="task", nested=nested)


def _is_raw(value: Any, shape: str) -> bool:
    """Whether a nested-list field holds plain dicts (kept as written) rather than builder objects."""
    if shape == "map":
        return isinstance(value, Mapping) and all(_is_raw(v, "list") for v in value.values())
    if shape == "lanes":
        return isinstance(value, list | tuple) and all(_is_raw(v, "list") for v in value)
    return isinstance(value, list | tuple) and all(isinstance(v, Mapping) for v in value)


# --------------------------------------------------------------------------------------------
# Workflow


class Workflow:
    """A built workflow definition: ``to_dict()`` is conductor-oss WorkflowDef JSON.

    Assembled (refs assigned, everything checked) when created; the JSON is kept, and every
    accessor returns a fresh copy, so callers may change what they get.
    """

    __slots__ = ("_body", "_def", "_owner_email")

    def __init__(self, definition: JsonDict, body: Seq, owner_email: str | None) -> None:
        self._def = definition
        self._body = body
        self._owner_email = owner_email

    @property
    def name(self) -> str:
        return str(self._def["name"])

    @property
    def version(self) -> int:
        return int(self._def["version"])

    @property
    def body(self) -> Seq:
        """The top-level tasks as built (before refs were assigned)."""
        return self._body

    def to_dict(self) -> JsonDict:
        """The WorkflowDef JSON (a fresh copy)."""
        return copy.deepcopy(self._def)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self._def, indent=indent)

    def refs(self) -> list[str]:
        """Every taskReferenceName, nested ones included, in definition order (embedded
        sub-workflows have refs of their own and are not included)."""
        return [str(n["taskReferenceName"]) for n in _walk(self._def["tasks"])]

    def task_defs(self, **overrides: Any) -> list[JsonDict]:
        """A default TaskDef dict for each SIMPLE task type used (embedded sub-workflows included;
        tasks carrying an inline ``taskDefinition`` need none). Defaults are conductor-oss's
        (``TASK_DEF_DEFAULTS``); ``overrides`` are TaskDef fields (``retry_delay_seconds=1``)."""
        extra = _options(overrides, f"workflow {self.name!r} task_defs()", TASK_DEF_FIELDS, TASK_DEF_FIELDS)
        names: list[str] = []
        for node in _walk_with_children(self._def["tasks"]):
            if node.get("type") == "SIMPLE" and not node.get("taskDefinition") and node["name"] not in names:
                names.append(node["name"])
        base: JsonDict = {**TASK_DEF_DEFAULTS}
        if self._owner_email is not None:
            base["ownerEmail"] = self._owner_email
        return [{"name": n, **base, **copy.deepcopy(extra)} for n in names]

    def __repr__(self) -> str:
        refs = self.refs()
        shown = ", ".join(refs[:20]) + (f", ... (+{len(refs) - 20} more)" if len(refs) > 20 else "")
        return f"Workflow({self.name!r}, version={self.version}, refs=[{shown}])"


def _walk_with_children(tasks: Iterable[Any]) -> Iterator[JsonDict]:
    """Like ``_walk``, also entering inline sub-workflow definitions."""
    for node in _walk(tasks):
        yield node
        inline_def = (node.get("subWorkflowParam") or {}).get("workflowDefinition")
        if isinstance(inline_def, dict):
            yield from _walk_with_children(inline_def.get("tasks") or [])


def workflow(
    name: str,
    body: Chain,
    *,
    version: int = 1,
    description: str | None = None,
    input_parameters: Sequence[str] | None = None,
    output: Mapping[str, Any] | None = None,
    timeout_seconds: int = 0,
    timeout_policy: str | None = None,
    failure_workflow: str | None = None,
    restartable: bool = True,
    schema_version: int = 2,
    owner_email: str | None = DEFAULT_OWNER_EMAIL,
    variables: Mapping[str, Any] | None = None,
    check_refs: bool = True,
) -> Workflow:
    """Assemble a workflow definition from ``body`` (a task, ``a >> b`` or a list).

    ``input_parameters`` documents the expected input names; ``output`` is ``outputParameters``
    (``{"rows": ref_output("fetch", "rows")}``). ``timeout_policy`` defaults to TIME_OUT_WF when
    ``timeout_seconds`` is set (conductor-oss's own default, ALERT_ONLY, only logs), else ALERT_ONLY.
    ``check_refs=False`` lets inputs name refs the builder cannot see (dynamic fork children).
    """
    where = f"workflow {name!r}" if isinstance(name, str) else "workflow()"
    _text(name, where, "name")
    _count(version, where, "version", 1)
    if schema_version != 2:
        raise BuilderError(f"{where}: schema_version must be 2 (the only one conductor-oss accepts)")
    seq = _as_seq(body, f"{where} body")
    if not seq.tasks:
        raise BuilderError(f"{where}: body is empty; give at least one task")
    _count(timeout_seconds, where, "timeout_seconds")
    if timeout_policy is None:
        timeout_policy = "TIME_OUT_WF" if timeout_seconds > 0 else "ALERT_ONLY"
    if timeout_policy not in ("TIME_OUT_WF", "ALERT_ONLY"):
        raise BuilderError(f"{where}: timeout_policy {timeout_policy!r} is not TIME_OUT_WF or ALERT_ONLY")
    if not isinstance(restartable, bool):
        raise BuilderError(f"{where}: restartable must be True or False")
    params = list(input_parameters or [])
    for p in params:
        _text(p, where, "each input_parameters entry")
    assembly = _Assembly(where, seq)
    tasks = assembly.emit(seq)
    seen: set[str] = set()
    for node in _walk(tasks):  # raw dicts given to task() are checked too
        ref = str(node.get("taskReferenceName"))
        if ref in seen:
            raise BuilderError(f"{where}: duplicate taskReferenceName {ref!r}; every task needs its own ref")
        seen.add(ref)
    outputs = _input(output, f"{where} output")
    if check_refs:
        _check_references(where, tasks, outputs)
    definition: JsonDict = {"name": name}
    if description is not None:
        definition["description"] = _text(description, where, "description")
    definition.update(
        {
            "version": version,
            "schemaVersion": schema_version,
            "tasks": tasks,
            "inputParameters": params,
            "outputParameters": outputs,
            "timeoutSeconds": timeout_seconds,
            "timeoutPolicy": timeout_policy,
            "restartable": restartable,
        }
    )
    if failure_workflow is not None:
        definition["failureWorkflow"] = _text(failure_workflow, where, "failure_workflow")
    if variables is not None:
        definition["variables"] = _input(variables, f"{where} variables")
    if owner_email is not None:
        definition["ownerEmail"] = _text(owner_email, where, "owner_email")
    return Workflow(definition, seq, owner_email)
