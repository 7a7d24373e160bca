"""The documented SQL surface over the DuckDB store: views with TIMESTAMP, duration and JSON columns.

The base tables (``cl_*``) are shaped for the engine (epoch-millisecond integers, the whole Task or
Workflow JSON as text, ``ref__N`` for loop iterations) and may change between versions. These
views are the stable surface for people: the notebook's SQL history, ``run_sql`` and
``POST /api/lab/sql``. See ``docs/sql.md`` for every column.

* Column names are snake_case; times are ``TIMESTAMP`` (UTC, from epoch ms; NULL while unset,
  e.g. ``ended_at`` of a running workflow); durations are seconds (``DOUBLE``).
* JSON payloads are DuckDB ``JSON`` values (``input``, ``output``, ``variables``, ``json``), so
  ``output->>'$.amount'`` and ``json_extract`` work on them directly.
* Views are inlined into the query that uses them, so a query that names only plain columns
  never reads, let alone parses, the JSON text (projection pushdown; ``tests/unit/test_sql_sandbox``
  checks the plan). Fields read out of the JSON cost one parse per row and per field when used.
* ``tasks.ref_name`` is the ``taskReferenceName`` of the definition node: the ``__N`` suffix
  that DO_WHILE iterations carry is stripped into ``iteration`` (0 outside loops);
  ``full_ref_name`` keeps the stored name. As conductor-oss's ``TaskUtils``, the suffix is read
  from the name alone, so a reference name that itself ends in ``__<digits>`` reads as an iteration.

* ``workflows``, ``tasks``, ``transitions`` and ``task_logs`` read the table UNION ALL its archive
  (``archive.py``: the Parquet files of finished workflows moved out by ``--archive-after``; a
  view ``cl_archive_*`` per table, an empty select over the table while no file exists), so
  archived runs stay in every query. A workflow is in exactly one of the two.

``create_views`` runs at every open of the store, inside the schema transaction: files written
by older versions (or with other view definitions) get the current views (``CREATE OR REPLACE
VIEW``); a file that has them already is left alone (a fingerprint in ``cl_meta``).
"""

from __future__ import annotations

import hashlib

import duckdb

from conductor_lab.engine.store.archive import placeholder_views

__all__ = ["VIEWS", "VIEWS_DIGEST", "VIEW_NAMES", "create_views"]


def _ts(column: str) -> str:
    """Epoch ms -> TIMESTAMP; 0 (unset) -> NULL."""
    return f"epoch_ms(nullif({column}, 0))"


def _secs(later: str, earlier: str) -> str:
    """Seconds between two epoch-ms columns; NULL unless both are set."""
    return f"CASE WHEN {later} > 0 AND {earlier} > 0 THEN ({later} - {earlier}) / 1000.0 END"


def _str(doc: str, field: str) -> str:
    return f"json_extract_string({doc}, '$.{field}')"


def _json(doc: str, field: str) -> str:
    return f"json_extract({doc}, '$.{field}')"


def _int(doc: str, field: str, typ: str = "INTEGER") -> str:
    return f"CAST(json_extract({doc}, '$.{field}') AS {typ})"


def _ref(column: str) -> tuple[str, str]:
    """(taskReferenceName without the loop suffix, the iteration) from a stored ``ref__N``.

    ``contains`` first: most names have no ``__`` and skip the regular expressions.
    """
    name = (
        f"CASE WHEN contains({column}, '__') THEN regexp_replace({column}, '__[0-9]+$', '') ELSE {column} END"
    )
    iteration = (
        f"CASE WHEN contains({column}, '__') "
        f"THEN coalesce(TRY_CAST(regexp_extract({column}, '__([0-9]+)$', 1) AS INTEGER), 0) ELSE 0 END"
    )
    return name, iteration


_TASK_REF, _TASK_ITERATION = _ref("t.ref_name")
_TRANSITION_REF, _TRANSITION_ITERATION = _ref("x.ref_name")

