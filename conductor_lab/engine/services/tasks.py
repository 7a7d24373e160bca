"""Task operations (conductor-oss ``ExecutionService``): poll, update (by id, by reference,
with the next task), logs, queue sizes and poll data. Updates are applied through the
``WorkflowExecutor`` and committed before the call returns.
"""

from __future__ import annotations

import asyncio
from typing import Any

from conductor_lab.engine.metadata import raise_if
from conductor_lab.engine.model import (
    RESULT_STATUS_NAMES,
    Task,
    TaskResult,
    TaskStatus,
    Workflow,
)
from conductor_lab.engine.runtime import Runtime
from conductor_lab.engine.store.base import LogRow, PollDataRow
from conductor_lab.engine.tasks import type_of
from conductor_lab.engine.tasks.base import MAX_REASON, base_ref
from conductor_lab.engine.workflow_executor import WorkflowExecutor
from conductor_lab.errors import ConductorLabError, InvalidInput, MalformedBody, NotFound

MAX_LOGS_PER_RESULT = 10


#: the longest a poll may wait for a task (conductor-oss's TaskResource / gRPC BatchPoll check)
MAX_POLL_TIMEOUT_MS = 5000


def status_mismatch(status: str) -> str:
    """Spring's MethodArgumentTypeMismatchException for a ``{status}`` path variable that is not a
    ``TaskResult.Status`` (500), with the root cause (the enum lookup) at the end."""
    return (
        "Failed to convert value of type 'java.lang.String' to required type "
        f"'com.netflix.conductor.common.metadata.tasks.TaskResult$Status'; "
        f"No enum constant com.netflix.conductor.common.metadata.tasks.TaskResult.Status.{status}"
    )


