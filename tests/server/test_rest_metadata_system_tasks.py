"""REST contract: registering workflow definitions whose system-task nodes are malformed.

conductor-oss validates every node at registration (``WorkflowTaskTypeConstraint``): the answer is
400 with ``validationErrors`` whose message names the field, the task type and the task; this
server also names the node's ``taskReferenceName``. Nothing is stored.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.server.util import assert_empty_200, assert_error, uid, workflow_def

NOOP = {"name": "n", "taskReferenceName": "n", "type": "NOOP"}


def node(ref: str, task_type: str, **fields: Any) -> dict[str, Any]:
    return {"name": f"{ref}_name", "taskReferenceName": ref, "type": task_type, **fields}


def switch(ref: str, **fields: Any) -> dict[str, Any]:
    return node(ref, "SWITCH", **fields)


CASES: dict[str, tuple[list[dict[str, Any]], tuple[str, ...]]] = {
    # id: (tasks, fragments the validation message must contain)
    "switch-without-evaluatorType": (
        [switch("sw1", expression="x", inputParameters={"x": 1}, decisionCases={"1": [NOOP]})],
        ("evaluatorType", "SWITCH"),
    ),
    "switch-without-expression": (
        [switch("sw2", evaluatorType="value-param", decisionCases={"1": [NOOP]})],
        ("expression", "SWITCH"),
    ),
    "switch-without-decisionCases": (
        [switch("sw3", evaluatorType="value-param", expression="x")],
        ("decisionCases", "SWITCH"),
    ),
    "switch-with-an-unsupported-evaluator": (
        [switch("sw4", evaluatorType="python", expression="x", decisionCases={"1": [NOOP]})],
        ("evaluatorType", "python"),
    ),
    "switch-javascript-that-does-not-parse": (
        [switch("sw5", evaluatorType="javascript", expression="$.x ===", decisionCases={"1": [NOOP]})],
        ("Expression is not well formatted", "SyntaxError", "SWITCH"),
    ),
    "decision-without-case": (
        [node("dec1", "DECISION", decisionCases={"1": [NOOP]})],
        ("caseValueParam or caseExpression", "DECISION"),
    ),
    "decision-caseExpression-that-does-not-parse": (
        [node("dec2", "DECISION", caseExpression="if ($.x {", decisionCases={"1": [NOOP]})],
        ("Expression is not well formatted", "SyntaxError", "DECISION"),
    ),
    "fork-without-forkTasks": (
        [node("fork1", "FORK_JOIN"), node("join1", "JOIN", joinOn=[])],
        ("forkTasks", "FORK_JOIN"),
    ),
    "fork-with-empty-forkTasks": (
        [node("fork2", "FORK_JOIN", forkTasks=[]), node("join2", "JOIN", joinOn=[])],
        ("forkTasks", "FORK_JOIN"),
    ),
    "do-while-without-loopCondition": (
        [node("loop1", "DO_WHILE", loopOver=[NOOP])],
        ("loopCondition", "DO_WHILE"),
    ),
    "do-while-without-loopOver": (
        [node("loop2", "DO_WHILE", loopCondition="false")],
        ("loopOver", "DO_WHILE"),
    ),
    "sub-workflow-without-subWorkflowParam": (
        [node("sub1", "SUB_WORKFLOW")],
        ("subWorkflowParam", "SUB_WORKFLOW"),
    ),
    "sub-workflow-without-name": (
        [node("sub2", "SUB_WORKFLOW", subWorkflowParam={"version": 1})],
        ("subWorkflowParam.name", "SUB_WORKFLOW"),
    ),
    "http-without-uri": (
        [node("http1", "HTTP", inputParameters={"http_request": {"method": "GET"}})],
        ("uri", "HTTP"),
    ),
    "http-without-method": (
        [node("http2", "HTTP", inputParameters={"http_request": {"uri": "http://127.0.0.1:9/x"}})],
        ("method", "HTTP"),
    ),
    "http-without-any-request": (
        [node("http3", "HTTP")],
        ("uri", "HTTP"),
    ),
    "http-with-method-FOO": (
        [node("http4", "HTTP", inputParameters={"http_request": {"uri": "http://127.0.0.1:9/x", "method": "FOO"}})],
        ("method", "FOO", "HTTP"),
    ),
    "http-top-level-with-method-FOO": (
        [node("http5", "HTTP", inputParameters={"uri": "http://127.0.0.1:9/x", "method": "FOO"})],
        ("method", "FOO"),
    ),
    "wait-with-duration-and-until": (
        [node("wait1", "WAIT", inputParameters={"duration": "1s", "until": "2030-01-01 00:00"})],
        ("duration", "until"),
    ),
    "terminate-with-a-bad-status": (
        [node("stop1", "TERMINATE", inputParameters={"terminationStatus": "PAUSED"})],
        ("terminationStatus", "TERMINATE"),
    ),
    "terminate-without-status": (
        [node("stop2", "TERMINATE", inputParameters={"workflowOutput": {}})],
        ("terminationStatus", "TERMINATE"),
    ),
    "terminate-optional": (
        [node("stop3", "TERMINATE", optional=True, inputParameters={"terminationStatus": "COMPLETED"})],
        ("terminate task cannot be optional",),
    ),
    "dynamic-without-dynamicTaskNameParam": (
        [node("dyn1", "DYNAMIC")],
        ("dynamicTaskNameParam", "DYNAMIC"),
    ),
    "dynamic-fork-without-tasks-param": (
        [node("dfork1", "FORK_JOIN_DYNAMIC"), node("djoin1", "JOIN")],
        ("dynamicForkTasksParam", "FORK_JOIN_DYNAMIC"),
    ),
    "inline-without-expression": (
        [node("inl1", "INLINE", inputParameters={"evaluatorType": "javascript"})],
        ("expression", "INLINE"),
    ),
    "jq-without-queryExpression": (
        [node("jq1", "JSON_JQ_TRANSFORM", inputParameters={"a": 1})],
        ("queryExpression", "JSON_JQ_TRANSFORM"),
    ),
    "event-without-sink": (
        [node("ev1", "EVENT")],
        ("sink", "EVENT"),
    ),
    "event-to-sqs": (
        [node("ev2", "EVENT", sink="sqs:orders")],
        ("sqs", "conductor"),
    ),
}


@pytest.mark.parametrize(("tasks", "fragments"), list(CASES.values()), ids=list(CASES))
def test_malformed_system_task_is_400_naming_the_task_and_the_field(
    http: httpx.Client, tasks: list[dict[str, Any]], fragments: tuple[str, ...]
) -> None:
    ref = tasks[0]["taskReferenceName"]
    name = uid("bad_system_task")
    body = assert_error(http.post("/metadata/workflow", json=workflow_def(name, tasks)), 400)
    errors = body["validationErrors"]
    mine = [e for e in errors if f"taskReferenceName: {ref}" in e["message"]]
    assert mine, errors
    text = " | ".join(e["message"] for e in mine)
    assert tasks[0]["name"] in text, text  # the task's name, as conductor-oss says it
    for fragment in fragments:
        assert fragment in text, (fragment, text)
    assert all(e["path"].startswith("registerWorkflowDef.workflowDef.tasks") for e in mine), mine
    # not stored, and /validate answers the same
    assert_error(http.get(f"/metadata/workflow/{name}"), 404, name)
    again = assert_error(http.post("/metadata/workflow/validate", json=workflow_def(name, tasks)), 400)
    assert [e["message"] for e in again["validationErrors"]] == [e["message"] for e in errors]


def test_a_malformed_node_nested_in_containers_is_named(http: httpx.Client) -> None:
    bad = node("deep_http", "HTTP", inputParameters={"http_request": {"uri": "http://127.0.0.1:9/", "method": "FOO"}})
    tasks = [
        node("outer_fork", "FORK_JOIN", forkTasks=[
            [NOOP],
            [node("inner_loop", "DO_WHILE", loopCondition="false", loopOver=[
                switch("inner_switch", evaluatorType="value-param", expression="x", inputParameters={"x": "a"},
                       decisionCases={"a": [bad]}),
            ])],
        ]),
        node("outer_join", "JOIN", joinOn=["n", "inner_loop"]),
    ]  # fmt: skip
    body = assert_error(http.post("/metadata/workflow", json=workflow_def(uid("nested_bad"), tasks)), 400)
    [err] = body["validationErrors"]
    assert "taskReferenceName: deep_http" in err["message"] and "FOO" in err["message"], err


def test_several_malformed_nodes_are_all_reported(http: httpx.Client) -> None:
    tasks = [
        node("no_sub", "SUB_WORKFLOW"),
        node("no_loop", "DO_WHILE"),
        switch("no_switch"),
    ]
    body = assert_error(http.post("/metadata/workflow", json=workflow_def(uid("many_bad"), tasks)), 400)
    text = " | ".join(e["message"] for e in body["validationErrors"])
    for fragment in ("taskReferenceName: no_sub", "subWorkflowParam", "taskReferenceName: no_loop",
                     "loopCondition", "loopOver", "taskReferenceName: no_switch", "evaluatorType", "decisionCases"):
        assert fragment in text, (fragment, text)  # fmt: skip


def test_unsupported_broker_task_types_are_400_naming_the_supported_types(http: httpx.Client) -> None:
    for task_type, inputs in (
        ("KAFKA_PUBLISH", {"kafka_request": {"topic": "t", "value": "v", "bootStrapServers": "localhost:9092"}}),
        ("PULL_WORKFLOW_MESSAGES", {"batchSize": 1}),
    ):
        body = assert_error(
            http.post("/metadata/workflow", json=workflow_def(uid("broker"), [node("pub", task_type, inputParameters=inputs)])),
            400,
        )
        [err] = body["validationErrors"]
        message = err["message"]
        assert task_type in message and "taskReferenceName: pub" in message and "not supported" in message, err
        for supported in ("SWITCH", "FORK_JOIN", "DO_WHILE", "SUB_WORKFLOW", "HTTP", "INLINE", "EVENT", "WAIT"):
            assert supported in message, (supported, message)


def test_expressions_and_graaljs_are_not_judged_at_registration(http: httpx.Client) -> None:
    """What can only be known at run time passes: ``${...}`` values, and (as conductor-oss) the
    syntax of ``graaljs`` SWITCH expressions; scripts are parsed, never run, at registration."""
    tasks = [
        node("w", "WAIT", inputParameters={"duration": "${workflow.input.d}"}),
        node("h", "HTTP", inputParameters={"http_request": "${workflow.input.request}"}),
        node("h2", "HTTP", inputParameters={"uri": "${workflow.input.base}/x", "method": "${workflow.input.m}"}),
        node("e", "EVENT", sink="conductor:${workflow.input.queue}"),
        switch("s", evaluatorType="graaljs", expression="$.x ===", decisionCases={"1": [NOOP]}),
        switch("s2", evaluatorType="javascript", inputParameters={"x": "${workflow.input.x}"},
               expression="if (undefinedFunction($.x)) { 'a' } else { while (true) {} }",
               decisionCases={"a": [{**NOOP, "taskReferenceName": "n2"}]}),
    ]  # fmt: skip
    name = uid("dynamic_ok")
    assert_empty_200(http.post("/metadata/workflow", json=workflow_def(name, tasks)))
    assert [t["taskReferenceName"] for t in http.get(f"/metadata/workflow/{name}").json()["tasks"]] == [
        "w", "h", "h2", "e", "s", "s2"
    ]  # fmt: skip


def test_well_formed_system_tasks_register(http: httpx.Client) -> None:
    """The control: one valid node of each shape above."""
    tasks = [
        switch("sw", evaluatorType="javascript", expression="$.x > 1 ? 'big' : 'small'",
               inputParameters={"x": 2}, decisionCases={"big": [NOOP]}),
        node("dec", "DECISION", caseValueParam="x", inputParameters={"x": "a"},
             decisionCases={"a": [{**NOOP, "taskReferenceName": "n_dec"}]}),
        node("fork", "FORK_JOIN", forkTasks=[[{**NOOP, "taskReferenceName": "n_fork"}]]),
        node("join", "JOIN", joinOn=["n_fork"]),
        node("loop", "DO_WHILE", loopCondition="false", loopOver=[{**NOOP, "taskReferenceName": "n_loop"}]),
        node("wait", "WAIT", inputParameters={"duration": "1 minutes 5 seconds"}),
        node("http", "HTTP", inputParameters={"http_request": {"uri": "http://127.0.0.1:9/x", "method": "post"}}),
        node("stop", "TERMINATE", inputParameters={"terminationStatus": "COMPLETED"}),
        node("ev", "EVENT", sink="conductor"),
        node("sub", "SUB_WORKFLOW", subWorkflowParam={"name": "whatever", "version": 1}),
    ]  # fmt: skip
    assert_empty_200(http.post("/metadata/workflow", json=workflow_def(uid("all_good"), tasks)))


def test_request_from_the_registered_task_definition_input_template_is_accepted(http: httpx.Client) -> None:
    """conductor-oss's ``isHttpTaskValid`` / ``isJSONJQTransformTaskValid`` look for ``http_request`` /
    ``queryExpression`` in the node's inputs, its embedded taskDefinition, or the TaskDef registered
    under the node's name (``metadataDAO.getTaskDef(name)``)."""
    jq_name, http_name = uid("jq_from_template"), uid("http_from_template")
    assert_empty_200(http.post("/metadata/taskdefs", json=[
        {"name": jq_name, "responseTimeoutSeconds": 10, "inputTemplate": {"queryExpression": ".a * 2"}},
        {"name": http_name, "responseTimeoutSeconds": 10,
         "inputTemplate": {"http_request": {"uri": "http://127.0.0.1:9/x", "method": "GET"}}},
    ]))  # fmt: skip
    wf_name = uid("from_template")
    tasks = [
        node("jq", "JSON_JQ_TRANSFORM", inputParameters={"a": "${workflow.input.a}"}),
        node("call", "HTTP"),
    ]
    tasks[0]["name"], tasks[1]["name"] = jq_name, http_name
    r = http.post("/metadata/workflow", json=workflow_def(wf_name, tasks))
    assert r.status_code == 200, r.text
