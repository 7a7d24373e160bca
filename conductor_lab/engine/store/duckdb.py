"""``DuckDBStore``: the default, embedded system of record (one DuckDB file and its commit log).

How it writes (measured with duckdb 2.0.1 on the 2-vCPU reference VM; ``bench/store_commit.py``,
``bench/journal_alternatives.py``, the decision in ``docs/storage.md``):

* ``commit`` makes a group commit durable by appending ONE framed record (the whole Batch as JSON)
  to the commit log, an append-only file in ``<db>.journal/`` (``journal.JournalLog``): one
  ``os.write`` and one ``os.fdatasync``, ~0.2 ms p50 and ~0.1 ms of CPU, then returns. It does not
  touch DuckDB: a one-row DuckDB transaction cost ~1 ms p50 (2 ms in issue 8's runs) and 0.75-1 ms
  of CPU per commit. ``commit`` first checks that the rows convert to the tables' column types
  (``_Table.check``), so a bad row is refused before it reaches the log. The record also stays in
  memory, merged with the other unfolded ones (``_Group``), until it is folded.
* ``materialize`` folds the pending records into the tables in ONE DuckDB transaction. Their
  batches were merged in Python as they were committed (``_Group``, ``_Fold``: the newest row per
  key, the later of upsert/delete for definitions and event handlers, the first snapshot per id,
  appends in commit order); the fold hands each table's merged rows to DuckDB as one NumPy object
  array per column (``_rows_view``: references to the rows' values, scanned by DuckDB, about twice
  as fast as a JSON text parsed with ``from_json``): rows into a temp table, delete their keys,
  insert them (the derived search columns computed from the JSON). It records
  ``journal_folded_seq`` in ``cl_meta`` in the same transaction; after its COMMIT the log
  segments that hold only folded records are deleted. A fold starts by rotating the log to a new
  segment (under the writer lock), so the older segments hold exactly what it folds.
  It runs on its own connection beside the commits (the group committer calls ``maintain`` on its
  own thread every ``MATERIALIZE_BATCHES`` commits or ``MATERIALIZE_AGE_SECONDS``), before every
  read (reads see every acknowledged batch), at close and at open. One fold transaction takes at
  most ``MATERIALIZE_MAX_BYTES`` of records (more are folded in several), bounding its memory.
* Open: DuckDB first (its file lock keeps other processes out), then the log (``LOCK`` keeps other
  stores of this process out). The log is scanned: a torn frame at the very end (the write in
  flight at a crash, never acknowledged) is cut off with a warning; any other bad frame refuses the
  open (``JournalCorruption``). Records with ``seq <= journal_folded_seq`` are already in the
  tables (a crash between a fold's COMMIT and the segment deletion) and are skipped; the rest are
  decoded (``decode_batch``) and folded at once. ``cl_journal`` rows left by files of earlier
  versions (which committed there) are folded too. ``seq`` goes on from the largest of the three.
* Checkpoints: DuckDB's automatic checkpoint stalled whatever committed across 16 MiB of WAL, so
  its threshold is raised and the materializer checkpoints once the WAL passes
  ``CHECKPOINT_WAL_BYTES``; commits never wait for it (they do not use DuckDB).
* The execution tables have no PRIMARY KEY (an in-memory ART index): see ``INDEXES``.
* ``durable=True``: every commit is ``fdatasync``ed before it returns, segment files are created
  and deleted with a directory fsync, and DuckDB keeps ``fsync_mode='STANDARD'`` (a fold is on disk
  before its segments go). ``durable=False``: no fdatasync and ``fsync_mode='NONE'`` (a real
  DuckDB 2.0.1 setting): a process crash still loses nothing (the OS has the bytes), an OS crash or
  power cut may. It is the benchmarks' "no fsync" mode. ``":memory:"`` stores have no log at all.

Threads: commits run on one thread at a time (``_wlock``; the event loop's, or the group
committer's writer thread once commits are slow), the fold on another (``_mlock``, its own
connection); every read opens its own cursor (about 50 us) so readers in many threads never share
one and see only committed data. DuckDB releases the GIL while it works, but each statement
re-acquires it: fewer statements per fold also means less GIL contention with the event loop.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import duckdb
import numpy as np
import orjson
import pyarrow as pa

from conductor_lab.engine.store.archive import (
    ARCHIVE_BATCH,
    BATCHES_COLUMNS,
    ParquetArchive,
    store_crash_points,
)
from conductor_lab.engine.store.base import (
    Batch,
    EventExecutionRow,
    LogRow,
    PollDataRow,
    SearchQuery,
    StoredWorkflow,
)
from conductor_lab.engine.store.duckdb_search import (
    TASK_FIELDS,
    WORKFLOW_FIELDS,
    Compiled,
    compile_query,
    fetch_archived,
    fetch_by_rowid,
    page_rowids,
    page_union,
)
from conductor_lab.engine.store.duckdb_views import create_views
from conductor_lab.engine.store.journal import CrashPoints, JournalLog
from conductor_lab.engine.store.migrations import SCHEMA_VERSION, migrate
from conductor_lab.errors import InvalidInput

__all__ = ["SCHEMA_VERSION", "DuckDBStore", "journal_dir"]

log = logging.getLogger(__name__)


_ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "BOOLEAN": pa.bool_(),
}


@dataclass(frozen=True, slots=True)
class _Table:
    name: str
    columns: tuple[tuple[str, str], ...]  # (column, DuckDB type), in table order
    key: tuple[str, ...]  # upsert key columns; () = append-only
    schema: pa.Schema
    constraint: bool = True  # declare the key as PRIMARY KEY (an in-memory ART index)
    #: (column, DuckDB type, SQL over the row's columns): columns the fold computes from the row
    #: (not part of the rows a Batch carries), e.g. search fields read out of the JSON
    derived: tuple[tuple[str, str, str], ...] = ()
    #: columns stored without compression (declared when the table is created)
    uncompressed: tuple[str, ...] = ()

    @property
    def all_columns(self) -> tuple[str, ...]:
        """The table's columns: the row's, then the derived ones."""
        return tuple(c for c, _ in self.columns) + tuple(c for c, _, _ in self.derived)

    def ddl(self) -> str:
        cols = ", ".join(
            [f"{c} {t}" + (" USING COMPRESSION uncompressed" if c in self.uncompressed else "") for c, t in self.columns]
            + [f"{c} {t}" for c, t, _ in self.derived]
        )
        if self.key and self.constraint:
            cols += f", PRIMARY KEY ({', '.join(self.key)})"
        return f"CREATE TABLE IF NOT EXISTS {self.name} ({cols})"

    def arrow(self, rows: Sequence[Sequence[Any]]) -> pa.Table:
        """Rows (tuples in column order) -> a typed pyarrow Table. Raises on a wrong type or arity."""
        try:
            cols = list(zip(*rows, strict=True))
            arrays = [pa.array(col, type=field.type) for col, field in zip(cols, self.schema, strict=True)]
        except ValueError as e:  # rows of the wrong width (pyarrow's ArrowInvalid is a ValueError too)
            raise ValueError(f"{self.name}: {e}") from e
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def check(self, rows: Sequence[Sequence[Any]]) -> None:
        """Raise like ``arrow`` on a row pyarrow would refuse. Rows of exactly the column types
        (str / int in range / bool, or None) pass in plain Python, ~50x faster than building the
        Arrow table; anything else is left to pyarrow, so what is accepted does not change."""
        if not _PLAIN[self.name](rows):
            self.arrow(rows)


def _table(
    name: str,
    columns: str,
    key: tuple[str, ...] = (),
    *,
    constraint: bool = True,
    derived: tuple[tuple[str, str, str], ...] = (),
    uncompressed: tuple[str, ...] = (),
) -> _Table:
    cols = tuple((c.split()[0], c.split()[1]) for c in columns.split(","))
    schema = pa.schema([pa.field(c, _ARROW_TYPES[t]) for c, t in cols])
    return _Table(name, cols, key, schema, constraint, derived, uncompressed)


_KIND: dict[str, tuple[type, int, int]] = {  # (Python type, min, max): the range applies to ints
    "VARCHAR": (str, 0, 0),
    "INTEGER": (int, -(2**31), 2**31 - 1),
    "BIGINT": (int, -(2**63), 2**63 - 1),
    "BOOLEAN": (bool, 0, 0),
}

WORKFLOWS = _table(
    "cl_workflows",
    "workflow_id VARCHAR, workflow_name VARCHAR, workflow_version INTEGER, status VARCHAR,"
    "correlation_id VARCHAR, parent_workflow_id VARCHAR, priority INTEGER, create_time BIGINT,"
    "update_time BIGINT, end_time BIGINT, snapshot_id VARCHAR, json VARCHAR",
    ("workflow_id",),
    constraint=False,
    # search's freeText scans every workflow's JSON: decompressing it (DuckDB picks DICT_FSST)
    # was about half of that scan. Stored plain, contains() over 1,000,000 workflows (~450 MB of
    # JSON) took ~110 ms instead of ~240 ms (bench/search.py); the file grows by ~2x the JSON's
    # compressed size (~300 MB per million workflows of ~450 B). Older files keep their compression.
    uncompressed=("json",),
)
TASKS = _table(
    "cl_tasks",
    "task_id VARCHAR, workflow_id VARCHAR, seq INTEGER, task_type VARCHAR, ref_name VARCHAR,"
    "status VARCHAR, retry_count INTEGER, domain VARCHAR, scheduled_time BIGINT, start_time BIGINT,"
    "end_time BIGINT, update_time BIGINT, json VARCHAR",
    ("task_id",),
    constraint=False,
    # task search fields of conductor-oss's task index that are not row columns (read from the
    # JSON at fold time: filtering 3,000,000 task JSONs with json_extract takes 1-3 s)
    derived=(
        ("task_def_name", "VARCHAR", "json_extract_string(json, '$.taskDefName')"),
        ("workflow_type", "VARCHAR", "json_extract_string(json, '$.workflowType')"),
    ),
)
SNAPSHOTS = _table("cl_snapshots", "snapshot_id VARCHAR, json VARCHAR", ("snapshot_id",))
TRANSITIONS = _table(
    "cl_transitions",
    "ts BIGINT, workflow_id VARCHAR, task_id VARCHAR, ref_name VARCHAR, task_type VARCHAR,"
    "status VARCHAR, reason VARCHAR, cause VARCHAR",
)
TASK_LOGS = _table("cl_task_logs", "task_id VARCHAR, created_time BIGINT, log VARCHAR")
POLL_DATA = _table(
    "cl_poll_data",
    "queue_name VARCHAR, domain VARCHAR, worker_id VARCHAR, last_poll_time BIGINT",
    ("queue_name", "domain"),
)
TASK_DEFS = _table("cl_task_defs", "name VARCHAR, json VARCHAR", ("name",))
WORKFLOW_DEFS = _table("cl_workflow_defs", "name VARCHAR, version INTEGER, json VARCHAR", ("name", "version"))
EVENT_HANDLERS = _table(
    "cl_event_handlers", "name VARCHAR, event VARCHAR, active BOOLEAN, json VARCHAR", ("name",)
)
EVENT_EXECUTIONS = _table(
    "cl_event_executions",
    "id VARCHAR, message_id VARCHAR, name VARCHAR, event VARCHAR, created BIGINT, status VARCHAR,"
    "action VARCHAR, output VARCHAR",
)
META = _table("cl_meta", "key VARCHAR, value VARCHAR", ("key",))
# Where a fold puts the records it applies (inserted, folded and deleted in one transaction); files
# of earlier versions committed here directly, and their rows are still folded.
JOURNAL = _table("cl_journal", "seq BIGINT, batch VARCHAR")
# One row per committed archive batch (``archive.py``): its end day, workflows, and Parquet files
# (JSON list of paths relative to ``<db>.archive/``); a file not listed here is an orphan of a crash.
ARCHIVE_BATCHES = _table("cl_archive_batches", BATCHES_COLUMNS, ("batch_id",))

ALL_TABLES: tuple[_Table, ...] = (
    META,
    JOURNAL,
    WORKFLOWS,
    TASKS,
    SNAPSHOTS,
    TRANSITIONS,
    TASK_LOGS,
    POLL_DATA,
    TASK_DEFS,
    WORKFLOW_DEFS,
    EVENT_HANDLERS,
    EVENT_EXECUTIONS,
    ARCHIVE_BATCHES,
)

def _plain_rows_check(kinds: Sequence[tuple[type, int, int]]) -> Callable[[Sequence[Sequence[Any]]], bool]:
    """A function telling whether every row has exactly these column types (or None), ints in
    range: straight-line code generated per table, about 5x faster than a loop over the kinds."""
    names = [f"v{i}" for i in range(len(kinds))]
    tests = []
    for v, (kind, lo, hi) in zip(names, kinds, strict=True):
        exact = f"{v}.__class__ is {kind.__name__}"
        tests.append(f"({v} is None or ({exact} and {lo} <= {v} <= {hi}))" if kind is int else f"({v} is None or {exact})")
    src = (
        "def plain(rows):\n"
        "    for row in rows:\n"
        f"        if len(row) != {len(kinds)}:\n"
        "            return False\n"
        f"        {', '.join(names)}, = row\n"
        f"        if not ({' and '.join(tests)}):\n"
        "            return False\n"
        "    return True\n"
    )
    namespace: dict[str, Any] = {"str": str, "int": int, "bool": bool}
    exec(src, namespace)  # noqa: S102 - our own generated source
    return cast(Callable[[Sequence[Sequence[Any]]], bool], namespace["plain"])


#: per table: does every row have exactly the column types (``_Table.check``'s fast path)
_PLAIN: dict[str, Callable[[Sequence[Sequence[Any]]], bool]] = {
    t.name: _plain_rows_check([_KIND[typ] for _, typ in t.columns]) for t in ALL_TABLES
}

# No ART index on the execution tables (cl_workflows, cl_tasks): ART indexes live in memory (about
# 300 B per running workflow for a PRIMARY KEY on each table plus cl_tasks(workflow_id)), and the
# hot path never touches these tables (commits go to the journal). Keys are still unique: the
# materializer deletes a batch's keys before appending its rows. The engine's ids are time-ordered
# (UUIDv7 layout), so DuckDB's per-row-group min/max zone maps prune point lookups and the key
# deletes of a materialization; measured at 1,000,000 tasks: lookup by task_id 2.4 ms (0.8 ms with
# a PRIMARY KEY), by workflow_id 1.8 ms (1.5 ms), deleting 1,000 recent keys 5 ms (13 ms).
INDEXES: tuple[str, ...] = ()

_RUNNING_SQL = "status IN ('RUNNING', 'PAUSED')"
_RUNNING_PART = 25_000  # running workflows per load_running range: bounds DuckDB sort memory (256MB limit)

_Step = Callable[[duckdb.DuckDBPyConnection], None]

#: DuckDB's memory limit (buffer cache, query memory); larger queries spill to disk.
DEFAULT_MEMORY_LIMIT = "256MB"
_MEMORY_LIMIT = re.compile(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)

#: The materializer checkpoints once the WAL is this large.
CHECKPOINT_WAL_BYTES = 16 * 1024 * 1024

#: Log records are applied to the tables once this many wait, or the oldest is this old. A fold has
#: a fixed cost (~37 statements, ~45 ms for 30 small records on the reference VM) that competes with
#: the event loop for the CPU; commits no longer need the fold, so it runs less often than when they
#: went into cl_journal (64 / 0.25 s). perf_probe --quick, same run, two runs each: 64 / 0.25 s ->
#: 1,024 / 1 s took worker tasks/s from ~365 to 520-720 and the idle 3-task workflow from 13-17 ms
#: to ~7.5 ms p50 (44-61 ms -> 11-12 ms p99). Reads fold first, so they never see less.
#: 1,024 / 1 s -> 2,048 / 2 s: a task's scheduled and finished rows, and its workflow's rows, more
#: often meet in one fold (one DELETE + INSERT instead of two): the fold's threads under
#: perf_probe --only throughput 0.083-0.158 -> 0.061-0.097 ms per task in three alternated pairs;
#: a read under that load waits for a fold of up to 2 s of commits (~0.3-0.45 s instead of ~0.2-0.3 s).
MATERIALIZE_BATCHES = 2048
MATERIALIZE_AGE_SECONDS = 2.0
#: One fold transaction takes records up to this much batch text (at least one record).
MATERIALIZE_MAX_BYTES = 16 * 1024 * 1024

#: ``cl_meta`` key: the highest log seq whose record is in the tables.
FOLDED_SEQ_KEY = "journal_folded_seq"


def _row_array(value: Any) -> tuple[Any, ...]:
    """orjson's ``default``: a row NamedTuple (orjson serializes plain tuples only) as an array;
    any other value it cannot serialize is refused, as without a ``default``."""
    if isinstance(value, tuple):
        return tuple(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def encode_batch(b: Batch) -> str:
    """A Batch as JSON text (rows as arrays in column order)."""
    return orjson.dumps(
        {
            "w": b.workflows,
            "t": b.tasks,
            "s": b.snapshots,
            "x": b.transitions,
            "l": b.logs,
            "p": b.poll_data,
            "td": b.task_defs,
            "tdd": b.task_def_deletes,
            "wd": b.workflow_defs,
            "wdd": b.workflow_def_deletes,
            "wfd": b.workflow_deletes,
            "tkd": b.task_deletes,
            "eh": b.event_handlers,
            "ehd": b.event_handler_deletes,
            "ee": b.event_executions,
        },
        default=_row_array,
    ).decode()


def decode_batch(text: str) -> Batch:
    """``encode_batch``'s text back to a Batch (rows as lists); keys an older version did not
    write are empty."""
    d = orjson.loads(text)
    return Batch(
        workflows=d.get("w") or [],
        tasks=d.get("t") or [],
        snapshots=d.get("s") or [],
        transitions=d.get("x") or [],
        logs=d.get("l") or [],
        poll_data=d.get("p") or [],
        task_defs=d.get("td") or [],
        task_def_deletes=d.get("tdd") or [],
        workflow_defs=d.get("wd") or [],
        workflow_def_deletes=[(k[0], k[1]) for k in d.get("wdd") or ()],
        workflow_deletes=d.get("wfd") or [],
        task_deletes=d.get("tkd") or [],
        event_handlers=d.get("eh") or [],
        event_handler_deletes=d.get("ehd") or [],
        event_executions=d.get("ee") or [],
    )


# ---------------------------------------------------------------------- the fold
#
# Committed batches are merged in Python as they are committed (``_Group``, ``_Fold``: commit
# order, the newest row per key, a definition's later upsert or delete, appends in order; a dict
# assignment per row), so only what ends up in the tables reaches DuckDB: about half of the task
# rows (a worker task is logged scheduled and done; the poll's mark goes with the update). A fold
# hands each table's rows to DuckDB as NumPy object arrays, one per column (``_rows_view``), and
# applies them with a few statements per table.
# docs/storage.md ("The fold merges in Python") has the figures.


class _Fold:
    """What a run of committed batches leaves in the tables."""

    __slots__ = (
        "workflows", "tasks", "snapshots", "transitions", "logs", "poll_data", "task_defs",
        "workflow_defs", "event_handlers", "event_executions", "workflow_deletes", "task_deletes",
    )  # fmt: skip

    def __init__(self) -> None:
        # keyed tables: key -> the newest row; a definition's key -> None once deleted
        self.workflows: dict[Any, Sequence[Any]] = {}
        self.tasks: dict[Any, Sequence[Any]] = {}
        self.snapshots: dict[Any, Sequence[Any]] = {}  # the first row per id (insert if absent)
        self.poll_data: dict[Any, Sequence[Any]] = {}
        self.task_defs: dict[Any, Sequence[Any] | None] = {}
        self.workflow_defs: dict[Any, Sequence[Any] | None] = {}
        self.event_handlers: dict[Any, Sequence[Any] | None] = {}
        self.transitions: list[Sequence[Any]] = []
        self.logs: list[Sequence[Any]] = []
        self.event_executions: list[Sequence[Any]] = []
        self.workflow_deletes: dict[str, None] = {}
        self.task_deletes: dict[str, None] = {}

    def add(self, b: Batch) -> None:
        """Merge the next batch (within one batch a definition's delete comes before its upsert)."""
        workflows, tasks = self.workflows, self.tasks
        for w in b.workflows:
            workflows[w[0]] = w
        for t in b.tasks:
            tasks[t[0]] = t
        for snap in b.snapshots:
            self.snapshots.setdefault(snap[0], snap)
        self.transitions += b.transitions
        self.logs += b.logs
        for poll in b.poll_data:
            self.poll_data[(poll[0], poll[1])] = poll
        for name in b.task_def_deletes:
            self.task_defs[name] = None
        for td in b.task_defs:
            self.task_defs[td[0]] = td
        for name, version in b.workflow_def_deletes:
            self.workflow_defs[(name, version)] = None
        for wd in b.workflow_defs:
            self.workflow_defs[(wd[0], wd[1])] = wd
        for name in b.event_handler_deletes:
            self.event_handlers[name] = None
        for eh in b.event_handlers:
            self.event_handlers[eh[0]] = eh
        self.event_executions += b.event_executions
        for wid in b.workflow_deletes:
            self.workflow_deletes[wid] = None
        for tid in b.task_deletes:
            self.task_deletes[tid] = None

    def apply(self, con: duckdb.DuckDBPyConnection) -> None:
        """Write the merged rows into the tables (inside the caller's transaction): keyed tables
        upserted, snapshots inserted if absent, appends in commit order, then the deletes."""
        for t, merged in (
            (TASK_DEFS, self.task_defs),
            (WORKFLOW_DEFS, self.workflow_defs),
            (WORKFLOWS, self.workflows),
            (TASKS, self.tasks),
            (POLL_DATA, self.poll_data),
            (EVENT_HANDLERS, self.event_handlers),
        ):
            _replace(con, t, merged)
        for t, rows in (
            (SNAPSHOTS, list(self.snapshots.values())),
            (TRANSITIONS, self.transitions),
            (TASK_LOGS, self.logs),
            (EVENT_EXECUTIONS, self.event_executions),
        ):
            if rows:
                with _rows_view(con, t.columns, rows):
                    con.execute(_FOLD_SQL[t.name][0])
        if self.workflow_deletes:
            _delete_workflows(list(self.workflow_deletes))(con)
        if self.task_deletes:
            ids = [list(self.task_deletes)]  # IN a subquery: a hash semi-join, however many ids
            con.execute("DELETE FROM cl_task_logs WHERE task_id IN (SELECT unnest(?::VARCHAR[]))", ids)
            con.execute("DELETE FROM cl_tasks WHERE task_id IN (SELECT unnest(?::VARCHAR[]))", ids)


class _Group:
    """Committed batches not folded yet, merged as they are committed (``_Fold``): seqs
    ``first``..``last``, ``count`` commits, ``size`` bytes of logged text. Commits add to the
    newest group until a fold seals it or the next batch would take it past
    ``MATERIALIZE_MAX_BYTES``; a sealed group no longer changes and is folded in one transaction."""

    __slots__ = ("first", "last", "count", "size", "fold", "sealed")

    def __init__(self, first: int) -> None:
        self.first = first
        self.last = first
        self.count = 0
        self.size = 0
        self.fold = _Fold()
        self.sealed = False

    def add(self, seq: int, batch: Batch, size: int) -> None:
        self.fold.add(batch)
        self.last = seq
        self.count += 1
        self.size += size

    def workflow_ids(self) -> set[str]:
        """The workflows whose rows the group changes (the archive must not take them yet)."""
        f = self.fold
        ids = set(f.workflows) | {r[1] for r in f.tasks.values()} | {r[1] for r in f.transitions}
        return ids | set(f.workflow_deletes)


#: the name a fold statement's rows are registered under (``_rows_view``)
_ROWS = "_cl_fold_rows"


@contextmanager
def _rows_view(
    con: duckdb.DuckDBPyConnection, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]
) -> Iterator[None]:
    """Rows (tuples, NamedTuples or lists, in ``columns`` order) as the view ``_typed_rows``
    reads, for the statements run inside: one NumPy object array per column (references to the
    rows' own values, no copy), scanned by DuckDB directly. That took 14-15 ms for 3,000 task rows
    where a JSON text parameter parsed with ``from_json`` took 33 ms (and an Arrow table, which
    would be faster still, makes pyarrow import pandas into the server). ``rows``: at least one
    (every caller skips empty tables). Raises ValueError on rows of the wrong width."""
    n = len(rows)
    try:
        arrays = {
            name: np.fromiter(col, dtype=object, count=n)
            for (name, _), col in zip(columns, zip(*rows, strict=True), strict=True)
        }
    except ValueError as e:
        raise ValueError(f"rows do not have the {len(columns)} columns {[c for c, _ in columns]}: {e}") from e
    con.register(_ROWS, arrays)
    try:
        yield
    finally:
        con.unregister(_ROWS)


