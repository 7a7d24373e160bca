"""Runtime state: the engine's working copy of what runs, rebuilt from the store at start.

Running workflows (and recently finished ones) are held in memory with their tasks; DuckDB is
the durable copy and serves the rest. This module owns that state, loading what is not in
memory, recovery after a restart, the task queues and task domains, and recording changes for
the group commit. It decides nothing (``workflow_executor``) and answers no API (``services``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import orjson

from conductor_lab.engine.commit import GroupCommitter
from conductor_lab.engine.limits import Limits
from conductor_lab.engine.metadata import Metadata
from conductor_lab.engine.metrics import NO_METRICS, NullMetrics
from conductor_lab.engine.model import (
    Task,
    TaskDef,
    TaskStatus,
    Workflow,
    WorkflowDef,
    WorkflowStatus,
    WorkflowTask,
)
from conductor_lab.engine.queue import MemoryQueue
from conductor_lab.engine.store.base import PollDataRow, Store, TransitionRow
from conductor_lab.engine.tasks import type_of
from conductor_lab.errors import ConductorLabError, NotFound

log = logging.getLogger(__name__)

T = TypeVar("T")

#: a domain's workers count as active when they polled within this window (contract 6.11)
ACTIVE_WORKER_WINDOW_MS = 10_000
#: the ``taskToDomain`` entry that stands for the default (domain-less) queue
NO_DOMAIN = "NO_DOMAIN"
#: poll data is kept in memory on every poll and persisted at most this often per queue
POLL_DATA_PERSIST_MS = 1000
#: finished workflows kept in memory with their tasks (older ones are read from the store). Every
#: full pass of the cyclic collector walks them: ~4 us each, so 10,000 made 30-60 ms pauses of the
#: event loop under a sustained load; with 2,000 none took over 25 ms in 300 s runs
#: (docs/performance.md, "What stops the loop")
FINISHED_CACHE = 2_000


class Runtime:
    """Hot state over a ``Store``: workflows, tasks, queue, poll data, definitions."""

    def __init__(self, store: Store, clock: Callable[[], int], *, finished_cache: int = FINISHED_CACHE) -> None:
        self.store = store
        self.clock = clock
        self.meta = Metadata()
        self.queue = MemoryQueue(clock)
        self.workflows: dict[str, Workflow] = {}
        self.tasks: dict[str, Task] = {}
        #: concurrentExecLimit / rateLimitPerFrequency state, kept by ``task_changed``
        self.limits = Limits(self.tasks.get)
        self.poll_times: dict[tuple[str, str], tuple[str | None, int]] = {}
        self._poll_persisted: dict[tuple[str, str], int] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._finished_cap = finished_cache
        self._reader = ThreadPoolExecutor(max_workers=2, thread_name_prefix="conductor-lab-read")
        self.loop: asyncio.AbstractEventLoop | None = None
        self._committer: GroupCommitter | None = None
        #: the control verb whose changes are being recorded (``TransitionRow.cause``)
        self.cause: str | None = None
        #: set (and dropped) at the next task or workflow change; exists only while someone waits
        self._change: asyncio.Event | None = None
        #: the engine's metrics hooks (``engine/metrics.py``; set by the Executor)
        self.metrics: NullMetrics = NO_METRICS

    # ------------------------------------------------------------------------------------------
    # lifecycle

    @property
    def committer(self) -> GroupCommitter:
        assert self._committer is not None, "Executor.start() was not awaited"
        return self._committer

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._committer = GroupCommitter(self.store, loop)
        self._committer.metrics = self.metrics

    async def close(self) -> None:
        if self._committer is not None:
            await self._committer.flush()
            self._committer.close()
        self._reader.shutdown(wait=True)
        self.store.close()

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a store read on a reader thread (the loop keeps serving)."""
        assert self.loop is not None
        return await self.loop.run_in_executor(self._reader, fn, *args)

    # ------------------------------------------------------------------------------------------
    # recovery

    def recover(self, arm: Callable[[str, int], None]) -> None:
        """Load definitions and running workflows (runs in a reader thread before serving).

        Worker tasks go back into their queues where they left off; ``arm`` schedules a full
        decider pass for workflows that need one (open system tasks, deadlines, nothing open).
        """
        for text in self.store.load_task_defs():  # stored definitions were validated when registered
            self.meta.put_task_def(TaskDef.parse(orjson.loads(text)))
        for text in self.store.load_workflow_defs():
            wd: WorkflowDef = WorkflowDef.parse(orjson.loads(text))
            self.meta.put_workflow_def(wd)
        for row in self.store.load_poll_data():
            self.poll_times[(row.queue_name, row.domain)] = (row.worker_id, row.last_poll_time)
        now = self.clock()
        for stored, task_texts in self.store.load_running():
            wf = self.rebuild(stored.json, stored.snapshot_id, task_texts)
            self.workflows[wf.workflowId] = wf
            open_tasks = 0
            for t in wf.tasks:
                self.tasks[t.taskId] = t
                self.limits.track(t)
                if t.status.terminal or t.retried:
                    continue
                open_tasks += 1
                if type_of(t.node.type).kind != "worker":
                    arm(wf.workflowId, now)
                elif t.status == TaskStatus.SCHEDULED:
                    due = t.updateTime + t.callbackAfterSeconds * 1000
                    self.enqueue(wf, t, max(0, due - now))
                elif t.responseTimeoutSeconds > 0:  # IN_PROGRESS: its lease runs out where it left off
                    due = t.updateTime + (t.responseTimeoutSeconds + t.callbackAfterSeconds) * 1000
                    self.queue.lease(t.taskId, max(0, due - now))
            if open_tasks == 0 or wf.definition.timeoutSeconds > 0 or _has_deadlines(wf):
                arm(wf.workflowId, now)

    def rebuild(self, wf_text: str, snapshot_id: str, task_texts: list[str]) -> Workflow:
        """A workflow and its tasks from their stored JSON."""
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
            base = ref.rsplit("__", 1)[0] if data.get("iteration") and "__" in ref else ref
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
    # what is in memory

    async def workflow(self, workflow_id: str) -> Workflow:
        """A workflow, from memory or (finished ones) from the store; NotFound if unknown."""
        wf = self.workflows.get(workflow_id)
        if wf is not None:
            return wf
        await self.committer.barrier()
        wf = await self.read(self._load_stored, workflow_id)
        if wf is None:
            raise NotFound(f"No such workflow found by id: {workflow_id}")
        existing = self.workflows.get(workflow_id)  # loaded concurrently meanwhile
        if existing is not None:
            return existing
        self.workflows[workflow_id] = wf
        for t in wf.tasks:
            self.tasks[t.taskId] = t
            self.limits.track(t)
        if wf.status.terminal:
            self.finish(workflow_id)
        return wf

    async def preload(self, workflow_ids: list[str]) -> None:
        """Bring the stored ones of these workflows into memory with one read (bulk verbs)."""
        missing = [wid for wid in workflow_ids if wid not in self.workflows]
        if not missing:
            return
        await self.committer.barrier()
        stored = await self.read(self.store.get_workflows_with_tasks, missing)
        for wid, (row, task_texts) in stored.items():
            if wid in self.workflows:  # loaded concurrently meanwhile
                continue
            wf = self.rebuild(row.json, row.snapshot_id, task_texts)
            self.workflows[wid] = wf
            for t in wf.tasks:
                self.tasks[t.taskId] = t
            if wf.status.terminal:
                self.finish(wid)

    def _load_stored(self, workflow_id: str) -> Workflow | None:
        stored = self.store.get_workflow(workflow_id)
        if stored is None:
            return None
        return self.rebuild(stored.json, stored.snapshot_id, self.store.get_tasks(workflow_id))

    async def task(self, task_id: str) -> tuple[Task, Workflow]:
        """A task and its workflow; NotFound if unknown."""
        t = self.tasks.get(task_id)
        if t is None:
            await self.committer.barrier()
            text = await self.read(self.store.get_task, task_id)
            if text is None:
                raise NotFound(f"No such task found by id: {task_id}")
            await self.workflow(orjson.loads(text).get("workflowInstanceId"))
            t = self.tasks.get(task_id)
            if t is None:
                raise NotFound(f"No such task found by id: {task_id}")
        wf = self.workflows.get(t.workflowInstanceId)
        if wf is None:
            wf = await self.workflow(t.workflowInstanceId)
        return t, wf

    def finish(self, workflow_id: str) -> None:
        """Keep recently finished workflows in memory; forget the oldest beyond the cap."""
        self._finished[workflow_id] = None
        self._finished.move_to_end(workflow_id)
        while len(self._finished) > self._finished_cap:
            old_id, _ = self._finished.popitem(last=False)
            self.forget(old_id)

    def unfinish(self, workflow_id: str) -> None:
        """A finished workflow runs again (retry, restart, rerun): it must not be evicted."""
        self._finished.pop(workflow_id, None)

    @contextmanager
    def caused_by(self, cause: str) -> Iterator[None]:
        """Record the transitions made inside the block as caused by ``cause``."""
        prev, self.cause = self.cause, cause
        try:
            yield
        finally:
            self.cause = prev

    def forget(self, workflow_id: str) -> None:
        """Drop a workflow from memory (the store keeps it)."""
        self._finished.pop(workflow_id, None)
        wf = self.workflows.pop(workflow_id, None)
        if wf is not None:
            for t in wf.tasks:
                self.tasks.pop(t.taskId, None)
                self.dequeue(t.taskId)
                self.limits.drop(t)

    # ------------------------------------------------------------------------------------------
    # recording changes for the group commit (with the transitions history)

    def change_event(self) -> asyncio.Event:
        """An event set at the next change of any task or workflow (a broadcast to waiters).

        Waiters (synchronous execution) take the event, check their condition, then wait on
        it: a change made in between sets it, so no change is missed. Nothing is kept when
        nobody waits; changes made in one loop turn wake the waiters once.
        """
        ev = self._change
        if ev is None:
            ev = self._change = asyncio.Event()
        return ev

    def _changed(self) -> None:
        ev = self._change
        if ev is not None:
            self._change = None
            ev.set()

    def task_changed(self, t: Task, old: TaskStatus | None) -> None:
        """Every change of a task passes here: commit, history, and the concurrency limits."""
        committer = self.committer
        committer.task(t)
        if self._change is not None:
            self._changed()
        if self.limits.track(t):  # it left IN_PROGRESS: a poller parked on its queue may go on
            self.queue.notify(self.queue_name(t))
        status = t.status
        if status != old:
            if status.terminal:
                self.metrics.task_ended(t)
            row = (
                t.updateTime or self.clock(),
                t.workflowInstanceId,
                t.taskId,
                t.referenceTaskName,
                t.taskType,
                status._value_,  # the plain str (``.value`` is a slow Enum property)
                t.reasonForIncompletion if not status.successful else None,
                self.cause,
            )
            # every field given: the NamedTuple without its generated __new__'s Python frame
            committer.transition(tuple.__new__(TransitionRow, row))

    def workflow_changed(self, wf: Workflow, old: WorkflowStatus | None) -> None:
        self.committer.workflow(wf)
        if self._change is not None:
            self._changed()
        if wf.status != old:
            self.committer.transition(
                TransitionRow(
                    wf.updateTime,
                    wf.workflowId,
                    None,
                    None,
                    None,
                    wf.status._value_,
                    wf.reasonForIncompletion,
                    self.cause,
                )
            )

    # ------------------------------------------------------------------------------------------
    # queues and domains

    @staticmethod
    def queue_name(t: Task) -> str:
        return f"{t.domain}:{t.taskType}" if t.domain else t.taskType

    def enqueue(self, wf: Workflow, t: Task, delay_ms: int) -> None:
        """Make a worker task pollable in its queue after ``delay_ms``."""
        self.queue.push(self.queue_name(t), t.taskId, priority=wf.priority, delay_ms=delay_ms)

    def dequeue(self, task_id: str) -> None:
        """The task is done with the queue: no queued entry, no response-timeout lease."""
        self.queue.remove(task_id)
        self.queue.release(task_id)

    def domain_for(self, wf: Workflow, t: Task) -> str | None:
        """The domain a worker task goes to (conductor-oss ``setTaskDomains`` / ``getActiveDomain``).

        ``taskToDomain[taskType]`` if the key is there, else ``taskToDomain["*"]`` if not blank: a
        comma-separated, ordered list. The first domain whose workers polled this task type
        within the last 10 s wins; with none active, the last entry; ``NO_DOMAIN`` (any case) is
        never active and, as the last entry, means the default queue (no domain).
        """
        mapping = wf.taskToDomain
        if not mapping:
            return None
        spec = mapping.get(t.taskType)
        if spec is None:
            spec = mapping.get("*")
        if not spec:
            return None
        domains = [d for d in (part.strip() for part in spec.split(",")) if d]
        if not domains:
            return None
        horizon = self.clock() - ACTIVE_WORKER_WINDOW_MS
        for dom in domains:
            if dom.upper() == NO_DOMAIN:
                continue
            seen = self.poll_times.get((t.taskType, dom))
            if seen is not None and seen[1] > horizon:
                return dom
        last = domains[-1]
        return None if last.upper() == NO_DOMAIN else last

    def record_poll(self, task_type: str, domain: str, worker_id: str | None) -> None:
        """PollData in memory on every poll; persisted at most once a second per queue."""
        now = self.clock()
        key = (task_type, domain)
        prev = self.poll_times.get(key)
        self.poll_times[key] = (worker_id, now)
        if prev is None or prev[0] != worker_id or now - self._poll_persisted.get(key, 0) >= POLL_DATA_PERSIST_MS:
            self._poll_persisted[key] = now
            self.committer.poll_data(PollDataRow(task_type, domain, worker_id, now))


def _has_deadlines(wf: Workflow) -> bool:
    for t in wf.tasks:
        td = t.node.taskDefinition
        if td is not None and not t.status.terminal and (td.pollTimeoutSeconds or td.totalTimeoutSeconds):
            return True
    return False
