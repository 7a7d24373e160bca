"""Schema versions of the DuckDB store and the migrations between them.

A store file records its schema version in ``cl_meta`` (key ``schema_version``). Opening a file:

* a new (empty) file gets the current schema and ``SCHEMA_VERSION``;
* an older one is migrated in place: every step from its version to the current one runs in ONE
  transaction (with the version update), so a crash or an error leaves the file as it was; the log
  says ``migrated <file> from schema version N to M``;
* a newer one (written by a later conductor_lab) is refused with :class:`NewerSchemaError`;
* a DuckDB file with tables but no ``cl_meta`` is not a conductor_lab store: refused with
  :class:`NotAStoreError` (nothing is created in it).

Each step is frozen once released: it says in literal SQL what changed at that version, never
"whatever the current tables look like", so a file of any version reaches exactly today's schema
(``tests/unit/test_store_migrations.py`` compares a migrated file's columns with a new file's and
runs the workflows of fixture files of every version to completion).

Versions:

1. The schema of 2c7d962: ``cl_meta``, ``cl_journal``, ``cl_workflows``, ``cl_tasks``,
   ``cl_snapshots``, ``cl_transitions``, ``cl_task_logs``, ``cl_poll_data``, ``cl_task_defs``,
   ``cl_workflow_defs``. Later commits up to 67434fa added to it in place while still labelling
   the file 1 (``cl_transitions.cause``, ``cl_tasks.task_def_name`` / ``workflow_type``,
   ``cl_event_handlers``, ``cl_event_executions``): step 1 -> 2 therefore applies to any of them.
2. Those additions, under their own number (9ee1d66).
3. ``cl_archive_batches``: the batches of workflows moved to the Parquet archive (retention,
   ``archive.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

__all__ = ["SCHEMA_VERSION", "MIGRATIONS", "NewerSchemaError", "NotAStoreError", "migrate"]

#: The schema version this code writes.
SCHEMA_VERSION = 3

VERSION_KEY = "schema_version"

Step = Callable[[duckdb.DuckDBPyConnection], None]


class NewerSchemaError(RuntimeError):
    """The file was written by a newer conductor_lab (a higher schema version than this code knows)."""


class NotAStoreError(RuntimeError):
    """A DuckDB database that is not a conductor_lab store (tables, but no ``cl_meta``)."""


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    rows = con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND table_name = ?",
        [table],
    ).fetchall()
    return {r[0] for r in rows}


def _v1_to_v2(con: duckdb.DuckDBPyConnection) -> None:
    """Transition causes, task search columns, event handlers and their executions."""
    con.execute("ALTER TABLE cl_transitions ADD COLUMN IF NOT EXISTS cause VARCHAR")
    have = _columns(con, "cl_tasks")
    for col, expr in (
        ("task_def_name", "json_extract_string(json, '$.taskDefName')"),
        ("workflow_type", "json_extract_string(json, '$.workflowType')"),
    ):
        if col not in have:
            con.execute(f"ALTER TABLE cl_tasks ADD COLUMN {col} VARCHAR")
            con.execute(f"UPDATE cl_tasks SET {col} = {expr}")
    con.execute(
        "CREATE TABLE IF NOT EXISTS cl_event_handlers "
        "(name VARCHAR, event VARCHAR, active BOOLEAN, json VARCHAR, PRIMARY KEY (name))"
    )
    con.execute(
        "CREATE TABLE IF NOT EXISTS cl_event_executions (id VARCHAR, message_id VARCHAR, name VARCHAR, "
        "event VARCHAR, created BIGINT, status VARCHAR, action VARCHAR, output VARCHAR)"
    )


def _v2_to_v3(con: duckdb.DuckDBPyConnection) -> None:
    """The Parquet archive's batches (one row per batch moved out of the tables)."""
    con.execute(
        "CREATE TABLE cl_archive_batches (batch_id BIGINT, day VARCHAR, workflows INTEGER, files VARCHAR, "
        "archived_at BIGINT, PRIMARY KEY (batch_id))"
    )


#: ``MIGRATIONS[n]`` takes a file from version n to n + 1.
MIGRATIONS: dict[int, Step] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
}


def migrate(con: duckdb.DuckDBPyConnection, path: str, create: Step) -> int | None:
    """Bring the open file to ``SCHEMA_VERSION`` inside the caller's transaction (the caller
    logs the migration once its COMMIT is through).

    ``create`` makes the current schema in a new file. Returns the version the file had (None for
    a new file). Raises :class:`NewerSchemaError` / :class:`NotAStoreError` before changing anything.
    """
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main'"
    ).fetchall()}  # fmt: skip
    if "cl_meta" not in tables:
        if tables:
            raise NotAStoreError(
                f"{path} is a DuckDB database but not a conductor_lab store (it has tables, and no cl_meta)"
            )
        create(con)
        con.execute("INSERT INTO cl_meta VALUES (?, ?)", [VERSION_KEY, str(SCHEMA_VERSION)])
        return None
    row = con.execute("SELECT value FROM cl_meta WHERE key = ?", [VERSION_KEY]).fetchone()
    found = int(row[0]) if row is not None else 1
    if found > SCHEMA_VERSION:
        raise NewerSchemaError(
            f"{path} was written by a newer conductor_lab (schema version {found}; this one reads up to "
            f"{SCHEMA_VERSION}): upgrade conductor_lab to open it"
        )
    if found == SCHEMA_VERSION:
        return found
    for version in range(found, SCHEMA_VERSION):
        MIGRATIONS[version](con)
    con.execute("DELETE FROM cl_meta WHERE key = ?", [VERSION_KEY])
    con.execute("INSERT INTO cl_meta VALUES (?, ?)", [VERSION_KEY, str(SCHEMA_VERSION)])
    return found
