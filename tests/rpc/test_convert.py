"""The converter against the REST JSON of real objects (taken from a running server), and its
number edge cases.

Round trip: REST JSON -> proto -> JSON keeps every value the gRPC contract has a field for; what it
cannot carry (no field in conductor-oss's protos) is listed per object below, so losing anything
else fails.
"""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
from google.protobuf.message import Message

from conductor_lab.errors import InvalidInput
from conductor_lab.rpc.convert import NO_RETRY, from_proto, to_proto, value_of
from conductor_lab.rpc.gen.model import definitions_pb2, events_pb2, tasks_pb2, workflows_pb2
from tests.conftest import wait_until
from tests.server.util import uid

# Keys of the REST JSON the gRPC contract has no field for (conductor-oss's protos lack them too),
# as these objects carry them.
TASK_ONLY_REST = {"queueWaitTime", "loopOverTask", "taskDefinition"}  # Task (computed ones)
TASKDEF_ONLY_REST = {"createTime", "updateTime", "enforceSchema"}  # TaskDef (Auditable, schemas)
WORKFLOW_ONLY_REST = {"startTime", "createTime", "updateTime", "workflowName", "workflowVersion", "rateLimited"}
#: the SWITCH node's synthesized TaskDef has responseTimeoutSeconds 0: the proto carries the 0, and
#: proto -> JSON reads that zero as "unset" (a zero the engine refuses in a request)
SYSTEM_TASKDEF_ZERO = {"responseTimeoutSeconds"}


def losses(original: Any, back: Any, key: str = "") -> set[str]:
    """Names of the keys whose (non-empty) value did not survive the round trip."""
    if isinstance(original, dict):
        if not isinstance(back, dict):
            return {key}
        out: set[str] = set()
        for k, v in original.items():
            if v is None or v == "" or v == {} or v == []:
                continue
            out |= {k} if k not in back else losses(v, back[k], k)
        return out
    if isinstance(original, list):
        if not isinstance(back, list) or len(back) != len(original):
            return {key}
        return set().union(*(losses(a, b, key) for a, b in zip(original, back, strict=True)))
    same = original == back and type(original) is type(back)
    return set() if same else {key}


def round_trip(data: dict[str, Any], cls: type[Message]) -> tuple[Message, dict[str, Any]]:
    msg = to_proto(data, cls)
    back = from_proto(msg)
    assert to_proto(back, cls) == msg, "JSON -> proto is not a fixed point of proto -> JSON"
    return msg, back


# ------------------------------------------------------------------------------------------------
# Objects from a real server


WORKER = "worker_task"
DATA = {
    "text": "héllo",
    "n": 5,
    "neg": -17,
    "ratio": 0.1,
    "big": 2**53,
    "flag": True,
    "nothing": None,
    "nested": {"list": [1, "two", None, {"three": 3.5}], "empty": {}, "none": []},
}