def _typed_rows(columns: Sequence[tuple[str, str]]) -> str:
    """The rows of a ``_rows_view``, typed. They come out in the rows' order, and an INSERT keeps
    it (DuckDB's ``preserve_insertion_order``, on by default): the append-only tables' rowids
    follow commit order."""
    cols = ", ".join(f"CAST({col} AS {typ}) AS {col}" for col, typ in columns)
    return f"SELECT {cols} FROM {_ROWS}"


def _fold_sql(t: _Table) -> tuple[str, ...]:
    """A table's fold statements. Keyed tables: (rows into ``_u``, delete their keys, insert
    them with the derived columns, delete the keys of a ``_typed_rows`` parameter of keys);
    append-only tables and snapshots: (insert the rows of a parameter,)."""
    cols = ", ".join(c for c, _ in t.columns)
    if not t.key:
        return (f"INSERT INTO {t.name} ({cols}) {_typed_rows(t.columns)}",)
    if t is SNAPSHOTS:
        return (f"INSERT OR IGNORE INTO {t.name} ({cols}) {_typed_rows(t.columns)}",)
    derived = "".join(f", {expr}" for _, _, expr in t.derived)
    keys = _key_columns(t)
    return (
        f"CREATE OR REPLACE TEMP TABLE _u AS {_typed_rows(t.columns)}",
        f"DELETE FROM {t.name} USING _u WHERE {_match(t, '_u')}",
        f"INSERT INTO {t.name} ({', '.join(t.all_columns)}) SELECT {cols}{derived} FROM _u",
        f"DELETE FROM {t.name} USING ({_typed_rows(keys)}) AS _k WHERE {_match(t, '_k')}",
    )


