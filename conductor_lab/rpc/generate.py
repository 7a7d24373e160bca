"""Regenerate the committed gRPC stubs under ``conductor_lab/rpc/gen`` (``make protos``).

``python -m conductor_lab.rpc.generate [OUT_DIR]`` runs ``python -m grpc_tools.protoc`` (the
``test`` extra) over every ``.proto`` under ``conductor_lab/rpc/proto``, with that directory mapped
to the virtual import path ``conductor_lab/rpc/gen`` so the stubs import each other as
``conductor_lab.rpc.gen...`` (see ``proto/README.md``). OUT_DIR defaults to the repository root,
which overwrites the committed stubs; ``tests/rpc/test_protos.py`` generates into a temporary
directory and compares byte for byte.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROTO_DIR = PACKAGE_DIR / "proto"
REPO_ROOT = PACKAGE_DIR.parent.parent
VIRTUAL_ROOT = "conductor_lab/rpc/gen"
GEN_DIR = REPO_ROOT / VIRTUAL_ROOT


def proto_files() -> list[str]:
    """Every ``.proto`` file, by its virtual name (``conductor_lab/rpc/gen/model/tasks.proto``)."""
    return sorted(f"{VIRTUAL_ROOT}/{p.relative_to(PROTO_DIR).as_posix()}" for p in PROTO_DIR.rglob("*.proto"))


def protoc_command(out_dir: Path) -> list[str]:
    """The ``grpc_tools.protoc`` command writing ``*_pb2.py``, ``*_pb2.pyi`` and ``*_pb2_grpc.py``."""
    return [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{VIRTUAL_ROOT}={PROTO_DIR}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *proto_files(),
    ]


def generate(out_dir: Path) -> list[Path]:
    """Run protoc into ``out_dir``; the generated files, relative to ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(protoc_command(out_dir), check=True, cwd=REPO_ROOT)
    root = out_dir / VIRTUAL_ROOT
    return sorted(p.relative_to(out_dir) for p in root.rglob("*_pb2*.py*"))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out_dir = Path(args[0]).resolve() if args else REPO_ROOT
    for path in generate(out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
