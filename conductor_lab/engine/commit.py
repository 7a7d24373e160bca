"""Group commit: every change made during a loop turn is written in one durable transaction.

The executor mutates in-memory records and marks them dirty here. At the end of the loop turn the
dirty records are serialised (on the loop thread, so the snapshot is consistent) into one
``Batch`` and committed, one commit at a time, in one of two ways:

- on the loop thread itself, while the store's commits are quick (a moving average below
  ``INLINE_COMMIT_SECONDS``; a local disk's ``fdatasync`` takes a fraction of a millisecond). Handing
  a commit to a thread and its outcome back costs two thread wake-ups and the GIL changing hands
  twice, which took longer than the ``fdatasync`` itself (docs/performance.md, "Commits on the
  loop"). Changes that arrive meanwhile wait in the sockets and make the next batch.
- on a dedicated writer thread, once commits are slow (a network file system, a busy disk): the
  loop goes on serving reads and collecting the next batch while the commit runs, so under load
  batches grow instead of queueing (pipelined group commit). The writer is fed by a queue and hands
  each outcome back with one ``loop.call_soon_threadsafe``: ``run_in_executor`` would make a
  ``concurrent.futures.Future``, chain an asyncio future to it and take two loop turns to run the
  callback, on every commit.

Both measure each commit, so the average follows the disk both ways. A single slow commit counts
as at most ``COMMIT_SAMPLE_CAP`` times the limit: a checkpoint's writes that delay one
``fdatasync`` do not send the commits to the thread, a run of slow ones (a slow disk) does.

A commit that is due waits up to ``COMMIT_YIELDS`` loop turns while other callbacks are ready to
run, fewer than ``COMMIT_YIELD_WAITERS`` requests wait for it and (where the HTTP server says so,
``may_join``) another request could still join it: requests that were read in the
meantime (their handlers are queued behind the commit) mark their changes first and share its
``fdatasync``, instead of each paying one of their own. A large batch commits at once: under
load, waiting longer costs its requests more than the shared ``fdatasync`` saves.

A request that changed state awaits ``barrier()`` before answering: the future resolves when
everything marked so far is durable.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
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
#: how long changes nobody waits for (made under ``deferred()``) may wait for a commit to join
LAZY_COMMIT_SECONDS = 0.05
#: how long a task's deferred mark (a poll's IN_PROGRESS) is held for the task's next change,
#: which replaces it; past this it is committed as it is (``GroupCommitter.deferred``)
MARK_HOLD_SECONDS = 0.25
#: how often an idle writer thread checks that the interpreter is not exiting (seconds)
WRITER_IDLE_CHECK_SECONDS = 1.0
#: commits are made on the loop thread while their moving average stays below this (seconds)
INLINE_COMMIT_SECONDS = 0.002
#: the newest commit's weight in that moving average
COMMIT_AVERAGE_WEIGHT = 0.1
#: a commit counts in the average as at most this many times ``INLINE_COMMIT_SECONDS``: an odd
#: slow ``fdatasync`` (a checkpoint writing beside it) moves it by at most 0.4 ms, so it takes a
#: run of slow commits, a slow disk, to move commits to the writer thread
COMMIT_SAMPLE_CAP = 2.0
#: loop turns a due commit lets pass while other callbacks are ready (they may join its batch)...
COMMIT_YIELDS = 4
#: ...as long as fewer requests than this wait for it (a batch this large commits at once).
#: 4 -> 8: under perf_probe --only throughput (four workers, two starters) a batch of four
#: committed while more requests were ready, and those paid an fdatasync of their own: commits
#: per worker task 0.47-0.50 -> 0.39-0.45 and the server's CPU per task mostly 5-14% lower
#: (docs/performance.md, "Bigger commit groups"); bench/throughput.py (48-64 connections) within
#: its spread. More turns (8) did not lower the commits further. With fewer clients than this, a
#: commit that all of them wait for goes at once (``GroupCommitter.may_join``).
COMMIT_YIELD_WAITERS = 8
#: a ``store.commit`` at least this long logs a warning saying what ran beside it (seconds)...
SLOW_COMMIT_LOG_SECONDS = 0.1
#: ...at most one per this many seconds
SLOW_COMMIT_LOG_EVERY_SECONDS = 10.0


def others_ready(loop: asyncio.AbstractEventLoop) -> bool:
    """Other callbacks are queued to run on ``loop`` now. Reads the ready queue of asyncio's own
    event loops (``_ready``, not public API); on a loop without one, False: commits go at once."""
    return bool(getattr(loop, "_ready", None))


def dumps(value: Any) -> str:
    return orjson.dumps(value, default=_default).decode()


def _default(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def workflow_row(wf: Workflow) -> WorkflowRow:
    # tuple.__new__ builds the NamedTuple without its generated __new__'s Python frame
    values = (
        wf.workflowId,
        wf.definition.name,
        wf.definition.version,
        wf.status._value_,  # the plain str (``.value`` is a slow Enum property)
        wf.correlationId,
        wf.parentWorkflowId,
        wf.priority,
        wf.createTime,
        wf.updateTime,
        wf.endTime,
        wf.snapshotId,
        dumps(wf.state_json()),
    )
    return tuple.__new__(WorkflowRow, values)


def task_row(t: Task) -> TaskRow:
    values = (
        t.taskId,
        t.workflowInstanceId,
        t.seq,
        t.taskType,
        t.referenceTaskName,
        t.status._value_,
        t.retryCount,
        t.domain,
        t.scheduledTime,
        t.startTime,
        t.endTime,
        t.updateTime,
        dumps(t.state_json()),
    )
    return tuple.__new__(TaskRow, values)  # as workflow_row


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
        "loop",
        "waiters",
        "resolved",
        "first",
        "urgent",
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
        self.loop = loop
        self.waiters: list[asyncio.Future[None]] = []  # one per barrier() call, resolved together
        self.resolved = False
        self.first = 0.0  # perf_counter() when the batch became due (commit latency)
        self.urgent = False  # it holds a change to commit now, not only deferred marks

    def waiter(self) -> asyncio.Future[None]:
        """A new future resolved with this batch's outcome."""
        f: asyncio.Future[None] = self.loop.create_future()
        self.waiters.append(f)
        return f

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


