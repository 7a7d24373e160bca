"""conductor_lab.builder: each builder against hand-written Conductor JSON, sequencing, nesting,
ref de-duplication, build-time errors, the engine's own validation of everything it emits, and one
built workflow run end-to-end on a real server with workers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from conductor_lab.builder import (
    BuilderError,
    Seq,
    Workflow,
    dynamic,
    event,
    fork,
    fork_dynamic,
    http,
    human,
    inline,
    jq,
    loop,
    noop,
    ref_input,
    ref_output,
    set_variable,
    simple,
    start_workflow,
    sub_workflow,
    switch,
    task,
    terminate,
    wait,
    wf_input,
    wf_var,
    workflow,
)
from conductor_lab.client import ConductorClient, Worker, WorkerRunner
from conductor_lab.engine.metadata import workflow_def_errors
from conductor_lab.engine.model import WorkflowDef, WorkflowTask
from tests.conftest import ServerProcess


def tasks_of(body: Any) -> list[dict[str, Any]]:
    """The ``tasks`` of a one-off workflow around ``body``."""
    return workflow("w", body, check_refs=False).to_dict()["tasks"]


def one(body: Any) -> dict[str, Any]:
    (node,) = tasks_of(body)
    return node


def leaf(name: str, ref: str, type_: str = "SIMPLE", **fields: Any) -> dict[str, Any]:
    """A hand-written WorkflowTask dict (``inputParameters`` defaults to ``{}``)."""
    return {"name": name, "taskReferenceName": ref, "type": type_, "inputParameters": {}, **fields}


def engine_errors(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """The engine's registration-time validation (the 400 ``validationErrors`` a server answers)."""
    return workflow_def_errors(WorkflowDef.parse(definition))


# -- one builder at a time ----------------------------------------------------------------------


def test_simple() -> None:
    assert one(simple("fetch")) == leaf("fetch", "fetch")
    assert one(simple("fetch", "f1", {"url": wf_input("url")}, optional=True, retry_count=2)) == leaf(
        "fetch", "f1", inputParameters={"url": "${workflow.input.url}"}, optional=True, retryCount=2
    )
    assert one(simple("fetch", startDelay=5, taskDefinition={"retryCount": 0})) == leaf(
        "fetch", "fetch", startDelay=5, taskDefinition={"retryCount": 0}
    )


def test_http() -> None:
    assert one(http("get", "https://example.com/x")) == leaf(
        "get",
        "get",
        "HTTP",
        inputParameters={"http_request": {"uri": "https://example.com/x", "method": "GET"}},
    )
    node = one(
        http(
            "post",
            wf_input("base"),
            "post",
            body={"a": [1, 2]},
            headers={"X-A": "1"},
            accept="application/json",
            content_type="text/plain",
            connection_timeout_ms=500,
            read_timeout_ms=900,
            name="my_http",
            optional=True,
        )
    )
    assert node == {
        "name": "my_http",
        "taskReferenceName": "post",
        "type": "HTTP",
        "inputParameters": {
            "http_request": {
                "uri": "${workflow.input.base}",
                "method": "POST",
                "headers": {"X-A": "1"},
                "body": {"a": [1, 2]},
                "accept": "application/json",
                "contentType": "text/plain",
                "connectionTimeOut": 500,
                "readTimeOut": 900,
            }
        },
        "optional": True,
    }


def test_inline_and_jq() -> None:
    assert one(inline("calc", "$.a + $.b", {"a": 1, "b": ref_output("x", "n")})) == leaf(
        "calc",
        "calc",
        "INLINE",
        inputParameters={
            "evaluatorType": "javascript",
            "expression": "$.a + $.b",
            "a": 1,
            "b": "${x.output.n}",
        },
    )
    assert one(jq("shape", "{total: (.rows | length)}", input={"rows": [1, 2]})) == leaf(
        "shape",
        "shape",
        "JSON_JQ_TRANSFORM",
        inputParameters={"queryExpression": "{total: (.rows | length)}", "rows": [1, 2]},
    )


def test_set_variable_wait_human_noop() -> None:
    assert one(set_variable("sv", count=0, who=wf_input("who"))) == leaf(
        "sv", "sv", "SET_VARIABLE", inputParameters={"count": 0, "who": "${workflow.input.who}"}
    )
    assert one(wait("w1", "1d 6h")) == leaf("w1", "w1", "WAIT", inputParameters={"duration": "1d 6h"})
    assert one(wait("w2", 30)) == leaf("w2", "w2", "WAIT", inputParameters={"duration": "30s"})
    assert one(wait("w3", until="2030-01-02 03:04")) == leaf(
        "w3", "w3", "WAIT", inputParameters={"until": "2030-01-02 03:04"}
    )
    assert one(wait("w4")) == leaf("w4", "w4", "WAIT")
    assert one(human("approve", {"who": "ops"})) == leaf(
        "approve", "approve", "HUMAN", inputParameters={"who": "ops"}
    )
    assert one(noop("nothing")) == leaf("nothing", "nothing", "NOOP")


