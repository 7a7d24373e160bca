"""Our protos against conductor-oss's wire contract: every message, field (number, type, label,
type name), enum value, service and RPC (types, streaming) equals the table derived once from
conductor-oss's protos (``conductor_oss_descriptors.json``, see ``make_descriptor_table.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2

from conductor_lab.rpc.gen.model import definitions_pb2, events_pb2, tasks_pb2, workflows_pb2
from conductor_lab.rpc.gen.service import events_pb2 as events_service_pb2
from conductor_lab.rpc.gen.service import metadata_pb2, search_pb2
from conductor_lab.rpc.gen.service import tasks_pb2 as tasks_service_pb2
from conductor_lab.rpc.gen.service import workflows_pb2 as workflows_service_pb2
from tests.rpc.descriptor_table import table

MODULES = (
    definitions_pb2,
    events_pb2,
    tasks_pb2,
    workflows_pb2,
    events_service_pb2,
    metadata_pb2,
    search_pb2,
    tasks_service_pb2,
    workflows_service_pb2,
)
UPSTREAM: dict[str, Any] = json.loads((Path(__file__).parent / "conductor_oss_descriptors.json").read_text())


def _ours() -> dict[str, Any]:
    files = [descriptor_pb2.FileDescriptorProto.FromString(m.DESCRIPTOR.serialized_pb) for m in MODULES]
    return table(files)


OURS = _ours()


@pytest.mark.parametrize("kind", ["messages", "enums", "services"])
def test_same_names(kind: str) -> None:
    assert sorted(OURS[kind]) == sorted(UPSTREAM[kind])


@pytest.mark.parametrize("name", sorted(UPSTREAM["messages"]))
def test_message_fields(name: str) -> None:
    assert OURS["messages"].get(name) == UPSTREAM["messages"][name]


@pytest.mark.parametrize("name", sorted(UPSTREAM["enums"]))
def test_enum_values(name: str) -> None:
    assert OURS["enums"].get(name) == UPSTREAM["enums"][name]


@pytest.mark.parametrize("name", sorted(UPSTREAM["services"]))
def test_service_rpcs(name: str) -> None:
    assert OURS["services"].get(name) == UPSTREAM["services"][name]


def test_table_is_not_trivial() -> None:
    """The committed table covers what the issue names (a truncated table would pass vacuously)."""
    services = UPSTREAM["services"]
    assert services["conductor.grpc.tasks.TaskService"]["BatchPoll"]["server_streaming"] is True
    assert len(services["conductor.grpc.workflows.WorkflowService"]) == 18
    assert len(UPSTREAM["messages"]["conductor.proto.Task"]["fields"]) == 44
    assert UPSTREAM["messages"]["conductor.proto.WorkflowTask"]["fields"]["fork_tasks"] == {
        "number": 13,
        "type": "message",
        "label": "repeated",
        "type_name": "conductor.proto.WorkflowTask.WorkflowTaskList",
    }
