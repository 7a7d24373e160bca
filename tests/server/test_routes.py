"""The route table, the OpenAPI document generated from it, and the executor seam (no server)."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from conductor_lab.errors import MalformedBody
from conductor_lab.server import handlers
from conductor_lab.server.app import ROUTES, server_version
from conductor_lab.server.base import Body, Param, Route, operations, parse_body, parse_query
from conductor_lab.server.openapi import build_openapi


def first_match(path: str) -> Route | None:
    for route in ROUTES:
        if re.match(route.pattern, path):
            return route
    return None


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.template)
def test_no_route_is_shadowed_by_an_earlier_one(route: Route) -> None:
    assert first_match(route.sample()) is route


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/api/metadata/workflow/names", "/api/metadata/workflow/names"),
        ("/api/metadata/workflow/names-and-versions", "/api/metadata/workflow/names-and-versions"),
        ("/api/metadata/workflow/latest-versions", "/api/metadata/workflow/latest-versions"),
        ("/api/metadata/workflow/foo", "/api/metadata/workflow/{name}"),
        ("/api/metadata/workflow/foo/versions", "/api/metadata/workflow/{name}/versions"),
        ("/api/metadata/workflow/foo/3", "/api/metadata/workflow/{name}/{version:int}"),
        ("/api/tasks/poll/batch/t", "/api/tasks/poll/batch/{tasktype}"),
        ("/api/tasks/poll/t", "/api/tasks/poll/{tasktype}"),
        ("/api/tasks/update-v2", "/api/tasks/update-v2"),
        ("/api/tasks/queue/polldata/all", "/api/tasks/queue/polldata/all"),
        ("/api/tasks/queue/size", "/api/tasks/queue/size"),
        ("/api/tasks/abc", "/api/tasks/{taskId}"),
        ("/api/tasks/abc/log", "/api/tasks/{taskId}/log"),
        ("/api/tasks/w/ref/COMPLETED", "/api/tasks/{workflowId}/{taskRefName}/{status}"),
        ("/api/tasks/w/ref/COMPLETED/sync", "/api/tasks/{workflowId}/{taskRefName}/{status}/sync"),
        ("/api/tasks/w/COMPLETED/signal", "/api/tasks/{workflowId}/{status}/signal"),  # not ref COMPLETED
        ("/api/tasks/w/COMPLETED/signal/sync", "/api/tasks/{workflowId}/{status}/signal/sync"),
        ("/api/tasks/w/signal/COMPLETED", "/api/tasks/{workflowId}/{taskRefName}/{status}"),
        ("/api/workflow/test", "/api/workflow/test"),
        ("/api/workflow/execute/x/0", "/api/workflow/execute/{name}/{version:int}"),
        ("/api/workflow/search", "/api/workflow/search"),
        ("/api/workflow/a%2Fb", "/api/workflow/{workflowId}"),
        ("/api/workflow/running/x", "/api/workflow/running/{name}"),
        ("/api/workflow/x/correlated/c", "/api/workflow/{name}/correlated/{correlationId}"),
        ("/api/event", "/api/event"),
        ("/api/event/conductor:my_wf:notify_ref", "/api/event/{name}"),
    ],
)
def test_literal_segments_win(path: str, template: str) -> None:
    route = first_match(path)
    assert route is not None and route.template == template


def test_path_parameters_become_snake_case_kwargs_matching_the_handler_signature() -> None:
    for route in ROUTES:
        for method in operations(route.handler):
            sig = inspect.signature(getattr(route.handler, method))
            assert [p for p in sig.parameters if p != "self"] == [p.arg for p in route.params], route.template


def test_every_route_declares_at_least_one_operation() -> None:
    for route in ROUTES:
        assert operations(route.handler), route.template


def test_openapi_covers_the_route_table_and_nothing_else() -> None:
    doc = build_openapi(ROUTES, "9.9.9")
    assert doc["openapi"].startswith("3.")
    expected = {(r.path, m) for r in ROUTES for m in operations(r.handler)}
    documented = {(path, m) for path, item in doc["paths"].items() for m in item}
    assert documented == expected
    assert len({op["operationId"] for item in doc["paths"].values() for op in item.values()}) == len(expected)


def test_openapi_documents_parameters_bodies_and_content_types() -> None:
    doc = build_openapi(ROUTES, server_version())
    for route in ROUTES:
        for method, op in operations(route.handler).items():
            entry = doc["paths"][route.path][method]
            params = {(p["in"], p["name"]) for p in entry.get("parameters", [])}
            assert params == {("path", p.name) for p in route.params} | {("query", q.name) for q in op.query}
            assert ("requestBody" in entry) == (op.body is not None)
            for reply in op.returns:
                content = entry["responses"][str(reply.status)].get("content", {})
                kinds = {"json": "application/json", "text": "text/plain;charset=UTF-8"}
                assert list(content) == ([kinds[reply.content]] if reply.content in kinds else [])
    batch = doc["paths"]["/api/tasks/poll/batch/{tasktype}"]["get"]
    timeout = next(p for p in batch["parameters"] if p["name"] == "timeout")
    assert timeout["schema"] == {"type": "integer", "format": "int32", "default": 100}
    assert "text/plain;charset=UTF-8" in doc["paths"]["/api/workflow"]["post"]["responses"]["200"]["content"]
    # every $ref resolves
    text = str(doc)
    for ref in set(re.findall(r"#/components/schemas/(\w+)", text)):
        assert ref in doc["components"]["schemas"], ref


def test_handlers_call_the_executor_with_the_right_sync_or_async_style() -> None:
    """Every ``self.executor.X(...)`` in handlers.py exists on Executor and is awaited iff async."""
    executor_module = pytest.importorskip("conductor_lab.engine.executor")
    store_module = pytest.importorskip("conductor_lab.engine.store.duckdb")
    store = store_module.DuckDBStore(":memory:")
    executor = executor_module.Executor(store)  # its API is wired up at construction
    tree = ast.parse(Path(handlers.__file__).read_text())
    awaited: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Await) and isinstance(node.value, ast.Call):
            awaited.add(id(node.value))
    calls: dict[str, bool] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Attribute)
            and node.func.value.attr == "executor"
        ):
            calls[node.func.attr] = id(node) in awaited
    assert len(calls) >= 30
    problems = []
    for name, is_awaited in sorted(calls.items()):
        fn = getattr(executor, name, None)
        if fn is None:
            problems.append(f"Executor.{name} is missing")
        elif inspect.iscoroutinefunction(fn) != is_awaited:
            problems.append(
                f"Executor.{name}: async={inspect.iscoroutinefunction(fn)}, handler awaits={is_awaited}"
            )
    store.close()
    assert not problems, problems


# ------------------------------------------------------------------------------------------------
# Binding rules (conductor-oss / Spring)


def q(**values: str | list[str]) -> dict[str, list[bytes]]:
    return {k: [x.encode() for x in (v if isinstance(v, list) else [v])] for k, v in values.items()}


def test_booleans_are_case_insensitive_and_none_or_empty_mean_absent() -> None:
    params = [
        Param("a", "bool", False),
        Param("b", "bool", True),
        Param("c", "bool", False),
        Param("d", "bool", True),
    ]
    assert parse_query(params, q(a="True", b="FALSE", c="None", d="")) == {
        "a": True, "b": False, "c": False, "d": True,
    }  # fmt: skip


def test_bad_int_or_bool_is_a_500_type_mismatch() -> None:
    with pytest.raises(MalformedBody, match="abc"):
        parse_query([Param("n", "int")], q(n="abc"))
    with pytest.raises(MalformedBody, match="maybe"):
        parse_query([Param("b", "bool")], q(b="maybe"))
    with pytest.raises(MalformedBody):  # beyond Java int
        parse_query([Param("n", "int")], q(n=str(2**31)))
    assert parse_query([Param("n", "long")], q(n=str(2**40))) == {"n": 2**40}


def test_missing_required_parameter_is_a_500() -> None:
    with pytest.raises(MalformedBody, match="taskType"):
        parse_query([Param("taskType", required=True)], q(taskType="None"))


def test_repeatable_parameters_collect_and_split_commas() -> None:
    assert parse_query([Param("s", "str[]")], q(s=["a,b", "c", "None", ""])) == {"s": ["a", "b", "c"]}
    assert parse_query([Param("s", "str[]")], {}) == {"s": []}


def test_body_kinds() -> None:
    assert parse_body(Body("array", "TaskDef"), b'[{"name":"x"}]') == [{"name": "x"}]
    assert parse_body(Body("text", "string"), b'hello \\"w\\"') == 'hello \\"w\\"'
    with pytest.raises(MalformedBody, match="JSON parse error"):
        parse_body(Body("object", "TaskDef"), b"{nope")
    with pytest.raises(MalformedBody, match="expected a JSON array"):
        parse_body(Body("array", "TaskDef"), b'{"name": "x"}')
    with pytest.raises(MalformedBody, match="expected a JSON object"):
        parse_body(Body("object", "TaskResult"), b"[1]")
    with pytest.raises(MalformedBody, match="body is missing"):
        parse_body(Body("object", "TaskResult"), b"  ")
