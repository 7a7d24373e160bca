"""Task and workflow definitions: validation, the in-memory registry, execution snapshots.

Every execution runs against a *snapshot* of its definition in which each node carries the
TaskDef it uses (registered, inline, or conductor-oss's ad-hoc default), as conductor-oss stores
``workflowDefinition`` on each execution. Identical snapshots are shared by id (a content hash),
so a million executions of one blueprint hold one definition object.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
from collections.abc import Mapping
from typing import Any

import orjson

from conductor_lab.engine.model import TaskDef, WorkflowDef, WorkflowTask
from conductor_lab.engine.tasks import UNSUPPORTED, supported_types, type_of
from conductor_lab.errors import InvalidInput, NotFound

_REF = re.compile(r"\$\{([^}$]*)\}")


# --------------------------------------------------------------------------------------------
# Validation (contract 3.13): a list of {path, message[, invalidValue]}
#
# Paths and messages are conductor-oss's bean-validation ones: ``<method>.<parameter>`` then the
# property (``registerTaskDef.taskDefinitions[0].retryCount``); class-level constraints
# (``TaskTimeoutConstraint``, ``TaskReferenceNameUniqueConstraint``) report the bean's own path.
# ``invalidValue`` is a string, as ``ValidationExceptionMapper`` renders it (``java.lang`` values
# only: never for a bean).


def _violation(path: str, message: str, value: Any = None) -> dict[str, Any]:
    item: dict[str, Any] = {"path": path, "message": message}
    if isinstance(value, bool):
        item["invalidValue"] = str(value).lower()
    elif isinstance(value, str | int | float):
        item["invalidValue"] = str(value)
    return item


def task_def_errors(td: TaskDef, path: str) -> list[dict[str, Any]]:
    """conductor-oss's ``TaskDef`` constraints (common/.../metadata/tasks/TaskDef.java and
    common/.../constraints/TaskTimeoutConstraint.java); the two ``>= 0`` checks on
    ``timeoutSeconds`` and ``rateLimitPerFrequency`` are this server's own (docs/compat.md)."""
    errs: list[dict[str, Any]] = []

    def err(prop: str, message: str, value: Any = None) -> None:
        errs.append(_violation(f"{path}.{prop}", message, value))

    if not td.name:
        err("name", "TaskDef name cannot be null or empty", td.name)
    if td.retryCount < 0:
        err("retryCount", "TaskDef retryCount: 0 must be >= 0", td.retryCount)
    if td.responseTimeoutSeconds < 1:
        err(
            "responseTimeoutSeconds",
            f"TaskDef responseTimeoutSeconds: {td.responseTimeoutSeconds} should be minimum 1 second",
            td.responseTimeoutSeconds,
        )
    if td.timeoutSeconds > 0 and td.responseTimeoutSeconds > td.timeoutSeconds:
        errs.append(
            _violation(
                path,
                f"TaskDef: {td.name} responseTimeoutSeconds: {td.responseTimeoutSeconds} must be less than "
                f"timeoutSeconds: {td.timeoutSeconds}",
            )
        )
    if td.timeoutSeconds > 0 and td.totalTimeoutSeconds > 0 and td.timeoutSeconds > td.totalTimeoutSeconds:
        errs.append(
            _violation(
                path,
                f"TaskDef: {td.name} timeoutSeconds: {td.timeoutSeconds} must be less than or equal to "
                f"totalTimeoutSeconds: {td.totalTimeoutSeconds}",
            )
        )
    if td.timeoutSeconds < 0:
        err("timeoutSeconds", "TaskDef timeoutSeconds must be >= 0", td.timeoutSeconds)
    if td.pollTimeoutSeconds is not None and td.pollTimeoutSeconds < 0:
        err("pollTimeoutSeconds", "TaskDef pollTimeoutSeconds: 0 must be >= 0", td.pollTimeoutSeconds)
    if td.backoffScaleFactor < 1:
        err("backoffScaleFactor", "Backoff scale factor. Applicable for LINEAR_BACKOFF", td.backoffScaleFactor)
    if td.maxRetryDelaySeconds < 0:
        err("maxRetryDelaySeconds", "TaskDef maxRetryDelaySeconds: 0 must be >= 0", td.maxRetryDelaySeconds)
    if td.backoffJitterMs < 0:
        err("backoffJitterMs", "TaskDef backoffJitterMs: 0 must be >= 0", td.backoffJitterMs)
    if td.totalTimeoutSeconds < 0:
        err("totalTimeoutSeconds", "TaskDef totalTimeoutSeconds: 0 must be >= 0", td.totalTimeoutSeconds)
    if td.rateLimitPerFrequency < 0:
        err("rateLimitPerFrequency", "TaskDef rateLimitPerFrequency must be >= 0", td.rateLimitPerFrequency)
    return errs