WORKFLOWS_SQL = f"""
SELECT
    w.workflow_id,
    w.workflow_name AS name,
    w.workflow_version AS version,
    w.status,
    w.correlation_id,
    w.parent_workflow_id,
    w.priority,
    epoch_ms(w.create_time) AS created_at,
    {_ts("w.update_time")} AS updated_at,
    {_ts("w.end_time")} AS ended_at,
    {_secs("w.end_time", "w.create_time")} AS duration_s,
    {_json("w.json", "input")} AS input,
    {_json("w.json", "output")} AS output,
    {_json("w.json", "variables")} AS variables,
    {_str("w.json", "reasonForIncompletion")} AS reason,
    CAST({_json("w.json", "failedTaskNames")} AS VARCHAR[]) AS failed_task_names,
    CAST({_json("w.json", "failedReferenceTaskNames")} AS VARCHAR[]) AS failed_ref_names,
    {_str("w.json", "parentWorkflowTaskId")} AS parent_workflow_task_id,
    {_str("w.json", "reRunFromWorkflowId")} AS rerun_from_workflow_id,
    {_json("w.json", "taskToDomain")} AS task_to_domain,
    {_str("w.json", "event")} AS event,
    {_str("w.json", "createdBy")} AS created_by,
    {_str("w.json", "ownerApp")} AS owner_app,
    {_ts(_int("w.json", "lastRetriedTime", "BIGINT"))} AS last_retried_at,
    w.snapshot_id,
    CAST(w.json AS JSON) AS json
FROM (SELECT * FROM cl_workflows UNION ALL BY NAME SELECT * FROM cl_archive_workflows) AS w
"""

TASKS_SQL = f"""
SELECT
    t.task_id,
    t.workflow_id,
    t.workflow_type AS workflow_name,
    t.seq,
    t.task_type,
    t.task_def_name,
    {_TASK_REF} AS ref_name,
    {_TASK_ITERATION} AS iteration,
    t.ref_name AS full_ref_name,
    t.status,
    t.retry_count,
    t.retry_count + 1 AS attempt,
    {_str("t.json", "workerId")} AS worker_id,
    t.domain,
    {_ts("t.scheduled_time")} AS scheduled_at,
    {_ts("t.start_time")} AS started_at,
    {_ts("t.end_time")} AS ended_at,
    {_ts("t.update_time")} AS updated_at,
    {_secs("t.start_time", "t.scheduled_time")} AS wait_s,
    {_secs("t.end_time", "t.start_time")} AS run_s,
    {_json("t.json", "inputData")} AS input,
    {_json("t.json", "outputData")} AS output,
    {_str("t.json", "reasonForIncompletion")} AS reason,
    {_int("t.json", "pollCount")} AS poll_count,
    {_int("t.json", "callbackAfterSeconds", "BIGINT")} AS callback_after_s,
    {_str("t.json", "correlationId")} AS correlation_id,
    CAST({_json("t.json", "retried")} AS BOOLEAN) AS retried,
    {_str("t.json", "retriedTaskId")} AS retried_task_id,
    {_str("t.json", "subWorkflowId")} AS sub_workflow_id,
    {_str("t.json", "parentTaskId")} AS parent_task_id,
    {_int("t.json", "startDelayInSeconds", "BIGINT")} AS start_delay_s,
    {_int("t.json", "responseTimeoutSeconds", "BIGINT")} AS response_timeout_s,
    {_int("t.json", "workflowPriority")} AS workflow_priority,
    CAST(t.json AS JSON) AS json
FROM (SELECT * FROM cl_tasks UNION ALL BY NAME SELECT * FROM cl_archive_tasks) AS t
"""

TRANSITIONS_SQL = f"""
SELECT
    epoch_ms(x.ts) AS ts,
    x.workflow_id,
    x.task_id,
    {_TRANSITION_REF} AS ref_name,
    {_TRANSITION_ITERATION} AS iteration,
    x.ref_name AS full_ref_name,
    x.task_type,
    x.status,
    x.reason,
    x.cause,
    x.n
FROM (SELECT *, rowid AS n FROM cl_transitions UNION ALL BY NAME SELECT * FROM cl_archive_transitions) AS x
"""

TASK_LOGS_SQL = """
SELECT
    l.task_id,
    t.workflow_id,
    epoch_ms(l.created_time) AS created_at,
    l.log
FROM (SELECT task_id, created_time, log FROM cl_task_logs
      UNION ALL SELECT task_id, created_time, log FROM cl_archive_task_logs) AS l
LEFT JOIN (SELECT task_id, workflow_id FROM cl_tasks
           UNION ALL SELECT task_id, workflow_id FROM cl_archive_tasks) AS t ON t.task_id = l.task_id
"""

EVENT_EXECUTIONS_SQL = """
SELECT
    e.id,
    e.message_id,
    e.name,
    e.event,
    epoch_ms(e.created) AS created_at,
    e.status,
    e.action,
    CAST(e.output AS JSON) AS output
FROM cl_event_executions AS e
"""