def test_terminate() -> None:
    assert one(terminate("stop")) == leaf(
        "stop", "stop", "TERMINATE", inputParameters={"terminationStatus": "COMPLETED"}
    )
    assert one(terminate("fail", "failed", output={"why": 1}, reason="bad input")) == leaf(
        "fail",
        "fail",
        "TERMINATE",
        inputParameters={
            "terminationStatus": "FAILED",
            "terminationReason": "bad input",
            "workflowOutput": {"why": 1},
        },
    )


def test_event_sub_start_dynamic() -> None:
    assert one(event("pub", "conductor:orders", {"id": 1})) == leaf(
        "pub", "pub", "EVENT", sink="conductor:orders", inputParameters={"id": 1}
    )
    assert one(sub_workflow("child", "payments", 3, {"amount": 5})) == leaf(
        "child",
        "child",
        "SUB_WORKFLOW",
        subWorkflowParam={"name": "payments", "version": 3},
        inputParameters={"amount": 5},
    )
    assert one(sub_workflow("latest", "payments")) == leaf(
        "latest", "latest", "SUB_WORKFLOW", subWorkflowParam={"name": "payments"}
    )
    assert one(start_workflow("kick", "report", {"day": 1}, version=2, correlation_id="c1")) == leaf(
        "kick",
        "kick",
        "START_WORKFLOW",
        inputParameters={
            "startWorkflow": {"name": "report", "version": 2, "correlationId": "c1", "input": {"day": 1}}
        },
    )
    assert one(dynamic("dyn", "taskToRun", {"taskToRun": wf_input("kind")})) == leaf(
        "dyn",
        "dyn",
        "DYNAMIC",
        dynamicTaskNameParam="taskToRun",
        inputParameters={"taskToRun": "${workflow.input.kind}"},
    )


def test_sub_workflow_embeds_a_built_workflow() -> None:
    child = workflow("child_flow", simple("c1", input={"n": wf_input("n")}), version=4)
    node = one(sub_workflow("run_child", child, input={"n": 1}))
    assert node["subWorkflowParam"] == {
        "name": "child_flow",
        "version": 4,
        "workflowDefinition": child.to_dict(),
    }
    assert node["inputParameters"] == {"n": 1}
    with pytest.raises(BuilderError, match="version 2 differs"):
        sub_workflow("run_child", child, version=2)


def test_switch_value_param_from_a_reference() -> None:
    node = one(
        switch(
            "route",
            ref_output("fetch", "kind"),
            {"big": simple("review"), "small": []},
            default=noop("other"),
        )
    )
    assert node == leaf(
        "route",
        "route",
        "SWITCH",
        inputParameters={"switchCaseValue": "${fetch.output.kind}"},
        evaluatorType="value-param",
        expression="switchCaseValue",
        decisionCases={"big": [leaf("review", "review")], "small": []},
        defaultCase=[leaf("other", "other", "NOOP")],
    )


def test_switch_javascript_and_explicit_value_param() -> None:
    node = one(
        switch(
            "size",
            "$.n > 10 ? 'big' : 'small'",
            {"big": noop("b"), "small": noop("s")},
            evaluator="javascript",
            input={"n": wf_input("n")},
        )
    )
    assert node["evaluatorType"] == "javascript"
    assert node["expression"] == "$.n > 10 ? 'big' : 'small'"
    assert node["inputParameters"] == {"n": "${workflow.input.n}"}
    assert "defaultCase" not in node
    node = one(switch("pick", "k", {"a": noop("a")}, evaluator="value-param", input={"k": wf_input("k")}))
    assert (node["evaluatorType"], node["expression"], node["inputParameters"]) == (
        "value-param",
        "k",
        {"k": "${workflow.input.k}"},
    )
    # case keys are compared as Java strings: True -> "true", 2 -> "2"
    node = one(switch("flag", wf_input("f"), {True: noop("yes"), False: noop("no"), 2: noop("two")}))
    assert list(node["decisionCases"]) == ["true", "false", "2"]


def test_fork_emits_its_join() -> None:
    assert tasks_of(fork("par", simple("a") >> simple("b"), [simple("c")])) == [
        leaf("par", "par", "FORK_JOIN", forkTasks=[[leaf("a", "a"), leaf("b", "b")], [leaf("c", "c")]]),
        leaf("par_join", "par_join", "JOIN", joinOn=["b", "c"]),
    ]
    nodes = tasks_of(fork("par", simple("a"), simple("a"), join_ref="gather"))
    assert nodes[1] == leaf("gather", "gather", "JOIN", joinOn=["a", "a_2"])


