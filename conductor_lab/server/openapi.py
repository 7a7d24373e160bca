"""An OpenAPI 3 document generated from the route table and the handlers' :func:`api` declarations.

Nothing here is written by hand per endpoint: paths and path parameters come from the
:class:`Route` templates, methods from the decorated handler methods, query parameters, bodies and
success responses from each :class:`Op`. Conductor's object types are named components described
by reference to the contract (their full field lists live in ``reference/conductor-contract.md``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from conductor_lab.server.base import JSON_TYPE, TEXT_TYPE, Body, Op, Param, Reply, Route, operations

_PARAM_SCHEMA: dict[str, dict[str, Any]] = {
    "bool": {"type": "boolean"},
    "int": {"type": "integer", "format": "int32"},
    "long": {"type": "integer", "format": "int64"},
    "str": {"type": "string"},
    "str[]": {"type": "array", "items": {"type": "string"}},
}

_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "conductor-oss ErrorResponse",
    "properties": {
        "status": {"type": "integer"},
        "message": {"type": "string"},
        "instance": {"type": "string"},
        "retryable": {"type": "boolean"},
        "validationErrors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "message": {"type": "string"},
                    "invalidValue": {},
                },
            },
        },
    },
    "required": ["status", "retryable"],
}

_SCALARS = {"string": {"type": "string"}, "integer": {"type": "integer", "format": "int64"}}


def _schema(name: str, components: dict[str, Any]) -> dict[str, Any]:
    """``Task``, ``Task[]``, ``map<string, Workflow[]>``, ``SearchResult<Task>``, ``string`` …"""
    if name.endswith("[]"):
        return {"type": "array", "items": _schema(name[:-2], components)}
    m = re.fullmatch(r"map<string, (.+)>", name)
    if m:
        return {"type": "object", "additionalProperties": _schema(m.group(1), components)}
    if name in _SCALARS:
        return dict(_SCALARS[name])
    if name == "map":
        return {"type": "object", "additionalProperties": True}
    key = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_")
    components.setdefault(
        key,
        {
            "type": "object",
            "additionalProperties": True,
            "description": f"Conductor {name} (field list: conductor-contract.md, sections 3 and 11)",
        },
    )
    return {"$ref": f"#/components/schemas/{key}"}


def _query_param(p: Param) -> dict[str, Any]:
    schema = dict(_PARAM_SCHEMA[p.kind])
    if p.default is not None:
        schema["default"] = p.default
    out: dict[str, Any] = {"name": p.name, "in": "query", "required": p.required, "schema": schema}
    if p.kind == "str[]":
        out["explode"] = True
    if p.doc:
        out["description"] = p.doc
    return out


def _body(body: Body, components: dict[str, Any]) -> dict[str, Any]:
    content: dict[str, Any]
    if body.kind == "text":
        content = {"text/plain": {"schema": {"type": "string"}}}
    elif body.kind == "array":
        content = {JSON_TYPE: {"schema": {"type": "array", "items": _schema(body.schema, components)}}}
    else:
        content = {JSON_TYPE: {"schema": _schema(body.schema, components)}}
    out: dict[str, Any] = {"required": True, "content": content}
    if body.doc:
        out["description"] = body.doc
    return out


def _reply(reply: Reply, components: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"description": reply.doc or ("OK" if reply.status == 200 else "No Content")}
    if reply.content == "json":
        out["content"] = {JSON_TYPE: {"schema": _schema(reply.schema or "map", components)}}
    elif reply.content == "text":
        out["content"] = {TEXT_TYPE: {"schema": {"type": "string"}}}
    return out


def _operation(route: Route, method: str, op: Op, tag: str, components: dict[str, Any]) -> dict[str, Any]:
    params = [
        {
            "name": p.name,
            "in": "path",
            "required": True,
            "schema": dict(_PARAM_SCHEMA["int" if p.kind == "int" else "str"]),
        }
        for p in route.params
    ]
    params += [_query_param(p) for p in op.query]
    out: dict[str, Any] = {
        "tags": [tag],
        "summary": op.summary,
        "operationId": _operation_id(method, route.path),
    }
    if op.doc:
        out["description"] = op.doc
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = _body(op.body, components)
    responses = {str(r.status): _reply(r, components) for r in op.returns}
    responses["default"] = {
        "description": "Error (conductor-oss status mapping)",
        "content": {JSON_TYPE: {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }
    out["responses"] = responses
    return out


def _operation_id(method: str, path: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", path.replace("{", "by_").replace("}", ""))
    return method + "".join(w[:1].upper() + w[1:] for w in words)


def build_openapi(routes: Iterable[Route], version: str) -> dict[str, Any]:
    """The OpenAPI 3.0 document for ``routes``."""
    components: dict[str, Any] = {"ErrorResponse": _ERROR_SCHEMA}
    paths: dict[str, Any] = {}
    for route in routes:
        item = paths.setdefault(route.path, {})
        for method, op in operations(route.handler).items():
            item[method] = _operation(route, method, op, route.handler.tag, components)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "conductor-lab",
            "version": version,
            "description": "Conductor (conductor-oss) compatible REST API served by conductor_lab.",
        },
        "paths": paths,
        "components": {"schemas": dict(sorted(components.items()))},
    }
