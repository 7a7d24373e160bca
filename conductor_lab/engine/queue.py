"""In-process task queue: priorities, visibility delays, leases and long-poll waiters.

Runs on a single asyncio event loop: no locks, no threads (design.md, section "Queue").

Ordering: among VISIBLE entries of a queue, higher priority first, then push order (a
sequence number assigned by ``push``; ``set_delay`` and promotion keep it).  So the visible
set at time ``t`` is "every entry whose due time <= t", independent of when promotion runs.

Representation (small per entry, lazy deletion).  The heap items double as entry records:
``self._entries[task_id]`` holds the live item; a heap item that is not identical (``is``)
to it is stale and skipped when it reaches the top of its heap.

* visible item: ``(-priority, seq, task_id, queue_name)`` in the queue's own heap
* delayed item: ``(due_ms, seq, task_id, queue_name, -priority)`` in ONE global heap
* lease item:   ``(expiry_ms, task_id)`` in the lease heap, ``self._leases[task_id]`` live

Heaps are rebuilt when more than half of their items are stale, so garbage stays bounded.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from heapq import heapify, heappop, heappush
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "MemoryQueue", "Queue"]

Clock = Callable[[], int]
"""Returns epoch milliseconds; injected so tests never sleep."""

_VisibleItem = tuple[int, int, str, str]  # (-priority, seq, task_id, queue_name)
_DelayedItem = tuple[int, int, str, str, int]  # (due_ms, seq, task_id, queue_name, -priority)
_LeaseItem = tuple[int, str]  # (expiry_ms, task_id)

_COMPACT_MIN = 1024  # never rebuild a heap for fewer stale items than this
_MAX_PRIORITY = 99


@runtime_checkable
class Queue(Protocol):
    """What the executor needs from a task queue (in-process or shared backend)."""

    def push(self, queue_name: str, task_id: str, *, priority: int = 0, delay_ms: int = 0) -> None: ...

    def pop(self, queue_name: str, count: int = 1) -> list[str]: ...

    async def poll(self, queue_name: str, count: int, timeout_ms: int) -> list[str]: ...

    def take(self, queue_name: str, count: int, admit: Callable[[str], bool | None]) -> list[str]: ...

    async def wait(self, queue_name: str, timeout_ms: float) -> bool: ...

    def notify(self, queue_name: str) -> None: ...

    def remove(self, task_id: str) -> bool: ...

    def contains(self, task_id: str) -> bool: ...

    def set_delay(self, task_id: str, delay_ms: int) -> bool: ...

    def size(self, queue_name: str) -> int: ...

    def sizes(self) -> dict[str, int]: ...

    def queue_of(self, task_id: str) -> str | None: ...

    def next_due(self) -> int | None: ...

    def promote_due(self) -> list[str]: ...

    def lease(self, task_id: str, timeout_ms: int) -> None: ...

    def extend_lease(self, task_id: str, timeout_ms: int) -> bool: ...

    def release(self, task_id: str) -> None: ...

    def expired_leases(self) -> list[str]: ...

    def next_lease_expiry(self) -> int | None: ...

    def waiting(self, queue_name: str) -> int: ...

    def end_waits(self) -> None: ...


class _Lane:
    """One named queue: visible heap, exact entry count, parked long-poll waiters."""

    __slots__ = ("name", "heap", "count", "stale", "waiters", "nwait")

    def __init__(self, name: str) -> None:
        self.name = name
        self.heap: list[_VisibleItem] = []
        self.count = 0  # live entries of this queue, visible + delayed
        self.stale = 0  # stale items still inside self.heap
        self.waiters: deque[asyncio.Future[bool]] = deque()  # may hold done futures (lazy)
        self.nwait = 0  # futures in self.waiters that are not done (parked waiters)


class MemoryQueue:
    """Single-process implementation of :class:`Queue` (not thread-safe by design)."""

    __slots__ = (
        "_clock",
        "_seq",
        "_entries",
        "_lanes",
        "_delayed",
        "_dstale",
        "_leases",
        "_lheap",
        "_lstale",
        "_ending",
    )

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._seq = 0
        self._entries: dict[str, _VisibleItem | _DelayedItem] = {}
        self._lanes: dict[str, _Lane] = {}
        self._delayed: list[_DelayedItem] = []
        self._dstale = 0
        self._leases: dict[str, _LeaseItem] = {}
        self._lheap: list[_LeaseItem] = []
        self._lstale = 0
        self._ending = False  # end_waits(): no long poll parks any more

    # ------------------------------------------------------------------ entries

    def push(self, queue_name: str, task_id: str, *, priority: int = 0, delay_ms: int = 0) -> None:
        """Add or replace ``task_id``'s entry; visible once ``clock() >= now + delay_ms``."""
        if not 0 <= priority <= _MAX_PRIORITY:
            raise ValueError(f"priority must be 0..{_MAX_PRIORITY}, got {priority}")
        old = self._entries.pop(task_id, None)
        if old is not None:
            self._forget(old)
        lane = self._lanes.get(queue_name)
        if lane is None:
            lane = self._lanes[queue_name] = _Lane(queue_name)
        self._seq += 1
        lane.count += 1
        if delay_ms > 0:
            ditem = (self._clock() + delay_ms, self._seq, task_id, queue_name, -priority)
            self._entries[task_id] = ditem
            heappush(self._delayed, ditem)
        else:
            vitem = (-priority, self._seq, task_id, queue_name)
            self._entries[task_id] = vitem
            heappush(lane.heap, vitem)
            if lane.nwait:
                self._wake(lane, 1)
        if old is not None:
            self._maybe_drop(old[3])

    def pop(self, queue_name: str, count: int = 1) -> list[str]:
        """Remove and return up to ``count`` visible task ids, best first. Never blocks."""
        delayed = self._delayed
        if delayed and delayed[0][0] <= self._clock():
            self._promote(self._clock())
        lane = self._lanes.get(queue_name)
        if lane is None or count <= 0:
            return []
        heap = lane.heap
        entries = self._entries
        out: list[str] = []
        while heap and len(out) < count:
            item = heappop(heap)
            task_id = item[2]
            if entries.get(task_id) is item:
                del entries[task_id]
                out.append(task_id)
            else:
                lane.stale -= 1
        if out:
            lane.count -= len(out)
            self._maybe_drop(queue_name)
        return out

    def take(self, queue_name: str, count: int, admit: Callable[[str], bool | None]) -> list[str]:
        """Like ``pop``, asking ``admit(task_id)`` about each visible head, best first. Never blocks.

        ``admit`` answers True (taken: removed and returned), False (dropped: removed, not
        returned) or None (held back: it stays queued where it is and taking stops, so the order
        is kept). ``admit`` may act on the task (deliver it) but must not change this queue.
        """
        delayed = self._delayed
        if delayed and delayed[0][0] <= self._clock():
            self._promote(self._clock())
        lane = self._lanes.get(queue_name)
        if lane is None or count <= 0:
            return []
        heap = lane.heap
        entries = self._entries
        out: list[str] = []
        removed = 0
        while heap and len(out) < count:
            item = heap[0]
            task_id = item[2]
            if entries.get(task_id) is not item:
                heappop(heap)
                lane.stale -= 1
                continue
            verdict = admit(task_id)
            if verdict is None:
                break
            if heap and heap[0] is item:
                heappop(heap)
                del entries[task_id]
                removed += 1
            if verdict:
                out.append(task_id)
        if removed:
            lane.count -= removed
            self._maybe_drop(queue_name)
        return out

    async def poll(self, queue_name: str, count: int, timeout_ms: int) -> list[str]:
        """``pop``; if empty, park until an entry becomes visible or ``timeout_ms`` elapses."""
        got = self.pop(queue_name, count)
        if got or timeout_ms <= 0 or count <= 0:
            return got
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000.0
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return self.pop(queue_name, count)
            woken = await self.wait(queue_name, remaining * 1000.0)
            got = self.pop(queue_name, count)
            if got or not woken:
                return got
            # Woken but another consumer took the entry first: keep waiting until the deadline.

    async def wait(self, queue_name: str, timeout_ms: float) -> bool:
        """Park until an entry of ``queue_name`` may be visible (True) or ``timeout_ms`` passes (False).

        A wake-up is a hint, not a reservation: another consumer may take the entry first.
        """
        if timeout_ms <= 0 or self._ending:
            return False
        loop = asyncio.get_running_loop()
        lane = self._lanes.get(queue_name)
        if lane is None:
            lane = self._lanes[queue_name] = _Lane(queue_name)
        fut: asyncio.Future[bool] = loop.create_future()
        if len(lane.waiters) > 2 * lane.nwait + 16:
            lane.waiters = deque(f for f in lane.waiters if not f.done())
        lane.waiters.append(fut)
        lane.nwait += 1
        timer = loop.call_later(timeout_ms / 1000.0, self._expire, lane, fut)
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.cancelled():  # cancelled while parked: leave the queue
                lane.nwait -= 1
                self._maybe_drop(queue_name)
            elif fut.result():  # woken, then cancelled before running: pass the wake on
                self.notify(queue_name)
            raise
        finally:
            timer.cancel()

    def remove(self, task_id: str) -> bool:
        """Drop ``task_id``'s queued entry (O(1), lazy). False if it was not queued."""
        item = self._entries.pop(task_id, None)
        if item is None:
            return False
        self._forget(item)
        self._maybe_drop(item[3])
        return True

    def contains(self, task_id: str) -> bool:
        """Whether ``task_id`` has a queued entry (visible or delayed)."""
        return task_id in self._entries

    def queue_of(self, task_id: str) -> str | None:
        """Queue name holding ``task_id``, or None."""
        item = self._entries.get(task_id)
        return None if item is None else item[3]

    def set_delay(self, task_id: str, delay_ms: int) -> bool:
        """Make a queued entry visible at ``clock() + delay_ms`` (keeps its priority/order)."""
        item = self._entries.get(task_id)
        if item is None:
            return False
        lane = self._lanes[item[3]]
        if delay_ms <= 0:
            if len(item) == 4:
                return True  # already visible
            ditem: _DelayedItem = item  # type: ignore[assignment]
            vitem = (ditem[4], ditem[1], task_id, ditem[3])
            self._entries[task_id] = vitem
            self._dstale += 1
            heappush(lane.heap, vitem)
            self._maybe_compact_delayed()
            if lane.nwait:
                self._wake(lane, 1)
            return True
        was_visible = len(item) == 4
        negp = item[0] if was_visible else item[4]  # type: ignore[misc]
        new = (self._clock() + delay_ms, item[1], task_id, item[3], negp)
        self._entries[task_id] = new
        heappush(self._delayed, new)
        if was_visible:
            lane.stale += 1
            self._maybe_compact_lane(lane)
        else:
            self._dstale += 1
        self._maybe_compact_delayed()
        return True

    def size(self, queue_name: str) -> int:
        """Exact number of entries (visible + delayed) in ``queue_name``. O(1)."""
        self._promote_if_due()
        lane = self._lanes.get(queue_name)
        return 0 if lane is None else lane.count

    def sizes(self) -> dict[str, int]:
        """Every non-empty queue name -> size, sorted by name."""
        self._promote_if_due()
        lanes = self._lanes
        return {name: lanes[name].count for name in sorted(lanes) if lanes[name].count}

    def next_due(self) -> int | None:
        """Earliest due time (ms) among delayed entries, or None."""
        delayed = self._delayed
        entries = self._entries
        while delayed and entries.get(delayed[0][2]) is not delayed[0]:
            heappop(delayed)
            self._dstale -= 1
        return delayed[0][0] if delayed else None

    def promote_due(self) -> list[str]:
        """Make due delayed entries visible, wake waiters; return affected queue names (sorted)."""
        return self._promote(self._clock())

    def notify(self, queue_name: str) -> None:
        """Wake one parked waiter of ``queue_name`` if the queue has visible entries (e.g. a limit
        that held them back has room again)."""
        lane = self._lanes.get(queue_name)
        if lane is not None and lane.nwait and lane.heap:
            self._wake(lane, 1)

    def waiting(self, queue_name: str) -> int:
        """Number of long-poll waiters parked on ``queue_name``."""
        lane = self._lanes.get(queue_name)
        return 0 if lane is None else lane.nwait

    # ------------------------------------------------------------------- leases

    def lease(self, task_id: str, timeout_ms: int) -> None:
        """Start or replace ``task_id``'s lease, expiring at ``clock() + timeout_ms``."""
        if task_id in self._leases:
            self._lstale += 1
        item = (self._clock() + timeout_ms, task_id)
        self._leases[task_id] = item
        heappush(self._lheap, item)
        self._maybe_compact_leases()

    def extend_lease(self, task_id: str, timeout_ms: int) -> bool:
        """Expiry becomes ``max(old, clock() + timeout_ms)``; False if there is no lease."""
        old = self._leases.get(task_id)
        if old is None:
            return False
        expiry = self._clock() + timeout_ms
        if expiry > old[0]:
            item = (expiry, task_id)
            self._leases[task_id] = item
            self._lstale += 1
            heappush(self._lheap, item)
            self._maybe_compact_leases()
        return True

    def release(self, task_id: str) -> None:
        """End ``task_id``'s lease (no-op without one)."""
        if self._leases.pop(task_id, None) is not None:
            self._lstale += 1
            self._maybe_compact_leases()

    def expired_leases(self) -> list[str]:
        """Task ids whose lease expiry <= clock(), in expiry order; their leases are removed."""
        now = self._clock()
        heap = self._lheap
        leases = self._leases
        out: list[str] = []
        while heap and heap[0][0] <= now:
            item = heappop(heap)
            if leases.get(item[1]) is item:
                del leases[item[1]]
                out.append(item[1])
            else:
                self._lstale -= 1
        return out

    def next_lease_expiry(self) -> int | None:
        """Earliest lease expiry (ms), or None."""
        heap = self._lheap
        leases = self._leases
        while heap and leases.get(heap[0][1]) is not heap[0]:
            heappop(heap)
            self._lstale -= 1
        return heap[0][0] if heap else None

    # ----------------------------------------------------------------- internals

    def _forget(self, item: _VisibleItem | _DelayedItem) -> None:
        """Account for ``item`` leaving its queue; the caller already removed it from _entries."""
        lane = self._lanes[item[3]]
        lane.count -= 1
        if len(item) == 4:
            lane.stale += 1
            self._maybe_compact_lane(lane)
        else:
            self._dstale += 1
            self._maybe_compact_delayed()

    def _maybe_drop(self, queue_name: str) -> None:
        """Forget an empty queue with no parked waiters (its heap holds only stale items)."""
        lane = self._lanes.get(queue_name)
        if lane is not None and lane.count == 0:
            if lane.nwait == 0:
                del self._lanes[queue_name]
            else:
                lane.heap.clear()
                lane.stale = 0

    def _maybe_compact_lane(self, lane: _Lane) -> None:
        if lane.stale > _COMPACT_MIN and 2 * lane.stale > len(lane.heap):
            entries = self._entries
            lane.heap = [it for it in lane.heap if entries.get(it[2]) is it]
            heapify(lane.heap)
            lane.stale = 0

    def _maybe_compact_delayed(self) -> None:
        if self._dstale > _COMPACT_MIN and 2 * self._dstale > len(self._delayed):
            entries = self._entries
            self._delayed = [it for it in self._delayed if entries.get(it[2]) is it]
            heapify(self._delayed)
            self._dstale = 0

    def _maybe_compact_leases(self) -> None:
        if self._lstale > _COMPACT_MIN and 2 * self._lstale > len(self._lheap):
            leases = self._leases
            self._lheap = [it for it in self._lheap if leases.get(it[1]) is it]
            heapify(self._lheap)
            self._lstale = 0

    def _promote_if_due(self) -> None:
        delayed = self._delayed
        if delayed and delayed[0][0] <= self._clock():
            self._promote(self._clock())

    def _promote(self, now: int) -> list[str]:
        """Move delayed entries due at ``now`` to their visible heaps; wake one waiter per entry."""
        delayed = self._delayed
        entries = self._entries
        lanes = self._lanes
        promoted: dict[str, int] = {}
        while delayed and delayed[0][0] <= now:
            ditem = heappop(delayed)
            task_id = ditem[2]
            if entries.get(task_id) is not ditem:
                self._dstale -= 1
                continue
            name = ditem[3]
            vitem = (ditem[4], ditem[1], task_id, name)
            entries[task_id] = vitem
            heappush(lanes[name].heap, vitem)
            promoted[name] = promoted.get(name, 0) + 1
        for name, n in promoted.items():
            lane = lanes[name]
            if lane.nwait:
                self._wake(lane, n)
        return sorted(promoted)

    @staticmethod
    def _wake(lane: _Lane, n: int) -> None:
        """Resolve up to ``n`` parked waiters of ``lane``, oldest first."""
        waiters = lane.waiters
        while n > 0 and waiters:
            fut = waiters.popleft()
            if fut.done():
                continue  # timed out or cancelled, already accounted for
            fut.set_result(True)
            lane.nwait -= 1
            n -= 1

    def end_waits(self) -> None:
        """The server is stopping: every parked long poll returns now, as at its deadline (False),
        and later ones do not park. A poll then answers with what it has, so a shutdown does not
        wait out the workers' poll timeouts."""
        self._ending = True
        for lane in list(self._lanes.values()):
            for fut in lane.waiters:
                self._expire(lane, fut)

    def _expire(self, lane: _Lane, fut: asyncio.Future[bool]) -> None:
        """Long-poll deadline reached (``loop.call_later`` callback)."""
        if not fut.done():
            fut.set_result(False)
            lane.nwait -= 1
            self._maybe_drop(lane.name)