def test_fork_dynamic_emits_its_join() -> None:
    body = fork_dynamic(
        "fan",
        "dynamicTasks",
        "dynamicTasksInput",
        {"dynamicTasks": wf_input("tasks"), "dynamicTasksInput": wf_input("inputs")},
    )
    assert tasks_of(body) == [
        leaf(
            "fan",
            "fan",
            "FORK_JOIN_DYNAMIC",
            inputParameters={
                "dynamicTasks": "${workflow.input.tasks}",
                "dynamicTasksInput": "${workflow.input.inputs}",
            },
            dynamicForkTasksParam="dynamicTasks",
            dynamicForkTasksInputParamName="dynamicTasksInput",
        ),
        leaf("fan_join", "fan_join", "JOIN", joinOn=[]),
    ]


def test_loop() -> None:
    assert one(loop("rounds", simple("tick"), "$.rounds['iteration'] < 3")) == leaf(
        "rounds",
        "rounds",
        "DO_WHILE",
        loopCondition="$.rounds['iteration'] < 3",
        loopOver=[leaf("tick", "tick")],
    )
    assert one(loop("r", [simple("t")], times=2, keep_last_n=1))["loopCondition"] == "$.r['iteration'] < 2"
    assert one(loop("r", simple("t"), times=2, keep_last_n=1))["inputParameters"] == {"keepLastN": 1}
    node = one(
        loop("each", simple("t", input={"item": ref_output("each", "loopItem")}), items=wf_input("rows"))
    )
    assert node["items"] == "${workflow.input.rows}" and "loopCondition" not in node
    node = one(loop("each", simple("t"), items=[1, 2, 3], condition="true"))
    assert node["inputParameters"] == {"_items": [1, 2, 3]} and node["loopCondition"] == "true"


def test_generic_task_escape_hatch() -> None:
    assert one(task("KAFKA_PUBLISH", "k", input={"kafka_request": {"topic": "t"}}, optional=True)) == leaf(
        "k", "k", "KAFKA_PUBLISH", inputParameters={"kafka_request": {"topic": "t"}}, optional=True
    )
    assert one(task("my_custom_type", "c", name="custom", join_mode="SYNC")) == leaf(
        "custom", "c", "my_custom_type", joinMode="SYNC"
    )
    # nested lists may be builder objects (refs assigned with the rest) or raw dicts
    node = one(task("DO_WHILE", "raw_loop", loop_condition="false", loop_over=simple("x") >> simple("x")))
    assert [n["taskReferenceName"] for n in node["loopOver"]] == ["x", "x_2"]
    node = one(task("DO_WHILE", "raw_loop", loopCondition="false", loopOver=[leaf("y", "y")]))
    assert node["loopOver"] == [leaf("y", "y")]


def test_with_options_returns_a_copy() -> None:
    base = noop("n")
    opt = base.with_options(optional=True, description="skip me")
    assert one(base) == leaf("n", "n", "NOOP")
    assert one(opt) == leaf("n", "n", "NOOP", optional=True, description="skip me")
    assert one(set_variable("sv", a=1).with_options(name="setter"))["name"] == "setter"


def test_expression_helpers() -> None:
    assert ref_output("fetch", "rows") == "${fetch.output.rows}"
    assert ref_output("fetch") == "${fetch.output}"
    assert ref_output("fetch", "rows", 0, "id") == "${fetch.output.rows[0].id}"
    assert ref_output(simple("fetch", "f9")) == "${f9.output}"
    assert simple("fetch").output("n") == "${fetch.output.n}"
    assert ref_input("fetch", "url") == "${fetch.input.url}"
    assert wf_input("url") == "${workflow.input.url}"
    assert wf_input() == "${workflow.input}"
    assert wf_var("count") == "${workflow.variables.count}"


# -- sequencing ---------------------------------------------------------------------------------


