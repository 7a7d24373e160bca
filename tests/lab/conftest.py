"""Fixtures for the notebook lab: one embedded Lab and one remote Lab (on a ``conductor-lab serve``
subprocess) per session; ``lab`` runs a test once on each, so the same scenario must pass in both
modes. Tests use unique workflow and task names (``unique``), so they share the two servers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib
import pytest

from conductor_lab.lab import Lab
from tests.conftest import ServerProcess

matplotlib.use("Agg")

#: long polls of test workers: short, so stopping a worker takes ~0.1 s
POLL_MS = 100


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("lab-remote")
    proc = ServerProcess(tmp / "remote.duckdb", log_dir=tmp)
    proc.start()
    yield proc
    code = proc.stop()
    assert code == 0, f"server did not shut down cleanly (exit {code}):\n{proc.output()}"


@pytest.fixture(scope="session")
def embedded_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("lab-embedded") / "embedded.duckdb")
    yield lab
    lab.close()


@pytest.fixture(scope="session")
def remote_lab(lab_server: ServerProcess) -> Iterator[Lab]:
    lab = Lab(lab_server.url)
    yield lab
    lab.close()


@pytest.fixture(params=["embedded", "remote"])
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """The session's embedded or remote Lab; workers a test defines are stopped after it."""
    the_lab: Lab = request.getfixturevalue(f"{request.param}_lab")
    yield the_lab
    assert the_lab.stop_workers(), "a cell worker did not stop in time"


def waiting_workflow(name: str, *refs: str, **extra: Any) -> dict[str, Any]:
    """A workflow of WAIT tasks (no duration: they wait until completed through the API)."""
    return {
        "name": name,
        "tasks": [{"name": f"wait_{r}", "taskReferenceName": r, "type": "WAIT"} for r in refs],
        **extra,
    }


def write_json(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def env_without_server_url() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "CONDUCTOR_SERVER_URL"}
