"""Search without a server: the query parser (engine/search.py), the SQL it becomes
(store/duckdb_search.py) and the store's search columns (derived at fold time, added in place)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from conductor_lab.engine.search import parse, parse_clause, parse_query, parse_sort, snake
from conductor_lab.engine.store.base import Batch, SearchQuery, TaskRow, WorkflowRow
from conductor_lab.engine.store.duckdb import DuckDBStore
from conductor_lab.engine.store.duckdb_search import WORKFLOW_FIELDS, compile_query
from conductor_lab.errors import InvalidInput

# ---------------------------------------------------------------------- the query syntax


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        ("workflowType = 'order'", ("workflowType", "=", "order")),
        ('workflowId="abc"', ("workflowId", "=", "abc")),  # the UI's spelling
        ("status IN (FAILED,TIMED_OUT)", ("status", "IN", ["FAILED", "TIMED_OUT"])),
        ("status IN (FAILED, 'TIMED_OUT' )", ("status", "IN", ["FAILED", "TIMED_OUT"])),  # trimmed, unquoted
        ("status IN (FAILED)", ("status", "=", "FAILED")),  # a one-value IN is '='
        ("status IN(FAILED,X)", ("status", "IN", ["FAILED", "X"])),
        ("correlationId = 'order-*'", ("correlationId", "LIKE", "order-%")),
        ("correlationId = 'a,b'", ("correlationId", "=", "a,b")),  # only IN splits on commas
        ("startTime > 1700000000000", ("startTime", ">", 1700000000000)),
        ("updateTime<5", ("updateTime", "<", 5)),
        ("startTime IN (1,2)", ("startTime", "IN", [1, 2])),
        ("  (workflowType = x)", ("workflowType", "=", "x")),  # leading spaces and parentheses
        ("workflowType = a OR status = b", ("workflowType", "=", "a OR status = b")),  # no OR
        ("status = ", ("status", "=", "")),
    ],
)
def test_clauses(clause: str, expected: tuple[str, str, Any]) -> None:
    assert parse_clause(clause) == expected


@pytest.mark.parametrize(
    "clause",
    ["status != FAILED", "status != RUNNING", "status in (A)", "status IS NULL", "startTime >= 5", "x <= 1",
     "startTime > yesterday", "endTime IN (1,soon)", "updateTime < 9223372036854775808", "!!!", "", "= 5"],
)  # fmt: skip
def test_bad_clauses(clause: str) -> None:
    with pytest.raises(InvalidInput, match=r"^Incorrectly formatted query string: "):
        parse_clause(clause)


def test_query_splits_on_upper_case_and_with_single_spaces() -> None:
    assert parse_query(None) == [] and parse_query("   ") == []
    assert parse_query("a = 1 AND b = 2") == [("a", "=", "1"), ("b", "=", "2")]
    assert parse_query("a = 1 and b = 2") == [("a", "=", "1 and b = 2")]
    with pytest.raises(InvalidInput, match="Incorrectly formatted query string: status != x$"):
        parse_query("a = 1 AND status != x")


def test_sort_and_snake_case_fields() -> None:
    assert parse_sort("startTime:DESC|workflowId:asc|status") == [
        ("startTime", False), ("workflowId", True), ("status", True),
    ]  # fmt: skip
    assert parse_sort(None) == [] and parse_sort("") == []
    assert parse_sort("a:UP|b:DESC| |c:") == [("b", False)]  # other directions are dropped
    assert snake("workflowType") == "workflow_type" and snake("WorkflowType") == "workflow_type"
    assert snake("STATUS") == "s_t_a_t_u_s"  # as conductor-oss: not a field


def test_parse_free_text_and_bounds() -> None:
    q = parse(start=5, size=7, sort="startTime:DESC", free_text=" * ", query="status = RUNNING")
    assert q == SearchQuery([("status", "=", "RUNNING")], None, [("startTime", False)], 5, 7)
    assert parse(free_text="").free_text is None and parse(free_text=None).free_text is None
    assert parse(free_text=" Alpha ").free_text == "Alpha"
    with pytest.raises(InvalidInput):
        parse(start=-1)
    with pytest.raises(InvalidInput):
        parse(size=-1)


# ---------------------------------------------------------------------- free text as SQL


@pytest.mark.parametrize(
    "text", ["cust-4242", "CUST-42", "4242", "alpha", "50%", "a_b", "x\\y", "é-100", '"k":"v', " -- ", "A-1-b-2"]
)
def test_free_text_prefilter_never_changes_the_answer(text: str) -> None:
    """contains(json, <caseless run>) before ILIKE gives exactly ILIKE's rows."""
    rnd = random.Random(text)
    alphabet = "abcABC-_%\\\"':{}é 0123456789"
    docs = [text, text.upper(), text.lower(), text.swapcase(), f"[{text}]", ""]
    docs += ["".join(rnd.choice(alphabet) for _ in range(rnd.randrange(1, 40))) for _ in range(300)]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (json VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[d] for d in docs])
    c = compile_query(SearchQuery([], text, [], 0, 10), {"json_data": ("json", "VARCHAR")},
                      key="json", default_order="json")  # fmt: skip
    got = sorted(r[0] for r in con.execute(f"SELECT json FROM t WHERE {c.where}", c.params).fetchall())
    want = sorted(d for d in docs if text.lower() in d.lower())
    assert got == want