def _violation(prop: str, message: str, value: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {"path": f"updateTask.taskResult.{prop}", "message": message}
    if value is not None:  # an empty string is shown; null is not
        item["invalidValue"] = value
    return item


class TaskService:
    def __init__(self, rt: Runtime, wx: WorkflowExecutor) -> None:
        self.rt = rt
        self.wx = wx

    async def poll(
        self,
        task_type: str,
        *,
        worker_id: str | None = None,
        domain: str | None = None,
        count: int = 1,
        timeout_ms: int = 100,
    ) -> list[Task]:
        """Up to ``count`` tasks of ``[domain:]task_type``, best first, within the task limits.

        Waits up to ``timeout_ms`` while the queue has nothing visible. When the head of the
        queue is held back by ``concurrentExecLimit`` or ``rateLimitPerFrequency`` the poll answers
        at once with what it could deliver (possibly nothing), as conductor-oss does; the held
        tasks stay at the head of the queue, in order (see ``_take``).
        """
        if timeout_ms > MAX_POLL_TIMEOUT_MS:  # conductor-oss's long-poll limit (REST and gRPC alike)
            raise InvalidInput(f"Long Poll Timeout value cannot be more than {MAX_POLL_TIMEOUT_MS // 1000} seconds")
        qname = f"{domain}:{task_type}" if domain else task_type
        self.rt.record_poll(task_type, domain or "", worker_id)
        self.rt.metrics.task_polled(qname)
        if count <= 0:  # conductor-oss's queue pops nothing for count 0 and answers at once (docs/compat.md)
            return []
        barrier: list[asyncio.Future[None]] = []
        out, held = self._take(qname, count, worker_id, barrier)
        if not out and not held and timeout_ms > 0:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_ms / 1000.0
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                woken = await self.rt.queue.wait(qname, remaining * 1000.0)
                out, held = self._take(qname, count, worker_id, barrier)
                if out or held or not woken:
                    break
                # woken, but another poller took the entry first: wait on until the deadline
        if not out:
            return []
        self.wx.timers.rearm()
        await barrier[0]
        return out

    def _take(
        self, qname: str, count: int, worker_id: str | None, barrier: list[asyncio.Future[None]] | None
    ) -> tuple[list[Task], bool]:
        """Deliver up to ``count`` visible tasks of ``qname`` in queue order; (delivered, held).

        Unknown and finished tasks are dropped from the queue (as conductor-oss). ``held`` says
        that a limit of the head task stopped the delivery: the task stays where it is and so
        does everything behind it. Before the first delivery ``barrier`` (if given) gets the
        commit barrier of the changes made so far: the poll answers once the tasks' creation is
        durable, not the IN_PROGRESS marks made here (docs/compat.md: a crash in between
        re-delivers, as when a worker dies).
        """
        rt = self.rt
        out: list[Task] = []
        held = False
        now = rt.clock()

        def admit(task_id: str) -> bool | None:
            nonlocal held
            t = rt.tasks.get(task_id)
            if t is None or t.status.terminal:
                return False
            wf = rt.workflows.get(t.workflowInstanceId)
            if wf is None or wf.status.terminal:
                return False
            if not rt.limits.admit(t, now):
                held = True
                return None
            if barrier is not None and not barrier:
                barrier.append(rt.committer.barrier())
            out.append(self._deliver(t, wf, worker_id, now))
            return True

        with rt.committer.deferred():  # the IN_PROGRESS marks: nobody waits for them
            rt.queue.take(qname, count, admit)
        return out, held

    def _deliver(self, t: Task, wf: Workflow, worker_id: str | None, now: int) -> Task:
        """Hand a task to a worker: IN_PROGRESS, pollCount+1 (the poll is the ack)."""
        old = t.status
        t.status = TaskStatus.IN_PROGRESS
        if not t.startTime:
            t.startTime = now
            self.rt.metrics.task_queue_wait(t, now)
        t.pollCount += 1
        t.workerId = worker_id
        t.callbackAfterSeconds = 0
        t.updateTime = now
        self.rt.task_changed(t, old)
        if t.responseTimeoutSeconds > 0:
            self.rt.queue.lease(t.taskId, t.responseTimeoutSeconds * 1000)
        td = t.node.taskDefinition
        if td is not None and td.timeoutSeconds > 0 and t.pollCount == 1:  # the task clock starts now
            self.wx.timers.arm(wf.workflowId, t.startTime + (t.startDelayInSeconds + td.timeoutSeconds) * 1000)
        return t

    async def update_task(self, result: Any) -> str:
        t = await self._update(result)
        await self.rt.committer.barrier()
        return t.taskId

    async def update_task_v2(self, result: Any) -> Task | None:
        """Update a task; the next task of the same type for the worker, if one is queued."""
        t = await self._update(result)
        nxt: Task | None = None
        if t.status.terminal:
            worker_id = result.get("workerId") if isinstance(result, dict) else None
            delivered, _ = self._take(self.rt.queue_name(t), 1, worker_id, None)
            nxt = delivered[0] if delivered else None
        self.wx.timers.rearm()
        await self.rt.committer.barrier()
        return nxt

    async def update_task_by_ref(
        self, workflow_id: str, ref: str, status: str, output: Any, *, worker_id: str | None = None
    ) -> str | None:
        if status not in RESULT_STATUS_NAMES:  # the path variable is converted before the body is read
            raise MalformedBody(status_mismatch(status))
        if output is not None and not isinstance(output, dict):
            raise MalformedBody("Cannot deserialize value of type `java.util.LinkedHashMap` from a non-object value")
        try:
            wf = await self.rt.workflow(workflow_id)
        except NotFound:  # conductor-oss finds no tasks for an unknown workflow: nothing updated
            return None
        target = None
        for t in wf.tasks:
            if not t.status.terminal and (t.referenceTaskName == ref or base_ref(t) == ref):
                target = t
                break
        if target is None:
            return None
        merged = {**target.outputData, **(output or {})}
        result = {
            "workflowInstanceId": workflow_id,
            "taskId": target.taskId,
            "status": status,
            "outputData": merged,
            "workerId": worker_id,
        }
        t = await self._update(result)
        await self.rt.committer.barrier()
        return t.taskId

    async def _update(self, data: Any) -> Task:
        if not isinstance(data, dict):
            raise MalformedBody("Cannot deserialize TaskResult from a non-object JSON value")
        r: TaskResult = TaskResult.parse(data)
        errs = []  # TaskResult: @NotEmpty workflowInstanceId, taskId (TaskService.updateTask: @Valid)
        if not r.workflowInstanceId:
            errs.append(_violation("workflowInstanceId", "Workflow Id cannot be null or empty", r.workflowInstanceId))
        if not r.taskId:
            errs.append(_violation("taskId", "Task ID cannot be null or empty", r.taskId))
        if errs:
            raise_if(errs)
        assert r.taskId is not None
        rt = self.rt
        # in memory (the usual case) without the coroutines that load from the store
        wf_known = r.extendLease or (r.workflowInstanceId or "") in rt.workflows
        t = rt.tasks.get(r.taskId)
        wf = rt.workflows.get(t.workflowInstanceId) if t is not None else None
        if t is None or wf is None or not wf_known:
            if not r.extendLease:  # conductor-oss reads the workflow first: its 404 names the workflow
                await rt.workflow(r.workflowInstanceId or "")
            t, wf = await rt.task(r.taskId)
        now = rt.clock()
        if r.extendLease:  # a heartbeat: only the response-timeout clock moves; nothing is re-queued
            if not t.status.terminal:
                t.updateTime = now
                self.rt.queue.extend_lease(t.taskId, t.responseTimeoutSeconds * 1000)
                self.rt.committer.task(t)
            return t
        if t.status.terminal or wf.status.terminal:  # ignored (200), status or not, as upstream
            self.rt.metrics.task_update_conflict(t, wf)
            self.rt.dequeue(t.taskId)
            return t
        if r.status is None:  # a NullPointerException upstream: 500 too (docs/compat.md)
            raise ConductorLabError(f"Task status cannot be null for task {r.taskId}")
        self.rt.queue.release(t.taskId)
        status = TaskStatus.of(r.status)
        worker = type_of(t.node.type).kind == "worker"
        old = t.status
        if status == TaskStatus.IN_PROGRESS and worker:
            status = TaskStatus.SCHEDULED
        t.status = status
        t.outputData = r.outputData if r.outputData is not None else {}
        # as conductor-oss's updateTask: the result's reason replaces the task's, also with none
        # (a retried attempt that completes does not keep the failed attempt's reason)
        t.reasonForIncompletion = r.reasonForIncompletion[:MAX_REASON] if r.reasonForIncompletion else None
        if r.workerId:
            t.workerId = r.workerId
        t.callbackAfterSeconds = max(0, r.callbackAfterSeconds)
        if r.subWorkflowId:
            t.subWorkflowId = r.subWorkflowId
        t.updateTime = now
        if status.terminal:
            t.endTime = now
            self.rt.queue.remove(t.taskId)
        elif status == TaskStatus.SCHEDULED:
            self.rt.enqueue(wf, t, t.callbackAfterSeconds * 1000)
        for entry in r.logs[:MAX_LOGS_PER_RESULT]:
            if isinstance(entry, dict) and entry.get("log") is not None:
                created = entry.get("createdTime")
                self.rt.committer.log(LogRow(t.taskId, created if isinstance(created, int) else now, str(entry["log"])))
        self.rt.task_changed(t, old)
        self.wx.run(wf, [t])
        self.wx.timers.rearm()
        return t

    async def get_task(self, task_id: str) -> Task:
        t, _ = await self.rt.task(task_id)
        return t

    async def add_task_log(self, task_id: str, line: str) -> None:
        # conductor-oss stores the line without checking that the task exists
        self.rt.committer.log(LogRow(task_id, self.rt.clock(), line))
        await self.rt.committer.barrier()

    async def get_task_logs(self, task_id: str) -> list[LogRow]:
        await self.rt.committer.barrier()
        rows: list[LogRow] = await self.rt.read(self.rt.store.get_task_logs, task_id)
        return rows

    def queue_size(
        self,
        task_type: str,
        *,
        domain: str | None = None,
        isolation_group_id: str | None = None,
        execution_namespace: str | None = None,
    ) -> int:
        name = f"{domain}:{task_type}" if domain else task_type
        if execution_namespace:
            name += f"@{execution_namespace}"
        if isolation_group_id:
            name += f"-{isolation_group_id}"
        return self.rt.queue.size(name)

    def queue_sizes(self, task_types: list[str]) -> dict[str, int]:
        return {tt: self.rt.queue.size(tt) for tt in task_types}

    def queue_all(self) -> dict[str, int]:
        return self.rt.queue.sizes()

    def poll_data(self, task_type: str) -> list[PollDataRow]:
        return [row for row in self.all_poll_data() if row.queue_name == task_type]

    def all_poll_data(self) -> list[PollDataRow]:
        return [PollDataRow(q, d, w, ts) for (q, d), (w, ts) in sorted(self.rt.poll_times.items())]

    def requeue(self, task_type: str) -> int:
        """Put every SCHEDULED worker task of ``task_type`` back into its queue (honouring what is
        left of its callback delay); how many."""
        now = self.rt.clock()
        count = 0
        for wf in self.rt.workflows.values():
            if wf.status.terminal:
                continue
            for t in wf.tasks:
                if t.taskType == task_type and t.status == TaskStatus.SCHEDULED and type_of(t.node.type).kind == "worker":
                    due = t.updateTime + t.callbackAfterSeconds * 1000
                    self.rt.enqueue(wf, t, max(0, due - now))
                    count += 1
        self.wx.timers.rearm()
        return count

    # ------------------------------------------------------------------------------------------
