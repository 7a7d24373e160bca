"""``Task.state_json`` / ``Workflow.state_json`` (what the store persists) read their scalars with
generated straight-line code (``model._scalars_reader``); these tests hold it to the plain
definition: every non-None scalar in ``SCALARS`` order, ``status`` as its string value."""

from __future__ import annotations

import random
from enum import Enum
from typing import Any

import orjson

from conductor_lab.engine.model import (
    Task,
    TaskStatus,
    Workflow,
    WorkflowDef,
    WorkflowStatus,
    _scalars_reader,
)

WD = WorkflowDef.parse(
    {"name": "w", "version": 3, "tasks": [{"name": "t1", "taskReferenceName": "r0", "type": "SIMPLE"}]}
)


def plain_scalars(record: Any, names: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        v = getattr(record, name)
        if v is not None:
            out[name] = v.value if isinstance(v, Enum) else v
    return out


def test_task_state_json_is_every_non_none_scalar_in_order() -> None:
    rng = random.Random(7)
    wf = Workflow("wf-1", WD, "snap", 1_700_000_000_000)
    nullable = [n for n in Task.SCALARS if n not in ("status", "callbackFromWorker")]
    for _ in range(200):
        t = Task("t-1", WD.tasks[0], wf, "t1", rng.choice(list(TaskStatus)))
        for name in nullable:
            setattr(t, name, rng.choice([None, 0, 7, "", "x", False, True]))
        t.inputData, t.outputData = {"x": 1}, {"y": [1, 2]}
        t.extra = {"extraKey": 1, "taskId": "not this one"} if rng.random() < 0.5 else None
        got = t.state_json()
        want = plain_scalars(t, Task.SCALARS) | {"inputData": {"x": 1}, "outputData": {"y": [1, 2]}}
        for k, v in (t.extra or {}).items():
            want.setdefault(k, v)
        assert list(got) == list(want)
        assert got == want
        assert type(got["status"]) is str and got["status"] == t.status.value
        assert orjson.dumps(got) == orjson.dumps(want)  # the stored text, byte for byte


def test_workflow_state_json_is_every_non_none_scalar_in_order() -> None:
    rng = random.Random(11)
    nullable = [n for n in Workflow.SCALARS if n not in ("workflowId", "status")]
    for _ in range(200):
        wf = Workflow("wf-1", WD, "snap", 1_700_000_000_000)
        wf.status = rng.choice(list(WorkflowStatus))
        for name in nullable:
            setattr(wf, name, rng.choice([None, 0, 5, "", "c"]))
        got = wf.state_json()
        want = plain_scalars(wf, Workflow.SCALARS) | {
            "input": wf.input,
            "output": wf.output,
            "variables": wf.variables,
            "taskToDomain": {},
            "failedReferenceTaskNames": [],
            "failedTaskNames": [],
            "workflowName": "w",
            "workflowVersion": 3,
        }
        assert list(got) == list(want)
        assert orjson.dumps(got) == orjson.dumps(want)
        assert type(got["status"]) is str


def test_the_reader_refuses_what_is_not_an_attribute_name() -> None:
    try:
        _scalars_reader(("ok", "bad name"), "ok")
    except ValueError as e:
        assert "bad name" in str(e)
    else:
        raise AssertionError("a name with a space was accepted")
