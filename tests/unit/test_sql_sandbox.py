"""The documented SQL surface (``store/duckdb_views``) and the read-only sandbox (``engine/sql``),
against real DuckDB files. Every sandbox rule is proven by a query it must refuse."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pytest

import conductor_lab.engine.sql as sql_module
from conductor_lab.engine.sql import (
    DENIED_FUNCTIONS,
    TABLE_FUNCTIONS,
    Cancel,
    SqlError,
    SqlRequest,
    allowed_functions,
    run_sql,
)
from conductor_lab.engine.store.base import (
    Batch,
    EventExecutionRow,
    LogRow,
    PollDataRow,
    TaskDefRow,
    TaskRow,
    TransitionRow,
    WorkflowDefRow,
    WorkflowRow,
)
from conductor_lab.engine.store.duckdb import DuckDBStore
from conductor_lab.engine.store.duckdb_views import VIEW_NAMES, VIEWS_DIGEST
from conductor_lab.errors import InvalidInput
from tests.conftest import wait_until

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z
W1, W2 = "01900000-0000-7000-8000-000000000001", "01900000-0000-7000-8000-000000000002"


# ---------------------------------------------------------------------------------------------
# a small history, shaped like the engine's rows


def _workflow(wid: str, status: str, create: int, end: int, **extra: Any) -> WorkflowRow:
    doc = {
        "workflowId": wid,
        "status": status,
        "createTime": create,
        "updateTime": end or create,
        "endTime": end,
        "input": {"x": 5},
        "output": {"y": 1} if end else {},
        "variables": {"v": True},
        "taskToDomain": {},
        "failedReferenceTaskNames": ["a"] if end else [],
        "failedTaskNames": ["t1"] if end else [],
        "workflowName": "demo",
        "workflowVersion": 2,
        **extra,
    }
    corr = extra.get("correlationId")
    return WorkflowRow(
        wid, "demo", 2, status, corr, None, 3, create, end or create, end, "snap", orjson.dumps(doc).decode()
    )


def _task(
    tid: str,
    wid: str,
    seq: int,
    ref: str,
    status: str,
    *,
    retry: int = 0,
    sched: int,
    start: int,
    end: int,
    **extra: Any,
) -> TaskRow:
    task_type = extra.pop("taskType", "t1")
    doc = {
        "taskType": task_type,
        "status": status,
        "referenceTaskName": ref,
        "retryCount": retry,
        "seq": seq,
        "pollCount": 1,
        "taskDefName": task_type,
        "scheduledTime": sched,
        "startTime": start,
        "endTime": end,
        "updateTime": end or start or sched,
        "workflowInstanceId": wid,
        "workflowType": "demo",
        "taskId": tid,
        "callbackAfterSeconds": 0,
        "inputData": {"x": seq},
        "outputData": {"seq": seq} if end else {},
        **extra,
    }
    return TaskRow(
        tid,
        wid,
        seq,
        task_type,
        ref,
        status,
        retry,
        None,
        sched,
        start,
        end,
        end or start or sched,
        orjson.dumps(doc).decode(),
    )


def history() -> Batch:
    return Batch(
        workflows=[
            _workflow(W1, "COMPLETED", T0, T0 + 4500, correlationId="c1"),
            _workflow(W2, "RUNNING", T0 + 10_000, 0),
        ],
        tasks=[
            _task(
                "t-1",
                W1,
                1,
                "a",
                "FAILED",
                sched=T0,
                start=T0 + 100,
                end=T0 + 600,
                workerId="w1",
                reasonForIncompletion="boom",
            ),
            _task(
                "t-2",
                W1,
                2,
                "a",
                "COMPLETED",
                retry=1,
                sched=T0 + 600,
                start=T0 + 700,
                end=T0 + 1700,
                workerId="w2",
                retriedTaskId="t-1",
            ),
            _task(
                "t-3",
                W1,
                3,
                "loop",
                "COMPLETED",
                sched=T0 + 1700,
                start=T0 + 1700,
                end=T0 + 4500,
                taskType="DO_WHILE",
                iteration=2,
            ),
            _task(
                "t-4",
                W1,
                4,
                "b__1",
                "COMPLETED",
                sched=T0 + 1700,
                start=T0 + 2000,
                end=T0 + 2500,
                iteration=1,
            ),
            _task(
                "t-5",
                W1,
                5,
                "b__2",
                "COMPLETED",
                sched=T0 + 2500,
                start=T0 + 3000,
                end=T0 + 4500,
                iteration=2,
            ),
            _task("t-6", W2, 1, "a", "SCHEDULED", sched=T0 + 10_000, start=0, end=0),
        ],
        transitions=[
            TransitionRow(T0, W1, None, None, None, "RUNNING", None),
            TransitionRow(T0, W1, "t-1", "a", "t1", "SCHEDULED", None),
            TransitionRow(T0 + 600, W1, "t-1", "a", "t1", "FAILED", "boom"),
            TransitionRow(T0 + 2000, W1, "t-4", "b__1", "t1", "IN_PROGRESS", None),
            TransitionRow(T0 + 4500, W1, None, None, None, "COMPLETED", None, "retry"),
        ],
        logs=[LogRow("t-2", T0 + 800, "hello")],
        poll_data=[PollDataRow("t1", "", "w2", T0 + 700)],
        task_defs=[
            TaskDefRow(
                "t1",
                orjson.dumps(
                    {"name": "t1", "retryCount": 1, "ownerEmail": "a@b.c", "createTime": T0}
                ).decode(),
            )
        ],
        workflow_defs=[
            WorkflowDefRow(
                "demo",
                2,
                orjson.dumps({"name": "demo", "version": 2, "tasks": [{}, {}], "schemaVersion": 2}).decode(),
            )
        ],
        event_executions=[
            EventExecutionRow(
                "m1_0",
                "m1",
                "h1",
                "conductor:demo:x",
                T0 + 50,
                "COMPLETED",
                "start_workflow",
                '{"workflowId": "w9"}',
            )
        ],
    )


def open_store(path: Path) -> DuckDBStore:
    s = DuckDBStore(path, durable=False)
    s.commit(history())  # left in the journal: the first read must fold it
    return s


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    """Shared by the module's tests: none of them may change it (the sandbox is read-only)."""
    s = open_store(tmp_path_factory.mktemp("sql") / "sql.duckdb")
    yield s
    s.close()


