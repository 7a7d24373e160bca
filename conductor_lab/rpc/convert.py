"""One converter between the engine model's JSON (what the REST API serves and accepts) and the
gRPC protos (``conductor_lab/rpc/gen``), driven by the protos' own descriptors.

A field's JSON name is its proto name in camelCase (``re_run_from_workflow_id`` ->
``reRunFromWorkflowId``), except where conductor-oss's JSON differs. conductor-oss's special cases
(its ``ProtoMapper``), and the rules this converter adds where proto3 cannot say "absent":

* data maps (``inputData``, ``output``, ``variables``, ...) are ``map<string, google.protobuf.Value>``
  and nested values ``Value`` / ``Struct`` / ``ListValue``. JSON numbers travel as doubles: an
  integral double within +-2**53 comes back as an ``int`` (``5`` stays ``5``), anything else as a
  ``float`` (an integer beyond 2**53 keeps only a double's precision); NaN and infinities are
  refused (they are not JSON).
* ``WorkflowTask.decisionCases`` (a map of lists) and ``forkTasks`` (a list of lists) wrap each list
  in a ``WorkflowTaskList``.
* ``WorkflowTask.retryCount``: null travels as ``-1``.
* enums travel by name; ``EventHandler.Action.Type`` is upper case in the proto and lower case in
  JSON (``START_WORKFLOW`` / ``start_workflow``), and the action's parameter fields keep
  conductor-oss's snake_case JSON names (``start_workflow``, ``expandInlineJSON``).
* times are int64 epoch milliseconds, as in JSON.
* proto -> JSON: an empty string is absent (null), as conductor-oss's gRPC layer reads it
  (``GRPCHelper.optional``); numbers, booleans and enums are always present, with proto3's zero
  values when unset (conductor-oss's ``fromProto`` does the same), except three zeros the engine
  would refuse (``TaskDef.responseTimeoutSeconds`` / ``backoffScaleFactor``,
  ``WorkflowDef.schemaVersion``), which read as unset so the engine's default applies; a message
  field is present only when set; ``google.protobuf.Any`` fields (``inputMessage``, ...) are not
  carried.
* JSON -> proto: null is unset; keys the proto has no field for are dropped (the gRPC contract has
  no ``createTime`` on a workflow, for instance).

Malformed input (a wrong JSON type, an unknown enum name, an int64 out of range) raises
:class:`~conductor_lab.errors.InvalidInput` naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from google.protobuf import struct_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from conductor_lab.errors import InvalidInput

M = TypeVar("M", bound=Message)

#: JSON names that are not the proto name in camelCase.
_JSON_NAMES: dict[str, dict[str, str]] = {
    "conductor.proto.EventHandler.Action": {
        "start_workflow": "start_workflow",
        "complete_task": "complete_task",
        "fail_task": "fail_task",
        "terminate_workflow": "terminate_workflow",
        "update_workflow_variables": "update_workflow_variables",
        "start_agent": "start_agent",
        "expand_inline_json": "expandInlineJSON",
    },
}
#: proto -> JSON: zeros the engine would refuse, read as "unset" (its default applies). A client
#: generated from the protos leaves them 0 unless told; conductor-oss's Java client always sends them.
_ZERO_IS_UNSET: dict[str, frozenset[str]] = {
    "conductor.proto.TaskDef": frozenset({"response_timeout_seconds", "backoff_scale_factor"}),
    "conductor.proto.WorkflowDef": frozenset({"schema_version"}),
}
#: Enums whose JSON names are the proto names in lower case.
_LOWER_CASE_ENUMS = frozenset({"conductor.proto.EventHandler.Action.Type"})
#: ``WorkflowTask.retry_count`` for "not set" (conductor-oss's ``ProtoMapper.NO_RETRY_VALUE``).
NO_RETRY = -1
_TASK_LIST = "conductor.proto.WorkflowTask.WorkflowTaskList"
_VALUE = "google.protobuf.Value"
_ANY = "google.protobuf.Any"
_MAX_EXACT = 2**53

_INT_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}


# ------------------------------------------------------------------------------------------------
# Plans: per message type, what each field is and how it converts (computed once per type)


@dataclass(frozen=True, slots=True)
class _Field:
    name: str  # proto name
    json: str  # JSON name
    kind: str  # see _plan
    field: FieldDescriptor


_PLANS: dict[str, tuple[_Field, ...]] = {}


def _kind(f: FieldDescriptor, owner: Descriptor) -> str:
    msg = f.message_type
    if msg is not None and msg.GetOptions().map_entry:
        value = msg.fields_by_name["value"]
        vmsg = value.message_type
        if vmsg is None:
            return "map_enum" if value.enum_type is not None else "map_scalar"
        if vmsg.full_name == _VALUE:
            return "map_value"
        return "map_task_list" if vmsg.full_name == _TASK_LIST else "map_message"
    repeated = f.is_repeated
    if msg is not None:
        if msg.full_name == _ANY:
            return "any"
        if msg.full_name == _VALUE:
            return "repeated_value" if repeated else "value"
        if msg.full_name == _TASK_LIST and repeated:
            return "repeated_task_list"
        return "repeated_message" if repeated else "message"
    if f.enum_type is not None:
        return "repeated_enum" if repeated else "enum"
    if repeated:
        return "repeated_scalar"
    if owner.full_name == "conductor.proto.WorkflowTask" and f.name == "retry_count":
        return "retry_count"
    if f.name in _ZERO_IS_UNSET.get(owner.full_name, ()):
        return "zero_is_unset"
    return "string" if f.cpp_type == FieldDescriptor.CPPTYPE_STRING else "scalar"


def _plan(desc: Descriptor) -> tuple[_Field, ...]:
    plan = _PLANS.get(desc.full_name)
    if plan is None:
        names = _JSON_NAMES.get(desc.full_name, {})
        plan = tuple(
            _Field(f.name, names.get(f.name, f.json_name), _kind(f, desc), f)
            for f in sorted(desc.fields, key=lambda f: f.number)
        )
        _PLANS[desc.full_name] = plan
    return plan


# ------------------------------------------------------------------------------------------------
# JSON -> proto


def to_proto(data: Any, message_type: type[M]) -> M:
    """A new ``message_type`` from its JSON (a dict; None gives an empty message)."""
    msg = message_type()
    if data is not None:
        fill(msg, data)
    return msg


def fill(msg: Message, data: Any, where: str = "") -> None:
    """Set ``msg``'s fields from the JSON object ``data`` (see the module docstring)."""
    desc = msg.DESCRIPTOR
    where = where or desc.name
    if not isinstance(data, dict):
        raise InvalidInput(f"{where}: expected a JSON object, got {_json_kind(data)}")
    for fp in _plan(desc):
        v = data.get(fp.json)
        if v is None:
            if fp.kind == "retry_count":
                setattr(msg, fp.name, NO_RETRY)
            continue
        at = f"{where}.{fp.json}"
        kind = fp.kind
        if kind in ("scalar", "string", "retry_count", "zero_is_unset"):
            setattr(msg, fp.name, _scalar(fp.field, v, at))
        elif kind == "enum":
            setattr(msg, fp.name, _enum_number(fp.field.enum_type, v, at))
        elif kind == "message":
            sub = getattr(msg, fp.name)
            sub.SetInParent()  # an empty object is still present
            fill(sub, v, at)
        elif kind == "value":
            set_value(getattr(msg, fp.name), v, at)
        elif kind == "any":
            continue
        elif kind == "repeated_scalar":
            getattr(msg, fp.name).extend(_scalar(fp.field, x, f"{at}[{i}]") for i, x in enumerate(_list(v, at)))
        elif kind == "repeated_enum":
            enum = fp.field.enum_type
            getattr(msg, fp.name).extend(_enum_number(enum, x, at) for x in _list(v, at))
        elif kind == "repeated_message":
            target = getattr(msg, fp.name)
            for i, x in enumerate(_list(v, at)):
                fill(target.add(), x, f"{at}[{i}]")
        elif kind == "repeated_value":
            target = getattr(msg, fp.name)
            for i, x in enumerate(_list(v, at)):
                set_value(target.add(), x, f"{at}[{i}]")
        elif kind == "repeated_task_list":
            target = getattr(msg, fp.name)
            for i, lane in enumerate(_list(v, at)):
                _fill_task_list(target.add(), lane, f"{at}[{i}]")
        else:
            _fill_map(msg, fp, _dict(v, at), at)