def test_compiled_sql_binds_values_and_orders_by_the_key_last() -> None:
    q = SearchQuery(
        [("workflowType", "=", "x' OR '1'='1"), ("status", "IN", ["A", "B"]), ("nope", "=", 1)],
        None,
        [("startTime", False), ("bogus", True)],
        0,
        10,
    )
    c = compile_query(q, WORKFLOW_FIELDS, key="workflow_id", default_order="create_time")
    assert c.where == "workflow_name = ?::VARCHAR AND status IN (?, ?)"
    assert c.params == ["x' OR '1'='1", "A", "B"]
    assert c.order == "create_time DESC, workflow_id ASC"
    assert compile_query(SearchQuery([], None, [], 0, 1), WORKFLOW_FIELDS, key="workflow_id",
                         default_order="create_time").order == "create_time ASC, workflow_id ASC"  # fmt: skip


# ---------------------------------------------------------------------- the store


def wf_row(wid: str, name: str, *, create: int, status: str = "COMPLETED", corr: str | None = None) -> WorkflowRow:
    js = orjson.dumps({"workflowId": wid, "status": status, "input": {"who": f"user-{wid}"}}).decode()
    return WorkflowRow(wid, name, 1, status, corr, None, 0, create, create + 5, create + 5, "snap", js)


def task_row(tid: str, wid: str, seq: int, *, ttype: str, def_name: str, wf_type: str, status: str) -> TaskRow:
    js = orjson.dumps(
        {"taskId": tid, "workflowInstanceId": wid, "taskType": ttype, "taskDefName": def_name,
         "workflowType": wf_type, "status": status, "inputData": {"n": seq}}
    ).decode()  # fmt: skip
    return TaskRow(tid, wid, seq, ttype, f"ref{seq}", status, 0, None, seq, seq + 1, seq + 2, seq + 3, js)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    s = DuckDBStore(tmp_path / "s.duckdb")
    wfs = [wf_row(f"w{i:02d}", "order" if i % 2 else "billing", create=100 + i) for i in range(20)]
    tasks = [
        task_row(f"t{i:02d}{k}", w.workflow_id, k, ttype="HTTP" if k == 2 else "work", def_name=f"step{k}",
                 wf_type=w.workflow_name, status="FAILED" if i == 3 and k == 2 else "COMPLETED")
        for i, w in enumerate(wfs)
        for k in (1, 2)
    ]  # fmt: skip
    s.commit(Batch(workflows=wfs, tasks=tasks))
    yield s
    s.close()


def q(*clauses: tuple[str, str, Any], free: str | None = None, sort: list[tuple[str, bool]] | None = None,
      start: int = 0, size: int = 100) -> SearchQuery:  # fmt: skip
    return SearchQuery(list(clauses), free, sort or [], start, size)


def task_ids(res: tuple[int, list[str]]) -> tuple[int, list[str]]:
    return res[0], [orjson.loads(t)["taskId"] for t in res[1]]


def test_task_search_uses_the_derived_columns(store: DuckDBStore) -> None:
    assert store._query("SELECT DISTINCT task_def_name FROM cl_tasks ORDER BY 1") == [("step1",), ("step2",)]
    assert task_ids(store.search_tasks(q(("taskDefName", "=", "step2"), ("status", "=", "FAILED")))) == (
        1, ["t032"],
    )  # fmt: skip
    total, page = task_ids(store.search_tasks(q(("workflowType", "=", "order"), ("taskType", "=", "HTTP"))))
    assert total == 10 and page == [f"t{i:02d}2" for i in range(1, 20, 2)]
    # ordered, paged, the count from the same snapshot
    total, page = task_ids(store.search_tasks(q(("taskType", "IN", ["work", "HTTP"]), sort=[("taskId", False)],
                                                start=2, size=3)))  # fmt: skip
    assert total == 40 and page == ["t182", "t181", "t172"]
    assert task_ids(store.search_tasks(q(("workflowId", "=", "w05"))))[1] == ["t051", "t052"]
    assert task_ids(store.search_tasks(q(free="USER-W07")))[0] == 0  # task JSON: no workflow input in it
    assert task_ids(store.search_tasks(q(free='"N":2', size=2)))[0] == 20


def test_workflow_page_and_lookup_by_ids(store: DuckDBStore) -> None:
    total, rows = store.search_workflows(q(("workflowType", "=", "order"), sort=[("startTime", False)], size=3))
    assert total == 10 and [orjson.loads(r.json)["workflowId"] for r in rows] == ["w19", "w17", "w15"]
    total, rows = store.search_workflows(q(free="user-W04"))
    assert total == 1 and orjson.loads(rows[0].json)["workflowId"] == "w04"
    found = store.get_workflows(["w18", "nope", "w01", "w18"])
    assert sorted(found) == ["w01", "w18"] and found["w18"].snapshot_id == "snap"
    assert store.get_workflows([]) == {}


def test_search_columns_are_added_in_place_to_an_older_file(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    s = DuckDBStore(path)
    s.commit(Batch(tasks=[task_row("t1", "w1", 1, ttype="work", def_name="d1", wf_type="wt", status="COMPLETED")]))
    s.close()
    con = duckdb.connect(str(path))  # as a file written before the derived columns existed
    con.execute("ALTER TABLE cl_tasks DROP COLUMN task_def_name")
    con.execute("ALTER TABLE cl_tasks DROP COLUMN workflow_type")
    con.execute("DROP TABLE cl_archive_batches")  # and what later versions added
    con.execute("UPDATE cl_meta SET value = '1' WHERE key = 'schema_version'")
    con.close()
    s = DuckDBStore(path)
    try:
        assert s._query("SELECT task_def_name, workflow_type FROM cl_tasks") == [("d1", "wt")]
        s.commit(Batch(tasks=[task_row("t2", "w1", 2, ttype="work", def_name="d2", wf_type="wt", status="FAILED")]))
        assert task_ids(s.search_tasks(q(("taskDefName", "IN", ["d1", "d2"]), sort=[("taskId", True)]))) == (
            2, ["t1", "t2"],
        )  # fmt: skip
    finally:
        s.close()