def test_sequencing_forms() -> None:
    a, b, c, d = simple("a"), simple("b"), simple("c"), simple("d")
    refs = lambda body: [n["taskReferenceName"] for n in tasks_of(body)]  # noqa: E731
    assert isinstance(a >> b, Seq)
    assert refs(a >> b >> c) == ["a", "b", "c"]
    assert refs((a >> b) >> (c >> d)) == ["a", "b", "c", "d"]  # Seq >> Seq
    assert refs(a >> (b >> c)) == ["a", "b", "c"]  # task >> Seq
    assert refs([a, b] >> c) == ["a", "b", "c"]  # list >> task
    assert refs(a >> [b, c]) == ["a", "b", "c"]  # task >> list
    assert refs((a >> b) >> [c, d]) == ["a", "b", "c", "d"]  # Seq >> list
    assert refs([a, b] >> (c >> d)) == ["a", "b", "c", "d"]  # list >> Seq
    assert refs([a, [b, c >> d]]) == ["a", "b", "c", "d"]  # nested lists flatten
    assert refs(a) == ["a"]
    seq = a >> b
    _ = seq >> c
    assert len(seq) == 2 and seq[0] is a, "a Seq is never changed by >>"
    assert repr(a >> simple("x", "y")) == "Seq(a >> y)"


# -- the workflow object ------------------------------------------------------------------------


def test_workflow_definition_json() -> None:
    fetch = simple("fetch", input={"url": wf_input("url")})
    wf = workflow(
        "orders",
        fetch >> simple("store", input={"rows": fetch.output("rows")}),
        version=3,
        description="fetch then store",
        input_parameters=["url"],
        output={"stored": ref_output("store", "count")},
        timeout_seconds=60,
        failure_workflow="orders_failed",
        restartable=False,
        owner_email="me@example.com",
        variables={"seen": 0},
    )
    assert wf.to_dict() == {
        "name": "orders",
        "description": "fetch then store",
        "version": 3,
        "schemaVersion": 2,
        "tasks": [
            leaf("fetch", "fetch", inputParameters={"url": "${workflow.input.url}"}),
            leaf("store", "store", inputParameters={"rows": "${fetch.output.rows}"}),
        ],
        "inputParameters": ["url"],
        "outputParameters": {"stored": "${store.output.count}"},
        "timeoutSeconds": 60,
        "timeoutPolicy": "TIME_OUT_WF",  # a timeout with ALERT_ONLY would only log
        "restartable": False,
        "failureWorkflow": "orders_failed",
        "variables": {"seen": 0},
        "ownerEmail": "me@example.com",
    }
    assert json.loads(wf.to_json()) == wf.to_dict()
    assert (wf.name, wf.version, wf.refs()) == ("orders", 3, ["fetch", "store"])
    assert repr(wf) == "Workflow('orders', version=3, refs=[fetch, store])"
    minimal = workflow("m", noop("n"), owner_email=None).to_dict()
    assert minimal == {
        "name": "m",
        "version": 1,
        "schemaVersion": 2,
        "tasks": [leaf("n", "n", "NOOP")],
        "inputParameters": [],
        "outputParameters": {},
        "timeoutSeconds": 0,
        "timeoutPolicy": "ALERT_ONLY",
        "restartable": True,
    }


def test_to_dict_is_a_fresh_copy() -> None:
    wf = workflow("w", simple("a", input={"x": [1]}))
    wf.to_dict()["tasks"][0]["inputParameters"]["x"].append(2)
    assert wf.to_dict()["tasks"][0]["inputParameters"] == {"x": [1]}


def test_task_defs() -> None:
    wf = workflow(
        "w",
        simple("a")
        >> simple("a")
        >> noop("n")
        >> fork("f", simple("b"), simple("c", taskDefinition={"retryCount": 0}))
        >> sub_workflow("s", workflow("inner", simple("d"))),
    )
    defaults = {
        "retryCount": 3,
        "retryLogic": "FIXED",
        "retryDelaySeconds": 60,
        "timeoutSeconds": 0,
        "timeoutPolicy": "TIME_OUT_WF",
        "responseTimeoutSeconds": 3600,
        "ownerEmail": "lab@example.com",
    }
    assert wf.task_defs() == [{"name": n, **defaults} for n in ("a", "b", "d")]
    fast = wf.task_defs(retry_count=0, retryDelaySeconds=1)
    assert fast[0] == {"name": "a", **defaults, "retryCount": 0, "retryDelaySeconds": 1}
    with pytest.raises(BuilderError, match="unknown option 'retries'"):
        wf.task_defs(retries=1)


def test_repr_lists_refs_and_truncates() -> None:
    wf = workflow("many", [simple("t") for _ in range(25)])
    assert repr(wf).startswith("Workflow('many', version=1, refs=[t, t_2, t_3,")
    assert repr(wf).endswith("t_20, ... (+5 more)])")
    assert repr(simple("fetch", "f")) == "Task(SIMPLE, 'fetch', ref='f')"


# -- nesting ------------------------------------------------------------------------------------


