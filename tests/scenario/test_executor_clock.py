"""Executor stories driven by an injected clock: retry delays, callbacks, timeouts, heartbeats.

The executor runs on a real DuckDB file; time only moves when the test moves it, so no test
sleeps through a real timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from conductor_lab.engine.executor import Executor
from conductor_lab.engine.store.duckdb import DuckDBStore
from conductor_lab.errors import Conflict, InvalidInput, NotFound

T0 = 1_800_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


def run(tmp_path: Path, story: Callable[[Executor, Clock], Awaitable[None]]) -> None:
    async def main() -> None:
        clock = Clock()
        ex = Executor(DuckDBStore(tmp_path / "c.duckdb"), clock=clock)
        await ex.start()
        try:
            await story(ex, clock)
        finally:
            await ex.close()

    asyncio.run(main())


async def poll_one(ex: Executor, task_type: str) -> dict[str, Any] | None:
    got = await ex.poll(task_type, worker_id="w", count=1, timeout_ms=0)
    return got[0].to_json() if got else None


async def workflow_json(ex: Executor, workflow_id: str) -> dict[str, Any]:
    """The workflow as a client sees it (Conductor's JSON)."""
    return (await ex.get_workflow(workflow_id)).to_json()


async def task_json(ex: Executor, task_id: str) -> dict[str, Any]:
    return (await ex.get_task(task_id)).to_json()


def result(t: dict[str, Any], status: str, **kw: Any) -> dict[str, Any]:
    return {"workflowInstanceId": t["workflowInstanceId"], "taskId": t["taskId"], "status": status, **kw}


ONE = {"name": "one", "tasks": [{"name": "job", "taskReferenceName": "job"}]}


def test_retry_waits_for_its_delay(tmp_path: Path) -> None:
    async def story(ex: Executor, clock: Clock) -> None:
        await ex.register_task_defs([{"name": "job", "retryCount": 1, "retryDelaySeconds": 30}])
        await ex.register_workflow_def(ONE)
        wid = await ex.start_workflow({"name": "one"})
        t = await poll_one(ex, "job")
        assert t is not None
        await ex.update_task(result(t, "FAILED", reasonForIncompletion="nope"))
        assert ex.queue_size("job") == 1  # the retry is queued but not visible yet
        assert await poll_one(ex, "job") is None
        clock.advance(29)
        ex.run_timers()
        assert await poll_one(ex, "job") is None
        clock.advance(1)
        ex.run_timers()
        retry = await poll_one(ex, "job")
        assert retry is not None and retry["retryCount"] == 1 and retry["retriedTaskId"] == t["taskId"]
        await ex.update_task(result(retry, "COMPLETED", outputData={"ok": 1}))
        wf = await workflow_json(ex, wid)
        assert wf["status"] == "COMPLETED" and wf["output"] == {"ok": 1}
        assert [x["status"] for x in wf["tasks"]] == ["FAILED", "COMPLETED"]
        assert wf["tasks"][0]["retried"] is True

    run(tmp_path, story)


def test_in_progress_callback_redelivers_same_task(tmp_path: Path) -> None:
    async def story(ex: Executor, clock: Clock) -> None:
        await ex.register_workflow_def(ONE)
        wid = await ex.start_workflow({"name": "one"})
        t = await poll_one(ex, "job")
        assert t is not None
        await ex.update_task(result(t, "IN_PROGRESS", callbackAfterSeconds=10, outputData={"progress": 50}))
        got = await task_json(ex, t["taskId"])
        assert got["status"] == "SCHEDULED" and got["callbackAfterSeconds"] == 10
        assert await poll_one(ex, "job") is None
        clock.advance(10)
        again = await poll_one(ex, "job")
        assert again is not None and again["taskId"] == t["taskId"] and again["pollCount"] == 2
        assert again["outputData"] == {"progress": 50}
        await ex.update_task(result(again, "COMPLETED", outputData={"progress": 100}))
        assert (await workflow_json(ex, wid))["status"] == "COMPLETED"

    run(tmp_path, story)


def test_response_timeout_and_lease_extension(tmp_path: Path) -> None:
    async def story(ex: Executor, clock: Clock) -> None:
        await ex.register_task_defs(
            [{"name": "job", "retryCount": 1, "retryDelaySeconds": 0, "responseTimeoutSeconds": 10}]
        )
        await ex.register_workflow_def(ONE)
        wid = await ex.start_workflow({"name": "one"})
        t = await poll_one(ex, "job")
        assert t is not None
        # heartbeats keep the task alive past its response timeout, and never re-queue it
        for _ in range(3):
            clock.advance(8)
            await ex.update_task(result(t, "IN_PROGRESS", extendLease=True))
            ex.run_timers()
            assert (await task_json(ex, t["taskId"]))["status"] == "IN_PROGRESS"
            assert ex.queue_size("job") == 0
        # silence: the task times out and is retried as a new attempt
        clock.advance(10)
        ex.run_timers()
        old = await task_json(ex, t["taskId"])
        assert old["status"] == "TIMED_OUT" and "responseTimeout: 10 exceeded" in old["reasonForIncompletion"]
        retry = await poll_one(ex, "job")
        assert retry is not None and retry["retryCount"] == 1
        # the second attempt also goes silent: no retries left, the workflow ends TIMED_OUT
        clock.advance(11)
        ex.run_timers()
        wf = await workflow_json(ex, wid)
        assert wf["status"] == "TIMED_OUT"

    run(tmp_path, story)


def test_task_timeout_time_out_wf(tmp_path: Path) -> None:
    async def story(ex: Executor, clock: Clock) -> None:
        await ex.register_task_defs(
            [{"name": "job", "timeoutSeconds": 60, "responseTimeoutSeconds": 60, "timeoutPolicy": "TIME_OUT_WF"}]
        )
        await ex.register_workflow_def(ONE)
        wid = await ex.start_workflow({"name": "one"})
        t = await poll_one(ex, "job")
        assert t is not None
        clock.advance(30)
        await ex.update_task(result(t, "IN_PROGRESS", extendLease=True))
        clock.advance(30)
        ex.run_timers()
        wf = await workflow_json(ex, wid)
        assert wf["status"] == "TIMED_OUT" and wf["tasks"][0]["status"] == "TIMED_OUT"

    run(tmp_path, story)


def test_workflow_timeout(tmp_path: Path) -> None:
    async def story(ex: Executor, clock: Clock) -> None:
        await ex.register_workflow_def({**ONE, "timeoutSeconds": 5, "timeoutPolicy": "TIME_OUT_WF"})
        wid = await ex.start_workflow({"name": "one"})
        clock.advance(5)
        ex.run_timers()
        wf = await workflow_json(ex, wid)
        assert wf["status"] == "TIMED_OUT" and wf["tasks"][0]["status"] == "CANCELED"
        assert ex.queue_size("job") == 0

    run(tmp_path, story)


def test_start_delay_and_priority(tmp_path: Path) -> None:
    async def story(ex: Executor, clock: Clock) -> None:
        await ex.register_workflow_def(
            {"name": "delayed", "tasks": [{"name": "job", "taskReferenceName": "job", "startDelay": 3}]}
        )
        await ex.register_workflow_def(ONE)
        slow = await ex.start_workflow({"name": "delayed"})
        low = await ex.start_workflow({"name": "one", "priority": 1})
        high = await ex.start_workflow({"name": "one", "priority": 50})
        first = await poll_one(ex, "job")
        second = await poll_one(ex, "job")
        assert first is not None and second is not None
        assert [first["workflowInstanceId"], second["workflowInstanceId"]] == [high, low]
        assert await poll_one(ex, "job") is None
        clock.advance(3)
        third = await poll_one(ex, "job")
        assert third is not None and third["workflowInstanceId"] == slow

    run(tmp_path, story)


def test_noop_and_set_variable_run_inside_the_engine(tmp_path: Path) -> None:
    async def story(ex: Executor, clock: Clock) -> None:
        await ex.register_workflow_def(
            {
                "name": "vars",
                "variables": {"keep": 1},
                "tasks": [
                    {"name": "n", "taskReferenceName": "n", "type": "NOOP"},
                    {"name": "s", "taskReferenceName": "s", "type": "SET_VARIABLE",
                     "inputParameters": {"who": "${workflow.input.who}"}},
                    {"name": "job", "taskReferenceName": "job", "inputParameters": {"v": "${workflow.variables.who}"}},
                ],
                "outputParameters": {"vars": "${workflow.variables}"},
            }
        )
        wid = await ex.start_workflow({"name": "vars", "input": {"who": "ada"}})
        wf = await workflow_json(ex, wid)
        assert [(t["taskType"], t["status"]) for t in wf["tasks"]] == [
            ("NOOP", "COMPLETED"),
            ("SET_VARIABLE", "COMPLETED"),
            ("job", "SCHEDULED"),
        ]
        assert wf["variables"] == {"keep": 1, "who": "ada"}
        t = await poll_one(ex, "job")
        assert t is not None and t["inputData"] == {"v": "ada"}
        await ex.update_task(result(t, "COMPLETED"))
        wf = await workflow_json(ex, wid)
        assert wf["status"] == "COMPLETED" and wf["output"] == {"vars": {"keep": 1, "who": "ada"}}

    run(tmp_path, story)


def test_update_of_terminal_task_is_ignored_and_unknown_ids_404(tmp_path: Path) -> None:
    async def story(ex: Executor, clock: Clock) -> None:
        await ex.register_workflow_def(ONE)
        wid = await ex.start_workflow({"name": "one"})
        t = await poll_one(ex, "job")
        assert t is not None
        await ex.update_task(result(t, "COMPLETED", outputData={"a": 1}))
        await ex.update_task(result(t, "FAILED", outputData={"a": 2}))
        assert (await task_json(ex, t["taskId"]))["outputData"] == {"a": 1}
        with pytest.raises(NotFound, match="nope"):
            await ex.update_task({"workflowInstanceId": wid, "taskId": "nope", "status": "COMPLETED"})
        with pytest.raises(InvalidInput):
            await ex.update_task({"taskId": t["taskId"], "status": "COMPLETED"})
        with pytest.raises(Conflict):
            await ex.terminate_workflow(wid)
        with pytest.raises(NotFound, match="missing-id"):
            await workflow_json(ex, "missing-id")

    run(tmp_path, story)


def test_recovery_rebuilds_queue_and_timers(tmp_path: Path) -> None:
    clock = Clock()

    async def first() -> tuple[str, str]:
        ex = Executor(DuckDBStore(tmp_path / "r.duckdb"), clock=clock)
        await ex.start()
        await ex.register_task_defs([{"name": "job", "retryCount": 1, "retryDelaySeconds": 0,
                                      "responseTimeoutSeconds": 10}])
        await ex.register_workflow_def({"name": "two", "tasks": [
            {"name": "job", "taskReferenceName": "a"}, {"name": "job", "taskReferenceName": "b"}]})
        w1 = await ex.start_workflow({"name": "two"})
        w2 = await ex.start_workflow({"name": "two"})
        t = await poll_one(ex, "job")  # w1's task: IN_PROGRESS, then the process "dies"
        assert t is not None and t["workflowInstanceId"] == w1
        await ex.committer.flush()
        ex.store.close()  # no executor.close(): nothing else is flushed
        return w1, w2

    async def second(w1: str, w2: str) -> None:
        ex = Executor(DuckDBStore(tmp_path / "r.duckdb"), clock=clock)
        await ex.start()
        assert ex.queue_size("job") == 1  # w2's scheduled task is back in its queue
        clock.advance(10)
        ex.run_timers()  # w1's in-progress task missed its response timeout: retried
        assert ex.queue_size("job") == 2
        wf1 = await workflow_json(ex, w1)
        assert [t["status"] for t in wf1["tasks"]] == ["TIMED_OUT", "SCHEDULED"]
        await ex.close()

    w1, w2 = asyncio.run(first())
    asyncio.run(second(w1, w2))
