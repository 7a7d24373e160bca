"""Search as SQL over the execution tables (``cl_workflows``, ``cl_tasks``): no separate index.

A ``SearchQuery`` (conductor-oss's SQL-index syntax, parsed by ``engine/search.py``) becomes ONE
parameterised WHERE clause over the tables' columns; values are always bound, never spliced in.
Fields map as conductor-oss's ``workflow_index`` / ``task_index`` columns do (camelCase ->
snake_case, see ``WORKFLOW_FIELDS`` and ``TASK_FIELDS``); unknown fields are ignored, as there.

How a page is read (measured on 1,000,000 workflows / 3,000,000 tasks, ``bench/search.py``): in
one read transaction, (1) ``count(*)`` with the filters (only the filtered columns are scanned),
(2) the page's ``rowid``s, ordered and cut with ``LIMIT``/``OFFSET`` (DuckDB's top-N over the
sort columns only), (3) the page's JSON fetched by ``rowid`` (a direct fetch, ~1-2 ms). Reading
the JSON inside the ordered query instead fetched it for every row that passed the pushed-down
filters (``status IN (...)`` is not pushed down: 50,000 JSON values for a page of 100, ~30 ms).
With ``freeText`` the JSON must be scanned anyway; then the matches (rowid and sort keys) are
materialised once and both the count and the page come from them, so the JSON is scanned once.

Archived runs (``archive.py``: Parquet files behind the views ``cl_archive_workflows`` and
``cl_archive_tasks``, same columns) are searched too once a batch exists (``page_union``): the same
WHERE over the table UNION ALL the archive (aliased as the table, so every field expression
applies), the page's rows named by rowid (table) or by key (archive), then fetched from each.

``freeText`` is ``json ILIKE '%text%'`` (case-insensitive, ``%`` and ``_`` taken literally). When
the text holds a run of ASCII characters that have no case (digits, punctuation: ``-4242`` in
``cust-4242``), ``contains(json, run)`` runs first: an exact substring test is about twice as
fast as ILIKE, and a case-insensitive match must contain the run verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import duckdb

from conductor_lab.engine.store.base import SearchQuery
from conductor_lab.errors import InvalidInput

__all__ = [
    "TASK_FIELDS",
    "WORKFLOW_FIELDS",
    "Compiled",
    "compile_query",
    "fetch_archived",
    "fetch_by_rowid",
    "page_rowids",
    "page_union",
]

_SNAKE = re.compile(r"\B([A-Z])")

#: a workflow's classifier (conductor-oss ``WorkflowClassifier.classifierOf``: the definition's
#: ``metadata.classifier`` when a non-blank string, ``agent`` for agent definitions, else
#: ``workflow``), read from the definition snapshot the execution runs
_CLASSIFIER = (
    "(SELECT CASE"
    " WHEN json_type(s.json, '$.metadata.classifier') = 'VARCHAR'"
    " AND trim(json_extract_string(s.json, '$.metadata.classifier')) <> ''"
    " THEN json_extract_string(s.json, '$.metadata.classifier')"
    " WHEN coalesce(json_type(s.json, '$.metadata.agent_sdk'), 'NULL') <> 'NULL'"
    " OR coalesce(json_type(s.json, '$.metadata.agentDef'), 'NULL') <> 'NULL' THEN 'agent'"
    " ELSE 'workflow' END FROM cl_snapshots s WHERE s.snapshot_id = cl_workflows.snapshot_id)"
)

#: conductor-oss field (snake_case) -> (SQL expression over cl_workflows, DuckDB type)
WORKFLOW_FIELDS: dict[str, tuple[str, str]] = {
    "workflow_id": ("workflow_id", "VARCHAR"),
    "correlation_id": ("correlation_id", "VARCHAR"),
    "workflow_type": ("workflow_name", "VARCHAR"),
    "status": ("status", "VARCHAR"),
    "start_time": ("create_time", "BIGINT"),
    "end_time": ("end_time", "BIGINT"),  # 0 until the workflow ends (upstream: the epoch)
    "update_time": ("update_time", "BIGINT"),
    "parent_workflow_id": ("coalesce(parent_workflow_id, '')", "VARCHAR"),  # "" for top-level, as upstream
    "classifier": (_CLASSIFIER, "VARCHAR"),
    "json_data": ("json", "VARCHAR"),
    "version": ("workflow_version", "INTEGER"),  # not in conductor-oss's index
}

#: conductor-oss field (snake_case) -> (SQL expression over cl_tasks, DuckDB type)
TASK_FIELDS: dict[str, tuple[str, str]] = {
    "task_id": ("task_id", "VARCHAR"),
    "task_type": ("task_type", "VARCHAR"),
    "task_def_name": ("task_def_name", "VARCHAR"),
    "status": ("status", "VARCHAR"),
    "start_time": ("start_time", "BIGINT"),
    "end_time": ("end_time", "BIGINT"),
    "update_time": ("update_time", "BIGINT"),
    "workflow_type": ("workflow_type", "VARCHAR"),
    "json_data": ("json", "VARCHAR"),
    "workflow_id": ("workflow_id", "VARCHAR"),  # not in conductor-oss's task index
    "scheduled_time": ("scheduled_time", "BIGINT"),  # not in conductor-oss's task index
}

_CASELESS_RUN = re.compile(r"[\x20-\x40\x5b-\x60\x7b-\x7e]{3,}")  # ASCII, neither letter nor control


def _snake(name: str) -> str:
    return _SNAKE.sub(r"_\1", name).lower()


def _coerce(fld: str, typ: str, value: Any) -> Any:
    if typ == "VARCHAR":
        return value if isinstance(value, str) else str(value)
    if isinstance(value, bool):
        raise InvalidInput(f"search: {fld} needs an integer, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"search: {fld} needs an integer, got {value!r}") from None


def _like_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Compiled:
    """A search as SQL pieces: ``where`` (with its ``params``) and the ORDER BY ``terms``
    (``(expression, "ASC" | "DESC")``, ending with the key)."""

    __slots__ = ("free_text", "params", "terms", "where")

    def __init__(self, where: str, params: list[Any], terms: list[tuple[str, str]], free_text: bool) -> None:
        self.where = where
        self.params = params
        self.terms = terms
        self.free_text = free_text

    @property
    def order(self) -> str:
        return ", ".join(f"{expr} {direction}" for expr, direction in self.terms)


def compile_query(
    query: SearchQuery, fields: dict[str, tuple[str, str]], *, key: str, default_order: str
) -> Compiled:
    """The WHERE and ORDER BY of ``query`` over a table described by ``fields``."""
    where: list[str] = []
    params: list[Any] = []
    for fld, op, value in query.clauses:
        mapped = fields.get(_snake(fld))
        if mapped is None:
            continue  # unknown fields are ignored (as the SQL index does)
        expr, typ = mapped
        o = op.strip().upper()
        if o == "IN":
            values = list(value) if isinstance(value, list | tuple | set | frozenset) else [value]
            if not values:
                where.append("FALSE")
                continue
            where.append(f"{expr} IN ({', '.join('?' for _ in values)})")
            params.extend(_coerce(fld, typ, v) for v in values)
        elif o in ("=", ">", "<"):
            if value is None:
                if o != "=":
                    raise InvalidInput(f"search: {fld} {op} needs a value")
                where.append(f"{expr} IS NULL")
            else:
                where.append(f"{expr} {o} ?::{typ}")
                params.append(_coerce(fld, typ, value))
        elif o == "LIKE":  # SQLite index: lower(col) LIKE lower(?), '*' already turned into '%'
            col = expr if typ == "VARCHAR" else f"CAST({expr} AS VARCHAR)"
            where.append(f"lower({col}) LIKE lower(?)")
            params.append(str(value))
        else:
            raise InvalidInput(f"search: unsupported operator {op!r} for {fld}")
    text = query.free_text or ""
    free = text.strip() not in ("", "*")
    if free:
        pattern = f"%{_like_literal(text)}%"
        runs = _CASELESS_RUN.findall(text)
        if runs:  # CASE: DuckDB may reorder the terms of an AND; the cheap test must run first
            where.append("CASE WHEN contains(json, ?) THEN json ILIKE ? ESCAPE '\\' ELSE false END")
            params += [max(runs, key=len), pattern]
        else:
            where.append("json ILIKE ? ESCAPE '\\'")
            params.append(pattern)

    terms: list[tuple[str, str]] = []
    seen: set[str] = set()
    for fld, ascending in query.sort:
        mapped = fields.get(_snake(fld))
        if mapped is None or mapped[0] in seen:
            continue  # unknown sort fields are ignored (as the SQL index does)
        seen.add(mapped[0])
        terms.append((mapped[0], "ASC" if ascending else "DESC"))
    if not terms:
        terms.append((default_order, "ASC"))
        seen.add(default_order)
    if key not in seen:
        terms.append((key, "ASC"))  # a total order: stable pages
    return Compiled(" AND ".join(where) or "TRUE", params, terms, free)


def page_rowids(
    cur: duckdb.DuckDBPyConnection, table: str, c: Compiled, start: int, size: int
) -> tuple[int, list[int]]:
    """(matches, the page's rowids in order). Call inside a transaction, then fetch by rowid."""
    start, size = max(0, int(start)), max(0, int(size))
    if c.free_text and size > 0:
        # one scan of the JSON: the matches' rowids and sort keys, then count and page from them
        # (``count(*) OVER ()`` over the scan instead made DuckDB scan on one thread: ~2x slower)
        keys = ", ".join(f"{expr} AS _k{i}" for i, (expr, _) in enumerate(c.terms))
        order = ", ".join(f"_k{i} {direction}" for i, (_, direction) in enumerate(c.terms))
        rows = cur.execute(
            f"WITH _m AS MATERIALIZED (SELECT rowid AS _r, {keys} FROM {table} WHERE {c.where}) "
            f"SELECT _r, (SELECT count(*) FROM _m) FROM _m ORDER BY {order} LIMIT ? OFFSET ?",
            [*c.params, size, start],
        ).fetchall()
        if rows:
            return int(rows[0][1]), [int(r[0]) for r in rows]
    row = cur.execute(f"SELECT count(*) FROM {table} WHERE {c.where}", c.params).fetchone()
    total = int(row[0]) if row else 0
    if size == 0 or start >= total:
        return total, []
    rows = cur.execute(
        f"SELECT rowid FROM {table} WHERE {c.where} ORDER BY {c.order} LIMIT ? OFFSET ?",
        [*c.params, size, start],
    ).fetchall()
    return total, [int(r[0]) for r in rows]


def fetch_by_rowid(
    cur: duckdb.DuckDBPyConnection, table: str, columns: str, rowids: Sequence[int]
) -> list[tuple[Any, ...]]:
    """``columns`` of the rows ``rowids``, in that order (same transaction as ``page_rowids``)."""
    if not rowids:
        return []
    rows = cur.execute(f"SELECT rowid, {columns} FROM {table} WHERE rowid = ANY(?::BIGINT[])", [list(rowids)])
    by_id = {int(r[0]): tuple(r[1:]) for r in rows.fetchall()}
    return [by_id[r] for r in rowids if r in by_id]


def page_union(
    cur: duckdb.DuckDBPyConnection, table: str, archive: str, key: str, c: Compiled, start: int, size: int
) -> tuple[int, list[tuple[int | None, Any]]]:
    """``page_rowids`` over ``table`` UNION ALL ``archive``: (matches, the page in order as
    ``(rowid, None)`` for a row of the table, ``(None, key)`` for an archived one)."""
    start, size = max(0, int(start)), max(0, int(size))
    keys = ", ".join(f"{expr} AS _k{i}" for i, (expr, _) in enumerate(c.terms))
    order = ", ".join(f"_k{i} {direction}" for i, (_, direction) in enumerate(c.terms))
    src = (
        f"SELECT rowid AS _r, NULL AS _a, {keys} FROM {table} WHERE {c.where} "
        f"UNION ALL SELECT NULL AS _r, {key} AS _a, {keys} FROM {archive} AS {table} WHERE {c.where}"
    )
    params = [*c.params, *c.params]
    if c.free_text and size > 0:  # one scan of the JSON, as in page_rowids
        rows = cur.execute(
            f"WITH _m AS MATERIALIZED ({src}) "
            f"SELECT _r, _a, (SELECT count(*) FROM _m) FROM _m ORDER BY {order} LIMIT ? OFFSET ?",
            [*params, size, start],
        ).fetchall()
        if rows:
            return int(rows[0][2]), [(r[0], r[1]) for r in rows]
    row = cur.execute(
        f"SELECT (SELECT count(*) FROM {table} WHERE {c.where}) "
        f"+ (SELECT count(*) FROM {archive} AS {table} WHERE {c.where})",
        params,
    ).fetchone()
    total = int(row[0]) if row else 0
    if size == 0 or start >= total:
        return total, []
    rows = cur.execute(
        f"SELECT _r, _a FROM ({src}) ORDER BY {order} LIMIT ? OFFSET ?", [*params, size, start]
    ).fetchall()
    return total, [(r[0], r[1]) for r in rows]


def fetch_archived(
    cur: duckdb.DuckDBPyConnection, archive: str, key: str, columns: str, keys: Sequence[Any]
) -> dict[Any, tuple[Any, ...]]:
    """``columns`` of the archived rows whose ``key`` is in ``keys`` (key -> row)."""
    ids = sorted(set(keys))
    if not ids:
        return {}
    # the bounds let Parquet row-group statistics skip most of the files (each is sorted by key)
    rows = cur.execute(
        f"SELECT {key}, {columns} FROM {archive} WHERE {key} >= ? AND {key} <= ? "
        f"AND {key} IN ({', '.join('?' for _ in ids)})",
        [ids[0], ids[-1], *ids],
    ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}
