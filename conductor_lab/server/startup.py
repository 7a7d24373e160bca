"""Startup errors as one clear line: what went wrong, named, and what to do about it.

``conductor-lab serve`` (and ``lab``, ``make run``) used to end in a Python traceback when the
port was taken, the DuckDB file was held by another process, the file was no DuckDB database or a
newer conductor_lab's, or the path could not be created. :func:`describe_startup_error` maps each
of those exceptions to one line (``conductor-lab: ...``) for stderr; the CLI prints it and exits
with status 2. An exception it does not know gives ``None``: the caller keeps the traceback (a bug
should be reported, not hidden behind a vague sentence).

Only errors raised before the server listens are startup errors (``server.run.serve`` wraps them
in :class:`StartupError`); what fails later is a crash of a running server and is logged as one.
"""

from __future__ import annotations

import errno
import os
import re

import duckdb

from conductor_lab.engine.store.journal import JournalCorruption
from conductor_lab.engine.store.migrations import NewerSchemaError, NotAStoreError

__all__ = ["ListenError", "StartupError", "describe_startup_error", "startup_error"]

PREFIX = "conductor-lab: "

# DuckDB 2.0.1: 'IO Error: Could not set lock on file "X": Conflicting lock is held in EXE (PID 17285). ...'
_LOCK = re.compile(r"Could not set lock on file")
_LOCK_PID = re.compile(r"\(PID (\d+)\)")
# 'IO Error: The file "X" exists, but it is not a valid DuckDB database file!'
_NOT_DUCKDB = re.compile(r"not a valid DuckDB database file")
# 'IO Error: Cannot open file "X": Permission denied' / 'Could not read from file "X": Is a directory'
_OPEN = re.compile(r'(?:Cannot open|Could not read from) file "[^"]*": (.+)')
# 'IO Error: Trying to read a database file with version number 99, but we can only read ...'
_STORAGE_VERSION = re.compile(r"Trying to read a database file with version number")
# journal.JournalLog.open: '<db>.journal is in use by another store of this process'
_JOURNAL_LOCK = re.compile(r"\.journal is in use by another store")


class ListenError(OSError):
    """Binding the server's socket failed (port in use, an address not on this machine, ...).

    Raised by ``open_server`` in place of the bare ``OSError`` from ``bind_sockets``, so the
    mapping below can tell a socket error from a file error with the same errno.
    """

    def __init__(self, host: str, port: int, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause))
        self.host = host
        self.port = port


class StartupError(Exception):
    """The server could not start; ``line`` says why in one line (the cause is chained)."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line


def startup_error(
    exc: BaseException, db_path: str | os.PathLike[str], host: str, port: int
) -> StartupError | None:
    """``exc`` as a :class:`StartupError` when it is a known startup problem, else None."""
    line = describe_startup_error(exc, db_path, host, port)
    return StartupError(line) if line is not None else None


def describe_startup_error(
    exc: BaseException, db_path: str | os.PathLike[str], host: str, port: int
) -> str | None:
    """One line naming the problem and saying what to do, or None when ``exc`` is not a known one.

    ``db_path``, ``host`` and ``port`` are what the user asked for (``--db``, ``--host``,
    ``--port``): the line names them as given.
    """
    if isinstance(exc, StartupError):  # described where it was raised (e.g. the gRPC listener)
        return exc.line
    db = os.fspath(db_path)
    line = _describe(exc, db, host, port)
    return None if line is None else PREFIX + _one_line(line)


def _describe(exc: BaseException, db: str, host: str, port: int) -> str | None:
    from conductor_lab.server.run import UnsafeBinding  # run imports this module

    if isinstance(exc, UnsafeBinding | NewerSchemaError | JournalCorruption):
        return str(exc)
    if isinstance(exc, NotAStoreError):
        return f"{exc}; pass another --db"
    if isinstance(exc, ListenError):
        return _listen(exc, host, port)
    if isinstance(exc, duckdb.Error):
        return _duckdb(exc, db)
    if isinstance(exc, RuntimeError) and _JOURNAL_LOCK.search(str(exc)):
        return f"the commit log {db}.journal is in use by another store; stop it or pass another --db"
    if isinstance(exc, OSError) and exc.filename is not None and _on_db_path(os.fspath(exc.filename), db):
        return _path(exc, db)
    return None


def _on_db_path(where: str, db: str) -> bool:
    """``where`` is the DuckDB file, its commit log (or a file in it) or a directory above them."""
    target = os.path.abspath(db)
    where = os.path.abspath(where)
    return (
        target == where
        or where.startswith(target + ".journal")
        or target.startswith(where.rstrip(os.sep) + os.sep)
    )


def _listen(exc: ListenError, host: str, port: int) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is already in use; pick another with --port (make run PORT={port + 1})"
    if exc.errno == errno.EACCES:
        return f"not allowed to listen on port {port} on {host} (ports below 1024 need privileges); pick another with --port"
    return f"cannot listen on {host} port {port}: {exc.strerror}; check --host and --port"


def _duckdb(exc: duckdb.Error, db: str) -> str | None:
    text = str(exc)
    if _LOCK.search(text):
        m = _LOCK_PID.search(text)
        holder = f"another process (PID {m.group(1)})" if m else "another process"
        return f"{db} is in use by {holder}; stop it or pass another --db"
    if _NOT_DUCKDB.search(text):
        return f"{db} is not a DuckDB database file; pass another --db"
    if _STORAGE_VERSION.search(text):
        return f"{db} was written by an incompatible DuckDB version ({_strip_io(text)})"
    m = _OPEN.search(text)
    if m:
        verb = "open" if os.path.exists(db) else "create"
        return f"cannot {verb} {db}: {m.group(1).rstrip('.!')}"
    return None


def _path(exc: OSError, db: str) -> str:
    """The DuckDB file's directory (or the commit log's) could not be created or opened."""
    reason = exc.strerror or str(exc)
    where = os.fspath(exc.filename)
    if exc.errno == errno.EEXIST and not os.path.isdir(where):
        reason = "Not a directory"  # mkdir(exist_ok=True) on a path that is a file
    detail = "" if where == db else f" ({where})"
    return f"cannot create {db}: {reason}{detail}"


def _strip_io(text: str) -> str:
    return text.removeprefix("IO Error: ").strip()


def _one_line(text: str) -> str:
    return " ".join(text.split())
