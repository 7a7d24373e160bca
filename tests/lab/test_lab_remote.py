"""The remote Lab: connecting (URL forms, unreachable servers, tokens) to a ``conductor-lab serve``
subprocess; what it does there is the shared scenario of test_run.py."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import conductor_lab as cl
from conductor_lab.lab import Lab
from tests.conftest import ServerProcess
from tests.lab.conftest import POLL_MS, unique, waiting_workflow


def test_url_forms(lab_server: ServerProcess) -> None:
    for target in (lab_server.url, lab_server.url + "/", lab_server.api):
        with Lab(target) as lab:
            assert (lab.mode, lab.url, lab.db) == ("remote", lab_server.url, None)
            assert repr(lab) == f"Lab(remote, url={lab_server.url!r})"
    with Lab(url=lab_server.url) as lab:
        assert lab.client.health()["healthy"] is True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_or_wrong_targets() -> None:
    port = _free_port()
    with pytest.raises(cl.LabError, match=rf"^cannot reach a Conductor server at http://127.0.0.1:{port}: "):
        Lab(f"http://127.0.0.1:{port}")
    with pytest.raises(cl.LabError, match=r"^not a server URL: 'ftp://host'"):
        Lab(url="ftp://host")
    with pytest.raises(cl.LabError, match="either embedded"):
        Lab(db="x.duckdb", url="http://127.0.0.1:1")
    with pytest.raises(cl.LabError, match="give the database file or server URL once"):
        Lab("x.duckdb", url="http://127.0.0.1:1")


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp: Path = tmp_path_factory.mktemp("lab-token")
    proc = ServerProcess(tmp / "t.duckdb", ["--token", "s3cret"], log_dir=tmp)
    proc.start()
    yield proc
    assert proc.stop() == 0


def test_token(token_server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONDUCTOR_LAB_TOKEN", raising=False)
    # /health is open, so the lab connects; the first /api call says what is wrong
    with Lab(token_server.url) as lab, pytest.raises(cl.LabError, match="HTTP 401"):
        lab.start("anything")
    name, task_type = unique("tok"), unique("t")
    with Lab(token_server.url, token="s3cret") as lab:
        lab.register(
            workflow={
                "name": name,
                "tasks": [{"name": task_type, "taskReferenceName": "t", "type": "SIMPLE"}],
            }
        )

        @lab.worker(task_type, poll_timeout_ms=POLL_MS)
        def t() -> dict[str, bool]:
            return {"ok": True}

        run = lab.start(name).wait(10)  # the worker's own clients carry the token too
        assert run.status == "COMPLETED" and run.output == {"ok": True}  # the last task's output
        assert run.task("t").output == {"ok": True}
    monkeypatch.setenv("CONDUCTOR_LAB_TOKEN", "s3cret")
    with Lab(token_server.url) as lab:
        lab.register(workflow=waiting_workflow(unique("env"), "w"))


def test_the_same_file_is_refused_while_a_server_holds_it(lab_server: ServerProcess) -> None:
    with pytest.raises(cl.LabError) as info:
        Lab(lab_server.db_path)
    assert str(info.value).startswith(f"{lab_server.db_path} is already in use by process PID ")
    assert lab_server.proc is not None and str(lab_server.proc.pid) in str(info.value)
