"""Definitions: task definitions and workflow definitions (conductor-oss ``MetadataService``).

Validation (per task type through ``TaskType.validate``), the in-memory registry and its durable
copy; every change is committed before the call returns.
"""

from __future__ import annotations

from typing import Any

from conductor_lab.engine.commit import dumps
from conductor_lab.engine.metadata import (
    parse_task_def,
    parse_workflow_def,
    raise_if,
    task_def_errors,
    workflow_def_errors,
)
from conductor_lab.engine.model import TaskDef, WorkflowDef
from conductor_lab.engine.runtime import Runtime
from conductor_lab.errors import Conflict, MalformedBody, NotFound, validation_error


class DefinitionService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def register_task_defs(self, defs: Any) -> None:
        if not isinstance(defs, list):
            raise MalformedBody("Cannot deserialize value of type `java.util.ArrayList` from Object value")
        if not defs:  # MetadataService.registerTaskDef: @Size(min = 1)
            raise validation_error("registerTaskDef.taskDefinitions", "TaskDefList is empty")
        now = self.rt.clock()
        parsed: list[TaskDef] = [TaskDef.parse(d) for d in defs]
        raise_if(  # every element's violations, in one 400
            [e for i, td in enumerate(parsed) for e in task_def_errors(td, f"registerTaskDef.taskDefinitions[{i}]")]
        )
        for td in parsed:
            td.createTime = now
            td.updateTime = 0
        texts = [dumps(td.to_json()) for td in parsed]  # all serialisable before anything is kept
        for td, text in zip(parsed, texts, strict=True):
            self.rt.meta.put_task_def(td)
            self.rt.committer.task_def(td.name, text)
        await self.rt.committer.barrier()

    async def update_task_def(self, data: Any) -> None:
        td = parse_task_def(data, "updateTaskDef.taskDefinition")
        existing = self.rt.meta.get_task_def(td.name) if td.name in self.rt.meta.task_defs else None
        if existing is None:  # MetadataServiceImpl.updateTaskDef
            raise NotFound(f"No such task by name {td.name}")
        td.createTime = existing.createTime
        td.createdBy = existing.createdBy
        td.updateTime = self.rt.clock()
        text = dumps(td.to_json())
        self.rt.meta.put_task_def(td)
        self.rt.committer.task_def(td.name, text)
        await self.rt.committer.barrier()

    def get_task_def(self, name: str) -> TaskDef:
        return self.rt.meta.get_task_def(name)

    def get_task_defs(self) -> list[TaskDef]:
        return [td for _, td in sorted(self.rt.meta.task_defs.items())]

    async def delete_task_def(self, name: str) -> None:
        self.rt.meta.remove_task_def(name)
        self.rt.committer.delete_task_def(name)
        await self.rt.committer.barrier()

    def validate_workflow_def(self, data: Any) -> None:
        parse_workflow_def(data, "validateWorkflowDef.workflowDef", self.rt.meta.task_defs)

    async def register_workflow_def(self, data: Any, *, overwrite: bool = False) -> None:
        """``MetadataResource.create``: a blank name goes straight to validation; otherwise an
        existing name+version is a 409 (before validation) unless ``overwrite``, which validates
        as ``updateWorkflowDef``."""
        wd: WorkflowDef = WorkflowDef.parse(data)
        exists = bool(wd.name and wd.name.strip()) and wd.version in self.rt.meta.workflow_defs.get(wd.name, {})
        if exists and not overwrite:
            raise Conflict(f"Workflow with {wd.name}.{wd.version} already exists!")
        path = "updateWorkflowDef.workflowDef" if exists else "registerWorkflowDef.workflowDef"
        raise_if(workflow_def_errors(wd, path, self.rt.meta.task_defs))
        now = self.rt.clock()
        if exists:
            wd.createTime = self.rt.meta.get_workflow_def(wd.name, wd.version).createTime
            wd.updateTime = now
        else:
            wd.createTime = now
        self._put_workflow_def(wd)
        await self.rt.committer.barrier()

    def _put_workflow_def(self, wd: WorkflowDef) -> None:
        text = dumps(wd.to_json())  # serialisable before it is kept
        self.rt.meta.put_workflow_def(wd)
        self.rt.committer.workflow_def(wd.name, wd.version, text)

    async def update_workflow_defs(self, defs: Any) -> list[str]:
        """Create or replace each definition; the names written (conductor-oss's bulk response)."""
        if not isinstance(defs, list):
            raise MalformedBody("Cannot deserialize value of type `java.util.ArrayList` from Object value")
        if not defs:  # MetadataService.updateWorkflowDef(List): @Size(min = 1)
            raise validation_error("updateWorkflowDef.workflowDefList", "WorkflowDefList is empty")
        parsed: list[WorkflowDef] = []
        errs: list[dict[str, Any]] = []  # every element's violations, in one 400
        for i, d in enumerate(defs):
            if d is None:  # List<@NotNull WorkflowDef>
                path = f"updateWorkflowDef.workflowDefList[{i}].<list element>"
                errs.append({"path": path, "message": "WorkflowDef cannot be null"})
                continue
            wd: WorkflowDef = WorkflowDef.parse(d)
            errs.extend(workflow_def_errors(wd, f"updateWorkflowDef.workflowDefList[{i}]", self.rt.meta.task_defs))
            parsed.append(wd)
        raise_if(errs)
        now = self.rt.clock()
        names: list[str] = []
        for wd in parsed:
            prev = self.rt.meta.workflow_defs.get(wd.name, {}).get(wd.version)
            wd.createTime = prev.createTime if prev is not None else now
            wd.updateTime = now
            self._put_workflow_def(wd)
            names.append(wd.name)
        await self.rt.committer.barrier()
        return names

    def get_workflow_def(self, name: str, version: int | None = None) -> WorkflowDef:
        return self.rt.meta.get_workflow_def(name, version)

    def get_workflow_defs(self) -> list[WorkflowDef]:
        return self.rt.meta.all_workflow_defs()

    def get_workflow_names(self) -> list[str]:
        return sorted(self.rt.meta.workflow_defs)

    def get_workflow_names_and_versions(self) -> dict[str, list[WorkflowDef]]:
        return {
            name: [wd for _, wd in sorted(versions.items())]
            for name, versions in sorted(self.rt.meta.workflow_defs.items())
        }

    def get_workflow_versions(self, name: str) -> list[WorkflowDef]:
        versions = self.rt.meta.workflow_defs.get(name) or {}  # unknown name: [] (MetadataDAO.getWorkflowVersions)
        return [wd for _, wd in sorted(versions.items())]

    def get_latest_workflow_defs(self) -> list[WorkflowDef]:
        return [versions[max(versions)] for _, versions in sorted(self.rt.meta.workflow_defs.items())]

    async def delete_workflow_def(self, name: str, version: int) -> None:
        self.rt.meta.remove_workflow_def(name, version)
        self.rt.committer.delete_workflow_def(name, version)
        await self.rt.committer.barrier()

    # ------------------------------------------------------------------------------------------
