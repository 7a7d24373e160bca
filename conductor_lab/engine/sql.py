"""Read-only SQL over the store's history: one SELECT, checked with DuckDB's own parser, run with limits.

``run_sql(store, query)`` is what the notebook Lab calls from its own thread and what
``POST /api/lab/sql`` runs on a thread of its own (``services/sql.py``). It answers a
``pyarrow.Table`` in a :class:`SqlResult`. The surface is the documented views
(``store/duckdb_views.py``, ``docs/sql.md``) and the ``cl_*`` base tables.

What a query may do, checked before it runs (fail closed: what the checker does not know is refused):

1. Exactly one statement, and DuckDB's parser calls it a SELECT (``WITH ... SELECT``, set
   operations, ``VALUES``, ``DESCRIBE``/``SUMMARIZE`` of a query): ``extract_statements``.
2. The parse tree (``json_serialize_sql``) is walked in full. Every table it names must be a
   documented view, a ``cl_*`` table or a CTE of the query in scope (this is what stops
   replacement scans such as ``FROM '/etc/passwd'`` or ``FROM 'x.parquet'``); every table
   function must be in :data:`TABLE_FUNCTIONS` (``read_csv``, ``glob``, ``query`` ... are not);
   every function must be one of DuckDB's built-in scalar, aggregate, window or macro functions
   minus :data:`DENIED_FUNCTIONS` (settings, variables, sequences, logging, SQL execution).
   Node kinds the walker has not been taught (a new DuckDB construct) are refused.
3. It runs on a fresh cursor of the store (the journal is folded first, so it sees every
   acknowledged change) inside a ``READ ONLY`` transaction that is rolled back, with Python
   replacement scans off: a write the walker missed would still fail.

Limits: at most ``max_rows`` rows (fetched as a record-batch stream, one row more to know the
result was cut: ``truncated``), at most ``max_bytes`` of Arrow data, and ``timeout_s`` of
wall time, after which a timer thread interrupts the cursor. Errors are :class:`SqlError`
(an ``InvalidInput``, HTTP 400) carrying DuckDB's own message for syntax and binder errors.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import re
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import duckdb
import orjson
import pyarrow as pa

from conductor_lab.engine.store.duckdb import ALL_TABLES
from conductor_lab.engine.store.duckdb_views import VIEW_NAMES
from conductor_lab.errors import InvalidInput

__all__ = [
    "ARROW_STREAM",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_ROWS",
    "DEFAULT_TIMEOUT_S",
    "DENIED_FUNCTIONS",
    "TABLE_FUNCTIONS",
    "Cancel",
    "SqlError",
    "SqlRequest",
    "SqlResult",
    "allowed_functions",
    "check_query",
    "run_sql",
]

ARROW_STREAM = "application/vnd.apache.arrow.stream"

DEFAULT_MAX_ROWS = 100_000
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_BYTES = 256 * 1024 * 1024

#: rows per Arrow record batch: the granularity of the row and byte limits
_BATCH_ROWS = 8192

#: what a query may read: the documented views and the engine's base tables
TABLES: frozenset[str] = frozenset(VIEW_NAMES) | frozenset(t.name for t in ALL_TABLES)

#: table functions that only compute (no files, network, catalog or settings)
TABLE_FUNCTIONS: frozenset[str] = frozenset(
    {"range", "generate_series", "unnest", "json_each", "json_tree", "repeat"}
)

#: built-in functions refused although they are scalar: they read settings or variables, change
#: sequences or the random seed, write to DuckDB's log, or parse/plan/run SQL given as a string
DENIED_FUNCTIONS: frozenset[str] = frozenset(
    {
        "current_setting",
        "getvariable",
        "nextval",
        "currval",
        "setval",
        "setseed",
        "write_log",
        "json_execute_serialized_sql",
        "json_serialize_plan",
        "json_serialize_sql",
        "json_deserialize_sql",
    }
)

#: functions the parser emits that duckdb_functions() lists as table functions
_SPECIAL_FUNCTIONS = frozenset({"unnest", "unlist"})

#: built-in function sets taken from duckdb_functions() (core, json, icu); others are refused
_FUNCTION_EXTENSIONS = ("", "core_functions", "json", "icu")

_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE"})
_TABLE_REFS = frozenset(
    {"BASE_TABLE", "TABLE_FUNCTION", "SHOW_REF", "JOIN", "SUBQUERY", "EMPTY", "EXPRESSION_LIST", "PIVOT"}
)
_EXPRESSIONS = frozenset(
    {
        "BETWEEN",
        "CASE",
        "CAST",
        "COLLATE",
        "COLUMN_REF",
        "COMPARISON",
        "CONJUNCTION",
        "CONSTANT",
        "FUNCTION",
        "LAMBDA",
        "OPERATOR",
        "PARAMETER",
        "POSITIONAL_REFERENCE",
        "STAR",
        "SUBQUERY",
        "TYPE",
        "WINDOW",
    }
)
#: other typed parts of a tree: result modifiers and sort orders
_PLAIN = frozenset(
    {
        "ORDER_MODIFIER",
        "LIMIT_MODIFIER",
        "LIMIT_PERCENT_MODIFIER",
        "DISTINCT_MODIFIER",
        "ASCENDING",
        "DESCENDING",
        "ORDER_DEFAULT",
    }
)
_SHOW = frozenset({"DESCRIBE", "SUMMARY"})
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FUNCTION_SCHEMAS = frozenset({"", "main", "pg_catalog"})
_FUNCTION_CATALOGS = frozenset({"", "system"})

#: DuckDB errors that mean "this query is wrong" rather than "it failed while running"
_INVALID = (
    duckdb.ParserException,
    duckdb.BinderException,
    duckdb.CatalogException,
    duckdb.InvalidInputException,
)

ErrorKind = Literal["refused", "invalid", "error", "timeout", "cancelled"]


class SqlError(InvalidInput):
    """A query refused by the sandbox, rejected by DuckDB, stopped by a limit or cancelled (HTTP 400).

    ``kind``: ``refused`` (sandbox rule), ``invalid`` (syntax or binder error), ``error`` (failed
    while running), ``timeout``, ``cancelled``.
    """

    def __init__(self, message: str, *, kind: ErrorKind) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind


def _refuse(message: str) -> SqlError:
    return SqlError(message, kind="refused")


# ---------------------------------------------------------------------------------------------
# the result


@dataclass(frozen=True, slots=True)
class SqlResult:
    """Rows as Arrow; ``types`` are the DuckDB types of the columns (also each field's
    ``duckdb.type`` metadata), ``truncated`` says a row or byte limit cut the result."""

    table: pa.Table
    truncated: bool
    elapsed_s: float
    types: tuple[str, ...]

    @property
    def elapsed_ms(self) -> float:
        return round(self.elapsed_s * 1000.0, 3)

    def to_json(self) -> dict[str, Any]:
        """``{"columns": [{"name", "type"}], "rows": [[...]], "truncated", "elapsedMs"}``.

        Timestamps become ISO-8601 strings (``Z`` for DuckDB's UTC ``TIMESTAMP``), JSON columns
        are embedded as JSON values, decimals as numbers, blobs as base64, huge integers as text.
        """
        names = self.table.column_names
        columns = [
            _json_column(col.to_pylist(), typ)
            for col, typ in zip(self.table.columns, self.types, strict=True)
        ]
        rows = [list(r) for r in zip(*columns, strict=True)] if columns else []
        return {
            "columns": [{"name": n, "type": t} for n, t in zip(names, self.types, strict=True)],
            "rows": rows,
            "truncated": self.truncated,
            "elapsedMs": self.elapsed_ms,
        }

    def to_json_bytes(self) -> bytes:
        """:meth:`to_json`, encoded."""
        return orjson.dumps(self.to_json())

    def to_ipc(self) -> bytes:
        """The table as an Arrow IPC stream; ``truncated`` and ``elapsedMs`` ride in the schema metadata."""
        meta = dict(self.table.schema.metadata or {})
        meta[b"truncated"] = b"true" if self.truncated else b"false"
        meta[b"elapsedMs"] = str(self.elapsed_ms).encode()
        table = self.table.replace_schema_metadata(meta)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return bytes(sink.getvalue().to_pybytes())


def _json_column(values: list[Any], duckdb_type: str) -> list[Any]:
    if duckdb_type == "JSON":
        return [None if v is None else orjson.loads(v) for v in values]
    if duckdb_type in ("HUGEINT", "UHUGEINT"):  # Arrow carries them as decimal128(38, 0)
        return [None if v is None else _plain(int(v)) for v in values]
    if all(
        v is None or type(v) in (str, bool, float) or (type(v) is int and -(2**63) <= v < 2**64)
        for v in values
    ):
        return values
    return [_plain(v) for v in values]


def _plain(value: Any) -> Any:
    """One Arrow value (``to_pylist``) as a JSON-ready value."""
    if value is None or isinstance(value, str | bool | float):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.isoformat() + "Z"
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, pa.MonthDayNano):
        return {"months": value.months, "days": value.days, "nanoseconds": value.nanoseconds}
    return str(value)


# ---------------------------------------------------------------------------------------------
# the wire form of a call (POST /api/lab/sql)


@dataclass(frozen=True, slots=True)
class SqlRequest:
    """``{"query", "params"?, "maxRows"?, "timeoutSeconds"?}``; limits are capped by the server's maxima."""

    query: str
    params: list[Any] | None = None
    max_rows: int = DEFAULT_MAX_ROWS
    timeout_s: float = DEFAULT_TIMEOUT_S

    @classmethod
    def from_json(
        cls,
        body: Mapping[str, Any],
        *,
        max_rows: int = DEFAULT_MAX_ROWS,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> SqlRequest:
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            raise InvalidInput("query must be a non-empty string holding one SQL SELECT")
        params = body.get("params")
        if params is not None and not isinstance(params, list):
            raise InvalidInput("params must be an array of values for the query's ? placeholders")
        rows = body.get("maxRows")
        if rows is None:
            rows = max_rows
        elif isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
            raise InvalidInput("maxRows must be a non-negative integer")
        seconds = body.get("timeoutSeconds")
        if seconds is None:
            seconds = timeout_s
        elif isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
            raise InvalidInput("timeoutSeconds must be a positive number")
        return cls(query, params, min(rows, max_rows), min(float(seconds), timeout_s))


# ---------------------------------------------------------------------------------------------
# checking a query


_functions_lock = threading.Lock()
_functions: frozenset[str] | None = None


def allowed_functions(cur: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """Function names a query may call: DuckDB's built-in scalar, aggregate, window and macro
    functions of the core, json and icu sets, minus :data:`DENIED_FUNCTIONS`.

    Read from ``duckdb_functions()`` once per process, so extensions loaded later add nothing.
    """
    global _functions
    with _functions_lock:
        if _functions is None:
            marks = ", ".join("?" for _ in _FUNCTION_EXTENSIONS)
            rows = cur.execute(
                "SELECT DISTINCT lower(function_name) FROM duckdb_functions() "
                "WHERE database_name = 'system' AND internal "
                "AND function_type IN ('scalar', 'aggregate', 'window', 'macro') "
                f"AND coalesce(extension_name, '') IN ({marks})",
                list(_FUNCTION_EXTENSIONS),
            ).fetchall()
            _functions = (frozenset(r[0] for r in rows) | _SPECIAL_FUNCTIONS) - DENIED_FUNCTIONS
        return _functions


def check_query(cur: duckdb.DuckDBPyConnection, query: str) -> None:
    """Raise :class:`SqlError` unless ``query`` is one SELECT that only reads the allowed surface."""
    try:
        statements = cur.extract_statements(query)
    except duckdb.Error as e:
        raise SqlError(str(e), kind="invalid") from None
    except ValueError as e:  # a statement type this duckdb module has no name for
        raise _refuse(f"only a SELECT can run here ({e})") from None
    if len(statements) != 1:
        raise _refuse(f"exactly one SQL statement is allowed, got {len(statements)}")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise _refuse(f"only a SELECT can run here, not {kind.name}")
    row = cur.execute("SELECT json_serialize_sql(?)", [query]).fetchone()
    tree = orjson.loads(row[0]) if row else None
    if not isinstance(tree, dict) or tree.get("error") is not False:
        message = tree.get("error_message") if isinstance(tree, dict) else None
        raise _refuse(f"the query could not be checked: {message or 'unknown parser answer'}")
    parsed = tree.get("statements")
    if not isinstance(parsed, list) or len(parsed) != 1 or not isinstance(parsed[0], dict):
        raise _refuse("exactly one SQL statement is allowed")
    _Walker(allowed_functions(cur)).statement(parsed[0])


class _Walker:
    """Walks a ``json_serialize_sql`` tree: every table, table function and function is checked."""

    def __init__(self, functions: frozenset[str]) -> None:
        self.functions = functions

    def statement(self, statement: Mapping[str, Any]) -> None:
        node = statement.get("node")
        if not isinstance(node, dict) or node.get("type") not in _NODES:
            raise _refuse("only a SELECT can run here")
        self.visit(statement, frozenset())

    def visit(self, value: Any, scope: frozenset[str]) -> None:
        """Any part of the tree; ``scope`` holds the (lower-case) CTE names visible here."""
        if isinstance(value, list):
            for item in value:
                self.visit(item, scope)
            return
        if not isinstance(value, dict):
            return
        if "class" in value:
            self.expression(value, scope)
            return
        kind = value.get("type")
        if isinstance(kind, str):
            if kind in _NODES:
                self.query_node(value, scope)
                return
            if kind in _TABLE_REFS:
                self.table_ref(value, scope)
                return
            if kind not in _PLAIN:
                raise _refuse(f"the query uses a construct the sandbox does not allow ({kind})")
        for item in value.values():
            self.visit(item, scope)

    def query_node(self, node: Mapping[str, Any], scope: frozenset[str]) -> None:
        inner = scope
        cte_map = node.get("cte_map") or {}
        entries = cte_map.get("map") if isinstance(cte_map, dict) else None
        for entry in entries or ():
            name = entry.get("key") if isinstance(entry, dict) else None
            if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
                raise _refuse(f"CTE names must be plain identifiers, not {name!r}")
            # a CTE sees the CTEs before it; only a recursive one sees itself (in its recursive part)
            value = entry.get("value")
            body = value.get("query_node") if isinstance(value, dict) else None
            recursive = isinstance(body, dict) and body.get("type") == "RECURSIVE_CTE_NODE"
            self.visit(value, inner | {name.lower()} if recursive else inner)
            inner = inner | {name.lower()}
        if node.get("type") == "RECURSIVE_CTE_NODE":
            name = node.get("cte_name")
            own = frozenset({name.lower()}) if isinstance(name, str) else frozenset()
            for key, item in node.items():
                if key != "cte_map":
                    self.visit(item, inner - own if key == "left" else inner)
            return
        for key, item in node.items():
            if key != "cte_map":
                self.visit(item, inner)

    def table_ref(self, ref: Mapping[str, Any], scope: frozenset[str]) -> None:
        kind = ref["type"]
        if kind == "BASE_TABLE":
            self.base_table(ref, scope)
        elif kind == "TABLE_FUNCTION":
            fn = ref.get("function")
            if not isinstance(fn, dict) or fn.get("class") != "FUNCTION":
                raise _refuse("the query uses a table function the sandbox does not allow")
            name = fn.get("function_name")
            if (
                not isinstance(name, str)
                or name.lower() not in TABLE_FUNCTIONS
                or fn.get("schema") or fn.get("catalog")
            ):  # fmt: skip
                raise _refuse(
                    f"table function {name!r} is not allowed (allowed: {', '.join(sorted(TABLE_FUNCTIONS))})"
                )
            for key, item in fn.items():
                if key != "class":
                    self.visit(item, scope)
            for key, item in ref.items():
                if key != "function":
                    self.visit(item, scope)
            return
        elif kind == "SHOW_REF":
            if (
                ref.get("show_type") not in _SHOW
                or not isinstance(ref.get("query"), dict)
                or ref.get("table_name")
            ):
                raise _refuse("only DESCRIBE or SUMMARIZE of a query or an allowed table can run here")
        for item in ref.values():
            self.visit(item, scope)

    def base_table(self, ref: Mapping[str, Any], scope: frozenset[str]) -> None:
        name = ref.get("table_name")
        schema = ref.get("schema_name") or ""
        catalog = ref.get("catalog_name") or ""
        if not isinstance(name, str) or not isinstance(schema, str) or not isinstance(catalog, str):
            raise _refuse("the query names a table the sandbox cannot check")
        if ref.get("at_clause") is not None:
            raise _refuse("AT (time travel) clauses are not allowed")
        low = name.lower()
        if not schema and not catalog and low in scope:
            return  # a CTE of the query
        if not catalog and schema.lower() in ("", "main") and low in TABLES:
            return
        raise _refuse(
            f"table {name!r} is not available here: query the views ({', '.join(VIEW_NAMES)}) "
            "or the cl_* tables (docs/sql.md)"
        )

    def expression(self, expr: Mapping[str, Any], scope: frozenset[str]) -> None:
        cls = expr["class"]
        if cls not in _EXPRESSIONS:
            raise _refuse(f"the query uses an expression the sandbox does not allow ({cls})")
        if cls in ("FUNCTION", "WINDOW"):
            self.function(expr)
        for key, item in expr.items():
            if key != "class":
                self.visit(item, scope)

    def function(self, expr: Mapping[str, Any]) -> None:
        name = expr.get("function_name")
        schema = expr.get("schema") or ""
        catalog = expr.get("catalog") or ""
        if not isinstance(name, str) or not isinstance(schema, str) or not isinstance(catalog, str):
            raise _refuse("the query calls a function the sandbox cannot check")
        if (
            name.lower() not in self.functions
            or schema.lower() not in _FUNCTION_SCHEMAS
            or (catalog.lower() not in _FUNCTION_CATALOGS)
        ):
            raise _refuse(f"function {name!r} is not allowed here")


# ---------------------------------------------------------------------------------------------
# running a query


class Cancel:
    """Stops a running :func:`run_sql` from another thread (server shutdown, a notebook's stop button).

    One per call. DuckDB forgets an interrupt that arrives before its statement starts, so once
    stopped the cursor is interrupted again every ``_REPEAT_S`` until the run lets go of it.
    """

    _REPEAT_S = 0.05

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cursor: duckdb.DuckDBPyConnection | None = None
        self.reason: ErrorKind | None = None

    def cancel(self) -> None:
        self._stop("cancelled")

    def _stop(self, reason: ErrorKind) -> None:
        with self._lock:
            if self.reason is None:
                self.reason = reason
            if self._cursor is None:
                return
            self._cursor.interrupt()
        again = threading.Timer(self._REPEAT_S, self._stop, args=(reason,))
        again.daemon = True
        again.start()

    def _attach(self, cur: duckdb.DuckDBPyConnection) -> None:
        with self._lock:
            self._cursor = cur
            stopped = self.reason
        if stopped is not None:
            self._stop(stopped)

    def _detach(self) -> None:
        with self._lock:
            self._cursor = None  # from here on an interrupt would hit the cursor's next statement


@dataclass
class _Fetched:
    batches: list[pa.RecordBatch] = field(default_factory=list)
    rows: int = 0
    nbytes: int = 0
    truncated: bool = False


def run_sql(
    store: Any,
    query: str,
    *,
    params: Sequence[Any] | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_bytes: int = DEFAULT_MAX_BYTES,
    cancel: Cancel | None = None,
) -> SqlResult:
    """Check ``query`` (see the module docstring), run it read-only on ``store`` and return the rows.

    Thread-safe: every call has its own cursor. ``store`` is a ``DuckDBStore`` (or anything with
    its ``cursor()``). Blocks for up to ``timeout_s``; call it off the event loop.
    """
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput("query must be a non-empty string holding one SQL SELECT")
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 0:
        raise InvalidInput("max_rows must be a non-negative integer")
    if not timeout_s > 0:
        raise InvalidInput("timeout_s must be positive")
    if params is not None and (isinstance(params, str | bytes) or not isinstance(params, Sequence)):
        raise InvalidInput("params must be a list of values for the query's ? placeholders")
    opener = getattr(store, "cursor", None)
    if not callable(opener):
        raise InvalidInput(f"SQL needs the DuckDB store, not {type(store).__name__}")
    started = time.monotonic()
    guard = cancel or Cancel()
    cur: duckdb.DuckDBPyConnection = opener()
    timer = threading.Timer(timeout_s, guard._stop, args=("timeout",))
    timer.daemon = True
    try:
        cur.execute("SET python_enable_replacements = false")  # this cursor only: no DataFrame scans
        check_query(cur, query)
        cur.execute("BEGIN TRANSACTION READ ONLY")
        guard._attach(cur)
        timer.start()
        try:
            types, fetched, schema = _execute(
                cur, query, list(params) if params is not None else None, max_rows, max_bytes
            )
        except (duckdb.Error, pa.ArrowException, OSError) as e:
            guard._detach()
            if guard.reason == "timeout":
                raise SqlError(f"query exceeded the {timeout_s:g} s limit", kind="timeout") from None
            if guard.reason == "cancelled":
                raise SqlError("query was cancelled", kind="cancelled") from None
            kind: ErrorKind = "invalid" if isinstance(e, _INVALID) else "error"
            raise SqlError(_message(e), kind=kind) from None
        guard._detach()
    finally:
        timer.cancel()
        guard._detach()
        try:
            cur.execute("ROLLBACK")
        except duckdb.Error:
            pass  # no transaction open (the check refused the query) or it already ended
        cur.close()
    fields = [f.with_metadata({b"duckdb.type": t.encode()}) for f, t in zip(schema, types, strict=True)]
    table = pa.Table.from_batches(fetched.batches, schema=pa.schema(fields))
    return SqlResult(table, fetched.truncated, time.monotonic() - started, types)


def _execute(
    cur: duckdb.DuckDBPyConnection, query: str, params: list[Any] | None, max_rows: int, max_bytes: int
) -> tuple[tuple[str, ...], _Fetched, pa.Schema]:
    """Run the checked query and stream at most ``max_rows`` rows / ``max_bytes`` bytes of it."""
    rel = cur.sql(query, params=params)
    types = tuple(str(t) for t in rel.types)
    reader = rel.to_arrow_reader(max(1, min(max_rows + 1, _BATCH_ROWS)))
    out = _Fetched()
    schema = reader.schema
    try:
        for batch in reader:
            if not batch.num_rows:
                continue
            keep = batch.num_rows
            if out.rows + keep > max_rows:
                keep, out.truncated = max_rows - out.rows, True
            size = batch.get_total_buffer_size()
            if out.nbytes + size > max_bytes:
                per_row = size / batch.num_rows
                keep, out.truncated = min(keep, int((max_bytes - out.nbytes) / per_row)), True
            if keep > 0:
                # a cut batch is copied: a zero-copy slice would keep the whole batch's buffers alive
                part = batch.take(pa.array(range(keep))) if keep < batch.num_rows else batch
                out.batches.append(part)
                out.rows += keep
                out.nbytes += part.get_total_buffer_size()
            if out.truncated:
                break
    finally:
        close = getattr(reader, "close", None)
        if callable(close):
            close()
    return types, out, schema


def _message(e: BaseException) -> str:
    """DuckDB's message (no traceback); pyarrow wraps stream errors in its own text."""
    return str(e).strip() or type(e).__name__
