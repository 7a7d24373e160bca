"""DuckDBStore against real DuckDB files (under tmp_path)."""

from __future__ import annotations

import enum
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

import conductor_lab.engine.store.duckdb as duckdb_store
from conductor_lab.engine.store.base import (
    Batch,
    EventExecutionRow,
    EventHandlerRow,
    LogRow,
    PollDataRow,
    SearchQuery,
    StoredWorkflow,
    TaskDefRow,
    TaskRow,
    TransitionRow,
    WorkflowDefRow,
    WorkflowRow,
)
from conductor_lab.engine.store.duckdb import SCHEMA_VERSION, DuckDBStore, journal_dir
from conductor_lab.engine.store.journal import parse_segment
from conductor_lab.errors import InvalidInput
from tests.conftest import REPO_ROOT

ROOT = Path(__file__).resolve().parents[2]

TABLES = (
    "cl_workflows",
    "cl_tasks",
    "cl_snapshots",
    "cl_transitions",
    "cl_task_logs",
    "cl_poll_data",
    "cl_task_defs",
    "cl_workflow_defs",
    "cl_event_handlers",
    "cl_event_executions",
)


# ---------------------------------------------------------------------- helpers


def wf(
    wid: str,
    *,
    name: str = "wf",
    version: int = 1,
    status: str = "RUNNING",
    corr: str | None = None,
    parent: str | None = None,
    create: int = 0,
    update: int = 0,
    end: int = 0,
    snap: str = "snap-1",
    payload: str = "",
) -> WorkflowRow:
    js = f'{{"workflowId":"{wid}","status":"{status}","v":"{payload}"}}'
    return WorkflowRow(wid, name, version, status, corr, parent, 0, create, update, end, snap, js)


def task(
    tid: str, wid: str, seq: int, *, status: str = "SCHEDULED", payload: str = "", domain: str | None = None
) -> TaskRow:
    js = f'{{"taskId":"{tid}","seq":{seq},"status":"{status}","v":"{payload}"}}'
    return TaskRow(tid, wid, seq, "SIMPLE", f"ref_{seq}", status, 0, domain, 1, 2, 0, 3, js)


