"""``Task.state_json`` / ``Workflow.state_json`` (what the store persists) read their scalars with
generated straight-line code (``model._scalars_reader``); these tests hold it to the plain
definition: every non-None scalar in ``SCALARS`` order, ``status`` as its string value.
``from_state`` (restart recovery) sets them back with generated code too (``_scalars_loader``):
held to the plain loop over the names it replaced, and to the round trip."""

from __future__ import annotations

import random
import sys
from enum import Enum
from typing import Any

import orjson
import pytest

from conductor_lab.engine.model import (
    _TASK_DEFAULTS,
    _TASK_KNOWN,
    _WORKFLOW_KNOWN,
    Task,
    TaskStatus,
    Workflow,
    WorkflowDef,
    WorkflowStatus,
    _scalars_loader,
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


# The loaders are generated from _TASK_DEFAULTS, the known keys and these (model.py): the tests check the generated
# code against the plain loop over the same data.
WF_OR_ZERO = ("priority", "lastRetriedTime", "createTime", "updateTime", "endTime")


def random_state(rng: random.Random, names: list[str], status: str) -> dict[str, Any]:
    data: dict[str, Any] = {"status": status}
    for name in names:
        r = rng.random()
        if r < 0.3:
            continue  # missing: the default
        data[name] = None if r < 0.45 else rng.choice([0, 9, "", "x", False, True])
    if rng.random() < 0.4:
        data["someNewField"] = {"kept": True}
    return data


def test_task_from_state_sets_what_the_plain_loop_did() -> None:
    rng = random.Random(3)
    names = [n for n in Task.SCALARS if n not in ("status", "callbackFromWorker")]
    for _ in range(300):
        data = random_state(rng, names, rng.choice(list(TaskStatus)).value)
        if rng.random() < 0.5:
            data["inputData"], data["callbackFromWorker"] = {"a": 1}, False
        t = Task.from_state(data, WD.tasks[0])
        for name in names:
            assert getattr(t, name) == data.get(name, _TASK_DEFAULTS.get(name)), name
        assert t.status is TaskStatus(data["status"])
        assert t.inputData == (data.get("inputData") or {}) and t.outputData == {}
        rest = {k: v for k, v in data.items() if k not in _TASK_KNOWN}
        assert t.extra == (rest or None)
        assert t.callbackFromWorker is True  # a class constant, never read from the record


def test_workflow_from_state_sets_what_the_plain_loop_did() -> None:
    rng = random.Random(5)
    names = [n for n in Workflow.SCALARS if n != "status"]
    for _ in range(300):
        data = random_state(rng, names, rng.choice(list(WorkflowStatus)).value)
        if rng.random() < 0.5:
            data |= {"workflowName": "w", "workflowVersion": 3, "taskToDomain": {}, "variables": {"v": 1}}
        wf = Workflow.from_state(data, WD, "snap")
        for name in names:
            want = data.get(name)
            assert getattr(wf, name) == ((want or 0) if name in WF_OR_ZERO else want), name
        assert wf.status is WorkflowStatus(data["status"])
        assert wf.variables == (data.get("variables") or {}) and wf.taskToDomain is None
        rest = {k: v for k, v in data.items() if k not in _WORKFLOW_KNOWN}
        assert wf.extra == (rest or None)
        assert (wf.definition, wf.snapshotId, wf.tasks, wf.index) == (WD, "snap", [], None)


def test_state_round_trips_through_from_state() -> None:
    wf = Workflow("wf-9", WD, "snap", 1_700_000_000_000)
    wf.correlationId, wf.priority, wf.extra = "c-1", 4, {"someNewField": [1]}
    t = Task("t-9", WD.tasks[0], wf, "t1", TaskStatus.IN_PROGRESS)
    t.retryCount, t.pollCount, t.workerId, t.outputData = 2, 3, "w-1", {"y": 1}
    t.extra = {"someNewField": "kept"}
    for record, back in (
        (t, lambda d: Task.from_state(d, WD.tasks[0])),
        (wf, lambda d: Workflow.from_state(d, WD, "snap")),
    ):
        text = orjson.dumps(record.state_json())
        assert orjson.dumps(back(orjson.loads(text)).state_json()) == text


def test_recovered_strings_are_shared() -> None:
    data = {"taskType": "".join(["ty", "pe_a"]), "status": "SCHEDULED", "referenceTaskName": "".join(["r", "0"])}
    t = Task.from_state(data, WD.tasks[0])
    assert t.taskType is sys.intern("type_a") and t.referenceTaskName is sys.intern("r0")


@pytest.mark.parametrize(
    "generate", [lambda names: _scalars_reader(names, "ok"), lambda names: _scalars_loader(names, "bad")]
)
def test_the_generators_refuse_what_is_not_an_attribute_name(generate: Any) -> None:
    with pytest.raises(ValueError, match="import os"):
        generate(("ok", "x = 1; import os"))
    with pytest.raises(ValueError, match="bad name"):
        generate(("ok", "bad name"))