def _key_columns(t: _Table) -> list[tuple[str, str]]:
    """A keyed table's key columns with their types, in the key's order (a deleted key's tuple)."""
    types = dict(t.columns)
    return [(k, types[k]) for k in t.key]


def _match(t: _Table, other: str) -> str:
    return " AND ".join(f"{t.name}.{k} = {other}.{k}" for k in t.key)


def _replace(con: duckdb.DuckDBPyConnection, t: _Table, merged: Mapping[Any, Sequence[Any] | None]) -> None:
    """Upsert a keyed table's merged rows; delete the keys merged to None."""
    if not merged:
        return
    into_u, delete_u, insert_u, delete_keys = _FOLD_SQL[t.name]
    rows = [r for r in merged.values() if r is not None]
    if rows:
        with _rows_view(con, t.columns, rows):
            con.execute(into_u)
        con.execute(delete_u)
    if len(rows) < len(merged):
        gone = [k if isinstance(k, tuple) else (k,) for k, r in merged.items() if r is None]
        with _rows_view(con, _key_columns(t), gone):
            con.execute(delete_keys)
    if rows:
        con.execute(insert_u)


#: each table's fold statements (``_fold_sql``), built once
_FOLD_SQL: dict[str, tuple[str, ...]] = {
    t.name: _fold_sql(t)
    for t in (
        WORKFLOWS, TASKS, SNAPSHOTS, TRANSITIONS, TASK_LOGS, POLL_DATA, TASK_DEFS, WORKFLOW_DEFS,
        EVENT_HANDLERS, EVENT_EXECUTIONS,
    )
}  # fmt: skip