def dump(store: DuckDBStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted: a value to compare before/after."""
    return {t: sorted(store._query(f"SELECT * FROM {t}"), key=repr) for t in TABLES}


def open_store(tmp_path: Path, name: str = "store.duckdb", **kw: Any) -> DuckDBStore:
    return DuckDBStore(tmp_path / name, **kw)


def full_batch() -> Batch:
    return Batch(
        workflows=[wf("w1", corr="c1", create=10), wf("w2", status="COMPLETED", create=20, end=25)],
        tasks=[
            task("t2", "w1", 2),
            task("t1", "w1", 1, domain="d1"),
            task("t3", "w2", 1, status="COMPLETED"),
        ],
        snapshots=[("snap-1", '{"name":"wf","version":1}')],
        transitions=[
            TransitionRow(1, "w1", None, None, None, "RUNNING", None),
            TransitionRow(2, "w1", "t1", "ref_1", "SIMPLE", "SCHEDULED", "because"),
        ],
        logs=[LogRow("t1", 5, "second"), LogRow("t1", 3, "first"), LogRow("t1", 5, "third")],
        poll_data=[PollDataRow("q1", "", "worker-a", 100), PollDataRow("q1", "d1", None, 101)],
        task_defs=[TaskDefRow("b_task", '{"name":"b_task"}'), TaskDefRow("a_task", '{"name":"a_task"}')],
        workflow_defs=[
            WorkflowDefRow("wf", 2, '{"name":"wf","version":2}'),
            WorkflowDefRow("wf", 1, '{"name":"wf","version":1}'),
            WorkflowDefRow("aa", 1, '{"name":"aa","version":1}'),
        ],
        event_handlers=[
            EventHandlerRow("h_b", "conductor:wf:n", True, '{"name":"h_b"}'),
            EventHandlerRow("h_a", "sqs:q", False, '{"name":"h_a"}'),
        ],
        event_executions=[
            EventExecutionRow("m1_0", "m1", "h_b", "conductor:wf:n", 7, "COMPLETED", "start_workflow", "{}"),
            EventExecutionRow("m1_1", "m1", "h_b", "conductor:wf:n", 7, "FAILED", "fail_task", '{"e":1}'),
            EventExecutionRow("m2_0", "m2", "h_a", "sqs:q", 8, "SKIPPED", None, '{"msg":"x"}'),
        ],
    )


# ---------------------------------------------------------------------- schema, round trip


def test_schema_is_created_once_and_reopens(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    s.close()
    s = open_store(tmp_path)  # idempotent
    assert s._query("SELECT value FROM cl_meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    names = {r[0] for r in s._query("SELECT table_name FROM duckdb_tables()")}
    assert set(TABLES) | {"cl_meta"} <= names
    assert s.stats()["rows"] == dict.fromkeys(TABLES, 0)
    s.close()
    s.close()  # idempotent
    with pytest.raises(RuntimeError):
        s.get_task("x")


def test_memory_store(tmp_path: Path) -> None:
    s = DuckDBStore(":memory:")
    s.commit(full_batch())
    assert s.get_workflow("w1") is not None
    assert s.stats()["file_size_bytes"] == 0
    s.close()


def test_round_trip_every_list(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    b = full_batch()
    s.commit(b)

    assert s.load_task_defs() == ['{"name":"a_task"}', '{"name":"b_task"}']
    assert s.load_workflow_defs() == [
        '{"name":"aa","version":1}',
        '{"name":"wf","version":1}',
        '{"name":"wf","version":2}',
    ]
    assert s.load_poll_data() == [PollDataRow("q1", "", "worker-a", 100), PollDataRow("q1", "d1", None, 101)]
    assert s.load_snapshot("snap-1") == '{"name":"wf","version":1}'
    assert s.load_snapshot("nope") is None
    assert s.get_workflow("w1") == StoredWorkflow(b.workflows[0].json, "snap-1")
    assert s.get_workflow("nope") is None
    assert s.get_tasks("w1") == [b.tasks[1].json, b.tasks[0].json]  # ordered by seq
    assert s.get_tasks("nope") == []
    assert s.get_task("t3") == b.tasks[2].json
    assert s.get_task("nope") is None
    assert s.get_task_logs("t1") == [
        LogRow("t1", 3, "first"),
        LogRow("t1", 5, "second"),
        LogRow("t1", 5, "third"),
    ]
    assert s.get_task_logs("nope") == []
    # every column as written, NULLs included
    assert s._query("SELECT * FROM cl_workflows ORDER BY workflow_id") == [tuple(r) for r in b.workflows]
    assert s._query("SELECT * EXCLUDE (task_def_name, workflow_type) FROM cl_tasks ORDER BY task_id") == sorted(
        tuple(r) for r in b.tasks
    )  # the derived search columns: tests/unit/test_search.py
    assert s._query("SELECT * FROM cl_transitions ORDER BY ts") == [tuple(r) for r in b.transitions]
    assert s.load_event_handlers() == ['{"name":"h_a"}', '{"name":"h_b"}']  # by name
    handlers = s._query("SELECT * FROM cl_event_handlers ORDER BY name")
    assert handlers == sorted(tuple(r) for r in b.event_handlers)
    assert s.get_event_executions("h_b") == b.event_executions[:2]  # by handler name
    assert s.get_event_executions("sqs:q") == b.event_executions[2:]  # by event
    assert s.get_event_executions("nope") == []
    st = s.stats()
    assert st["rows"] == {
        "cl_workflows": 2,
        "cl_tasks": 3,
        "cl_snapshots": 1,
        "cl_transitions": 2,
        "cl_task_logs": 3,
        "cl_poll_data": 2,
        "cl_task_defs": 2,
        "cl_workflow_defs": 3,
        "cl_event_handlers": 2,
        "cl_event_executions": 3,
    }
    assert st["file_size_bytes"] > 0
    before = dump(s)
    s.close()

    s = open_store(tmp_path)  # after a clean close
    assert dump(s) == before
    s.close()


def test_empty_batch_is_a_no_op(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    s.commit(Batch())
    assert s.stats()["rows"] == dict.fromkeys(TABLES, 0)
    s.close()


def test_logs_keep_insertion_order_across_batches(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    s.commit(Batch(logs=[LogRow("t", 7, "a"), LogRow("t", 7, "b")]))
    s.checkpoint()
    s.commit(Batch(logs=[LogRow("t", 7, "c"), LogRow("t", 1, "zero"), LogRow("u", 7, "other")]))
    assert [r.log for r in s.get_task_logs("t")] == ["zero", "a", "b", "c"]
    # one fold of many batches keeps commit order too (ties on created_time are read by rowid)
    for i in range(0, 6000, 1000):
        s.commit(Batch(logs=[LogRow("many", 5, str(n)) for n in range(i, i + 1000)]))
    assert [r.log for r in s.get_task_logs("many")] == [str(n) for n in range(6000)]
    s.close()


def test_snapshots_are_insert_if_absent(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    s.commit(Batch(snapshots=[("s1", "first")]))
    s.commit(Batch(snapshots=[("s1", "second"), ("s2", "x"), ("s2", "x")]))
    assert s.load_snapshot("s1") == "first"
    assert s.load_snapshot("s2") == "x"
    assert s.stats()["rows"]["cl_snapshots"] == 2
    s.close()


# ---------------------------------------------------------------------- upserts and deletes


def test_upsert_same_task_50_times_across_50_commits(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    s.commit(Batch(workflows=[wf("w")], tasks=[task("t0", "w", 0)]))
    for i in range(50):
        if i % 10 == 5:
            s.checkpoint()  # also update rows that already live in the main file
        s.commit(
            Batch(
                workflows=[wf("w", update=i, payload=f"w{i}")],
                tasks=[task("t", "w", 1, status="IN_PROGRESS", payload=f"t{i}")],
                poll_data=[PollDataRow("q", "", f"worker-{i}", i)],
                task_defs=[TaskDefRow("td", f'{{"i":{i}}}')],
                workflow_defs=[WorkflowDefRow("wf", 1, f'{{"i":{i}}}')],
            )
        )
        assert s.get_task("t") == task("t", "w", 1, status="IN_PROGRESS", payload=f"t{i}").json
    expected = {
        "cl_workflows": 1,
        "cl_tasks": 2,
        "cl_poll_data": 1,
        "cl_task_defs": 1,
        "cl_workflow_defs": 1,
    }

    def check(st: DuckDBStore) -> None:
        rows = st.stats()["rows"]
        assert {k: rows[k] for k in expected} == expected
        assert st.get_workflow("w") == StoredWorkflow(wf("w", update=49, payload="w49").json, "snap-1")
        assert st.get_tasks("w") == [
            task("t0", "w", 0).json,
            task("t", "w", 1, status="IN_PROGRESS", payload="t49").json,
        ]
        assert st.load_poll_data() == [PollDataRow("q", "", "worker-49", 49)]
        assert st.load_task_defs() == ['{"i":49}']
        assert st.load_workflow_defs() == ['{"i":49}']
        assert st._query("SELECT update_time FROM cl_workflows") == [(49,)]

    check(s)
    s.close()
    s = open_store(tmp_path)
    check(s)
    s.close()


def test_upsert_many_keys_repeatedly(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    n = 500
    for rnd in range(8):
        s.commit(
            Batch(
                workflows=[wf(f"w{i}", update=rnd) for i in range(n)],
                tasks=[task(f"t{i}", f"w{i % 50}", i, payload=str(rnd)) for i in range(n)],
            )
        )
        if rnd == 3:
            s.checkpoint()
    assert s.stats()["rows"]["cl_workflows"] == n
    assert s.stats()["rows"]["cl_tasks"] == n
    assert s._query("SELECT DISTINCT update_time FROM cl_workflows") == [(7,)]
    assert len(s.get_tasks("w7")) == n // 50
    # keys stay unique without a PRIMARY KEY index: every upsert deleted the old row first
    assert s._query("SELECT count(*) FROM (SELECT task_id FROM cl_tasks GROUP BY 1 HAVING count(*) > 1)") == [(0,)]
    assert s._query("SELECT count(DISTINCT workflow_id) FROM cl_workflows") == [(n,)]
    s.close()


def test_deletes(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    s.commit(full_batch())
    s.commit(
        Batch(
            task_def_deletes=["a_task", "missing"],
            workflow_def_deletes=[("wf", 1), ("zz", 9)],
            workflow_deletes=["w1", "missing"],
            event_handler_deletes=["h_a", "missing"],
        )
    )
    assert s.load_task_defs() == ['{"name":"b_task"}']
    assert s.load_event_handlers() == ['{"name":"h_b"}']
    assert len(s.get_event_executions("h_a")) == 1  # executions are history: they stay
    assert s.load_workflow_defs() == ['{"name":"aa","version":1}', '{"name":"wf","version":2}']
    assert s.get_workflow("w1") is None
    assert s.get_tasks("w1") == []
    assert s.get_task_logs("t1") == []
    assert s.get_workflow("w2") is not None and s.get_task("t3") is not None
    assert s.stats()["rows"]["cl_transitions"] == 2  # history stays
    # task deletes (DO_WHILE keepLastN): the tasks and their logs go, in the same fold as an upsert
    s.commit(Batch(tasks=[task("t4", "w2", 4)], logs=[LogRow("t3", 1, "x"), LogRow("t4", 1, "y")]))
    s.commit(Batch(task_deletes=["t3", "missing"]))
    assert s.get_task("t3") is None and s.get_task_logs("t3") == []
    assert s.get_task("t4") is not None and [r.log for r in s.get_task_logs("t4")] == ["y"]
    s.close()


def test_delete_then_upsert_same_key_in_one_batch(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    s.commit(full_batch())
    s.commit(
        Batch(
            task_def_deletes=["a_task"],
            task_defs=[TaskDefRow("a_task", "new")],
            workflow_def_deletes=[("wf", 1)],
            workflow_defs=[WorkflowDefRow("wf", 1, "new-wf")],
            event_handler_deletes=["h_a"],
            event_handlers=[EventHandlerRow("h_a", "sqs:q", True, "new-h")],
        )
    )
    assert s.load_task_defs() == ["new", '{"name":"b_task"}']
    assert s.load_event_handlers() == ["new-h", '{"name":"h_b"}']
    assert "new-wf" in s.load_workflow_defs()
    # upsert of a workflow and its tasks, then delete of that workflow, in one batch
    s.commit(Batch(workflows=[wf("w1", payload="x")], tasks=[task("t9", "w1", 9)], workflow_deletes=["w1"]))
    assert s.get_workflow("w1") is None and s.get_task("t9") is None and s.get_task("t1") is None
    # and it can be created again afterwards
    s.commit(Batch(workflows=[wf("w1", payload="again")], tasks=[task("t1", "w1", 1)]))
    assert s.get_workflow("w1") == StoredWorkflow(wf("w1", payload="again").json, "snap-1")
    s.close()


def test_event_handlers_fold_across_commits_and_survive_reopen(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    s.commit(Batch(event_handlers=[EventHandlerRow("h", "conductor:wf:a", False, "v1")]))
    s.commit(Batch(event_handlers=[EventHandlerRow("h", "conductor:wf:b", True, "v2")]))  # update
    s.commit(Batch(event_handlers=[EventHandlerRow("gone", "e", True, "x")]))
    s.commit(Batch(event_handler_deletes=["gone"]))
    # in one batch: a later upsert wins over an earlier delete of the same name
    s.commit(Batch(event_handler_deletes=["h2"], event_handlers=[EventHandlerRow("h2", "e", True, "again")]))
    assert s.load_event_handlers() == ["v2", "again"]
    assert s._query("SELECT name, event, active FROM cl_event_handlers ORDER BY name") == [
        ("h", "conductor:wf:b", True),
        ("h2", "e", True),
    ]
    s.close()
    s = open_store(tmp_path)
    assert s.load_event_handlers() == ["v2", "again"]
    s.close()


def test_event_executions_append_newest_last_and_limit(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    rows = [
        EventExecutionRow(f"m{i}_0", f"m{i}", "h", "ev", 100 + i // 2, "COMPLETED", "fail_task", f"[{i}]")
        for i in range(10)
    ]
    for i in range(0, 10, 3):  # several commits, several rows per commit, equal timestamps
        s.commit(Batch(event_executions=rows[i : i + 3]))
    s.checkpoint()
    assert s.get_event_executions("h") == rows
    assert s.get_event_executions("ev", limit=4) == rows[6:]  # the newest four, oldest first
    # the same id twice (a redelivery the engine did not filter) is kept: the table is history
    s.commit(Batch(event_executions=[rows[0]._replace(status="FAILED")]))
    assert [r.status for r in s.get_event_executions("h") if r.id == "m0_0"] == ["COMPLETED", "FAILED"]
    s.close()
    s = open_store(tmp_path)
    assert len(s.get_event_executions("h", limit=100)) == 11
    s.close()


def test_legacy_journal_rows_are_folded_at_open(tmp_path: Path) -> None:
    # files of earlier versions committed into cl_journal; a journal written before the event
    # tables existed has no "eh"/"ehd"/"ee" keys
    open_store(tmp_path).close()
    con = duckdb.connect(str(tmp_path / "store.duckdb"))
    con.execute("INSERT INTO cl_journal VALUES (7, ?)", ['{"td":[["old_task","{}"]],"tdd":[],"wfd":[]}'])
    con.execute("INSERT INTO cl_journal VALUES (8, ?)", ['{"td":[["old_task","{\\"v\\":2}"]],"tdd":[],"wfd":[]}'])
    con.close()
    s = open_store(tmp_path)
    assert s.load_task_defs() == ['{"v":2}']  # the later row wins
    assert s.load_event_handlers() == [] and s.get_event_executions("x") == []
    assert s._query("SELECT count(*) FROM cl_journal") == [(0,)]
    assert folded_seq(s) == 8
    s.commit(Batch(task_defs=[TaskDefRow("new_task", "{}")]))
    assert s._seq == 9  # seq goes on after the legacy rows
    s.close()
    s = open_store(tmp_path)
    assert s.load_task_defs() == ["{}", '{"v":2}'] and folded_seq(s) == 9
    s.close()


# ---------------------------------------------------------------------- the commit log


def folded_seq(s: DuckDBStore) -> int:
    return int(s._query("SELECT value FROM cl_meta WHERE key = 'journal_folded_seq'")[0][0])


def segments(tmp_path: Path, name: str = "store.duckdb") -> list[Path]:
    d = journal_dir(tmp_path / name)
    return sorted(p for p in d.iterdir() if p.suffix == ".log") if d.exists() else []


def logged(tmp_path: Path) -> list[int]:
    """The seqs of every record in the log files (read without the store)."""
    seqs: list[int] = []
    for p in segments(tmp_path):
        records, end = parse_segment(p.read_bytes(), str(p), tail_allowed=False)
        assert end == p.stat().st_size
        seqs += [seq for seq, _ in records]
    return seqs


def test_commits_go_to_the_log_and_folds_delete_its_segments(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    for i in range(5):
        s.commit(Batch(workflows=[wf(f"w{i}")]))
    assert logged(tmp_path) == [1, 2, 3, 4, 5]
    assert s._query("SELECT count(*) FROM cl_journal") == [(0,)]  # a read folds first
    assert logged(tmp_path) == []  # the folded segment is gone
    # the current one and a spare, preallocated: no frames
    assert [parse_segment(p.read_bytes(), str(p), tail_allowed=False)[0] for p in segments(tmp_path)] == [[], []]
    assert folded_seq(s) == 5
    s.commit(Batch(workflows=[wf("w5")]))
    s.commit(Batch(workflows=[wf("w6")]))
    assert logged(tmp_path) == [6, 7]
    s.close()
    assert not journal_dir(tmp_path / "store.duckdb").exists()  # a clean close leaves the DuckDB file alone
    s = open_store(tmp_path)
    assert s.stats()["rows"]["cl_workflows"] == 7 and folded_seq(s) == 7
    s.commit(Batch(workflows=[wf("w7")]))
    assert logged(tmp_path) == [8]
    s.close()


def test_records_already_folded_are_skipped_at_open(tmp_path: Path) -> None:
    """A crash after a fold's COMMIT, before its segments were deleted: the next open must not
    apply those records again (appends would be doubled)."""
    s = open_store(tmp_path)
    s.commit(Batch(workflows=[wf("w1")], logs=[LogRow("t1", 1, "once")], transitions=[
        TransitionRow(1, "w1", None, None, None, "RUNNING", None)]))  # fmt: skip
    s.commit(Batch(logs=[LogRow("t1", 2, "twice?")]))
    saved = {p.name: p.read_bytes() for p in segments(tmp_path)}
    s.materialize()
    s.commit(Batch(logs=[LogRow("t1", 3, "after")]))  # not folded: only in the log
    after = {p.name: p.read_bytes() for p in segments(tmp_path)}
    s._log.close(clean=False)  # type: ignore[union-attr]  # as a crash would leave them: no fold, no cleanup
    s._log = None
    s._closed = True
    s._mat.close()
    s._con.close()
    for name, data in {**saved, **after}.items():
        (journal_dir(tmp_path / "store.duckdb") / name).write_bytes(data)
    assert logged(tmp_path) == [1, 2, 3]
    s = open_store(tmp_path)
    assert [r.log for r in s.get_task_logs("t1")] == ["once", "twice?", "after"]
    assert s._query("SELECT count(*) FROM cl_transitions") == [(1,)]
    assert logged(tmp_path) == [] and folded_seq(s) == 3
    s.commit(Batch(logs=[LogRow("t1", 4, "next")]))
    assert logged(tmp_path) == [4]
    s.close()


def test_a_second_store_on_the_same_file_in_this_process_is_refused(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    s.commit(Batch(workflows=[wf("w1")]))
    with pytest.raises(RuntimeError, match="in use by another store"):
        DuckDBStore(tmp_path / "." / "store.duckdb")  # DuckDB itself shares the file within a process
    s.commit(Batch(workflows=[wf("w2")]))  # the first one is unharmed
    assert s.stats()["rows"]["cl_workflows"] == 2
    s.close()


@pytest.mark.parametrize("path", [":memory:", "", ":memory:named"])
def test_memory_store_has_no_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    monkeypatch.chdir(tmp_path)
    s = DuckDBStore(path)
    s.commit(Batch(workflows=[wf("w1")]))
    assert s._log is None and s._pending == 1
    assert s.get_workflow("w1") is not None and s._pending == 0
    s.close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("durable", [True, False])
def test_a_fold_in_several_transactions_when_records_are_large(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durable: bool
) -> None:
    monkeypatch.setattr(duckdb_store, "MATERIALIZE_MAX_BYTES", 3_000)
    s = open_store(tmp_path, durable=durable)
    for i in range(10):  # ~1.1 KB each: three per fold transaction at most
        s.commit(Batch(workflows=[wf("w", update=i, payload="x" * 1000)], logs=[LogRow("t", i, str(i))]))
    folds: list[int] = []
    real = s._fold_once

    def counting() -> tuple[int, int]:
        n, upto = real()
        folds.append(n)
        return n, upto

    monkeypatch.setattr(s, "_fold_once", counting)
    assert s.materialize() == 10
    assert folds == [2, 2, 2, 2, 2]
    assert s._query("SELECT update_time FROM cl_workflows") == [(9,)]
    assert [r.log for r in s.get_task_logs("t")] == [str(i) for i in range(10)]
    assert logged(tmp_path) == [] and folded_seq(s) == 10
    s.close()


# ---------------------------------------------------------------------- atomicity


@pytest.mark.parametrize(
    "bad",
    [
        Batch(poll_data=[PollDataRow("q9", "", "w", "not-an-int")]),  # type: ignore[arg-type]
        Batch(tasks=[task("t1", "w1", 1)._replace(json=123)]),  # type: ignore[arg-type]
        Batch(workflow_defs=[("wf", 7)]),  # type: ignore[list-item]  # a row of the wrong width
        Batch(event_executions=[EventExecutionRow("x", "x", "h", "e", "now", "", None, "")]),  # type: ignore[arg-type]
        Batch(event_handler_deletes=[7]),  # type: ignore[list-item]
    ],
    ids=["str-in-bigint", "int-in-varchar", "short-row", "event-execution-created", "event-handler-delete"],
)
def test_bad_row_leaves_store_unchanged(tmp_path: Path, bad: Batch) -> None:
    s = open_store(tmp_path)
    s.commit(full_batch())
    before = dump(s)
    # good rows in every list before the bad one: none of them may land
    bad.workflows = [wf("w1", payload="changed"), wf("w9")]
    bad.task_def_deletes = ["a_task"]
    bad.transitions = [TransitionRow(9, "w9", None, None, None, "RUNNING", None)]
    bad.workflow_deletes = ["w2"]
    with pytest.raises((TypeError, ValueError)):  # pyarrow's ArrowTypeError / ArrowInvalid
        s.commit(bad)
    assert dump(s) == before
    s.close()


def test_duplicate_keys_in_one_list_last_wins(tmp_path: Path) -> None:
    # The journal folds batches key by key, so a (contract-violating) duplicate key inside one
    # upsert list cannot poison it: the later row wins, as it would across two commits.
    s = open_store(tmp_path)
    s.commit(full_batch())
    s.commit(Batch(poll_data=[PollDataRow("q9", "", "a", 1), PollDataRow("q9", "", "b", 2)]))
    assert [p for p in s.load_poll_data() if p.queue_name == "q9"] == [PollDataRow("q9", "", "b", 2)]
    s.close()


def test_bad_row_type_is_refused_before_the_journal(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    s.commit(full_batch())
    before = dump(s)
    bad = Batch(workflows=[wf("w9")], tasks=[task("t9", "w9", 1)._replace(seq="not a number")])  # type: ignore[arg-type]
    with pytest.raises((TypeError, ValueError)):
        s.commit(bad)
    assert dump(s) == before
    s.close()


class _Status(str, enum.Enum):
    DONE = "COMPLETED"


@pytest.mark.parametrize("table", [duckdb_store.POLL_DATA, duckdb_store.EVENT_HANDLERS, duckdb_store.WORKFLOWS])
def test_row_check_accepts_exactly_what_pyarrow_accepts(table: Any) -> None:
    """``_Table.check`` passes plain rows without pyarrow: it must refuse what ``arrow`` refuses."""
    values = [None, 0, 1, -1, True, 1.0, 1.5, "1", "", 2**31 - 1, 2**31, -(2**31) - 1, 2**63 - 1, 2**63, _Status.DONE]
    good = {"VARCHAR": "s", "INTEGER": 1, "BIGINT": 1, "BOOLEAN": True}
    base = [good[typ] for _, typ in table.columns]
    assert duckdb_store._PLAIN[table.name]([tuple(base), [None] * len(base)])  # plain rows skip pyarrow
    for col in range(len(base)):
        for v in values:
            row = tuple(base[:col] + [v] + base[col + 1 :])
            try:
                table.arrow([row])
                refused = False
            except (TypeError, ValueError, OverflowError):
                refused = True
            if refused:
                with pytest.raises((TypeError, ValueError, OverflowError)):
                    table.check([row])
            else:
                table.check([row])
    for row in (tuple(base[:-1]), (*base, "extra")):  # wrong widths
        with pytest.raises(ValueError):
            table.check([tuple(base), row])


def _apply_then_fail(fold: Any, con: duckdb.DuckDBPyConnection) -> None:
    """A fold that fails at its last statement, after every real one has run."""
    _REAL_APPLY(fold, con)
    con.execute("INSERT INTO cl_tasks (task_id, seq) VALUES ('zz', 'not a number')")


_REAL_APPLY = duckdb_store._Fold.apply


def test_failed_materialization_leaves_tables_and_journal_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = open_store(tmp_path)
    s.commit(full_batch())
    before = dump(s)
    s.close()
    monkeypatch.setattr(duckdb_store._Fold, "apply", _apply_then_fail)
    f = DuckDBStore(tmp_path / "store.duckdb")
    change = Batch(
        workflows=[wf("w1", payload="changed")],
        tasks=[task("t7", "w1", 7)],
        transitions=[TransitionRow(9, "w1", None, None, None, "X", None)],
        logs=[LogRow("t1", 9, "x")],
        poll_data=[PollDataRow("q1", "", "changed", 1)],
        workflow_defs=[WorkflowDefRow("wf", 3, "{}")],
        workflow_deletes=["w2"],
    )
    f.commit(change)  # durable in the log
    with pytest.raises(duckdb.Error):
        f.materialize()
    raw = f._con.cursor()
    assert {t: sorted(raw.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES} == before
    assert raw.execute("SELECT count(*) FROM cl_journal").fetchone() == (0,)
    raw.close()
    assert f._pending == 1 and logged(tmp_path) == [2]  # still pending, still in the log
    f.close()  # materialization fails again; the log stays
    assert logged(tmp_path) == [2]
    monkeypatch.undo()
    s = open_store(tmp_path)  # a working store applies the log at open: nothing was lost
    assert s.get_workflow("w2") is None
    assert s.get_task("t7") is not None
    stored = s.get_workflow("w1")
    assert stored is not None and "changed" in stored.json
    assert logged(tmp_path) == []
    s.close()


# ---------------------------------------------------------------------- crash (kill -9)

CHILD = textwrap.dedent(
    """
    import os, signal, sys, threading
    from conductor_lab.engine.store.base import Batch, LogRow, PollDataRow, TaskRow, TransitionRow, WorkflowRow
    from conductor_lab.engine.store.duckdb import DuckDBStore

    path, n, mode, durable = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
    store = DuckDBStore(path, durable=durable)
    if sys.argv[6] == "1":  # checkpoint all the time, so the kill may land inside a checkpoint
        store._con.execute("SET GLOBAL checkpoint_threshold = '64KB'")

    def wf(wid, i):
        return WorkflowRow(wid, "wf", 1, "RUNNING", None, None, 0, i, i, 0, "s", '{"i":%d}' % i)

    def task(tid, wid, i):
        return TaskRow(tid, wid, 1, "SIMPLE", "r", "SCHEDULED", 0, None, i, i, 0, i, '{"i":%d}' % i)

    def batch(i):
        return Batch(
            workflows=[wf(f"w{i}", i), wf("shared", i)],
            tasks=[task(f"t{i}", f"w{i}", i), task("shared-t", "shared", i)]
                  + [task(f"t{i}-{k}", f"w{i}", i) for k in range(20)],
            transitions=[TransitionRow(i, f"w{i}", None, None, None, "RUNNING", None),
                         TransitionRow(i, f"w{i}", f"t{i}", "r", "SIMPLE", "SCHEDULED", None)],
            logs=[LogRow(f"t{i}", i, "log")],
            poll_data=[PollDataRow("q", "", f"worker-{i}", i)],
        )

    def maintainer():  # folds beside the commits, as the group committer's maintenance thread
        while True:
            if store.needs_maintenance():
                store.maintain()
            else:
                threading.Event().wait(0.002)

    if mode == "during":
        threading.Thread(target=maintainer, daemon=True).start()
    armed = threading.Event()
    if mode == "during":  # once commit K has returned, kill ourselves while commit K+1 runs
        def killer():
            armed.wait(60)
            os.kill(os.getpid(), signal.SIGKILL)
        threading.Thread(target=killer, daemon=True).start()
    arm_after = int(sys.argv[5])
    for i in range(n):
        store.commit(batch(i))
        print(f"committed {i}", flush=True)
        if i == arm_after:
            armed.set()
        if mode == "after" and i == n // 2:
            store.materialize()  # the first half in DuckDB's WAL, the rest only in the commit log
    if mode == "after":
        print("wal", os.path.exists(path + ".wal") and os.path.getsize(path + ".wal") > 0, flush=True)
        print("log", store._pending, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.parametrize(
    ("mode", "durable", "arm_after", "ckpt"),
    [
        ("after", True, 0, False),
        ("during", True, 3, False),
        ("during", True, 60, False),
        ("during", False, 30, False),
        ("during", True, 20, True),
        ("during", True, 45, True),
    ],
)
def test_kill_9_loses_no_committed_batch_and_leaves_none_half_applied(
    tmp_path: Path, mode: str, durable: bool, arm_after: int, ckpt: bool
) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    path = tmp_path / "crash.duckdb"
    n = 40 if mode == "after" else 100_000
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            str(script),
            str(path),
            str(n),
            mode,
            "1" if durable else "0",
            str(arm_after),
            "1" if ckpt else "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == -9, proc.stderr
    lines = proc.stdout.splitlines()
    committed = [int(x.split()[1]) for x in lines if x.startswith("committed ") and x.split()[1].isdigit()]
    assert committed == list(range(len(committed)))
    if mode == "after":
        assert len(committed) == n
        assert "wal True" in lines  # the reopen below really replays a WAL
        assert lines[-1] == f"log {n - n // 2 - 1}"  # and batches that are only in the commit log
    else:
        assert len(committed) >= arm_after + 1, proc.stderr  # the kill landed while commits were running

    s = DuckDBStore(path)
    try:
        present = {
            r[0] for r in s._query("SELECT workflow_id FROM cl_workflows WHERE workflow_id <> 'shared'")
        }
        last = len(committed) - 1
        # every reported batch is there; at most the one in flight at the kill is there besides
        assert {f"w{i}" for i in committed} <= present
        assert present <= {f"w{i}" for i in range(last + 2)}
        top = max(int(w[1:]) for w in present)
        for i in range(top + 1):  # each present batch is complete
            assert s.get_workflow(f"w{i}") == StoredWorkflow(f'{{"i":{i}}}', "s")
            assert len(s.get_tasks(f"w{i}")) == 21
            assert len(s.get_task_logs(f"t{i}")) == 1
            assert s._query("SELECT count(*) FROM cl_transitions WHERE workflow_id = ?", [f"w{i}"]) == [(2,)]
        assert s.get_workflow("shared") == StoredWorkflow(f'{{"i":{top}}}', "s")
        assert s.get_task("shared-t") == f'{{"i":{top}}}'
        assert s.load_poll_data() == [PollDataRow("q", "", f"worker-{top}", top)]
        rows = s.stats()["rows"]
        assert rows["cl_workflows"] == top + 2
        assert rows["cl_tasks"] == 21 * (top + 1) + 1
        assert rows["cl_transitions"] == 2 * (top + 1)
        # and the store keeps working after recovery
        s.commit(
            Batch(workflows=[WorkflowRow("after", "wf", 1, "RUNNING", None, None, 0, 0, 0, 0, "s", "{}")])
        )
        assert s.get_workflow("after") is not None
    finally:
        s.close()


# ---------------------------------------------------------------------- load_running


@pytest.mark.parametrize("part", [7, 40, 250_000])
def test_load_running_streams_in_order_and_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part: int
) -> None:
    monkeypatch.setattr(duckdb_store, "_RUNNING_PART", part)  # several workflow_id ranges, or one
    s = open_store(tmp_path)
    statuses = ["RUNNING", "PAUSED", "COMPLETED", "FAILED", "TERMINATED", "TIMED_OUT"]
    wfs = [wf(f"w{i:03d}", status=statuses[i % len(statuses)], snap=f"s{i}") for i in range(120)]
    tasks: list[TaskRow] = []
    for i in range(120):
        for k in range(i % 4):  # 0..3 tasks, written out of seq order
            tasks.append(task(f"t{i:03d}-{k}", f"w{i:03d}", 3 - k))
    # written in two batches in scrambled order, with a checkpoint in between
    s.commit(Batch(workflows=wfs[::2], tasks=tasks[::2]))
    s.checkpoint()
    s.commit(Batch(workflows=wfs[1::2], tasks=tasks[1::2]))

    expected = []
    for i in sorted(range(120), key=lambda i: f"w{i:03d}"):
        if wfs[i].status in ("RUNNING", "PAUSED"):
            mine = sorted((t for t in tasks if t.workflow_id == wfs[i].workflow_id), key=lambda t: t.seq)
            expected.append((StoredWorkflow(wfs[i].json, f"s{i}"), [t.json for t in mine]))
    assert len(expected) == 40
    for chunk in (1, 2, 3, 7, 10_000):
        assert list(s.load_running(chunk=chunk)) == expected
    # one snapshot: a commit made while the iterator runs is not seen by it
    it = s.load_running(chunk=2)
    first = next(it)
    s.commit(Batch(workflows=[wf("w999", status="RUNNING"), wf("w000", status="PAUSED", payload="new")]))
    rest = list(it)
    assert [first, *rest] == expected
    assert len(list(s.load_running())) == 41
    # abandoning the iterator early releases its cursor and its transaction
    it = s.load_running(chunk=2)
    next(it)
    it.close()
    s.close()


def test_load_running_empty(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    assert list(s.load_running()) == []
    s.close()


# ---------------------------------------------------------------------- search


@pytest.fixture
def searchable(tmp_path: Path) -> Iterator[DuckDBStore]:
    s = open_store(tmp_path)
    rows = [
        wf(
            "a1",
            name="order",
            version=1,
            status="COMPLETED",
            corr="c-1",
            create=100,
            update=150,
            end=150,
            payload="Alpha",
        ),
        wf(
            "a2",
            name="order",
            version=2,
            status="RUNNING",
            corr="c-2",
            create=200,
            update=250,
            payload="beta",
        ),
        wf(
            "a3",
            name="order",
            version=2,
            status="FAILED",
            corr="c-1",
            create=300,
            update=350,
            end=350,
            payload="gamma 50%",
        ),
        wf(
            "b1",
            name="billing",
            version=1,
            status="RUNNING",
            parent="a2",
            create=200,
            update=210,
            payload="ALPHA",
        ),
        wf("b2", name="billing", version=1, status="PAUSED", create=500, update=510, payload="delta"),
    ]
    s.commit(Batch(workflows=rows))
    yield s
    s.close()


def ids(res: tuple[int, list[StoredWorkflow]]) -> tuple[int, list[str]]:
    import json

    return res[0], [json.loads(w.json)["workflowId"] for w in res[1]]


def q(
    clauses: list[tuple[str, str, Any]] | None = None,
    free: str | None = None,
    sort: list[tuple[str, bool]] | None = None,
    start: int = 0,
    size: int = 100,
) -> SearchQuery:
    return SearchQuery(clauses or [], free, sort or [], start, size)


def test_search_clauses(searchable: DuckDBStore) -> None:
    s = searchable
    assert ids(s.search_workflows(q())) == (5, ["a1", "a2", "b1", "a3", "b2"])  # create_time, workflow_id
    assert ids(s.search_workflows(q([("workflowType", "=", "order")]))) == (3, ["a1", "a2", "a3"])
    assert ids(s.search_workflows(q([("status", "IN", ["RUNNING", "PAUSED"])]))) == (3, ["a2", "b1", "b2"])
    assert ids(s.search_workflows(q([("status", "IN", [])]))) == (0, [])
    assert ids(s.search_workflows(q([("correlationId", "=", "c-1")]))) == (2, ["a1", "a3"])
    assert ids(s.search_workflows(q([("startTime", ">", 200)]))) == (2, ["a3", "b2"])
    assert ids(s.search_workflows(q([("startTime", "<", "200")]))) == (1, ["a1"])  # numeric strings accepted
    assert ids(s.search_workflows(q([("endTime", ">", 0)]))) == (2, ["a1", "a3"])
    assert ids(s.search_workflows(q([("updateTime", "<", 211)]))) == (2, ["a1", "b1"])
    assert ids(s.search_workflows(q([("version", "=", 2)]))) == (2, ["a2", "a3"])
    assert ids(s.search_workflows(q([("version", "IN", ["1"])]))) == (3, ["a1", "b1", "b2"])
    assert ids(s.search_workflows(q([("parentWorkflowId", "=", "a2")]))) == (1, ["b1"])
    assert ids(s.search_workflows(q([("workflowId", "LIKE", "a%")]))) == (3, ["a1", "a2", "a3"])
    assert ids(s.search_workflows(q([("workflowId", "IN", ["b2", "a1", "zz"])]))) == (2, ["a1", "b2"])
    # clauses are ANDed; unknown fields are ignored
    assert ids(
        s.search_workflows(
            q([("workflowType", "=", "order"), ("status", "=", "FAILED"), ("noSuchField", "=", "x")])
        )
    ) == (1, ["a3"])
    # values are bound, never spliced into the SQL
    assert ids(s.search_workflows(q([("workflowId", "=", "x' OR '1'='1")]))) == (0, [])
    with pytest.raises(InvalidInput):
        s.search_workflows(q([("startTime", ">", "yesterday")]))
    with pytest.raises(InvalidInput):
        s.search_workflows(q([("status", "~", "x")]))


def test_search_free_text_sort_and_paging(searchable: DuckDBStore) -> None:
    s = searchable
    assert ids(s.search_workflows(q(free="alpha"))) == (2, ["a1", "b1"])  # case-insensitive
    assert ids(s.search_workflows(q(free="*"))) == (5, ["a1", "a2", "b1", "a3", "b2"])
    assert ids(s.search_workflows(q(free="50%"))) == (1, ["a3"])  # literal, % is not a wildcard
    assert ids(s.search_workflows(q(free="a%a"))) == (0, [])
    assert ids(s.search_workflows(q(free="alpha", clauses=[("workflowType", "=", "billing")]))) == (1, ["b1"])

    assert ids(s.search_workflows(q(sort=[("startTime", False)]))) == (5, ["b2", "a3", "a2", "b1", "a1"])
    assert ids(s.search_workflows(q(sort=[("workflowType", True), ("updateTime", False)]))) == (
        5,
        ["b2", "b1", "a3", "a2", "a1"],
    )
    assert ids(s.search_workflows(q(sort=[("bogus", True)]))) == (5, ["a1", "a2", "b1", "a3", "b2"])

    assert ids(s.search_workflows(q(start=1, size=2))) == (5, ["a2", "b1"])
    assert ids(s.search_workflows(q(start=4, size=2))) == (5, ["b2"])
    assert ids(s.search_workflows(q(start=9, size=2))) == (5, [])
    assert ids(s.search_workflows(q(size=0))) == (5, [])
    # paging walks every row exactly once
    seen: list[str] = []
    for start in range(0, 5, 2):
        seen += ids(s.search_workflows(q(start=start, size=2)))[1]
    assert sorted(seen) == ["a1", "a2", "a3", "b1", "b2"]


def test_workflow_ids_filters(searchable: DuckDBStore) -> None:
    s = searchable
    assert s.workflow_ids("order") == ["a1", "a2", "a3"]
    assert s.workflow_ids("order", version=2) == ["a2", "a3"]
    assert s.workflow_ids("order", statuses=("RUNNING", "FAILED")) == ["a2", "a3"]
    assert s.workflow_ids("order", statuses=()) == []
    assert s.workflow_ids("order", correlation_id="c-1") == ["a1", "a3"]
    assert s.workflow_ids("order", start_time=150, end_time=300) == ["a2", "a3"]
    assert s.workflow_ids("order", start_time=150) == ["a2", "a3"]
    assert s.workflow_ids("order", end_time=200) == ["a1", "a2"]
    assert s.workflow_ids("order", limit=2) == ["a1", "a2"]
    assert s.workflow_ids("billing", statuses=("RUNNING", "PAUSED")) == ["b1", "b2"]
    assert s.workflow_ids("nothing") == []


# ---------------------------------------------------------------------- threads


def test_concurrent_reads_while_a_writer_thread_commits(tmp_path: Path) -> None:
    s = open_store(tmp_path)
    s.commit(Batch(workflows=[wf("counter", update=0)]))
    rounds = 60
    errors: list[BaseException] = []
    done = threading.Event()

    def writer() -> None:  # not the thread that created the store
        try:
            for i in range(1, rounds + 1):
                s.commit(
                    Batch(
                        workflows=[wf("counter", update=i, payload=str(i)), wf(f"w{i}", create=i)],
                        tasks=[task(f"t{i}-a", f"w{i}", 1), task(f"t{i}-b", f"w{i}", 2)],
                        logs=[LogRow(f"t{i}-a", i, "x")],
                    )
                )
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)
        finally:
            done.set()

    reads = [0] * 4

    def reader(k: int) -> None:
        last_counter = -1
        last_total = 0
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                finished = done.is_set()
                row = s._query("SELECT update_time FROM cl_workflows WHERE workflow_id = 'counter'")
                v = row[0][0]
                assert v >= last_counter  # committed state only moves forward
                last_counter = v
                if v >= 1:
                    # everything committed with counter=v is visible, both tasks or neither
                    assert len(s.get_tasks(f"w{v}")) == 2
                    assert s.get_workflow(f"w{v}") is not None
                total, _ = s.search_workflows(q(size=1))
                assert total >= last_total
                last_total = total
                j = 1 + (reads[k] % rounds)
                assert len(s.get_tasks(f"w{j}")) in (0, 2)
                assert len(s.get_task_logs(f"t{j}-a")) in (0, 1)
                reads[k] += 1
                if finished:
                    break
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(4)]
    w = threading.Thread(target=writer)
    for t in threads:
        t.start()
    w.start()
    w.join(timeout=120)
    for t in threads:
        t.join(timeout=120)
    assert not w.is_alive() and not any(t.is_alive() for t in threads)
    assert not errors, errors
    assert all(n > 0 for n in reads)
    assert s.get_workflow("counter") == StoredWorkflow(
        wf("counter", update=rounds, payload=str(rounds)).json, "snap-1"
    )
    assert s.stats()["rows"]["cl_tasks"] == 2 * rounds
    s.close()