def rows(store: DuckDBStore, query: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    return run_sql(store, query, params=params).table.to_pylist()


def refused(store: DuckDBStore, query: str, *fragments: str, kind: str = "refused") -> SqlError:
    with pytest.raises(SqlError) as info:
        run_sql(store, query)
    assert info.value.kind == kind, (query, info.value.kind, info.value.message)
    assert info.value.status == 400
    for fragment in fragments:
        assert fragment in info.value.message, (query, info.value.message)
    return info.value


# ---------------------------------------------------------------------------------------------
# views: columns, types, values


def columns(store: DuckDBStore, view: str) -> list[tuple[str, str]]:
    result = run_sql(store, f"SELECT * FROM {view} LIMIT 0")
    return list(zip(result.table.column_names, result.types, strict=True))


def test_every_view_exists_with_its_documented_columns_and_types(store: DuckDBStore) -> None:
    assert VIEW_NAMES == (
        "workflows",
        "tasks",
        "transitions",
        "task_logs",
        "event_executions",
        "event_handlers",
        "task_defs",
        "workflow_defs",
        "poll_data",
    )
    wf = dict(columns(store, "workflows"))
    assert list(wf)[:11] == [
        "workflow_id",
        "name",
        "version",
        "status",
        "correlation_id",
        "parent_workflow_id",
        "priority",
        "created_at",
        "updated_at",
        "ended_at",
        "duration_s",
    ]
    assert (wf["version"], wf["priority"], wf["created_at"], wf["ended_at"], wf["duration_s"]) == (
        "INTEGER",
        "INTEGER",
        "TIMESTAMP",
        "TIMESTAMP",
        "DOUBLE",
    )
    assert (wf["input"], wf["output"], wf["variables"], wf["json"]) == ("JSON",) * 4
    assert (wf["reason"], wf["failed_task_names"]) == ("VARCHAR", "VARCHAR[]")
    tasks = dict(columns(store, "tasks"))
    for name, typ in [
        ("task_id", "VARCHAR"),
        ("workflow_id", "VARCHAR"),
        ("workflow_name", "VARCHAR"),
        ("seq", "INTEGER"),
        ("task_type", "VARCHAR"),
        ("task_def_name", "VARCHAR"),
        ("ref_name", "VARCHAR"),
        ("iteration", "INTEGER"),
        ("full_ref_name", "VARCHAR"),
        ("status", "VARCHAR"),
        ("retry_count", "INTEGER"),
        ("attempt", "INTEGER"),
        ("worker_id", "VARCHAR"),
        ("domain", "VARCHAR"),
        ("scheduled_at", "TIMESTAMP"),
        ("started_at", "TIMESTAMP"),
        ("ended_at", "TIMESTAMP"),
        ("updated_at", "TIMESTAMP"),
        ("wait_s", "DOUBLE"),
        ("run_s", "DOUBLE"),
        ("input", "JSON"),
        ("output", "JSON"),
        ("reason", "VARCHAR"),
        ("poll_count", "INTEGER"),
        ("callback_after_s", "BIGINT"),
    ]:
        assert tasks.get(name) == typ, (name, tasks.get(name))
    assert columns(store, "transitions")[:10] == [
        ("ts", "TIMESTAMP"),
        ("workflow_id", "VARCHAR"),
        ("task_id", "VARCHAR"),
        ("ref_name", "VARCHAR"),
        ("iteration", "INTEGER"),
        ("full_ref_name", "VARCHAR"),
        ("task_type", "VARCHAR"),
        ("status", "VARCHAR"),
        ("reason", "VARCHAR"),
        ("cause", "VARCHAR"),
    ]
    assert columns(store, "task_logs") == [
        ("task_id", "VARCHAR"),
        ("workflow_id", "VARCHAR"),
        ("created_at", "TIMESTAMP"),
        ("log", "VARCHAR"),
    ]
    assert columns(store, "event_executions") == [
        ("id", "VARCHAR"),
        ("message_id", "VARCHAR"),
        ("name", "VARCHAR"),
        ("event", "VARCHAR"),
        ("created_at", "TIMESTAMP"),
        ("status", "VARCHAR"),
        ("action", "VARCHAR"),
        ("output", "JSON"),
    ]
    assert dict(columns(store, "task_defs"))["json"] == "JSON"
    assert dict(columns(store, "workflow_defs"))["version"] == "INTEGER"
    # every column name is snake_case
    for view in VIEW_NAMES:
        for name, _ in columns(store, view):
            assert name == name.lower() and " " not in name, (view, name)


def test_workflow_rows_turn_epoch_ms_into_timestamps_and_durations(store: DuckDBStore) -> None:
    done, running = rows(store, "SELECT * FROM workflows ORDER BY created_at")
    assert done["workflow_id"] == W1 and done["status"] == "COMPLETED" and done["correlation_id"] == "c1"
    assert (done["name"], done["version"], done["priority"]) == ("demo", 2, 3)
    assert done["created_at"].isoformat() == "2023-11-14T22:13:20"  # UTC, naive TIMESTAMP
    assert done["ended_at"].isoformat() == "2023-11-14T22:13:24.500000"
    assert done["duration_s"] == 4.5
    assert orjson.loads(done["input"]) == {"x": 5} and orjson.loads(done["output"]) == {"y": 1}
    assert orjson.loads(done["variables"]) == {"v": True}
    assert done["failed_task_names"] == ["t1"] and done["failed_ref_names"] == ["a"]
    assert running["ended_at"] is None and running["duration_s"] is None  # still running: no end
    assert orjson.loads(running["json"])["workflowId"] == W2


def test_task_rows_strip_the_loop_suffix_and_compute_attempts_and_times(store: DuckDBStore) -> None:
    got = {r["task_id"]: r for r in rows(store, "SELECT * FROM tasks")}
    first, retry, loop, b1, b2, waiting = (got[f"t-{i}"] for i in range(1, 7))
    assert (first["ref_name"], first["iteration"], first["attempt"], first["reason"]) == ("a", 0, 1, "boom")
    assert (retry["attempt"], retry["retry_count"], retry["worker_id"]) == (2, 1, "w2")
    assert retry["retried_task_id"] == "t-1" and retry["workflow_name"] == "demo"
    assert (loop["task_type"], loop["ref_name"], loop["iteration"]) == ("DO_WHILE", "loop", 0)
    assert (b1["ref_name"], b1["iteration"], b1["full_ref_name"]) == ("b", 1, "b__1")
    assert (b2["ref_name"], b2["iteration"], b2["full_ref_name"]) == ("b", 2, "b__2")
    assert (first["wait_s"], first["run_s"]) == (0.1, 0.5)
    assert (b2["wait_s"], b2["run_s"]) == (0.5, 1.5)
    assert waiting["started_at"] is None and waiting["run_s"] is None and waiting["wait_s"] is None
    assert orjson.loads(retry["input"]) == {"x": 2} and orjson.loads(retry["output"]) == {"seq": 2}
    assert retry["poll_count"] == 1 and retry["callback_after_s"] == 0


def test_json_columns_answer_json_operators(store: DuckDBStore) -> None:
    got = rows(
        store,
        "SELECT task_id, output->>'$.seq' AS s, json_extract(input, '$.x')::INT AS x "
        "FROM tasks WHERE output->>'$.seq' IS NOT NULL ORDER BY task_id",
    )
    assert [(r["task_id"], r["s"], r["x"]) for r in got] == [(f"t-{i}", str(i), i) for i in range(1, 6)]


def test_history_views_match_their_tables(store: DuckDBStore) -> None:
    tr = rows(store, "SELECT * FROM transitions ORDER BY n")
    assert [(r["status"], r["ref_name"], r["iteration"]) for r in tr] == [
        ("RUNNING", None, 0),
        ("SCHEDULED", "a", 0),
        ("FAILED", "a", 0),
        ("IN_PROGRESS", "b", 1),
        ("COMPLETED", None, 0),
    ]
    assert tr[2]["reason"] == "boom" and tr[4]["cause"] == "retry" and tr[3]["full_ref_name"] == "b__1"
    (log,) = rows(store, "SELECT * FROM task_logs")
    assert (log["task_id"], log["workflow_id"], log["log"]) == ("t-2", W1, "hello")
    (ev,) = rows(store, "SELECT * FROM event_executions")
    assert (ev["name"], ev["action"], orjson.loads(ev["output"])) == (
        "h1",
        "start_workflow",
        {"workflowId": "w9"},
    )
    (td,) = rows(store, "SELECT * FROM task_defs")
    assert (td["name"], td["retry_count"], td["owner_email"]) == ("t1", 1, "a@b.c")
    (wd,) = rows(store, "SELECT * FROM workflow_defs")
    assert (wd["name"], wd["version"], wd["task_count"], wd["schema_version"]) == ("demo", 2, 2, 2)
    (pd,) = rows(store, "SELECT * FROM poll_data")
    assert (pd["queue_name"], pd["domain"], pd["worker_id"]) == ("t1", None, "w2")


def _scans(plan: Any) -> list[dict[str, Any]]:
    if isinstance(plan, list):
        return [s for p in plan for s in _scans(p)]
    found = [plan] if plan.get("name") == "SEQ_SCAN" else []
    return found + [s for c in plan.get("children", []) for s in _scans(c)]


def explain_scans(store: DuckDBStore, query: str) -> list[list[str]]:
    cur = store.cursor()
    try:
        plan = orjson.loads(cur.execute(f"EXPLAIN (FORMAT json) {query}").fetchall()[0][1])
    finally:
        cur.close()
    found = [s["extra_info"].get("Projections", []) for s in _scans(plan)]
    return [[p] if isinstance(p, str) else p for p in found]  # one projection comes as a plain string


def test_plain_columns_do_not_read_the_json(store: DuckDBStore) -> None:
    """Projection pushdown: views are inlined, unused JSON-derived columns are never computed."""
    (scan,) = explain_scans(store, "SELECT status, count(*), avg(run_s) FROM tasks GROUP BY 1")
    assert "json" not in scan and {"status", "start_time", "end_time"} <= set(scan)
    (scan,) = explain_scans(store, "SELECT ref_name, iteration, count(*) FROM tasks GROUP BY ALL")
    assert scan == ["ref_name"]
    (scan,) = explain_scans(store, "SELECT name, status, avg(duration_s) FROM workflows GROUP BY ALL")
    assert "json" not in scan
    (scan,) = explain_scans(store, "SELECT output->>'$.seq' FROM tasks")  # a JSON field does read it
    assert "json" in scan


def test_views_are_created_in_files_that_lack_them(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    DuckDBStore(path, durable=False).close()
    con = duckdb.connect(str(path))  # an older file: base tables only
    for view in VIEW_NAMES:
        con.execute(f"DROP VIEW {view}")
    con.close()
    with DuckDBStore(path, durable=False) as s:
        assert run_sql(s, "SELECT count(*) AS n FROM tasks").table.to_pylist() == [{"n": 0}]


def test_views_of_another_version_are_replaced(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    DuckDBStore(path, durable=False).close()
    con = duckdb.connect(str(path))  # a file written by a version with other views
    con.execute("CREATE OR REPLACE VIEW tasks AS SELECT 1 AS x")
    con.execute("UPDATE cl_meta SET value = 'older' WHERE key = 'views'")
    con.close()
    with DuckDBStore(path, durable=False) as s:
        assert "run_s" in run_sql(s, "SELECT * FROM tasks").table.column_names
    con = duckdb.connect(str(path))
    assert con.execute("SELECT value FROM cl_meta WHERE key = 'views'").fetchall() == [(VIEWS_DIGEST,)]
    con.close()


# ---------------------------------------------------------------------------------------------
# what may run


@pytest.mark.parametrize(
    "query",
    [
        "SELECT 1",
        "VALUES (1, 'a'), (2, 'b')",
        "SELECT 1 UNION ALL SELECT 2 EXCEPT SELECT 3",
        "FROM tasks SELECT status",
        "WITH w AS (SELECT * FROM workflows), t AS (SELECT * FROM tasks JOIN w USING (workflow_id)) "
        "SELECT name, count(*) FROM t GROUP BY ALL",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT sum(n) FROM r",
        "SELECT task_id, row_number() OVER (PARTITION BY workflow_id ORDER BY seq), "
        "lag(status) OVER w FROM tasks WINDOW w AS (ORDER BY seq) QUALIFY true",
        "SELECT * FROM range(3) r(i), generate_series(1, 2) g(j)",
        "SELECT * FROM unnest([1, 2]) u(x)",
        "SELECT unnest(failed_task_names) FROM workflows",
        "SELECT * FROM json_each('{\"a\": 1}')",
        "SELECT list_transform([1, 2], lambda x: x * 2), [x FOR x IN [1, 2] IF x > 1], {'a': 1}.a",
        "SELECT date_trunc('hour', created_at), strftime(created_at, '%Y'), epoch_ms(0) FROM workflows",
        "SELECT CASE WHEN status = 'FAILED' THEN 1 ELSE 0 END, COALESCE(reason, '-') FROM tasks",
        "SELECT * FROM tasks WHERE status IN (SELECT status FROM transitions) "
        "AND EXISTS (SELECT 1 FROM cl_tasks)",
        "SELECT quantile_cont(run_s, 0.9), approx_count_distinct(ref_name) FROM tasks",
        "SELECT * FROM main.tasks",
        "DESCRIBE tasks",
        "SUMMARIZE SELECT run_s FROM tasks",
        "SELECT * FROM tasks PIVOT (count(*) FOR status IN ('COMPLETED', 'FAILED') GROUP BY workflow_id)",
        "SELECT * FROM cl_workflows JOIN cl_tasks USING (workflow_id)",
        "SELECT regexp_replace(ref_name, 'a', 'b'), ref_name ILIKE 'A%', hash(task_id) FROM tasks",
    ],
)
def test_reads_of_the_surface_run(store: DuckDBStore, query: str) -> None:
    run_sql(store, query)


def test_the_documented_examples_pass_the_checks(store: DuckDBStore) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "sql.md").read_text()
    blocks = text.split("```sql")[1:]
    assert blocks, "docs/sql.md has no SQL examples"
    cur = store.cursor()
    try:
        statements = [s.query for b in blocks for s in cur.extract_statements(b.split("```")[0])]
        assert len(statements) >= 4
        for query in statements:
            sql_module.check_query(cur, query)
    finally:
        cur.close()


def test_parameters_bind_to_placeholders(store: DuckDBStore) -> None:
    got = rows(store, "SELECT task_id FROM tasks WHERE status = ? AND seq >= ? ORDER BY 1", ["COMPLETED", 3])
    assert [r["task_id"] for r in got] == ["t-3", "t-4", "t-5"]
    refused(store, "SELECT ?", "Values were not provided", kind="invalid")  # a placeholder without a value


def test_reads_see_every_committed_batch(tmp_path: Path) -> None:
    """A commit left in the journal is folded before the query runs."""
    store = open_store(tmp_path / "own.duckdb")
    assert rows(store, "SELECT count(*) AS n FROM tasks WHERE workflow_id = ?", [W2]) == [{"n": 1}]
    store.commit(Batch(tasks=[_task("t-7", W2, 2, "c", "SCHEDULED", sched=T0 + 11_000, start=0, end=0)]))
    assert rows(store, "SELECT count(*) AS n FROM tasks WHERE workflow_id = ?", [W2]) == [{"n": 2}]
    store.close()


# ---------------------------------------------------------------------------------------------
# what is refused, rule by rule


@pytest.mark.parametrize(
    ("query", "what"),
    [
        ("INSERT INTO cl_meta VALUES ('k', 'v')", "INSERT"),
        ("UPDATE cl_tasks SET status = 'X'", "UPDATE"),
        ("DELETE FROM cl_tasks", "DELETE"),
        ("CREATE TABLE x AS SELECT 1", "CREATE"),
        ("CREATE VIEW v AS SELECT 1", "CREATE"),
        ("DROP VIEW tasks", "DROP"),
        ("ALTER TABLE cl_tasks ADD COLUMN x INT", "ALTER"),
        ("ATTACH ':memory:' AS other", "ATTACH"),
        ("DETACH other", "DETACH"),
        ("EXPORT DATABASE 'dump'", "EXPORT"),
        ("IMPORT DATABASE 'dump'", "not"),
        ("PRAGMA database_list", "PRAGMA"),
        ("SET memory_limit = '10GB'", "SET"),
        ("RESET memory_limit", "SET"),
        ("INSTALL httpfs", "LOAD"),
        ("LOAD httpfs", "LOAD"),
        ("CALL pragma_version()", "CALL"),
        ("CHECKPOINT", "CALL"),
        ("VACUUM", "VACUUM"),
        ("BEGIN TRANSACTION", "TRANSACTION"),
        ("COMMIT", "TRANSACTION"),
        ("EXPLAIN SELECT 1", "EXPLAIN"),
        ("EXPLAIN ANALYZE SELECT 1", "EXPLAIN"),
        ("PREPARE p AS SELECT 1", "PREPARE"),
        ("PIVOT cl_tasks ON status", "MULTI"),
        ("USE memory", "SET"),
    ],
)
def test_statements_other_than_select_are_refused(store: DuckDBStore, query: str, what: str) -> None:
    refused(store, query, what)
    assert rows(store, "SELECT count(*) AS n FROM cl_tasks") == [{"n": 6}]  # nothing changed


def test_several_statements_are_refused(store: DuckDBStore) -> None:
    refused(store, "SELECT 1; SELECT 2", "exactly one SQL statement", "got 2")
    refused(store, "SELECT 1; DROP VIEW tasks", "exactly one SQL statement")
    assert run_sql(store, "SELECT 1;").table.num_rows == 1  # one statement with its semicolon is fine


def test_copy_to_a_file_is_refused_and_writes_nothing(store: DuckDBStore, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    refused(store, f"COPY (SELECT * FROM tasks) TO '{target}'", "COPY")
    refused(store, f"COPY cl_tasks TO '{target}' (FORMAT parquet)", "COPY")
    assert not target.exists()


@pytest.fixture
def local_csv(tmp_path: Path) -> Path:
    path = tmp_path / "secret.csv"
    path.write_text("user,password\nroot,hunter2\n")
    return path


def test_files_are_not_readable(store: DuckDBStore, local_csv: Path) -> None:
    f = str(local_csv)
    refused(store, f"SELECT * FROM read_csv('{f}')", "table function 'read_csv' is not allowed")
    refused(store, f"SELECT * FROM read_csv_auto('{f}')", "read_csv_auto")
    refused(store, f"SELECT * FROM read_text('{f}')", "read_text")
    refused(store, f"SELECT * FROM read_blob('{f}')", "read_blob")
    refused(store, f"SELECT * FROM read_json_objects('{f}')", "read_json_objects")
    refused(store, f"SELECT * FROM read_parquet('{f}')", "read_parquet")
    refused(store, f"SELECT * FROM glob('{local_csv.parent}/*')", "glob")
    refused(store, f"FROM '{f}'", "is not available here")  # a replacement scan
    refused(store, f"SELECT * FROM '{f}'", "is not available here")
    refused(store, f'SELECT * FROM "{f}"', "is not available here")
    refused(store, "SELECT * FROM '/etc/passwd'", "'/etc/passwd' is not available here")
    refused(store, "SELECT * FROM 'x.parquet'", "is not available here")
    refused(store, "SELECT * FROM 'https://example.com/x.csv'", "is not available here")
    refused(store, f"DESCRIBE '{f}'", "is not available here")
    refused(store, f"SUMMARIZE '{f}'", "is not available here")


def test_refused_tables_hide_in_subqueries_arguments_and_lambdas(store: DuckDBStore, local_csv: Path) -> None:
    f = str(local_csv)
    refused(store, f"SELECT (SELECT count(*) FROM '{f}')", "is not available here")
    refused(store, f"SELECT * FROM tasks WHERE task_id IN (SELECT user FROM read_csv('{f}'))", "read_csv")
    refused(store, f"SELECT * FROM range((SELECT count(*) FROM '{f}'))", "is not available here")
    refused(
        store, f"SELECT list_transform([1], lambda x: (SELECT count(*) FROM '{f}'))", "is not available here"
    )
    refused(store, f"WITH a AS (SELECT * FROM '{f}') SELECT * FROM a", "is not available here")
    refused(store, f"SELECT 1 UNION ALL SELECT count(*) FROM '{f}'", "is not available here")
    refused(store, f"SELECT * FROM tasks t JOIN '{f}' s ON true", "is not available here")


def test_other_tables_and_catalogs_are_refused(store: DuckDBStore) -> None:
    refused(store, "SELECT * FROM information_schema.tables", "'tables' is not available here")
    refused(store, "SELECT * FROM duckdb_tables()", "duckdb_tables")
    refused(store, "SELECT * FROM duckdb_settings()", "duckdb_settings")
    refused(store, "SELECT * FROM duckdb_secrets()", "duckdb_secrets")
    refused(store, "SELECT * FROM sql.main.tasks", "'tasks' is not available here")  # catalog-qualified
    refused(store, "SELECT * FROM temp.main.tasks", "is not available here")
    refused(store, "SELECT * FROM pg_catalog.pg_class", "is not available here")
    refused(store, "SELECT * FROM tasks AT (VERSION => 1)", "AT (time travel)")
    refused(store, "SHOW TABLES", "DESCRIBE or SUMMARIZE")
    refused(store, "SHOW ALL TABLES", "DESCRIBE or SUMMARIZE")


def test_table_functions_outside_the_allowlist_are_refused(store: DuckDBStore) -> None:
    assert TABLE_FUNCTIONS == {"range", "generate_series", "unnest", "json_each", "json_tree", "repeat"}
    refused(store, "SELECT * FROM query('SELECT 1')", "table function 'query' is not allowed")
    refused(store, "SELECT * FROM query_table('tasks')", "query_table")
    refused(store, "SELECT * FROM sniff_csv('/etc/passwd')", "sniff_csv")
    refused(store, "SELECT * FROM json_execute_serialized_sql('{}')", "json_execute_serialized_sql")
    refused(store, "SELECT * FROM pragma_version()", "pragma_version")
    refused(store, "SELECT * FROM checkpoint()", "checkpoint")
    refused(store, "SELECT * FROM enable_logging()", "enable_logging")
    refused(store, "SELECT * FROM histogram(tasks, status)", "histogram")


def test_scalar_functions_that_touch_the_outside_are_refused(store: DuckDBStore) -> None:
    refused(store, "SELECT current_setting('home_directory')", "function 'current_setting' is not allowed")
    refused(store, "SELECT getvariable('x')", "getvariable")
    refused(store, "SELECT getenv('HOME')", "getenv")  # not in this DuckDB's function list at all
    refused(store, "SELECT nextval('s')", "nextval")
    refused(store, "SELECT setseed(0.5)", "setseed")
    refused(store, "SELECT write_log('x')", "write_log")
    refused(
        store, "SELECT json_serialize_plan('SELECT * FROM read_csv(''/etc/passwd'')')", "json_serialize_plan"
    )
    refused(store, "SELECT read_text('/etc/passwd')", "read_text")  # a table function called as a scalar
    refused(store, "SELECT system.main.current_setting('threads')", "current_setting")
    refused(store, "SELECT sql.main.upper('x')", "upper")  # functions of other catalogs


def test_the_function_allowlist_holds_nothing_that_reads_the_outside() -> None:
    cur = duckdb.connect()
    names = allowed_functions(cur)
    assert {"upper", "count_star", "sum", "row_number", "json_extract", "epoch_ms", "->>", "unnest"} <= names
    assert not names & DENIED_FUNCTIONS
    table_functions = {
        r[0]
        for r in cur.execute(
            "SELECT function_name FROM duckdb_functions() "
            "WHERE function_type IN ('table', 'table_macro', 'pragma')"
        ).fetchall()
    }
    # names that are also scalar or aggregate functions; as table functions they stay refused
    assert not (names & table_functions) - {
        "unnest",
        "range",
        "generate_series",
        "repeat",
        "version",
        "histogram",
    }
    for bad in ("getenv", "read_text", "read_blob", "read_csv", "glob", "query", "current_setting", "setval"):
        assert bad not in names


def test_cte_names_only_count_where_they_are_in_scope(store: DuckDBStore) -> None:
    # a CTE of a subquery does not cover the same name outside it
    refused(store, "SELECT * FROM (WITH secret AS (SELECT 1) SELECT * FROM secret), secret", "'secret'")
    # a CTE does not see itself unless it is recursive, nor the CTEs after it
    refused(store, "WITH secret AS (SELECT * FROM secret) SELECT * FROM secret", "'secret'")
    refused(store, "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a", "'b'")
    # the anchor of a recursive CTE does not see it either
    refused(store, "WITH RECURSIVE r AS (SELECT * FROM r UNION ALL SELECT * FROM r) SELECT * FROM r", "'r'")
    # names that could be files are no CTE names
    refused(store, 'WITH "x.csv" AS (SELECT 1) SELECT * FROM "x.csv"', "plain identifiers")
    assert rows(store, "WITH a AS (SELECT 1 AS x), b AS (SELECT x + 1 AS y FROM a) SELECT y FROM b") == [
        {"y": 2}
    ]


def test_python_variables_are_never_scanned(store: DuckDBStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Second layer: with the checker switched off, DuckDB's Python replacement scan is still off."""
    leak = pa.table({"secret": ["hunter2"]})
    cur = store.cursor()
    try:  # the mechanism exists: a plain cursor finds this frame's variable
        assert cur.sql("SELECT * FROM leak").fetchall() == [("hunter2",)]
    finally:
        cur.close()
    monkeypatch.setattr(sql_module, "leak", leak, raising=False)  # a global of the frame that runs the query
    monkeypatch.setattr(sql_module, "check_query", lambda cur, query: None)
    err = refused(store, "SELECT * FROM leak", "leak", kind="invalid")
    assert "does not exist" in err.message


def test_writes_fail_in_the_read_only_transaction(
    store: DuckDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Third layer: with the checker switched off, a write still fails and changes nothing."""
    monkeypatch.setattr(sql_module, "check_query", lambda cur, query: None)
    refused(store, "CREATE TABLE cl_stolen AS SELECT 1", "read-only", kind="error")
    refused(store, "DELETE FROM cl_tasks", "read-only", kind="error")
    monkeypatch.undo()
    assert rows(store, "SELECT count(*) AS n FROM cl_tasks") == [{"n": 6}]


def test_constructs_the_walker_does_not_know_are_refused() -> None:
    walker = sql_module._Walker(frozenset({"upper"}))
    select = {
        "type": "SELECT_NODE",
        "cte_map": {"map": []},
        "select_list": [],
        "from_table": {"type": "EMPTY"},
    }
    walker.statement({"node": select})
    with pytest.raises(SqlError, match="construct the sandbox does not allow"):
        walker.statement({"node": {**select, "from_table": {"type": "SOME_NEW_TABLE_REF"}}})
    with pytest.raises(SqlError, match="expression the sandbox does not allow"):
        walker.statement({"node": {**select, "select_list": [{"class": "SOME_NEW_EXPRESSION"}]}})
    with pytest.raises(SqlError, match="only a SELECT"):
        walker.statement({"node": {"type": "SOME_NEW_NODE"}})
    with pytest.raises(SqlError, match="function 'lower'"):
        walker.statement(
            {"node": {**select, "select_list": [{"class": "FUNCTION", "function_name": "lower"}]}}
        )


def test_syntax_and_binder_errors_carry_duckdbs_message(store: DuckDBStore) -> None:
    err = refused(store, "SELEC 1", "syntax error", kind="invalid")
    assert "Traceback" not in err.message
    refused(store, "SELECT nope FROM tasks", "Binder Error", "nope", kind="invalid")
    refused(store, "SELECT * FROM tasks WHERE status = 1 + 'x'", kind="invalid")
    refused(store, "SELECT CAST('x' AS INTEGER)", "Conversion Error", kind="error")
    refused(store, "SELECT error('my own message')", "my own message", kind="invalid")
    with pytest.raises(InvalidInput, match="non-empty"):
        run_sql(store, "   ")


# ---------------------------------------------------------------------------------------------
# limits


def test_row_limit_truncates_and_says_so(store: DuckDBStore) -> None:
    r = run_sql(store, "SELECT * FROM range(1000000) r(i)", max_rows=1000)
    assert r.table.num_rows == 1000 and r.truncated
    assert r.table.column("i").to_pylist() == list(range(1000))
    exact = run_sql(store, "SELECT * FROM range(1000)", max_rows=1000)
    assert exact.table.num_rows == 1000 and not exact.truncated
    none = run_sql(store, "SELECT * FROM range(5) r(i)", max_rows=0)
    assert none.table.num_rows == 0 and none.truncated and none.table.column_names == ["i"]


def test_byte_limit_truncates_and_says_so(store: DuckDBStore) -> None:
    r = run_sql(store, "SELECT repeat('x', 1000) AS s FROM range(100000)", max_bytes=200_000)
    assert r.truncated and 0 < r.table.num_rows < 200
    assert r.table.get_total_buffer_size() <= 200_000


def test_slow_query_stops_at_the_time_limit(store: DuckDBStore) -> None:
    with pytest.raises(SqlError) as info:
        run_sql(store, "SELECT count(*) FROM range(1000000000000)", timeout_s=0.3)
    assert info.value.kind == "timeout" and info.value.message == "query exceeded the 0.3 s limit"
    with pytest.raises(SqlError, match="exceeded the 0.3 s limit"):
        run_sql(store, "SELECT sleep_ms(60000)", timeout_s=0.3)
    assert rows(store, "SELECT 1 AS one") == [{"one": 1}]  # the store is fine afterwards


def test_a_running_query_can_be_cancelled_from_another_thread(store: DuckDBStore) -> None:
    cancel = Cancel()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            run_sql(store, "SELECT count(*) FROM range(1000000000000)", cancel=cancel)
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            outcome.append(e)

    t = threading.Thread(target=run)
    t.start()
    wait_until(lambda: cancel._cursor is not None, what="query running")
    cancel.cancel()
    t.join(10)
    assert not t.is_alive()
    assert isinstance(outcome[0], SqlError) and outcome[0].kind == "cancelled"


def test_queries_run_from_many_threads_at_once(store: DuckDBStore) -> None:
    results: list[int] = []
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            got = run_sql(store, "SELECT count(*) + ? AS n FROM tasks", params=[i]).table.to_pylist()
            results.append(got[0]["n"] - i)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and results == [6] * 8


# ---------------------------------------------------------------------------------------------
# answers


def test_json_answer_shapes_values(store: DuckDBStore) -> None:
    r = run_sql(
        store,
        "SELECT workflow_id, created_at, ended_at, input, duration_s, failed_task_names, "
        "1.25::DECIMAL(5,2) AS d, 'ab'::BLOB AS b, 170141183460469231731687303715884105727::HUGEINT "
        "AS h, DATE '2024-01-02' AS day FROM workflows ORDER BY created_at",
    )
    body = r.to_json()
    assert [c["type"] for c in body["columns"]][:6] == [
        "VARCHAR",
        "TIMESTAMP",
        "TIMESTAMP",
        "JSON",
        "DOUBLE",
        "VARCHAR[]",
    ]
    first = body["rows"][0]
    assert first[:6] == [W1, "2023-11-14T22:13:20Z", "2023-11-14T22:13:24.500000Z", {"x": 5}, 4.5, ["t1"]]
    assert first[6:] == [1.25, "YWI=", "170141183460469231731687303715884105727", "2024-01-02"]
    assert body["rows"][1][2] is None and body["truncated"] is False and body["elapsedMs"] >= 0
    orjson.dumps(body)  # serialisable as is


def test_arrow_answer_carries_types_and_limits(store: DuckDBStore) -> None:
    r = run_sql(store, "SELECT task_id, output FROM tasks", max_rows=2)
    table = pa.ipc.open_stream(r.to_ipc()).read_all()
    assert table.num_rows == 2 and table.schema.field("output").metadata == {b"duckdb.type": b"JSON"}
    assert table.schema.metadata[b"truncated"] == b"true"


def test_request_limits_are_capped_by_the_server_maxima() -> None:
    req = SqlRequest.from_json(
        {"query": "SELECT 1", "maxRows": 10**9, "timeoutSeconds": 999}, max_rows=50, timeout_s=5
    )
    assert (req.max_rows, req.timeout_s, req.params) == (50, 5.0, None)
    assert SqlRequest.from_json({"query": "SELECT ?", "params": [1]}).params == [1]
    for bad in (
        {"query": ""},
        {"query": 1},
        {"query": "SELECT 1", "params": "x"},
        {"query": "SELECT 1", "maxRows": -1},
        {"query": "SELECT 1", "maxRows": True},
        {"query": "SELECT 1", "timeoutSeconds": 0},
    ):
        with pytest.raises(InvalidInput):
            SqlRequest.from_json(bad)
