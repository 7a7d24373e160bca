"""Startup errors of ``conductor-lab serve`` / ``lab``: one line on stderr, exit status 2, no traceback.

Each case runs the real command in a subprocess on a real obstacle (a bound socket, a server
holding the file, a text file, a newer store, a path under a regular file, a held commit-log lock,
a corrupt commit log) and checks the whole of stderr: exactly one line that names the thing.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from conductor_lab.engine.store.duckdb import DuckDBStore, journal_dir
from conductor_lab.engine.store.journal import LOCK_NAME, encode_frame
from conductor_lab.server.startup import ListenError, describe_startup_error
from tests.conftest import REPO_ROOT, ServerProcess


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "conductor_lab.cli", *args]
    return subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


def serve(db: Path | str, *extra: str) -> subprocess.CompletedProcess[str]:
    return cli("serve", "--db", str(db), "--port", "0", *extra)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The run failed with status 2 and exactly one line on stderr (nothing else): that line."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "listening" not in done.stdout, done.stdout
    assert done.stderr.endswith("\n") and done.stderr.count("\n") == 1, done.stderr
    line = done.stderr.rstrip("\n")
    assert line.startswith("conductor-lab: ") and line.strip() == line, line
    assert "Traceback" not in line
    return line


def make_store(db: Path) -> None:
    DuckDBStore(db).close()


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line(cli("serve", "--db", str(tmp_path / "c.duckdb"), "--port", str(port)))
    assert f"port {port} on 127.0.0.1 is already in use" in line
    assert "--port" in line and f"make run PORT={port + 1}" in line


def test_store_in_use_names_the_holders_pid(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    with ServerProcess(db, log_dir=tmp_path / "first") as first:
        assert first.proc is not None
        line = one_line(serve(db))
        assert line == (
            f"conductor-lab: {db} is in use by another process (PID {first.proc.pid}); "
            "stop it or pass another --db"
        )


def test_not_a_duckdb_file(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    db.write_text("these are my notes, not a database\n" * 20)
    line = one_line(serve(db))
    assert line == f"conductor-lab: {db} is not a DuckDB database file; pass another --db"
    assert db.read_text().startswith("these are my notes")  # left as it was


def test_a_duckdb_file_that_is_not_a_store(tmp_path: Path) -> None:
    db = tmp_path / "other.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE sales (id INTEGER)")
    line = one_line(serve(db))
    assert str(db) in line and "not a conductor_lab store" in line and "--db" in line


def test_a_store_written_by_a_newer_version(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    make_store(db)
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE cl_meta SET value = '999' WHERE key = 'schema_version'")
    line = one_line(serve(db))
    assert str(db) in line and "newer conductor_lab" in line and "999" in line


def test_a_path_under_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a file, not a directory")
    for db in (tmp_path / "notes.txt" / "c.duckdb", tmp_path / "notes.txt" / "sub" / "c.duckdb"):
        line = one_line(serve(db))
        assert line.startswith(f"conductor-lab: cannot create {db}: Not a directory"), line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_a_read_only_directory(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        line = one_line(serve(ro / "c.duckdb"))
    finally:
        ro.chmod(0o755)
    assert line.startswith(f"conductor-lab: cannot create {ro / 'c.duckdb'}: Permission denied"), line


def test_commit_log_locked(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    make_store(db)
    journal_dir(db).mkdir()
    fd = os.open(journal_dir(db) / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as another store holding the log
        line = one_line(serve(db))
    finally:
        os.close(fd)
    assert line == (
        f"conductor-lab: the commit log {db}.journal is in use by another store; stop it or pass another --db"
    )


def test_commit_log_corrupt(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    make_store(db)
    journal_dir(db).mkdir()
    segment = journal_dir(db) / "000000000001.log"
    segment.write_bytes(b"\xffJ garbage" + encode_frame(1, "{}"))  # a bad frame, then a valid one
    line = one_line(serve(db))
    assert str(segment) in line and "bad frame at byte offset 0" in line and "corrupt" in line


def test_debug_log_level_adds_the_traceback_above_the_line(tmp_path: Path) -> None:
    db = tmp_path / "x.duckdb"
    db.write_text("not a database")
    done = serve(db, "--log-level", "DEBUG")
    assert done.returncode == 2
    assert "Traceback" in done.stderr and "IOException" in done.stderr
    last = done.stderr.rstrip("\n").splitlines()[-1]
    assert last == f"conductor-lab: {db} is not a DuckDB database file; pass another --db"


def test_lab_on_a_busy_server_port_ends_with_the_servers_line(tmp_path: Path) -> None:
    """``make run`` on a busy port: the server's one line and status 2, JupyterLab never started."""
    lab_port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = cli(
            "lab", "--db", str(tmp_path / "d" / "c.duckdb"), "--port", str(port),
            "--lab-port", str(lab_port), "--notebooks", str(tmp_path),
        )  # fmt: skip
    line = one_line(done)
    assert f"port {port} on 127.0.0.1 is already in use" in line
    assert "JupyterLab" not in done.stdout
    with socket.socket() as s:
        s.bind(("127.0.0.1", lab_port))  # nobody took the JupyterLab port


