"""The committed stubs are what ``make protos`` generates from the committed ``.proto`` files."""

from __future__ import annotations

from pathlib import Path

import pytest

from conductor_lab.rpc.generate import GEN_DIR, REPO_ROOT, generate, proto_files

pytest.importorskip("grpc_tools")


def test_regenerating_changes_nothing(tmp_path: Path) -> None:
    fresh = generate(tmp_path)
    assert len(fresh) == 3 * len(proto_files())  # _pb2.py, _pb2.pyi, _pb2_grpc.py per file
    committed = sorted(p.relative_to(REPO_ROOT) for p in GEN_DIR.rglob("*_pb2*.py*"))
    assert committed == fresh, "stale or extra stubs: run `make protos`"
    stale = [str(p) for p in fresh if (tmp_path / p).read_bytes() != (REPO_ROOT / p).read_bytes()]
    assert not stale, f"stubs differ from their .proto files: run `make protos` ({stale})"


def test_generated_imports_stay_inside_the_package() -> None:
    """Upstream's layout generates ``from grpc import ...`` (grpcio's name); ours never does."""
    for path in GEN_DIR.rglob("*_pb2*.py"):
        for line in path.read_text().splitlines():
            if line.startswith("from ") and "_pb2" in line and not line.startswith("from google.protobuf"):
                assert line.startswith("from conductor_lab.rpc.gen."), (path, line)
