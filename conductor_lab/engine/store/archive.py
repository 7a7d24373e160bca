"""Retention to Parquet: finished workflows leave the DuckDB tables for day-partitioned Parquet files.

``--archive-after DAYS``: terminal workflows (COMPLETED, FAILED, TIMED_OUT, TERMINATED) that ended
more than DAYS ago move, with their tasks, transitions and task logs, out of ``cl_workflows``,
``cl_tasks``, ``cl_transitions`` and ``cl_task_logs`` into Parquet files beside the database::

    <db>.archive/workflows/day=2026-11-30/b000042.parquet   (and tasks/, transitions/, task_logs/)

one file per table per batch; a batch takes the oldest due workflows of ONE end day (at most
``ARCHIVE_BATCH`` of them). The SQL surface (``duckdb_views``) and search read the tables UNION ALL
the archive, ``get_workflow`` / ``get_tasks`` / ``get_task`` fall back to it. ``docs/storage.md``
("Retention to Parquet") has the whole design; in short:

* **Crash safety** (``ParquetArchive.run_batch``): under the store's fold lock (no fold changes the
  tables meanwhile; commits go on, into the log) the batch's rows are copied into Parquet files
  written under a temporary name, fsynced and renamed into place (directory fsynced); then ONE
  DuckDB transaction deletes the rows, records the batch in ``cl_archive_batches`` (with its files)
  and re-creates the archive views over the committed file list. A file whose batch is not in
  ``cl_archive_batches`` is an orphan of a crash before that COMMIT (its rows are still in the
  tables): ``ParquetArchive.open`` deletes it. So after a kill -9 anywhere, every workflow is either
  in the tables or wholly in the archive, never both.
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
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import orjson

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

#: the batch's rows leave the tables in this order (logs first: they are found through the tasks)
_DELETES: tuple[tuple[str, str], ...] = (
    ("task_logs", f"DELETE FROM cl_task_logs WHERE {_TASK_IN_BATCH}"),
    ("tasks", f"DELETE FROM cl_tasks WHERE {_IN_BATCH}"),
    ("transitions", f"DELETE FROM cl_transitions WHERE {_IN_BATCH}"),
    ("workflows", f"DELETE FROM cl_workflows WHERE {_IN_BATCH}"),
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


class ParquetArchive:
    """The archive of one ``DuckDBStore``: its directory, committed files and batches.

    The store calls ``run_batch`` (archiver thread), ``files`` and ``stats`` (any thread). The
    list of committed files changes only under the store's fold lock, after a batch's COMMIT.
    """

    def __init__(self, store: DuckDBStore, crash: CrashPoints | None = None) -> None:
        self.store = store
        self.dir: Path | None = None if store.path in ("", ":memory:") else archive_dir(store.path)
        self._crash = crash
        #: relative path -> absolute path of every committed file, per archived table directory
        self._files: dict[str, list[str]] = {a.directory: [] for a in ARCHIVED}
        self._batches = 0
        self._workflows = 0
        self._next_batch = 1

    # ------------------------------------------------------------------ open

    def open(self, con: duckdb.DuckDBPyConnection) -> None:
        """Read the committed batches, delete orphan files, point the archive views at the files."""
        rows = con.execute(
            "SELECT batch_id, workflows, files FROM cl_archive_batches ORDER BY batch_id"
        ).fetchall()
        committed: set[str] = set()
        missing: list[str] = []
        for batch_id, workflows, files in rows:
            self._batches += 1
            self._workflows += int(workflows)
            self._next_batch = max(self._next_batch, int(batch_id) + 1)
            for rel in json.loads(files):
                committed.add(rel)
                if self.dir is not None and not (self.dir / rel).is_file():
                    missing.append(rel)
                    continue
                self._files[rel.split("/", 1)[0]].append(rel)
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
        for sql in self._view_sql(self._files):
            con.execute(sql)

    def _view_sql(self, files: dict[str, list[str]]) -> list[str]:
        out = []
        for a in ARCHIVED:
            rels = files[a.directory]
            if rels and self.dir is not None:
                paths = ", ".join(_quote(self.dir / r) for r in rels)
                out.append(f"CREATE OR REPLACE VIEW {a.view} AS SELECT * FROM read_parquet([{paths}], union_by_name = true)")
            else:
                out.append(f"CREATE OR REPLACE VIEW {a.view} AS {a.empty}")
        return out

    # ------------------------------------------------------------------ reading

    @property
    def has_files(self) -> bool:
        return self._batches > 0

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

        The caller folded the log just before. Under the fold lock: select, write the files (temp
        name, fsync, rename, directory fsync), check that no unfolded commit names the batch's
        workflows, then ONE transaction deletes their rows, records the batch and re-points the
        views; files of a batch that did not commit are deleted again.
        """
        if self.dir is None:
            raise ValueError("an in-memory store has no archive (archiving needs a DuckDB file)")
        store = self.store
        written: list[Path] = []
        with store._mlock:
            locked = time.perf_counter()
            store._check_open()
            cur = store._con.cursor()
            try:
                rows = cur.execute(_CANDIDATES_SQL, [int(cutoff_ms), max(1, int(limit))]).fetchall()
                if not rows:
                    return 0
                day = _day(rows[0][1])
                ids = [wid for wid, end in rows if _day(end) == day]
                batch_id = self._next_batch
                cur.execute("CREATE OR REPLACE TEMP TABLE _arch AS SELECT unnest(?::VARCHAR[]) AS workflow_id", [ids])
                bounds = {"lo": _lit(min(ids)), "hi": _lit(max(ids))}
                cur.execute(
                    "CREATE OR REPLACE TEMP TABLE _arch_tasks AS SELECT task_id FROM cl_tasks WHERE "
                    + _IN_BATCH.format(**bounds)
                )
                row = cur.execute("SELECT min(task_id), max(task_id) FROM _arch_tasks").fetchone()
                bounds["tlo"], bounds["thi"] = (_lit(row[0]), _lit(row[1])) if row and row[0] else ("''", "''")
                counts: dict[str, int] = {}
                rels: list[str] = []
                for a in ARCHIVED:
                    rel = f"{a.directory}/day={day}/b{batch_id:06d}.parquet"
                    path = self.dir / rel
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_name(f".{path.name}.tmp")
                    written.append(tmp)
                    n = cur.execute(
                        f"COPY ({a.select.format(**bounds)}) TO {_quote(tmp)} (FORMAT parquet, COMPRESSION zstd)"
                    ).fetchone()
                    counts[a.directory] = int(n[0]) if n else 0
                    if store.durable:
                        _fsync(tmp)
                    os.replace(tmp, path)
                    written[-1] = path
                    rels.append(rel)
                if store.durable:
                    for d in {p.parent for p in written} | {p.parent.parent for p in written} | {self.dir}:
                        _fsync(d, directory=True)
                if self._crash is not None:
                    self._crash.hit("archive-after-write")
                self._check_unfolded(set(ids))
                cur.execute("BEGIN TRANSACTION")
                try:
                    for directory, sql in _DELETES:
                        n = cur.execute(sql.format(**bounds)).fetchone()
                        deleted = int(n[0]) if n else 0
                        if deleted != counts[directory]:  # nothing else writes these tables: a bug if so
                            raise BatchAbandoned(
                                f"archive batch {batch_id}: {deleted} {directory} rows to delete, "
                                f"{counts[directory]} written"
                            )
                    cur.execute(
                        "INSERT INTO cl_archive_batches VALUES (?, ?, ?, ?, ?)",
                        [batch_id, day, len(ids), json.dumps(rels), int(time.time() * 1000)],
                    )
                    after = {k: list(v) for k, v in self._files.items()}
                    for rel in rels:
                        after[rel.split("/", 1)[0]].append(rel)
                    for sql in self._view_sql(after):
                        cur.execute(sql)
                    if self._crash is not None:
                        self._crash.hit("archive-before-commit")
                    cur.execute("COMMIT")
                except BaseException:
                    _rollback(cur)
                    raise
            except BaseException:
                for p in written:  # not committed: the rows are still in the tables
                    p.unlink(missing_ok=True)
                raise
            finally:
                cur.close()
            if self._crash is not None:
                self._crash.hit("archive-after-commit")
            if self._batches == 0:
                store._con.execute("SET GLOBAL parquet_metadata_cache = true")
            self._files = after
            self._batches += 1
            self._workflows += len(ids)
            self._next_batch = batch_id + 1
        log.debug(
            "archive batch %d: %d workflows that ended on %s, fold lock held %.1f ms",
            batch_id,
            len(ids),
            day,
            (time.perf_counter() - locked) * 1000,
        )
        return len(ids)

    def _check_unfolded(self, ids: set[str]) -> None:
        """Refuse the batch if a commit not folded yet writes one of its workflows (it would come
        back into the tables after the batch): ``ArchivePolicy`` makes that impossible; a belt."""
        store = self.store
        with store._wlock:
            records = list(store._records)
        for _, text in records:
            b = orjson.loads(text)
            touched = {r[0] for r in b.get("w", ())} | {r[1] for r in b.get("t", ())}
            touched |= {r[1] for r in b.get("x", ())} | set(b.get("wfd", ()))
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
            total = batches = 0
            longest = 0.0
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
                longest = max(longest, time.perf_counter() - t0)
                total += n
                batches += 1
                time.sleep(0)  # let the fold and readers in between batches
            self.rounds += 1
            self.archived += total
            if total:
                log.info(
                    "archived %d finished workflows (ended before %s) in %d batches, %.1f s (longest batch %.0f ms)",
                    total,
                    time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(cutoff / 1000)),
                    batches,
                    time.perf_counter() - began,
                    longest * 1000,
                )
            return total


def describe(stats: dict[str, Any]) -> str:
    """One line for logs and the status command: ``1,234 workflows in 12 files (3.4 MB, 3 batches)``."""
    return (
        f"{stats.get('workflows', 0):,} workflows in {stats.get('files', 0):,} files "
        f"({stats.get('bytes', 0) / 1e6:.1f} MB, {stats.get('batches', 0):,} batches)"
    )
