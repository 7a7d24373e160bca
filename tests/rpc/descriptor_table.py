"""A comparable table of a set of proto files: messages (fields: number, type, label, type name),
enums (values), services (RPCs: request and response types, streaming flags).

Only ``conductor.*`` packages are listed (``google.protobuf`` types come in through imports). Map
fields appear as conductor-oss's compiler makes them: a repeated nested ``...Entry`` message.
Used by ``make_descriptor_table.py`` (conductor-oss's side, once) and ``test_parity.py`` (ours).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf import descriptor_pb2

FDP = descriptor_pb2.FieldDescriptorProto


def _type_name(code: int) -> str:
    return FDP.Type.Name(code).removeprefix("TYPE_").lower()  # type: ignore[arg-type]


def _label_name(code: int) -> str:
    return FDP.Label.Name(code).removeprefix("LABEL_").lower()  # type: ignore[arg-type]


def _message(prefix: str, msg: descriptor_pb2.DescriptorProto, out: dict[str, Any]) -> None:
    full = f"{prefix}.{msg.name}"
    fields: dict[str, Any] = {}
    for f in msg.field:
        entry: dict[str, Any] = {"number": f.number, "type": _type_name(f.type), "label": _label_name(f.label)}
        if f.type_name:
            entry["type_name"] = f.type_name.lstrip(".")
        if f.proto3_optional:
            entry["proto3_optional"] = True
        fields[f.name] = entry
    out["messages"][full] = {"fields": fields, "map_entry": bool(msg.options.map_entry)}
    for enum in msg.enum_type:
        _enum(full, enum, out)
    for nested in msg.nested_type:
        _message(full, nested, out)


def _enum(prefix: str, enum: descriptor_pb2.EnumDescriptorProto, out: dict[str, Any]) -> None:
    out["enums"][f"{prefix}.{enum.name}"] = {v.name: v.number for v in enum.value}


def table(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> dict[str, Any]:
    """The table of every ``conductor.*`` file among ``files`` (keys sorted for stable JSON)."""
    out: dict[str, Any] = {"messages": {}, "enums": {}, "services": {}}
    for fd in files:
        if not fd.package.startswith("conductor."):
            continue
        for msg in fd.message_type:
            _message(fd.package, msg, out)
        for enum in fd.enum_type:
            _enum(fd.package, enum, out)
        for svc in fd.service:
            out["services"][f"{fd.package}.{svc.name}"] = {
                m.name: {
                    "input": m.input_type.lstrip("."),
                    "output": m.output_type.lstrip("."),
                    "client_streaming": m.client_streaming,
                    "server_streaming": m.server_streaming,
                }
                for m in svc.method
            }
    return {k: dict(sorted(v.items())) for k, v in out.items()}
