"""Event-loop health: how late the engine's loop runs a timer, and the garbage collector's pauses.

Every request is served on the engine's event loop, so a loop turn that takes 150 ms holds every
request in flight for as long. Two things stop the loop on a busy server and are worth telling
apart: Python's cyclic garbage collector (a pass holds the GIL for time proportional to the
containers it examines: ~3-4 us per finished workflow kept in memory) and a group commit on the
loop whose ``fdatasync`` a DuckDB checkpoint, writing beside it, stretched (docs/performance.md,
"What stops the loop").

:class:`LoopWatch` measures both, cheaply:

- **lag**: a timer due every ``LAG_INTERVAL_SECONDS`` notes how late it ran
  (``conductor_lab_event_loop_lag_seconds``). A tick costs ~3.5 us of CPU with the loop's timer
  handling (measured with the interval at 0): ten a second are ~35 us per second.
- **collector pauses**: a ``gc.callbacks`` hook times every collection, by generation
  (``conductor_lab_gc_pause_seconds``). The hook is process-wide: in a notebook kernel it also
  times the kernel's own collections, which stop the server's loop just the same (the GIL).

A tick that runs ``STALL_LOG_SECONDS`` late logs a warning naming what happened since the tick
before it: the longest collection, the slowest commit and whether a fold was running. A stall
then explains itself in the server's log; one with none of these points at CPU-bound work on the
loop or at the host (CPU steal).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conductor_lab.engine.commit import GroupCommitter
    from conductor_lab.engine.metrics import NullMetrics

log = logging.getLogger(__name__)

#: how often the lag timer is due (seconds)
LAG_INTERVAL_SECONDS = 0.1
#: a tick at least this late logs a warning with what happened meanwhile (seconds)
STALL_LOG_SECONDS = 0.1
#: at most one such warning per this many seconds (a debugger or a suspended VM is not a flood)
STALL_LOG_EVERY_SECONDS = 10.0


class LoopWatch:
    """The lag timer on ``loop`` and the process's collector hook, feeding ``metrics``.

    ``committer`` tells the warning the slowest commit since the previous tick and whether a fold
    runs. ``start()`` and ``stop()`` run on the loop.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, metrics: NullMetrics, committer: GroupCommitter
    ) -> None:
        self.loop = loop
        self.metrics = metrics
        self.committer = committer
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._gc_hook: Callable[[str, dict[str, Any]], None] | None = None
        self._gc_began = 0.0
        #: the longest collection since the previous tick: (seconds, generation)
        self._gc_max = (0.0, 0)
        self._warned_at = -STALL_LOG_EVERY_SECONDS
        #: ticks run
        self.ticks = 0

    def start(self) -> None:
        if self._gc_hook is None:
            self._gc_hook = _weak_gc_hook(self)
            gc.callbacks.append(self._gc_hook)
        self.restart()

    def restart(self) -> None:
        """Schedule the next tick from now: a long step taken on purpose (the collection and
        ``gc.freeze()`` after recovery) is not reported as a stall."""
        if self._timer is not None:
            self._timer.cancel()
        self._arm(self.loop.time())

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._gc_hook is not None:
            _remove_hook(self._gc_hook)
            self._gc_hook = None

    def _tick(self) -> None:
        now = self.loop.time()
        lag = max(0.0, now - self._due)
        self.ticks += 1
        self.metrics.loop_lag(lag)
        if lag >= STALL_LOG_SECONDS and now - self._warned_at >= STALL_LOG_EVERY_SECONDS:
            self._warned_at = now
            log.warning("the event loop ran %.0f ms late: %s", lag * 1000, self._since_last_tick())
        self._arm(now)

    def _arm(self, now: float) -> None:
        """A new interval from ``now``: forget what the last one saw, set the next tick."""
        self._gc_max = (0.0, 0)
        self.committer.slowest_commit = 0.0
        self._due = now + LAG_INTERVAL_SECONDS
        self._timer = self.loop.call_at(self._due, self._tick)

    def _since_last_tick(self) -> str:
        gc_s, gen = self._gc_max
        commit_s = self.committer.slowest_commit
        parts = [
            f"longest GC pause {gc_s * 1000:.0f} ms (generation {gen})" if gc_s >= 0.001 else "no GC pause",
            f"slowest commit {commit_s * 1000:.0f} ms" if commit_s >= 0.001 else "no slow commit",
            self.committer.beside(),
        ]
        if gc_s < 0.001 and commit_s < 0.001:
            parts.append("so: work on the loop itself, or the host (CPU steal)")
        return "; ".join(parts)

    def gc_phase(self, phase: str, info: dict[str, Any]) -> None:
        """The ``gc.callbacks`` hook: runs on whichever thread collects, holding the GIL
        (collections do not overlap, so the fields need no lock)."""
        if phase == "start":
            self._gc_began = perf_counter()
            return
        if not self._gc_began:  # its start was missed (a hook removed meanwhile shifted the list)
            return
        seconds = perf_counter() - self._gc_began
        self._gc_began = 0.0
        gen = info["generation"]
        self.metrics.gc_pause(gen, seconds)
        if seconds > self._gc_max[0]:
            self._gc_max = (seconds, gen)


def _weak_gc_hook(watch: LoopWatch) -> Callable[[str, dict[str, Any]], None]:
    """A ``gc.callbacks`` entry that does not keep ``watch`` (and its engine) alive: an engine
    dropped without ``stop()`` unhooks itself at the next collection."""
    ref = weakref.ref(watch)

    def hook(phase: str, info: dict[str, Any]) -> None:
        w = ref()
        if w is None:
            _remove_hook(hook)
            return
        w.gc_phase(phase, info)

    return hook


def _remove_hook(hook: Callable[[str, dict[str, Any]], None]) -> None:
    try:
        gc.callbacks.remove(hook)
    except ValueError:
        pass
