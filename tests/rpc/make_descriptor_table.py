"""Derive ``conductor_oss_descriptors.json`` from conductor-oss's own protos (run once; kept for
the record, not by the test suite).

How the committed table was made::

    .venv/bin/python tests/rpc/make_descriptor_table.py /work/.mirror/conductor-oss+conductor/repo

i.e. conductor-oss at commit b54f0d4ee546c1053367e1c14405c5396c17bfb1: its
``grpc/src/main/proto`` tree is exported from git (``git archive``) into a temporary directory,
compiled there with ``python -m grpc_tools.protoc --descriptor_set_out`` (grpcio-tools 1.85.1), and
the resulting ``FileDescriptorSet`` is reduced by :func:`tests.rpc.descriptor_table.table` to every
message, field (number, type, label, type name), enum value, service and RPC (request, response,
streaming flags) of the ``conductor.*`` packages. No upstream file is copied into this repository.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.rpc.descriptor_table import table  # noqa: E402

OUT = Path(__file__).resolve().parent / "conductor_oss_descriptors.json"
PROTO_ROOT = "grpc/src/main/proto"


def upstream_table(git_dir: Path) -> dict[str, object]:
    commit = subprocess.run(
        ["git", "-C", str(git_dir), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "-C", str(git_dir), "archive", "--format=tar", commit, PROTO_ROOT], check=True, capture_output=True
    ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        root = Path(tmp) / PROTO_ROOT
        files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.proto"))
        out = Path(tmp) / "set.pb"
        subprocess.run(
            [sys.executable, "-m", "grpc_tools.protoc", f"-I{root}", f"--descriptor_set_out={out}", *files],
            check=True,
        )
        fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    result: dict[str, object] = {"source": {"repository": "conductor-oss/conductor", "commit": commit, "path": PROTO_ROOT}}
    result.update(table(fds.file))
    return result


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    OUT.write_text(json.dumps(upstream_table(Path(sys.argv[1])), indent=1, sort_keys=False) + "\n")
    print(OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
