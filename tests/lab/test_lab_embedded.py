"""The embedded Lab's lifecycle: where its file goes, one Lab per file (in this process and across
processes), close / context manager / workers stopped first, and the server thread underneath."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

import conductor_lab as cl
from conductor_lab.lab import DEFAULT_DB, Lab
from conductor_lab.server.run import start_server
from tests.conftest import REPO_ROOT
from tests.lab.conftest import POLL_MS, unique


def test_default_file_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONDUCTOR_SERVER_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    with Lab() as lab:
        assert lab.mode == "embedded" and lab.db == str(tmp_path / DEFAULT_DB)
        assert lab.url.startswith("http://127.0.0.1:") and lab.client.health()["healthy"] is True
        assert repr(lab) == f"Lab(embedded, db={lab.db!r}, url={lab.url!r})"
    assert (tmp_path / DEFAULT_DB).is_file()


def test_a_file_in_a_new_directory_and_what_it_keeps(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "deeper" / "runs.duckdb"
    name = unique("kept")
    with Lab(path) as lab:
        assert lab.db == str(path)
        lab.register(
            workflow={"name": name, "tasks": [{"name": "w", "taskReferenceName": "w", "type": "WAIT"}]}
        )
        run_id = lab.start(name).id
    with Lab(db=path) as lab:  # everything survives a close: it lives in DuckDB
        assert lab.run(run_id).status == "RUNNING"
        assert lab.history(name=name, verbose=False)["workflowId"].tolist() == [run_id]


def test_second_lab_on_the_same_file_in_this_process(tmp_path: Path) -> None:
    path = tmp_path / "one.duckdb"
    first = Lab(path)
    try:
        with pytest.raises(cl.LabError) as info:
            Lab(tmp_path / "." / "one.duckdb")  # the same file, spelled differently
        assert (
            str(info.value)
            == f"{path} is already in use by this process; close that Lab or pick another file"
        )
        assert info.value.__cause__ is None and info.value.__context__ is None
    finally:
        first.close()
    with Lab(path) as again:  # closed: the file is free again
        assert again.client.health()["healthy"] is True


def test_second_lab_on_a_file_another_process_holds(tmp_path: Path) -> None:
    path = tmp_path / "held.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, sys; c = duckdb.connect({str(path)!r}); print('ready', flush=True); sys.stdin.read()"],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(cl.LabError) as info:
            Lab(path)
        message = str(info.value)
        assert message == (
            f"{path} is already in use by process PID {holder.pid}; close that Lab or pick another file"
        )
        assert "Traceback" not in message and "IO Error" not in message
        assert info.value.__cause__ is None and info.value.__suppress_context__  # no DuckDB traceback
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)
    with Lab(path) as lab:  # the holder is gone: the file opens, and the registry was not left dirty
        assert lab.db == str(path)


def test_close_stops_workers_then_the_server(tmp_path: Path) -> None:
    lab = Lab(tmp_path / "c.duckdb")
    task_type = unique("t")

    @lab.worker(task_type, poll_timeout_ms=POLL_MS)
    def work() -> dict[str, int]:
        return {"ok": 1}

    url = lab.url
    assert work.running and lab.workers == [work]
    server_threads = [t for t in threading.enumerate() if t.name == "conductor-lab-server"]
    assert server_threads
    lab.close()
    assert lab.closed and not work.running and work.runner.state == "stopped"
    assert repr(lab).endswith(", closed)")
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/health", timeout=2)
    lab.close()  # idempotent
    with pytest.raises(cl.LabError, match="this Lab is closed"):
        lab.start("anything")
    with pytest.raises(cl.LabError, match="this Lab is closed"):
        lab.sql("SELECT 1")


def test_context_manager_closes_on_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), Lab(tmp_path / "cm.duckdb") as lab:
        raise RuntimeError("boom")
    assert lab.closed
    with Lab(tmp_path / "cm.duckdb") as again:
        assert not again.closed


def test_start_server_handle(tmp_path: Path) -> None:
    handle = start_server(tmp_path / "s.duckdb", port=0)
    try:
        assert httpx.get(handle.url + "/health").json()["healthy"] is True
        assert handle.running and handle.thread.daemon
    finally:
        assert handle.stop() is True
    assert not handle.running and handle.stop() is True


def test_import_stays_light() -> None:
    code = (
        "import sys, conductor_lab, conductor_lab.server.app, conductor_lab.server.run;"
        "print([m for m in ('pandas', 'anywidget', 'ipywidgets', 'matplotlib') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()
    assert out == "[]"
    assert {"Lab", "Run", "LabError", "workflow", "simple", "switch"} <= set(cl.__all__) <= set(dir(cl))
    assert cl.Lab is Lab


def test_env_url_makes_lab_remote(monkeypatch: pytest.MonkeyPatch, embedded_lab: Lab) -> None:
    monkeypatch.setenv("CONDUCTOR_SERVER_URL", embedded_lab.url)
    with Lab() as lab:
        assert lab.mode == "remote" and lab.url == embedded_lab.url and lab.db is None
    assert os.environ["CONDUCTOR_SERVER_URL"] == embedded_lab.url


def test_unclosed_lab_is_closed_at_exit(tmp_path: Path) -> None:
    """The atexit hook stops the worker and the server; what was committed is there next time."""
    path = tmp_path / "exit.duckdb"
    script = f"""
import conductor_lab as cl
lab = cl.Lab({str(path)!r})
lab.register(workflow={{"name": "left", "tasks": [{{"name": "t", "taskReferenceName": "t", "type": "SIMPLE"}}]}})

@lab.worker("t", poll_timeout_ms={POLL_MS})
def t():
    return {{"done": True}}

print(lab.start("left").wait(10).status, flush=True)
"""
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and out.stdout.strip() == "COMPLETED", out.stderr
    with Lab(path) as lab:
        assert lab.history(name="left", verbose=False)["status"].tolist() == ["COMPLETED"]
