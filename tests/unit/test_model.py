"""The data model: status flags, defaults, unknown-field round trips, coercion errors."""

from __future__ import annotations

import copy

import pytest

from conductor_lab.engine.model import EMPTY, TaskDef, TaskStatus, WorkflowDef, WorkflowStatus
from conductor_lab.errors import MalformedBody

# conductor-oss Task.Status(terminal, successful, retriable) and Workflow.WorkflowStatus(terminal, successful)
TASK_FLAGS = {
    "SCHEDULED": (False, True, True),
    "IN_PROGRESS": (False, True, True),
    "COMPLETED": (True, True, True),
    "COMPLETED_WITH_ERRORS": (True, True, True),
    "FAILED": (True, False, True),
    "FAILED_WITH_TERMINAL_ERROR": (True, False, False),
    "TIMED_OUT": (True, False, True),
    "CANCELED": (True, False, False),
    "SKIPPED": (True, True, False),
}
WORKFLOW_FLAGS = {
    "RUNNING": (False, False),
    "PAUSED": (False, True),
    "COMPLETED": (True, True),
    "FAILED": (True, False),
    "TIMED_OUT": (True, False),
    "TERMINATED": (True, False),
}


def test_task_status_flags_match_conductor() -> None:
    assert {s.value: (s.terminal, s.successful, s.retriable) for s in TaskStatus} == TASK_FLAGS
    assert TaskStatus.of("FAILED") is TaskStatus.FAILED
    assert f"{TaskStatus.COMPLETED}" == "COMPLETED"


def test_workflow_status_flags_match_conductor() -> None:
    assert {s.value: (s.terminal, s.successful) for s in WorkflowStatus} == WORKFLOW_FLAGS
    with pytest.raises(ValueError):
        WorkflowStatus.of("DONE")


def test_task_def_defaults_are_conductor_oss_defaults() -> None:
    td = TaskDef.parse({"name": "x"}).to_json()
    assert td["retryCount"] == 3 and td["retryLogic"] == "FIXED" and td["retryDelaySeconds"] == 60
    assert td["timeoutSeconds"] == 0 and td["timeoutPolicy"] == "TIME_OUT_WF"
    assert td["responseTimeoutSeconds"] == 3600 and td["rateLimitPerFrequency"] == 0
    assert td["rateLimitFrequencyInSeconds"] == 1 and td["backoffScaleFactor"] == 1
    assert "pollTimeoutSeconds" not in td and "concurrentExecLimit" not in td


def test_workflow_def_round_trips_unknown_fields_and_nested_tasks() -> None:
    raw = {
        "name": "w",
        "futureField": {"kept": [1, 2]},
        "tasks": [
            {"name": "a", "taskReferenceName": "a", "someNewKnob": True},
            {
                "name": "sw",
                "taskReferenceName": "sw",
                "type": "SWITCH",
                "evaluatorType": "value-param",
                "expression": "k",
                "decisionCases": {"x": [{"name": "b", "taskReferenceName": "b"}]},
            },
        ],
    }
    original = copy.deepcopy(raw)
    out = WorkflowDef.parse(raw).to_json()
    assert raw == original  # parsing does not mutate the input
    assert out["futureField"] == {"kept": [1, 2]}
    assert out["tasks"][0]["someNewKnob"] is True
    assert out["tasks"][0]["type"] == "SIMPLE"  # a missing type means SIMPLE
    assert "taskDefinition" not in out["tasks"][0]  # absent embedded definitions stay absent
    assert out["tasks"][1]["decisionCases"]["x"][0]["taskReferenceName"] == "b"
    assert out["timeoutPolicy"] == "ALERT_ONLY" and out["schemaVersion"] == 2 and out["restartable"] is True
    again = WorkflowDef.parse(out).to_json()
    assert again == out


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "x", "retryCount": "many"},
        {"name": "x", "timeoutPolicy": "SOMETIMES"},
        {"name": "x", "inputTemplate": [1, 2]},
        {"name": "x", "retryCount": True},
    ],
)
def test_wrong_json_types_are_malformed_body_errors(bad: dict[str, object]) -> None:
    with pytest.raises(MalformedBody):
        TaskDef.parse(bad)


def test_numeric_strings_are_coerced_like_jackson() -> None:
    assert TaskDef.parse({"name": "x", "retryCount": "2"}).retryCount == 2


def test_shared_empty_map_refuses_mutation() -> None:
    for mutate in (
        lambda: EMPTY.__setitem__("a", 1),
        lambda: EMPTY.update(a=1),
        lambda: EMPTY.setdefault("a", 1),
        lambda: EMPTY.pop("a"),
        lambda: EMPTY.clear(),
    ):
        with pytest.raises(TypeError):
            mutate()
    assert EMPTY == {} and copy.deepcopy(EMPTY) == {} and type(copy.copy(EMPTY)) is dict