def _node_errors(
    node: WorkflowTask, path: str, wd_name: str, task_defs: Mapping[str, TaskDef] | None = None
) -> list[dict[str, Any]]:
    """One WorkflowTask: its field constraints (WorkflowTask.java: ``<path>.name``, ...) and the
    class-level ``WorkflowTaskTypeConstraint`` (reported at the node's own path)."""
    errs: list[dict[str, Any]] = []

    def err(message: str) -> None:
        errs.append({"path": path, "message": message})

    ref = node.taskReferenceName
    if not node.name:
        errs.append(_violation(f"{path}.name", "WorkflowTask name cannot be empty or null", node.name))
    if not ref:
        errs.append(
            _violation(f"{path}.taskReferenceName", "WorkflowTask taskReferenceName name cannot be empty or null", ref)
        )
    if node.startDelay < 0:
        errs.append(_violation(f"{path}.startDelay", "must be greater than or equal to 0", node.startDelay))
    if node.type in UNSUPPORTED:
        err(
            f"Task type {node.type} (taskReferenceName: {ref}) is not supported by this server; supported "
            f"system task types: {', '.join(t for t in supported_types() if t != 'SIMPLE')}, and worker tasks"
        )
        return errs
    if node.taskDefinition is None and task_defs and node.name in task_defs:
        # judged with the registered definition's inputTemplate, as conductor-oss does
        node = copy.copy(node)
        node.taskDefinition = task_defs[node.name]
    for message in type_of(node.type).validate(node):
        err(f"{message} (taskReferenceName: {ref})")
    return errs


def _nodes_with_paths(tasks: list[WorkflowTask], prefix: str) -> list[tuple[WorkflowTask, str]]:
    """Every node, nested ones included (depth first, definition order), with its property path
    (``tasks[0]``, ``tasks[1].decisionCases[a][0]``, ``tasks[2].forkTasks[0][1]``, ``...loopOver[0]``)."""
    out: list[tuple[WorkflowTask, str]] = []

    def walk(lst: list[WorkflowTask] | None, at: str) -> None:
        for j, node in enumerate(lst or ()):
            here = f"{at}[{j}]"
            out.append((node, here))
            for key, case in (node.decisionCases or {}).items():
                walk(case, f"{here}.decisionCases[{key}]")
            walk(node.defaultCase, f"{here}.defaultCase")
            for k, lane in enumerate(node.forkTasks or ()):
                walk(lane, f"{here}.forkTasks[{k}]")
            walk(node.loopOver, f"{here}.loopOver")

    walk(tasks, prefix)
    return out