def journal_dir(path: str | os.PathLike[str]) -> Path:
    """The commit log's directory of a DuckDB file: ``<file>.journal`` beside it."""
    return Path(str(path) + ".journal")


class DuckDBStore:
    """The ``Store`` protocol on one DuckDB file and its commit log (or ``":memory:"``, no log)."""

    def __init__(
        self, path: str | os.PathLike[str], *, durable: bool = True, memory_limit: str | None = DEFAULT_MEMORY_LIMIT
    ) -> None:
        self.path = str(path)
        self.durable = durable
        #: a CHECKPOINT is running on the fold's thread (read by the commit warnings)
        self.checkpointing = False
        #: fault injection for the crash tests (CONDUCTOR_LAB_CRASH); None otherwise
        self._crash: CrashPoints | None
        self._crash, archive_crash = store_crash_points()
        self._con = duckdb.connect(self.path)
        if memory_limit:
            if not _MEMORY_LIMIT.fullmatch(memory_limit.strip()):
                self._con.close()
                raise ValueError(f"memory_limit must look like '512MB' or '2GB', not {memory_limit!r}")
            # DuckDB's default is 80% of RAM, mostly buffer cache: bound it so a server holding a
            # million running workflows in Python memory does not also cache gigabytes of blocks.
            self._con.execute(f"SET memory_limit = '{memory_limit}'")
        # checkpoints are taken by the materializer (see _checkpoint_if_due), not by commits
        self._con.execute("SET checkpoint_threshold = '1GB'")
        # fsync_mode is DuckDB 2.0.1's switch for fsync (STANDARD | NONE | FULL); see the module doc.
        self._con.execute(f"SET GLOBAL fsync_mode = '{'STANDARD' if durable else 'NONE'}'")
        self._create_schema()
        self._mat = self._con.cursor()  # used by materialize() and checkpoints only
        self._wlock = threading.Lock()  # serialises commits (log appends), the counters and close()
        self._mlock = threading.Lock()  # one materialization at a time
        self._clock = threading.Lock()  # serialises cursor creation on the root connection
        self._closed = False
        #: committed, not yet folded, seq ascending, merged as they come (``_Group``): the merge
        #: runs on the committing thread (a dict assignment per row), so the fold's thread holds
        #: the GIL only to serialize the merged rows. The log's records are decoded when the store
        #: opens.
        self._groups: list[_Group] = []
        # fetchall: a result left unread keeps its transaction open, and CHECKPOINT refuses to run
        rows = self._con.execute("SELECT value FROM cl_meta WHERE key = ?", [FOLDED_SEQ_KEY]).fetchall()
        folded = int(rows[0][0]) if rows else 0
        # rows committed into cl_journal by files of earlier versions, not folded yet
        legacy = self._con.execute("SELECT seq, batch FROM cl_journal ORDER BY seq").fetchall()
        self._legacy_seq = int(legacy[-1][0]) if legacy else 0  # cl_journal rows up to here remain
        records = [(int(seq), str(text)) for seq, text in legacy]
        self._log: JournalLog | None = None
        last = folded
        if self.path != "" and not self.path.startswith(":memory:"):  # DuckDB's in-memory spellings
            # after DuckDB: its file lock already keeps every other process away from the log
            self._log = JournalLog(journal_dir(self.path), durable=durable, crash=self._crash)
            try:
                found = self._log.open(folded)
            except BaseException:
                self._mat.close()
                self._con.close()
                raise
            records += found.records
            last = found.last_seq
            if found.records or found.skipped or found.torn_bytes:
                log.info(
                    "%s: commit log: %d records to fold, %d already folded, %d torn bytes dropped",
                    self.path,
                    len(found.records),
                    found.skipped,
                    found.torn_bytes,
                )
        self._seq = max(last, self._legacy_seq)
        self._pending = 0
        for seq, text in sorted(records, key=lambda r: r[0]):
            self._add(seq, decode_batch(text), len(text))
        self._pending_since = time.monotonic()
        try:
            self.materialize()  # batches committed before a crash, or before the last close failed to fold
            #: the Parquet archive (``archive.py``): orphan files of a crashed batch go, views are set
            self._archive = ParquetArchive(self, archive_crash)
            self._archive.open(self._con)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ schema

    def _create_schema(self) -> None:
        """Create the schema in a new file or migrate an older one (``migrations``), and
        (re)create the SQL views, in one transaction."""
        con = self._con
        con.execute("BEGIN TRANSACTION")
        try:
            found = migrate(con, self.path, _create_tables)
            create_views(con)  # the documented SQL surface (duckdb_views), current in every file
            con.execute("COMMIT")
        except BaseException:
            _rollback(con)
            con.close()
            raise
        if found is not None and found != SCHEMA_VERSION:
            log.info("migrated %s from schema version %d to %d", self.path, found, SCHEMA_VERSION)

    # ------------------------------------------------------------------ writes

    def commit(self, batch: Batch) -> None:
        """Make the batch durable: ONE framed record appended to the commit log (``fdatasync``ed
        when durable) before returning; the tables get it at the next fold."""
        if not len(batch):
            return
        self._validate(batch)  # a bad row raises here, before it reaches the log
        text = encode_batch(batch)
        with self._wlock:
            self._check_open()
            seq = self._seq + 1
            if self._log is not None:
                self._log.append(seq, text)  # raises: nothing logged, seq not used
            self._seq = seq
            self._add(seq, batch, len(text))

    def _add(self, seq: int, batch: Batch, size: int) -> None:
        """A committed batch joins the newest open group (under ``_wlock``, or at open)."""
        groups = self._groups
        if not groups or groups[-1].sealed or groups[-1].size + size > MATERIALIZE_MAX_BYTES:
            groups.append(_Group(seq))  # a group holds at least one batch, at most the limit if more
        groups[-1].add(seq, batch, size)
        if self._pending == 0:
            self._pending_since = time.monotonic()
        self._pending += 1

    def needs_maintenance(self) -> bool:
        """True when enough logged batches wait to be applied to the tables."""
        return self._pending >= MATERIALIZE_BATCHES or (
            self._pending > 0 and time.monotonic() - self._pending_since >= MATERIALIZE_AGE_SECONDS
        )

    def maintain(self) -> None:
        """Apply the logged batches to the tables; runs on its own thread while commits go on."""
        self.materialize()

    def materialize(self) -> int:
        """Apply every batch committed so far to the tables, then drop the log segments it covered.

        Returns the number of batches applied. Each fold transaction inserts its records into
        ``cl_journal``, folds them (with any legacy ``cl_journal`` rows), deletes those rows and
        records ``journal_folded_seq``: the tables change and the fold is recorded atomically, so a
        crash before the COMMIT leaves the records to the log and one after it makes the next open
        skip them. Commits go on meanwhile (the fold holds the writer lock only to take its records
        and rotate the log).
        """
        target = self._seq
        total = 0
        while True:
            n, upto = self._fold_once()
            total += n
            if n == 0 or upto >= target:
                return total

    def _fold_once(self) -> tuple[int, int]:
        """One fold transaction: the oldest group of pending commits (at most about
        MATERIALIZE_MAX_BYTES of them; with the ``cl_journal`` rows of an earlier version among
        them). Returns (batches applied, the highest seq now folded)."""
        with self._mlock:
            with self._wlock:
                self._check_open()
                group = self._groups[0] if self._groups else None
                if group is not None and not group.sealed:
                    group.sealed = True  # later commits start a new group
                    if self._log is not None:
                        self._log.rotate()  # the older segments now hold only records <= self._seq
            if group is None:
                if self._log is not None:
                    self._log.release(self._seq)  # segments left by a crash after a fold's commit
                return 0, self._seq
            upto = group.last
            con = self._mat
            con.execute("BEGIN TRANSACTION")
            try:
                group.fold.apply(con)
                if self._legacy_seq and group.first <= self._legacy_seq:
                    con.execute("DELETE FROM cl_journal WHERE seq <= ?", [upto])
                con.execute("INSERT OR REPLACE INTO cl_meta VALUES (?, ?)", [FOLDED_SEQ_KEY, str(upto)])
                con.execute("DROP TABLE IF EXISTS _u")
                if self._crash is not None:
                    self._crash.hit("fold-before-commit")
                con.execute("COMMIT")
            except BaseException:
                _rollback(con)
                raise
            if self._crash is not None:
                self._crash.hit("fold-after-commit")
            with self._wlock:
                self._groups.pop(0)  # commits only add to the newest group: this one is still first
                if upto >= self._legacy_seq:
                    self._legacy_seq = 0
                self._pending = max(0, self._pending - group.count)
                if self._pending:
                    self._pending_since = time.monotonic()
            if self._log is not None:
                self._log.release(upto)
            self._checkpoint_if_due(con)
            return group.count, upto

    def _checkpoint_if_due(self, con: duckdb.DuckDBPyConnection) -> None:
        """Fold the WAL into the file here, beside the commits, once it passes CHECKPOINT_WAL_BYTES.

        DuckDB's automatic checkpoint (at 16 MiB of WAL) runs inside whichever commit crosses the
        threshold, which stalled journal commits for 50-140 ms under load; its threshold is set
        high and the materializer checkpoints instead.
        """
        if self.path == ":memory:":
            return
        try:
            wal = os.path.getsize(self.path + ".wal")
        except OSError:
            return
        if wal >= CHECKPOINT_WAL_BYTES:
            self.checkpointing = True
            try:
                con.execute("CHECKPOINT")
            except duckdb.Error as exc:  # e.g. a long read transaction is open: try again later
                log.debug("checkpoint skipped: %s", exc)
            finally:
                self.checkpointing = False

    @staticmethod
    def _validate(b: Batch) -> None:
        """Every row converts to its table's column types (raises TypeError/ValueError otherwise)."""
        for t, rows in (
            (TASK_DEFS, b.task_defs),
            (WORKFLOW_DEFS, b.workflow_defs),
            (SNAPSHOTS, b.snapshots),
            (WORKFLOWS, b.workflows),
            (TASKS, b.tasks),
            (TRANSITIONS, b.transitions),
            (TASK_LOGS, b.logs),
            (POLL_DATA, b.poll_data),
            (EVENT_HANDLERS, b.event_handlers),
            (EVENT_EXECUTIONS, b.event_executions),
        ):
            if rows:
                t.check(rows)
        for name in b.task_def_deletes:
            if not isinstance(name, str):
                raise TypeError(f"task_def_deletes: {name!r} is not a str")
        for name in b.event_handler_deletes:
            if not isinstance(name, str):
                raise TypeError(f"event_handler_deletes: {name!r} is not a str")
        for name, version in b.workflow_def_deletes:
            if not isinstance(name, str) or not isinstance(version, int):
                raise TypeError(f"workflow_def_deletes: {(name, version)!r} is not (str, int)")
        for wid in b.workflow_deletes:
            if not isinstance(wid, str):
                raise TypeError(f"workflow_deletes: {wid!r} is not a str")
        for tid in b.task_deletes:
            if not isinstance(tid, str):
                raise TypeError(f"task_deletes: {tid!r} is not a str")

    # ------------------------------------------------------------------ reads

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        if self._pending:
            self.materialize()  # reads see every committed batch
        with self._clock:
            self._check_open()
            return self._con.cursor()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor of its own for reads from any thread (``engine.sql.run_sql``); the caller
        closes it. The journal is folded first, so it sees every acknowledged change."""
        return self._cursor()

    def _query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        cur = self._cursor()
        try:
            return cur.execute(sql, params).fetchall()
        finally:
            cur.close()

    def load_task_defs(self) -> list[str]:
        return [r[0] for r in self._query("SELECT json FROM cl_task_defs ORDER BY name")]

    def load_workflow_defs(self) -> list[str]:
        return [r[0] for r in self._query("SELECT json FROM cl_workflow_defs ORDER BY name, version")]

    def load_event_handlers(self) -> list[str]:
        return [r[0] for r in self._query("SELECT json FROM cl_event_handlers ORDER BY name")]

    def get_event_executions(self, name_or_event: str, limit: int = 100) -> list[EventExecutionRow]:
        """The newest ``limit`` executions of the handler so named or for that event, oldest first."""
        # rowid = insertion order (append-only): ties on ``created`` keep the order they happened in
        rows = self._query(
            "SELECT id, message_id, name, event, created, status, action, output FROM ("
            "SELECT *, rowid AS _r FROM cl_event_executions WHERE name = ? OR event = ? "
            "ORDER BY created DESC, _r DESC LIMIT ?) ORDER BY created, _r",
            [name_or_event, name_or_event, max(0, int(limit))],
        )
        return [EventExecutionRow(*r) for r in rows]

    def load_poll_data(self) -> list[PollDataRow]:
        rows = self._query(
            "SELECT queue_name, domain, worker_id, last_poll_time FROM cl_poll_data ORDER BY queue_name, domain"
        )
        return [PollDataRow(*r) for r in rows]

    def load_snapshot(self, snapshot_id: str) -> str | None:
        rows = self._query("SELECT json FROM cl_snapshots WHERE snapshot_id = ?", [snapshot_id])
        return rows[0][0] if rows else None

    def load_running(self, chunk: int = 10_000) -> Iterator[tuple[StoredWorkflow, list[str]]]:
        """Every RUNNING/PAUSED workflow (ordered by workflow_id) with its task JSONs ordered by seq.

        All reads run in one read transaction (one consistent snapshot). The running workflows are
        cut into workflow_id ranges of about ``_RUNNING_PART`` workflows (bounds from
        ``quantile_disc`` over the ids); per range ONE statement joins them to their tasks, ordered
        by (workflow_id, seq), streamed as arrow record batches of ``chunk`` rows and grouped here.
        Ranges bound DuckDB's sort memory (it must fit under the store's memory limit): 1,000,000 running workflows (1 task each, ~300 B JSON)
        load in ~2 s with a peak RSS of ~0.75 GB instead of ~1.5 GB for one global sort.
        """
        cur = self._cursor()
        try:
            cur.execute("BEGIN TRANSACTION").fetchall()
            row = cur.execute(f"SELECT count(*) FROM cl_workflows WHERE {_RUNNING_SQL}").fetchall()
            total = int(row[0][0])
            parts = max(1, -(-total // _RUNNING_PART))
            bounds: list[str] = []
            if parts > 1:
                qs = [i / parts for i in range(1, parts)]
                res = cur.execute(
                    f"SELECT quantile_disc(workflow_id, ?::DOUBLE[]) FROM cl_workflows WHERE {_RUNNING_SQL}",
                    [qs],
                ).fetchall()
                bounds = sorted(set(res[0][0]))
            ranges: list[tuple[str | None, str | None]] = []
            lo: str | None = None
            for b in bounds:
                ranges.append((lo, b))
                lo = b
            ranges.append((lo, None))
            for lo, hi in ranges:
                where = [f"w.{_RUNNING_SQL}"]
                params: list[Any] = []
                if lo is not None:
                    where.append("w.workflow_id > ?")
                    params.append(lo)
                if hi is not None:
                    where.append("w.workflow_id <= ?")
                    params.append(hi)
                reader = cur.sql(
                    "SELECT w.workflow_id, w.json, w.snapshot_id, t.json "
                    "FROM cl_workflows w LEFT JOIN cl_tasks t ON t.workflow_id = w.workflow_id "
                    f"WHERE {' AND '.join(where)} ORDER BY w.workflow_id, t.seq, t.task_id",
                    params=params,
                ).to_arrow_reader(max(1, chunk))
                yield from _group_running(reader)
        finally:
            _rollback(cur)
            cur.close()

    def get_workflow(self, workflow_id: str) -> StoredWorkflow | None:
        """The workflow from the tables, else from the archive (an archived run still answers)."""
        rows = self._query("SELECT json, snapshot_id FROM cl_workflows WHERE workflow_id = ?", [workflow_id])
        if not rows and self._archive.has_files:
            # only the batches whose id range holds it (the view would open every file's footer)
            q = self._archive.lookup("workflows", "json, snapshot_id", workflow_id)
            rows = self._query(*q) if q else []
        return StoredWorkflow(*rows[0]) if rows else None

    def get_tasks(self, workflow_id: str) -> list[str]:
        """The workflow's task JSONs by seq: from the tables, else from the archive (a workflow's
        tasks are always all in one place: archived together with it)."""
        rows = self._query(
            "SELECT json FROM cl_tasks WHERE workflow_id = ? ORDER BY seq, task_id", [workflow_id]
        )
        if not rows and self._archive.has_files:
            q = self._archive.lookup("tasks", "json", workflow_id, order="seq, task_id")
            rows = self._query(*q) if q else []
        return [r[0] for r in rows]

    def get_workflows_with_tasks(self, workflow_ids: list[str]) -> dict[str, tuple[StoredWorkflow, list[str]]]:
        """Several workflows and their tasks in two statements (bulk verbs on finished workflows)."""
        if not workflow_ids:
            return {}
        ids = list(workflow_ids)
        out: dict[str, tuple[StoredWorkflow, list[str]]] = {}
        for wid, text, sid in self._query(
            "SELECT workflow_id, json, snapshot_id FROM cl_workflows WHERE list_contains(?::VARCHAR[], workflow_id)",
            [ids],
        ):
            out[wid] = (StoredWorkflow(text, sid), [])
        for wid, text in self._query(
            "SELECT workflow_id, json FROM cl_tasks WHERE list_contains(?::VARCHAR[], workflow_id) "
            "ORDER BY workflow_id, seq, task_id",
            [ids],
        ):
            if wid in out:
                out[wid][1].append(text)
        return out

    def get_task(self, task_id: str) -> str | None:
        rows = self._query("SELECT json FROM cl_tasks WHERE task_id = ?", [task_id])
        if not rows and self._archive.has_files:
            rows = self._query("SELECT json FROM cl_archive_tasks WHERE task_id = ?", [task_id])
        return rows[0][0] if rows else None

    def get_task_logs(self, task_id: str) -> list[LogRow]:
        # rowid = insertion order (logs are append-only; deletes keep the relative order); archived
        # logs kept theirs as ``n`` and come first (a line added later goes to the table)
        if self._archive.has_files:
            sql = (
                "SELECT task_id, created_time, log FROM (SELECT task_id, created_time, log, 0 AS _s, n "
                "FROM cl_archive_task_logs WHERE task_id = ? UNION ALL SELECT task_id, created_time, log, 1, rowid "
                "FROM cl_task_logs WHERE task_id = ?) ORDER BY created_time, _s, n"
            )
            rows = self._query(sql, [task_id, task_id])
        else:
            rows = self._query(
                "SELECT task_id, created_time, log FROM cl_task_logs WHERE task_id = ? ORDER BY created_time, rowid",
                [task_id],
            )
        return [LogRow(*r) for r in rows]

    def search_workflows(self, query: SearchQuery) -> tuple[int, list[StoredWorkflow]]:
        """conductor-oss's workflow search as SQL over ``cl_workflows`` and the archive (see
        ``duckdb_search``)."""
        c = compile_query(query, WORKFLOW_FIELDS, key="workflow_id", default_order="create_time")
        rows = self._search("cl_workflows", c, query, "json, snapshot_id", "workflow_id")
        return rows[0], [StoredWorkflow(*r) for r in rows[1]]

    def search_tasks(self, query: SearchQuery) -> tuple[int, list[str]]:
        """conductor-oss's task search as SQL over ``cl_tasks`` and the archive (see ``duckdb_search``)."""
        c = compile_query(query, TASK_FIELDS, key="task_id", default_order="scheduled_time")
        total, rows = self._search("cl_tasks", c, query, "json", "task_id")
        return total, [r[0] for r in rows]

    def _search(
        self, table: str, c: Compiled, query: SearchQuery, columns: str, key: str
    ) -> tuple[int, list[tuple[Any, ...]]]:
        cur = self._cursor()
        try:
            cur.execute("BEGIN TRANSACTION")  # count, page and rows from one snapshot
            try:
                if not self._archive.has_files:
                    total, rowids = page_rowids(cur, table, c, query.start, query.size)
                    return total, fetch_by_rowid(cur, table, columns, rowids)
                archive = table.replace("cl_", "cl_archive_", 1)
                total, page = page_union(cur, table, archive, key, c, query.start, query.size)
                live = fetch_by_rowid(cur, table, columns, [r for r, _ in page if r is not None])
                by_rowid = dict(zip([r for r, _ in page if r is not None], live, strict=False))
                archived = fetch_archived(cur, archive, key, columns, [k for r, k in page if r is None])
                out = [by_rowid.get(r) if r is not None else archived.get(k) for r, k in page]
                return total, [row for row in out if row is not None]
            finally:
                _rollback(cur)
        except duckdb.ConversionException as e:
            raise InvalidInput(f"search: {e}") from e
        finally:
            cur.close()

    def get_workflows(self, workflow_ids: list[str]) -> dict[str, StoredWorkflow]:
        """Several workflows by id: the ids' rowids from the id column alone (bounded by the ids'
        range: time-ordered ids let zone maps skip row groups), then the rows by rowid."""
        ids = sorted({i for i in workflow_ids if isinstance(i, str)})
        if not ids:
            return {}
        cur = self._cursor()
        try:
            cur.execute("BEGIN TRANSACTION")
            try:
                found = cur.execute(
                    "SELECT rowid FROM cl_workflows WHERE workflow_id >= ? AND workflow_id <= ? "
                    f"AND workflow_id IN ({', '.join('?' for _ in ids)})",
                    [ids[0], ids[-1], *ids],
                ).fetchall()
                rows = fetch_by_rowid(cur, "cl_workflows", "workflow_id, json, snapshot_id", [r[0] for r in found])
                missing = set(ids) - {r[0] for r in rows}
                if missing and self._archive.has_files:
                    archived = fetch_archived(
                        cur, "cl_archive_workflows", "workflow_id", "json, snapshot_id", sorted(missing)
                    )
                    rows += [(wid, *r) for wid, r in archived.items()]
            finally:
                _rollback(cur)
        finally:
            cur.close()
        return {r[0]: StoredWorkflow(r[1], r[2]) for r in rows}

    def workflow_ids(
        self,
        name: str,
        *,
        version: int | None = None,
        statuses: tuple[str, ...] | None = None,
        correlation_id: str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = 1000,
    ) -> list[str]:
        where = ["workflow_name = ?"]
        params: list[Any] = [name]
        if version is not None:
            where.append("workflow_version = ?")
            params.append(int(version))
        if statuses is not None:
            where.append("list_contains(?::VARCHAR[], status)")
            params.append(list(statuses))
        if correlation_id is not None:
            where.append("correlation_id = ?")
            params.append(correlation_id)
        if start_time is not None:
            where.append("create_time >= ?")
            params.append(int(start_time))
        if end_time is not None:
            where.append("create_time <= ?")
            params.append(int(end_time))
        source = "cl_workflows"
        if self._archive.has_files and statuses != ("RUNNING",):  # archived runs are all finished
            source = "(SELECT * FROM cl_workflows UNION ALL BY NAME SELECT * FROM cl_archive_workflows)"
        params.append(max(0, int(limit)))
        rows = self._query(
            f"SELECT workflow_id FROM {source} WHERE {' AND '.join(where)} "
            "ORDER BY create_time, workflow_id LIMIT ?",
            params,
        )
        return [r[0] for r in rows]

    def stats(self) -> dict[str, Any]:
        counts = self._query(
            " UNION ALL ".join(
                f"SELECT '{t.name}', count(*) FROM {t.name}"
                for t in ALL_TABLES
                if t not in (META, JOURNAL, ARCHIVE_BATCHES)  # the archive's figures: "archive"
            )
        )
        size = self._size_on_disk()
        return {
            "path": self.path,
            "durable": self.durable,
            "schema_version": SCHEMA_VERSION,
            "file_size_bytes": size,
            "rows": {name: int(n) for name, n in counts},
            "archive": self._archive.stats(),
        }

    # ------------------------------------------------------------------ archive (archive.py)

    @property
    def can_archive(self) -> bool:
        """A file store archives beside its file; an in-memory one cannot."""
        return self._archive.dir is not None

    @property
    def has_archive(self) -> bool:
        """True once an archive batch has committed (reads then look at the Parquet files too)."""
        return self._archive.has_files

    def archive_batch(self, cutoff_ms: int, limit: int = ARCHIVE_BATCH) -> int:
        """Fold the log, then move the oldest finished workflows that ended before ``cutoff_ms``
        (one end day, at most ``limit``) into Parquet; how many moved (0: nothing is due).
        ``archive.ArchivePolicy`` says which workflows the caller must no longer change."""
        self.materialize()
        return self._archive.run_batch(cutoff_ms, limit)

    def archived_ids(self, workflow_ids: list[str]) -> set[str]:
        """Those of ``workflow_ids`` that are in the archive."""
        if not self._archive.has_files or not workflow_ids:
            return set()
        cur = self._cursor()
        try:
            return set(fetch_archived(cur, "cl_archive_workflows", "workflow_id", "status", list(workflow_ids)))
        finally:
            cur.close()

    def archive_files(self) -> list[Path]:
        """Every committed archive file (absolute paths; the backup copies them with the database)."""
        return self._archive.files()

    def archive_lock_times(self) -> list[float]:
        """Seconds each archive batch since the last call held the fold lock (the archiver's log)."""
        return self._archive.take_lock_times()

    # ------------------------------------------------------------------ lifecycle

    def checkpoint(self) -> None:
        """Apply the log, then fold DuckDB's WAL into the main file (DuckDB also does this past 16 MiB)."""
        self.materialize()
        with self._mlock:
            self._check_open()
            self._mat.execute("CHECKPOINT")

    def close(self) -> None:
        """Fold what is pending, checkpoint, close; the log's files go once everything is folded
        (a fold that fails leaves them for the next open)."""
        if not self._closed:
            try:
                self.materialize()
            except Exception as exc:  # the log stays; the next open applies it
                log.warning("%s: could not fold the commit log at close (the next open will): %s", self.path, exc)
        with self._mlock, self._wlock, self._clock:
            if self._closed:
                return
            self._closed = True
            try:
                self._mat.execute("CHECKPOINT")
            except duckdb.Error:
                pass  # e.g. a reader still has a transaction open; closing checkpoints when it can
            finally:
                self._mat.close()
                self._con.close()
                if self._log is not None:
                    self._log.close(clean=self._pending == 0)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"DuckDBStore({self.path!r}) is closed")

    def __enter__(self) -> DuckDBStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DuckDBStore({self.path!r}, durable={self.durable})"

    def backup(self, dest_dir: str | os.PathLike[str]) -> dict[str, Any]:
        """A consistent copy in ``dest_dir`` while commits go on (see ``store.backup``)."""
        from conductor_lab.engine.store.backup import backup_store

        return backup_store(self, dest_dir)

    def _size_on_disk(self) -> int:
        """Bytes of the DuckDB file, its WAL and the commit log's segments (0 in memory)."""
        if self.path == "" or self.path.startswith(":memory:"):
            return 0
        paths = [Path(self.path), Path(self.path + ".wal")]
        if self._log is not None and not self._closed:
            try:
                paths += self._log.segment_files()
            except OSError:
                pass  # the log's directory went away (closing)
        size = 0
        for p in paths:
            try:
                size += p.stat().st_size
            except OSError:
                pass  # e.g. a segment a fold just deleted
        return size

    def commit_log_state(self) -> dict[str, Any]:
        """The commit log's figures for metrics and status, read without locks (a gauge's snapshot):
        ``unfolded_records`` (logged, not yet folded), ``fold_lag_seconds`` (since the oldest of
        them was logged; 0 when none), ``last_seq`` and ``size_bytes`` (file + WAL + segments)."""
        pending = self._pending
        size = self._size_on_disk()
        return {
            "unfolded_records": pending,
            "fold_lag_seconds": max(0.0, time.monotonic() - self._pending_since) if pending else 0.0,
            "last_seq": self._seq,
            "size_bytes": size,
        }