EVENT_HANDLERS_SQL = f"""
SELECT
    h.name,
    h.event,
    h.active,
    {_str("h.json", "condition")} AS condition,
    {_json("h.json", "actions")} AS actions,
    CAST(h.json AS JSON) AS json
FROM cl_event_handlers AS h
"""

TASK_DEFS_SQL = f"""
SELECT
    d.name,
    {_str("d.json", "description")} AS description,
    {_str("d.json", "ownerEmail")} AS owner_email,
    {_int("d.json", "retryCount")} AS retry_count,
    {_str("d.json", "retryLogic")} AS retry_logic,
    {_int("d.json", "retryDelaySeconds", "BIGINT")} AS retry_delay_s,
    {_int("d.json", "timeoutSeconds", "BIGINT")} AS timeout_s,
    {_str("d.json", "timeoutPolicy")} AS timeout_policy,
    {_int("d.json", "responseTimeoutSeconds", "BIGINT")} AS response_timeout_s,
    {_int("d.json", "pollTimeoutSeconds", "BIGINT")} AS poll_timeout_s,
    {_int("d.json", "concurrentExecLimit")} AS concurrent_exec_limit,
    {_int("d.json", "rateLimitPerFrequency")} AS rate_limit_per_frequency,
    {_int("d.json", "rateLimitFrequencyInSeconds")} AS rate_limit_frequency_s,
    {_ts(_int("d.json", "createTime", "BIGINT"))} AS created_at,
    {_ts(_int("d.json", "updateTime", "BIGINT"))} AS updated_at,
    CAST(d.json AS JSON) AS json
FROM cl_task_defs AS d
"""

WORKFLOW_DEFS_SQL = f"""
SELECT
    d.name,
    d.version,
    {_str("d.json", "description")} AS description,
    {_str("d.json", "ownerEmail")} AS owner_email,
    {_int("d.json", "schemaVersion")} AS schema_version,
    CAST({_json("d.json", "restartable")} AS BOOLEAN) AS restartable,
    {_int("d.json", "timeoutSeconds", "BIGINT")} AS timeout_s,
    {_str("d.json", "timeoutPolicy")} AS timeout_policy,
    {_str("d.json", "failureWorkflow")} AS failure_workflow,
    CAST(json_array_length(d.json, '$.tasks') AS INTEGER) AS task_count,
    {_ts(_int("d.json", "createTime", "BIGINT"))} AS created_at,
    {_ts(_int("d.json", "updateTime", "BIGINT"))} AS updated_at,
    CAST(d.json AS JSON) AS json
FROM cl_workflow_defs AS d
"""

POLL_DATA_SQL = """
SELECT
    p.queue_name,
    nullif(p.domain, '') AS domain,
    p.worker_id,
    epoch_ms(nullif(p.last_poll_time, 0)) AS last_poll_at
FROM cl_poll_data AS p
"""

#: view name -> its SELECT, in documentation order
VIEWS: dict[str, str] = {
    "workflows": WORKFLOWS_SQL,
    "tasks": TASKS_SQL,
    "transitions": TRANSITIONS_SQL,
    "task_logs": TASK_LOGS_SQL,
    "event_executions": EVENT_EXECUTIONS_SQL,
    "event_handlers": EVENT_HANDLERS_SQL,
    "task_defs": TASK_DEFS_SQL,
    "workflow_defs": WORKFLOW_DEFS_SQL,
    "poll_data": POLL_DATA_SQL,
}

VIEW_NAMES: tuple[str, ...] = tuple(VIEWS)


#: fingerprint of the view definitions, kept in ``cl_meta`` under ``views``
VIEWS_DIGEST = hashlib.sha1("\n".join(f"{n}\n{q}" for n, q in VIEWS.items()).encode()).hexdigest()


def create_views(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)create every view unless the file already has these very views (~10 ms saved per open).

    The caller holds the schema transaction; ``cl_meta`` exists. The archive's views are created
    first where missing (empty selects; the store points them at its Parquet files once open).
    """
    placeholder_views(con)
    row = con.execute("SELECT value FROM cl_meta WHERE key = 'views'").fetchone()
    present = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND list_contains(?::VARCHAR[], view_name)",
        [list(VIEWS)],
    ).fetchone()
    if row is not None and row[0] == VIEWS_DIGEST and present is not None and present[0] == len(VIEWS):
        return
    for name, select in VIEWS.items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {select.strip()}")
    con.execute("INSERT OR REPLACE INTO cl_meta VALUES ('views', ?)", [VIEWS_DIGEST])