def _fill_map(msg: Message, fp: _Field, v: dict[Any, Any], at: str) -> None:
    target = getattr(msg, fp.name)
    kind = fp.kind
    value_field = fp.field.message_type.fields_by_name["value"]
    for k, x in v.items():
        key = str(k)
        if kind == "map_value":
            set_value(target[key], x, f"{at}.{key}")
        elif kind == "map_scalar":
            if x is not None:
                target[key] = _scalar(value_field, x, f"{at}.{key}")
        elif kind == "map_enum":
            if x is not None:
                target[key] = _enum_number(value_field.enum_type, x, f"{at}.{key}")
        elif kind == "map_task_list":
            _fill_task_list(target[key], x, f"{at}.{key}")
        elif x is not None:  # map_message
            fill(target[key], x, f"{at}.{key}")


def _fill_task_list(target: Message, tasks: Any, at: str) -> None:
    out = target.tasks
    for i, t in enumerate(_list(tasks, at)):
        fill(out.add(), t, f"{at}[{i}]")


def _scalar(f: FieldDescriptor, v: Any, at: str) -> Any:
    cpp = f.cpp_type
    if cpp == FieldDescriptor.CPPTYPE_STRING:
        if isinstance(v, str):
            return v
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return str(v)
        return orjson.dumps(v).decode()  # e.g. a DO_WHILE ``items`` given as a list
    if cpp == FieldDescriptor.CPPTYPE_BOOL:
        if isinstance(v, bool):
            return v
        raise InvalidInput(f"{at}: expected a boolean, got {_json_kind(v)}")
    if cpp in _INT_RANGES:
        n: int | None = None
        if isinstance(v, int) and not isinstance(v, bool):
            n = v
        elif isinstance(v, float) and v.is_integer():
            n = int(v)
        elif isinstance(v, str):
            try:
                n = int(v.strip())
            except ValueError:
                n = None
        if n is None:
            raise InvalidInput(f"{at}: expected an integer, got {_json_kind(v)}")
        low, high = _INT_RANGES[cpp]
        if not low <= n <= high:
            raise InvalidInput(f"{at}: {n} is out of range ({low} .. {high})")
        return n
    if isinstance(v, int | float) and not isinstance(v, bool):  # float / double
        return float(v)
    raise InvalidInput(f"{at}: expected a number, got {_json_kind(v)}")


