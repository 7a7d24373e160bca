"""``GET /api/admin/status`` and ``conductor-lab status`` (run as a subprocess, as a user would)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conductor_lab.status import MAX_QUEUE_ROWS, render
from tests.conftest import REPO_ROOT, ServerProcess
from tests.server.util import register_chain, start, uid

TOKEN = "st4tus"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "conductor-lab"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "conductor_lab.cli"]
    return subprocess.run(
        [*cmd, "status", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, list[str], str]]:
    """A server with a token, 18 queues of different depths and a paused workflow."""
    tmp = tmp_path_factory.mktemp("status")
    with ServerProcess(tmp / "s.duckdb", ["--token", TOKEN], log_dir=tmp) as proc:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=proc.api, headers=headers, timeout=30) as c:
            types = [f"st_{k:02d}_{uid('q')}" for k in range(MAX_QUEUE_ROWS + 3)]
            for k, tt in enumerate(types):
                name = uid("st_wf")
                register_chain(c, name, [tt])
                for _ in range(k + 1):  # queue k holds k + 1 tasks
                    last = start(c, name)
            assert c.put(f"/workflow/{last}/pause").status_code == 200
        yield proc, types, str(tmp / "s.duckdb")


def test_status_document(busy: tuple[ServerProcess, list[str], str]) -> None:
    proc, types, db = busy
    r = httpx.get(proc.api + "/admin/status", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    doc = r.json()
    n = len(types)
    assert doc["version"] and doc["uptimeSeconds"] > 0 and doc["recoverySeconds"] >= 0
    assert doc["store"]["path"] == db and doc["store"]["sizeBytes"] > 0
    assert isinstance(doc["store"]["schemaVersion"], int) and doc["store"]["durable"] is True
    total = n * (n + 1) // 2
    assert doc["workflows"]["running"] == total - 1 and doc["workflows"]["paused"] == 1
    assert doc["queues"] == {tt: k + 1 for k, tt in enumerate(types)}
    assert list(doc["queues"]) == list(reversed(types)), "largest first"
    assert doc["commit"]["samples"] >= 1 and 0 < doc["commit"]["p50Ms"] <= doc["commit"]["p99Ms"]
    assert doc["commit"]["path"] in ("loop", "thread") and doc["commit"]["averageMs"] > 0
    assert doc["journal"]["unfoldedRecords"] >= 0 and doc["journal"]["foldLagSeconds"] >= 0
    assert doc["archive"] is None or isinstance(doc["archive"], dict)
    assert doc["metrics"] is True


def test_status_cli_prints_one_screen(busy: tuple[ServerProcess, list[str], str]) -> None:
    proc, types, db = busy
    done = cli("--url", proc.url, "--token", TOKEN)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    lines = out.splitlines()
    assert len(lines) <= 30, out
    n = len(types)
    assert lines[0].startswith("conductor-lab ") and proc.url in lines[0]
    assert "uptime" in out and db in out and "schema version" in out
    assert f"{n * (n + 1) // 2 - 1:,} running, 1 paused" in out
    assert "p50" in out and "p99" in out and "ms over the last" in out
    assert "fold lag" in out and "archive    none" in out
    assert f"{n} non-empty" in out
    # the table: largest first, cut after MAX_QUEUE_ROWS rows
    rows = [line.split() for line in lines if line.strip().startswith("st_")]
    assert [r[0] for r in rows] == list(reversed(types))[:MAX_QUEUE_ROWS]
    assert [int(r[1]) for r in rows] == list(range(n, n - MAX_QUEUE_ROWS, -1))
    assert f"... {n - MAX_QUEUE_ROWS} more" in out
    # the same through /api and the environment's token
    env_done = subprocess.run(
        [sys.executable, "-m", "conductor_lab.cli", "status", "--url", proc.api + "/"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False,
        env={**_env(), "CONDUCTOR_LAB_TOKEN": TOKEN},
    )  # fmt: skip
    assert env_done.returncode == 0, env_done.stderr


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "CONDUCTOR_LAB_TOKEN"}


def test_status_without_the_token_is_one_line_and_exit_2(busy: tuple[ServerProcess, list[str], str]) -> None:
    proc, _, _ = busy
    done = subprocess.run(
        [sys.executable, "-m", "conductor_lab.cli", "status", "--url", proc.url],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False, env=_env(),
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "needs a token" in done.stderr, done.stderr


def test_unreachable_server_is_one_line_and_exit_2() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = cli("--url", f"http://127.0.0.1:{port}")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert (
        done.stderr.startswith("conductor-lab status: cannot reach http://127.0.0.1:")
        and "Traceback" not in done.stderr
    )


def test_render_archive_and_missing_figures() -> None:
    doc = {
        "version": "9.9",
        "store": {"path": "/x.duckdb", "sizeBytes": 3 * 1024 * 1024, "schemaVersion": 2, "durable": False},
        "commit": {"samples": 0, "p50Ms": None, "p99Ms": None, "commits": 0},
        "journal": {},
        "archive": {"workflows": 1500, "files": 3, "bytes": 2048},
        "queues": {},
    }
    out = render(doc, "http://h:1/api")
    assert "conductor-lab 9.9 at http://h:1 " in out
    assert "3.0 MiB" in out and "NOT durable" in out
    assert "p50 n/a, p99 n/a" in out
    assert "archive    1,500 workflows in 3 Parquet files, 2.0 KiB" in out
    assert "fold lag   n/a" in out
    assert "made on" not in out  # a server that does not say where it commits
    slow = render({**doc, "commit": {**doc["commit"], "path": "thread", "averageMs": 4.5}}, "h:1")
    assert "made on the writer thread (commits are slow), store commit average 4.50 ms" in slow
    assert "archive    none" in render({**doc, "archive": {"workflows": 0, "files": 0, "bytes": 0}}, "h:1")