@pytest.fixture(scope="module")
def objects(rest: httpx.Client) -> dict[str, Any]:
    name = uid("convert")
    worker = uid(WORKER)
    r = rest.post("/metadata/taskdefs", json=[{"name": worker, "retryCount": 1, "responseTimeoutSeconds": 30}])
    assert r.status_code == 200, r.text
    wd = {
        "name": name,
        "version": 1,
        "schemaVersion": 2,
        "tasks": [
            {"name": worker, "taskReferenceName": "first", "type": "SIMPLE", "inputParameters": {"data": "${workflow.input.data}"}, "retryCount": 4},
            {
                "name": "switch",
                "taskReferenceName": "route",
                "type": "SWITCH",
                "evaluatorType": "value-param",
                "expression": "which",
                "inputParameters": {"which": "${workflow.input.which}"},
                "decisionCases": {
                    "a": [{"name": worker, "taskReferenceName": "case_a", "type": "SIMPLE"}],
                    "b": [
                        {"name": worker, "taskReferenceName": "case_b1", "type": "SIMPLE"},
                        {"name": worker, "taskReferenceName": "case_b2", "type": "SIMPLE"},
                    ],
                },
                "defaultCase": [{"name": worker, "taskReferenceName": "case_default", "type": "SIMPLE"}],
            },
            {
                "name": "fork",
                "taskReferenceName": "fork",
                "type": "FORK_JOIN",
                "forkTasks": [
                    [{"name": worker, "taskReferenceName": "lane_1", "type": "SIMPLE"}],
                    [{"name": worker, "taskReferenceName": "lane_2", "type": "SIMPLE"}],
                ],
            },
            {"name": "join", "taskReferenceName": "join", "type": "JOIN", "joinOn": ["lane_1", "lane_2"]},
            {
                "name": "loop",
                "taskReferenceName": "loop",
                "type": "DO_WHILE",
                "loopCondition": "if ($.loop['iteration'] < 2) { true; } else { false; }",
                "loopOver": [{"name": worker, "taskReferenceName": "body", "type": "SIMPLE"}],
                "inputParameters": {},
            },
        ],
        "outputParameters": {"data": "${first.output.data}"},
        "timeoutPolicy": "TIME_OUT_WF",
        "timeoutSeconds": 600,
    }
    r = rest.post("/metadata/workflow", json=wd)
    assert r.status_code == 200, r.text
    r = rest.post(f"/workflow/{name}", json={"data": DATA, "which": "b"}, params={"correlationId": "c-1"})
    assert r.status_code == 200, r.text
    workflow_id = r.text
    polled = wait_until(
        lambda: rest.get(f"/tasks/poll/batch/{worker}", params={"workerid": "w", "timeout": 500}).json(),
        what="the first task",
    )
    task_id = polled[0]["taskId"]
    result = {
        "workflowInstanceId": workflow_id,
        "taskId": task_id,
        "status": "COMPLETED",
        "outputData": {"data": DATA, "at": 2**52},
        "logs": [{"log": "done", "taskId": task_id, "createdTime": 1}],
    }
    assert rest.post("/tasks", json=result).status_code == 200
    handler = {
        "name": uid("handler"),
        "event": "conductor:x:y",
        "condition": "$.ok == true",
        "active": True,
        "evaluatorType": "javascript",
        "actions": [
            {"action": "start_workflow", "start_workflow": {"name": name, "version": 1, "input": {"k": [1, 2]}}},
            {"action": "complete_task", "complete_task": {"workflowId": "w", "taskRefName": "r", "output": {"x": 1}}, "expandInlineJSON": True},
        ],
    }
    assert rest.post("/event", json=handler).status_code == 200
    return {
        "task": rest.get(f"/tasks/{task_id}").json(),
        "workflow": rest.get(f"/workflow/{workflow_id}").json(),
        "workflow_def": rest.get(f"/metadata/workflow/{name}").json(),
        "task_def": rest.get(f"/metadata/taskdefs/{worker}").json(),
        "event_handler": next(h for h in rest.get("/event").json() if h["name"] == handler["name"]),
    }


def test_task_round_trip(objects: dict[str, Any]) -> None:
    task = objects["task"]
    msg, back = round_trip(task, tasks_pb2.Task)
    assert isinstance(msg, tasks_pb2.Task)
    assert losses(task, back) == TASK_ONLY_REST | TASKDEF_ONLY_REST
    assert msg.status == tasks_pb2.Task.COMPLETED  # enums by name
    assert back["outputData"] == {"data": DATA, "at": 2**52}
    assert msg.workflow_task.retry_count == 4
    assert msg.start_time == task["startTime"] > 0  # int64 epoch ms


def test_workflow_with_tasks_round_trip(objects: dict[str, Any]) -> None:
    wf = objects["workflow"]
    assert len(wf["tasks"]) >= 3
    msg, back = round_trip(wf, workflows_pb2.Workflow)
    assert isinstance(msg, workflows_pb2.Workflow)
    lost = losses(wf, back)
    # the tasks' and the definition's own REST-only keys, the workflow's own
    assert lost == WORKFLOW_ONLY_REST | TASK_ONLY_REST | TASKDEF_ONLY_REST | SYSTEM_TASKDEF_ZERO
    assert msg.status == workflows_pb2.Workflow.RUNNING
    assert msg.correlation_id == "c-1"
    assert value_of(msg.input["data"]) == DATA
    assert [t.reference_task_name for t in msg.tasks] == [t["referenceTaskName"] for t in wf["tasks"]]


def test_workflow_def_round_trip(objects: dict[str, Any]) -> None:
    wd = objects["workflow_def"]
    msg, back = round_trip(wd, definitions_pb2.WorkflowDef)
    assert isinstance(msg, definitions_pb2.WorkflowDef)
    assert losses(wd, back) == {"createTime"}
    first, switch, fork, _join, loop = msg.tasks
    assert first.retry_count == 4
    assert switch.retry_count == NO_RETRY and "retryCount" not in back["tasks"][1]  # null travels as -1
    assert {k: [t.task_reference_name for t in v.tasks] for k, v in switch.decision_cases.items()} == {
        "a": ["case_a"],
        "b": ["case_b1", "case_b2"],
    }
    assert [t.task_reference_name for t in switch.default_case] == ["case_default"]
    assert [[t.task_reference_name for t in lane.tasks] for lane in fork.fork_tasks] == [["lane_1"], ["lane_2"]]
    assert [t.task_reference_name for t in loop.loop_over] == ["body"]
    assert msg.timeout_policy == definitions_pb2.WorkflowDef.TIME_OUT_WF


def test_task_def_round_trip(objects: dict[str, Any]) -> None:
    td = objects["task_def"]
    msg, back = round_trip(td, definitions_pb2.TaskDef)
    assert isinstance(msg, definitions_pb2.TaskDef)
    assert losses(td, back) == TASKDEF_ONLY_REST
    assert (msg.retry_count, msg.response_timeout_seconds) == (1, 30)
    assert back["timeoutPolicy"] == td["timeoutPolicy"]