def test_fork_in_loop() -> None:
    body = loop("rounds", fork("par", simple("p"), simple("q")) >> simple("after"), times=2)
    assert tasks_of(body) == [
        leaf(
            "rounds",
            "rounds",
            "DO_WHILE",
            loopCondition="$.rounds['iteration'] < 2",
            loopOver=[
                leaf("par", "par", "FORK_JOIN", forkTasks=[[leaf("p", "p")], [leaf("q", "q")]]),
                leaf("par_join", "par_join", "JOIN", joinOn=["p", "q"]),
                leaf("after", "after"),
            ],
        )
    ]


def test_switch_in_lane_and_loop_in_lane() -> None:
    nodes = tasks_of(
        fork(
            "par",
            switch("route", wf_input("k"), {"a": simple("x")}) >> noop("route_done"),
            loop("again", simple("y"), times=2),
            fork("inner", simple("z"), simple("w")),
        )
    )
    lanes = nodes[0]["forkTasks"]
    assert [n["taskReferenceName"] for n in lanes[0]] == ["route", "route_done"]
    assert lanes[0][0]["decisionCases"] == {"a": [leaf("x", "x")]}
    assert lanes[1][0]["loopOver"] == [leaf("y", "y")]
    assert [n["taskReferenceName"] for n in lanes[2]] == ["inner", "inner_join"]
    # the outer JOIN waits on the last task of each lane; a nested fork's last task is its JOIN
    assert nodes[1] == leaf("par_join", "par_join", "JOIN", joinOn=["route_done", "again", "inner_join"])


def test_switch_in_switch_and_refs_order() -> None:
    wf = workflow(
        "nested",
        switch(
            "outer",
            wf_input("a"),
            {
                "x": switch("inner", wf_input("b"), {"y": simple("leaf")}, default=simple("leaf")),
            },
            default=[simple("leaf"), noop("end")],
        ),
    )
    assert wf.refs() == ["outer", "inner", "leaf", "leaf_2", "leaf_3", "end"]


# -- ref de-duplication -------------------------------------------------------------------------


def test_default_refs_are_deduplicated_in_definition_order() -> None:
    fetch = simple("fetch")
    wf = workflow(
        "dedup",
        fetch >> fork("f", fetch, simple("fetch", "fetch_2")) >> loop("l", simple("fetch"), times=1) >> fetch,
    )
    # explicit refs are reserved first, so defaults skip them; the same object used twice is two tasks
    assert wf.refs() == ["fetch", "f", "fetch_3", "fetch_2", "f_join", "l", "fetch_4", "fetch_5"]
    assert [n["name"] for n in wf.to_dict()["tasks"][1]["forkTasks"][1]] == ["fetch"]
    assert engine_errors(wf.to_dict()) == []


def test_default_ref_avoids_system_task_refs() -> None:
    assert workflow("w", noop("work") >> simple("work")).refs() == ["work", "work_2"]


# -- build-time errors --------------------------------------------------------------------------

