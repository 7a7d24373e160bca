"""A consistent copy of a running store: one DuckDB file, taken while commits and folds go on.

``backup_store(store, dest_dir)`` (``DuckDBStore.backup``, ``POST /api/admin/backup``):

1. Fold the commit log (``store.materialize()``): every commit acknowledged before the backup
   began is then in the tables. What is committed later may or may not be in the copy.
2. On a cursor of its own, ``ATTACH`` a new file ``<dest_dir>/<name>.duckdb.partial`` and
   ``COPY FROM DATABASE <store> TO`` it: ONE statement, so ONE transaction and one MVCC snapshot;
   the folds that commit meanwhile are not in it, and each fold moves the tables and
   ``cl_meta.journal_folded_seq`` together, so the copy's tables and its folded seq agree. Tables
   (with their column compression), views and ``cl_meta`` (schema version) are copied.
3. ``DETACH`` (DuckDB checkpoints the copy into its one file) and ``fsync`` it.
4. The Parquet archive (retention, ``archive.py``): the files of the batches the copy's
   ``cl_archive_batches`` lists (committed in that same snapshot; archive files never change once
   committed) are copied into ``<name>.duckdb.partial.archive/``, fsynced.
5. Rename both to ``<name>.duckdb`` and ``<name>.duckdb.archive/`` and ``fsync`` the directory:
   the final names never show a half-written copy (a backup killed midway leaves ``.partial``
   names, removed by the next backup to that place; a shutdown interrupts a backup in progress:
   ``cancel_backup``).

Restoring is starting a server on the copy: it has no commit log (everything it holds is folded),
its ``journal_folded_seq`` tells the new log where to go on, and the views are recreated at open.

The copy reads the tables at DuckDB's speed while the event loop keeps serving (the server runs
this in a worker thread; DuckDB releases the GIL while it works). A checkpoint the materializer
attempts during the copy is skipped until it ends (a read transaction is open), as for any long
query.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import duckdb

from conductor_lab.engine.store.archive import archive_dir
from conductor_lab.errors import InvalidInput

__all__ = ["BackupStore", "backup_name", "backup_store", "cancel_backup"]

_lock = threading.Lock()  # one backup at a time per process: the target check and the copy are one step
_running: dict[int, duckdb.DuckDBPyConnection] = {}  # id(store) -> the cursor copying it (cancel_backup)
_running_lock = threading.Lock()
FOLDED_SEQ_KEY = "journal_folded_seq"


class BackupStore(Protocol):
    """What a backup needs of a store (``DuckDBStore``)."""

    path: str

    def materialize(self) -> int: ...

    def cursor(self) -> duckdb.DuckDBPyConnection: ...


def backup_name(store_path: str) -> str:
    """The copy's file name: the store's own (``conductor.duckdb``); in-memory stores get ``memory.duckdb``."""
    name = Path(store_path).name
    if not name or store_path.startswith(":memory:"):
        return "memory.duckdb"
    return name


def backup_store(store: BackupStore, dest_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Copy ``store`` into ``dest_dir`` (created if missing); returns ``{"path", "bytes", "seconds",
    "folded_seq", "archive_files"}`` (``bytes``: the DuckDB file and the archive files copied).

    Raises ``InvalidInput`` (400) when the target file exists already or the directory cannot be
    created or written; the partial file is removed on any failure.
    """
    started = time.monotonic()
    directory = Path(dest_dir).absolute()
    target = directory / backup_name(store.path)
    partial = target.with_name(target.name + ".partial")
    partial_archive = archive_dir(partial)
    with _lock:
        _check_target(directory, target)
        _remove(partial, partial_archive)  # left by a backup killed midway
        store.materialize()
        cur = store.cursor()
        with _running_lock:
            _running[id(store)] = cur
        try:
            cur.execute("SET enable_progress_bar = false")  # a notebook kernel's server would draw it
            try:
                cur.execute(f"ATTACH {_literal(str(partial))} AS backup_db")
            except duckdb.IOException as e:
                raise InvalidInput(f"cannot write a backup in {directory}: {_reason(e)}") from None
            try:
                (source,) = cur.execute("SELECT current_database()").fetchone() or ("",)
                cur.execute(f"COPY FROM DATABASE {_ident(source)} TO backup_db")
                row = cur.execute(
                    "SELECT value FROM backup_db.cl_meta WHERE key = ?", [FOLDED_SEQ_KEY]
                ).fetchone()
                archived = _archived_files(cur)
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    cur.execute("DETACH backup_db")
                raise
            cur.execute("DETACH backup_db")
            _fsync(partial)
            if _wal(partial).exists():  # DETACH checkpoints: a WAL left over would not follow the rename
                raise RuntimeError(f"{_wal(partial)} remained after DETACH; the copy is incomplete")
            copied = _copy_archive(archive_dir(store.path), partial_archive, archived)
            if archived:
                os.rename(partial_archive, archive_dir(target))
            os.rename(partial, target)
            _fsync(directory)
        except BaseException:
            _remove(partial, partial_archive)
            raise
        finally:
            with _running_lock:
                _running.pop(id(store), None)
            cur.close()
    return {
        "path": str(target),
        "bytes": target.stat().st_size + copied,
        "seconds": round(time.monotonic() - started, 3),
        "folded_seq": int(row[0]) if row else 0,
        "archive_files": len(archived),
    }


