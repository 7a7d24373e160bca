"""An in-process conductor-lab server (REST + gRPC on one engine loop) shared by the rpc tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conductor_lab.server.run import ServerHandle, start_server


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """REST on a free port, gRPC on another (``handle.grpc_target``)."""
    handle = start_server(Path(tmp_path_factory.mktemp("rpc")) / "rpc.duckdb", port=0, grpc_port=0)
    try:
        yield handle
    finally:
        assert handle.stop(), "server thread did not stop"


@pytest.fixture(scope="module")
def rest(lab: ServerHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lab.url + "/api", timeout=30) as client:
        yield client