def workflow_def_errors(
    wd: WorkflowDef, path: str = "workflowDef", task_defs: Mapping[str, TaskDef] | None = None
) -> list[dict[str, Any]]:
    """conductor-oss's ``WorkflowDef`` constraints (common/.../metadata/workflow/WorkflowDef.java,
    WorkflowTask.java, common/.../constraints/TaskReferenceNameUniqueConstraint.java,
    ConstraintParamUtil.java; per task type core/.../validations/WorkflowTaskTypeConstraint.java)."""
    errs: list[dict[str, Any]] = []
    if not wd.name:
        errs.append(_violation(f"{path}.name", "WorkflowDef name cannot be null or empty", wd.name))
    if not wd.tasks:
        errs.append({"path": f"{path}.tasks", "message": "WorkflowTask list cannot be empty"})
    if wd.schemaVersion != 2:
        errs.append(
            _violation(f"{path}.schemaVersion", "workflowDef schemaVersion: 2 is only supported", wd.schemaVersion)
        )
    seen: set[str] = set()
    for node, node_path in _nodes_with_paths(wd.tasks, f"{path}.tasks"):
        errs.extend(_node_errors(node, node_path, wd.name, task_defs))
        ref = node.taskReferenceName
        if ref:
            if ref in seen:  # a class-level constraint: the definition's own path
                errs.append(
                    {
                        "path": path,
                        "message": f"taskReferenceName: {ref} should be unique across tasks for a given "
                        f"workflowDefinition: {wd.name}",
                    }
                )
            seen.add(ref)
        # Embedded taskDefinition objects are not bean-validated by conductor-oss (the SDK sends
        # them without a name); the snapshot fills the name from the node.
    # Top-level input references must name the workflow, an environment value or a task of this definition.
    for node in wd.tasks:
        for key, value, expr in _references(node.inputParameters):
            head = re.split(r"[.\[]", expr.strip(), maxsplit=1)[0]
            if not head or head == "workflow" or head in seen or head in os.environ or head in (
                "CPEWF_TASK_ID",
                "NETFLIX_ENV",
                "NETFLIX_STACK",
            ):
                continue
            errs.append(
                {
                    "path": path,
                    "message": f"taskReferenceName: {head} for given task: {node.name} input value: {key} "
                    f"of input parameter: {value} is not defined in workflow definition.",
                }
            )
    return errs


def _references(params: Any) -> list[tuple[str, str, str]]:
    """(input parameter key, its string value, each ``${...}`` expression in it), as
    ``ConstraintParamUtil.validateInputParam`` walks them: a nested map names its own keys, a
    list keeps the key of the list."""
    out: list[tuple[str, str, str]] = []

    def scan(key: str, value: Any) -> None:
        if isinstance(value, str):
            if "${" in value:
                out.extend((key, value, m) for m in _REF.findall(value.replace("$${", "")))
        elif isinstance(value, dict):
            for k, v in value.items():
                scan(str(k), v)
        elif isinstance(value, list):
            for v in value:
                scan(key, v)

    if isinstance(params, dict):
        for k, v in params.items():
            scan(str(k), v)
    return out


def raise_if(errs: list[dict[str, Any]]) -> None:
    if errs:
        raise InvalidInput("Validation failed, check below errors for detail.", validation_errors=errs)


# --------------------------------------------------------------------------------------------
# Registry


