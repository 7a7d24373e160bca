"""The ``conductor.grpc.search.Request`` every Search* RPC takes, as the engine's search arguments."""

from __future__ import annotations

from typing import Any

from conductor_lab.engine import search
from conductor_lab.errors import InvalidInput
from conductor_lab.rpc.gen.service import search_pb2
from conductor_lab.rpc.status import optional


def search_args(req: search_pb2.Request) -> dict[str, Any]:
    """conductor-oss's gRPC defaults: size 0 is the maximum (5000), free text "" is ``*``."""
    size = req.size or search.MAX_WORKFLOW_SIZE
    if size > search.MAX_WORKFLOW_SIZE:  # conductor-oss's gRPC check (its REST one is a 400 too)
        raise InvalidInput(f"Cannot return more than {search.MAX_WORKFLOW_SIZE} results")
    return {
        "start": req.start,
        "size": size,
        "sort": optional(req.sort),
        "free_text": req.free_text or "*",
        "query": optional(req.query),
    }