class _Held:
    """A task's deferred mark waiting for the task's next change: the task and the transitions
    marked with it (``since``: loop time of the mark)."""

    __slots__ = ("task", "transitions", "since")

    def __init__(self, task: Task, since: float) -> None:
        self.task = task
        self.transitions: list[TransitionRow] = []
        self.since = since


class CommitterClosed(RuntimeError):
    """A commit was asked for after ``GroupCommitter.close()`` (or while the interpreter exits)."""


#: a commit's outcome: the exception (None on success) and how long ``store.commit`` took
_Done = Callable[[BaseException | None, float], None]


class _Writer:
    """The commit thread: ``store.commit`` of each submitted batch, in order, one at a time.

    Each outcome goes back to the loop with one ``call_soon_threadsafe(done, exc, seconds)``
    (``exc`` None on success), after the store's commit returned (durable). The thread starts at
    the first submit and ends after ``close()`` (which waits for the commit in hand), when its
    committer is garbage-collected unclosed, or, idle, once the main thread has ended (the
    interpreter exits: as ``ThreadPoolExecutor``'s threads, it never holds the exit up beyond the
    commit in hand).
    It holds no reference to the committer, only to the store, the loop and the queued jobs.
    """

    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop) -> None:
        self._store = store
        self._loop = loop
        self._jobs: queue.SimpleQueue[tuple[Batch, _Done] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, batch: Batch, done: _Done) -> None:
        """Queue one commit; raises ``CommitterClosed`` once the writer is closed or gone."""
        thread = self._thread
        if thread is None:
            with self._lock:
                if self._closed:
                    raise CommitterClosed("the group committer is closed")
                if self._thread is None:
                    thread = threading.Thread(target=self._run, name="conductor-lab-commit", daemon=False)
                    thread.start()
                    self._thread = thread
                thread = self._thread
        if self._closed or not thread.is_alive():
            raise CommitterClosed("the group committer is closed")
        self._jobs.put((batch, done))

    def _run(self) -> None:
        jobs, store, loop = self._jobs, self._store, self._loop
        while True:
            try:
                job = jobs.get(timeout=WRITER_IDLE_CHECK_SECONDS)
            except queue.Empty:
                if not threading.main_thread().is_alive():
                    return  # the interpreter is exiting and nothing is in hand
                continue
            if job is None:
                return
            batch, done = job
            del job
            exc: BaseException | None = None
            began = perf_counter()
            try:
                store.commit(batch)
            except BaseException as e:  # handed to the waiters, as a future would
                exc = e
            seconds = perf_counter() - began
            del batch
            try:
                loop.call_soon_threadsafe(done, exc, seconds)
            except RuntimeError:  # the loop is closed: nobody waits for the outcome any more
                pass
            del done, exc

    def close(self) -> None:
        """No more commits; wait for the one in hand (idempotent)."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None and thread.is_alive():
            self._jobs.put(None)
            if thread is not threading.current_thread():
                thread.join()

    def stop(self) -> None:
        """Let the thread end without waiting (its committer was garbage-collected unclosed)."""
        self._closed = True
        self._jobs.put(None)


class GroupCommitter:
    """Collects changes on the loop thread; commits them in batches, on the loop while commits are
    quick, else on one writer thread.

    ``inline_below``: the moving average of commit times under which commits are made on the loop
    (0: always on the writer thread).
    """

    def __init__(
        self, store: Store, loop: asyncio.AbstractEventLoop, *, inline_below: float = INLINE_COMMIT_SECONDS
    ) -> None:
        self.store = store
        self.loop = loop
        self.inline_below = inline_below
        self.commit_seconds = 0.0  # moving average of store.commit's time
        self._closed = False
        self._writer = _Writer(store, loop)
        weakref.finalize(self, self._writer.stop)  # an unclosed committer does not leak its thread
        # store maintenance (DuckDB: folding the journal into the tables) runs beside the commits
        self._maintainer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="conductor-lab-maintain")
        self._maintaining = False
        self._open = _Pending(loop)
        self._inflight: _Pending | None = None
        self._kick_scheduled = False
        self._yields = 0  # loop turns the scheduled commit has let pass (COMMIT_YIELDS)
        self.lazy = False  # see deferred()
        self._lazy_timer: asyncio.TimerHandle | None = None
        self._held: dict[str, _Held] = {}  # task id -> its held mark, oldest first
        self._hold_timer: asyncio.TimerHandle | None = None
        self.commits = 0
        self.rows = 0
        #: the longest ``store.commit`` since the loop watch last reset it (seconds)
        self.slowest_commit = 0.0
        self._slow_logged_at = -SLOW_COMMIT_LOG_EVERY_SECONDS
        self.failed: BaseException | None = None
        self.metrics: NullMetrics = NO_METRICS
        self.latencies: deque[float] = deque(maxlen=LATENCY_RING)  # seconds, first change -> durable
        #: whether a request not read yet could still join a due commit (the HTTP server sets it:
        #: one of its connections has no request in progress, so its client may be sending one).
        #: When none could, a due commit goes at once. None: not known (COMMIT_YIELD_WAITERS only).
        self.may_join: Callable[[], bool] | None = None

    # -- marking ---------------------------------------------------------------------------

    def _dirty(self) -> _Pending:
        pending = self._open
        if pending.urgent:
            return pending
        if self.lazy:
            self._arm_lazy()
        else:
            self._due(pending)
        return pending

    def _due(self, pending: _Pending) -> None:
        """``pending`` is to be committed now: on the next loop turn (after the callbacks queued
        by then, see ``_scheduled_kick``), or after the one in flight."""
        pending.urgent = True
        if not pending.first:
            pending.first = perf_counter()
        if not self._kick_scheduled:
            self._kick_scheduled = True
            self.loop.call_soon(self._scheduled_kick)

    def _arm_lazy(self) -> None:
        """The open batch holds only deferred marks: commit it ``LAZY_COMMIT_SECONDS`` from now."""
        if self._lazy_timer is None:
            self._lazy_timer = self.loop.call_later(LAZY_COMMIT_SECONDS, self._lazy_due)

    def _lazy_due(self) -> None:
        self._lazy_timer = None
        if not self._open.empty():
            self._due(self._open)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Marks made inside need no prompt commit: nobody waits for them (a poll's IN_PROGRESS
        marks; docs/compat.md). A worker's update then does not queue behind a commit of its own
        task's delivery.

        A task marked inside (with the transitions marked with it) is held: its next change
        replaces the row and takes the transitions along, so the task row is written once for
        the delivery and the update together. A mark not replaced within ``MARK_HOLD_SECONDS``
        is committed as it is; ``barrier(held=True)`` (a search or SQL read) and ``flush()``
        commit them all. Anything else marked inside goes with the next commit something needs
        (a request's ``barrier()``, any other change), or ``LAZY_COMMIT_SECONDS`` later."""
        self.lazy = True
        try:
            yield
        finally:
            self.lazy = False

    def workflow(self, wf: Workflow) -> None:
        self._dirty().workflows[wf.workflowId] = wf

    def task(self, t: Task) -> None:
        if self.lazy:
            self._hold(t)
            return
        p = self._dirty()
        if self._held:
            held = self._held.pop(t.taskId, None)
            if held is not None:  # this change replaces the held row; its transitions go first
                p.transitions += held.transitions
        p.tasks[t.taskId] = t

    def snapshot(self, snapshot_id: str, json_text: str) -> None:
        self._dirty().snapshots[snapshot_id] = json_text

    def transition(self, row: TransitionRow) -> None:
        if self.lazy and row.task_id is not None:
            held = self._held.get(row.task_id)
            if held is not None:
                held.transitions.append(row)
                return
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
        held = self._held.pop(task_id, None)
        if held is not None:
            p.transitions += held.transitions
        p.tasks.pop(task_id, None)
        p.task_deletes[task_id] = None

    def delete_workflow(self, workflow_id: str) -> None:
        self.release_held()  # its tasks' held rows go in this batch, which drops them
        p = self._dirty()
        p.workflows.pop(workflow_id, None)
        p.workflow_deletes[workflow_id] = None

    # -- held marks --------------------------------------------------------------------------

    def _hold(self, t: Task) -> None:
        held = self._held.get(t.taskId)
        if held is not None:
            held.task = t
            return
        now = self.loop.time()
        self._held[t.taskId] = _Held(t, now)
        if self._hold_timer is None:
            self._hold_timer = self.loop.call_at(now + MARK_HOLD_SECONDS, self._release_expired)

    def _release_expired(self) -> None:
        """Commit the marks held ``MARK_HOLD_SECONDS`` (the oldest come first)."""
        self._hold_timer = None
        limit = self.loop.time() - MARK_HOLD_SECONDS
        expired = []
        for task_id, held in self._held.items():
            if held.since > limit:
                self._hold_timer = self.loop.call_at(held.since + MARK_HOLD_SECONDS, self._release_expired)
                break
            expired.append(task_id)
        if expired:
            self._release([(task_id, self._held.pop(task_id)) for task_id in expired])

    def release_held(self) -> None:
        """Every held mark joins the open batch (committed with it)."""
        if not self._held:
            return
        held, self._held = self._held, {}
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        self._release(held.items())

    def _release(self, marks: Iterable[tuple[str, _Held]]) -> None:
        """These held marks join the open batch as they are, their rows and transitions."""
        p = self._dirty()
        for task_id, held in marks:
            p.tasks[task_id] = held.task
            p.transitions += held.transitions

    # -- durability --------------------------------------------------------------------------

    def barrier(self, *, held: bool = False) -> asyncio.Future[None]:
        """A future resolved when every change marked so far is committed: with ``held``, the
        held marks too (see ``deferred``); without, not them.

        Each caller gets its own future (resolved with the batch's outcome): a cancelled waiter (a
        client that went away) cancels only its own, never the other requests of that batch. One
        future per waiter, set directly when the commit is done, is cheaper than ``asyncio.shield``
        of a shared one (which adds an outer future and a loop turn per waiter).
        """
        if held:
            self.release_held()
        if not self._open.empty():
            self._due(self._open)
            return self._open.waiter()
        if self._inflight is not None:
            return self._inflight.waiter()
        done: asyncio.Future[None] = self.loop.create_future()
        done.set_result(None)
        return done

    @property
    def on_loop(self) -> bool:
        """The next commit is made on the loop thread (the moving average is below the limit)."""
        return self.commit_seconds < self.inline_below

    @property
    def idle(self) -> bool:
        return self._inflight is None and self._open.empty() and not self._held

    def _scheduled_kick(self) -> None:
        """The commit ``_due`` scheduled: after the callbacks queued behind it (up to
        ``COMMIT_YIELDS`` loop turns), so that requests read meanwhile join its batch; at once
        when no other request could join (``may_join``)."""
        if (
            self._yields < COMMIT_YIELDS
            and len(self._open.waiters) < COMMIT_YIELD_WAITERS
            and others_ready(self.loop)
            and (self.may_join is None or self.may_join())
        ):
            self._yields += 1
            self.loop.call_soon(self._scheduled_kick)
            return
        self._yields = 0
        self._kick()

    def _kick(self) -> None:
        self._kick_scheduled = False
        if self._inflight is not None or self._open.empty():
            return
        pending = self._open
        self._open = _Pending(self.loop)
        if self._lazy_timer is not None:  # its marks go with this batch
            self._lazy_timer.cancel()
            self._lazy_timer = None
        if not pending.first:
            pending.first = perf_counter()
        try:
            batch = pending.to_batch()
        except BaseException as exc:  # serialisation bug: fail the waiters, keep the loop alive
            log.exception("could not serialise a commit batch")
            self._resolve(pending, exc)
            return
        rows = len(batch)
        if self.on_loop:
            self._commit_inline(pending, batch, rows)
            return

        def done(exc: BaseException | None, seconds: float) -> None:
            self._done(pending, exc, rows, seconds)

        try:
            self._writer.submit(batch, done)
        except CommitterClosed as exc:
            log.error("commit refused: %s", exc)
            self._resolve(pending, exc)
            return
        self._inflight = pending

    def _commit_inline(self, pending: _Pending, batch: Batch, rows: int) -> None:
        """``store.commit`` on the loop thread: nothing else runs on the loop until it returned."""
        if self._closed:
            exc = CommitterClosed("the group committer is closed")
            log.error("commit refused: %s", exc)
            self._resolve(pending, exc)
            return
        self._inflight = pending
        began = perf_counter()
        try:
            self.store.commit(batch)
        except Exception as e:
            self._done(pending, e, rows, perf_counter() - began)
        except BaseException as e:  # KeyboardInterrupt, SystemExit: the waiters learn, the loop ends
            self._inflight = None
            self._resolve(pending, e)
            raise
        else:
            self._done(pending, None, rows, perf_counter() - began)

    def _done(self, pending: _Pending, exc: BaseException | None, n: int, seconds: float) -> None:
        self._inflight = None
        if seconds > self.slowest_commit:
            self.slowest_commit = seconds
        if seconds >= SLOW_COMMIT_LOG_SECONDS:
            self._log_slow(seconds, n)
        w = COMMIT_AVERAGE_WEIGHT
        sample = min(seconds, COMMIT_SAMPLE_CAP * self.inline_below) if self.inline_below > 0 else seconds
        self.commit_seconds = (1.0 - w) * self.commit_seconds + w * sample
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
            if self._open.urgent:
                self._kick()
            else:
                self._arm_lazy()

    def _log_slow(self, seconds: float, n: int) -> None:
        """Every request in a group waits for its commit: say what ran beside a slow one (a
        checkpoint's write-back is the usual cause, docs/performance.md, "What stops the loop")."""
        now = perf_counter()
        if now - self._slow_logged_at < SLOW_COMMIT_LOG_EVERY_SECONDS:
            return
        self._slow_logged_at = now
        where = "on the event loop" if self.on_loop else "on the writer thread"
        log.warning(
            "a group commit of %d changes took %.0f ms (%s); %s",
            n,
            seconds * 1000,
            where,
            self.beside(),
        )

    def beside(self) -> str:
        """What store maintenance runs now, in words (for warnings)."""
        if getattr(self.store, "checkpointing", False):
            return "a checkpoint was running"
        return "a fold was running" if self._maintaining else "no fold was running"

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
        if pending.resolved:
            return
        pending.resolved = True
        waiters, pending.waiters = pending.waiters, []
        for f in waiters:
            if f.done():  # its waiter was cancelled
                continue
            if exc is None:
                f.set_result(None)
            else:
                f.set_exception(exc)
                f.exception()  # mark retrieved: its waiter may be gone

    async def flush(self) -> None:
        """Wait until everything marked so far is durable, held marks included."""
        while not self.idle:
            await self.barrier(held=True)

    def close(self) -> None:
        """Wait for the commit in flight and the maintenance in progress; later commits are refused
        (their waiters get ``CommitterClosed``). ``flush()`` first to have everything written."""
        self._closed = True
        for timer in (self._lazy_timer, self._hold_timer):
            if timer is not None:
                timer.cancel()
        self._lazy_timer = self._hold_timer = None
        self._writer.close()
        self._maintainer.shutdown(wait=True)
