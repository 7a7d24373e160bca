"""Unit tests for the in-process task queue (conductor_lab.engine.queue)."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from conductor_lab.engine.queue import MemoryQueue, Queue


class FakeClock:
    """Mutable epoch-millisecond clock."""

    def __init__(self, now: int = 1_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def make() -> tuple[MemoryQueue, FakeClock]:
    clock = FakeClock()
    return MemoryQueue(clock), clock


def check_invariants(q: MemoryQueue) -> None:
    """Internal bookkeeping (counts, stale counters) matches the heaps exactly."""
    entries = q._entries
    counts: dict[str, int] = {}
    for item in entries.values():
        counts[item[3]] = counts.get(item[3], 0) + 1
    for name, lane in q._lanes.items():
        assert lane.count == counts.get(name, 0), name
        live = sum(1 for it in lane.heap if entries.get(it[2]) is it)
        assert lane.stale == len(lane.heap) - live, name
        assert lane.nwait == sum(1 for f in lane.waiters if not f.done())
    assert all(name in q._lanes for name in counts)
    dlive = sum(1 for it in q._delayed if entries.get(it[2]) is it)
    assert q._dstale == len(q._delayed) - dlive
    assert dlive + sum(len(lane.heap) - lane.stale for lane in q._lanes.values()) == len(entries)
    llive = sum(1 for it in q._lheap if q._leases.get(it[1]) is it)
    assert llive == len(q._leases)
    assert q._lstale == len(q._lheap) - llive


def test_implements_protocol() -> None:
    q, _ = make()
    assert isinstance(q, Queue)


def test_priority_order_and_fifo_ties() -> None:
    q, _ = make()
    q.push("t", "a", priority=1)
    q.push("t", "b", priority=5)
    q.push("t", "c", priority=1)
    q.push("t", "d", priority=5)
    q.push("t", "e", priority=0)
    q.push("t", "f", priority=99)
    assert q.pop("t", 10) == ["f", "b", "d", "a", "c", "e"]
    assert q.pop("t") == []
    check_invariants(q)


def test_pop_count_and_queues_are_separate() -> None:
    q, _ = make()
    for i in range(5):
        q.push("x", f"x{i}")
        q.push("domain:x", f"dx{i}")
    assert q.pop("x", 2) == ["x0", "x1"]
    assert q.pop("domain:x", 1) == ["dx0"]
    assert q.pop("x", 0) == []
    assert q.pop("nope", 3) == []
    assert q.size("x") == 3 and q.size("domain:x") == 4
    check_invariants(q)


def test_priority_out_of_range() -> None:
    q, _ = make()
    with pytest.raises(ValueError):
        q.push("t", "a", priority=100)
    with pytest.raises(ValueError):
        q.push("t", "a", priority=-1)
    assert not q.contains("a")


def test_delay_visibility_and_lazy_promotion() -> None:
    q, clock = make()
    q.push("t", "late", delay_ms=100)
    q.push("t", "now")
    assert q.pop("t", 10) == ["now"]
    assert q.contains("late") and q.size("t") == 1
    clock.now += 99
    assert q.pop("t") == []
    clock.now += 1
    # pop promotes lazily: the owner never called promote_due
    assert q.pop("t") == ["late"]
    assert q.size("t") == 0 and not q.contains("late")
    check_invariants(q)


def test_promoted_entries_keep_push_order_and_priority() -> None:
    q, clock = make()
    q.push("t", "d1", delay_ms=10, priority=2)
    q.push("t", "v1", priority=2)
    q.push("t", "d2", delay_ms=5, priority=7)
    q.push("t", "v2", priority=0)
    clock.now += 10
    assert q.pop("t", 10) == ["d2", "d1", "v1", "v2"]


def test_repush_replaces_never_duplicates() -> None:
    q, clock = make()
    q.push("a", "t1")
    q.push("a", "t2")
    q.push("a", "t1", priority=3)  # same queue: moves to the front by priority
    assert q.size("a") == 2
    q.push("b", "t2", delay_ms=50)  # moved to another queue, delayed
    assert q.size("a") == 1 and q.size("b") == 1
    assert q.queue_of("t2") == "b"
    assert q.pop("a", 10) == ["t1"]
    assert q.pop("b") == []
    clock.now += 50
    q.push("c", "t2")  # delayed entry moved again: stale delayed item must not resurface
    assert q.promote_due() == []
    assert q.pop("b") == [] and q.pop("c") == ["t2"]
    assert q.sizes() == {}
    check_invariants(q)


def test_remove_and_contains() -> None:
    q, _ = make()
    q.push("t", "a")
    q.push("t", "b", delay_ms=10)
    q.push("t", "c")
    assert q.remove("a") and q.remove("b")
    assert not q.remove("a") and not q.remove("zzz")
    assert not q.contains("a") and not q.contains("b") and q.contains("c")
    assert q.queue_of("a") is None and q.queue_of("c") == "t"
    assert q.size("t") == 1
    assert q.next_due() is None
    assert q.pop("t", 10) == ["c"]
    check_invariants(q)


def test_exact_sizes_including_delayed() -> None:
    q, clock = make()
    q.push("b", "1")
    q.push("b", "2", delay_ms=1000)
    q.push("a", "3", delay_ms=5)
    q.push("c", "4")
    assert q.size("b") == 2 and q.size("a") == 1 and q.size("zz") == 0
    assert q.sizes() == {"a": 1, "b": 2, "c": 1}
    assert list(q.sizes()) == ["a", "b", "c"]
    q.pop("c")
    assert q.sizes() == {"a": 1, "b": 2}
    clock.now += 5
    assert q.size("a") == 1
    assert q.pop("a") == ["3"]
    assert q.sizes() == {"b": 2}
    check_invariants(q)


def test_set_delay() -> None:
    q, clock = make()
    q.push("t", "a")
    q.push("t", "b")
    assert q.set_delay("a", 100)  # postpone a visible entry
    assert q.pop("t", 10) == ["b"]
    assert q.size("t") == 1 and q.next_due() == clock.now + 100
    assert q.set_delay("a", 500)  # postpone further
    clock.now += 100
    assert q.pop("t") == []
    assert q.set_delay("a", 0)  # advance: visible now (resetcallbacks)
    assert q.next_due() is None
    assert q.pop("t") == ["a"]
    assert not q.set_delay("a", 0) and not q.set_delay("missing", 10)
    # advancing keeps the original push order among equal priorities
    q.push("t", "x", delay_ms=1000)
    q.push("t", "y")
    assert q.set_delay("x", 0) and q.set_delay("y", 0)
    assert q.pop("t", 5) == ["x", "y"]
    check_invariants(q)


def test_next_due_and_promote_due_returns_names() -> None:
    q, clock = make()
    assert q.next_due() is None
    q.push("b", "1", delay_ms=30)
    q.push("a", "2", delay_ms=10)
    q.push("c", "3", delay_ms=10)
    q.push("a", "4", delay_ms=50)
    t0 = clock.now
    assert q.next_due() == t0 + 10
    assert q.promote_due() == []
    clock.now = t0 + 30
    assert q.promote_due() == ["a", "b", "c"]
    assert q.next_due() == t0 + 50
    q.remove("4")
    assert q.next_due() is None
    assert q.pop("a", 5) == ["2"] and q.pop("b") == ["1"] and q.pop("c") == ["3"]
    check_invariants(q)


def test_promote_due_wakes_parked_poll() -> None:
    q, clock = make()

    async def main() -> list[str]:
        task = asyncio.create_task(q.poll("t", 1, 10_000))
        await asyncio.sleep(0)
        assert q.waiting("t") == 1
        q.push("t", "job", delay_ms=100)
        await asyncio.sleep(0)
        assert q.waiting("t") == 1 and not task.done()  # delayed entry does not wake
        clock.now += 100
        assert q.promote_due() == ["t"]
        return await asyncio.wait_for(task, 1.0)

    assert asyncio.run(main()) == ["job"]
    assert q.waiting("t") == 0 and q.size("t") == 0
    check_invariants(q)


def test_poll_timeout_returns_empty() -> None:
    q, _ = make()

    async def main() -> tuple[list[str], float]:
        t0 = time.perf_counter()
        got = await q.poll("t", 5, 50)
        return got, time.perf_counter() - t0

    got, elapsed = asyncio.run(main())
    assert got == []
    assert 0.04 <= elapsed < 2.0
    assert q.waiting("t") == 0 and q.sizes() == {}
    check_invariants(q)


def test_poll_returns_immediately_when_visible() -> None:
    q, _ = make()
    q.push("t", "a")
    q.push("t", "b")
    q.push("t", "c")

    async def main() -> list[str]:
        return await asyncio.wait_for(q.poll("t", 2, 60_000), 1.0)

    assert asyncio.run(main()) == ["a", "b"]
    assert q.size("t") == 1


def test_poll_zero_timeout_never_parks() -> None:
    q, _ = make()

    async def main() -> list[str]:
        return await q.poll("t", 1, 0)

    assert asyncio.run(main()) == []
    assert q.waiting("t") == 0


def test_push_wakes_one_waiter_per_entry() -> None:
    q, _ = make()

    async def main() -> list[list[str]]:
        tasks = [asyncio.create_task(q.poll("t", 1, 10_000)) for _ in range(3)]
        await asyncio.sleep(0)
        assert q.waiting("t") == 3
        q.push("t", "a")
        assert q.waiting("t") == 2  # exactly one woken, no thundering herd
        first = await asyncio.wait_for(tasks[0], 1.0)  # oldest waiter first
        q.push("t", "b")
        q.push("t", "c")
        assert q.waiting("t") == 0
        rest = await asyncio.wait_for(asyncio.gather(*tasks[1:]), 1.0)
        return [first, *rest]

    assert asyncio.run(main()) == [["a"], ["b"], ["c"]]
    check_invariants(q)


def test_end_waits_returns_every_parked_poll_and_parks_no_more() -> None:
    q, _ = make()

    async def main() -> tuple[list[list[str]], list[str]]:
        tasks = [asyncio.create_task(q.poll(name, 1, 60_000)) for name in ("t", "t", "u")]
        await asyncio.sleep(0)
        assert q.waiting("t") == 2 and q.waiting("u") == 1
        q.end_waits()
        ended = await asyncio.wait_for(asyncio.gather(*tasks), 1.0)  # not their 60 s deadline
        assert q.waiting("t") == q.waiting("u") == 0
        later = await asyncio.wait_for(q.poll("t", 1, 60_000), 1.0)  # does not park
        return ended, later

    assert asyncio.run(main()) == ([[], [], []], [])
    check_invariants(q)


def test_woken_waiter_that_finds_nothing_keeps_waiting() -> None:
    q, _ = make()

    async def main() -> list[str]:
        task = asyncio.create_task(q.poll("t", 1, 10_000))
        await asyncio.sleep(0)
        q.push("t", "stolen")
        assert q.pop("t") == ["stolen"]  # another consumer wins the race
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert not task.done() and q.waiting("t") == 1
        q.push("t", "mine")
        return await asyncio.wait_for(task, 1.0)

    assert asyncio.run(main()) == ["mine"]
    check_invariants(q)


def test_cancelled_poll_is_removed_and_entry_not_lost() -> None:
    q, _ = make()

    async def main() -> None:
        task = asyncio.create_task(q.poll("t", 1, 10_000))
        await asyncio.sleep(0)
        assert q.waiting("t") == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert q.waiting("t") == 0
        q.push("t", "x")
        assert q.pop("t") == ["x"]

    asyncio.run(main())
    assert q.sizes() == {}
    check_invariants(q)


def test_cancel_after_wake_passes_the_wake_on() -> None:
    q, _ = make()

    async def main() -> list[str]:
        w1 = asyncio.create_task(q.poll("t", 1, 10_000))
        w2 = asyncio.create_task(q.poll("t", 1, 10_000))
        await asyncio.sleep(0)
        assert q.waiting("t") == 2
        q.push("t", "x")  # wakes w1 ...
        w1.cancel()  # ... which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await w1
        return await asyncio.wait_for(w2, 1.0)

    assert asyncio.run(main()) == ["x"]
    assert q.waiting("t") == 0 and q.sizes() == {}
    check_invariants(q)


def test_lease_extend_release_expire() -> None:
    q, clock = make()
    t0 = clock.now
    assert q.next_lease_expiry() is None
    q.lease("a", 100)
    q.lease("b", 50)
    q.lease("c", 200)
    assert q.next_lease_expiry() == t0 + 50
    assert q.extend_lease("b", 10) is True  # would shorten: unchanged
    assert q.next_lease_expiry() == t0 + 50
    assert q.extend_lease("b", 150)  # extends to t0+150
    assert not q.extend_lease("zzz", 10)
    assert q.next_lease_expiry() == t0 + 100
    q.release("c")
    q.release("c")  # idempotent
    q.lease("a", 120)  # replace (may shorten or lengthen)
    clock.now = t0 + 100
    assert q.expired_leases() == []
    clock.now = t0 + 150
    assert q.expired_leases() == ["a", "b"]
    assert q.expired_leases() == []
    assert q.next_lease_expiry() is None
    assert not q.extend_lease("a", 10)
    q.lease("d", 0)
    assert q.expired_leases() == ["d"]
    check_invariants(q)


def test_lease_replace_can_shorten() -> None:
    q, clock = make()
    q.lease("a", 1000)
    q.lease("a", 10)
    clock.now += 10
    assert q.expired_leases() == ["a"]


def test_stale_items_are_compacted() -> None:
    q, clock = make()
    for i in range(20_000):
        q.push("t", "same", delay_ms=1 + i % 7)
        q.set_delay("same", 5)
        q.lease("L", 10 + i)
        q.extend_lease("L", 20 + i)
    for i in range(20_000):
        q.push("v", "hot", priority=i % 3)
    assert q.size("t") == 1 and q.size("v") == 1
    assert len(q._delayed) < 5_000
    assert len(q._lheap) < 5_000
    assert len(q._lanes["v"].heap) < 5_000
    check_invariants(q)
    clock.now += 10
    assert q.pop("t") == ["same"] and q.pop("v") == ["hot"]
    check_invariants(q)


class RefModel:
    """Obvious O(n) reference: entry -> (queue, priority, seq, due)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.seq = 0
        self.entries: dict[str, tuple[str, int, int, int]] = {}

    def push(self, name: str, tid: str, priority: int, delay_ms: int) -> None:
        self.seq += 1
        self.entries[tid] = (name, priority, self.seq, self.clock.now + max(delay_ms, 0))

    def pop(self, name: str, count: int) -> list[str]:
        now = self.clock.now
        vis = [(-p, s, t) for t, (n, p, s, d) in self.entries.items() if n == name and d <= now]
        vis.sort()
        out = [t for _, _, t in vis[:count]]
        for t in out:
            del self.entries[t]
        return out

    def remove(self, tid: str) -> bool:
        return self.entries.pop(tid, None) is not None

    def set_delay(self, tid: str, delay_ms: int) -> bool:
        e = self.entries.get(tid)
        if e is None:
            return False
        n, p, s, d = e
        now = self.clock.now
        if delay_ms <= 0:
            self.entries[tid] = (n, p, s, min(d, now))
        else:
            self.entries[tid] = (n, p, s, now + delay_ms)
        return True

    def sizes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for n, _, _, _ in self.entries.values():
            out[n] = out.get(n, 0) + 1
        return dict(sorted(out.items()))