# ---------------------------------------------------------------------- statement builders


def _create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The current schema in a new file (older files reach it through ``migrations``)."""
    for t in ALL_TABLES:
        con.execute(t.ddl())
    for ddl in INDEXES:
        con.execute(ddl)


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass  # no transaction active (e.g. COMMIT itself failed and DuckDB already rolled back)


def _delete_workflows(workflow_ids: Sequence[str]) -> _Step:
    ids = list(workflow_ids)

    def step(con: duckdb.DuckDBPyConnection) -> None:
        con.execute(
            "DELETE FROM cl_task_logs WHERE task_id IN "
            "(SELECT task_id FROM cl_tasks WHERE list_contains(?::VARCHAR[], workflow_id))",
            [ids],
        )
        con.execute("DELETE FROM cl_tasks WHERE list_contains(?::VARCHAR[], workflow_id)", [ids])
        con.execute("DELETE FROM cl_workflows WHERE list_contains(?::VARCHAR[], workflow_id)", [ids])

    return step


def _group_running(reader: pa.RecordBatchReader) -> Iterator[tuple[StoredWorkflow, list[str]]]:
    """Rows (workflow_id, workflow json, snapshot_id, task json | None) ordered by workflow_id -> groups.

    A workflow whose rows straddle two record batches is carried over to the next one.
    """
    cur_id: str | None = None
    cur_wf: StoredWorkflow | None = None
    cur_tasks: list[str] = []
    for rb in reader:
        ids = rb.column(0).to_pylist()
        wjs = rb.column(1).to_pylist()
        sids = rb.column(2).to_pylist()
        tjs = rb.column(3).to_pylist()
        for wid, wj, sid, tj in zip(ids, wjs, sids, tjs, strict=True):
            if wid != cur_id:
                if cur_wf is not None:
                    yield cur_wf, cur_tasks
                cur_id, cur_wf, cur_tasks = wid, StoredWorkflow(wj, sid), []
            if tj is not None:
                cur_tasks.append(tj)
    if cur_wf is not None:
        yield cur_wf, cur_tasks