def test_materialization_runs_beside_journal_commits(tmp_path: Path) -> None:
    """A materializer thread folding the journal while a writer thread keeps committing."""
    s = open_store(tmp_path)
    n = 300
    done = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i in range(n):
                s.commit(Batch(workflows=[wf(f"w{i}")], tasks=[task(f"t{i}", f"w{i}", 1)]))
                s.commit(Batch(tasks=[task(f"t{i}", f"w{i}", 1, status="COMPLETED")]))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    def materializer() -> None:
        try:
            while not done.is_set():
                s.materialize()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer), threading.Thread(target=materializer)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors
    s.materialize()
    rows = s.stats()["rows"]
    assert rows["cl_workflows"] == n and rows["cl_tasks"] == n
    assert s._query("SELECT count(*) FROM cl_tasks WHERE status = 'COMPLETED'") == [(n,)]
    assert s._query("SELECT count(*) FROM cl_journal") == [(0,)]
    s.close()


def test_materializer_checkpoints_once_the_wal_is_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(duckdb_store, "CHECKPOINT_WAL_BYTES", 1 << 40)
    s = open_store(tmp_path)
    wal = Path(str(tmp_path / "store.duckdb") + ".wal")
    for i in range(200):  # ~200 batches with 1 KB payloads: well past 64 KB of WAL once folded
        s.commit(Batch(workflows=[wf(f"w{i}", payload="x" * 1000)]))
    s.materialize()
    assert wal.exists() and wal.stat().st_size >= 64 * 1024  # below the threshold: no checkpoint
    monkeypatch.setattr(duckdb_store, "CHECKPOINT_WAL_BYTES", 64 * 1024)
    s.commit(Batch(workflows=[wf("w200")]))
    s.materialize()
    assert not wal.exists() or wal.stat().st_size < 64 * 1024
    assert s.stats()["rows"]["cl_workflows"] == 201
    s.close()


