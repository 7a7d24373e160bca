"""Poll-time limits with an injected clock: the exact rate window, the in-progress set through
every transition, recovery after a restart, parked pollers, and the queue's ``take``.

The REST tests (tests/server/test_rest_limits.py) check the same rules against a real server in
real time; here time only moves when the test moves it, so window edges are checked to the ms.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from conductor_lab.engine.executor import Executor
from conductor_lab.engine.queue import MemoryQueue
from conductor_lab.engine.store.duckdb import DuckDBStore
from tests.scenario.test_executor_clock import ONE, Clock, result, run


async def poll(ex: Executor, count: int = 1, task_type: str = "job", **kw: Any) -> list[dict[str, Any]]:
    return [t.to_json() for t in await ex.poll(task_type, worker_id="w", count=count, timeout_ms=0, **kw)]


def test_rate_window_slides_to_the_millisecond(tmp_path: Path) -> None:
    async def story(ex: Executor, clock: Clock) -> None:
        await ex.register_task_defs([{"name": "job", "rateLimitPerFrequency": 2, "rateLimitFrequencyInSeconds": 1}])
        await ex.register_workflow_def(ONE)
        for _ in range(6):
            await ex.start_workflow({"name": "one"})
        t0 = clock.now
        assert len(await poll(ex)) == 1  # T0
        clock.now = t0 + 500
        assert len(await poll(ex, 5)) == 1  # T0+500: the second of the window
        clock.now = t0 + 999
        assert await poll(ex, 5) == []
        clock.now = t0 + 1000  # the delivery at T0 leaves the window (entries <= now - 1000 drop)
        assert len(await poll(ex, 5)) == 1
        # a fixed 1-s bucket would allow a second one now; the sliding window still holds T0+500
        assert await poll(ex, 5) == []
        clock.now = t0 + 1499
        assert await poll(ex, 5) == []
        clock.now = t0 + 1500
        assert len(await poll(ex, 5)) == 1
        assert ex.queue_size("job") == 2

    run(tmp_path, story)


def test_rate_limit_counts_redeliveries_and_zero_means_unlimited(tmp_path: Path) -> None:
    async def story(ex: Executor, clock: Clock) -> None:
        await ex.register_task_defs(
            [
                {"name": "job", "rateLimitPerFrequency": 1, "rateLimitFrequencyInSeconds": 10},
                {"name": "free", "rateLimitPerFrequency": 0, "rateLimitFrequencyInSeconds": 10},
            ]
        )
        await ex.register_workflow_def(ONE)
        await ex.register_workflow_def({"name": "f", "tasks": [{"name": "free", "taskReferenceName": "free"}]})
        for _ in range(5):
            await ex.start_workflow({"name": "f"})
        assert len(await poll(ex, 10, "free")) == 5
        await ex.start_workflow({"name": "one"})
        (t,) = await poll(ex)
        await ex.update_task(result(t, "IN_PROGRESS", callbackAfterSeconds=1))
        clock.advance(1)
        assert await poll(ex) == []  # visible again, but the window still holds its first delivery
        clock.advance(9)
        (again,) = await poll(ex)
        assert again["taskId"] == t["taskId"] and again["pollCount"] == 2

    run(tmp_path, story)


def test_in_progress_set_follows_every_transition(tmp_path: Path) -> None:
    async def story(ex: Executor, clock: Clock) -> None:
        await ex.register_task_defs(
            [{"name": "job", "concurrentExecLimit": 10, "retryCount": 1, "retryDelaySeconds": 0,
              "responseTimeoutSeconds": 5}]
        )  # fmt: skip
        await ex.register_workflow_def(ONE)
        ids = [await ex.start_workflow({"name": "one"}) for _ in range(6)]

        def held() -> int:
            return ex.rt.limits.in_progress("job")

        tasks = await poll(ex, 6)
        assert len(tasks) == 6 and held() == 6
        a, b, c, d, e, f = tasks
        await ex.update_task(result(a, "IN_PROGRESS", callbackAfterSeconds=30))  # back to SCHEDULED
        assert held() == 5
        await ex.update_task(result(b, "COMPLETED"))
        assert held() == 4
        await ex.update_task(result(c, "FAILED"))  # retried: the new attempt is SCHEDULED
        assert held() == 3
        await ex.terminate_workflow(ids[3], "stop")  # CANCELED
        assert held() == 2
        await ex.remove_workflow(ids[4], archive=False)  # gone while running
        assert held() == 1
        clock.advance(5)  # f's lease runs out: TIMED_OUT, retried
        ex.run_timers()
        assert (await ex.get_task(f["taskId"])).status.value == "TIMED_OUT"
        assert held() == 0
        retries = await poll(ex, 6)
        assert sorted(x["retryCount"] for x in retries) == [1, 1] and held() == 2
        assert e["workflowInstanceId"] == ids[4]

    run(tmp_path, story)


def test_limit_comes_from_the_execution_snapshot(tmp_path: Path) -> None:
    async def story(ex: Executor, clock: Clock) -> None:
        await ex.register_task_defs([{"name": "job", "concurrentExecLimit": 1}])
        await ex.register_workflow_def(ONE)
        await ex.start_workflow({"name": "one"})
        await ex.start_workflow({"name": "one"})
        assert len(await poll(ex, 5)) == 1
        await ex.update_task_def({"name": "job", "concurrentExecLimit": 0})
        # the queued task keeps the limit of its execution (and holds the queue behind it)
        assert await poll(ex, 5) == []
        assert ex.rt.limits.in_progress("job") == 1

    run(tmp_path, story)


def test_limits_rebuilt_after_a_restart(tmp_path: Path) -> None:
    async def main() -> None:
        clock = Clock()
        ex = Executor(DuckDBStore(tmp_path / "c.duckdb"), clock=clock)
        await ex.start()
        await ex.register_task_defs([{"name": "job", "concurrentExecLimit": 2}])
        await ex.register_workflow_def(ONE)
        for _ in range(3):
            await ex.start_workflow({"name": "one"})
        first = await poll(ex, 5)
        assert len(first) == 2
        await ex.close()

        ex = Executor(DuckDBStore(tmp_path / "c.duckdb"), clock=clock)
        await ex.start()
        try:
            assert ex.rt.limits.in_progress("job") == 2
            assert await poll(ex, 5) == []
            await ex.update_task(result(first[0], "COMPLETED"))
            assert len(await poll(ex, 5)) == 1
        finally:
            await ex.close()

    asyncio.run(main())


def test_parked_poller_wakes_when_a_slot_frees(tmp_path: Path) -> None:
    async def story(ex: Executor, clock: Clock) -> None:
        await ex.register_task_defs([{"name": "job", "concurrentExecLimit": 1}])
        await ex.register_workflow_def(ONE)
        pollers = [asyncio.ensure_future(ex.poll("job", worker_id=f"p{i}", timeout_ms=5000)) for i in range(3)]
        for _ in range(100):
            if ex.queue.waiting("job") == 3:
                break
            await asyncio.sleep(0)
        assert ex.queue.waiting("job") == 3
        await ex.start_workflow({"name": "one"})
        (a,) = await asyncio.wait_for(pollers[0], 2)
        await ex.start_workflow({"name": "one"})
        assert await asyncio.wait_for(pollers[1], 2) == []  # woken, held back by the limit: answers at once
        assert not pollers[2].done() and ex.queue_size("job") == 1
        await ex.update_task(result(a.to_json(), "COMPLETED"))
        (b,) = await asyncio.wait_for(pollers[2], 2)  # the freed slot wakes the parked poller
        assert b.taskId != a.taskId

    run(tmp_path, story)


def test_domain_selection_window_and_fallbacks(tmp_path: Path) -> None:
    async def story(ex: Executor, clock: Clock) -> None:
        await ex.register_workflow_def(ONE)
        await ex.poll("job", domain="active", timeout_ms=0)  # its worker polled at T0
        clock.advance(9.999)

        async def domain_of(mapping: dict[str, str]) -> str | None:
            wid = await ex.start_workflow({"name": "one", "taskToDomain": mapping})
            return (await ex.get_workflow(wid)).tasks[0].domain

        assert await domain_of({"job": "idle,active,last"}) == "active"
        assert await domain_of({"job": " idle , NO_DOMAIN "}) is None
        assert await domain_of({"job": "idle,No_Domain,last"}) == "last"
        assert await domain_of({"*": "star", "other": "x"}) == "star"
        assert await domain_of({"*": "", "job": "own"}) == "own"
        assert await domain_of({"*": "star", "job": ""}) is None  # a present key overrides *
        assert await domain_of({"other": "x"}) is None
        clock.advance(0.001)  # exactly 10 s after the poll: no longer active
        assert await domain_of({"job": "idle,active,last"}) == "last"

    run(tmp_path, story)


def test_take_holds_the_head_in_place_and_drops_stale_ids() -> None:
    q = MemoryQueue(lambda: 0)
    for i, prio in enumerate([1, 5, 5, 0]):
        q.push("q", f"t{i}", priority=prio)
    asked: list[str] = []

    def admit(task_id: str) -> bool | None:
        asked.append(task_id)
        return {"t1": True, "t2": False}.get(task_id)  # t1 taken, t2 dropped, t0 held

    assert q.take("q", 10, admit) == ["t1"]
    assert asked == ["t1", "t2", "t0"]
    assert q.size("q") == 2 and q.contains("t0") and not q.contains("t2")
    assert q.take("q", 10, lambda _id: True) == ["t0", "t3"]  # the held head is still first
    assert q.size("q") == 0
