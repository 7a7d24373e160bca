"""Retention to Parquet: finished workflows leave the DuckDB tables for day-partitioned Parquet files.

``--archive-after DAYS``: terminal workflows (COMPLETED, FAILED, TIMED_OUT, TERMINATED) that ended
more than DAYS ago move, with their tasks, transitions and task logs, out of ``cl_workflows``,
``cl_tasks``, ``cl_transitions`` and ``cl_task_logs`` into Parquet files beside the database::

    <db>.archive/workflows/day=2026-11-30/b000042.parquet   (and tasks/, transitions/, task_logs/)

one file per table per batch; a batch takes the oldest due workflows of ONE end day (at most
``ARCHIVE_BATCH`` of them; candidates come from one scan per ``CANDIDATE_BATCHES`` batches). The
views read a glob per table (never re-created per batch); the SQL surface (``duckdb_views``) and
search read the tables UNION ALL the archive, ``get_workflow`` / ``get_tasks`` / ``get_task`` fall
back to it (the first two through ``lookup``: only the batches whose id range holds the id). ``docs/storage.md``
("Retention to Parquet") has the whole design; in short:

* **Crash safety** (``ParquetArchive.run_batch``): without the fold lock, from one read snapshot,
  the batch's rows are copied into Parquet files under a staged name (``.bN.parquet.tmp``, which
  the views' glob ``*/*.parquet`` does not match), fsynced, and fingerprinted (count and hash sum
  per table). Then, under the store's fold lock (no fold changes the tables meanwhile; commits go
  on, into the log), the files are renamed into place and ONE DuckDB transaction re-checks the
  batch (no running parent or child), deletes the rows (their fingerprint must be the snapshot's:
  nothing changed them since the files were written) and records the batch in
  ``cl_archive_batches`` (with its files). The views read only the files of batches listed in
  ``cl_archive_batches`` as the reader's own snapshot sees it, so every reader sees a workflow
  either in the tables or in the archive: the rows' deletion and the files' admission are one
  COMMIT. At open, any file no committed batch lists is an orphan of a crash before a COMMIT (its
  rows are still in the tables) and is deleted (a committed batch's file still under its staged
  name, which a power cut after an older version's COMMIT could leave, is renamed). So after a
  kill -9 anywhere, every workflow is either in the tables or wholly in the archive, never both.
* **Nothing writes an archived workflow back** (``ArchivePolicy``): a commit that touched an
  archived workflow would put it back into the tables (counted twice). Once archiving is on, a
  finished workflow that ended more than DAYS ago is read-only history: the workflow verbs refuse it
  (409) whether or not the archiver has moved it yet, and the engine changes a finished workflow
  only through those verbs (task updates of a finished workflow are ignored, timers skip finished
  workflows). Before each round the archiver takes its clock on the event loop and waits for the
  group commit there, so every change made before that instant is in the log; it folds the log,
  and picks only workflows due at that instant (verbs compare against the same instant or later:
  ``ArchivePolicy.horizon``). A copy held in memory may stay there: it can no longer change.
  Sub-workflows whose parent still runs, and parents with a running child, are not archived.
  A belt on top: a batch whose workflows appear in a commit not folded yet is abandoned.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from conductor_lab.engine.store.base import ArchivingStore
from conductor_lab.engine.store.journal import CRASH_ENV, CrashPoints, crash_points

if TYPE_CHECKING:
    from conductor_lab.engine.store.duckdb import DuckDBStore

__all__ = [
    "ARCHIVE_BATCH",
    "ARCHIVE_CRASH_POINTS",
    "ARCHIVE_INTERVAL_SECONDS",
    "ARCHIVED",
    "ArchivePolicy",
    "Archiver",
    "ParquetArchive",
    "archive_dir",
    "placeholder_views",
    "store_crash_points",
]

log = logging.getLogger(__name__)

#: Workflows per archive batch (at most; a batch never spans two end days). Bounds the time the
#: fold lock is held (bench/archive.py measures it) and the memory of one batch.
ARCHIVE_BATCH = 2000
#: Seconds between archive rounds (``--archive-interval``).
ARCHIVE_INTERVAL_SECONDS = 60.0
#: statuses a workflow may be archived in (``WorkflowStatus.terminal``)
TERMINAL = ("COMPLETED", "FAILED", "TIMED_OUT", "TERMINATED")

#: crash points of an archive batch (``CONDUCTOR_LAB_CRASH=<point>:<n>``, tests only): after its
#: files are in place, inside its transaction before the COMMIT, after the COMMIT
ARCHIVE_CRASH_POINTS = ("archive-after-write", "archive-before-commit", "archive-after-commit")


@dataclass(frozen=True, slots=True)
class Archived:
    """One archived table: its directory under ``<db>.archive/``, its view, and how to read it."""

    directory: str
    source: str  # the DuckDB table the rows leave
    view: str  # the view over its committed Parquet files
    #: the table's rows of one batch (``_arch``: the batch's workflow ids), as the file holds them
    select: str
    #: what the placeholder view selects while no file exists (same columns, no rows)
    empty: str


#: the batch's rows: ``{lo}``/``{hi}`` are the batch's smallest and largest workflow id (quoted):
#: ids are time-ordered, so the bounds let DuckDB's zone maps skip most of a big table's row
#: groups (the semi-join alone scanned every workflow_id: ~5x slower at 300,000 tasks)
_IN_BATCH = "workflow_id BETWEEN {lo} AND {hi} AND workflow_id IN (SELECT workflow_id FROM _arch)"
_TASK_IN_BATCH = "task_id BETWEEN {tlo} AND {thi} AND task_id IN (SELECT task_id FROM _arch_tasks)"

#: The four archived tables, in the order a batch writes them. Transitions and task logs carry
#: ``n``, their rowid when archived: the order of recording the views and ``get_task_logs`` use.
ARCHIVED: tuple[Archived, ...] = (
    Archived(
        "workflows",
        "cl_workflows",
        "cl_archive_workflows",
        f"SELECT * FROM cl_workflows WHERE {_IN_BATCH} ORDER BY workflow_id",
        "SELECT * FROM cl_workflows WHERE false",
    ),
    Archived(
        "tasks",
        "cl_tasks",
        "cl_archive_tasks",
        f"SELECT * FROM cl_tasks WHERE {_IN_BATCH} ORDER BY workflow_id, seq, task_id",
        "SELECT * FROM cl_tasks WHERE false",
    ),
    Archived(
        "transitions",
        "cl_transitions",
        "cl_archive_transitions",
        f"SELECT *, rowid AS n FROM cl_transitions WHERE {_IN_BATCH} ORDER BY workflow_id, rowid",
        "SELECT *, rowid AS n FROM cl_transitions WHERE false",
    ),
    Archived(
        "task_logs",
        "cl_task_logs",
        "cl_archive_task_logs",
        f"SELECT *, rowid AS n FROM cl_task_logs WHERE {_TASK_IN_BATCH} ORDER BY task_id, rowid",
        "SELECT *, rowid AS n FROM cl_task_logs WHERE false",
    ),
)

#: each table's rows of the batch (as its file holds them, and as they are deleted)
_DELETES_WHERE = {"workflows": _IN_BATCH, "tasks": _IN_BATCH, "transitions": _IN_BATCH, "task_logs": _TASK_IN_BATCH}

#: the batch's rows leave the tables in this order (logs first: they are found through the tasks)
_DELETES: tuple[tuple[str, str], ...] = tuple(
    (d, f"DELETE FROM cl_{d} WHERE {_DELETES_WHERE[d]}") for d in ("task_logs", "tasks", "transitions", "workflows")
)

#: ``cl_archive_batches``: one row per committed batch (``files``: JSON list of paths relative to
#: the archive directory). ``duckdb.ARCHIVE_BATCHES`` declares the same table.
BATCHES_COLUMNS = "batch_id BIGINT, day VARCHAR, workflows INTEGER, files VARCHAR, archived_at BIGINT"

_TERMINAL_SQL = ", ".join(f"'{s}'" for s in TERMINAL)

#: The oldest archivable workflows: finished before the cutoff; not a child of a workflow that
#: still runs (the parent may still read or resume it), not the parent of a child that still runs
#: (the child reports back to it when it ends).
_CANDIDATES_SQL = f"""
SELECT w.workflow_id, w.end_time FROM cl_workflows AS w
WHERE w.status IN ({_TERMINAL_SQL}) AND w.end_time > 0 AND w.end_time < ?
  AND NOT EXISTS (SELECT 1 FROM cl_workflows AS p
                  WHERE p.workflow_id = w.parent_workflow_id AND p.status NOT IN ({_TERMINAL_SQL}))
  AND NOT EXISTS (SELECT 1 FROM cl_workflows AS c
                  WHERE c.parent_workflow_id = w.workflow_id AND c.status NOT IN ({_TERMINAL_SQL}))