def _enum_number(enum: EnumDescriptor, v: Any, at: str) -> int:
    name = v.upper() if isinstance(v, str) and enum.full_name in _LOWER_CASE_ENUMS else v
    value = enum.values_by_name.get(name) if isinstance(name, str) else None
    if value is None:
        shown = [x.name.lower() if enum.full_name in _LOWER_CASE_ENUMS else x.name for x in enum.values]
        raise InvalidInput(f"{at}: {v!r} is not one of {', '.join(shown)}")
    return int(value.number)


def set_value(target: struct_pb2.Value, v: Any, at: str = "value") -> None:
    """``target`` := the JSON value ``v`` (``google.protobuf.Value``)."""
    if v is None:
        target.null_value = struct_pb2.NULL_VALUE
    elif isinstance(v, bool):
        target.bool_value = v
    elif isinstance(v, int):
        try:
            target.number_value = float(v)
        except OverflowError:
            raise InvalidInput(f"{at}: the number {v} does not fit a double") from None
    elif isinstance(v, float):
        if not math.isfinite(v):
            raise InvalidInput(f"{at}: {v} is not a JSON number")
        target.number_value = v
    elif isinstance(v, str):
        target.string_value = v
    elif isinstance(v, dict):
        fields = target.struct_value.fields
        target.struct_value.SetInParent()  # an empty object is still an object
        for k, x in v.items():
            set_value(fields[str(k)], x, f"{at}.{k}")
    elif isinstance(v, list | tuple):
        values = target.list_value.values
        target.list_value.SetInParent()
        for i, x in enumerate(v):
            set_value(values.add(), x, f"{at}[{i}]")
    else:
        raise InvalidInput(f"{at}: {type(v).__name__} is not a JSON value")