def test_stress_against_reference_model() -> None:
    rng = random.Random(20240601)
    clock = FakeClock()
    q = MemoryQueue(clock)
    ref = RefModel(clock)
    names = ["a", "b", "domain:a", "c"]
    ids = [f"task-{i}" for i in range(1500)]
    popped = 0
    for step in range(10_000):
        op = rng.random()
        if op < 0.40:
            name, tid = rng.choice(names), rng.choice(ids)
            prio = rng.choice([0, 0, 1, 2, 50, 99])
            delay = rng.choice([0, 0, 0, 5, 20, 100])
            q.push(name, tid, priority=prio, delay_ms=delay)
            ref.push(name, tid, prio, delay)
        elif op < 0.65:
            name, count = rng.choice(names), rng.choice([1, 1, 2, 5, 20])
            got = q.pop(name, count)
            assert got == ref.pop(name, count), step
            popped += len(got)
        elif op < 0.72:
            tid = rng.choice(ids)
            assert q.remove(tid) == ref.remove(tid)
        elif op < 0.80:
            tid, delay = rng.choice(ids), rng.choice([0, 0, 3, 50])
            assert q.set_delay(tid, delay) == ref.set_delay(tid, delay)
        elif op < 0.90:
            clock.now += rng.choice([1, 2, 5, 10, 30])
        elif op < 0.95:
            q.promote_due()
            due = [d for _, _, _, d in ref.entries.values() if d > clock.now]
            assert q.next_due() == (min(due) if due else None)
        else:
            tid = rng.choice(ids)
            assert q.contains(tid) == (tid in ref.entries)
            assert q.queue_of(tid) == (ref.entries[tid][0] if tid in ref.entries else None)
        name = names[step % len(names)]
        assert q.size(name) == sum(1 for e in ref.entries.values() if e[0] == name)
        if step % 500 == 0:
            assert q.sizes() == ref.sizes()
            check_invariants(q)
    assert popped > 1000
    assert q.sizes() == ref.sizes()
    clock.now += 1000
    for name in names:
        assert q.pop(name, 10_000) == ref.pop(name, 10_000)
    assert q.sizes() == {} and ref.sizes() == {}
    check_invariants(q)


