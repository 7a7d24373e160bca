"""The ``conductor-lab serve`` command: arguments, binding rules, token, clean shutdown, restart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conductor_lab.cli import DEFAULT_DB, build_parser
from conductor_lab.server.run import UnsafeBinding, check_binding, is_loopback
from tests.conftest import REPO_ROOT, ServerProcess
from tests.server.util import assert_error, get_workflow, register_chain, start, uid


def test_serve_defaults() -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.db, args.host, args.port, args.no_fsync, args.allow_remote, args.token) == (
        DEFAULT_DB, "127.0.0.1", 8080, False, False, None,
    )  # fmt: skip


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.5"])
def test_loopback_needs_nothing(host: str) -> None:
    assert is_loopback(host)
    check_binding(host, allow_remote=False, token=None)


def test_remote_binding_needs_the_flag_and_a_token() -> None:
    with pytest.raises(UnsafeBinding, match="--allow-remote"):
        check_binding("0.0.0.0", allow_remote=False, token="t")
    with pytest.raises(UnsafeBinding, match="token"):
        check_binding("0.0.0.0", allow_remote=True, token=None)
    check_binding("0.0.0.0", allow_remote=True, token="t")


def test_cli_refuses_remote_binding_without_a_token(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "conductor_lab.cli", "serve", "--db", str(tmp_path / "c.duckdb"),
           "--host", "0.0.0.0", "--port", "0", "--allow-remote"]  # fmt: skip
    env = {"PATH": "/usr/bin:/bin"}  # no CONDUCTOR_LAB_TOKEN
    done = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2, done
    assert "token" in done.stderr and "listening" not in done.stdout
    assert not (tmp_path / "c.duckdb").exists()


def test_token_server(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "c.duckdb", ["--token", "s3cret"], log_dir=tmp_path) as proc:
        assert httpx.get(proc.url + "/health").status_code == 200
        assert_error(httpx.get(proc.api + "/metadata/taskdefs"), 401)
        assert_error(
            httpx.get(proc.api + "/metadata/taskdefs", headers={"Authorization": "Bearer nope"}), 401
        )
        ok = httpx.get(proc.api + "/metadata/taskdefs", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert (
            httpx.get(proc.api + "/metadata/taskdefs", headers={"X-Authorization": "s3cret"}).status_code
            == 200
        )
        token = httpx.post(proc.api + "/token", json={"keyId": "k", "keySecret": "s3cret"}).json()
        assert token == {"token": "s3cret"}
    assert proc.proc is not None and proc.proc.returncode == 0


def test_token_from_environment(tmp_path: Path) -> None:
    with ServerProcess(
        tmp_path / "c.duckdb", log_dir=tmp_path, env={"CONDUCTOR_LAB_TOKEN": "envtok"}
    ) as proc:
        assert_error(httpx.get(proc.api + "/metadata/taskdefs"), 401)
        assert (
            httpx.get(proc.api + "/metadata/taskdefs", headers={"X-Authorization": "envtok"}).status_code
            == 200
        )


def test_sigterm_is_clean_and_state_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "dir" / "c.duckdb"  # parent directories are created
    proc = ServerProcess(db, log_dir=tmp_path)
    proc.start()
    name = uid("wf")
    with httpx.Client(base_url=proc.api, timeout=10) as http:
        register_chain(http, name, [uid("t")])
        wid = start(http, name)
    assert proc.stop() == 0, proc.output()
    assert db.exists()
    proc.start()
    try:
        with httpx.Client(base_url=proc.api, timeout=10) as http:
            assert http.get(f"/metadata/workflow/{name}").json()["name"] == name
            assert get_workflow(http, wid)["status"] == "RUNNING"
    finally:
        assert proc.stop() == 0, proc.output()


def test_a_second_server_on_the_same_file_fails_cleanly(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "c.duckdb", log_dir=tmp_path / "first"):
        second = ServerProcess(tmp_path / "c.duckdb", log_dir=tmp_path / "second")
        with pytest.raises(RuntimeError, match="exited with 2"):
            second.start()
        assert "is in use by another process (PID" in second.output()