ERRORS: list[tuple[str, Callable[[], Any], list[str]]] = [
    ("simple-int", lambda: simple(3), ["simple()", "name must be a non-empty string", "3 (int)"]),  # type: ignore[arg-type]
    ("simple-empty", lambda: simple(""), ["simple()", "non-empty string"]),
    ("ref-int", lambda: noop(7), ["noop()", "ref must be a non-empty string"]),  # type: ignore[arg-type]
    ("ref-dot", lambda: noop("a.b"), ["noop 'a.b'", "contains '.'"]),
    ("simple-name-space", lambda: simple("my task"), ["simple 'my task'", "contains ' '"]),
    ("input-not-dict", lambda: simple("a", input=[1]), ["simple 'a'", "input must be a dict"]),  # type: ignore[arg-type]
    ("input-not-json", lambda: simple("a", input={"when": object()}), ["simple 'a' input.when", "not a JSON value"]),
    ("input-task", lambda: simple("a", input={"x": noop("n")}), ["input.x", "ref_output"]),
    ("input-key", lambda: simple("a", input={1: 2}), ["simple 'a' input", "key 1 (int) must be a string"]),
    ("unknown-option", lambda: noop("n", optinal=True), ["noop 'n'", "unknown option 'optinal'", "optional"]),
    ("builder-field", lambda: switch("s", wf_input("x"), {"a": []}, loop_over=[]), ["switch 's'", "written by the builder"]),
    ("option-type", lambda: noop("n", optional="yes"), ["noop 'n'", "optional must be True or False"]),
    ("retry-negative", lambda: simple("a", retry_count=-1), ["simple 'a'", "retryCount must be an integer >= 0"]),
    ("simple-name-option", lambda: simple("a").with_options(name="b"), ["simple 'a'", "name is the task type workers poll"]),
    ("empty-switch", lambda: switch("route", wf_input("x"), {}), ["switch 'route'", "cases is empty"]),
    ("switch-not-ref", lambda: switch("route", "$.x", {"a": []}), ["switch 'route'", "evaluator='javascript'"]),
    ("switch-evaluator", lambda: switch("r", "x", {"a": []}, evaluator="python"), ["switch 'r'", "'python'"]),
    ("switch-key", lambda: switch("r", "x", {"a": []}, evaluator="value-param"), ["switch 'r'", "key of input"]),
    ("switch-case-type", lambda: switch("r", wf_input("x"), {1.5: []}), ["switch 'r'", "case key 1.5"]),
    ("switch-dup-case", lambda: switch("r", wf_input("x"), {1: [], "1": []}), ["switch 'r'", "case '1' is given twice"]),
    ("switch-branch", lambda: switch("r", wf_input("x"), {"a": "noop"}), ["switch 'r' case 'a'", "got str"]),
    ("fork-no-lanes", lambda: fork("f"), ["fork 'f'", "at least one lane"]),
    ("fork-empty-lane", lambda: fork("f", simple("a"), []), ["fork 'f'", "lane 2 is empty"]),
    ("fork-switch-last", lambda: fork("f", switch("s", wf_input("x"), {"a": simple("a")})), ["fork 'f'", "lane 1 ends with switch 's'", "noop('s_done')"]),
    ("fork-dynamic-keys", lambda: fork_dynamic("fd", "tasks", "inputs", {"tasks": []}), ["fork_dynamic 'fd'", "no 'inputs' key"]),
    ("loop-empty", lambda: loop("l", [], times=1), ["loop 'l'", "body is empty"]),
    ("loop-no-condition", lambda: loop("l", simple("a")), ["loop 'l'", "condition="]),
    ("loop-nested", lambda: loop("l", loop("m", simple("a"), times=1), times=1), ["loop 'l'", "loop 'm' cannot be nested"]),
    ("loop-both", lambda: loop("l", simple("a"), "true", times=2), ["loop 'l'", "not both"]),
    ("loop-keep", lambda: loop("l", simple("a"), times=2, keep_last_n=0), ["loop 'l'", "keep_last_n must be an integer >= 1"]),
    ("wait-both", lambda: wait("w", "1s", "2030-01-01"), ["wait 'w'", "not both"]),
    ("http-method", lambda: http("h", "http://x", "FETCH"), ["http 'h'", "'FETCH' is not one of"]),
    ("terminate-status", lambda: terminate("t", "DONE"), ["terminate 't'", "'DONE'"]),
    ("terminate-optional", lambda: terminate("t", optional=True), ["terminate 't'", "cannot be optional"]),
    ("dynamic-key", lambda: dynamic("d", "taskToRun"), ["dynamic 'd'", "no 'taskToRun' key"]),
    ("inline-clash", lambda: inline("i", "1", {"expression": "x"}), ["inline 'i'", "'expression' is written by the builder"]),
    ("set-variable-empty", lambda: set_variable("sv"), ["set_variable 'sv'", "at least one variable"]),
    ("seq-bad", lambda: simple("a") >> 5, ["the right side of >>", "got int"]),  # type: ignore[operator]
    ("workflow-body", lambda: workflow("w", []), ["workflow 'w'", "body is empty"]),
    ("workflow-as-task", lambda: workflow("w", workflow("x", noop("n"))), ["got Workflow", "sub_workflow(ref, wf)"]),
    ("workflow-name", lambda: workflow(None, noop("n")), ["workflow()", "name must be a non-empty string"]),  # type: ignore[arg-type]
    ("workflow-schema", lambda: workflow("w", noop("n"), schema_version=1), ["schema_version must be 2"]),
    ("workflow-policy", lambda: workflow("w", noop("n"), timeout_policy="RETRY"), ["'RETRY' is not TIME_OUT_WF"]),
    ("dup-explicit", lambda: workflow("w", noop("x") >> simple("a", "x")), ["workflow 'w'", "duplicate taskReferenceName 'x'", "noop 'x'", "simple 'x'"]),
    ("dup-same-object", lambda: workflow("w", [n := noop("x"), n]), ["duplicate taskReferenceName 'x'", "same task object"]),
    ("dup-join-ref", lambda: workflow("w", fork("f", simple("a")) >> noop("f_join")), ["duplicate taskReferenceName 'f_join'", "fork 'f'"]),
    ("dup-raw", lambda: workflow("w", noop("y") >> task("DO_WHILE", "l", loopCondition="false", loopOver=[leaf("y", "y")])), ["duplicate taskReferenceName 'y'"]),
    ("unknown-ref", lambda: workflow("w", simple("fetch") >> simple("b", input={"r": ref_output("fetchh", "rows")})), ["task 'b' inputParameters.r", "${fetchh.output.rows}", "did you mean 'fetch'?"]),
    ("unknown-ref-output", lambda: workflow("w", simple("a"), output={"x": ref_output("b")}), ["outputParameters.x", "no task has the ref 'b'"]),
]  # fmt: skip


