"""Schema versions: fixture files written by every earlier version open, migrate in place, and their
running workflows complete on today's code; newer files and foreign DuckDB files are refused.

The fixtures (``tests/fixtures/stores/*.duckdb.gz``) were written by the code of their version,
driven over REST by ``tests/fixtures/stores/make_fixture.py`` (its docstring says what each
workflow is). ``v1-2c7d962``: the first versioned schema; ``v1-67434fa``: the last code that
labelled its files 1 while adding to them in place; ``v2-9ee1d66``: version 2.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from conductor_lab.engine.store import migrations
from conductor_lab.engine.store.duckdb import DuckDBStore
from conductor_lab.engine.store.migrations import SCHEMA_VERSION, NewerSchemaError, NotAStoreError
from tests.conftest import ServerProcess, wait_until

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "stores"
FIXTURE_FILES = sorted(FIXTURES.glob("*.duckdb.gz"))
TERMINAL = {"COMPLETED", "FAILED", "TIMED_OUT", "TERMINATED"}


def _unpack(fixture: Path, dest: Path) -> tuple[Path, dict[str, Any]]:
    db = dest / fixture.name.removesuffix(".gz")
    with gzip.open(fixture, "rb") as src, open(db, "wb") as out:
        shutil.copyfileobj(src, out)
    manifest = json.loads((FIXTURES / fixture.name.replace(".duckdb.gz", ".json")).read_text())
    return db, manifest


def _version(db: Path) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute("SELECT value FROM cl_meta WHERE key = 'schema_version'").fetchone()
        assert row is not None
        return int(row[0])
    finally:
        con.close()


def _columns(db: Path) -> dict[str, list[tuple[str, str]]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE schema_name = 'main' AND table_name LIKE 'cl_%' ORDER BY table_name, column_index"
        ).fetchall()
    finally:
        con.close()
    out: dict[str, list[tuple[str, str]]] = {}
    for table, col, typ in rows:
        out.setdefault(table, []).append((col, typ))
    return out


def test_there_is_a_fixture_of_every_version() -> None:
    versions = {int(json.loads(p.read_text())["schema_version"]) for p in FIXTURES.glob("*.json")}
    assert versions >= set(range(1, SCHEMA_VERSION)), f"fixtures of versions {sorted(versions)}"
    assert sorted(migrations.MIGRATIONS) == list(range(1, SCHEMA_VERSION))


@pytest.mark.parametrize("fixture", FIXTURE_FILES, ids=lambda p: p.name.removesuffix(".duckdb.gz"))
def test_migrated_file_has_the_schema_of_a_new_one(
    fixture: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db, manifest = _unpack(fixture, tmp_path)
    found = _version(db)
    assert found == manifest["schema_version"]
    with caplog.at_level("INFO", logger="conductor_lab.engine.store.duckdb"):
        DuckDBStore(db).close()
    assert _version(db) == SCHEMA_VERSION
    migrated = [r.getMessage() for r in caplog.records if "migrated" in r.getMessage()]
    if found < SCHEMA_VERSION:
        assert migrated == [f"migrated {db} from schema version {found} to {SCHEMA_VERSION}"]
    else:
        assert migrated == []
    fresh = tmp_path / "fresh.duckdb"
    DuckDBStore(fresh).close()
    assert _columns(db) == _columns(fresh)


def _complete(api: httpx.Client, task: dict[str, Any]) -> None:
    value = (task["inputData"].get("n") or task["inputData"].get("prev") or 0) * 10 + 1
    r = api.post(
        "/tasks",
        json={
            "workflowInstanceId": task["workflowInstanceId"],
            "taskId": task["taskId"],
            "status": "COMPLETED",
            "outputData": {"value": value},
        },
    )
    assert r.status_code == 200, r.text


@pytest.fixture(params=FIXTURE_FILES, ids=lambda p: p.name.removesuffix(".duckdb.gz"))
def old_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ServerProcess, dict[str, Any]]]:
    db, manifest = _unpack(request.param, tmp_path)
    proc = ServerProcess(db, log_dir=tmp_path)
    proc.start()
    try:
        yield proc, manifest
    finally:
        proc.stop()


def test_running_workflows_of_an_old_file_complete(old_server: tuple[ServerProcess, dict[str, Any]]) -> None:
    proc, manifest = old_server
    roles = {role: wid for wid, role in manifest["workflows"].items()}
    api = httpx.Client(base_url=proc.api, timeout=30)

    def wf(wid: str) -> dict[str, Any]:
        r = api.get(f"/workflow/{wid}", params={"includeTasks": "true"})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    # what the old version finished is intact
    done = wf(roles["completed"])
    assert done["status"] == "COMPLETED" and done["output"] == {"a": 10, "b": 11}
    assert wf(roles["terminated"])["reasonForIncompletion"] == "fixture"
    second = wf(roles["second"])
    assert [(t["referenceTaskName"], t["status"]) for t in second["tasks"]] == [("a", "COMPLETED"), ("b", "SCHEDULED")]
    assert second["tasks"][1]["inputData"] == {"prev": 20}
    held = wf(roles["in_progress"])["tasks"][0]
    assert (held["taskId"], held["status"], held["workerId"]) == (manifest["in_progress_task"], "IN_PROGRESS", "fx-worker")

    # a verb on a finished workflow of the old file
    assert api.post(f"/workflow/{roles['terminated']}/restart").status_code == 204
    # the task polled by the old version's worker is completed by id; the rest is polled
    _complete(api, held | {"inputData": {"n": 3}})
    running = [roles[r] for r in ("second", "in_progress", "scheduled", "terminated")]

    def step() -> bool:
        for task_type in ("fx_a", "fx_b"):
            r = api.get(f"/tasks/poll/batch/{task_type}", params={"count": 10, "timeout": 10, "workerid": "new"})
            assert r.status_code == 200, r.text
            for task in r.json():
                _complete(api, task)
        return all(wf(w)["status"] in TERMINAL for w in running)

    wait_until(step, timeout=60, what="the old file's workflows finish")
    outputs = {role: wf(roles[role]) for role in ("second", "in_progress", "scheduled", "terminated")}
    assert {role: w["status"] for role, w in outputs.items()} == dict.fromkeys(outputs, "COMPLETED")
    assert outputs["second"]["output"] == {"a": 20, "b": 201}
    assert outputs["in_progress"]["output"] == {"a": 31, "b": 311}
    assert outputs["scheduled"]["output"] == {"a": 51, "b": 511}
    assert outputs["terminated"]["output"] == {"a": 41, "b": 411}

    # search and the SQL views see old and new rows alike
    r = api.get("/workflow/search", params={"query": "workflowType IN (fx_flow)", "size": 20})
    assert r.status_code == 200 and r.json()["totalHits"] == 5, r.text
    r = api.post(
        "/lab/sql",
        json={"query": "SELECT task_def_name, count(*) AS n FROM tasks GROUP BY 1 ORDER BY 1"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [["fx_a", 5], ["fx_b", 5]]  # the restart replaced its tasks
    api.close()


def test_a_newer_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "newer.duckdb"
    DuckDBStore(db).close()
    con = duckdb.connect(str(db))
    con.execute("UPDATE cl_meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    con.close()
    with pytest.raises(NewerSchemaError, match=r"written by a newer conductor_lab \(schema version \d+; this one"):
        DuckDBStore(db)
    assert _version(db) == SCHEMA_VERSION + 1


def test_a_foreign_duckdb_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "analytics.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE sales (id INTEGER)")
    con.close()
    with pytest.raises(NotAStoreError, match="not a conductor_lab store"):
        DuckDBStore(db)
    con = duckdb.connect(str(db), read_only=True)
    tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
    con.close()
    assert tables == ["sales"]


def test_a_failing_migration_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db, _ = _unpack(FIXTURES / "v1-2c7d962.duckdb.gz", tmp_path)
    before = _columns(db)
    real = migrations.MIGRATIONS[1]

    def half(con: duckdb.DuckDBPyConnection) -> None:
        real(con)  # every change of the step is made, then the step fails
        raise RuntimeError("disk full")

    monkeypatch.setitem(migrations.MIGRATIONS, 1, half)
    with pytest.raises(RuntimeError, match="disk full"):
        DuckDBStore(db)
    assert _version(db) == 1 and _columns(db) == before
    monkeypatch.setitem(migrations.MIGRATIONS, 1, real)
    DuckDBStore(db).close()
    assert _version(db) == SCHEMA_VERSION
