"""Retention to Parquet (``engine/store/archive.py``) on a real DuckDB file and an injected clock.

Archived runs leave the tables, stay in the SQL views, search, ``get_workflow``/``get_tasks``;
what is not due, still running, or the child of a running parent stays; a finished workflow that
is due is read-only (409) whether archived yet or not; orphan files of a crashed batch go at open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from conductor_lab.engine.executor import Executor
from conductor_lab.engine.store.archive import (
    ArchivePolicy,
    BatchAbandoned,
    archive_dir,
    store_crash_points,
)
from conductor_lab.engine.store.base import Batch, TransitionRow, WorkflowRow
from conductor_lab.engine.store.duckdb import DuckDBStore
from conductor_lab.engine.store.journal import CRASH_ENV
from conductor_lab.errors import Conflict, NotFound

T0 = 1_800_000_000_000  # 2027-01-15
DAY = 86_400_000

ONE = {"name": "one", "tasks": [{"name": "job", "taskReferenceName": "job"}]}
PARENT = {
    "name": "parent",
    "tasks": [
        {"name": "child", "taskReferenceName": "sub", "type": "SUB_WORKFLOW", "subWorkflowParam": {"name": "one"}},
        {"name": "job", "taskReferenceName": "after"},
    ],
}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now

    def advance_days(self, days: float) -> None:
        self.now += int(days * DAY)


Story = Callable[[Executor, Clock, DuckDBStore], Awaitable[None]]


def run(db: Path, story: Story, *, batch: int = 2000, after_days: float | None = 1.0) -> None:
    async def main() -> None:
        clock = Clock()
        store = DuckDBStore(db)
        # the background round runs at start (nothing due then) and not again during the test
        ex = Executor(store, clock=clock, archive_after_days=after_days, archive_interval_s=3600, archive_batch=batch)
        await ex.start()
        try:
            await story(ex, clock, store)
        finally:
            await ex.close()

    asyncio.run(main())


async def complete_one(ex: Executor, *, log: str | None = None) -> str:
    """Start ``one`` and complete its task (with a log line); the workflow id."""
    wid = await ex.start_workflow({"name": "one", "input": {"k": wid_counter()}})
    got = await ex.poll("job", worker_id="w", count=1, timeout_ms=0)
    assert got, "nothing to poll"
    t = got[0]
    logs = [{"log": log, "createdTime": ex.clock()}] if log else []
    await ex.update_task(
        {"workflowInstanceId": wid, "taskId": t.taskId, "status": "COMPLETED", "outputData": {"ok": 1}, "logs": logs}
    )
    assert (await ex.get_workflow(wid)).status.value == "COMPLETED"
    return wid


_n = 0


def wid_counter() -> int:
    global _n
    _n += 1
    return _n


def sql(store: DuckDBStore, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    cur = store.cursor()
    try:
        return cur.execute(query, params).fetchall()
    finally:
        cur.close()


def table_ids(store: DuckDBStore) -> set[str]:
    return {r[0] for r in sql(store, "SELECT workflow_id FROM cl_workflows")}


def archived_ids(store: DuckDBStore) -> set[str]:
    return {r[0] for r in sql(store, "SELECT workflow_id FROM cl_archive_workflows")}


def test_archived_runs_leave_the_tables_and_stay_findable(tmp_path: Path) -> None:
    db = tmp_path / "a.duckdb"
    done: list[str] = []

    async def story(ex: Executor, clock: Clock, store: DuckDBStore) -> None:
        await ex.register_workflow_def(ONE)
        for i in range(5):
            done.append(await complete_one(ex, log=f"line {i}"))
            clock.now += 1  # distinct start times: the searches below sort by startTime
        clock.advance_days(2)
        recent = await complete_one(ex)  # ended now: not due
        running = await ex.start_workflow({"name": "one"})
        assert await ex.archive_now() == 5

        assert table_ids(store) == {running, recent}
        assert archived_ids(store) == set(done)
        stats = store.stats()
        assert stats["archive"]["workflows"] == 5 and stats["archive"]["batches"] == 1
        assert stats["archive"]["files"] == 4 and stats["archive"]["bytes"] > 0
        assert stats["rows"]["cl_tasks"] == 2 and stats["rows"]["cl_task_logs"] == 0
        day = "2027-01-15"
        files = sorted(p.relative_to(archive_dir(db)).as_posix() for p in store.archive_files())
        assert files == sorted(f"{t}/day={day}/b000001.parquet" for t in ("workflows", "tasks", "transitions", "task_logs"))

        # the SQL surface reads tables + archive: each workflow once, its tasks, transitions, logs
        rows = sql(store, "SELECT workflow_id, count(*) FROM workflows GROUP BY ALL")
        assert {r[0] for r in rows} == {*done, running, recent} and all(r[1] == 1 for r in rows)
        tasks = dict(sql(store, "SELECT workflow_id, count(*) FROM tasks GROUP BY ALL"))
        assert all(tasks[w] == 1 for w in done)
        logs = sql(store, "SELECT workflow_id, log FROM task_logs ORDER BY log")
        assert logs == [(w, f"line {i}") for i, w in enumerate(done)]
        moves = dict(sql(store, "SELECT workflow_id, count(*) FROM transitions GROUP BY ALL"))
        assert all(moves[w] >= 3 for w in done)  # workflow RUNNING/COMPLETED + the task's
        assert sql(store, "SELECT count(*) FROM transitions WHERE workflow_id = ? AND n IS NULL", [done[0]]) == [(0,)]

        # search (workflows and tasks), with and without freeText, across both
        total, page = await ex.search_workflows(query="status IN (COMPLETED)", size=3, sort="startTime:ASC")
        assert total == 6 and [w.workflowId for w in page] == done[:3]
        total, page = await ex.search_workflows(query="status IN (COMPLETED)", start=3, size=10, sort="startTime:ASC")
        assert [w.workflowId for w in page] == [*done[3:], recent]
        wanted = orjson.loads(store.get_workflow(done[2]).json)["input"]["k"]  # type: ignore[union-attr]
        total, page = await ex.search_workflows(free_text=f'"k":{wanted}}}')
        assert total == 1 and [w.workflowId for w in page] == [done[2]]
        total, tpage = await ex.search_tasks(query="status IN (COMPLETED)", size=100)
        assert total == 6 and len(tpage) == 6
        total, page = await ex.search_workflows_by_tasks(query="status IN (COMPLETED)", size=100)
        assert {w.workflowId for w in page} == {*done, recent}

        # the store answers reads of archived runs from the archive
        got = store.get_workflow(done[0])
        assert got is not None and orjson.loads(got.json)["status"] == "COMPLETED"
        tasks_json = store.get_tasks(done[0])
        assert len(tasks_json) == 1
        task_id = orjson.loads(tasks_json[0])["taskId"]
        assert store.get_task(task_id) == tasks_json[0]
        assert [r.log for r in store.get_task_logs(task_id)] == ["line 0"]
        assert store.archived_ids([done[0], running, "nope"]) == {done[0]}

    run(db, story)

    # a new engine (nothing in memory) answers GET of archived runs from the archive
    async def again(ex: Executor, clock: Clock, store: DuckDBStore) -> None:
        assert done[1] not in ex.workflows
        wf = await ex.get_workflow(done[1])
        assert wf.status.value == "COMPLETED" and len(wf.tasks) == 1
        n, tasks = await ex.get_workflow_tasks(done[1])
        assert n == 1 and tasks[0].status.value == "COMPLETED"
        with pytest.raises(NotFound):
            await ex.get_workflow("no-such-workflow")

    run(db, again, after_days=None)


def test_verbs_refuse_archived_and_due_workflows(tmp_path: Path) -> None:
    async def story(ex: Executor, clock: Clock, store: DuckDBStore) -> None:
        await ex.register_workflow_def(ONE)
        archived = await complete_one(ex)
        clock.advance_days(0.5)
        due = await complete_one(ex)
        clock.advance_days(0.5)
        fresh = await complete_one(ex)
        clock.advance_days(0.6)  # archived and due ended more than a day ago, fresh did not
        assert await ex.archive_now() == 2
        assert archived_ids(store) == {archived, due}
        # a copy held in memory stays there: it can no longer change
        assert archived in ex.workflows
        for wid in (archived, due):
            for verb in (ex.retry_workflow, ex.restart_workflow, ex.remove_workflow):
                with pytest.raises(Conflict, match="is archived .*read-only"):
                    await verb(wid)
            with pytest.raises(Conflict, match="is archived .*read-only"):
                await ex.rerun_workflow(wid, {})
        ok, errors = await ex.bulk("restart", [archived, fresh])
        assert ok == [fresh] and "is archived" in errors[archived]
        rows = sql(store, "SELECT workflow_id, status, count(*) FROM workflows GROUP BY ALL")
        assert {r[0]: r[1] for r in rows}[archived] == "COMPLETED" and all(r[2] == 1 for r in rows)

    run(tmp_path / "v.duckdb", story)


def test_due_but_not_yet_archived_is_read_only_and_archiving_off_keeps_archived_read_only(tmp_path: Path) -> None:
    db = tmp_path / "d.duckdb"
    ids: list[str] = []

    async def story(ex: Executor, clock: Clock, store: DuckDBStore) -> None:
        await ex.register_workflow_def(ONE)
        ids.append(await complete_one(ex))
        ids.append(await complete_one(ex))
        clock.advance_days(3)
        with pytest.raises(Conflict, match="ended more than 1 days ago"):  # not moved yet, but due
            await ex.retry_workflow(ids[0])
        assert store.stats()["archive"]["workflows"] == 0
        assert await ex.archive_now() == 2

    run(db, story)

    async def off(ex: Executor, clock: Clock, store: DuckDBStore) -> None:
        assert ex.archive_policy is None and ex.archiver is None
        with pytest.raises(Conflict, match=r"moved to Parquet"):
            await ex.restart_workflow(ids[1])
        assert table_ids(store) == set()

    run(db, off, after_days=None)


def test_running_not_due_and_children_of_running_parents_stay(tmp_path: Path) -> None:
    async def story(ex: Executor, clock: Clock, store: DuckDBStore) -> None:
        await ex.register_workflow_def(ONE)
        await ex.register_workflow_def(PARENT)
        parent = await ex.start_workflow({"name": "parent"})
        got = await ex.poll("job", worker_id="w", count=1, timeout_ms=0)  # the child's task
        assert got
        child = got[0].workflowInstanceId
        assert child != parent
        await ex.update_task(
            {"workflowInstanceId": child, "taskId": got[0].taskId, "status": "COMPLETED", "outputData": {}}
        )
        assert (await ex.get_workflow(child)).status.value == "COMPLETED"
        assert (await ex.get_workflow(parent)).status.value == "RUNNING"  # waits on "after"
        clock.advance_days(5)
        assert await ex.archive_now() == 0  # the child's parent runs: the child stays
        assert table_ids(store) == {parent, child}

        after = await ex.poll("job", worker_id="w", count=1, timeout_ms=0)
        assert after and after[0].workflowInstanceId == parent
        await ex.update_task(
            {"workflowInstanceId": parent, "taskId": after[0].taskId, "status": "COMPLETED", "outputData": {}}
        )
        # the parent ended now (not due); its child, ended 5 days ago, goes now its parent is done
        assert await ex.archive_now() == 1
        assert archived_ids(store) == {child} and table_ids(store) == {parent}
        clock.advance_days(2)
        assert await ex.archive_now() == 1
        assert archived_ids(store) == {parent, child} and table_ids(store) == set()

    run(tmp_path / "p.duckdb", story)


def test_batches_hold_one_day_and_at_most_the_batch_size(tmp_path: Path) -> None:
    async def story(ex: Executor, clock: Clock, store: DuckDBStore) -> None:
        await ex.register_workflow_def(ONE)
        for _ in range(3):
            await complete_one(ex)
        clock.advance_days(1)
        for _ in range(2):
            await complete_one(ex)
        clock.advance_days(2)
        assert await ex.archive_now() == 5
        batches = sql(store, "SELECT batch_id, day, workflows FROM cl_archive_batches ORDER BY batch_id")
        assert batches == [(1, "2027-01-15", 2), (2, "2027-01-15", 1), (3, "2027-01-16", 2)]
        assert store.stats()["archive"] == {
            "workflows": 5,
            "files": 12,
            "bytes": sum(p.stat().st_size for p in store.archive_files()),
            "batches": 3,
        }
        assert sql(store, "SELECT count(*) FROM workflows") == [(5,)]

    run(tmp_path / "b.duckdb", story, batch=2)


def test_orphan_files_of_an_unfinished_batch_are_deleted_at_open(tmp_path: Path) -> None:
    db = tmp_path / "o.duckdb"

    async def story(ex: Executor, clock: Clock, store: DuckDBStore) -> None:
        await ex.register_workflow_def(ONE)
        await complete_one(ex)
        clock.advance_days(2)
        assert await ex.archive_now() == 1

    run(db, story)
    root = archive_dir(db)
    committed = sorted(p for p in root.rglob("*") if p.is_file())
    assert len(committed) == 4
    orphans = [
        root / "workflows" / "day=2027-01-16" / "b000002.parquet",
        root / "tasks" / "day=2027-01-15" / ".b000002.parquet.tmp",
    ]
    for p in orphans:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"not parquet")
    with DuckDBStore(db) as store:
        assert sorted(p for p in root.rglob("*") if p.is_file()) == committed
        assert sql(store, "SELECT count(*) FROM workflows") == [(1,)]
        assert store.stats()["archive"]["batches"] == 1


def _row(wid: str, end: int) -> WorkflowRow:
    doc = orjson.dumps({"workflowId": wid, "status": "COMPLETED", "endTime": end}).decode()
    return WorkflowRow(wid, "one", 1, "COMPLETED", None, None, 0, end - 10, end, end, "s1", doc)


def test_a_batch_whose_workflows_are_in_an_unfolded_commit_is_abandoned(tmp_path: Path) -> None:
    db = tmp_path / "u.duckdb"
    with DuckDBStore(db) as store:
        store.commit(Batch(workflows=[_row("w1", T0), _row("w2", T0)], snapshots=[("s1", "{}")]))
        store.materialize()
        # commit, then make the fold lock unavailable to the fold store.archive_batch runs first:
        # the belt sees w2 in a commit the tables do not have yet
        # a commit that names w2 and is not folded yet (no fold runs here: the batch is run
        # without archive_batch's fold first): ArchivePolicy makes this impossible in the engine
        store.commit(Batch(transitions=[TransitionRow(T0 + 5, "w2", None, None, None, "COMPLETED", None)]))
        archive = store._archive
        with pytest.raises(BatchAbandoned, match="w2"):
            archive.run_batch(T0 + DAY, 10)
        assert not [p for p in archive_dir(db).rglob("*") if p.is_file()]  # its files went again
        assert table_ids(store) == {"w1", "w2"}  # (this read folds the commit)
        assert store.archive_batch(T0 + DAY, 10) == 2
        assert table_ids(store) == set() and archived_ids(store) == {"w1", "w2"}
        assert sql(store, "SELECT count(*) FROM transitions WHERE workflow_id = 'w2'") == [(1,)]


def _wf(wid: str, end: int, *, status: str = "COMPLETED", parent: str | None = None, note: str = "") -> WorkflowRow:
    doc = orjson.dumps({"workflowId": wid, "status": status, "endTime": end, "note": note}).decode()
    return WorkflowRow(wid, "one", 1, status, None, parent, 0, end - 10, end, end, "s1", doc)


def test_a_row_changed_after_its_files_were_written_abandons_the_batch(tmp_path: Path) -> None:
    """The files are written from a snapshot before the fold lock is taken: under the lock each
    table's rows must still have the snapshot's fingerprint, else nothing is deleted; the staged
    files are invisible to the views meanwhile."""
    db = tmp_path / "f.duckdb"
    with DuckDBStore(db) as store:
        store.commit(Batch(workflows=[_wf("w1", T0), _wf("w2", T0)], snapshots=[("s1", "{}")]))
        store.materialize()
        archive = store._archive
        staged: list[Path] = []
        cur = store._con.cursor()
        try:
            prepared = archive._prepare(cur, T0 + DAY, 10, staged)
            assert prepared is not None and prepared.ids == ["w1", "w2"]
            assert len(staged) == 4 and all(p.is_file() and p.name.endswith(".tmp") for p in staged)
            assert sql(store, "SELECT count(*) FROM workflows") == [(2,)]  # staged files are not in the views
            # a change folded after the snapshot (ArchivePolicy forbids it; the fingerprint catches it)
            store.commit(Batch(workflows=[_wf("w2", T0, note="changed")]))
            store.materialize()
            with store._mlock, pytest.raises(BatchAbandoned, match="workflows rows"):
                archive._publish(cur, prepared, staged)
        finally:
            cur.close()
        for p in staged:
            p.unlink()
        assert table_ids(store) == {"w1", "w2"} and store.stats()["archive"]["batches"] == 0
        # the next batch writes the rows as they are now
        assert store.archive_batch(T0 + DAY, 10) == 2
        got = store.get_workflow("w2")
        assert got is not None and orjson.loads(got.json)["note"] == "changed"
        assert table_ids(store) == set() and archived_ids(store) == {"w1", "w2"}


def test_a_parent_running_again_after_the_candidates_were_picked_keeps_its_child(tmp_path: Path) -> None:
    """Candidates come from one scan per round; each batch re-checks its workflows' parents and
    children under the lock."""
    db = tmp_path / "r.duckdb"
    with DuckDBStore(db) as store:
        rows = [_wf("p1", T0 + 10), _wf("w1", T0, parent="p1"), _wf("w2", T0 + 1)]
        store.commit(Batch(workflows=rows, snapshots=[("s1", "{}")]))
        assert store.archive_batch(T0 + DAY, 1) == 1  # w1; the round's list also holds w2 and p1
        assert archived_ids(store) == {"w1"}
        store.commit(Batch(workflows=[_wf("c1", 0, status="RUNNING", parent="w2")]))
        with pytest.raises(BatchAbandoned, match="running parent or child"):
            store.archive_batch(T0 + DAY, 1)  # w2 now has a running child
        assert not [p for p in archive_dir(db).rglob("*.tmp")]
        assert store.archive_batch(T0 + DAY, 10) == 1  # a new scan: p1 only
        assert table_ids(store) == {"w2", "c1"} and archived_ids(store) == {"w1", "p1"}


def test_a_committed_batch_still_staged_is_renamed_at_open(tmp_path: Path) -> None:
    """A kill -9 between a batch's COMMIT and the rename of its files: open renames them."""
    db = tmp_path / "s.duckdb"
    with DuckDBStore(db) as store:
        store.commit(Batch(workflows=[_wf("w1", T0), _wf("w2", T0 + DAY)], snapshots=[("s1", "{}")]))
        assert store.archive_batch(T0 + 3 * DAY, 1) == 1
        assert store.archive_batch(T0 + 3 * DAY, 1) == 1
        second = [p for p in store.archive_files() if "b000002" in p.name]
    assert len(second) == 4
    for p in second:
        p.rename(p.with_name(f".{p.name}.tmp"))
    with DuckDBStore(db) as store:
        assert all(p.is_file() for p in second) and not list(archive_dir(db).rglob("*.tmp"))
        assert sql(store, "SELECT workflow_id FROM workflows ORDER BY 1") == [("w1",), ("w2",)]
        got = store.get_workflow("w2")  # from the batch's id range, read at open
        assert got is not None and orjson.loads(got.json)["workflowId"] == "w2"
        assert store.get_workflow("w3") is None


