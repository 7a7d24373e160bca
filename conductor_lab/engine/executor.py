"""The executor: the one place that applies decisions to state, store and queue.

It runs on one asyncio event loop (Tornado's), so it needs no locks. Every public coroutine that
changes state applies its change synchronously (decide, schedule, queue), then awaits the group
commit before answering: an answered request is durable.

Hot state (running workflows, their tasks, queues, timers) lives in memory; DuckDB is the
durable copy and serves what is not in memory (finished workflows, logs, search).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import orjson

from conductor_lab.engine import ids, search
from conductor_lab.engine.commit import GroupCommitter, dumps
from conductor_lab.engine.decide import Decision, decide, workflow_output
from conductor_lab.engine.events import EventService
from conductor_lab.engine.httpcall import HttpCaller
from conductor_lab.engine.metadata import Metadata, parse_task_def, parse_workflow_def, raise_if
from conductor_lab.engine.model import (
    EMPTY,
    RESULT_STATUS_NAMES,
    StartWorkflowRequest,
    Task,
    TaskDef,
    TaskResult,
    TaskStatus,
    Workflow,
    WorkflowDef,
    WorkflowStatus,
    WorkflowTask,
    poll_data,
    summary,
    task_exec_log,
)
from conductor_lab.engine.queue import MemoryQueue
from conductor_lab.engine.store.base import LogRow, PollDataRow, Store, TransitionRow
from conductor_lab.engine.tasks import type_of
from conductor_lab.engine.tasks.base import Outcome, Publish, StartWorkflow, base_ref
from conductor_lab.engine.tasks.sub_workflow import child_result
from conductor_lab.errors import (
    ConductorLabError,
    Conflict,
    InvalidInput,
    MalformedBody,
    NotFound,
    validation_error,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: decider passes one workflow may take in one go before yielding the loop to others
MAX_DECIDE_PASSES = 2000
MAX_REASON = 500
ACTIVE_WORKER_WINDOW_MS = 10_000
MAX_LOGS_PER_RESULT = 10
POLL_DATA_PERSIST_MS = 1000


def system_clock() -> int:
    return time.time_ns() // 1_000_000


class Executor:
    """Conductor's workflow executor over a ``Store`` and an in-process queue."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], int] | None = None,
        finished_cache: int = 10_000,
        new_id: Callable[[], str] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock or system_clock
        self._new_id = new_id or ids.new_id
        self.meta = Metadata()
        self.queue = MemoryQueue(self.clock)
        self.workflows: dict[str, Workflow] = {}
        self.tasks: dict[str, Task] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._finished_cap = finished_cache
        self._timers: list[tuple[int, int, str]] = []
        self._wake: dict[str, int] = {}  # workflow id -> due of its live timer entry
        self._timer_seq = 0
        self._timer_handle: asyncio.TimerHandle | None = None
        self._timer_due: int | None = None
        self.poll_times: dict[tuple[str, str], tuple[str | None, int]] = {}
        self._poll_persisted: dict[tuple[str, str], int] = {}
        self._reader = ThreadPoolExecutor(max_workers=2, thread_name_prefix="conductor-lab-read")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._committer: GroupCommitter | None = None
        # decisions: one workflow decided at a time; runs asked for meanwhile wait their turn
        self._deciding = False
        self._again: dict[str, list[Task] | None] = {}
        # asynchronous task work (HTTP calls, long scripts), by task id
        self._jobs: dict[str, asyncio.Task[None]] = {}
        self._scripts = ThreadPoolExecutor(max_workers=2, thread_name_prefix="conductor-lab-script")
        self.http = HttpCaller()
        self.events = EventService(self)

    # ------------------------------------------------------------------------------------------
    # lifecycle

    @property
    def committer(self) -> GroupCommitter:
        assert self._committer is not None, "Executor.start() was not awaited"
        return self._committer

    async def start(self) -> None:
        """Load definitions and running workflows from the store; start timers and commits."""
        self._loop = asyncio.get_running_loop()
        self._committer = GroupCommitter(self.store, self._loop)
        await self._read(self._recover)
        self._rearm()

    async def close(self) -> None:
        for job in list(self._jobs.values()):
            job.cancel()
        await self.http.aclose()
        self._scripts.shutdown(wait=False, cancel_futures=True)
        if self._committer is not None:
            await self._committer.flush()
            self._committer.close()
        if self._timer_handle is not None:
            self._timer_handle.cancel()
        self._reader.shutdown(wait=True)
        self.store.close()

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        assert self._loop is not None
        return await self._loop.run_in_executor(self._reader, fn, *args)

    def _recover(self) -> None:
        """Runs in a reader thread before the server answers anything."""
        for text in self.store.load_task_defs():  # stored definitions were validated when registered
            self.meta.put_task_def(TaskDef.parse(orjson.loads(text)))
        for text in self.store.load_workflow_defs():
            wd: WorkflowDef = WorkflowDef.parse(orjson.loads(text))
            self.meta.put_workflow_def(wd)
        for row in self.store.load_poll_data():
            self.poll_times[(row.queue_name, row.domain)] = (row.worker_id, row.last_poll_time)
        now = self.clock()
        for stored, task_texts in self.store.load_running():
            wf = self._rebuild(stored.json, stored.snapshot_id, task_texts)
            self.workflows[wf.workflowId] = wf
            open_tasks = 0
            for t in wf.tasks:
                self.tasks[t.taskId] = t
                if t.status.terminal or t.retried:
                    continue
                open_tasks += 1
                if type_of(t.node.type).kind != "worker":
                    self._arm(wf.workflowId, now)
                elif t.status == TaskStatus.SCHEDULED:
                    due = t.updateTime + t.callbackAfterSeconds * 1000
                    self._enqueue(wf, t, max(0, due - now))
                elif t.responseTimeoutSeconds > 0:  # IN_PROGRESS: its lease runs out where it left off
                    due = t.updateTime + (t.responseTimeoutSeconds + t.callbackAfterSeconds) * 1000
                    self.queue.lease(t.taskId, max(0, due - now))
            if open_tasks == 0 or wf.definition.timeoutSeconds > 0 or self._has_deadlines(wf):
                self._arm(wf.workflowId, now)
        self.events.recover()

    @staticmethod
    def _has_deadlines(wf: Workflow) -> bool:
        for t in wf.tasks:
            td = t.node.taskDefinition
            if td is not None and not t.status.terminal and (td.pollTimeoutSeconds or td.totalTimeoutSeconds):
                return True
        return False

    def _rebuild(self, wf_text: str, snapshot_id: str, task_texts: list[str]) -> Workflow:
        snap = self.meta.snapshots.get(snapshot_id)
        if snap is None:
            text = self.store.load_snapshot(snapshot_id)
            if text is None:
                raise ConductorLabError(f"definition snapshot {snapshot_id} is missing from the store")
            snap = self.meta.add_snapshot(snapshot_id, text)
        wf = Workflow.from_state(orjson.loads(wf_text), snap, snapshot_id)
        for text in task_texts:
            data = orjson.loads(text)
            ref = data.get("referenceTaskName") or ""
            base = ref.split("__", 1)[0] if data.get("iteration") else ref
            runtime = data.get("workflowTask")
            if runtime is not None:  # created at run time (dynamic fork branch): kept with the task
                node = WorkflowTask.parse(runtime)
                node.runtime = True
            else:
                node = snap.node(base) or WorkflowTask.parse(
                    {"name": data.get("taskDefName") or ref, "taskReferenceName": ref, "type": data.get("taskType")}
                )
            wf.tasks.append(Task.from_state(data, node))
        return wf

    # ------------------------------------------------------------------------------------------
    # timers: one heap of (due ms, seq, workflow id) + the queue's visibility delays

    def _arm(self, workflow_id: str, due: int) -> None:
        """Make sure the workflow is decided again at ``due`` (one live entry per workflow)."""
        current = self._wake.get(workflow_id)
        if current is not None and current <= due:
            return  # an earlier check is armed; that decide re-arms the later deadline
        self._wake[workflow_id] = due
        self._timer_seq += 1
        heapq.heappush(self._timers, (due, self._timer_seq, workflow_id))
        if len(self._timers) > 2 * len(self._wake) + 1024:
            # drop superseded entries so the heap stays proportional to live timers
            self._timers = [e for e in self._timers if self._wake.get(e[2]) == e[0]]
            heapq.heapify(self._timers)

    def _rearm(self) -> None:
        if self._loop is None:
            return
        due = self._timers[0][0] if self._timers else None
        for qdue in (self.queue.next_due(), self.queue.next_lease_expiry()):
            if qdue is not None and (due is None or qdue < due):
                due = qdue
        if due is None:
            return
        if self._timer_handle is not None and self._timer_due is not None and self._timer_due <= due:
            return
        if self._timer_handle is not None:
            self._timer_handle.cancel()
        delay = max(0.0, (due - self.clock()) / 1000.0)
        self._timer_due = due
        self._timer_handle = self._loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer_handle = None
        self._timer_due = None
        try:
            self.run_timers()
        except Exception:
            log.exception("timer processing failed")
        self._rearm()

    def run_timers(self) -> int:
        """Fire every timer due at ``clock()`` (tests with an injected clock call this)."""
        now = self.clock()
        self.queue.promote_due()
        due: list[str] = []  # workflow ids to decide now
        for task_id in self.queue.expired_leases():  # response timeouts: the decider judges them
            t = self.tasks.get(task_id)
            if t is not None:
                due.append(t.workflowInstanceId)
        while self._timers and self._timers[0][0] <= now:
            at, _, wf_id = heapq.heappop(self._timers)
            if self._wake.get(wf_id) == at:  # else superseded by an earlier entry
                del self._wake[wf_id]
                due.append(wf_id)
        fired = 0
        for wf_id in dict.fromkeys(due):
            wf = self.workflows.get(wf_id)
            if wf is not None and not wf.status.terminal:
                self._run(wf)
                fired += 1
        self._rearm()
        return fired

    # ------------------------------------------------------------------------------------------
    # applying decisions

    def _run(self, wf: Workflow, changed: list[Task] | None = None) -> None:
        """Decide and apply until nothing changes (system tasks advance in between).

        ``changed``: the tasks changed since the workflow was last decided (``None``: a full
        pass). Runs asked for while another is applying (a child workflow ending inside its
        parent's pass) are queued and taken in turn, so no decision is applied re-entrantly.
        """
        key = wf.workflowId
        if key in self._again:
            prev = self._again[key]
            self._again[key] = None if prev is None or changed is None else prev + changed
        else:
            self._again[key] = changed
        if self._deciding:
            return
        self._deciding = True
        try:
            while self._again:
                wf_id, hint = next(iter(self._again.items()))
                del self._again[wf_id]
                target = self.workflows.get(wf_id)
                if target is not None and not target.status.terminal:
                    self._decide_until_settled(target, hint)
        finally:
            self._deciding = False

    def _decide_until_settled(self, wf: Workflow, changed: list[Task] | None) -> None:
        for _ in range(MAX_DECIDE_PASSES):
            now = self.clock()
            d = decide(wf, now, new_id=self._new_id, changed=changed, defs=self.meta)
            if d.wake_at is not None:
                self._arm(wf.workflowId, d.wake_at)
            if not d.changed:
                return
            self._apply(wf, d, now)
            if d.complete is not None:
                return
            changed = d.touched()
        # a long chain of system tasks: let other work in, then go on from a full pass
        log.info("workflow %s: %d decider passes, continuing on the next loop turn", wf.workflowId, MAX_DECIDE_PASSES)
        assert self._loop is not None
        self._loop.call_soon(self._continue, wf.workflowId)

    def _continue(self, workflow_id: str) -> None:
        wf = self.workflows.get(workflow_id)
        if wf is not None and not wf.status.terminal:
            self._run(wf)
            self._rearm()

    def _apply(self, wf: Workflow, d: Decision, now: int) -> None:
        c = self.committer
        for t, changes in d.updates:
            old = t.status
            for k, v in changes.items():
                setattr(t, k, v)
            t.updateTime = now
            self._task_changed(t, old)
            if t.status.terminal:
                self._dequeue(t.taskId)
        if d.remove:
            self._remove_tasks(wf, d.remove)
        for t in d.schedule:
            t.seq = len(wf.tasks) + 1
            wf.tasks.append(t)
            self.tasks[t.taskId] = t
            self._task_changed(t, None)
            if type_of(t.node.type).kind == "worker":
                t.domain = self._domain_for(wf, t)
                self._enqueue(wf, t, t.callbackAfterSeconds * 1000)
        if d.variables:
            wf.variables = {**wf.variables, **d.variables}
        if d.complete is not None:
            self._end(wf, d.complete, d.reason, d.output, now, cancel_open=d.cancel_open)
        else:
            wf.updateTime = now
            c.workflow(wf)
            for t in d.run_async:
                self._launch(wf, t)
        for t, effect in d.effects:
            self._effect(wf, t, effect)

    def _remove_tasks(self, wf: Workflow, tasks: list[Task]) -> None:
        """Delete tasks from the execution (DO_WHILE ``keepLastN``)."""
        gone = {t.taskId for t in tasks}
        wf.tasks = [t for t in wf.tasks if t.taskId not in gone]
        wf.index = None  # the index only follows appends
        for tid in gone:
            self.tasks.pop(tid, None)
            self._dequeue(tid)
            self.committer.delete_task(tid)

    # ------------------------------------------------------------------------------------------
    # effects and asynchronous work of system tasks

    def _effect(self, wf: Workflow, t: Task, effect: StartWorkflow | Publish) -> None:
        if isinstance(effect, StartWorkflow):
            self._start_from_task(wf, t, effect)
        else:
            self.events.publish(effect.queue, effect.message_id, effect.payload)

    def _start_from_task(self, wf: Workflow, t: Task, effect: StartWorkflow) -> None:
        """Start a sub-workflow (linked to ``t``) or a START_WORKFLOW target; failures fail ``t``."""
        try:
            request: StartWorkflowRequest = StartWorkflowRequest.parse(effect.request)
            parent = (wf, effect.parent_task) if effect.parent_task is not None else None
            self._start(request, workflow_id=effect.workflow_id, parent=parent)
        except Exception as exc:  # no definition, invalid input: the task fails, the parent goes on
            message = exc.message if isinstance(exc, ConductorLabError) else str(exc)
            self._task_outcome(
                wf,
                t,
                Outcome(TaskStatus.FAILED, output={**t.outputData, "error": message}, reason=message),
                force=True,
            )

    def _launch(self, wf: Workflow, t: Task) -> None:
        """Run a task type's asynchronous work (once per task at a time)."""
        if t.taskId in self._jobs or self._loop is None:
            return
        job = self._loop.create_task(self._job(wf.workflowId, t))
        self._jobs[t.taskId] = job

    async def _job(self, workflow_id: str, t: Task) -> None:
        try:
            outcome = await type_of(t.node.type).run(t, self)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("task %s (%s) failed in its asynchronous work", t.taskId, t.taskType)
            outcome = Outcome(TaskStatus.FAILED, reason=f"{type(exc).__name__}: {exc}")
        finally:
            self._jobs.pop(t.taskId, None)
        wf = self.workflows.get(workflow_id)
        if wf is None or self.tasks.get(t.taskId) is not t:
            return
        self._task_outcome(wf, t, outcome)
        await self.committer.barrier()

    def _task_outcome(self, wf: Workflow, t: Task, outcome: Outcome, *, force: bool = False) -> None:
        """Apply an outcome that arrived from outside a decider pass, then decide the workflow."""
        if (t.status.terminal and not force) or wf.status.terminal:
            return
        now = self.clock()
        old = t.status
        for k, v in outcome.changes(t, now).items():
            setattr(t, k, v)
        t.updateTime = now
        if t.status.terminal:
            t.endTime = t.endTime or now
            self._dequeue(t.taskId)
        self._task_changed(t, old)
        if outcome.variables:
            wf.variables = {**wf.variables, **outcome.variables}
            self.committer.workflow(wf)
        if outcome.run_async:
            self._launch(wf, t)
        self._run(wf, [t])
        self._rearm()

    # Services for task types (engine.tasks.base.Services)

    async def in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        assert self._loop is not None
        return await self._loop.run_in_executor(self._scripts, fn, *args)

    def terminate_child(self, workflow_id: str, reason: str) -> None:
        wf = self.workflows.get(workflow_id)
        if wf is None or wf.status.terminal:
            return
        self._end(wf, WorkflowStatus.TERMINATED, reason, self._output_or_empty(wf), self.clock())

    @staticmethod
    def _output_or_empty(wf: Workflow) -> dict[str, Any]:
        try:
            return workflow_output(wf)
        except Exception:
            return {}

    def _task_changed(self, t: Task, old: TaskStatus | None) -> None:
        self.committer.task(t)
        if t.status != old:
            self.committer.transition(
                TransitionRow(
                    t.updateTime or self.clock(),
                    t.workflowInstanceId,
                    t.taskId,
                    t.referenceTaskName,
                    t.taskType,
                    t.status.value,
                    t.reasonForIncompletion if not t.status.successful else None,
                )
            )

    def _workflow_changed(self, wf: Workflow, old: WorkflowStatus | None) -> None:
        self.committer.workflow(wf)
        if wf.status != old:
            self.committer.transition(
                TransitionRow(
                    wf.updateTime, wf.workflowId, None, None, None, wf.status.value, wf.reasonForIncompletion
                )
            )

    def _end(
        self,
        wf: Workflow,
        status: WorkflowStatus,
        reason: str | None,
        output: dict[str, Any] | None,
        now: int,
        *,
        cancel_open: bool = False,
    ) -> None:
        old = wf.status
        wf.status = status
        wf.reasonForIncompletion = reason
        wf.output = output if output is not None else {}
        wf.endTime = now
        wf.updateTime = now
        if not status.successful or cancel_open:
            for t in wf.tasks:
                if not t.status.terminal:
                    prev = t.status
                    t.status = TaskStatus.CANCELED
                    t.endTime = now
                    t.updateTime = now
                    self._dequeue(t.taskId)
                    self._task_changed(t, prev)
                    job = self._jobs.pop(t.taskId, None)
                    if job is not None:
                        job.cancel()
                    type_of(t.node.type).cancel(t, self)
        failed = [t for t in wf.tasks if t.status in (TaskStatus.FAILED, TaskStatus.FAILED_WITH_TERMINAL_ERROR)]
        wf.failedReferenceTaskNames = sorted({t.referenceTaskName for t in failed}) or None
        wf.failedTaskNames = sorted({t.taskDefName for t in failed}) or None
        self._workflow_changed(wf, old)
        self._wake.pop(wf.workflowId, None)
        self._finish(wf.workflowId)
        if wf.parentWorkflowId:
            self._report_to_parent(wf)

    def _report_to_parent(self, child: Workflow) -> None:
        """A sub-workflow ended: its SUB_WORKFLOW task in the parent mirrors it (contract 4.12)."""
        parent = self.workflows.get(child.parentWorkflowId or "")
        t = self.tasks.get(child.parentWorkflowTaskId or "")
        if parent is None or t is None or t.status.terminal or parent.status.terminal:
            return
        if t.subWorkflowId != child.workflowId:
            return
        outcome = child_result(
            t,
            child.status,
            child.output,
            child.reasonForIncompletion,
            child.definition.name,
            child.definition.version,
            child.workflowId,
        )
        self._task_outcome(parent, t, outcome)

    def _finish(self, workflow_id: str) -> None:
        """Keep recently finished workflows in memory; forget the oldest beyond the cap."""
        self._finished[workflow_id] = None
        self._finished.move_to_end(workflow_id)
        while len(self._finished) > self._finished_cap:
            old_id, _ = self._finished.popitem(last=False)
            self._forget(old_id)

    def _forget(self, workflow_id: str) -> None:
        wf = self.workflows.pop(workflow_id, None)
        if wf is not None:
            for t in wf.tasks:
                self.tasks.pop(t.taskId, None)
                self._dequeue(t.taskId)

    # ------------------------------------------------------------------------------------------
    # queues and domains

    @staticmethod
    def _queue_name(t: Task) -> str:
        return f"{t.domain}:{t.taskType}" if t.domain else t.taskType

    def _enqueue(self, wf: Workflow, t: Task, delay_ms: int) -> None:
        """Make a worker task pollable in its queue after ``delay_ms``."""
        self.queue.push(self._queue_name(t), t.taskId, priority=wf.priority, delay_ms=delay_ms)

    def _dequeue(self, task_id: str) -> None:
        """The task is done with the queue: no queued entry, no response-timeout lease."""
        self.queue.remove(task_id)
        self.queue.release(task_id)

    def _domain_for(self, wf: Workflow, t: Task) -> str | None:
        mapping = wf.taskToDomain
        if not mapping:
            return None
        spec = mapping.get(t.taskType) or mapping.get("*")
        if not spec:
            return None
        domains = [d.strip() for d in spec.split(",") if d.strip()]
        now = self.clock()
        for dom in domains:
            if dom == "NO_DOMAIN":
                continue
            seen = self.poll_times.get((t.taskType, dom))
            if seen is not None and now - seen[1] <= ACTIVE_WORKER_WINDOW_MS:
                return dom
        if not domains or domains[-1] == "NO_DOMAIN":
            return None
        return domains[-1]

    # ------------------------------------------------------------------------------------------
    # loading workflows that are not in memory

    async def _workflow(self, workflow_id: str) -> Workflow:
        wf = self.workflows.get(workflow_id)
        if wf is not None:
            return wf
        await self.committer.barrier()
        wf = await self._read(self._load_stored, workflow_id)
        if wf is None:
            raise NotFound(f"No such workflow found by id: {workflow_id}")
        existing = self.workflows.get(workflow_id)  # loaded concurrently meanwhile
        if existing is not None:
            return existing
        self.workflows[workflow_id] = wf
        for t in wf.tasks:
            self.tasks[t.taskId] = t
        if wf.status.terminal:
            self._finish(workflow_id)
        return wf

    def _load_stored(self, workflow_id: str) -> Workflow | None:
        stored = self.store.get_workflow(workflow_id)
        if stored is None:
            return None
        return self._rebuild(stored.json, stored.snapshot_id, self.store.get_tasks(workflow_id))

    async def _task(self, task_id: str) -> tuple[Task, Workflow]:
        t = self.tasks.get(task_id)
        if t is None:
            await self.committer.barrier()
            text = await self._read(self.store.get_task, task_id)
            if text is None:
                raise NotFound(f"No such task found by id: {task_id}")
            wf_id = orjson.loads(text).get("workflowInstanceId")
            await self._workflow(wf_id)
            t = self.tasks.get(task_id)
            if t is None:
                raise NotFound(f"No such task found by id: {task_id}")
        wf = self.workflows.get(t.workflowInstanceId)
        if wf is None:
            wf = await self._workflow(t.workflowInstanceId)
        return t, wf

    # ------------------------------------------------------------------------------------------
    # metadata API

    async def register_task_defs(self, defs: Any) -> None:
        if not isinstance(defs, list):
            raise MalformedBody("Cannot deserialize value of type `java.util.ArrayList` from Object value")
        if not defs:
            raise validation_error("registerTaskDef.taskDefinitions", "TaskDefList cannot be empty or null")
        now = self.clock()
        parsed = [parse_task_def(d, f"registerTaskDef.taskDefinitions[{i}]") for i, d in enumerate(defs)]
        for td in parsed:
            td.createTime = now
            td.updateTime = 0
            self.meta.put_task_def(td)
            self.committer.task_def(td.name, dumps(td.to_json()))
        await self.committer.barrier()

    async def update_task_def(self, data: Any) -> None:
        td = parse_task_def(data, "updateTaskDef.taskDefinition")
        existing = self.meta.get_task_def(td.name) if td.name in self.meta.task_defs else None
        if existing is None:
            raise NotFound(f"No such taskType found by name: {td.name}")
        td.createTime = existing.createTime
        td.createdBy = existing.createdBy
        td.updateTime = self.clock()
        self.meta.put_task_def(td)
        self.committer.task_def(td.name, dumps(td.to_json()))
        await self.committer.barrier()

    def get_task_def(self, name: str) -> dict[str, Any]:
        return self.meta.get_task_def(name).to_json()

    def get_task_defs(self) -> list[dict[str, Any]]:
        return [td.to_json() for _, td in sorted(self.meta.task_defs.items())]

    async def delete_task_def(self, name: str) -> None:
        self.meta.remove_task_def(name)
        self.committer.delete_task_def(name)
        await self.committer.barrier()

    def validate_workflow_def(self, data: Any) -> None:
        parse_workflow_def(data)

    async def register_workflow_def(self, data: Any, *, overwrite: bool = False) -> None:
        wd = parse_workflow_def(data, "registerWorkflowDef.workflowDef")
        exists = wd.version in self.meta.workflow_defs.get(wd.name, {})
        if exists and not overwrite:
            raise Conflict(f"Workflow with {wd.name}.{wd.version} already exists!")
        now = self.clock()
        if exists:
            wd.createTime = self.meta.get_workflow_def(wd.name, wd.version).createTime
            wd.updateTime = now
        else:
            wd.createTime = now
        self._put_workflow_def(wd)
        await self.committer.barrier()

    def _put_workflow_def(self, wd: WorkflowDef) -> None:
        self.meta.put_workflow_def(wd)
        self.committer.workflow_def(wd.name, wd.version, dumps(wd.to_json()))

    async def update_workflow_defs(self, defs: Any) -> dict[str, Any]:
        if not isinstance(defs, list):
            raise MalformedBody("Cannot deserialize value of type `java.util.ArrayList` from Object value")
        if not defs:
            raise validation_error("updateWorkflowDef.workflowDefs", "WorkflowDef list name cannot be null or empty")
        parsed = [parse_workflow_def(d, f"updateWorkflowDef.workflowDefs[{i}]") for i, d in enumerate(defs)]
        now = self.clock()
        names: list[str] = []
        for wd in parsed:
            prev = self.meta.workflow_defs.get(wd.name, {}).get(wd.version)
            wd.createTime = prev.createTime if prev is not None else now
            wd.updateTime = now
            self._put_workflow_def(wd)
            names.append(wd.name)
        await self.committer.barrier()
        return {"bulkSuccessfulResults": names, "bulkErrorResults": {}}

    def get_workflow_def(self, name: str, version: int | None = None) -> dict[str, Any]:
        return self.meta.get_workflow_def(name, version).to_json()

    def get_workflow_defs(self) -> list[dict[str, Any]]:
        return [wd.to_json() for wd in self.meta.all_workflow_defs()]

    def get_workflow_names(self) -> list[str]:
        return sorted(self.meta.workflow_defs)

    def get_workflow_names_and_versions(self) -> dict[str, list[dict[str, Any]]]:
        return {
            name: [summary(wd) for _, wd in sorted(versions.items())]
            for name, versions in sorted(self.meta.workflow_defs.items())
        }

    def get_workflow_versions(self, name: str) -> list[dict[str, Any]]:
        versions = self.meta.workflow_defs.get(name)
        if not versions:
            raise NotFound(f"No such workflow found by name: {name}")
        return [summary(wd) for _, wd in sorted(versions.items())]

    def get_latest_workflow_defs(self) -> list[dict[str, Any]]:
        return [versions[max(versions)].to_json() for _, versions in sorted(self.meta.workflow_defs.items())]

    async def delete_workflow_def(self, name: str, version: int) -> None:
        self.meta.remove_workflow_def(name, version)
        self.committer.delete_workflow_def(name, version)
        await self.committer.barrier()

    # ------------------------------------------------------------------------------------------
    # workflow API

    async def start_workflow(self, request: Any) -> str:
        if not isinstance(request, dict):
            raise MalformedBody("Cannot deserialize StartWorkflowRequest from a non-object JSON value")
        if "input" in request and request["input"] is None and not request.get("externalInputPayloadStoragePath"):
            raise InvalidInput("NULL input passed when starting workflow")
        r: StartWorkflowRequest = StartWorkflowRequest.parse(request)
        wf = self._start(r)
        await self.committer.barrier()
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

    def _start(
        self,
        r: StartWorkflowRequest,
        *,
        workflow_id: str | None = None,
        parent: tuple[Workflow, Task] | None = None,
    ) -> Workflow:
        if r.priority < 0 or r.priority > 99:
            raise validation_error(
                "startWorkflow.startWorkflowRequest.priority", "priority: must be between 0 and 99", r.priority
            )
        if r.workflowDef is not None:
            wd = parse_workflow_def(r.workflowDef, "startWorkflow.startWorkflowRequest.workflowDef")
            registered = False
        else:
            if not r.name:
                raise validation_error(
                    "startWorkflow.startWorkflowRequest.name", "Workflow name cannot be null or empty"
                )
            try:
                wd = self.meta.get_workflow_def(r.name, r.version)
            except NotFound:
                raise NotFound(f"No such workflow defined. name={r.name}, version={r.version}") from None
            registered = True
        sid, snap, new_text = self.meta.snapshot_for(wd, registered=registered)
        if new_text is not None:
            self.committer.snapshot(sid, new_text)
        now = self.clock()
        wf = Workflow(workflow_id or self._new_id(), snap, sid, now)
        if parent is not None:
            wf.parentWorkflowId = parent[0].workflowId
            wf.parentWorkflowTaskId = parent[1].taskId
        inp = r.input or EMPTY
        if inp and snap.inputTemplate:
            inp = {**snap.inputTemplate, **inp}
        wf.input = inp
        wf.correlationId = r.correlationId
        wf.priority = r.priority
        wf.taskToDomain = dict(r.taskToDomain) if r.taskToDomain else None
        self.workflows[wf.workflowId] = wf
        self._workflow_changed(wf, None)
        try:
            self._run(wf)
        except Exception:
            self._forget(wf.workflowId)
            self.committer.delete_workflow(wf.workflowId)
            raise
        self._rearm()
        return wf

    def _workflow_json(self, wf: Workflow, include_tasks: bool = True) -> dict[str, Any]:
        return wf.to_json(include_tasks=include_tasks, definition_json=self.meta.snapshot_json.get(wf.snapshotId))

    async def get_workflow(self, workflow_id: str, *, include_tasks: bool = True) -> dict[str, Any]:
        return self._workflow_json(await self._workflow(workflow_id), include_tasks)

    async def get_workflow_status(
        self, workflow_id: str, *, include_output: bool = False, include_variables: bool = False
    ) -> dict[str, Any]:
        wf = await self._workflow(workflow_id)
        out: dict[str, Any] = {"workflowId": wf.workflowId}
        if wf.correlationId is not None:
            out["correlationId"] = wf.correlationId
        if include_output:
            out["output"] = wf.output
        if include_variables:
            out["variables"] = wf.variables
        out["status"] = wf.status.value
        return out

    async def get_workflow_tasks(
        self, workflow_id: str, *, start: int = 0, count: int = 15, statuses: list[str] | None = None
    ) -> dict[str, Any]:
        wf = await self._workflow(workflow_id)
        wanted = {s.upper() for s in statuses} if statuses else None
        tasks = [t for t in wf.tasks if wanted is None or t.status.value in wanted]
        return {"totalHits": len(tasks), "results": [t.to_json() for t in tasks[start : start + count]]}

    async def get_correlated(
        self, name: str, correlation_id: str, *, include_closed: bool = False, include_tasks: bool = False
    ) -> list[dict[str, Any]]:
        await self.committer.barrier()
        statuses = None if include_closed else ("RUNNING",)
        ids = await self._read(
            lambda: self.store.workflow_ids(name, statuses=statuses, correlation_id=correlation_id)
        )
        out = []
        for wid in ids:
            try:
                wf = await self._workflow(wid)
            except NotFound:
                continue
            if include_closed or wf.status == WorkflowStatus.RUNNING:
                out.append(self._workflow_json(wf, include_tasks))
        return out

    async def get_correlated_batch(
        self, name: str, correlation_ids: Any, *, include_closed: bool = False, include_tasks: bool = False
    ) -> dict[str, list[dict[str, Any]]]:
        if not isinstance(correlation_ids, list):
            raise MalformedBody("Cannot deserialize value of type `java.util.ArrayList` from Object value")
        return {
            str(cid): await self.get_correlated(
                name, str(cid), include_closed=include_closed, include_tasks=include_tasks
            )
            for cid in correlation_ids
        }

    async def running_workflow_ids(
        self, name: str, *, version: int = 1, start_time: int | None = None, end_time: int | None = None
    ) -> list[str]:
        if start_time and end_time:
            await self.committer.barrier()
            return await self._read(
                lambda: self.store.workflow_ids(name, version=version, start_time=start_time, end_time=end_time)
            )
        return [
            wf.workflowId
            for wf in self.workflows.values()
            if wf.status == WorkflowStatus.RUNNING
            and wf.definition.name == name
            and wf.definition.version == version
        ]

    async def remove_workflow(self, workflow_id: str, *, archive: bool = True) -> None:
        wf = await self._workflow(workflow_id)
        if archive and not wf.status.terminal:
            raise InvalidInput(f"Cannot archive workflow: {workflow_id} with status: {wf.status.value}")
        self._forget(workflow_id)
        self._finished.pop(workflow_id, None)
        self.committer.delete_workflow(workflow_id)
        await self.committer.barrier()

    async def terminate_workflow(self, workflow_id: str, reason: str | None = None) -> None:
        wf = await self._workflow(workflow_id)
        if wf.status == WorkflowStatus.COMPLETED:
            raise Conflict("Cannot terminate a COMPLETED workflow.")
        if wf.status == WorkflowStatus.TERMINATED:
            return
        self._end(wf, WorkflowStatus.TERMINATED, reason, self._output_or_empty(wf), self.clock())
        self._rearm()
        await self.committer.barrier()

    async def decide(self, workflow_id: str) -> None:
        wf = await self._workflow(workflow_id)
        self._run(wf)
        self._rearm()
        await self.committer.barrier()

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
        await self.committer.barrier()
        total, rows = await self._read(self.store.search_workflows, q)
        return {"totalHits": total, "results": [search.summary(orjson.loads(r.json)) for r in rows]}

    # ------------------------------------------------------------------------------------------
    # task API

    async def poll(
        self,
        task_type: str,
        *,
        worker_id: str | None = None,
        domain: str | None = None,
        count: int = 1,
        timeout_ms: int = 100,
    ) -> list[dict[str, Any]]:
        count = max(1, count)
        qname = f"{domain}:{task_type}" if domain else task_type
        self._record_poll(task_type, domain or "", worker_id)
        if timeout_ms > 0:
            ids = await self.queue.poll(qname, count, timeout_ms)
        else:
            ids = self.queue.pop(qname, count)
        if not ids:
            return []
        # Wait for the commit that created these tasks, not for the IN_PROGRESS marks made here
        # (docs/compat.md: a crash in between re-delivers, as when a worker dies).
        barrier = self.committer.barrier()
        out = [self._deliver(tid, worker_id) for tid in ids]
        self._rearm()
        await barrier
        return [t for t in out if t is not None]

    def _record_poll(self, task_type: str, domain: str, worker_id: str | None) -> None:
        """PollData in memory on every poll; persisted at most once a second per queue."""
        now = self.clock()
        key = (task_type, domain)
        prev = self.poll_times.get(key)
        self.poll_times[key] = (worker_id, now)
        if prev is None or prev[0] != worker_id or now - self._poll_persisted.get(key, 0) >= POLL_DATA_PERSIST_MS:
            self._poll_persisted[key] = now
            self.committer.poll_data(PollDataRow(task_type, domain, worker_id, now))

    def _deliver(self, task_id: str, worker_id: str | None) -> dict[str, Any] | None:
        """Hand a popped task to a worker: IN_PROGRESS, pollCount+1 (the poll is the ack)."""
        t = self.tasks.get(task_id)
        if t is None or t.status.terminal:
            return None
        wf = self.workflows.get(t.workflowInstanceId)
        if wf is None or wf.status.terminal:
            return None
        now = self.clock()
        old = t.status
        t.status = TaskStatus.IN_PROGRESS
        if not t.startTime:
            t.startTime = now
        t.pollCount += 1
        t.workerId = worker_id
        t.callbackAfterSeconds = 0
        t.updateTime = now
        self._task_changed(t, old)
        if t.responseTimeoutSeconds > 0:
            self.queue.lease(t.taskId, t.responseTimeoutSeconds * 1000)
        td = t.node.taskDefinition
        if td is not None and td.timeoutSeconds > 0 and t.pollCount == 1:  # the task clock starts now
            self._arm(wf.workflowId, t.startTime + (t.startDelayInSeconds + td.timeoutSeconds) * 1000)
        return t.to_json()

    async def update_task(self, result: Any) -> str:
        t = await self._update(result)
        await self.committer.barrier()
        return t.taskId

    async def update_task_v2(self, result: Any) -> dict[str, Any] | None:
        t = await self._update(result)
        nxt: dict[str, Any] | None = None
        if t.status.terminal:
            worker_id = result.get("workerId") if isinstance(result, dict) else None
            for tid in self.queue.pop(self._queue_name(t), 1):
                nxt = self._deliver(tid, worker_id)
        self._rearm()
        await self.committer.barrier()
        return nxt

    async def update_task_by_ref(
        self, workflow_id: str, ref: str, status: str, output: Any, *, worker_id: str | None = None
    ) -> str | None:
        if output is not None and not isinstance(output, dict):
            raise MalformedBody("Cannot deserialize value of type `java.util.LinkedHashMap` from a non-object value")
        if status not in RESULT_STATUS_NAMES:
            raise MalformedBody(f"No enum constant com.netflix.conductor.common.metadata.tasks.TaskResult.Status.{status}")
        wf = await self._workflow(workflow_id)
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
        await self.committer.barrier()
        return t.taskId

    async def _update(self, data: Any) -> Task:
        if not isinstance(data, dict):
            raise MalformedBody("Cannot deserialize TaskResult from a non-object JSON value")
        r: TaskResult = TaskResult.parse(data)
        errs = []
        if not r.workflowInstanceId:
            errs.append({"path": "updateTask.taskResult.workflowInstanceId", "message": "Workflow Id cannot be null or empty"})
        if not r.taskId:
            errs.append({"path": "updateTask.taskResult.taskId", "message": "Task ID cannot be null or empty"})
        raise_if(errs)
        assert r.taskId is not None
        t, wf = await self._task(r.taskId)
        now = self.clock()
        if r.extendLease:  # a heartbeat: only the response-timeout clock moves; nothing is re-queued
            if not t.status.terminal:
                t.updateTime = now
                self.queue.extend_lease(t.taskId, t.responseTimeoutSeconds * 1000)
                self.committer.task(t)
            return t
        if r.status is None:
            raise ConductorLabError(f"Task status cannot be null for task {r.taskId}")
        if t.status.terminal or wf.status.terminal:
            self._dequeue(t.taskId)
            return t
        self.queue.release(t.taskId)
        status = TaskStatus.of(r.status)
        worker = type_of(t.node.type).kind == "worker"
        old = t.status
        if status == TaskStatus.IN_PROGRESS and worker:
            status = TaskStatus.SCHEDULED
        t.status = status
        t.outputData = r.outputData if r.outputData is not None else {}
        if r.reasonForIncompletion is not None:
            t.reasonForIncompletion = r.reasonForIncompletion[:MAX_REASON]
        if r.workerId:
            t.workerId = r.workerId
        t.callbackAfterSeconds = max(0, r.callbackAfterSeconds)
        if r.subWorkflowId:
            t.subWorkflowId = r.subWorkflowId
        t.updateTime = now
        if status.terminal:
            t.endTime = now
            self.queue.remove(t.taskId)
        elif status == TaskStatus.SCHEDULED:
            self._enqueue(wf, t, t.callbackAfterSeconds * 1000)
        for entry in r.logs[:MAX_LOGS_PER_RESULT]:
            if isinstance(entry, dict) and entry.get("log") is not None:
                created = entry.get("createdTime")
                self.committer.log(LogRow(t.taskId, created if isinstance(created, int) else now, str(entry["log"])))
        self._task_changed(t, old)
        self._run(wf, [t])
        self._rearm()
        return t

    async def get_task(self, task_id: str) -> dict[str, Any]:
        t, _ = await self._task(task_id)
        return t.to_json()

    async def add_task_log(self, task_id: str, line: str) -> None:
        # conductor-oss stores the line without checking that the task exists
        self.committer.log(LogRow(task_id, self.clock(), line))
        await self.committer.barrier()

    async def get_task_logs(self, task_id: str) -> list[dict[str, Any]]:
        await self.committer.barrier()
        rows = await self._read(self.store.get_task_logs, task_id)
        return [task_exec_log(r.log, r.task_id, r.created_time) for r in rows]

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
        return self.queue.size(name)

    def queue_sizes(self, task_types: list[str]) -> dict[str, int]:
        return {tt: self.queue.size(tt) for tt in task_types}

    def queue_all(self) -> dict[str, int]:
        return self.queue.sizes()

    def poll_data(self, task_type: str) -> list[dict[str, Any]]:
        return [
            poll_data(q, d or None, w, ts) for (q, d), (w, ts) in sorted(self.poll_times.items()) if q == task_type
        ]

    def all_poll_data(self) -> list[dict[str, Any]]:
        return [poll_data(q, d or None, w, ts) for (q, d), (w, ts) in sorted(self.poll_times.items())]

    # ------------------------------------------------------------------------------------------
    # introspection (benchmarks, tests)

    def stats(self) -> dict[str, Any]:
        running = sum(1 for wf in self.workflows.values() if not wf.status.terminal)
        return {
            "workflows_in_memory": len(self.workflows),
            "running": running,
            "tasks_in_memory": len(self.tasks),
            "queued": sum(self.queue.sizes().values()),
            "timers": len(self._wake),
            "commits": self.committer.commits if self._committer else 0,
            "committed_rows": self.committer.rows if self._committer else 0,
        }