def _list(v: Any, at: str) -> list[Any]:
    if isinstance(v, list | tuple):
        return list(v)
    raise InvalidInput(f"{at}: expected a JSON array, got {_json_kind(v)}")


def _dict(v: Any, at: str) -> dict[Any, Any]:
    if isinstance(v, dict):
        return v
    raise InvalidInput(f"{at}: expected a JSON object, got {_json_kind(v)}")


def _json_kind(v: Any) -> str:
    if v is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(type(v), "a number")


# ------------------------------------------------------------------------------------------------
# proto -> JSON


def from_proto(msg: Message) -> dict[str, Any]:
    """The JSON object of ``msg`` (see the module docstring for absent and zero values)."""
    out: dict[str, Any] = {}
    for fp in _plan(msg.DESCRIPTOR):
        kind = fp.kind
        if kind == "scalar":
            out[fp.json] = getattr(msg, fp.name)
        elif kind in ("string", "zero_is_unset"):
            s = getattr(msg, fp.name)
            if s:
                out[fp.json] = s
        elif kind == "enum":
            out[fp.json] = _enum_name(fp.field.enum_type, getattr(msg, fp.name))
        elif kind == "retry_count":
            n = getattr(msg, fp.name)
            if n != NO_RETRY:
                out[fp.json] = n
        elif kind == "message":
            if msg.HasField(fp.name):
                out[fp.json] = from_proto(getattr(msg, fp.name))
        elif kind == "value":
            if msg.HasField(fp.name):
                out[fp.json] = value_of(getattr(msg, fp.name))
        elif kind == "any":
            continue
        elif kind == "repeated_scalar":
            out[fp.json] = list(getattr(msg, fp.name))
        elif kind == "repeated_enum":
            enum = fp.field.enum_type
            out[fp.json] = [_enum_name(enum, n) for n in getattr(msg, fp.name)]
        elif kind == "repeated_message":
            out[fp.json] = [from_proto(x) for x in getattr(msg, fp.name)]
        elif kind == "repeated_value":
            out[fp.json] = [value_of(x) for x in getattr(msg, fp.name)]
        elif kind == "repeated_task_list":
            out[fp.json] = [[from_proto(t) for t in lane.tasks] for lane in getattr(msg, fp.name)]
        else:
            out[fp.json] = _map_json(fp, getattr(msg, fp.name))
    return out


_MAP_VALUE: dict[str, Callable[[Any, FieldDescriptor], Any]] = {
    "map_value": lambda x, _f: value_of(x),
    "map_scalar": lambda x, _f: x,
    "map_enum": lambda x, f: _enum_name(f.enum_type, x),
    "map_task_list": lambda x, _f: [from_proto(t) for t in x.tasks],
    "map_message": lambda x, _f: from_proto(x),
}


def _map_json(fp: _Field, m: Any) -> dict[str, Any]:
    convert = _MAP_VALUE[fp.kind]
    value_field = fp.field.message_type.fields_by_name["value"]
    return {k: convert(x, value_field) for k, x in m.items()}


def _enum_name(enum: EnumDescriptor, n: int) -> str | int:
    value = enum.values_by_number.get(n)
    if value is None:  # a newer client's value: keep the number rather than fail the call
        return n
    return value.name.lower() if enum.full_name in _LOWER_CASE_ENUMS else value.name


def value_of(v: struct_pb2.Value) -> Any:
    """The JSON value of a ``google.protobuf.Value`` (an unset one is null)."""
    kind = v.WhichOneof("kind")
    if kind == "number_value":
        x = v.number_value
        if x.is_integer() and -_MAX_EXACT <= x <= _MAX_EXACT:
            return int(x)
        return x
    if kind == "string_value":
        return v.string_value
    if kind == "bool_value":
        return v.bool_value
    if kind == "struct_value":
        return {k: value_of(x) for k, x in v.struct_value.fields.items()}
    if kind == "list_value":
        return [value_of(x) for x in v.list_value.values]
    return None


def data_map(m: Any) -> dict[str, Any]:
    """A ``map<string, google.protobuf.Value>`` field as a JSON object."""
    return {k: value_of(x) for k, x in m.items()}