def test_policy_and_crash_point_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    p = ArchivePolicy.of_days(1.5)
    assert p.after_ms == 129_600_000 and p.days == 1.5
    assert p.due(T0, T0 + p.after_ms + 1) and not p.due(T0, T0 + p.after_ms) and not p.due(0, T0 * 2)
    p.horizon = T0 + 2 * DAY  # the archiver's clock: verbs never compare against less
    assert p.due(T0, T0)
    with pytest.raises(ValueError):
        ArchivePolicy.of_days(-1)
    with pytest.raises(ValueError):
        ArchivePolicy.of_days(float("nan"))
    monkeypatch.setenv(CRASH_ENV, "archive-before-commit:2")
    journal, archive = store_crash_points()
    assert journal is None and archive is not None and (archive.point, archive.n) == ("archive-before-commit", 2)
    monkeypatch.setenv(CRASH_ENV, "fold-after-commit:3")
    journal, archive = store_crash_points()
    assert archive is None and journal is not None and journal.point == "fold-after-commit"
    monkeypatch.setenv(CRASH_ENV, "archive-after-write:0")
    with pytest.raises(ValueError):
        store_crash_points()


def test_an_in_memory_store_cannot_archive() -> None:
    async def main() -> None:
        ex = Executor(DuckDBStore(":memory:"), archive_after_days=1)
        with pytest.raises(ValueError, match="cannot archive"):
            await ex.start()
        await ex.close()

    asyncio.run(main())
