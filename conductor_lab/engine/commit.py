"""Group commit: every change made during a loop turn is written in one durable transaction.

The executor mutates in-memory records and marks them dirty here. At the end of the loop turn the
dirty records are serialised (on the loop thread, so the snapshot is consistent) into one
``Batch`` and written by a single writer thread. While that commit runs, new changes collect in
the next batch, so under load batches grow instead of queueing (pipelined group commit).

A request that changed state awaits ``barrier()`` before answering: the future resolves when
everything marked so far is durable.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from time import perf_counter
from typing import Any

import orjson

from conductor_lab.engine.metrics import NO_METRICS, NullMetrics
from conductor_lab.engine.model import Task, Workflow
from conductor_lab.engine.store.base import (
    Batch,
    EventExecutionRow,
    EventHandlerRow,
    LogRow,
    PollDataRow,
    Store,
    TaskDefRow,
    TaskRow,
    TransitionRow,
    WorkflowDefRow,
    WorkflowRow,
)

log = logging.getLogger(__name__)

#: group commit latencies kept for ``conductor-lab status`` (its p50/p99)
LATENCY_RING = 1024


def dumps(value: Any) -> str:
    return orjson.dumps(value, default=_default).decode()


def _default(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def workflow_row(wf: Workflow) -> WorkflowRow:
    return WorkflowRow(
        wf.workflowId,
        wf.definition.name,
        wf.definition.version,
        wf.status.value,
        wf.correlationId,
        wf.parentWorkflowId,
        wf.priority,
        wf.createTime,
        wf.updateTime,
        wf.endTime,
        wf.snapshotId,
        dumps(wf.state_json()),
    )


def task_row(t: Task) -> TaskRow:
    return TaskRow(
        t.taskId,
        t.workflowInstanceId,
        t.seq,
        t.taskType,
        t.referenceTaskName,
        t.status.value,
        t.retryCount,
        t.domain,
        t.scheduledTime,
        t.startTime,
        t.endTime,
        t.updateTime,
        dumps(t.state_json()),
    )


class _Pending:
    """One batch being collected."""

    __slots__ = (
        "workflows",
        "tasks",
        "snapshots",
        "transitions",
        "logs",
        "poll_data",
        "task_defs",
        "task_def_deletes",
        "workflow_defs",
        "workflow_def_deletes",
        "workflow_deletes",
        "task_deletes",
        "event_handlers",
        "event_handler_deletes",
        "event_executions",
        "future",
        "first",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.workflows: dict[str, Workflow] = {}
        self.tasks: dict[str, Task] = {}
        self.snapshots: dict[str, str] = {}
        self.transitions: list[TransitionRow] = []
        self.logs: list[LogRow] = []
        self.poll_data: dict[tuple[str, str], PollDataRow] = {}
        self.task_defs: dict[str, TaskDefRow] = {}
        self.task_def_deletes: dict[str, None] = {}
        self.workflow_defs: dict[tuple[str, int], WorkflowDefRow] = {}
        self.workflow_def_deletes: dict[tuple[str, int], None] = {}
        self.workflow_deletes: dict[str, None] = {}
        self.task_deletes: dict[str, None] = {}
        self.event_handlers: dict[str, EventHandlerRow] = {}
        self.event_handler_deletes: dict[str, None] = {}
        self.event_executions: list[EventExecutionRow] = []
        self.future: asyncio.Future[None] = loop.create_future()
        self.first = 0.0  # perf_counter() when the first change was queued (commit latency)

    def empty(self) -> bool:
        return not (
            self.workflows
            or self.tasks
            or self.snapshots
            or self.transitions
            or self.logs
            or self.poll_data
            or self.task_defs
            or self.task_def_deletes
            or self.workflow_defs
            or self.workflow_def_deletes
            or self.workflow_deletes
            or self.task_deletes
            or self.event_handlers
            or self.event_handler_deletes
            or self.event_executions
        )

    def to_batch(self) -> Batch:
        deleted = self.workflow_deletes
        return Batch(
            workflows=[workflow_row(w) for k, w in self.workflows.items() if k not in deleted],
            tasks=[task_row(t) for t in self.tasks.values() if t.workflowInstanceId not in deleted],
            snapshots=list(self.snapshots.items()),
            transitions=self.transitions,
            logs=self.logs,
            poll_data=list(self.poll_data.values()),
            task_defs=list(self.task_defs.values()),
            task_def_deletes=list(self.task_def_deletes),
            workflow_defs=list(self.workflow_defs.values()),
            workflow_def_deletes=list(self.workflow_def_deletes),
            workflow_deletes=list(deleted),
            task_deletes=list(self.task_deletes),
            event_handlers=list(self.event_handlers.values()),
            event_handler_deletes=list(self.event_handler_deletes),
            event_executions=self.event_executions,
        )


class GroupCommitter:
    """Collects changes on the loop thread; writes them in batches from one writer thread."""

    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop) -> None:
        self.store = store
        self.loop = loop
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="conductor-lab-commit")
        # store maintenance (DuckDB: folding the journal into the tables) runs beside the commits
        self._maintainer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="conductor-lab-maintain")
        self._maintaining = False
        self._open = _Pending(loop)
        self._inflight: _Pending | None = None
        self._kick_scheduled = False
        self.commits = 0
        self.rows = 0
        self.failed: BaseException | None = None
        self.metrics: NullMetrics = NO_METRICS
        self.latencies: deque[float] = deque(maxlen=LATENCY_RING)  # seconds, first change -> durable

    # -- marking ---------------------------------------------------------------------------

    def _dirty(self) -> _Pending:
        if not self._kick_scheduled:
            self._kick_scheduled = True
            self.loop.call_soon(self._kick)
            if not self._open.first:  # the first mark of a batch always finds no kick scheduled
                self._open.first = perf_counter()
        return self._open

    def workflow(self, wf: Workflow) -> None:
        self._dirty().workflows[wf.workflowId] = wf

    def task(self, t: Task) -> None:
        self._dirty().tasks[t.taskId] = t

    def snapshot(self, snapshot_id: str, json_text: str) -> None:
        self._dirty().snapshots[snapshot_id] = json_text

    def transition(self, row: TransitionRow) -> None:
        self._dirty().transitions.append(row)

    def log(self, row: LogRow) -> None:
        self._dirty().logs.append(row)

    def poll_data(self, row: PollDataRow) -> None:
        self._dirty().poll_data[(row.queue_name, row.domain)] = row

    def task_def(self, name: str, json_text: str) -> None:
        p = self._dirty()
        p.task_def_deletes.pop(name, None)
        p.task_defs[name] = TaskDefRow(name, json_text)

    def delete_task_def(self, name: str) -> None:
        p = self._dirty()
        p.task_defs.pop(name, None)
        p.task_def_deletes[name] = None

    def workflow_def(self, name: str, version: int, json_text: str) -> None:
        p = self._dirty()
        p.workflow_def_deletes.pop((name, version), None)
        p.workflow_defs[(name, version)] = WorkflowDefRow(name, version, json_text)

    def delete_workflow_def(self, name: str, version: int) -> None:
        p = self._dirty()
        p.workflow_defs.pop((name, version), None)
        p.workflow_def_deletes[(name, version)] = None

    def event_handler(self, row: EventHandlerRow) -> None:
        p = self._dirty()
        p.event_handler_deletes.pop(row.name, None)
        p.event_handlers[row.name] = row

    def delete_event_handler(self, name: str) -> None:
        p = self._dirty()
        p.event_handlers.pop(name, None)
        p.event_handler_deletes[name] = None

    def event_execution(self, row: EventExecutionRow) -> None:
        self._dirty().event_executions.append(row)

    def delete_task(self, task_id: str) -> None:
        p = self._dirty()
        p.tasks.pop(task_id, None)
        p.task_deletes[task_id] = None

    def delete_workflow(self, workflow_id: str) -> None:
        p = self._dirty()
        p.workflows.pop(workflow_id, None)
        p.workflow_deletes[workflow_id] = None

    # -- durability --------------------------------------------------------------------------

    def barrier(self) -> asyncio.Future[None]:
        """A future resolved when every change marked so far is committed.

        Each caller gets its own shielded future: a cancelled waiter (a client that went away)
        must not cancel the batch's shared future under the other requests of that batch.
        """
        if not self._open.empty():
            return asyncio.shield(self._open.future)
        if self._inflight is not None:
            return asyncio.shield(self._inflight.future)
        done: asyncio.Future[None] = self.loop.create_future()
        done.set_result(None)
        return done

    @property
    def idle(self) -> bool:
        return self._inflight is None and self._open.empty()

    def _kick(self) -> None:
        self._kick_scheduled = False
        if self._inflight is not None or self._open.empty():
            return
        pending = self._open
        self._open = _Pending(self.loop)
        try:
            batch = pending.to_batch()
        except BaseException as exc:  # serialisation bug: fail the waiters, keep the loop alive
            log.exception("could not serialise a commit batch")
            self._resolve(pending, exc)
            return
        self._inflight = pending
        fut = self.loop.run_in_executor(self._writer, self.store.commit, batch)
        rows = len(batch)

        def done(f: asyncio.Future[None]) -> None:
            self._done(pending, f, rows)

        fut.add_done_callback(done)

    def _done(self, pending: _Pending, fut: asyncio.Future[None], n: int) -> None:
        self._inflight = None
        exc = fut.exception()
        if exc is None:
            self.commits += 1
            self.rows += n
            latency = perf_counter() - pending.first
            self.latencies.append(latency)
            self.metrics.committed(latency, n)
        else:
            log.error("commit failed: %s", exc)
            self.failed = exc
        self._resolve(pending, exc)
        if exc is None and not self._maintaining and self.store.needs_maintenance():
            self._maintain()
        if not self._open.empty():
            self._kick()

    def _maintain(self) -> None:
        """Store housekeeping on its own thread, beside the commits (nobody waits for it)."""
        self._maintaining = True
        began = perf_counter()
        fut = self.loop.run_in_executor(self._maintainer, self.store.maintain)

        def done(f: asyncio.Future[None]) -> None:
            self._maintaining = False
            self.metrics.folded(perf_counter() - began)
            if f.exception() is not None:
                log.error("store maintenance failed: %s", f.exception())

        fut.add_done_callback(done)

    def _resolve(self, pending: _Pending, exc: BaseException | None) -> None:
        if not pending.future.done():
            if exc is None:
                pending.future.set_result(None)
            else:
                pending.future.set_exception(exc)
                pending.future.exception()  # mark retrieved: waiters may be gone

    async def flush(self) -> None:
        """Wait until everything marked so far is durable."""
        while not self.idle:
            await self.barrier()

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._maintainer.shutdown(wait=True)