@pytest.mark.parametrize("build, fragments", [pytest.param(b, f, id=i) for i, b, f in ERRORS])
def test_builder_errors(build: Callable[[], Any], fragments: list[str]) -> None:
    with pytest.raises(BuilderError) as info:
        build()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert isinstance(info.value, ValueError)


def test_check_refs_can_be_turned_off() -> None:
    wf = workflow(
        "w", simple("a", input={"x": "${_df_item_0.output}", "env": "${NETFLIX_ENV}"}), check_refs=False
    )
    assert wf.refs() == ["a"]
    # upper-case heads are environment values (conductor-oss resolves them), not refs
    assert workflow("w", simple("a", input={"env": "${NETFLIX_ENV}", "lit": "$${not.a.ref}"})).refs() == ["a"]


# -- the engine accepts everything the builder emits ----------------------------------------------


def gallery(suffix: str = "") -> list[Workflow]:
    """One workflow per builder, and nested ones (names get ``suffix`` to be unique on a server)."""
    n = lambda s: f"bld_{s}{suffix}"  # noqa: E731
    fetch = simple(n("fetch"), input={"url": wf_input("url")})
    child = workflow(n("child"), simple(n("child_task"), input={"x": wf_input("x")}))
    return [
        workflow(n("simple"), fetch >> simple(n("store"), input={"rows": fetch.output("rows")})),
        workflow(
            n("http"), http("get", wf_input("base"), body={"a": 1}, headers={"X": "y"}, read_timeout_ms=500)
        ),
        workflow(n("inline"), inline("calc", "$.a * 2", {"a": wf_input("a")}) >> jq("q", ".b", {"b": 1})),
        workflow(
            n("vars"), set_variable("sv", seen=1) >> wait("w", "1s") >> wait("w2", until="2030-01-01 00:00")
        ),
        workflow(n("human"), human("approve") >> noop("nothing") >> terminate("stop", "FAILED", reason="no")),
        workflow(n("event"), event("pub", "conductor", {"a": 1}) >> event("pub2", "conductor:q")),
        workflow(
            n("sub"), sub_workflow("s1", n("child"), 1, {"x": 1}) >> sub_workflow("s2", child, input={"x": 2})
        ),
        workflow(n("start"), start_workflow("kick", n("child"), {"x": 1})),
        workflow(n("dynamic"), dynamic("d", "taskToRun", {"taskToRun": wf_input("t")})),
        workflow(
            n("switch"),
            switch("by_ref", wf_input("k"), {"a": simple(n("a")), "b": []}, default=noop("dflt"))
            >> switch(
                "by_js",
                "$.n > 1 ? 'big' : 'small'",
                {"big": noop("big"), "small": noop("small")},
                evaluator="javascript",
                input={"n": wf_input("n")},
            ),
        ),
        workflow(n("fork"), fork("f", simple(n("a")) >> simple(n("a")), simple(n("b")))),
        workflow(
            n("fork_dyn"),
            fork_dynamic(
                "fd",
                "dynamicTasks",
                "dynamicTasksInput",
                {"dynamicTasks": wf_input("t"), "dynamicTasksInput": wf_input("i")},
            )
            >> noop("after"),
        ),
        workflow(
            n("loop"),
            loop("l", simple(n("tick"), input={"i": ref_output("l", "iteration")}), times=3, keep_last_n=2),
        ),
        workflow(
            n("items"),
            loop(
                "each", simple(n("item"), input={"v": ref_output("each", "loopItem")}), items=wf_input("xs")
            ),
        ),
        workflow(
            n("nested"),
            loop(
                "rounds",
                fork(
                    "par",
                    switch("s", wf_input("k"), {"x": simple(n("x"))}) >> noop("s_done"),
                    fork("inner", simple(n("y")), simple(n("z"))),
                ),
                times=2,
            )
            >> fork("outer", loop("again", simple(n("w")), times=2), simple(n("v"))),
            output={"last": ref_output("rounds", "iteration")},
        ),
        workflow(n("escape"), task("LAMBDA", "lam", input={"scriptExpression": "return 1;"})),
        child,
    ]


@pytest.mark.parametrize("wf", gallery(), ids=lambda wf: wf.name)
def test_engine_validation_accepts_every_built_workflow(wf: Workflow) -> None:
    assert engine_errors(wf.to_dict()) == []
    # the builder's field names are conductor-oss's (and so the engine's) WorkflowTask fields
    parsed = WorkflowDef.parse(wf.to_dict())
    assert [t.taskReferenceName for t in parsed.all_tasks()] == wf.refs()


