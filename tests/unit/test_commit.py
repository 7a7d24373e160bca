"""The group committer (``engine/commit.py``) over a real DuckDB store.

What it must keep: a waiter is resolved only after ``store.commit`` returned for its batch; one
commit in flight at a time, in order; a failed commit fails exactly its batch's waiters; a cancelled
waiter does not disturb the others; ``close()`` waits for the commit in hand and refuses later ones;
the writer thread ends with ``close()`` or when the committer is dropped. Quick commits are made on
the loop thread; once the store's commits are slow, on the writer thread, and back when they are
quick again. Most tests hold a commit in the store (a slow disk), so they use the writer thread
(``inline_below=0``), as a slow disk would.
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

from conductor_lab.engine import commit
from conductor_lab.engine.commit import (
    COMMIT_YIELDS,
    INLINE_COMMIT_SECONDS,
    LAZY_COMMIT_SECONDS,
    CommitterClosed,
    GroupCommitter,
)
from conductor_lab.engine.store.base import Batch, LogRow, TransitionRow
from conductor_lab.engine.store.duckdb import DuckDBStore
from tests.conftest import wait_until


class RecordingStore(DuckDBStore):
    """A real DuckDB store that also records, per ``commit``, the thread, the log lines it carried
    and how many commits were running at once."""

    def __init__(self, path: str | Path, release: threading.Event | None = None) -> None:
        super().__init__(path)
        self.release = release  # when set: each commit waits for it (a slow disk)
        self.delay = 0.0  # seconds each commit takes at least (a slow disk)
        self.calls: list[tuple[str, list[str]]] = []
        self.running = 0
        self.most_running = 0
        self._count = threading.Lock()

    def commit(self, batch: Batch) -> None:
        with self._count:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            if self.release is not None:
                assert self.release.wait(10), "the test never released the commit"
            if self.delay:
                time.sleep(self.delay)
            super().commit(batch)
            self.calls.append((threading.current_thread().name, [r.log for r in batch.logs]))
        finally:
            with self._count:
                self.running -= 1


def logged(store: DuckDBStore, task_id: str) -> list[str]:
    return [r.log for r in store.get_task_logs(task_id)]


def writer_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "conductor-lab-commit"}


def run(
    store: DuckDBStore,
    body: Callable[[GroupCommitter], Awaitable[None]],
    release: threading.Event | None = None,
    inline_below: float = 0.0,
) -> None:
    """``body`` with a committer on a fresh loop; then (a held store released) flush and close.
    Commits go to the writer thread unless ``inline_below`` says otherwise."""

    async def main() -> None:
        c = GroupCommitter(store, asyncio.get_running_loop(), inline_below=inline_below)
        try:
            await body(c)
        finally:
            if release is not None:
                release.set()
            await c.flush()
            c.close()

    asyncio.run(main())


def test_a_waiter_is_resolved_after_the_store_committed_its_batch(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "c.duckdb")

    async def body(c: GroupCommitter) -> None:
        c.log(LogRow("t1", 1, "one"))
        waiter = c.barrier()
        assert not waiter.done()
        await waiter
        assert store.calls == [("conductor-lab-commit", ["one"])]  # on the writer thread, before
        assert c.commits == 1 and c.rows == 1 and len(c.latencies) == 1
        assert c.idle
        assert c.barrier().done()  # nothing pending: resolved at once

    run(store, body)
    assert logged(store, "t1") == ["one"]
    store.close()


def test_one_commit_in_flight_in_order_while_the_next_batch_grows(tmp_path: Path) -> None:
    release = threading.Event()
    store = RecordingStore(tmp_path / "c.duckdb", release)

    async def body(c: GroupCommitter) -> None:
        c.log(LogRow("t1", 1, "a"))
        first = c.barrier()
        await asyncio.sleep(0)  # the kick: batch 1 goes to the writer, which waits for release
        await asyncio.to_thread(wait_until, lambda: store.running == 1, what="batch 1 in the writer")
        c.log(LogRow("t1", 2, "b"))
        second = c.barrier()
        for i in range(5):  # later loop turns: everything joins the open batch
            await asyncio.sleep(0)
            c.log(LogRow("t1", 3 + i, f"c{i}"))
        third = c.barrier()
        assert not first.done() and not second.done()
        release.set()
        await asyncio.gather(first, second, third)
        assert store.most_running == 1
        assert [logs for _, logs in store.calls] == [["a"], ["b", "c0", "c1", "c2", "c3", "c4"]]

    run(store, body, release)
    assert logged(store, "t1") == ["a", "b", "c0", "c1", "c2", "c3", "c4"]
    store.close()


@pytest.mark.parametrize("inline_below", [0.0, INLINE_COMMIT_SECONDS], ids=["writer-thread", "on-the-loop"])
def test_a_failed_commit_fails_its_waiters_and_the_next_batch_commits(tmp_path: Path, inline_below: float) -> None:
    store = RecordingStore(tmp_path / "c.duckdb")

    async def body(c: GroupCommitter) -> None:
        # a row the store refuses (its time is not an integer) fails the whole batch
        bad = TransitionRow("soon", "wf1", None, None, None, "RUNNING", None)  # type: ignore[arg-type]
        c.transition(bad)
        c.log(LogRow("t1", 1, "lost with the batch"))
        w1, w2 = c.barrier(), c.barrier()
        results = await asyncio.gather(w1, w2, return_exceptions=True)
        assert all(isinstance(r, TypeError | ValueError) for r in results), results
        assert c.failed is results[0]
        assert c.commits == 0 and c.idle
        c.log(LogRow("t1", 2, "kept"))
        await c.barrier()
        assert c.commits == 1

    run(store, body, inline_below=inline_below)
    assert logged(store, "t1") == ["kept"]
    store.close()


def test_a_cancelled_waiter_leaves_the_others_waiting(tmp_path: Path) -> None:
    release = threading.Event()
    store = RecordingStore(tmp_path / "c.duckdb", release)

    async def body(c: GroupCommitter) -> None:
        c.log(LogRow("t1", 1, "x"))
        gone = asyncio.ensure_future(c.barrier())
        stays = asyncio.ensure_future(c.barrier())
        await asyncio.sleep(0)
        gone.cancel()
        release.set()
        await stays
        assert gone.cancelled()
        assert store.calls == [("conductor-lab-commit", ["x"])]

    run(store, body, release)
    store.close()


def test_close_waits_for_the_commit_in_hand_and_refuses_later_ones(tmp_path: Path) -> None:
    release = threading.Event()
    store = RecordingStore(tmp_path / "c.duckdb", release)

    async def main() -> None:
        before = writer_threads()  # of other tests' committers, if any are still alive
        c = GroupCommitter(store, asyncio.get_running_loop(), inline_below=0.0)
        c.log(LogRow("t1", 1, "in hand"))
        waiter = c.barrier()
        await asyncio.sleep(0)
        await asyncio.to_thread(wait_until, lambda: store.running == 1, what="the commit in the writer")
        threading.Timer(0.05, release.set).start()
        c.close()  # blocks until the commit in hand is done (as ThreadPoolExecutor.shutdown(wait=True))
        assert store.calls == [("conductor-lab-commit", ["in hand"])]
        assert not writer_threads() - before
        await waiter  # its outcome was handed to the loop before the thread ended
        c.log(LogRow("t1", 2, "too late"))
        with pytest.raises(CommitterClosed):
            await c.barrier()
        c.close()  # idempotent

    asyncio.run(main())
    assert logged(store, "t1") == ["in hand"]
    store.close()


def test_the_writer_thread_ends_when_an_unclosed_committer_is_dropped(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "c.duckdb")
    threads: list[threading.Thread] = []

    async def main() -> weakref.ref[GroupCommitter]:
        before = writer_threads()
        c = GroupCommitter(store, asyncio.get_running_loop(), inline_below=0.0)
        c.log(LogRow("t1", 1, "x"))
        await c.barrier()
        threads.extend(writer_threads() - before)
        return weakref.ref(c)

    ref = asyncio.run(main())
    gc.collect()
    assert ref() is None
    assert len(threads) == 1
    wait_until(lambda: not threads[0].is_alive(), what="the writer thread to end")
    store.close()


# ------------------------------------------------------------------------------------------------
# Commits on the loop thread while the store's commits are quick


def test_quick_commits_are_made_on_the_loop_thread_without_a_writer(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "c.duckdb")
    loop_thread = threading.current_thread().name

    async def body(c: GroupCommitter) -> None:
        before = writer_threads()
        c.log(LogRow("t1", 1, "one"))
        waiter = c.barrier()
        assert not waiter.done() and store.calls == []  # committed at the kick, not in barrier()
        await waiter
        c.log(LogRow("t1", 2, "two"))
        c.log(LogRow("t1", 3, "three"))
        await c.barrier()
        assert store.calls == [(loop_thread, ["one"]), (loop_thread, ["two", "three"])]
        assert c.commits == 2 and c.idle
        assert 0.0 < c.commit_seconds < INLINE_COMMIT_SECONDS
        assert not writer_threads() - before  # no thread was started for them

    run(store, body, inline_below=INLINE_COMMIT_SECONDS)
    assert logged(store, "t1") == ["one", "two", "three"]
    store.close()


async def commit_one(store: RecordingStore, c: GroupCommitter, i: int) -> str:
    """Commit one log line and wait for it; the name of the thread the store committed it on."""
    c.log(LogRow("t1", i, f"l{i}"))
    await c.barrier()
    return store.calls[-1][0]


def test_slow_commits_move_to_the_writer_thread_and_back_when_quick(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "c.duckdb")
    loop_thread = threading.current_thread().name

    async def body(c: GroupCommitter) -> None:
        store.delay = INLINE_COMMIT_SECONDS * 3  # a slow disk
        slow = [await commit_one(store, c, i) for i in range(12)]
        assert slow[0] == loop_thread  # no average yet: the first is made on the loop
        assert slow[-1] == "conductor-lab-commit", slow  # the average passed the limit
        switched = slow.index("conductor-lab-commit")
        assert set(slow[switched:]) == {"conductor-lab-commit"}  # and it stays there while slow
        store.delay = 0.0  # the disk is quick again
        quick = [await commit_one(store, c, 100 + i) for i in range(40)]
        assert quick[-1] == loop_thread, quick  # the average fell below the limit again
        assert c.commit_seconds < INLINE_COMMIT_SECONDS

    run(store, body, inline_below=INLINE_COMMIT_SECONDS)
    assert len(logged(store, "t1")) == 52
    store.close()


def test_one_odd_slow_commit_leaves_commits_on_the_loop(tmp_path: Path) -> None:
    """A single slow ``fdatasync`` (a checkpoint writing beside it) counts as at most
    ``COMMIT_SAMPLE_CAP`` times the limit: the next commits stay on the loop thread."""
    store = RecordingStore(tmp_path / "c.duckdb")
    loop_thread = threading.current_thread().name

    async def body(c: GroupCommitter) -> None:
        assert {await commit_one(store, c, i) for i in range(5)} == {loop_thread}
        store.delay = INLINE_COMMIT_SECONDS * 20  # one commit 20x over the limit
        assert await commit_one(store, c, 5) == loop_thread
        store.delay = 0.0
        assert c.commit_seconds < INLINE_COMMIT_SECONDS  # uncapped, 40 ms would have weighed 4 ms
        assert {await commit_one(store, c, 6 + i) for i in range(5)} == {loop_thread}

    run(store, body, inline_below=INLINE_COMMIT_SECONDS)
    assert len(logged(store, "t1")) == 11
    store.close()


def test_close_refuses_inline_commits_too(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "c.duckdb")

    async def main() -> None:
        c = GroupCommitter(store, asyncio.get_running_loop())
        c.log(LogRow("t1", 1, "kept"))
        await c.barrier()
        c.close()
        c.log(LogRow("t1", 2, "too late"))
        with pytest.raises(CommitterClosed):
            await c.barrier()

    asyncio.run(main())
    assert logged(store, "t1") == ["kept"]
    store.close()


# ------------------------------------------------------------------------------------------------
# Deferred marks (a poll's IN_PROGRESS): no commit of their own unless nothing else comes along


def test_deferred_marks_wait_for_the_next_commit_that_is_needed(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "c.duckdb")

    async def body(c: GroupCommitter) -> None:
        with c.deferred():
            c.log(LogRow("t1", 1, "delivered"))
        for _ in range(COMMIT_YIELDS + 2):  # loop turns: an ordinary mark would be committing by now
            await asyncio.sleep(0)
        assert store.calls == [] and not c.idle
        c.log(LogRow("t1", 2, "updated"))  # an ordinary change: both go in one commit
        await c.barrier()
        assert store.calls == [("conductor-lab-commit", ["delivered", "updated"])]
        assert c.idle

    run(store, body)
    store.close()


def test_a_barrier_commits_deferred_marks_at_once(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "c.duckdb")

    async def body(c: GroupCommitter) -> None:
        with c.deferred():
            c.log(LogRow("t1", 1, "delivered"))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await c.barrier()  # a search or SQL read: it must see them
        assert store.calls == [("conductor-lab-commit", ["delivered"])]
        assert loop.time() - t0 < LAZY_COMMIT_SECONDS  # not the timer: the barrier did it

    run(store, body)
    store.close()


def test_deferred_marks_alone_are_committed_after_the_delay(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "c.duckdb")

    async def body(c: GroupCommitter) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with c.deferred():
            c.log(LogRow("t1", 1, "delivered"))
        while not store.calls:
            assert loop.time() - t0 < 10, "deferred marks were never committed"
            await asyncio.sleep(0.005)
        assert loop.time() - t0 >= LAZY_COMMIT_SECONDS * 0.9
        assert store.calls == [("conductor-lab-commit", ["delivered"])]
        wait = loop.time()
        while not c.idle:
            assert loop.time() - wait < 10
            await asyncio.sleep(0.005)

    run(store, body)
    assert logged(store, "t1") == ["delivered"]
    store.close()


def test_deferred_marks_during_a_commit_follow_it_after_the_delay(tmp_path: Path) -> None:
    release = threading.Event()
    store = RecordingStore(tmp_path / "c.duckdb", release)

    async def body(c: GroupCommitter) -> None:
        c.log(LogRow("t1", 1, "created"))
        first = c.barrier()
        await asyncio.to_thread(wait_until, lambda: store.running == 1, what="the first commit in the writer")
        with c.deferred():
            c.log(LogRow("t1", 2, "delivered"))
        release.set()
        await first
        assert [logs for _, logs in store.calls] == [["created"]]
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        while len(store.calls) < 2:
            assert loop.time() - t0 < 10
            await asyncio.sleep(0.005)
        assert [logs for _, logs in store.calls] == [["created"], ["delivered"]]

    run(store, body, release)
    store.close()


# ------------------------------------------------------------------------------------------------
# A due commit lets the callbacks queued behind it run first (requests read meanwhile)


def test_callbacks_queued_behind_a_due_commit_join_its_batch(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "c.duckdb")
    loop_thread = threading.current_thread().name

    async def body(c: GroupCommitter) -> None:
        loop = asyncio.get_running_loop()
        c.log(LogRow("t1", 1, "first"))  # the commit is due: scheduled for the next loop turn
        waiter = c.barrier()
        # two more requests' handlers, queued after the commit (as when they were read meanwhile)
        loop.call_soon(c.log, LogRow("t1", 2, "second"))
        loop.call_soon(lambda: loop.call_soon(c.log, LogRow("t1", 3, "third")))  # a turn later
        await waiter
        assert store.calls == [(loop_thread, ["first", "second", "third"])]

    run(store, body, inline_below=INLINE_COMMIT_SECONDS)
    store.close()


def test_a_due_commit_waits_a_bounded_number_of_loop_turns(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "c.duckdb")
    turns = [0]
    busy = [True]

    def spin() -> None:  # something always ready to run: the commit must not wait for it to end
        turns[0] += 1
        if busy[0]:
            asyncio.get_running_loop().call_soon(spin)

    async def body(c: GroupCommitter) -> None:
        asyncio.get_running_loop().call_soon(spin)
        c.log(LogRow("t1", 1, "x"))
        at = turns[0]
        try:
            await asyncio.wait_for(c.barrier(), 10)  # unbounded waiting would never commit
        finally:
            busy[0] = False
        assert len(store.calls) == 1
        assert turns[0] - at <= COMMIT_YIELDS + 3, turns[0] - at

    run(store, body, inline_below=INLINE_COMMIT_SECONDS)
    store.close()


@pytest.mark.parametrize("may_join", [False, True])
def test_a_due_commit_goes_at_once_when_no_other_request_could_join(tmp_path: Path, may_join: bool) -> None:
    """With ``may_join`` known (the HTTP server: a connection has no request in progress), a due
    commit waits for ready callbacks only while another request could still join it."""
    store = RecordingStore(tmp_path / "c.duckdb")
    loop_thread = threading.current_thread().name

    async def body(c: GroupCommitter) -> None:
        c.may_join = lambda: may_join
        loop = asyncio.get_running_loop()
        c.log(LogRow("t1", 1, "first"))
        waiter = c.barrier()
        loop.call_soon(c.log, LogRow("t1", 2, "second"))  # ready behind the commit
        await waiter
        await c.flush()
        expected = [["first", "second"]] if may_join else [["first"], ["second"]]
        assert store.calls == [(loop_thread, names) for names in expected]

    run(store, body, inline_below=INLINE_COMMIT_SECONDS)
    store.close()


def test_a_slow_commit_is_logged_with_what_ran_beside_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every request of a group waits for its commit: one over SLOW_COMMIT_LOG_SECONDS says so
    (once per SLOW_COMMIT_LOG_EVERY_SECONDS), naming a checkpoint running beside it."""
    monkeypatch.setattr(commit, "SLOW_COMMIT_LOG_SECONDS", 0.05)
    store = RecordingStore(tmp_path / "c.duckdb")

    async def body(c: GroupCommitter) -> None:
        with caplog.at_level(logging.WARNING, logger="conductor_lab.engine.commit"):
            await commit_one(store, c, 0)  # quick: nothing logged
            assert not caplog.records
            store.delay = 0.06
            store.checkpointing = True  # as DuckDBStore sets it around its CHECKPOINT
            await commit_one(store, c, 1)
            store.checkpointing = False
            await commit_one(store, c, 2)  # slow again, within the rate limit: not logged
            store.delay = 0.0
        [warning] = [r.getMessage() for r in caplog.records]
        assert "a group commit of" in warning and "(on the event loop)" in warning, warning
        assert "a checkpoint was running" in warning, warning
        took = re.search(r"took (\d+) ms", warning)
        assert took is not None and int(took.group(1)) >= 60, warning

    run(store, body, inline_below=INLINE_COMMIT_SECONDS)
    store.close()
