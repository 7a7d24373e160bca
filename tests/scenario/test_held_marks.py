"""A poll's IN_PROGRESS mark is held for the task's next change (``GroupCommitter.deferred``).

The executor runs on a real DuckDB file whose ``commit`` also records each batch's task rows
and transitions, so a test sees what reached the commit log and in which batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from conductor_lab.engine.commit import MARK_HOLD_SECONDS
from conductor_lab.engine.executor import Executor
from conductor_lab.engine.store.base import Batch
from conductor_lab.engine.store.duckdb import DuckDBStore

TWO = {
    "name": "two",
    "tasks": [
        {"name": "job_a", "taskReferenceName": "a"},
        {"name": "job_b", "taskReferenceName": "b"},
    ],
}


class RecordingStore(DuckDBStore):
    """Records, per commit, the (task id, status) of its task rows and of its task transitions."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.rows: list[list[tuple[str, str]]] = []
        self.transitions: list[list[tuple[str, str]]] = []

    def commit(self, batch: Batch) -> None:
        super().commit(batch)
        self.rows.append([(r.task_id, r.status) for r in batch.tasks])
        self.transitions.append([(r.task_id, r.status) for r in batch.transitions if r.task_id is not None])

    def task_rows(self, task_id: str) -> list[str]:
        return [status for rows in self.rows for tid, status in rows if tid == task_id]

    def task_transitions(self, task_id: str) -> list[str]:
        return [status for rows in self.transitions for tid, status in rows if tid == task_id]


def run(tmp_path: Path, story: Callable[[Executor, RecordingStore], Awaitable[None]]) -> RecordingStore:
    store = RecordingStore(tmp_path / "c.duckdb")

    async def main() -> None:
        ex = Executor(store)
        await ex.start()
        try:
            await ex.register_task_defs([{"name": "job_a"}, {"name": "job_b"}])
            await ex.register_workflow_def(TWO)
            await story(ex, store)
        finally:
            await ex.close()

    asyncio.run(main())
    return store


async def poll(ex: Executor, task_type: str) -> dict[str, Any]:
    got = await ex.poll(task_type, worker_id="w", count=1, timeout_ms=0)
    assert got, f"no {task_type} task"
    return got[0].to_json()


def completed(t: dict[str, Any]) -> dict[str, Any]:
    return {"workflowInstanceId": t["workflowInstanceId"], "taskId": t["taskId"], "status": "COMPLETED"}


def test_a_task_updated_within_the_hold_is_written_once_for_poll_and_update(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    async def story(ex: Executor, store: RecordingStore) -> None:
        await ex.start_workflow({"name": "two"})
        t = await poll(ex, "job_a")
        seen["a"] = t["taskId"]
        await ex.update_task(completed(t))
        # the update's commit carried the task once, and the poll's transition before its own
        assert store.task_rows(t["taskId"]) == ["SCHEDULED", "COMPLETED"]
        assert store.task_transitions(t["taskId"]) == ["SCHEDULED", "IN_PROGRESS", "COMPLETED"]

    store = run(tmp_path, story)
    assert store.task_rows(seen["a"]) == ["SCHEDULED", "COMPLETED"]  # nothing more at close


def test_a_held_mark_not_replaced_is_committed_after_the_hold(tmp_path: Path) -> None:
    async def story(ex: Executor, store: RecordingStore) -> None:
        loop = asyncio.get_running_loop()
        await ex.start_workflow({"name": "two"})
        t = await poll(ex, "job_a")
        polled = loop.time()
        while store.task_rows(t["taskId"]) != ["SCHEDULED", "IN_PROGRESS"]:
            assert loop.time() - polled < 10, "the held mark was never committed"
            await asyncio.sleep(0.01)
        assert loop.time() - polled >= MARK_HOLD_SECONDS * 0.9  # held, not committed with the poll
        assert store.task_transitions(t["taskId"]) == ["SCHEDULED", "IN_PROGRESS"]
        await ex.update_task(completed(t))
        assert store.task_rows(t["taskId"]) == ["SCHEDULED", "IN_PROGRESS", "COMPLETED"]

    run(tmp_path, story)


def test_an_unrelated_commit_does_not_carry_a_held_mark(tmp_path: Path) -> None:
    async def story(ex: Executor, store: RecordingStore) -> None:
        await ex.start_workflow({"name": "two"})
        t = await poll(ex, "job_a")
        await ex.start_workflow({"name": "two"})  # a commit of its own, while the mark is held
        assert store.task_rows(t["taskId"]) == ["SCHEDULED"]
        assert store.task_transitions(t["taskId"]) == ["SCHEDULED"]

    run(tmp_path, story)


def test_a_search_sees_a_held_mark_at_once(tmp_path: Path) -> None:
    async def story(ex: Executor, store: RecordingStore) -> None:
        await ex.start_workflow({"name": "two"})
        t = await poll(ex, "job_a")
        total, found = await ex.search_tasks(query="status IN (IN_PROGRESS)")
        assert total == 1 and found[0].taskId == t["taskId"]
        assert store.task_rows(t["taskId"]) == ["SCHEDULED", "IN_PROGRESS"]

    run(tmp_path, story)


def test_close_commits_held_marks(tmp_path: Path) -> None:
    seen: dict[str, str] = {}

    async def story(ex: Executor, store: RecordingStore) -> None:
        await ex.start_workflow({"name": "two"})
        seen["a"] = (await poll(ex, "job_a"))["taskId"]

    store = run(tmp_path, story)
    assert store.task_rows(seen["a"]) == ["SCHEDULED", "IN_PROGRESS"]
    reopened = DuckDBStore(tmp_path / "c.duckdb")
    try:
        text = reopened.get_task(seen["a"])
        assert text is not None and orjson.loads(text)["status"] == "IN_PROGRESS"
    finally:
        reopened.close()


def test_removing_a_workflow_leaves_no_row_of_its_held_task(tmp_path: Path) -> None:
    seen: dict[str, str] = {}

    async def story(ex: Executor, store: RecordingStore) -> None:
        wid = await ex.start_workflow({"name": "two"})
        seen["wid"] = wid
        seen["a"] = (await poll(ex, "job_a"))["taskId"]
        await ex.remove_workflow(wid, archive=False)

    run(tmp_path, story)
    reopened = DuckDBStore(tmp_path / "c.duckdb")
    try:
        assert reopened.get_workflow(seen["wid"]) is None
        assert reopened.get_task(seen["a"]) is None
    finally:
        reopened.close()