def test_engine_validation_is_a_real_check() -> None:
    """The escape hatch can write what the engine refuses: the gallery test above can fail."""
    bad = workflow("bad", task("SWITCH", "s", decisionCases={"a": []})).to_dict()
    messages = [e["message"] for e in engine_errors(bad)]
    assert any("evaluatorType field is required" in m for m in messages), messages


def test_builder_option_names_are_workflow_task_fields() -> None:
    from conductor_lab.builder import COMMON_OPTIONS, WORKFLOW_TASK_FIELDS

    engine_fields = {name for name, _default, _coerce in WorkflowTask.FIELDS}
    assert WORKFLOW_TASK_FIELDS == engine_fields
    assert COMMON_OPTIONS <= engine_fields


# -- on a real server ---------------------------------------------------------------------------


def test_register_gallery_on_server(http: httpx.Client) -> None:
    suffix = "_" + uuid.uuid4().hex[:8]
    for wf in gallery(suffix):
        defs = wf.task_defs()
        if defs:
            r = http.post("/metadata/taskdefs", json=defs)
            assert r.status_code == 200, r.text
        r = http.post("/metadata/workflow", json=wf.to_dict())
        assert r.status_code == 200, (wf.name, r.text)
        stored = http.get(f"/metadata/workflow/{wf.name}").json()
        assert [t["taskReferenceName"] for t in stored["tasks"]] == [
            t["taskReferenceName"] for t in wf.to_dict()["tasks"]
        ]


def test_built_workflow_runs_to_completed(server: ServerProcess, http: httpx.Client) -> None:
    suffix = uuid.uuid4().hex[:8]
    t_fetch, t_work, t_tick = f"bld_fetch_{suffix}", f"bld_work_{suffix}", f"bld_tick_{suffix}"
    fetch = simple(t_fetch, input={"n": wf_input("n")})
    wf = workflow(
        f"bld_e2e_{suffix}",
        fetch
        >> switch(
            "size",
            "$.n > 10 ? 'big' : 'small'",
            {"big": set_variable("mark_big", size="big"), "small": set_variable("mark_small", size="small")},
            evaluator="javascript",
            input={"n": fetch.output("n")},
        )
        >> fork(
            "par",
            inline("double", "$.n * 2", {"n": fetch.output("n")}),
            simple(t_work, input={"i": 1}) >> simple(t_work, input={"i": ref_output(t_work, "i")}),
        )
        >> loop("rounds", simple(t_tick, input={"i": ref_output("rounds", "iteration")}), times=3)
        >> jq(
            "summary",
            "{double: .d, size: .s, lane: .l}",
            {"d": ref_output("double", "result"), "s": wf_var("size"), "l": ref_output(f"{t_work}_2", "i")},
        ),
        output={
            "summary": ref_output("summary", "result"),
            "iterations": ref_output("rounds", "iteration"),
            "joined": ref_output("par_join"),
        },
    )
    assert http.post("/metadata/taskdefs", json=wf.task_defs(retry_count=0)).status_code == 200
    r = http.post("/metadata/workflow", json=wf.to_dict())
    assert r.status_code == 200, r.text

    def fetch_fn(t: dict[str, Any]) -> dict[str, Any]:
        return {"n": t["inputData"]["n"]}

    def work_fn(t: dict[str, Any]) -> dict[str, Any]:
        return {"i": t["inputData"]["i"] + 1}

    def tick_fn(t: dict[str, Any]) -> dict[str, Any]:
        return {"i": t["inputData"]["i"]}

    workers = [Worker(t_fetch, fetch_fn), Worker(t_work, work_fn), Worker(t_tick, tick_fn)]
    with ConductorClient(server.url) as client, WorkerRunner(server.url, workers) as runner:
        workflow_id = client.start_workflow(wf.name, {"n": 12})
        run = client.wait_for_workflow(workflow_id, timeout=60)
    assert run["status"] == "COMPLETED", run.get("reasonForIncompletion")
    assert run["output"]["summary"] == {"double": 24, "size": "big", "lane": 3}
    assert run["output"]["iterations"] == 3
    assert set(run["output"]["joined"]) == {"double", f"{t_work}_2"}
    refs = [t["referenceTaskName"] for t in run["tasks"]]
    assert "mark_big" in refs and "mark_small" not in refs
    assert [r for r in refs if r.startswith(t_tick)] == [f"{t_tick}__1", f"{t_tick}__2", f"{t_tick}__3"]
    assert runner.stats[t_tick]["completed"] == 3
    assert runner.stats[t_work]["completed"] == 2