def cancel_backup(store: object, timeout: float = 30.0) -> bool:
    """Interrupt the backup of ``store`` running in another thread, if any, and wait (up to
    ``timeout``) until it has given up and removed its partial copy; True if there was one.

    For closing the store: DuckDB refuses to close a connection whose cursor is still copying. The
    interrupt is repeated until the backup is gone (one sent between two of its statements would be
    lost); a backup past its last statement just finishes.
    """
    deadline = time.monotonic() + timeout
    found = False
    while True:
        with _running_lock:  # the backup unregisters under it before closing its cursor
            cur = _running.get(id(store))
            if cur is None:
                return found
            found = True
            cur.interrupt()
        if time.monotonic() >= deadline:
            return found
        time.sleep(0.01)


def _archived_files(cur: duckdb.DuckDBPyConnection) -> list[str]:
    """The archive files of the copy's committed batches (relative to ``<db>.archive/``)."""
    has = cur.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'backup_db' AND table_name = 'cl_archive_batches'"
    ).fetchone()
    if not has or not has[0]:
        return []
    rows = cur.execute("SELECT files FROM backup_db.cl_archive_batches ORDER BY batch_id").fetchall()
    return [rel for (files,) in rows for rel in json.loads(files)]


def _copy_archive(source: Path, dest: Path, files: list[str]) -> int:
    """Copy the archive files (an independent copy, not links: a backup shares no blocks with the
    original); returns the bytes copied."""
    size = 0
    dirs: set[Path] = set()
    for rel in files:
        src, dst = source / rel, dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)  # in place: a batch's files are renamed before its COMMIT
        _fsync(dst)
        size += dst.stat().st_size
        dirs.update(p for p in dst.parents if p == dest or dest in p.parents)
    for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        _fsync(d)
    return size


def _remove(partial: Path, partial_archive: Path) -> None:
    for leftover in (partial, _wal(partial)):
        leftover.unlink(missing_ok=True)
    shutil.rmtree(partial_archive, ignore_errors=True)


def _check_target(directory: Path, target: Path) -> None:
    if target.exists() or _wal(target).exists() or archive_dir(target).exists():
        raise InvalidInput(f"{target} exists already: back up into another directory, or move it away first")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InvalidInput(f"cannot create the backup directory {directory}: {e.strerror or e}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InvalidInput(f"cannot write a backup in {directory}: Permission denied")


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _reason(e: duckdb.Error) -> str:
    text = str(e).removeprefix("IO Error: ")
    return text.rsplit(": ", 1)[-1] if ": " in text else text


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
