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


def task_def_errors(td: TaskDef, path: str) -> list[dict[str, Any]]:
    errs: list[dict[str, Any]] = []

    def err(prop: str, message: str, value: Any = None) -> None:
        item: dict[str, Any] = {"path": f"{path}.{prop}", "message": message}
        if isinstance(value, str | int | float | bool):
            item["invalidValue"] = value
        errs.append(item)

    if not td.name:
        err("name", "TaskDef name cannot be null or empty")
    if td.retryCount < 0:
        err("retryCount", "TaskDef retryCount: 0 must be >= 0", td.retryCount)
    if td.responseTimeoutSeconds < 1:
        err(
            "responseTimeoutSeconds",
            f"TaskDef responseTimeoutSeconds: {td.responseTimeoutSeconds} must be greater than 0",
            td.responseTimeoutSeconds,
        )
    if td.timeoutSeconds > 0 and td.responseTimeoutSeconds > td.timeoutSeconds:
        err(
            "responseTimeoutSeconds",
            f"TaskDef: {td.name} responseTimeoutSeconds: {td.responseTimeoutSeconds} must be less than "
            f"timeoutSeconds: {td.timeoutSeconds}",
        )
    if td.timeoutSeconds < 0:
        err("timeoutSeconds", "TaskDef timeoutSeconds must be >= 0", td.timeoutSeconds)
    if td.pollTimeoutSeconds is not None and td.pollTimeoutSeconds < 0:
        err("pollTimeoutSeconds", "TaskDef pollTimeoutSeconds must be >= 0", td.pollTimeoutSeconds)
    if td.backoffScaleFactor < 1:
        err("backoffScaleFactor", "TaskDef backoffScaleFactor: must be >= 1", td.backoffScaleFactor)
    if td.maxRetryDelaySeconds < 0:
        err("maxRetryDelaySeconds", "TaskDef maxRetryDelaySeconds must be >= 0", td.maxRetryDelaySeconds)
    if td.backoffJitterMs < 0:
        err("backoffJitterMs", "TaskDef backoffJitterMs must be >= 0", td.backoffJitterMs)
    if td.totalTimeoutSeconds < 0:
        err("totalTimeoutSeconds", "TaskDef totalTimeoutSeconds must be >= 0", td.totalTimeoutSeconds)
    elif td.totalTimeoutSeconds > 0 and td.timeoutSeconds > 0 and td.totalTimeoutSeconds < td.timeoutSeconds:
        err(
            "totalTimeoutSeconds",
            f"TaskDef: {td.name} totalTimeoutSeconds: {td.totalTimeoutSeconds} must be greater than or equal to "
            f"timeoutSeconds: {td.timeoutSeconds}",
        )
    if td.rateLimitPerFrequency < 0:
        err("rateLimitPerFrequency", "TaskDef rateLimitPerFrequency must be >= 0", td.rateLimitPerFrequency)
    return errs


def _node_errors(
    node: WorkflowTask, path: str, wd_name: str, task_defs: Mapping[str, TaskDef] | None = None
) -> list[dict[str, Any]]:
    errs: list[dict[str, Any]] = []

    def err(message: str) -> None:
        errs.append({"path": path, "message": message})

    ref = node.taskReferenceName
    if not node.name:
        err("WorkflowTask name cannot be empty or null")
    if not ref:
        err("WorkflowTask taskReferenceName name cannot be empty or null")
    if node.startDelay < 0:
        err("startDelay must be greater than or equal to 0")
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


def workflow_def_errors(
    wd: WorkflowDef, path: str = "workflowDef", task_defs: Mapping[str, TaskDef] | None = None
) -> list[dict[str, Any]]:
    errs: list[dict[str, Any]] = []
    if not wd.name:
        errs.append({"path": f"{path}.name", "message": "WorkflowDef name cannot be null or empty"})
    if not wd.tasks:
        errs.append({"path": f"{path}.tasks", "message": "WorkflowTask list cannot be empty"})
    if wd.schemaVersion != 2:
        errs.append(
            {"path": f"{path}.schemaVersion", "message": "workflowDef schemaVersion: 2 is only supported",
             "invalidValue": wd.schemaVersion}
        )
    seen: set[str] = set()
    nodes = list(wd.all_tasks())
    for i, node in enumerate(nodes):
        errs.extend(_node_errors(node, f"{path}.tasks[{i}]", wd.name, task_defs))
        ref = node.taskReferenceName
        if ref:
            if ref in seen:
                errs.append(
                    {
                        "path": f"{path}.tasks",
                        "message": f"taskReferenceName: {ref} should be unique across tasks for a given "
                        f"workflowDefinition: {wd.name}",
                    }
                )
            seen.add(ref)
        # Embedded taskDefinition objects are not bean-validated by conductor-oss (the SDK sends
        # them without a name); the snapshot fills the name from the node.
    # Top-level input references must name the workflow, an environment value or a task of this definition.
    for i, node in enumerate(wd.tasks):
        for expr in _references(node.inputParameters):
            head = re.split(r"[.\[]", expr.strip(), maxsplit=1)[0]
            if not head or head == "workflow" or head in seen or head in os.environ or head in (
                "CPEWF_TASK_ID",
                "NETFLIX_ENV",
                "NETFLIX_STACK",
            ):
                continue
            errs.append(
                {
                    "path": f"{path}.tasks[{i}].inputParameters",
                    "message": f"taskReferenceName: {head} for given task: {node.name} input value: {expr} "
                    f"of input parameter: ${{{expr}}} is not defined in workflow definition.",
                }
            )
    return errs


def _references(value: Any) -> list[str]:
    out: list[str] = []
    if isinstance(value, str):
        if "${" in value:
            out.extend(m for m in _REF.findall(value.replace("$${", "")))
    elif isinstance(value, dict):
        for v in value.values():
            out.extend(_references(v))
    elif isinstance(value, list):
        for v in value:
            out.extend(_references(v))
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
        if self.task_defs.pop(name, None) is None:
            raise NotFound(f"No such taskType found by name: {name}")
        self._snapshot_of.clear()

    # -- workflow defs -----------------------------------------------------------------------

    def get_workflow_def(self, name: str, version: int | None = None) -> WorkflowDef:
        versions = self.workflow_defs.get(name)
        if versions:
            if version is None:
                return versions[max(versions)]
            if version in versions:
                return versions[version]
        raise NotFound(f"No such workflow found by name: {name}, version: {version}")

    def put_workflow_def(self, wd: WorkflowDef) -> None:
        self.workflow_defs.setdefault(wd.name, {})[wd.version] = wd
        self._snapshot_of.pop((wd.name, wd.version), None)

    def remove_workflow_def(self, name: str, version: int) -> None:
        versions = self.workflow_defs.get(name)
        if not versions or version not in versions:
            raise NotFound(f"No such workflow found by name: {name}, version: {version}")
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