ORDER BY w.end_time, w.workflow_id
LIMIT ?
"""


#: under the lock: how many of the batch's workflows now have a running parent or child (the
#: candidates were picked from an earlier snapshot); a scan of the status column, the rest small
_RUNNING_RELATIVES_SQL = f"""
SELECT count(*) FROM cl_workflows AS r
WHERE r.status NOT IN ({_TERMINAL_SQL})
  AND (r.parent_workflow_id IN (SELECT workflow_id FROM _arch)
       OR r.workflow_id IN (SELECT w.parent_workflow_id FROM cl_workflows AS w
                            WHERE w.workflow_id BETWEEN {{lo}} AND {{hi}} AND w.workflow_id IN (SELECT workflow_id FROM _arch)
                              AND w.parent_workflow_id IS NOT NULL))
"""


def archive_dir(db_path: str | os.PathLike[str]) -> Path:
    """The archive's directory of a DuckDB file: ``<file>.archive`` beside it."""
    return Path(str(db_path) + ".archive")


def store_crash_points() -> tuple[CrashPoints | None, CrashPoints | None]:
    """(the commit log's crash point, the archive's) from ``CONDUCTOR_LAB_CRASH`` (tests only)."""
    point, _, n = os.environ.get(CRASH_ENV, "").rpartition(":")
    if point in ARCHIVE_CRASH_POINTS:
        if not n.isdigit() or int(n) < 1:
            raise ValueError(f"{CRASH_ENV}: expected {point}:<n> with n >= 1")
        log.warning("%s=%s:%s: this process will kill itself there (fault injection for tests)", CRASH_ENV, point, n)
        return None, CrashPoints(point, int(n))
    return crash_points(), None


