"""Poll-time limits of a task definition: ``concurrentExecLimit`` and ``rateLimitPerFrequency``.

Both follow conductor-oss's Redis implementation (``RedisExecutionDAO.exceedsLimit``,
``RedisRateLimitingDAO.exceedsRateLimitPerFrequency``), kept in memory and O(1) per decision:

* **Concurrency.** Per ``taskDefName``, the ids of tasks whose status is IN_PROGRESS, for tasks
  whose own definition (the execution's snapshot, ``task.node.taskDefinition``) has
  ``concurrentExecLimit > 0`` (Redis keeps exactly this set, ``TASKS_IN_PROGRESS_STATUS``, on
  every task update). A task may be delivered while the set holds fewer ids than the limit.
  ``Runtime.task_changed`` (every status change passes through it) keeps the set exact;
  recovery rebuilds it from the running workflows.
* **Rate.** Per ``taskDefName``, the delivery times of the last window: a delivery is allowed
  while fewer than ``rateLimitPerFrequency`` deliveries happened after
  ``now - rateLimitFrequencyInSeconds * 1000`` (a sliding window log, as the Redis sorted set:
  entries at or before that instant are dropped, the rest counted). Every delivery of a task
  with ``rateLimitPerFrequency > 0`` counts, re-deliveries included. The window itself is not
  durable: after a restart it starts empty.

The limits come from the task's definition snapshot, as conductor-oss reads them from the
TaskDef embedded in the execution (a definition updated later applies to new executions).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from conductor_lab.engine.metrics import NO_METRICS, NullMetrics
from conductor_lab.engine.model import Task, TaskStatus

__all__ = ["Limits"]


class Limits:
    """In-progress sets and delivery windows per task definition (single-threaded, on the loop)."""

    __slots__ = ("_running", "_starts", "_lookup", "metrics")

    def __init__(self, lookup: Callable[[str], Task | None]) -> None:
        """``lookup`` finds a task in memory by id (a safety net when a limit is reached)."""
        self._lookup = lookup
        self._running: dict[str, set[str]] = {}  # taskDefName -> ids of IN_PROGRESS limited tasks
        self._starts: dict[str, deque[int]] = {}  # taskDefName -> delivery times inside the window
        self.metrics: NullMetrics = NO_METRICS  # held-back deliveries are counted (engine/metrics.py)

    # ------------------------------------------------------------------ concurrency

    def track(self, t: Task) -> bool:
        """Follow ``t``'s current status; True when it just left IN_PROGRESS (a slot freed)."""
        td = t.node.taskDefinition
        if td is None or not td.concurrentExecLimit or td.concurrentExecLimit <= 0:
            return False
        name = t.taskDefName
        ids = self._running.get(name)
        if t.status is TaskStatus.IN_PROGRESS:
            if ids is None:
                ids = self._running[name] = set()
            ids.add(t.taskId)
            return False
        return self._discard(name, t.taskId)

    def drop(self, t: Task) -> bool:
        """``t`` leaves memory (removed workflow): it no longer holds a slot."""
        return self._discard(t.taskDefName, t.taskId)

    def _discard(self, name: str, task_id: str) -> bool:
        ids = self._running.get(name)
        if ids is None or task_id not in ids:
            return False
        ids.discard(task_id)
        if not ids:
            del self._running[name]
        return True

    def _recount(self, name: str, ids: set[str]) -> int:
        """Drop ids that are no longer IN_PROGRESS in memory (O(limit), only at the limit): a
        change that bypassed ``track`` must not hold a slot forever."""
        lookup = self._lookup
        held = len(ids)
        gone = [tid for tid in ids if (t := lookup(tid)) is None or t.status is not TaskStatus.IN_PROGRESS]
        for tid in gone:
            self._discard(name, tid)
        return held - len(gone)

    def in_progress(self, task_def_name: str) -> int:
        """IN_PROGRESS tasks of a definition with a concurrency limit."""
        ids = self._running.get(task_def_name)
        return 0 if ids is None else len(ids)

    # ------------------------------------------------------------------ admission

    def admit(self, t: Task, now: int) -> bool:
        """May ``t`` be delivered now? If so, the delivery is counted in its rate window.

        Checked in conductor-oss's order: the concurrency limit, then the rate limit.
        """
        td = t.node.taskDefinition
        if td is not None:
            limit = td.concurrentExecLimit
            if limit is not None and limit > 0:
                ids = self._running.get(t.taskDefName)
                if ids is not None and len(ids) >= limit and self._recount(t.taskDefName, ids) >= limit:
                    self.metrics.task_concurrency_limited(t.taskDefName)
                    return False
        if t.rateLimitPerFrequency > 0:
            if td is not None:
                per, seconds = td.rateLimitPerFrequency, td.rateLimitFrequencyInSeconds
            else:
                per, seconds = t.rateLimitPerFrequency, t.rateLimitFrequencyInSeconds
            if per > 0 and seconds > 0:
                name = t.taskDefName
                window = self._starts.get(name)
                if window is None:
                    window = self._starts[name] = deque()
                horizon = now - seconds * 1000
                while window and window[0] <= horizon:
                    window.popleft()
                if len(window) >= per:
                    self.metrics.task_rate_limited(name)
                    return False
                window.append(now)
        return True