def test_lab_on_an_uncreatable_path(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    db = tmp_path / "f" / "c.duckdb"
    line = one_line(
        cli(
            "lab",
            "--db",
            str(db),
            "--port",
            "0",
            "--lab-port",
            str(free_port()),
            "--notebooks",
            str(tmp_path),
        )
    )
    assert line.startswith(f"conductor-lab: cannot create {db}: Not a directory"), line


# ---------------------------------------------------------------------- the mapping itself


def test_lock_message_without_a_pid_says_another_process() -> None:
    exc = duckdb.IOException(
        'IO Error: Could not set lock on file "data/x.duckdb": Resource temporarily unavailable'
    )
    assert describe_startup_error(exc, "data/x.duckdb", "127.0.0.1", 8080) == (
        "conductor-lab: data/x.duckdb is in use by another process; stop it or pass another --db"
    )


def test_listen_errors_other_than_in_use() -> None:
    denied = ListenError("127.0.0.1", 80, OSError(errno.EACCES, "Permission denied"))
    line = describe_startup_error(denied, "c.duckdb", "127.0.0.1", 80)
    assert line is not None and "port 80" in line and "--port" in line
    absent = ListenError("10.9.9.9", 8080, OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address"))
    line = describe_startup_error(absent, "c.duckdb", "10.9.9.9", 8080)
    assert line == (
        "conductor-lab: cannot listen on 10.9.9.9 port 8080: Cannot assign requested address; check --host and --port"
    )


def test_a_file_of_another_duckdb_storage_version_is_one_line() -> None:
    exc = duckdb.IOException(
        "IO Error: Trying to read a database file with version number 99, but we can only read version 65.\n"
        "The database file was created with a newer version of DuckDB."
    )
    line = describe_startup_error(exc, "x.duckdb", "127.0.0.1", 8080)
    assert line is not None and "\n" not in line and "incompatible DuckDB version" in line


def test_unknown_errors_keep_the_traceback_path() -> None:
    assert describe_startup_error(ValueError("a bug"), "x.duckdb", "127.0.0.1", 8080) is None
    assert (
        describe_startup_error(duckdb.BinderException("Binder Error: x"), "x.duckdb", "127.0.0.1", 8080)
        is None
    )
    # an OSError about some other file is not "cannot create the store"
    other = FileNotFoundError(errno.ENOENT, "No such file or directory", "/etc/elsewhere/conf")
    assert describe_startup_error(other, "/tmp/x/c.duckdb", "127.0.0.1", 8080) is None


def test_permission_denied_is_one_line() -> None:
    """What a non-root user meets in a read-only directory (root, who runs CI here, does not)."""
    db = "/nonexistent-ro/c.duckdb"
    opened = duckdb.IOException(f'IO Error: Cannot open file "{db}": Permission denied')
    assert (
        describe_startup_error(opened, db, "127.0.0.1", 8080)
        == f"conductor-lab: cannot create {db}: Permission denied"
    )
    mkdir = PermissionError(errno.EACCES, "Permission denied", "/nonexistent-ro/sub")
    assert describe_startup_error(mkdir, "/nonexistent-ro/sub/c.duckdb", "127.0.0.1", 8080) == (
        "conductor-lab: cannot create /nonexistent-ro/sub/c.duckdb: Permission denied (/nonexistent-ro/sub)"
    )