def placeholder_views(con: duckdb.DuckDBPyConnection) -> None:
    """The archive views as empty selects over the tables, where they do not exist yet: the
    documented views read them, and a store with no archived batch has no file to read."""
    for a in ARCHIVED:
        con.execute(f"CREATE VIEW IF NOT EXISTS {a.view} AS {a.empty}")


def _lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _quote(path: Path) -> str:
    return _lit(str(path))


def _fsync(path: Path, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _day(end_time_ms: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(end_time_ms / 1000))


class BatchAbandoned(RuntimeError):
    """A batch's workflows changed under it (see ``ParquetArchive.run_batch``): tried again later."""


#: a batch's file while it is not committed: the views' glob (``*.parquet``) does not match it
def staged_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


#: characters that make a directory unusable in a glob pattern: the views then list the files
_GLOB_CHARS = frozenset("*?[]{}")
#: a file's batch (``.../day=2026-11-30/b000042.parquet``): the glob views read only the files of
#: batches committed in the reader's snapshot
_BATCH_OF_FILE = r"CAST(regexp_extract(filename, 'b(\d+)\.parquet$', 1) AS BIGINT)"

#: candidates fetched per query, in batches' worth: one scan of ``cl_workflows`` serves this many
#: batches of a round (each batch re-checks its workflows under the lock)
CANDIDATE_BATCHES = 32


@dataclass(slots=True)
class _Prepared:
    """A batch written from a read snapshot, not committed: what the locked part checks and commits."""

    batch_id: int
    day: str
    ids: list[str]
    bounds: dict[str, str]
    #: per table directory: (rows written, sum of the rows' hashes) in the snapshot
    prints: dict[str, tuple[int, int]]
    #: (staged, final) file per table, in ``ARCHIVED`` order
    files: list[tuple[Path, Path]]


class ParquetArchive:
    """The archive of one ``DuckDBStore``: its directory, committed files and batches.

    The store calls ``run_batch`` (archiver thread), ``files`` and ``stats`` (any thread). The
    list of committed files changes only under the store's fold lock, after a batch's COMMIT.
    """

    def __init__(self, store: DuckDBStore, crash: CrashPoints | None = None) -> None:
        self.store = store
        self.dir: Path | None = None if store.path in ("", ":memory:") else archive_dir(store.path)
        self._crash = crash
        #: relative path of every committed file, per archived table directory
        self._files: dict[str, list[str]] = {a.directory: [] for a in ARCHIVED}
        self._batches = 0
        self._workflows = 0
        self._next_batch = 1
        #: the views read ``<dir>/<table>/*/*.parquet`` (False: no file yet, or a directory a glob
        #: cannot name: then they list the files and are re-created after each batch)
        self._globbed = False
        #: files of one table with different columns (a migration between batches): the views
        #: then match columns by name across files (``union_by_name``, slower to bind)
        self._mixed = False
        self._lock = threading.Lock()  # one batch at a time
        #: due workflows selected by one scan and not archived yet (``CANDIDATE_BATCHES``), oldest first
        self._due: deque[tuple[str, int]] = deque()
        self._due_cutoff: int | None = None
        self._hash_sql: dict[str, str] = {}
        #: (smallest, largest workflow id, workflows file) of each committed batch: a read of one
        #: archived workflow opens only the files whose range holds its id (``lookup``)
        self._ranges: list[tuple[str, str, str]] = []
        #: seconds the fold lock was held, per batch since ``take_lock_times`` last ran
        self._held: list[float] = []
        #: a batch has run (or is running): reads look at the archive (``has_files``)
        self._armed = False

    # ------------------------------------------------------------------ open

    def open(self, con: duckdb.DuckDBPyConnection) -> None:
        """Read the committed batches, finish or drop the files of a batch a crash interrupted,
        point the archive views at the files.

        A committed batch's file still under its staged name (a power cut after the COMMIT before
        the directory held the rename) is renamed into place; every other file not listed by a committed batch belongs to
        a batch that never committed (its rows are still in the tables) and is deleted.
        """
        rows = con.execute(
            "SELECT batch_id, workflows, files FROM cl_archive_batches ORDER BY batch_id"
        ).fetchall()
        committed: set[str] = set()
        missing: list[str] = []
        renamed = 0
        for batch_id, workflows, files in rows:
            self._batches += 1
            self._workflows += int(workflows)
            self._next_batch = max(self._next_batch, int(batch_id) + 1)
            for rel in json.loads(files):
                committed.add(rel)
                if self.dir is not None and not (self.dir / rel).is_file():
                    staged = staged_name(self.dir / rel)
                    if not staged.is_file():
                        missing.append(rel)
                        continue
                    os.replace(staged, self.dir / rel)
                    renamed += 1
                self._files[rel.split("/", 1)[0]].append(rel)
        if renamed and self.dir is not None and self.store.durable:
            for d in {(self.dir / r).parent for r in committed}:
                _fsync(d, directory=True)
        if renamed:
            log.info("%s: renamed %d staged Parquet files of a committed archive batch", self.store.path, renamed)
        if missing:
            log.warning(
                "%s: %d archived Parquet files are missing (left out of the views): %s",
                self.store.path,
                len(missing),
                ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""),
            )
        if self.dir is not None and self.dir.is_dir():
            orphans = [
                p
                for p in self.dir.rglob("*")
                if p.is_file() and p.relative_to(self.dir).as_posix() not in committed
            ]
            for p in orphans:  # a batch that crashed before its COMMIT: its rows are still in the tables
                p.unlink()
            if orphans:
                log.info("%s: deleted %d Parquet files of an unfinished archive batch", self.store.path, len(orphans))
        if rows:
            con.execute("SET GLOBAL parquet_metadata_cache = true")  # the files never change
            self._mixed = self._mixed_columns(con)
            self._ranges = self._read_ranges(con)
        for sql in self._view_sql():
            con.execute(sql)

    def _mixed_columns(self, con: duckdb.DuckDBPyConnection) -> bool:
        """True if some table's files do not all have the columns a batch writes today (one scan
        of the footers at open; new files always have today's)."""
        if self.dir is None:
            return False
        for a in ARCHIVED:
            rels = self._files[a.directory]
            if not rels:
                continue
            now = ",".join(sorted(d[0] for d in con.execute(f"SELECT * FROM ({a.empty}) LIMIT 0").description or ()))
            paths = "[" + ", ".join(_quote(self.dir / r) for r in rels) + "]"
            found = con.execute(
                "SELECT DISTINCT string_agg(name, ',' ORDER BY name) FROM parquet_schema("
                + paths
                + ") WHERE num_children IS NULL OR num_children = 0 GROUP BY file_name"
            ).fetchall()
            if len(found) != 1 or found[0][0] != now:
                log.info("%s: archived %s files have other columns: views match them by name", self.store.path, a.directory)
                return True
        return False

    def _read_ranges(self, con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
        """Each workflows file's id range, from the footers' statistics (once, at open)."""
        rels = self._files["workflows"]
        if self.dir is None or not rels:
            return []
        paths = {str(self.dir / r): r for r in rels}
        rows = con.execute(
            "SELECT file_name, min(stats_min_value), max(stats_max_value) FROM parquet_metadata(["
            + ", ".join(_lit(p) for p in paths)
            + "]) WHERE path_in_schema = 'workflow_id' GROUP BY file_name"
        ).fetchall()
        found = {str(f): (lo, hi) for f, lo, hi in rows}
        out = []
        for path, rel in paths.items():
            lo, hi = found.get(path, (None, None))
            out.append((lo or "", hi if hi is not None else "\U0010ffff", rel))  # no statistics: always read
        return out

    def lookup(self, table: str, columns: str, workflow_id: str, order: str = "") -> tuple[str, list[Any]] | None:
        """A query for ``columns`` of ``table``'s archived rows of one workflow (``workflows`` or
        ``tasks``) that reads only the batches whose id range holds it (a view would open the
        footers of every file); None when no batch can hold it."""
        if self.dir is None:
            return None
        rels = [rel for lo, hi, rel in self._ranges if lo <= workflow_id <= hi]
        if not rels:
            return None
        paths = ", ".join(_quote(self.dir / (table + rel[len("workflows") :])) for rel in rels)
        ubn = ", union_by_name = true" if self._mixed else ""
        sql = f"SELECT {columns} FROM read_parquet([{paths}]{ubn}) WHERE workflow_id = ?"
        return sql + (f" ORDER BY {order}" if order else ""), [workflow_id]

    def _view_sql(self) -> list[str]:
        """The four archive views: over a glob per table once a file exists (never re-created
        after), an empty select over the table before."""
        out = []
        self._globbed = False
        ubn = ", union_by_name = true" if self._mixed else ""
        for a in ARCHIVED:
            rels = self._files[a.directory]
            if not rels or self.dir is None:
                out.append(f"CREATE OR REPLACE VIEW {a.view} AS {a.empty}")
            elif not _GLOB_CHARS & set(str(self.dir)):
                pattern = _quote(self.dir / a.directory / "*" / "*.parquet")
                out.append(
                    f"CREATE OR REPLACE VIEW {a.view} AS SELECT * EXCLUDE (filename) FROM "
                    f"read_parquet({pattern}, hive_partitioning = false, filename = true{ubn}) "
                    f"WHERE {_BATCH_OF_FILE} IN (SELECT batch_id FROM cl_archive_batches)"
                )
                self._globbed = True
            else:
                paths = ", ".join(_quote(self.dir / r) for r in rels)
                out.append(f"CREATE OR REPLACE VIEW {a.view} AS SELECT * FROM read_parquet([{paths}]{ubn})")
        return out

    # ------------------------------------------------------------------ reading

    @property
    def has_files(self) -> bool:
        """True once reads must look at the archive too: from the first batch's start (well
        before its COMMIT), so a read that checks this and then queries never misses the rows a
        batch committing meanwhile moved (before any file exists the views are empty selects)."""
        return self._armed or self._batches > 0

    def take_lock_times(self) -> list[float]:
        """Seconds the fold lock was held by each batch since the last call (the round's log line)."""
        out, self._held = self._held, []
        return out

    def files(self) -> list[Path]:
        """Every committed Parquet file (absolute paths)."""
        if self.dir is None:
            return []
        return [self.dir / r for rels in self._files.values() for r in rels]

    def stats(self) -> dict[str, int]:
        files = self.files()
        size = 0
        for p in files:
            try:
                size += p.stat().st_size
            except FileNotFoundError:
                pass
        return {"workflows": self._workflows, "files": len(files), "bytes": size, "batches": self._batches}

    # ------------------------------------------------------------------ one batch

    def run_batch(self, cutoff_ms: int, limit: int = ARCHIVE_BATCH) -> int:
        """Archive the oldest due workflows of one end day (at most ``limit``); how many moved.

        The caller folded the log just before. Without the fold lock, from one read snapshot:
        pick the batch, write its files under a staged name (which the views' glob does not
        match), fsync them and take a fingerprint of its rows (count and hash sum per table).
        Then, under the fold lock: check that no unfolded commit names the batch's workflows and
        that none has a running parent or child now; ONE transaction deletes their rows (each
        table's deleted rows must have the snapshot's fingerprint: nothing changed them since the
        files were written) and records the batch, and the files (renamed into place just
        before) are admitted to the views by that COMMIT. Files of a batch that did not commit are
        deleted again.
        """
        self._armed = True
        if self.dir is None:
            raise ValueError("an in-memory store has no archive (archiving needs a DuckDB file)")
        store = self.store
        with self._lock:
            with store._clock:  # no fold here: the caller folded (a test runs a batch without it)
                store._check_open()
                cur = store._con.cursor()
            staged: list[Path] = []
            try:
                began = time.perf_counter()
                prepared = self._prepare(cur, int(cutoff_ms), max(1, int(limit)), staged)
                if prepared is None:
                    return 0
                written = time.perf_counter()
                with store._mlock:
                    locked = time.perf_counter()
                    store._check_open()
                    self._publish(cur, prepared, staged)
                    held = time.perf_counter() - locked
                self._held.append(held)
                del self._held[:-10_000]
            except BaseException:
                self._due.clear()  # selected again next time
                for p in staged:  # not committed: the rows are still in the tables
                    p.unlink(missing_ok=True)
                raise
            finally:
                cur.close()
        log.debug(
            "archive batch %d: %d workflows that ended on %s; written in %.1f ms, fold lock held %.1f ms",
            prepared.batch_id,
            len(prepared.ids),
            prepared.day,
            (written - began) * 1000,
            held * 1000,
        )
        return len(prepared.ids)

    def _next_ids(self, cur: duckdb.DuckDBPyConnection, cutoff_ms: int, limit: int) -> tuple[str, list[str]]:
        """The next batch's candidates (one end day, at most ``limit``) from the round's list,
        refilled by one scan when empty; ("", []) when nothing is due."""
        if self._due_cutoff != cutoff_ms:
            self._due.clear()
            self._due_cutoff = cutoff_ms
        if not self._due:
            rows = cur.execute(_CANDIDATES_SQL, [cutoff_ms, limit * CANDIDATE_BATCHES]).fetchall()
            self._due.extend((str(w), int(e)) for w, e in rows)
        if not self._due:
            return "", []
        day = _day(self._due[0][1])
        ids: list[str] = []
        while self._due and len(ids) < limit and _day(self._due[0][1]) == day:
            ids.append(self._due.popleft()[0])
        return day, ids

    def _prepare(
        self, cur: duckdb.DuckDBPyConnection, cutoff_ms: int, limit: int, staged: list[Path]
    ) -> _Prepared | None:
        """Pick a batch and write its files (staged, fsynced) from one read snapshot; None when
        nothing is due. Appends each file to ``staged`` before writing it."""
        assert self.dir is not None
        while True:
            day, ids = self._next_ids(cur, cutoff_ms, limit)
            if not ids:
                return None
            cur.execute("BEGIN TRANSACTION")
            try:
                lo, hi = _lit(min(ids)), _lit(max(ids))
                # still due in this snapshot (the list may be older than it)
                cur.execute(
                    "CREATE OR REPLACE TEMP TABLE _arch AS SELECT workflow_id FROM cl_workflows WHERE "
                    f"workflow_id BETWEEN {lo} AND {hi} AND workflow_id IN (SELECT unnest(?::VARCHAR[])) "
                    f"AND status IN ({_TERMINAL_SQL}) AND end_time > 0 AND end_time < ?",
                    [ids, cutoff_ms],
                )
                ids = [r[0] for r in cur.execute("SELECT workflow_id FROM _arch ORDER BY workflow_id").fetchall()]
                if not ids:
                    cur.execute("COMMIT")
                    continue
                bounds = {"lo": _lit(ids[0]), "hi": _lit(ids[-1])}
                cur.execute(
                    "CREATE OR REPLACE TEMP TABLE _arch_tasks AS SELECT task_id FROM cl_tasks WHERE "
                    + _IN_BATCH.format(**bounds)
                )
                row = cur.execute("SELECT min(task_id), max(task_id) FROM _arch_tasks").fetchone()
                bounds["tlo"], bounds["thi"] = (_lit(row[0]), _lit(row[1])) if row and row[0] else ("''", "''")
                batch_id = self._next_batch
                files: list[tuple[Path, Path]] = []
                prints: dict[str, tuple[int, int]] = {}
                for a in ARCHIVED:
                    path = self.dir / a.directory / f"day={day}" / f"b{batch_id:06d}.parquet"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = staged_name(path)
                    staged.append(tmp)
                    cur.execute(
                        f"COPY ({a.select.format(**bounds)}) TO {_quote(tmp)} (FORMAT parquet, COMPRESSION zstd)"
                    )
                    files.append((tmp, path))
                    where = _DELETES_WHERE[a.directory].format(**bounds)
                    n, total = cur.execute(
                        f"SELECT count(*), coalesce(sum({self._hash(cur, a.source)}), 0) FROM {a.source} WHERE {where}"
                    ).fetchone() or (0, 0)
                    prints[a.directory] = (int(n), int(total))
                cur.execute("COMMIT")
            except BaseException:
                _rollback(cur)
                raise
            if self.store.durable:
                for tmp, _ in files:
                    _fsync(tmp)
                for d in {t.parent for t, _ in files} | {t.parent.parent for t, _ in files} | {self.dir}:
                    _fsync(d, directory=True)
            if self._crash is not None:
                self._crash.hit("archive-after-write")
            return _Prepared(batch_id, day, ids, bounds, prints, files)

    def _hash(self, cur: duckdb.DuckDBPyConnection, table: str) -> str:
        """``hash(<every column of table>)``: a row's fingerprint (a batch checks its rows did not
        change between the snapshot its files were written from and its delete)."""
        if table not in self._hash_sql:
            cols = [d[0] for d in cur.execute(f"SELECT * FROM {table} LIMIT 0").description or ()]
            self._hash_sql[table] = "hash(" + ", ".join('"' + c.replace('"', '""') + '"' for c in cols) + ")"
        return self._hash_sql[table]

    def _publish(self, cur: duckdb.DuckDBPyConnection, b: _Prepared, staged: list[Path]) -> None:
        """The locked part of a batch: checks, the files renamed into place, ONE transaction
        (deletes + batch row), COMMIT. A failure before the COMMIT leaves the files to the caller,
        which deletes them (``staged`` names them); a crash, to ``open``, which does."""
        assert self.dir is not None
        self._check_unfolded(set(b.ids))
        rels = [final.relative_to(self.dir).as_posix() for _, final in b.files]
        # In place before the COMMIT: the views read only files of batches in cl_archive_batches
        # (in the reader's own snapshot), so a reader sees either these rows in the tables or this
        # batch, never both and never neither. A crash from here to the COMMIT leaves files that no
        # committed batch lists: ``open`` deletes them.
        for tmp, final in b.files:
            os.replace(tmp, final)
        staged[:] = [final for _, final in b.files]  # the caller deletes these if this fails
        first = self._batches == 0
        for rel in rels:  # the view SQL below lists them (file-list views); undone on failure
            self._files[rel.split("/", 1)[0]].append(rel)
        self._ranges.append((b.ids[0], b.ids[-1], rels[0]))  # (rels[0]: the workflows file)
        cur.execute("BEGIN TRANSACTION")
        try:
            row = cur.execute(_RUNNING_RELATIVES_SQL.format(**b.bounds)).fetchone()
            if row and row[0]:
                raise BatchAbandoned(f"archive batch {b.batch_id}: {row[0]} workflows of it have a running parent or child")
            for directory, sql in _DELETES:
                source = next(a.source for a in ARCHIVED if a.directory == directory)
                got = cur.execute(f"{sql.format(**b.bounds)} RETURNING {self._hash(cur, source)}").fetchall()
                mark = (len(got), sum(int(r[0]) for r in got))
                if mark != b.prints[directory]:  # nothing else writes these rows: a bug if so
                    raise BatchAbandoned(
                        f"archive batch {b.batch_id}: {mark[0]} {directory} rows to delete, "
                        f"{b.prints[directory][0]} written (or their content changed since)"
                    )
            cur.execute(
                "INSERT INTO cl_archive_batches VALUES (?, ?, ?, ?, ?)",
                [b.batch_id, b.day, len(b.ids), json.dumps(rels), int(time.time() * 1000)],
            )
            if first or not self._globbed:  # DDL is transactional: the views change with the COMMIT
                for sql in self._view_sql():
                    cur.execute(sql)
            if self._crash is not None:
                self._crash.hit("archive-before-commit")
            cur.execute("COMMIT")
        except BaseException:
            _rollback(cur)
            for rel in rels:
                self._files[rel.split("/", 1)[0]].remove(rel)
            self._ranges.pop()
            if first:
                self._globbed = False
            raise
        staged.clear()  # committed: the files are the archive's now
        self._batches += 1
        self._workflows += len(b.ids)
        self._next_batch = b.batch_id + 1
        if first:
            cur.execute("SET GLOBAL parquet_metadata_cache = true")
        if self._crash is not None:
            self._crash.hit("archive-after-commit")

    def _check_unfolded(self, ids: set[str]) -> None:
        """Refuse the batch if a commit not folded yet writes one of its workflows (it would come
        back into the tables after the batch): ``ArchivePolicy`` makes that impossible; a belt."""
        store = self.store
        with store._wlock:  # the newest group changes under this lock only
            touched: set[str] = set().union(*(g.workflow_ids() for g in store._groups))
        if touched & ids:
            raise BatchAbandoned(f"a commit not folded yet changes workflows of the batch: {sorted(touched & ids)[:3]}")


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass


# ---------------------------------------------------------------------- the engine's side


@dataclass(slots=True)
class ArchivePolicy:
    """When a finished workflow becomes read-only history (the verbs' side of ``--archive-after``).

    ``horizon``: the latest clock value an archive round started from (set on the event loop).
    A verb compares against ``max(now, horizon)``: a workflow the archiver may take is never
    changed, even if the clock steps back.
    """

    after_ms: int
    horizon: int = 0

    @classmethod
    def of_days(cls, days: float) -> ArchivePolicy:
        if not days >= 0:  # also refuses NaN
            raise ValueError(f"archive-after must be a number of days >= 0, not {days!r}")
        return cls(int(days * 86_400_000))

    @property
    def days(self) -> float:
        return self.after_ms / 86_400_000

    def due(self, end_time: int, now: int) -> bool:
        """True when a workflow that ended at ``end_time`` is (or may be being) archived."""
        return 0 < end_time < max(now, self.horizon) - self.after_ms


class Archiver:
    """The archive rounds of a running engine, on a thread of their own.

    Every ``interval_s`` (and once at start): ``prepare()`` on the event loop (advances the
    policy's horizon, waits for the group commit; returns the round's clock), then batch after
    batch until nothing is due, the store's fold lock released between batches.
    """

    def __init__(
        self,
        store: ArchivingStore,
        policy: ArchivePolicy,
        loop: asyncio.AbstractEventLoop,
        prepare: Callable[[], Coroutine[Any, Any, int]],
        *,
        interval_s: float = ARCHIVE_INTERVAL_SECONDS,
        batch: int = ARCHIVE_BATCH,
    ) -> None:
        self.store = store
        self.policy = policy
        self.loop = loop
        self.prepare = prepare
        self.interval_s = max(0.01, float(interval_s))
        self.batch = max(1, int(batch))
        self.rounds = 0
        self.archived = 0
        self._stop = threading.Event()
        self._round = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="conductor-lab-archive", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the batch in progress (blocking: call it off the event loop)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("archive round failed (tried again in %gs)", self.interval_s)
            if self._stop.wait(self.interval_s):
                return

    def run_once(self) -> int:
        """One round: everything due now, batch after batch. Blocking; not on the event loop."""
        with self._round:
            now: int = asyncio.run_coroutine_threadsafe(self.prepare(), self.loop).result()
            cutoff = now - self.policy.after_ms
            total = 0
            times: list[float] = []  # seconds per batch
            began = time.perf_counter()
            while not self._stop.is_set():
                t0 = time.perf_counter()
                try:
                    n = self.store.archive_batch(cutoff, self.batch)
                except BatchAbandoned as exc:
                    log.warning("archive batch abandoned (tried again next round): %s", exc)
                    break
                if n == 0:
                    break
                times.append(time.perf_counter() - t0)
                total += n
                time.sleep(0)  # let the fold and readers in between batches
            self.rounds += 1
            self.archived += total
            held = self.store.archive_lock_times()
            if total:
                log.info(
                    "archived %d finished workflows (ended before %s) in %d batches, %.1f s "
                    "(batch p50 %s ms, p99 %s ms, longest batch %.0f ms; fold lock held p50 %s, p99 %s, max %s ms)",
                    total,
                    time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(cutoff / 1000)),
                    len(times),
                    time.perf_counter() - began,
                    *_quantiles(times)[:2],
                    max(times) * 1000,
                    *_quantiles(held),
                )
            return total


def _quantiles(seconds: list[float]) -> tuple[str, str, str]:
    """p50, p99 and max of ``seconds`` in whole ms ("-" if empty), for a log line."""
    if not seconds:
        return "-", "-", "-"
    xs = sorted(seconds)
    p50, p99, top = (f"{xs[min(len(xs) - 1, int(len(xs) * q))] * 1000:.0f}" for q in (0.5, 0.99, 1.0))
    return p50, p99, top


def describe(stats: dict[str, Any]) -> str:
    """One line for logs and the status command: ``1,234 workflows in 12 files (3.4 MB, 3 batches)``."""
    return (
        f"{stats.get('workflows', 0):,} workflows in {stats.get('files', 0):,} files "
        f"({stats.get('bytes', 0) / 1e6:.1f} MB, {stats.get('batches', 0):,} batches)"
    )