def test_promote_due_wakes_one_waiter_per_promoted_entry() -> None:
    q, clock = make()

    async def main() -> list[list[str]]:
        tasks = [asyncio.create_task(q.poll("t", 1, 10_000)) for _ in range(3)]
        await asyncio.sleep(0)
        q.push("t", "a", delay_ms=10)
        q.push("t", "b", delay_ms=10)
        clock.now += 10
        assert q.promote_due() == ["t"]
        assert q.waiting("t") == 1
        done = await asyncio.wait_for(asyncio.gather(*tasks[:2]), 1.0)
        assert not tasks[2].done()
        tasks[2].cancel()
        await asyncio.gather(tasks[2], return_exceptions=True)
        return done

    assert asyncio.run(main()) == [["a"], ["b"]]
    assert q.waiting("t") == 0 and q.sizes() == {}
    check_invariants(q)


def _visible_live(q: MemoryQueue, name: str) -> int:
    lane = q._lanes.get(name)
    return 0 if lane is None else len(lane.heap) - lane.stale


def test_async_stress_no_lost_entries_no_idle_waiters() -> None:
    rng = random.Random(7)
    clock = FakeClock()
    q = MemoryQueue(clock)
    names = ["a", "b"]

    async def main() -> None:
        pushed: set[str] = set()
        received: list[str] = []
        removed: set[str] = set()
        pollers: list[asyncio.Task[list[str]]] = []
        n = 0
        for step in range(3000):
            op = rng.random()
            if op < 0.35:
                n += 1
                tid = f"t{n}"
                pushed.add(tid)
                q.push(rng.choice(names), tid, priority=rng.randrange(3), delay_ms=rng.choice([0, 0, 10]))
            elif op < 0.60:
                pollers.append(asyncio.create_task(q.poll(rng.choice(names), rng.choice([1, 3]), 10_000)))
            elif op < 0.70:
                received.extend(q.pop(rng.choice(names), rng.choice([1, 2])))
            elif op < 0.78 and pollers:
                rng.choice(pollers).cancel()
            elif op < 0.83 and pushed:
                tid = f"t{rng.randint(1, n)}"
                if q.remove(tid):
                    removed.add(tid)
            elif op < 0.93:
                clock.now += 5
                q.promote_due()
            for _ in range(rng.choice([0, 0, 1, 3])):
                await asyncio.sleep(0)
            if step % 100 == 0:
                for _ in range(5):
                    await asyncio.sleep(0)
                for name in names:
                    assert not (q.waiting(name) and _visible_live(q, name)), (step, name)
                check_invariants(q)
        clock.now += 100
        q.promote_due()
        for _ in range(10):
            await asyncio.sleep(0)
        for name in names:
            assert not (q.waiting(name) and _visible_live(q, name))
        for t in pollers:
            t.cancel()
        results = await asyncio.gather(*pollers, return_exceptions=True)
        for r in results:
            if isinstance(r, list):
                received.extend(r)
        for name in names:
            received.extend(q.pop(name, 1_000_000))
        assert len(received) == len(set(received))  # nothing delivered twice
        assert set(received) | removed == pushed  # nothing lost
        assert not set(received) & removed
        assert q.sizes() == {} and all(q.waiting(name) == 0 for name in names)

    asyncio.run(main())
    check_invariants(q)