def test_commits_and_folds_do_not_load_pandas(tmp_path: Path) -> None:
    """The server stays free of pandas: the fold hands rows to DuckDB as NumPy object arrays
    (an Arrow table built from Python lists would make pyarrow import pandas)."""
    code = (
        "import sys\n"
        "from conductor_lab.engine.store.duckdb import DuckDBStore\n"
        "from conductor_lab.engine.store.base import Batch, TaskRow, TransitionRow\n"
        f"s = DuckDBStore({str(tmp_path / 'p.duckdb')!r})\n"
        "s.commit(Batch(tasks=[TaskRow('t1', 'w1', 1, 'SIMPLE', 'r', 'SCHEDULED', 0, None, 1, 2, 0, 3, '{}')],\n"
        "               transitions=[TransitionRow(1, 'w1', 't1', 'r', 'SIMPLE', 'SCHEDULED', None)]))\n"
        "assert s.materialize() == 1\n"
        "s.close()\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True
    ).stdout.strip()
    assert out == "False"


def test_fold_keeps_every_value_exactly(tmp_path: Path) -> None:
    """The fold's rows reach the tables value for value: NULLs in every column, text with NUL,
    accents and astral characters, the integer columns' bounds, booleans, key deletes with
    composite keys; the rows of an append-only table keep their commit order."""
    s = open_store(tmp_path)
    text = "a\x00b é 日本 \U0001f600 \"quoted\" \\ back"
    big = 2**63 - 1
    doc = json.dumps({"taskDefName": text})  # a task's JSON is read by the derived columns
    s.commit(
        Batch(
            workflows=[WorkflowRow("w1", text, 2**31 - 1, "RUNNING", None, None, -(2**31), -big - 1, big, 0, None, text)],
            tasks=[TaskRow("t1", "w1", -(2**31), "SIMPLE", text, "SCHEDULED", 2**31 - 1, None, big, -big - 1, 0, 1, doc)],
            transitions=[TransitionRow(i, "w1", None if i % 2 else "t1", None, None, "RUNNING", text, None) for i in range(3000, 0, -1)],
            poll_data=[PollDataRow("q", "", None, big), PollDataRow("q", "d", "w", 0)],
            workflow_defs=[WorkflowDefRow("wf", 1, "{}"), WorkflowDefRow("wf", 2, "{}")],
            event_handlers=[EventHandlerRow("h", "e", False, "{}"), EventHandlerRow("h2", "e", None, "{}")],  # type: ignore[arg-type]
        )
    )
    s.commit(Batch(workflow_def_deletes=[("wf", 1)], event_handler_deletes=["h2"]))
    s.materialize()
    assert s._query("SELECT * FROM cl_workflows") == [
        ("w1", text, 2**31 - 1, "RUNNING", None, None, -(2**31), -big - 1, big, 0, None, text)
    ]
    assert s._query("SELECT * FROM cl_tasks") == [
        ("t1", "w1", -(2**31), "SIMPLE", text, "SCHEDULED", 2**31 - 1, None, big, -big - 1, 0, 1, doc, text, None)
    ]
    assert s._query("SELECT ts, task_id, reason FROM cl_transitions ORDER BY rowid") == [
        (i, None if i % 2 else "t1", text) for i in range(3000, 0, -1)
    ]
    assert s._query("SELECT * FROM cl_poll_data ORDER BY domain") == [("q", "", None, big), ("q", "d", "w", 0)]
    assert s._query("SELECT name, version FROM cl_workflow_defs") == [("wf", 2)]
    assert s._query("SELECT name, active FROM cl_event_handlers") == [("h", False)]
    s.close()


