"""Workflow operations (conductor-oss ``WorkflowService``): start, read, correlate, terminate,
remove, decide. Changes are applied through the ``WorkflowExecutor`` and committed before the call
returns.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from conductor_lab.engine import commands
from conductor_lab.engine.metadata import raise_if, workflow_def_errors
from conductor_lab.engine.model import (
    RerunWorkflowRequest,
    StartWorkflowRequest,
    Task,
    Workflow,
    WorkflowDef,
    WorkflowStatus,
)
from conductor_lab.engine.params import to_java_string
from conductor_lab.engine.runtime import Runtime
from conductor_lab.engine.store.archive import ArchivePolicy
from conductor_lab.engine.store.base import ArchivingStore
from conductor_lab.engine.workflow_executor import WorkflowExecutor
from conductor_lab.errors import (
    ConductorLabError,
    Conflict,
    InvalidInput,
    MalformedBody,
    NotFound,
    validation_error,
)

#: at most this many workflow ids in one bulk request (conductor-oss)
MAX_BULK = 1000
#: workflows of a bulk request changed per loop turn (their commits are shared)
BULK_GROUP = 32
#: ``WorkflowBulkService`` method of each bulk verb (the validation path of its id list)
BULK_METHODS = {
    "pause": "pauseWorkflow",
    "resume": "resumeWorkflow",
    "restart": "restart",
    "retry": "retry",
    "terminate": "terminate",
    "remove": "deleteWorkflow",
    "terminate-remove": "terminateRemove",
}


def _start_violation(prop: str, message: str, value: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"path": f"startWorkflow.startWorkflowRequest.{prop}", "message": message}
    if value is not None:
        item["invalidValue"] = value
    return item


class WorkflowService:
    def __init__(self, rt: Runtime, wx: WorkflowExecutor) -> None:
        self.rt = rt
        self.wx = wx
        #: ``--archive-after`` (set by the Executor): finished workflows past it are read-only
        self.archive: ArchivePolicy | None = None

    async def _writable(self, wf: Workflow) -> None:
        """Refuse (409) to change an archived workflow, or one old enough to be archived at any
        moment (``store/archive.py``): a change would write it back into the tables beside its
        archived copy. Also its parent, which a sub-workflow that runs again reopens.

        Call it right before the change, with no await in between: the age check is synchronous.
        """
        targets = [wf] if wf.status.terminal else []
        parent = self.rt.workflows.get(wf.parentWorkflowId or "")
        if parent is not None and parent.status.terminal:
            targets.append(parent)
        if not targets:
            return  # a running workflow is never archived
        store = self.rt.store
        archived: set[str] = set()
        if isinstance(store, ArchivingStore) and store.has_archive:
            archived = await self.rt.read(store.archived_ids, [w.workflowId for w in targets])
        policy, now = self.archive, self.rt.clock()
        for w in targets:
            due = policy is not None and w.status.terminal and policy.due(w.endTime, now)
            if w.workflowId in archived or due:
                why = f"it ended more than {policy.days:g} days ago" if due and policy else "moved to Parquet"
                whose = f"Workflow {w.workflowId}" if w is wf else f"The parent workflow {w.workflowId}"
                raise Conflict(
                    f"{whose} is archived ({why}): its history is read-only, "
                    "so retry, rerun, restart, remove and the other workflow verbs no longer apply"
                )

    async def start_workflow(self, request: Any) -> str:
        """Start from a ``StartWorkflowRequest``, with conductor-oss's checks in its order: bean
        validation of the request (``name`` @NotNull, ``priority`` 0..99, an inline ``workflowDef``:
        one 400 with every violation), then the definition (404), then the input (400)."""
        if not isinstance(request, dict):
            raise MalformedBody("Cannot deserialize StartWorkflowRequest from a non-object JSON value")
        r: StartWorkflowRequest = StartWorkflowRequest.parse(request)
        errs: list[dict[str, Any]] = []
        if r.name is None:  # StartWorkflowRequest.name: @NotNull, even with an inline workflowDef
            errs.append(_start_violation("name", "Workflow name cannot be null or empty"))
        if not 0 <= r.priority <= 99:  # StartWorkflowRequest.priority: @Min(0) @Max(99)
            bound = "maximum 99" if r.priority > 99 else "minimum 0"
            errs.append(_start_violation("priority", f"priority: {r.priority} should be {bound}", str(r.priority)))
        if r.workflowDef is not None:  # @Valid WorkflowDef
            wd: WorkflowDef = WorkflowDef.parse(r.workflowDef)
            errs.extend(workflow_def_errors(wd, "startWorkflow.startWorkflowRequest.workflowDef", self.rt.meta.task_defs))
        raise_if(errs)
        if r.workflowDef is None:  # MetadataMapperService.lookupForWorkflowDefinition
            assert r.name is not None
            if not r.name.strip():
                raise InvalidInput("Workflow name must be specified when searching for a definition")
            if self.rt.meta.find_workflow_def(r.name, r.version) is None:
                raise NotFound(f"No such workflow defined. name={r.name}, version={to_java_string(r.version)}")
        if "input" in request and request["input"] is None and not request.get("externalInputPayloadStoragePath"):
            raise InvalidInput("NULL input passed when starting workflow")  # WorkflowExecutorOps.validateWorkflow
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
        # WorkflowServiceImpl.startWorkflow(name, ...) reads the definition through MetadataService first
        if self.rt.meta.find_workflow_def(name, version) is None:
            raise NotFound(f"No such workflow found by name: {name}, version: {to_java_string(version)}")
        req: dict[str, Any] = {"name": name, "version": version, "correlationId": correlation_id}
        req["input"] = input if input is not None else {}
        req["priority"] = priority
        return await self.start_workflow(req)

    async def get_workflow(self, workflow_id: str) -> Workflow:
        """A workflow execution with its tasks (NotFound if unknown)."""
        return await self.rt.workflow(workflow_id)

    async def watch_workflow(
        self, workflow_id: str, version: str | None, timeout_s: float
    ) -> tuple[str, Workflow | None]:
        """Wait until the workflow's state differs from ``version``; answer (version, workflow).

        The live view's long poll: ``version`` is what an earlier call answered (None: answer at
        once). Returns ``(version, None)`` when nothing changed within ``timeout_s``. Wakes on the
        runtime's change event; a finished workflow that is not in memory cannot change until a
        verb loads it back, so the wait then costs a dict lookup per wake, not a store read.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout_s)
        wf: Workflow | None = await self.rt.workflow(workflow_id)
        while True:
            changed = self.rt.change_event()  # before checking: a change made meanwhile sets it
            if wf is not None:
                current = workflow_version(wf)
                if current != version:
                    return current, wf
            remaining = deadline - loop.time()
            if remaining <= 0:
                return version or "", None
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                return version or "", None
            wf = self.rt.workflows.get(workflow_id)

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
        await self._writable(wf)
        self.rt.forget(workflow_id)
        self.rt.committer.delete_workflow(workflow_id)
        await self.rt.committer.barrier()

    async def terminate_workflow(self, workflow_id: str, reason: str | None = None) -> None:
        wf = await self.rt.workflow(workflow_id)
        if wf.status == WorkflowStatus.COMPLETED:
            raise Conflict("Cannot terminate a COMPLETED workflow.")
        if wf.status == WorkflowStatus.TERMINATED:
            return
        await self._writable(wf)
        with self.rt.caused_by("terminate"):
            self.wx.terminate(wf, reason)
        self.wx.timers.rearm()
        await self.rt.committer.barrier()

    # -- control verbs (engine/commands.py) ------------------------------------------------------

    async def pause_workflow(self, workflow_id: str) -> None:
        wf = await self.rt.workflow(workflow_id)
        await self._writable(wf)
        self.wx.command(wf, commands.pause(wf), "pause")
        await self.rt.committer.barrier()

    async def resume_workflow(self, workflow_id: str) -> None:
        wf = await self.rt.workflow(workflow_id)
        await self._writable(wf)
        self.wx.command(wf, commands.resume(wf, self.rt.clock()), "resume")
        await self.rt.committer.barrier()

    async def retry_workflow(self, workflow_id: str, *, resume_subworkflow_tasks: bool = False) -> None:
        """Retry the failed tasks; with ``resume_subworkflow_tasks`` a failed sub-workflow is
        retried in place (its own failed task) instead of starting a new child."""
        wf = await self.rt.workflow(workflow_id)
        if resume_subworkflow_tasks and wf.status.terminal:
            child = await self._failed_child(wf)
            if child is not None:
                await self.retry_workflow(child.workflowId, resume_subworkflow_tasks=True)
                return
        await self._writable(wf)
        d = commands.retry(wf, self.rt.clock(), new_id=self.wx.new_id, defs=self.rt.meta)
        self.wx.command(wf, d, "retry")
        await self.rt.committer.barrier()

    async def _failed_child(self, wf: Workflow) -> Workflow | None:
        """The child of the first unsuccessful SUB_WORKFLOW task, when it ended unsuccessfully."""
        last: dict[str, Task] = {}
        for t in wf.tasks:
            if not t.retried:
                last[t.referenceTaskName] = t
        for t in last.values():
            if t.status.terminal and not t.status.successful:
                if t.node.type != "SUB_WORKFLOW" or not t.subWorkflowId:
                    return None
                try:
                    child = await self.rt.workflow(t.subWorkflowId)
                except NotFound:
                    return None
                return child if child.status.terminal and not child.status.successful else None
        return None

    async def restart_workflow(self, workflow_id: str, *, use_latest_definitions: bool = False) -> None:
        wf = await self.rt.workflow(workflow_id)
        await self._writable(wf)  # no await follows until the change
        definition = None
        if use_latest_definitions and wf.status.terminal:
            latest = self.rt.meta.find_workflow_def(wf.definition.name, None)
            if latest is None:  # WorkflowExecutorOps.restart
                raise NotFound(f"Unable to find latest definition for {workflow_id}")
            sid, snap, new_text = self.rt.meta.snapshot_for(latest, registered=True)
            if new_text is not None:
                self.rt.committer.snapshot(sid, new_text)
            definition = (sid, snap)
        self.wx.command(wf, commands.restart(wf, self.rt.clock(), definition), "restart")
        await self.rt.committer.barrier()

    async def rerun_workflow(self, workflow_id: str, request: Any) -> str:
        """Rerun (``RerunWorkflowRequest``) from the start or from a task, here or in a sub-workflow."""
        if not isinstance(request, dict):
            raise MalformedBody("Cannot deserialize RerunWorkflowRequest from a non-object JSON value")
        r: RerunWorkflowRequest = RerunWorkflowRequest.parse(request)
        wf = await self.rt.workflow(workflow_id)
        task_id = r.reRunFromTaskId
        if task_id and wf.status.terminal and not any(t.taskId == task_id for t in wf.tasks):
            child = await self._child_holding(wf, task_id)
            if child is None:
                raise InvalidInput(f"Task {task_id} not found")
            await self.rerun_workflow(child.workflowId, request)
            return workflow_id
        await self._writable(wf)
        d = commands.rerun(
            wf,
            self.rt.clock(),
            task_id=task_id or None,
            workflow_input=r.workflowInput,
            task_input=r.taskInput,
            correlation_id=r.correlationId,
        )
        self.wx.command(wf, d, "rerun")
        await self.rt.committer.barrier()
        return workflow_id

    async def _child_holding(self, wf: Workflow, task_id: str) -> Workflow | None:
        """The sub-workflow (at any depth) that has the task ``task_id``."""
        for t in wf.tasks:
            if t.node.type == "SUB_WORKFLOW" and t.subWorkflowId:
                try:
                    child = await self.rt.workflow(t.subWorkflowId)
                except NotFound:
                    continue
                if any(c.taskId == task_id for c in child.tasks):
                    return child
                deeper = await self._child_holding(child, task_id)
                if deeper is not None:
                    return deeper
        return None

    async def skip_task(self, workflow_id: str, ref: str, request: Any = None) -> None:
        """A SKIPPED task for ``ref`` (SkipTaskRequest ``taskInput`` / ``taskOutput`` if given)."""
        req = request if isinstance(request, dict) else {}
        task_input = req.get("taskInput") if isinstance(req.get("taskInput"), dict) else None
        task_output = req.get("taskOutput") if isinstance(req.get("taskOutput"), dict) else None
        wf = await self.rt.workflow(workflow_id)
        await self._writable(wf)
        d = commands.skip(
            wf, ref, self.rt.clock(), new_id=self.wx.new_id, task_input=task_input, task_output=task_output
        )
        self.wx.command(wf, d, "skip")
        await self.rt.committer.barrier()

    async def reset_callbacks(self, workflow_id: str) -> None:
        wf = await self.rt.workflow(workflow_id)
        await self._writable(wf)
        self.wx.command(wf, commands.reset_callbacks(wf), "resetcallbacks")
        await self.rt.committer.barrier()

    # -- bulk ---------------------------------------------------------------------------------

    async def bulk(self, verb: str, workflow_ids: Any, **options: Any) -> tuple[list[str], dict[str, str]]:
        """Apply one verb to each id in turn (failures do not stop the batch): (succeeded, errors)."""
        if not isinstance(workflow_ids, list) or not all(isinstance(i, str) for i in workflow_ids):
            raise MalformedBody("Cannot deserialize value of type `java.util.ArrayList<java.lang.String>`")
        path = f"{BULK_METHODS[verb]}.workflowIds"  # WorkflowBulkService: @NotEmpty @Size(max = 1000)
        if not workflow_ids:
            raise validation_error(path, "WorkflowIds list cannot be null.")
        if len(workflow_ids) > MAX_BULK:
            raise validation_error(path, f"Cannot process more than {MAX_BULK} workflows. Please use multiple requests.")
        steps: dict[str, Callable[[str], Awaitable[Any]]] = {
            "pause": self.pause_workflow,
            "resume": self.resume_workflow,
            "restart": lambda i: self.restart_workflow(
                i, use_latest_definitions=bool(options.get("use_latest_definitions"))
            ),
            "retry": self.retry_workflow,
            "terminate": lambda i: self.terminate_workflow(i, options.get("reason")),
            "remove": lambda i: self.remove_workflow(i, archive=bool(options.get("archive", True))),
        }
        plan = ["terminate", "remove"] if verb == "terminate-remove" else [verb]

        async def one(wid: str) -> tuple[int, str | None]:
            done = 0
            for step in plan:
                try:
                    await steps[step](wid)
                except ConductorLabError as exc:
                    return done, exc.message
                done += 1
            return done, None

        # the ids are taken in order, BULK_GROUP at a time: the verbs of a group apply one after
        # the other and share their commits; between groups the loop serves other requests
        results: list[tuple[int, str | None]] = []
        for i in range(0, len(workflow_ids), BULK_GROUP):
            group = workflow_ids[i : i + BULK_GROUP]
            await self.rt.preload(group)  # finished workflows no longer in memory: one read
            results.extend(await asyncio.gather(*(one(wid) for wid in group)))
        ok: list[str] = []
        errors: dict[str, str] = {}
        for wid, (done, error) in zip(workflow_ids, results, strict=True):
            ok.extend([wid] * done)  # terminate-remove: twice when both steps succeed, as upstream
            if error is not None:
                errors[wid] = error
        return ok, errors

    async def decide(self, workflow_id: str) -> None:
        wf = await self.rt.workflow(workflow_id)
        self.wx.run(wf)
        self.wx.timers.rearm()
        await self.rt.committer.barrier()

    # ------------------------------------------------------------------------------------------


def workflow_version(wf: Workflow) -> str:
    """A short token that changes whenever the workflow or one of its tasks changes."""
    parts = [wf.status.value, str(wf.updateTime), str(len(wf.tasks))]
    parts.extend(f"{t.taskId}:{t.status.value}:{t.updateTime}:{t.pollCount}" for t in wf.tasks)
    return hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()
