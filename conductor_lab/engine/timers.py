"""Timers: when each workflow must be decided again, and the queue's delays and leases.

One heap of ``(due ms, seq, workflow id)`` with at most one live entry per workflow (an earlier
wake-up supersedes a later one; that decide re-arms the later deadline), plus the queue's
visibility delays (retry delays, callbacks) and response-timeout leases. One loop timer is set
for the earliest of all; nothing scans the store periodically.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Callable

from conductor_lab.engine.queue import MemoryQueue

log = logging.getLogger(__name__)


class Timers:
    def __init__(
        self,
        clock: Callable[[], int],
        queue: MemoryQueue,
        workflow_of_task: Callable[[str], str | None],
        fire: Callable[[list[str]], int],
    ) -> None:
        """``workflow_of_task`` maps an expired lease's task to its workflow; ``fire`` decides the
        given workflows (full passes) and returns how many it decided."""
        self.clock = clock
        self.queue = queue
        self._workflow_of_task = workflow_of_task
        self._fire = fire
        self._heap: list[tuple[int, int, str]] = []
        self._wake: dict[str, int] = {}  # workflow id -> due of its live entry
        self._seq = 0
        self._handle: asyncio.TimerHandle | None = None
        self._handle_due: int | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        return len(self._wake)

    def arm(self, workflow_id: str, due: int) -> None:
        """Make sure the workflow is decided again at ``due`` (one live entry per workflow)."""
        current = self._wake.get(workflow_id)
        if current is not None and current <= due:
            return  # an earlier check is armed; that decide re-arms the later deadline
        self._wake[workflow_id] = due
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, workflow_id))
        if len(self._heap) > 2 * len(self._wake) + 1024:
            # drop superseded entries so the heap stays proportional to live timers
            self._heap = [e for e in self._heap if self._wake.get(e[2]) == e[0]]
            heapq.heapify(self._heap)

    def drop(self, workflow_id: str) -> None:
        """The workflow ended: its entry is dead (removed lazily from the heap)."""
        self._wake.pop(workflow_id, None)

    def rearm(self) -> None:
        """Set the loop timer for the earliest due time (after anything changed timers or queues)."""
        if self.loop is None:
            return
        due = self._heap[0][0] if self._heap else None
        for qdue in (self.queue.next_due(), self.queue.next_lease_expiry()):
            if qdue is not None and (due is None or qdue < due):
                due = qdue
        if due is None:
            return
        if self._handle is not None and self._handle_due is not None and self._handle_due <= due:
            return
        if self._handle is not None:
            self._handle.cancel()
        delay = max(0.0, (due - self.clock()) / 1000.0)
        self._handle_due = due
        self._handle = self.loop.call_later(delay, self._on_timer)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _on_timer(self) -> None:
        self._handle = None
        self._handle_due = None
        try:
            self.run()
        except Exception:
            log.exception("timer processing failed")
        self.rearm()

    def run(self) -> int:
        """Fire everything due at ``clock()``; returns the number of workflows decided."""
        now = self.clock()
        self.queue.promote_due()
        due: list[str] = []  # workflow ids to decide now
        for task_id in self.queue.expired_leases():  # response timeouts: the decider judges them
            wf_id = self._workflow_of_task(task_id)
            if wf_id is not None:
                due.append(wf_id)
        while self._heap and self._heap[0][0] <= now:
            at, _, wf_id = heapq.heappop(self._heap)
            if self._wake.get(wf_id) == at:  # else superseded by an earlier entry
                del self._wake[wf_id]
                due.append(wf_id)
        fired = self._fire(list(dict.fromkeys(due)))
        self.rearm()
        return fired