def test_fold_hands_duckdb_only_what_ends_in_the_tables() -> None:
    """The fold merges its batches in commit order before DuckDB sees them: the newest row per
    key, a definition's last upsert or delete (a delete before an upsert within one batch), the
    first snapshot per id, appends in order. Decoded rows (lists) merge as committed ones."""
    fold = duckdb_store._Fold()
    fold.add(
        Batch(
            tasks=[task("t1", "w1", 1), task("t2", "w1", 2)],
            task_defs=[TaskDefRow("a", "{}"), TaskDefRow("b", "{}")],
            snapshots=[("s1", "first")],
            transitions=[TransitionRow(1, "w1", "t1", "r", "SIMPLE", "SCHEDULED", None)],
        )
    )
    done = task("t1", "w1", 1, status="COMPLETED")
    fold.add(
        duckdb_store.decode_batch(
            duckdb_store.encode_batch(
                Batch(
                    tasks=[done],
                    task_def_deletes=["a", "b"],
                    task_defs=[TaskDefRow("b", '{"v":2}')],
                    snapshots=[("s1", "second")],
                    transitions=[TransitionRow(2, "w1", "t1", "r", "SIMPLE", "COMPLETED", None)],
                    workflow_def_deletes=[("wf", 1)],
                    workflow_deletes=["w9"],
                )
            )
        )
    )
    assert list(fold.tasks) == ["t1", "t2"] and list(fold.tasks["t1"]) == list(done)
    assert fold.task_defs == {"a": None, "b": ["b", '{"v":2}']}
    assert fold.snapshots == {"s1": ("s1", "first")}
    assert [r[0] for r in fold.transitions] == [1, 2]
    assert fold.workflow_defs == {("wf", 1): None} and list(fold.workflow_deletes) == ["w9"]
    assert not fold.workflows and not fold.logs and not fold.poll_data


def test_decoded_batches_encode_as_committed() -> None:
    text = duckdb_store.encode_batch(full_batch())
    assert duckdb_store.encode_batch(duckdb_store.decode_batch(text)) == text
    # a record of an earlier version lacks the later keys
    old = duckdb_store.decode_batch('{"td":[["t","{}"]],"tdd":[],"wfd":[]}')
    assert old.task_defs == [["t", "{}"]] and old.event_handlers == [] and len(old) == 1
    # a value JSON has no form for is refused, not turned into something else
    with pytest.raises(TypeError):
        duckdb_store.encode_batch(Batch(task_defs=[TaskDefRow("t", object())]))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        duckdb_store.encode_batch(Batch(task_defs=[TaskDefRow("t", {"a"})]))  # type: ignore[arg-type]
