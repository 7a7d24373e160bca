"""The engine, assembled: one object the server (and a notebook) talks to.

The jobs live in modules of one job each, as conductor-oss splits them:

``runtime.Runtime``
    hot state (running and recent workflows, tasks, queue, poll data), loading and recovery
``timers.Timers``
    when workflows must be decided again; the queue's delays and leases
``workflow_executor.WorkflowExecutor``
    deciding workflows and applying the decisions, effects and asynchronous task work
``services.definitions`` / ``services.workflows`` / ``services.tasks``
    the API: definitions, workflow operations, task operations
``events.EventService``
    event handlers and the in-process event queues

Everything runs on one asyncio event loop (Tornado's), so nothing needs locks. Every call that
changes state applies the change synchronously, then awaits the group commit before returning:
an answered request is durable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from conductor_lab.engine import ids
from conductor_lab.engine.commit import GroupCommitter
from conductor_lab.engine.events import EventService
from conductor_lab.engine.loopwatch import LoopWatch
from conductor_lab.engine.metadata import Metadata
from conductor_lab.engine.metrics import NO_METRICS, Metrics, NullMetrics
from conductor_lab.engine.model import Task, Workflow
from conductor_lab.engine.queue import MemoryQueue
from conductor_lab.engine.runtime import FINISHED_CACHE, Runtime
from conductor_lab.engine.services.definitions import DefinitionService
from conductor_lab.engine.services.search import SearchService
from conductor_lab.engine.services.sql import SqlService
from conductor_lab.engine.services.sync import SyncService
from conductor_lab.engine.services.tasks import TaskService
from conductor_lab.engine.services.workflows import WorkflowService
from conductor_lab.engine.store.archive import (
    ARCHIVE_BATCH,
    ARCHIVE_INTERVAL_SECONDS,
    ArchivePolicy,
    Archiver,
)
from conductor_lab.engine.store.base import ArchivingStore, Store
from conductor_lab.engine.timers import Timers
from conductor_lab.engine.workflow_executor import WorkflowExecutor


def system_clock() -> int:
    return time.time_ns() // 1_000_000


class Executor:
    """Conductor's engine over a ``Store`` and an in-process queue."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], int] | None = None,
        finished_cache: int = FINISHED_CACHE,
        new_id: Callable[[], str] | None = None,
        metrics: bool = True,
        archive_after_days: float | None = None,
        archive_interval_s: float = ARCHIVE_INTERVAL_SECONDS,
        archive_batch: int = ARCHIVE_BATCH,
    ) -> None:
        """``metrics``: count events for ``GET /metrics`` (engine/metrics.py); False makes the
        hooks no-ops (``serve --no-metrics``)."""
        self.clock = clock or system_clock
        self.rt = Runtime(store, self.clock, finished_cache=finished_cache)
        self.metrics: NullMetrics = Metrics(self.rt) if metrics else NO_METRICS
        self.rt.metrics = self.rt.limits.metrics = self.metrics
        #: the event loop's lag timer and GC pause hook (engine/loopwatch.py); set by start()
        self.loopwatch: LoopWatch | None = None
        #: wall-clock seconds when start() began (status: uptime); 0 before
        self.started_at = 0.0
        #: seconds start() took to load definitions and running workflows
        self.recovery_seconds = 0.0
        self.timers = Timers(self.clock, self.rt.queue, self._workflow_of_task, self._fire)
        self.wx = WorkflowExecutor(self.rt, self.timers, new_id or ids.new_id)
        self.definitions = DefinitionService(self.rt)
        self.workflow_ops = WorkflowService(self.rt, self.wx)
        self.task_ops = TaskService(self.rt, self.wx)
        self.sync = SyncService(self.rt, self.wx, self.workflow_ops, self.task_ops)
        self.search = SearchService(self.rt)
        self.sql = SqlService(self.rt)
        self.events = EventService(self)
        self.wx.events = self.events
        #: ``--archive-after``: finished workflows older than that are read-only and move to
        #: Parquet (``store/archive.py``); the archiver starts with the engine
        self.archive_policy = ArchivePolicy.of_days(archive_after_days) if archive_after_days is not None else None
        self.workflow_ops.archive = self.archive_policy
        self._archive_options = (float(archive_interval_s), int(archive_batch))
        self.archiver: Archiver | None = None

        # The API (the verbs conductor-oss's REST resources serve), one service each.
        d, w, t = self.definitions, self.workflow_ops, self.task_ops
        self.register_task_defs = d.register_task_defs
        self.update_task_def = d.update_task_def
        self.get_task_def = d.get_task_def
        self.get_task_defs = d.get_task_defs
        self.delete_task_def = d.delete_task_def
        self.validate_workflow_def = d.validate_workflow_def
        self.register_workflow_def = d.register_workflow_def
        self.update_workflow_defs = d.update_workflow_defs
        self.get_workflow_def = d.get_workflow_def
        self.get_workflow_defs = d.get_workflow_defs
        self.get_workflow_names = d.get_workflow_names
        self.get_workflow_names_and_versions = d.get_workflow_names_and_versions
        self.get_workflow_versions = d.get_workflow_versions
        self.get_latest_workflow_defs = d.get_latest_workflow_defs
        self.delete_workflow_def = d.delete_workflow_def
        self.start_workflow = w.start_workflow
        self.start_workflow_by_name = w.start_workflow_by_name
        self.get_workflow = w.get_workflow
        self.definition_json = w.definition_json
        self.get_workflow_tasks = w.get_workflow_tasks
        self.watch_workflow = w.watch_workflow
        self.get_correlated = w.get_correlated
        self.get_correlated_batch = w.get_correlated_batch
        self.running_workflow_ids = w.running_workflow_ids
        self.remove_workflow = w.remove_workflow
        self.terminate_workflow = w.terminate_workflow
        self.decide = w.decide
        self.pause_workflow = w.pause_workflow
        self.resume_workflow = w.resume_workflow
        self.retry_workflow = w.retry_workflow
        self.restart_workflow = w.restart_workflow
        self.rerun_workflow = w.rerun_workflow
        self.skip_task = w.skip_task
        self.reset_callbacks = w.reset_callbacks
        self.bulk = w.bulk
        self.search_workflows = self.search.search_workflows
        self.search_workflows_by_tasks = self.search.search_workflows_by_tasks
        self.search_tasks = self.search.search_tasks
        self.run_sql = self.sql.run  # read-only SQL over the history (engine/sql.py)
        self.sql_answer = self.sql.answer  # the same, encoded for POST /api/lab/sql
        self.poll = t.poll
        self.update_task = t.update_task
        self.update_task_v2 = t.update_task_v2
        self.update_task_by_ref = t.update_task_by_ref
        self.get_task = t.get_task
        self.add_task_log = t.add_task_log
        self.get_task_logs = t.get_task_logs
        self.queue_size = t.queue_size
        self.queue_sizes = t.queue_sizes
        self.queue_all = t.queue_all
        self.poll_data = t.poll_data
        self.all_poll_data = t.all_poll_data
        self.requeue = t.requeue
        # synchronous execution, signals, test runs
        self.execute_workflow = self.sync.execute_workflow
        self.test_workflow = self.sync.test_workflow
        self.update_task_sync = self.sync.update_task_sync
        self.signal_task = self.sync.signal
        self.signal_task_sync = self.sync.signal_sync

    # ------------------------------------------------------------------------------------------
    # lifecycle

    async def start(self) -> None:
        """Load definitions and running workflows from the store; start timers and commits."""
        loop = asyncio.get_running_loop()
        self.started_at = time.time()
        self.rt.attach(loop)
        self.timers.loop = loop
        began = time.perf_counter()
        await self.rt.read(self._recover)
        self.recovery_seconds = time.perf_counter() - began
        self.metrics.recovered(self.recovery_seconds)
        self.timers.rearm()
        if self.archive_policy is not None:
            store = self.rt.store
            if not isinstance(store, ArchivingStore) or not store.can_archive:
                raise ValueError(f"{store!r} cannot archive (--archive-after needs a DuckDB file store)")
            interval, batch = self._archive_options
            self.archiver = Archiver(
                store, self.archive_policy, loop, self._archive_round, interval_s=interval, batch=batch
            )
            self.archiver.start()
        self.loopwatch = LoopWatch(loop, self.metrics, self.rt.committer)
        self.loopwatch.start()

    def _recover(self) -> None:
        self.rt.recover(self.timers.arm)
        self.events.recover()

    async def _archive_round(self) -> int:
        """On the loop, before an archive round: the round's clock becomes the verbs' horizon,
        and every change made so far is committed (so the fold before the batch has it)."""
        assert self.archive_policy is not None
        now = self.clock()
        self.archive_policy.horizon = max(self.archive_policy.horizon, now)
        await self.rt.committer.barrier(held=True)
        return self.archive_policy.horizon

    async def archive_now(self) -> int:
        """Run one archive round now, off the loop (tests, notebooks); how many workflows moved."""
        if self.archiver is None:
            raise ValueError("archiving is off (start the engine with archive_after_days)")
        assert self.rt.loop is not None
        return await self.rt.loop.run_in_executor(None, self.archiver.run_once)

    def end_polls(self) -> None:
        """Long polls in progress answer now with what they have, and new ones do not wait (the
        server is stopping: its transports call this before they wait for requests in flight)."""
        self.rt.queue.end_waits()

    async def close(self) -> None:
        if self.archiver is not None:  # its batch in progress ends first; it may wait on the loop
            assert self.rt.loop is not None
            await self.rt.loop.run_in_executor(None, self.archiver.stop)
        await self.wx.close()
        self.timers.cancel()
        if self.loopwatch is not None:
            self.loopwatch.stop()
        self.sql.close()  # stops running queries before the store closes
        await self.rt.close()

    # ------------------------------------------------------------------------------------------
    # wiring

    def _workflow_of_task(self, task_id: str) -> str | None:
        t = self.rt.tasks.get(task_id)
        return t.workflowInstanceId if t is not None else None

    def _fire(self, workflow_ids: list[str]) -> int:
        return self.wx.fire(workflow_ids)

    def run_timers(self) -> int:
        """Fire every timer due at ``clock()`` (tests with an injected clock call this)."""
        return self.timers.run()

    # the runtime's parts, for the event service, benchmarks and tests

    @property
    def store(self) -> Store:
        return self.rt.store

    @property
    def committer(self) -> GroupCommitter:
        return self.rt.committer

    @property
    def meta(self) -> Metadata:
        return self.rt.meta

    @property
    def queue(self) -> MemoryQueue:
        return self.rt.queue

    @property
    def workflows(self) -> dict[str, Workflow]:
        return self.rt.workflows

    @property
    def tasks(self) -> dict[str, Task]:
        return self.rt.tasks

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The engine's event loop (None before ``start()``)."""
        return self.rt.loop

    # ------------------------------------------------------------------------------------------
    # introspection (benchmarks, tests)

    def stats(self) -> dict[str, Any]:
        running = sum(1 for wf in self.rt.workflows.values() if not wf.status.terminal)
        committer = self.rt._committer
        return {
            "workflows_in_memory": len(self.rt.workflows),
            "running": running,
            "tasks_in_memory": len(self.rt.tasks),
            "queued": sum(self.rt.queue.sizes().values()),
            "timers": len(self.timers),
            "commits": committer.commits if committer else 0,
            "committed_rows": committer.rows if committer else 0,
        }