def test_event_handler_round_trip(objects: dict[str, Any]) -> None:
    eh = objects["event_handler"]
    msg, back = round_trip(eh, events_pb2.EventHandler)
    assert isinstance(msg, events_pb2.EventHandler)
    assert losses(eh, back) == set()
    start, complete = msg.actions
    assert start.action == events_pb2.EventHandler.Action.START_WORKFLOW  # upper case in the proto
    assert back["actions"][0]["action"] == "start_workflow"  # lower case in JSON
    assert complete.expand_inline_json is True and back["actions"][1]["expandInlineJSON"] is True
    assert value_of(start.start_workflow.input["k"]) == [1, 2]


# ------------------------------------------------------------------------------------------------
# Numbers and nulls


@pytest.mark.parametrize("field", ["startTime", "scheduledTime", "callbackAfterSeconds", "responseTimeoutSeconds"])
@pytest.mark.parametrize("value", [2**63 - 1, -(2**63), 0])
def test_int64_bounds_are_exact(field: str, value: int) -> None:
    back = from_proto(to_proto({field: value}, tasks_pb2.Task))
    assert back[field] == value


@pytest.mark.parametrize(("field", "value"), [("startTime", 2**63), ("seq", 2**31), ("seq", -(2**31) - 1)])
def test_integers_out_of_range_are_refused(field: str, value: int) -> None:
    with pytest.raises(InvalidInput, match=field):
        to_proto({field: value}, tasks_pb2.Task)


def data_round_trip(value: Any) -> Any:
    return from_proto(to_proto({"inputData": {"v": value}}, tasks_pb2.Task))["inputData"]["v"]


@pytest.mark.parametrize(
    "value",
    [0.1, -2.5, 1e300, -1e-300, 5, -5, 0, 2**53, -(2**53), True, False, None, "", "x", [], {}, [None, [None]], {"a": None}],
)
def test_data_values_survive(value: Any) -> None:
    back = data_round_trip(value)
    assert back == value and type(back) is type(value)


def test_integral_doubles_come_back_as_ints() -> None:
    assert data_round_trip(3.0) == 3 and type(data_round_trip(3.0)) is int


def test_big_ints_in_data_keep_a_doubles_precision() -> None:
    assert data_round_trip(2**53 + 1) == 2**53  # the nearest double, still within 2**53: an int
    back = data_round_trip(2**53 + 3)
    assert back == float(2**53 + 4) and isinstance(back, float)  # beyond 2**53: a float
    assert data_round_trip(2**63 - 1) == float(2**63)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 10**400])
def test_non_json_numbers_are_refused(value: Any) -> None:
    with pytest.raises(InvalidInput, match=r"inputData\.v"):
        to_proto({"inputData": {"v": value}}, tasks_pb2.Task)


def test_wrong_types_name_the_field() -> None:
    with pytest.raises(InvalidInput, match=r"Task\.retried: expected a boolean"):
        to_proto({"retried": "yes"}, tasks_pb2.Task)
    with pytest.raises(InvalidInput, match=r"Task\.status: 'DONE' is not one of"):
        to_proto({"status": "DONE"}, tasks_pb2.Task)
    with pytest.raises(InvalidInput, match=r"WorkflowDef\.tasks\[0\]\.decisionCases\.a: expected a JSON array"):
        to_proto({"tasks": [{"decisionCases": {"a": {}}}]}, definitions_pb2.WorkflowDef)


def test_proto3_zero_values_and_empty_strings() -> None:
    """Requests: empty strings are absent; numbers, booleans and enums as sent (zeros included),
    except the zeros the engine would refuse."""
    td = from_proto(definitions_pb2.TaskDef(name="t"))
    assert "description" not in td and "ownerEmail" not in td
    assert td["retryCount"] == 0 and td["timeoutPolicy"] == "RETRY"  # as conductor-oss's fromProto
    assert "responseTimeoutSeconds" not in td and "backoffScaleFactor" not in td  # the engine's defaults
    wd = from_proto(definitions_pb2.WorkflowDef(name="w", tasks=[definitions_pb2.WorkflowTask(name="x")]))
    assert "schemaVersion" not in wd and wd["restartable"] is False
    assert wd["tasks"][0]["retryCount"] == 0  # unset is 0: send -1 for "not set", as conductor-oss's client does
    result = from_proto(tasks_pb2.TaskResult(task_id="t", status=tasks_pb2.TaskResult.COMPLETED))
    assert result == {
        "taskId": "t",
        "callbackAfterSeconds": 0,
        "status": "COMPLETED",
        "outputData": {},
        "logs": [],
        "extendLease": False,
        "supportsCancellation": False,
    }
