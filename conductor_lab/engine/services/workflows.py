"""Workflow operations (conductor-oss ``WorkflowService``): start, read, correlate, search, terminate,
remove, decide. Changes are applied through the ``WorkflowExecutor`` and committed before the call
returns.
"""

from __future__ import annotations

from typing import Any

import orjson

from conductor_lab.engine import search
from conductor_lab.engine.model import StartWorkflowRequest, Task, Workflow, WorkflowStatus
from conductor_lab.engine.runtime import Runtime
from conductor_lab.engine.workflow_executor import WorkflowExecutor, output_or_empty
from conductor_lab.errors import Conflict, InvalidInput, MalformedBody, NotFound


class WorkflowService:
    def __init__(self, rt: Runtime, wx: WorkflowExecutor) -> None:
        self.rt = rt
        self.wx = wx

    async def start_workflow(self, request: Any) -> str:
        if not isinstance(request, dict):
            raise MalformedBody("Cannot deserialize StartWorkflowRequest from a non-object JSON value")
        if "input" in request and request["input"] is None and not request.get("externalInputPayloadStoragePath"):
            raise InvalidInput("NULL input passed when starting workflow")
        r: StartWorkflowRequest = StartWorkflowRequest.parse(request)
        wf = self.wx.start(r)
        await self.rt.committer.barrier()
        return wf.workflowId

    async def start_workflow_by_name(
        self,
        name: str,
        input: Any,
        *,
        version: int | None = None,
        correlation_id: str | None = None,
        priority: int = 0,
    ) -> str:
        if input is not None and not isinstance(input, dict):
            raise MalformedBody("Cannot deserialize value of type `java.util.LinkedHashMap` from a non-object value")
        req: dict[str, Any] = {"name": name, "version": version, "correlationId": correlation_id}
        req["input"] = input if input is not None else {}
        req["priority"] = priority
        return await self.start_workflow(req)

    async def get_workflow(self, workflow_id: str) -> Workflow:
        """A workflow execution with its tasks (NotFound if unknown)."""
        return await self.rt.workflow(workflow_id)

    def definition_json(self, wf: Workflow) -> dict[str, Any] | None:
        """The definition snapshot the execution runs, as stored (``workflowDefinition``)."""
        return self.rt.meta.snapshot_json.get(wf.snapshotId)

    async def get_workflow_tasks(
        self, workflow_id: str, *, start: int = 0, count: int = 15, statuses: list[str] | None = None
    ) -> tuple[int, list[Task]]:
        """(how many tasks match, the page of them)."""
        wf = await self.rt.workflow(workflow_id)
        wanted = {s.upper() for s in statuses} if statuses else None
        tasks = [t for t in wf.tasks if wanted is None or t.status.value in wanted]
        return len(tasks), tasks[start : start + count]

    async def get_correlated(
        self, name: str, correlation_id: str, *, include_closed: bool = False
    ) -> list[Workflow]:
        await self.rt.committer.barrier()
        statuses = None if include_closed else ("RUNNING",)
        ids = await self.rt.read(
            lambda: self.rt.store.workflow_ids(name, statuses=statuses, correlation_id=correlation_id)
        )
        out = []
        for wid in ids:
            try:
                wf = await self.rt.workflow(wid)
            except NotFound:
                continue
            if include_closed or wf.status == WorkflowStatus.RUNNING:
                out.append(wf)
        return out

    async def get_correlated_batch(
        self, name: str, correlation_ids: Any, *, include_closed: bool = False
    ) -> dict[str, list[Workflow]]:
        if not isinstance(correlation_ids, list):
            raise MalformedBody("Cannot deserialize value of type `java.util.ArrayList` from Object value")
        return {
            str(cid): await self.get_correlated(name, str(cid), include_closed=include_closed)
            for cid in correlation_ids
        }

    async def running_workflow_ids(
        self, name: str, *, version: int = 1, start_time: int | None = None, end_time: int | None = None
    ) -> list[str]:
        if start_time and end_time:
            await self.rt.committer.barrier()
            return await self.rt.read(
                lambda: self.rt.store.workflow_ids(name, version=version, start_time=start_time, end_time=end_time)
            )
        return [
            wf.workflowId
            for wf in self.rt.workflows.values()
            if wf.status == WorkflowStatus.RUNNING
            and wf.definition.name == name
            and wf.definition.version == version
        ]

    async def remove_workflow(self, workflow_id: str, *, archive: bool = True) -> None:
        wf = await self.rt.workflow(workflow_id)
        if archive and not wf.status.terminal:
            raise InvalidInput(f"Cannot archive workflow: {workflow_id} with status: {wf.status.value}")
        self.rt.forget(workflow_id)
        self.rt.committer.delete_workflow(workflow_id)
        await self.rt.committer.barrier()

    async def terminate_workflow(self, workflow_id: str, reason: str | None = None) -> None:
        wf = await self.rt.workflow(workflow_id)
        if wf.status == WorkflowStatus.COMPLETED:
            raise Conflict("Cannot terminate a COMPLETED workflow.")
        if wf.status == WorkflowStatus.TERMINATED:
            return
        self.wx.end(wf, WorkflowStatus.TERMINATED, reason, output_or_empty(wf), self.rt.clock())
        self.wx.timers.rearm()
        await self.rt.committer.barrier()

    async def decide(self, workflow_id: str) -> None:
        wf = await self.rt.workflow(workflow_id)
        self.wx.run(wf)
        self.wx.timers.rearm()
        await self.rt.committer.barrier()

    async def search_workflows(
        self,
        *,
        start: int = 0,
        size: int = 100,
        sort: str | None = None,
        free_text: str = "*",
        query: str | None = None,
    ) -> dict[str, Any]:
        q = search.parse(start=start, size=size, sort=sort, free_text=free_text, query=query)
        await self.rt.committer.barrier()
        total, rows = await self.rt.read(self.rt.store.search_workflows, q)
        return {"totalHits": total, "results": [search.summary(orjson.loads(r.json)) for r in rows]}

    # ------------------------------------------------------------------------------------------