class Metadata:
    """In-memory definitions (the store is the durable copy)."""

    def __init__(self) -> None:
        self.task_defs: dict[str, TaskDef] = {}
        self.workflow_defs: dict[str, dict[int, WorkflowDef]] = {}
        self.snapshots: dict[str, WorkflowDef] = {}
        self.snapshot_json: dict[str, dict[str, Any]] = {}
        self._snapshot_of: dict[tuple[str, int], str] = {}  # registered def -> current snapshot id

    # -- task defs ---------------------------------------------------------------------------

    def get_task_def(self, name: str) -> TaskDef:
        td = self.task_defs.get(name)
        if td is None:
            raise NotFound(f"No such taskType found by name: {name}")
        return td

    def put_task_def(self, td: TaskDef) -> None:
        self.task_defs[td.name] = td
        self._snapshot_of.clear()

    def remove_task_def(self, name: str) -> None:
        if self.task_defs.pop(name, None) is None:  # the SQL metadata DAOs' text (docs/compat.md: 404, not 500)
            raise NotFound("No such task definition")
        self._snapshot_of.clear()

    # -- workflow defs -----------------------------------------------------------------------

    def get_workflow_def(self, name: str, version: int | None = None) -> WorkflowDef:
        versions = self.workflow_defs.get(name)
        if versions:
            if version is None:
                return versions[max(versions)]
            if version in versions:
                return versions[version]
        shown = "null" if version is None else version  # Java's %d of a null Integer
        raise NotFound(f"No such workflow found by name: {name}, version: {shown}")

    def put_workflow_def(self, wd: WorkflowDef) -> None:
        self.workflow_defs.setdefault(wd.name, {})[wd.version] = wd
        self._snapshot_of.pop((wd.name, wd.version), None)

    def remove_workflow_def(self, name: str, version: int) -> None:
        versions = self.workflow_defs.get(name)
        if not versions or version not in versions:  # the SQL metadata DAOs' text (docs/compat.md)
            raise NotFound(f"No such workflow definition: {name} version: {version}")
        del versions[version]
        if not versions:
            del self.workflow_defs[name]
        self._snapshot_of.pop((name, version), None)

    def find_workflow_def(self, name: str, version: int | None) -> WorkflowDef | None:
        try:
            return self.get_workflow_def(name, version)
        except NotFound:
            return None

    def find_task_def(self, name: str) -> TaskDef | None:
        return self.task_defs.get(name)

    def all_workflow_defs(self) -> list[WorkflowDef]:
        return [wd for name in sorted(self.workflow_defs) for _, wd in sorted(self.workflow_defs[name].items())]

    # -- snapshots ---------------------------------------------------------------------------

    def snapshot_for(self, wd: WorkflowDef, *, registered: bool) -> tuple[str, WorkflowDef, str | None]:
        """(snapshot id, enriched definition, JSON text if the snapshot is new) for an execution."""
        key = (wd.name, wd.version)
        if registered:
            sid = self._snapshot_of.get(key)
            if sid is not None:
                return sid, self.snapshots[sid], None
        data = wd.to_json()
        for node_json in _walk_nodes(data.get("tasks", [])):
            embedded = node_json.get("taskDefinition")
            if embedded is None:
                node_json["taskDefinition"] = self._resolve_task_def(node_json).to_json()
            elif not embedded.get("name"):
                embedded["name"] = node_json.get("name") or node_json.get("type") or ""

        text = orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()
        sid = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
        new_text: str | None = None
        if sid not in self.snapshots:
            self.add_snapshot(sid, text)
            new_text = text
        if registered:
            self._snapshot_of[key] = sid
        return sid, self.snapshots[sid], new_text

    def add_snapshot(self, sid: str, text: str) -> WorkflowDef:
        data = orjson.loads(text)
        snap = WorkflowDef.parse(data)
        self.snapshots[sid] = snap
        self.snapshot_json[sid] = orjson.loads(text)
        return snap

    def _resolve_task_def(self, node_json: dict[str, Any]) -> TaskDef:
        name = node_json.get("name") or ""
        ttype = node_json.get("type") or "SIMPLE"
        td = self.task_defs.get(name)
        if td is not None:
            return td
        return TaskDef.adhoc(name, simple=ttype == "SIMPLE")


def _walk_nodes(tasks: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    stack = list(tasks)
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        out.append(node)
        for case in (node.get("decisionCases") or {}).values():
            stack.extend(case or [])
        stack.extend(node.get("defaultCase") or [])
        for lane in node.get("forkTasks") or []:
            stack.extend(lane or [])
        stack.extend(node.get("loopOver") or [])
    return out


def parse_task_def(data: Any, path: str) -> TaskDef:
    td: TaskDef = TaskDef.parse(data)
    raise_if(task_def_errors(td, path))
    return td


def parse_workflow_def(
    data: Any, path: str = "workflowDef", task_defs: Mapping[str, TaskDef] | None = None
) -> WorkflowDef:
    """Parse and validate; ``task_defs`` are the registered task definitions nodes may rely on."""
    wd: WorkflowDef = WorkflowDef.parse(data)
    raise_if(workflow_def_errors(wd, path, task_defs))
    return wd
