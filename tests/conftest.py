"""Shared fixtures: a REAL conductor-lab server in a subprocess, and condition waits.

``ServerProcess`` is reusable on its own (crash tests ``kill9()`` it and start a new one on the
same DuckDB file)::

    proc = ServerProcess(tmp_path / "c.duckdb", log_dir=tmp_path)
    url = proc.start()          # waits for "conductor-lab listening on http://HOST:PORT"
    ...
    proc.kill9()                # SIGKILL, no clean shutdown
    proc.start()                # same file, new process, new port
    proc.stop()                 # SIGTERM, wait (SIGKILL after a deadline)
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"conductor-lab listening on (http://\S+)")

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.01, what: str = ""
) -> T:
    """Return the predicate's first truthy value; fail when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout:g}s{': ' + what if what else ''}")
        time.sleep(interval)
        interval = min(interval * 1.5, 0.1)


class ServerProcess:
    """``python -m conductor_lab.cli serve --db DB --port 0 [extra_args]`` as a child process."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        extra_args: Sequence[str] = (),
        *,
        log_dir: str | os.PathLike[str] | None = None,
        env: dict[str, str] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.db_path = Path(db_path)
        self.extra_args = list(extra_args)
        self.log_dir = Path(log_dir) if log_dir is not None else self.db_path.parent
        self.env = env
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.starts = 0
        self._out: IO[bytes] | None = None
        self._err: IO[bytes] | None = None

    @property
    def api(self) -> str:
        return self.url + "/api"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "conductor_lab.cli", "serve",
            "--db", str(self.db_path), "--port", "0", *self.extra_args,
        ]  # fmt: skip

    def start(self) -> str:
        """Start the process and wait for its "listening on" line; returns the base URL."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out_path = self.log_dir / f"server-{self.starts}.out"
        err_path = self.log_dir / f"server-{self.starts}.err"
        self._close_logs()
        self._out, self._err = open(out_path, "wb"), open(err_path, "wb")  # noqa: SIM115
        env = {**os.environ, **(self.env or {})}
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            self.command(), cwd=REPO_ROOT, stdout=self._out, stderr=self._err, env=env
        )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            m = LISTENING.search(out_path.read_text(errors="replace"))
            if m:
                self.url = m.group(1)
                return self.url
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode} before listening:\n{self.output()}"
                )
            if time.monotonic() > deadline:
                self.kill9()
                raise RuntimeError(f"server not listening after {self.startup_timeout:g}s:\n{self.output()}")
            time.sleep(0.02)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait; SIGKILL if it has not exited by the deadline. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._close_logs()
        return self.proc.returncode

    def kill9(self) -> None:
        """SIGKILL: the process gets no chance to flush or close anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._close_logs()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        """stdout and stderr of the latest start (for failure messages)."""
        parts = []
        for suffix in ("out", "err"):
            path = self.log_dir / f"server-{self.starts}.{suffix}"
            if path.exists():
                parts.append(f"--- {suffix} ---\n{path.read_text(errors='replace')[-20000:]}")
        return "\n".join(parts)

    def _close_logs(self) -> None:
        for f in (self._out, self._err):
            if f is not None:
                f.close()
        self._out = self._err = None

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the whole session (tests use unique names, so they do not interfere)."""
    tmp = tmp_path_factory.mktemp("server")
    proc = ServerProcess(tmp / "c.duckdb", log_dir=tmp)
    proc.start()
    yield proc
    code = proc.stop()
    assert code == 0, f"server did not shut down cleanly (exit {code}):\n{proc.output()}"


@pytest.fixture(scope="session")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    """A keep-alive client on the session server's ``/api`` (like the official SDK's)."""
    with httpx.Client(base_url=server.api, timeout=30.0) as client:
        yield client
