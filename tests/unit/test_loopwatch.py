"""The loop watch (``engine/loopwatch.py``): the lag timer, the collector hook, the stall warning.

A stall is made on purpose: a callback that holds the loop (``time.sleep`` inside it), so the
timer due meanwhile runs late by at least the part of the hold after it fell due. Commits go to
a real DuckDB store through a real ``GroupCommitter``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from conductor_lab.engine import loopwatch
from conductor_lab.engine.commit import GroupCommitter
from conductor_lab.engine.loopwatch import LAG_INTERVAL_SECONDS, STALL_LOG_SECONDS, LoopWatch
from conductor_lab.engine.metrics import NullMetrics
from conductor_lab.engine.store.base import Batch, LogRow
from conductor_lab.engine.store.duckdb import DuckDBStore

HOLD = LAG_INTERVAL_SECONDS + STALL_LOG_SECONDS + 0.05  # the next tick runs >= 0.15 s late


class Recorded(NullMetrics):
    def __init__(self) -> None:
        self.lags: list[float] = []
        self.pauses: list[tuple[int, float]] = []

    def loop_lag(self, seconds: float) -> None:
        self.lags.append(seconds)

    def gc_pause(self, generation: int, seconds: float) -> None:
        self.pauses.append((generation, seconds))


class SlowStore(DuckDBStore):
    """A real store whose commits take at least ``delay`` seconds (a checkpoint beside them)."""

    delay = 0.0

    def commit(self, batch: Batch) -> None:
        time.sleep(self.delay)
        super().commit(batch)


def watched(tmp_path: Path, body: Callable[[LoopWatch, GroupCommitter], Awaitable[None]]) -> Recorded:
    metrics = Recorded()
    store = SlowStore(tmp_path / "w.duckdb")

    async def main() -> None:
        c = GroupCommitter(store, asyncio.get_running_loop())
        watch = LoopWatch(asyncio.get_running_loop(), metrics, c)
        watch.start()
        try:
            await body(watch, c)
        finally:
            watch.stop()
            await c.flush()
            c.close()

    try:
        asyncio.run(main())
    finally:
        store.close()
    return metrics


@pytest.fixture(autouse=True)
def every_stall_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    """No rate limit: a stall of the test process before the one made on purpose (a collection
    of a large heap) must not hide the one the test looks at, the last."""
    monkeypatch.setattr(loopwatch, "STALL_LOG_EVERY_SECONDS", 0.0)


def own_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The warnings logged on this thread (the test's loop): engines left running in other
    threads of the test process have watches of their own, and this test holds their loops too."""
    found = [r.getMessage() for r in caplog.records if r.thread == threading.get_ident()]
    assert found, "no stall warning"
    return found


async def ticks(watch: LoopWatch, n: int) -> None:
    """Wait until the watch has run ``n`` more ticks (bounded: 100 intervals)."""
    target = watch.ticks + n
    deadline = time.monotonic() + 100 * LAG_INTERVAL_SECONDS
    while watch.ticks < target:
        assert time.monotonic() < deadline, "the lag timer stopped ticking"
        await asyncio.sleep(LAG_INTERVAL_SECONDS / 4)


def test_a_held_loop_is_measured_and_logged_with_what_happened_meanwhile(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def body(watch: LoopWatch, c: GroupCommitter) -> None:
        await ticks(watch, 2)
        with caplog.at_level(logging.WARNING, logger="conductor_lab.engine.loopwatch"):
            # a commit made on the loop while its fdatasync is slow: the loop waits for it
            c.store.delay = HOLD  # type: ignore[attr-defined]
            c.log(LogRow("t1", 1, "slow"))
            await c.barrier()
            c.store.delay = 0.0  # type: ignore[attr-defined]
            await ticks(watch, 1)
        warning = own_warnings(caplog)[-1]
        assert "the event loop ran" in warning and "ms late" in warning
        slowest = re.search(r"slowest commit (\d+) ms", warning)
        assert slowest is not None and int(slowest.group(1)) >= HOLD * 1000 - 1, warning
        assert "no fold was running" in warning

    metrics = watched(tmp_path, body)
    assert max(metrics.lags) >= HOLD - LAG_INTERVAL_SECONDS
    assert len(metrics.lags) >= 3


def test_a_stall_without_a_collection_or_a_commit_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def body(watch: LoopWatch, c: GroupCommitter) -> None:
        gc.disable()  # no collection may land between the tick before the hold and the one after
        try:
            await ticks(watch, 1)
            with caplog.at_level(logging.WARNING, logger="conductor_lab.engine.loopwatch"):
                time.sleep(HOLD)  # CPU-bound work on the loop, as far as the loop can tell
                await ticks(watch, 1)
        finally:
            gc.enable()
        warning = own_warnings(caplog)[-1]
        assert "no GC pause; no slow commit" in warning and "CPU steal" in warning

    watched(tmp_path, body)


def test_collections_are_timed_by_generation_and_named_in_the_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def body(watch: LoopWatch, c: GroupCommitter) -> None:
        await ticks(watch, 1)
        with caplog.at_level(logging.WARNING, logger="conductor_lab.engine.loopwatch"):
            # 200,000 containers in cycles: a full collection takes milliseconds
            junk: list[list[object]] = []
            for _ in range(100_000):
                a: list[object] = []
                b: list[object] = [a]
                a.append(b)
                junk.append(a)
            del junk, a, b
            gc.collect()
            time.sleep(HOLD)
            await ticks(watch, 1)
        warning = own_warnings(caplog)[-1]
        assert "longest GC pause" in warning and "(generation 2)" in warning

    metrics = watched(tmp_path, body)
    full = [s for g, s in metrics.pauses if g == 2]
    assert full and max(full) >= 0.001


def test_stop_unhooks_the_collector_and_a_dropped_watch_unhooks_itself(tmp_path: Path) -> None:
    hooks_before = list(gc.callbacks)

    async def body(watch: LoopWatch, c: GroupCommitter) -> None:
        assert len(gc.callbacks) == len(hooks_before) + 1
        # a second watch, dropped without stop(): its hook must not keep it (or its engine) alive
        other = LoopWatch(asyncio.get_running_loop(), NullMetrics(), c)
        other.start()
        assert len(gc.callbacks) == len(hooks_before) + 2
        assert other._timer is not None
        other._timer.cancel()
        ref = weakref.ref(other)
        del other
        gc.collect()
        assert ref() is None
        gc.collect()  # the dead watch's hook removes itself when called
        assert len(gc.callbacks) == len(hooks_before) + 1

    watched(tmp_path, body)
    assert gc.callbacks == hooks_before


def test_stall_warnings_are_rate_limited(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loopwatch, "STALL_LOG_EVERY_SECONDS", 10.0)

    async def body(watch: LoopWatch, c: GroupCommitter) -> None:
        await ticks(watch, 1)
        with caplog.at_level(logging.WARNING, logger="conductor_lab.engine.loopwatch"):
            for _ in range(2):
                time.sleep(HOLD)
                await ticks(watch, 1)

    metrics = watched(tmp_path, body)
    assert sum(lag >= HOLD - LAG_INTERVAL_SECONDS for lag in metrics.lags) >= 2  # two stalls...
    assert len(own_warnings(caplog)) == 1  # ...one warning
