"""Every task-type module through the ``TaskType`` protocol and the pure decider (no server, no store).

Each test builds a workflow from a definition (``Metadata`` + ``parse_workflow_def`` + a snapshot),
then either calls a type's ``validate`` / ``schedule`` / ``execute`` / ``watches`` / ``proceeds`` /
``finishes`` on a ``ScheduleContext``, or runs ``decide`` and applies its decisions with the small
in-test applier below (what the executor does, without store, queue and effects).
Expectations follow conductor-oss (reference/conductor-contract.md section 4 and the Java sources).
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conductor_lab.engine import tasks as task_types
from conductor_lab.engine.decide import Decision, decide
from conductor_lab.engine.metadata import Metadata, parse_task_def, parse_workflow_def
from conductor_lab.engine.model import Task, TaskStatus, Workflow, WorkflowDef, WorkflowStatus, WorkflowTask
from conductor_lab.engine.tasks import (
    do_while,
    dynamic,
    event,
    exclusive_join,
    fork_join,
    fork_join_dynamic,
    http,
    human,
    inline,
    join,
    json_jq_transform,
    lambda_,
    noop,
    set_variable,
    simple,
    start_workflow,
    sub_workflow,
    switch,
    terminate,
    wait,
)
from conductor_lab.engine.tasks.base import (
    Outcome,
    Publish,
    ScheduleContext,
    StartWorkflow,
    TaskType,
    TerminateWorkflow,
    WorkflowEnd,
    index_of,
)

T0 = 1_700_000_000_000
S = TaskStatus

_ids = itertools.count(1)


def new_id() -> str:
    """Ids unique across the whole test session (join.py caches per task id)."""
    return f"tt-{next(_ids):06d}"


def reevaluates(task_type: str) -> bool:
    return task_types.type_of(task_type).reevaluate


# --------------------------------------------------------------------------------------------
# Harness: a workflow, a minimal applier, and a ScheduleContext over it


class Run:
    """One workflow execution driven by ``decide`` and applied in memory (as the executor does)."""

    def __init__(
        self,
        defn: dict[str, Any],
        *,
        task_defs: tuple[dict[str, Any], ...] = (),
        workflows: tuple[dict[str, Any], ...] = (),
        validate: bool = True,
        correlation_id: str | None = None,
        task_to_domain: dict[str, str] | None = None,
        variables: dict[str, Any] | None = None,
        **inp: Any,
    ) -> None:
        self.meta = Metadata()
        for td in task_defs:
            self.meta.put_task_def(parse_task_def(td, "td"))
        for w in workflows:
            self.meta.put_workflow_def(parse_workflow_def({"schemaVersion": 2, **w}))
        data = {"name": "wf", "version": 1, "schemaVersion": 2, **defn}
        wd = parse_workflow_def(data) if validate else WorkflowDef.parse(data)
        sid, snap, _ = self.meta.snapshot_for(wd, registered=True)
        self.wf = Workflow(new_id(), snap, sid, T0)
        self.wf.input = dict(inp)
        self.wf.correlationId = correlation_id
        self.wf.taskToDomain = task_to_domain
        if variables:
            self.wf.variables = dict(variables)
        self.now = T0
        self.effects: list[tuple[Task, Any]] = []
        self.run_async: list[Task] = []
        self.decisions: list[Decision] = []
        self.removed: list[Task] = []

    # -- deciding and applying -----------------------------------------------------------------

    def decide(self, changed: list[Task] | None = None) -> Decision:
        return decide(self.wf, self.now, new_id=new_id, changed=changed, defs=self.meta)

    def step(self, changed: list[Task] | None = None) -> Decision:
        d = self.decide(changed)
        self.decisions.append(d)
        wf = self.wf
        for t, changes in d.updates:
            for k, v in changes.items():
                setattr(t, k, v)
            t.updateTime = self.now
        if d.remove:
            gone = {t.taskId for t in d.remove}
            wf.tasks = [t for t in wf.tasks if t.taskId not in gone]
            wf.index = None  # the index only follows appends
            self.removed.extend(d.remove)
        for t in d.schedule:
            t.seq = len(wf.tasks) + 1
            wf.tasks.append(t)
        if d.variables:
            wf.variables = {**wf.variables, **d.variables}
        self.effects.extend(d.effects)
        self.run_async.extend(d.run_async)
        if d.complete is not None:
            wf.status = d.complete
            wf.output = d.output or {}
            wf.reasonForIncompletion = d.reason
        return d

    def settle(self, changed: list[Task] | None = None, limit: int = 5000) -> list[Decision]:
        """Decide and apply until nothing changes (the executor's ``_decide_until_settled``)."""
        out: list[Decision] = []
        for _ in range(limit):
            if self.wf.status.terminal:
                return out
            d = self.step(changed)
            out.append(d)
            if not d.changed or d.complete is not None:
                return out
            changed = d.touched()
        raise AssertionError("the decider did not settle")

    def start(self) -> list[Decision]:
        return self.settle(None)

    def finish(
        self,
        ref: str,
        status: TaskStatus = S.COMPLETED,
        output: dict[str, Any] | None = None,
        reason: str | None = None,
    ) -> list[Decision]:
        """A worker (or the API) reports ``ref``'s result; the workflow is decided as the executor does."""
        t = self.task(ref)
        t.status = status
        t.outputData = output if output is not None else {}
        t.reasonForIncompletion = reason
        if status.terminal:
            t.endTime = self.now
        return self.settle([t])

    # -- reading -------------------------------------------------------------------------------

    def task(self, ref: str) -> Task:
        found = [t for t in self.wf.tasks if t.referenceTaskName == ref]
        assert found, f"no task {ref}; have {self.refs()}"
        return found[-1]

    def refs(self) -> list[str]:
        return [t.referenceTaskName for t in self.wf.tasks]

    def statuses(self) -> dict[str, str]:
        return {t.referenceTaskName: t.status.value for t in self.wf.tasks}

    def ctx(self, changed: list[Task] | None = None) -> ScheduleContext:
        c = ScheduleContext(self.wf, self.now, new_id, index_of(self.wf, reevaluates), task_types.type_of, self.meta)
        c.changed = changed
        return c

    def node(self, ref: str) -> WorkflowTask:
        n = self.wf.definition.node(ref)
        assert n is not None
        return n

    @property
    def wake_at(self) -> int | None:
        dues = [d.wake_at for d in self.decisions if d.wake_at is not None]
        return min(dues) if dues else None


def node(**kw: Any) -> WorkflowTask:
    """A definition node (not validated), e.g. ``node(type="SWITCH", evaluatorType=...)``."""
    kw.setdefault("name", kw.get("taskReferenceName") or kw.get("type", "x").lower())
    kw.setdefault("taskReferenceName", kw["name"])
    n: WorkflowTask = WorkflowTask.parse(kw)
    return n


def w(ref: str, name: str | None = None, **kw: Any) -> dict[str, Any]:
    """A SIMPLE (worker) node."""
    return {"name": name or ref, "taskReferenceName": ref, "type": "SIMPLE", **kw}


def sys(ref: str, type_: str, **kw: Any) -> dict[str, Any]:
    return {"name": ref, "taskReferenceName": ref, "type": type_, **kw}


def one(task_type: str, **kw: Any) -> Run:
    """A workflow of a single node of ``task_type`` (ref ``x``), started."""
    inp = kw.pop("inp", {})
    r = Run({"tasks": [sys("x", task_type, **kw)]}, **inp)
    r.start()
    return r


class FakeServices:
    """``Services`` for ``run``/``cancel``: ``in_thread`` runs the function on a thread."""

    http: Any = None

    def __init__(self) -> None:
        self.terminated: list[tuple[str, str]] = []
        self.threads: list[str] = []

    async def in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        import threading

        def call() -> Any:
            self.threads.append(threading.current_thread().name)
            return fn(*args)

        return await asyncio.to_thread(call)

    def terminate_child(self, workflow_id: str, reason: str) -> None:
        self.terminated.append((workflow_id, reason))


# --------------------------------------------------------------------------------------------
# The registry

CONDUCTOR_TYPES = (
    "SIMPLE", "DYNAMIC", "DECISION", "SWITCH", "FORK_JOIN", "FORK_JOIN_DYNAMIC", "JOIN", "EXCLUSIVE_JOIN",
    "DO_WHILE", "SUB_WORKFLOW", "START_WORKFLOW", "WAIT", "HUMAN", "TERMINATE", "SET_VARIABLE", "NOOP",
    "INLINE", "LAMBDA", "JSON_JQ_TRANSFORM", "HTTP", "EVENT",
)


@pytest.mark.parametrize("name", CONDUCTOR_TYPES)
def test_every_conductor_type_is_registered_as_a_task_type(name: str) -> None:
    tt = task_types.REGISTRY[name]
    assert isinstance(tt, TaskType)
    assert tt.TYPE == name
    assert task_types.type_of(name) is tt
    assert name in task_types.supported_types()


def test_registry_kinds_and_flags() -> None:
    kinds = {name: task_types.REGISTRY[name].kind for name in CONDUCTOR_TYPES}
    assert {n for n, k in kinds.items() if k == "worker"} == {"SIMPLE", "DYNAMIC"}
    assert {n for n, k in kinds.items() if k == "async"} == {"HTTP"}
    reeval = {n for n in CONDUCTOR_TYPES if task_types.REGISTRY[n].reevaluate}
    assert reeval == {"JOIN", "EXCLUSIVE_JOIN", "DO_WHILE", "WAIT"}
    built_in = {n for n in CONDUCTOR_TYPES if task_types.REGISTRY[n].built_in}
    assert built_in == {"SWITCH", "DECISION", "FORK_JOIN", "FORK_JOIN_DYNAMIC", "JOIN", "EXCLUSIVE_JOIN", "DO_WHILE"}
    routing = {n: task_types.REGISTRY[n].after_branch for n in CONDUCTOR_TYPES}
    assert routing["FORK_JOIN"] == routing["FORK_JOIN_DYNAMIC"] == "stop"
    assert routing["DO_WHILE"] == "self"
    assert routing["SWITCH"] == routing["DECISION"] == "next"


@pytest.mark.parametrize("name", ["MY_CUSTOM", "USER_DEFINED", "whatever", ""])
def test_unknown_types_are_worker_tasks(name: str) -> None:
    assert task_types.type_of(name) is simple.TASK
    assert task_types.type_of(name).kind == "worker"


def test_unsupported_broker_types_are_not_registered() -> None:
    for name in task_types.UNSUPPORTED:
        assert name not in task_types.REGISTRY


# --------------------------------------------------------------------------------------------
# validate(): one table for every type (empty list = valid)

VALID: list[tuple[str, dict[str, Any]]] = [
    ("SWITCH", {"evaluatorType": "value-param", "expression": "k", "decisionCases": {"a": [w("a1")]}}),
    ("SWITCH", {"evaluatorType": "javascript", "expression": "$.k", "decisionCases": {"a": [w("a1")]}}),
    ("SWITCH", {"evaluatorType": "graaljs", "expression": "$.k", "decisionCases": {"a": [w("a1")]}}),
    ("DECISION", {"caseValueParam": "k", "decisionCases": {"a": [w("a1")]}}),
    ("DECISION", {"caseExpression": "$.k", "decisionCases": {"a": [w("a1")]}}),
    ("FORK_JOIN", {"forkTasks": [[w("a1")], [w("b1")]]}),
    ("FORK_JOIN_DYNAMIC", {"inputParameters": {"forkTaskInputs": []}}),
    ("FORK_JOIN_DYNAMIC", {"dynamicForkTasksParam": "t", "dynamicForkTasksInputParamName": "i"}),
    ("FORK_JOIN_DYNAMIC", {"dynamicForkJoinTasksParam": "legacy"}),
    ("DYNAMIC", {"dynamicTaskNameParam": "tn"}),
    ("DO_WHILE", {"loopCondition": "false", "loopOver": [w("b1")]}),
    ("DO_WHILE", {"items": "${workflow.input.xs}", "loopOver": [w("b1")]}),
    ("DO_WHILE", {"inputParameters": {"_items": [1, 2]}, "loopOver": [w("b1")]}),
    ("DO_WHILE", {"loopCondition": "false", "loopOver": [w("b1")], "inputParameters": {"keepLastN": 2}}),
    ("SUB_WORKFLOW", {"subWorkflowParam": {"name": "child"}}),
    ("SUB_WORKFLOW", {"subWorkflowParam": {"name": "child", "version": "${workflow.input.v}"}}),
    ("SUB_WORKFLOW", {"subWorkflowParam": {"name": "child", "version": "3"}}),
    ("SUB_WORKFLOW", {"subWorkflowParam": {"workflowDefinition": {"name": "inline"}}}),
    ("WAIT", {}),
    ("WAIT", {"inputParameters": {"duration": "1h 30m"}}),
    ("WAIT", {"inputParameters": {"until": "2030-01-01 10:00"}}),
    ("WAIT", {"inputParameters": {"duration": "${workflow.input.d}"}}),
    ("TERMINATE", {"inputParameters": {"terminationStatus": "COMPLETED"}}),
    ("TERMINATE", {"inputParameters": {"terminationStatus": "${workflow.input.s}"}}),
    ("INLINE", {"inputParameters": {"expression": "$.a"}}),
    ("INLINE", {"inputParameters": {"expression": "a", "evaluatorType": "value-param"}}),
    ("LAMBDA", {"inputParameters": {"scriptExpression": "return 1;"}}),
    ("JSON_JQ_TRANSFORM", {"inputParameters": {"queryExpression": "."}}),
    ("HTTP", {"inputParameters": {"http_request": {"uri": "http://example.com", "method": "GET"}}}),
    ("HTTP", {"inputParameters": {"uri": "http://example.com", "method": "POST"}}),
    ("HTTP", {"inputParameters": {"http_request": "${workflow.input.req}"}}),
    ("EVENT", {"sink": "conductor"}),
    ("EVENT", {"sink": "conductor:orders"}),
    ("EVENT", {"sink": "${workflow.input.sink}"}),
    ("SET_VARIABLE", {}),
    ("NOOP", {}),
    ("HUMAN", {}),
    ("JOIN", {"joinOn": ["a"]}),
    ("EXCLUSIVE_JOIN", {"joinOn": ["a"]}),
    ("START_WORKFLOW", {}),
    ("SIMPLE", {}),
]


@pytest.mark.parametrize(("type_", "fields"), VALID, ids=[f"{t}-{i}" for i, (t, _) in enumerate(VALID)])
def test_validate_accepts_good_nodes(type_: str, fields: dict[str, Any]) -> None:
    n = node(name="n", taskReferenceName="n", type=type_, **fields)
    assert task_types.type_of(type_).validate(n) == []


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("SWITCH", {"expression": "k", "decisionCases": {"a": [w("a1")]}},
     "evaluatorType field is required for taskType: SWITCH taskName: n"),
    ("SWITCH", {"evaluatorType": "python", "expression": "k", "decisionCases": {"a": [w("a1")]}},
     "evaluatorType 'python' of taskType: SWITCH taskName: n is not supported"),
    ("SWITCH", {"evaluatorType": "javascript", "decisionCases": {"a": [w("a1")]}},
     "expression field is required for taskType: SWITCH taskName: n"),
    ("SWITCH", {"evaluatorType": "value-param", "expression": "k"},
     "decisionCases should have atleast one task for taskType: SWITCH taskName: n"),
    ("DECISION", {"decisionCases": {"a": [w("a1")]}},
     "caseValueParam or caseExpression field is required for taskType: DECISION taskName: n"),
    ("DECISION", {"caseValueParam": "k"}, "decisionCases should have atleast one task for taskType: DECISION"),
    ("FORK_JOIN", {}, "forkTasks should have atleast one task for taskType: FORK_JOIN taskName: n"),
    ("FORK_JOIN", {"forkTasks": [[], []]}, "forkTasks should have atleast one task"),
    ("FORK_JOIN_DYNAMIC", {}, "dynamicForkTasksParam or inputParameters.forkTaskInputs is required"),
    ("FORK_JOIN_DYNAMIC", {"dynamicForkTasksParam": "t"},
     "dynamicForkTasksInputParamName is required with dynamicForkTasksParam"),
    ("DYNAMIC", {}, "dynamicTaskNameParam field is required for taskType: DYNAMIC taskName: n"),
    ("DO_WHILE", {"loopOver": [w("b1")]}, "loopCondition field is required for taskType: DO_WHILE taskName: n"),
    ("DO_WHILE", {"loopCondition": "true"}, "loopOver field is required for taskType: DO_WHILE taskName: n"),
    ("DO_WHILE", {"loopCondition": "true", "loopOver": [w("b1")], "inputParameters": {"keepLastN": 0}},
     "inputParameters.keepLastN must be a positive integer"),
    ("DO_WHILE", {"loopCondition": "true", "loopOver": [w("b1")], "inputParameters": {"keepLastN": "2"}},
     "inputParameters.keepLastN must be a positive integer"),
    ("DO_WHILE", {"loopCondition": "true", "loopOver": [sys("inner", "DO_WHILE", loopCondition="false",
                                                              loopOver=[w("b2")])]},
     "DO_WHILE task inner cannot be nested directly in DO_WHILE taskName: n"),
    ("SUB_WORKFLOW", {}, "subWorkflowParam field is required for taskType: SUB_WORKFLOW taskName: n"),
    ("SUB_WORKFLOW", {"subWorkflowParam": {"version": 1}}, "subWorkflowParam.name field is required"),
    ("SUB_WORKFLOW", {"subWorkflowParam": {"name": "c", "version": "abc"}},
     "subWorkflowParam.version must be an integer"),
    ("WAIT", {"inputParameters": {"duration": "1s", "until": "2030-01-01"}},
     "Both 'duration' and 'until' specified. Please provide only one input"),
    ("WAIT", {"inputParameters": {"duration": "soon"}}, "inputParameters.duration: Invalid duration format: soon"),
    ("WAIT", {"inputParameters": {"until": "tomorrow"}},
     "inputParameters.until: Invalid/Unsupported Wait Until format.  Provided: tomorrow"),
    ("TERMINATE", {}, "terminationStatus field is required for taskType: TERMINATE"),
    ("TERMINATE", {"inputParameters": {"terminationStatus": "PAUSED"}}, "must be COMPLETED or FAILED"),
    ("TERMINATE", {"inputParameters": {"terminationStatus": "FAILED"}, "optional": True},
     "terminate task cannot be optional, taskName: n"),
    ("INLINE", {}, "inputParameters.expression field is required for taskType: INLINE taskName: n"),
    ("INLINE", {"inputParameters": {"expression": "   "}}, "inputParameters.expression field is required"),
    ("INLINE", {"inputParameters": {"expression": "1", "evaluatorType": "python"}},
     "inputParameters.evaluatorType 'python' of taskType: INLINE taskName: n is not supported"),
    ("LAMBDA", {}, "inputParameters.scriptExpression field is required for taskType: LAMBDA taskName: n"),
    ("JSON_JQ_TRANSFORM", {}, "queryExpression field is required for taskType: JSON_JQ_TRANSFORM taskName: n"),
    ("HTTP", {}, "inputParameters.http_request.uri is required (taskType: HTTP taskName: n)"),
    ("HTTP", {"inputParameters": {"http_request": {"uri": "http://x"}}}, "inputParameters.http_request.method is required"),
    ("HTTP", {"inputParameters": {"http_request": 5}}, "http_request must be a map"),
    ("EVENT", {}, "sink field is required for taskType: EVENT taskName: n"),
    ("EVENT", {"sink": "sqs:q"}, "Event queue type 'sqs' of sink sqs:q is not supported by this server"),
    ("EVENT", {"sink": "conductorx"}, "Invalid / Unsupported sink specified: conductorx"),
]


@pytest.mark.parametrize(
    ("type_", "fields", "message"), INVALID, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(INVALID)]
)
def test_validate_rejects_bad_nodes(type_: str, fields: dict[str, Any], message: str) -> None:
    n = node(name="n", taskReferenceName="n", type=type_, **fields)
    errs = task_types.type_of(type_).validate(n)
    assert errs, f"{type_} {fields} should be rejected"
    assert any(message in e for e in errs), errs


def test_validate_reads_the_task_def_input_template() -> None:
    from conductor_lab.engine.model import TaskDef

    td = TaskDef.parse({"name": "n", "inputTemplate": {"expression": "$.a", "queryExpression": ".",
                                                       "http_request": {"uri": "http://x", "method": "GET"}}})
    for type_ in ("INLINE", "JSON_JQ_TRANSFORM", "HTTP"):
        n = node(name="n", type=type_)
        n.taskDefinition = td
        assert task_types.type_of(type_).validate(n) == [], type_


def test_registration_reports_type_messages_with_the_reference() -> None:
    from conductor_lab.errors import InvalidInput

    with pytest.raises(InvalidInput) as exc:
        parse_workflow_def({"name": "bad", "schemaVersion": 2, "tasks": [sys("d", "DYNAMIC")]})
    messages = [e["message"] for e in exc.value.validation_errors]  # type: ignore[attr-defined]
    assert any("dynamicTaskNameParam field is required" in m and "(taskReferenceName: d)" in m for m in messages)


# --------------------------------------------------------------------------------------------
# SIMPLE / USER_DEFINED / DYNAMIC / HUMAN / NOOP


def test_simple_schedule_copies_worker_settings() -> None:
    r = Run({"tasks": [w("a", "job", inputParameters={"x": "${workflow.input.x}"}, startDelay=7),
                       {"name": "c", "taskReferenceName": "c", "type": "MY_TYPE"}]},
            task_defs=({"name": "job", "responseTimeoutSeconds": 33, "rateLimitPerFrequency": 4,
                        "rateLimitFrequencyInSeconds": 9},), x=5)
    ctx = r.ctx()
    [t] = simple.TASK.schedule(r.node("a"), ctx, 0)
    assert (t.taskType, t.status, t.referenceTaskName, t.inputData) == ("job", S.SCHEDULED, "a", {"x": 5})
    assert t.responseTimeoutSeconds == 33 and t.rateLimitPerFrequency == 4 and t.rateLimitFrequencyInSeconds == 9
    assert t.startDelayInSeconds == 7 and t.callbackAfterSeconds == 7
    assert t.scheduledTime == T0 and t.startTime == 0
    [u] = simple.TASK.schedule(r.node("c"), ctx, 3)
    assert u.taskType == "MY_TYPE" and u.referenceTaskName == "c__3" and u.iteration == 3
    assert simple.TASK.execute(t, ctx) is None


def test_dynamic_resolves_the_task_name_from_its_input() -> None:
    r = Run({"tasks": [sys("d", "DYNAMIC", name="dyn", dynamicTaskNameParam="tn",
                           inputParameters={"tn": "${workflow.input.which}", "v": 1})]}, which="worker_b")
    r.start()
    t = r.task("d")
    assert (t.taskType, t.taskDefName, t.status) == ("worker_b", "worker_b", S.SCHEDULED)
    assert t.inputData == {"tn": "worker_b", "v": 1}
    assert dynamic.TASK.kind == "worker"
    # the TaskDef is the DYNAMIC node's own (ad-hoc: non-SIMPLE -> retryCount 0)
    assert t.node.taskDefinition is not None and t.node.taskDefinition.retryCount == 0
    # iteration suffix
    [u] = dynamic.TASK.schedule(r.node("d"), r.ctx(), 2)
    assert u.referenceTaskName == "d__2" and u.taskType == "worker_b"


def test_dynamic_without_a_name_fails_the_workflow() -> None:
    r = Run({"tasks": [sys("d", "DYNAMIC", dynamicTaskNameParam="tn", inputParameters={"tn": "${workflow.input.nope}"})]})
    with pytest.raises(TerminateWorkflow, match=r"Cannot map a dynamic task based on the parameter and input\. "
                                                r"Parameter= tn, input= \{tn=null\}"):
        dynamic.TASK.schedule(r.node("d"), r.ctx(), 0)
    r.start()
    assert r.wf.status == WorkflowStatus.FAILED and not r.wf.tasks
    assert "Cannot map a dynamic task" in (r.wf.reasonForIncompletion or "")


def test_human_waits_in_progress() -> None:
    r = one("HUMAN", inputParameters={"who": "${workflow.input.who}"}, inp={"who": "ann"})
    t = r.task("x")
    assert (t.taskType, t.status, t.inputData) == ("HUMAN", S.IN_PROGRESS, {"who": "ann"})
    assert human.TASK.execute(t, r.ctx()) is None
    assert r.wf.status == WorkflowStatus.RUNNING
    r.finish("x", S.COMPLETED, {"ok": True})
    assert r.wf.status == WorkflowStatus.COMPLETED and r.wf.output == {"ok": True}


def test_noop_completes_in_the_same_pass() -> None:
    r = Run({"tasks": [sys("x", "NOOP", inputParameters={"a": "${workflow.input.a}"}), w("after")]}, a=1)
    [first, *_] = r.start()
    t = r.task("x")
    assert t.taskType == "NOOP" and t.status == S.COMPLETED and t.inputData == {"a": 1} and t.outputData == {}
    assert [x.status for x in first.schedule] == [S.COMPLETED]  # completed while being scheduled
    assert r.refs() == ["x", "after"]
    [raw] = noop.TASK.schedule(r.node("x"), r.ctx(), 0)
    assert raw.status == S.IN_PROGRESS
    outcome = noop.TASK.execute(raw, r.ctx())
    assert outcome is not None and outcome.status == S.COMPLETED and outcome.output is None


# --------------------------------------------------------------------------------------------
# SET_VARIABLE


def test_set_variable_puts_keys_shallowly() -> None:
    r = Run({"tasks": [sys("sv", "SET_VARIABLE", inputParameters={"a": {"n": 1}, "b": "${workflow.input.b}"}),
                       sys("use", "NOOP", inputParameters={"seen": "${workflow.variables.a.n}"})]},
            variables={"a": {"old": True, "n": 0}, "keep": 1}, b=2)
    r.start()
    assert r.wf.variables == {"a": {"n": 1}, "b": 2, "keep": 1}  # shallow put, no deletion
    assert r.task("sv").status == S.COMPLETED and r.task("sv").outputData == {}
    assert r.task("use").inputData == {"seen": 1}
    assert r.wf.status == WorkflowStatus.COMPLETED


def test_set_variable_size_limit() -> None:
    limit = set_variable.MAX_VARIABLES_BYTES
    r = Run({"tasks": [sys("sv", "SET_VARIABLE", inputParameters={"big": "${workflow.input.big}"})]},
            variables={"prior": "p" * (limit // 2)}, big="b" * (limit // 2))
    r.start()
    t = r.task("sv")
    assert t.status == S.FAILED_WITH_TERMINAL_ERROR
    assert t.reasonForIncompletion is not None
    assert t.reasonForIncompletion.startswith("The variables payload size: ")
    assert f"of workflow: {r.wf.workflowId} is greater than the permissible limit: {limit} bytes" in t.reasonForIncompletion
    assert set(r.wf.variables) == {"prior"}  # nothing written
    assert r.wf.status == WorkflowStatus.FAILED
    ok = Run({"tasks": [sys("sv", "SET_VARIABLE", inputParameters={"big": "${workflow.input.big}"})]},
             big="b" * (limit - 100))
    ok.start()
    assert ok.task("sv").status == S.COMPLETED


# --------------------------------------------------------------------------------------------
# SWITCH and DECISION

SWITCH_WF = {
    "tasks": [
        {
            "name": "sw", "taskReferenceName": "sw", "type": "SWITCH", "evaluatorType": "value-param",
            "expression": "kind", "inputParameters": {"kind": "${workflow.input.kind}"},
            "decisionCases": {"a": [sys("a1", "NOOP"), w("a2")], "empty": [], "true": [w("t1")]},
            "defaultCase": [w("d1")],
        },
        w("after"),
    ]
}


def test_switch_schedules_the_chosen_branch_and_records_the_case() -> None:
    r = Run(SWITCH_WF, kind="a")
    r.start()
    sw = r.task("sw")
    assert sw.taskType == "SWITCH" and sw.status == S.COMPLETED
    assert sw.inputData == {"kind": "a", "case": "a", "hasChildren": "true"}
    assert sw.outputData == {"evaluationResult": ["a"], "selectedCase": "a"}
    assert r.refs() == ["sw", "a1", "a2"]
    assert not switch.SWITCH.proceeds(sw)  # the flow goes on after the branch's last task
    r.finish("a2")
    assert r.refs() == ["sw", "a1", "a2", "after"]
    r.finish("after")
    assert r.wf.status == WorkflowStatus.COMPLETED


@pytest.mark.parametrize(
    ("kind", "expected_refs", "case"),
    [
        ("zzz", ["sw", "d1"], "zzz"),  # absent key -> defaultCase
        (None, ["sw", "d1"], "null"),  # null -> "null" -> default
        ("empty", ["sw", "after"], "empty"),  # explicitly empty case: runs nothing (unlike DECISION)
        (True, ["sw", "t1"], "true"),  # Java toString of a boolean
    ],
)
def test_switch_branch_choice(kind: Any, expected_refs: list[str], case: str) -> None:
    r = Run(SWITCH_WF, kind=kind)
    r.start()
    assert r.refs() == expected_refs
    sw = r.task("sw")
    assert sw.inputData["case"] == case and sw.outputData["selectedCase"] == case
    assert ("hasChildren" in sw.inputData) == (expected_refs[1] != "after")
    assert switch.SWITCH.proceeds(sw) == (expected_refs[1] == "after")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, "1"), (1.5, "1.5"), (2.0, "2.0"), (None, "null"), (False, "false"), ("x", "x"), ([1, "a"], "[1, a]"),
     ({"a": 1}, "{a=1}")],
)
def test_switch_value_param_case_is_java_stringified(value: Any, expected: str) -> None:
    n = node(type="SWITCH", evaluatorType="value-param", expression="k", decisionCases={"a": [w("a1")]})
    assert switch.SWITCH.case_of(n, {"k": value}) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("$.n > 5 ? 'big' : 'small'", "big"),
        ("$.n * 1.0", "7"),  # an integral JS number is an Integer in Java: "7", not "7.0"
        ("$.n / 2", "3.5"),
        ("$.n > 5", "true"),
        ("null", "null"),
        ("undefined", "null"),
        ("[1, 2]", "[1, 2]"),
        ("if ($.n > 100) { 'huge'; } else { 'normal'; }", "normal"),
    ],
)
def test_switch_javascript_case_is_java_stringified(expression: str, expected: str) -> None:
    for evaluator in ("javascript", "graaljs"):
        n = node(type="SWITCH", evaluatorType=evaluator, expression=expression, decisionCases={"a": [w("a1")]})
        assert switch.SWITCH.case_of(n, {"n": 7}) == expected


def test_switch_script_error_fails_the_switch_and_the_workflow() -> None:
    defn = {"tasks": [{"name": "sw", "taskReferenceName": "sw", "type": "SWITCH", "evaluatorType": "javascript",
                       "expression": "$.a.b.c", "decisionCases": {"a": [w("a1")]}}, w("after")]}
    r = Run(defn)
    r.start()
    sw = r.task("sw")
    assert sw.status == S.FAILED and "TypeError" in (sw.reasonForIncompletion or "")
    assert r.refs() == ["sw"]  # never retried (built-in)
    assert r.wf.status == WorkflowStatus.FAILED


def test_switch_unknown_evaluator_at_run_time_terminates() -> None:
    defn = {"tasks": [{"name": "sw", "taskReferenceName": "sw", "type": "SWITCH", "evaluatorType": "python",
                       "expression": "k", "decisionCases": {"a": [w("a1")]}}]}
    r = Run(defn, validate=False)
    with pytest.raises(TerminateWorkflow, match="No evaluator registered for type: python"):
        switch.SWITCH.schedule(r.node("sw"), r.ctx(), 0)
    r.start()
    assert r.wf.status == WorkflowStatus.FAILED
    assert r.wf.reasonForIncompletion == "No evaluator registered for type: python"


def test_switch_in_an_iteration_suffixes_itself_and_its_branch() -> None:
    r = Run(SWITCH_WF, kind="a")
    tasks = switch.SWITCH.schedule(r.node("sw"), r.ctx(), 2)
    assert [t.referenceTaskName for t in tasks] == ["sw__2", "a1__2"]
    assert [t.iteration for t in tasks] == [2, 2]
    assert tasks[1].status == S.COMPLETED  # the NOOP advanced while being scheduled
    outcome = switch.SWITCH.execute(tasks[0], r.ctx())
    assert outcome is not None and outcome.status == S.COMPLETED


DECISION_WF = {
    "tasks": [
        {
            "name": "dec", "taskReferenceName": "dec", "type": "DECISION", "caseValueParam": "kind",
            "inputParameters": {"kind": "${workflow.input.kind}"},
            "decisionCases": {"a": [w("a1")], "empty": []},
            "defaultCase": [w("d1")],
        },
        w("after"),
    ]
}


@pytest.mark.parametrize(
    ("kind", "expected_refs"),
    [("a", ["dec", "a1"]), ("zzz", ["dec", "d1"]), ("empty", ["dec", "d1"]), (None, ["dec", "d1"])],
)
def test_decision_value_param_and_empty_case_falls_back_to_default(kind: Any, expected_refs: list[str]) -> None:
    r = Run(DECISION_WF, kind=kind)
    r.start()
    assert r.refs() == expected_refs
    dec = r.task("dec")
    case = "null" if kind is None else kind
    assert dec.taskType == "DECISION" and dec.status == S.COMPLETED
    assert dec.outputData == {"caseOutput": [case]}
    assert dec.inputData["case"] == case and dec.inputData["hasChildren"] == "true"
    r.finish(expected_refs[1])
    assert r.refs()[-1] == "after"


def test_decision_case_expression() -> None:
    defn = {"tasks": [{"name": "dec", "taskReferenceName": "dec", "type": "DECISION",
                       "caseExpression": "$.n > 5 ? 'big' : 'small'", "caseValueParam": "ignored",
                       "inputParameters": {"n": "${workflow.input.n}"},
                       "decisionCases": {"big": [w("b1")], "small": [w("s1")]}}]}
    big = Run(defn, n=9)
    big.start()
    assert big.refs() == ["dec", "b1"] and big.task("dec").outputData == {"caseOutput": ["big"]}
    small = Run(defn, n=1)
    small.start()
    assert small.refs() == ["dec", "s1"]


def test_decision_script_error_fails_the_workflow() -> None:
    defn = {"tasks": [{"name": "dec", "taskReferenceName": "dec", "type": "DECISION", "caseExpression": "$.a.b.c",
                       "decisionCases": {"a": [w("a1")]}}]}
    r = Run(defn)
    with pytest.raises(TerminateWorkflow, match=r"^Error while evaluating script: \$\.a\.b\.c: TypeError"):
        switch.DECISION.schedule(r.node("dec"), r.ctx(), 0)
    r.start()
    assert r.wf.status == WorkflowStatus.FAILED and not r.wf.tasks
    assert (r.wf.reasonForIncompletion or "").startswith("Error while evaluating script: $.a.b.c: TypeError")


# --------------------------------------------------------------------------------------------
# FORK_JOIN and JOIN

FORK_WF = {
    "tasks": [
        {"name": "fork", "taskReferenceName": "fork", "type": "FORK_JOIN",
         "inputParameters": {"v": "${workflow.input.v}"},
         "forkTasks": [[w("a")], [w("b1"), w("b2")], [sys("c", "NOOP")]]},
        {"name": "join", "taskReferenceName": "join", "type": "JOIN", "joinOn": ["a", "b2", "c"]},
        w("after"),
    ]
}


def test_fork_schedules_every_lane_and_the_join_at_once() -> None:
    r = Run(FORK_WF, v=3)
    r.start()
    assert r.refs() == ["fork", "a", "b1", "c", "join"]
    fork = r.task("fork")
    assert (fork.taskType, fork.status, fork.inputData) == ("FORK", S.COMPLETED, {"v": 3})
    assert fork.startTime == fork.endTime == T0
    assert not fork_join.TASK.proceeds(fork)
    j = r.task("join")
    assert (j.taskType, j.status, j.inputData) == ("JOIN", S.IN_PROGRESS, {"joinOn": ["a", "b2", "c"]})
    assert r.statuses()["c"] == "COMPLETED"
    r.finish("a", output={"x": 1})
    assert r.task("join").status == S.IN_PROGRESS
    r.finish("b1", output={})
    assert r.refs()[-1] == "b2"
    r.finish("b2", output={"y": 2})
    j = r.task("join")
    assert j.status == S.COMPLETED
    assert j.outputData == {"a": {"x": 1}, "b2": {"y": 2}}  # empty outputs are left out
    assert r.refs()[-1] == "after"
    r.finish("after", output={"z": 1})
    assert r.wf.status == WorkflowStatus.COMPLETED


def test_fork_without_a_following_join_fails_the_workflow() -> None:
    defn = {"tasks": [{"name": "fork", "taskReferenceName": "fork", "type": "FORK_JOIN",
                       "forkTasks": [[w("a")]]}, w("after")]}
    r = Run(defn)
    r.start()
    assert r.wf.status == WorkflowStatus.FAILED
    assert r.wf.reasonForIncompletion == "Fork task definition is not followed by a join task.  Check the blueprint"


def test_fork_in_an_iteration_suffixes_lanes_and_join() -> None:
    r = Run(FORK_WF, v=1)
    tasks = fork_join.TASK.schedule(r.node("fork"), r.ctx(), 4)
    assert [t.referenceTaskName for t in tasks] == ["fork__4", "a__4", "b1__4", "c__4", "join__4"]
    j = tasks[-1]
    assert join.join_refs(j) == ["a__4", "b2__4", "c__4"]
    other = tasks[1]
    assert join.TASK.watches(j, other)
    assert not join.TASK.watches(j, tasks[2])  # b1 is not joined on


def _fork(optional: tuple[str, ...] = (), permissive: tuple[str, ...] = ()) -> Run:
    def lane(ref: str) -> list[dict[str, Any]]:
        return [w(ref, optional=ref in optional, permissive=ref in permissive)]

    r = Run({"tasks": [
        {"name": "fork", "taskReferenceName": "fork", "type": "FORK_JOIN", "forkTasks": [lane("a"), lane("b"), lane("c")]},
        {"name": "join", "taskReferenceName": "join", "type": "JOIN", "joinOn": ["a", "b", "c"]},
    ]})
    r.start()
    return r


def _set(r: Run, ref: str, status: TaskStatus, output: dict[str, Any] | None = None, reason: str | None = None) -> None:
    t = r.task(ref)
    t.status, t.outputData, t.reasonForIncompletion = status, output or {}, reason


def _join_outcome(r: Run) -> Outcome | None:
    return join.TASK.execute(r.task("join"), r.ctx(None))


def test_join_waits_until_every_joined_task_is_terminal() -> None:
    r = _fork()
    _set(r, "a", S.COMPLETED, {"x": 1})
    assert _join_outcome(r) is None
    _set(r, "b", S.COMPLETED_WITH_ERRORS)  # successful
    _set(r, "c", S.SKIPPED)
    out = _join_outcome(r)
    assert out is not None and out.status == S.COMPLETED and out.output == {"a": {"x": 1}} and out.reason is None


def test_join_fails_at_once_on_a_failed_task() -> None:
    r = _fork()
    _set(r, "a", S.FAILED, {"e": 1}, "boom")
    _set(r, "b", S.TIMED_OUT, None, "slow")
    out = _join_outcome(r)  # c still running: a hard failure does not wait
    assert out is not None and out.status == S.FAILED
    assert out.reason == "boom slow" and out.output == {"a": {"e": 1}}


def test_join_canceled_when_only_cancellations() -> None:
    r = _fork()
    _set(r, "a", S.CANCELED, None, "child terminated")
    _set(r, "b", S.COMPLETED)
    out = _join_outcome(r)
    assert out is not None and out.status == S.CANCELED and out.reason == "child terminated"
    _set(r, "b", S.FAILED, None, "real")
    out = _join_outcome(r)
    assert out is not None and out.status == S.FAILED and out.reason == "child terminated real"


def test_join_optional_failures_complete_with_errors() -> None:
    r = _fork(optional=("a", "b"))
    _set(r, "a", S.COMPLETED_WITH_ERRORS)
    _set(r, "b", S.FAILED, None, "ignored")  # optional: never fails the join
    assert _join_outcome(r) is None  # c is running
    _set(r, "c", S.COMPLETED, {"ok": 1})
    out = _join_outcome(r)
    a = r.task("a")
    assert out is not None and out.status == S.COMPLETED_WITH_ERRORS
    assert out.reason == f"{a.taskDefName}/{a.taskId} completed with errors"
    assert out.output == {"c": {"ok": 1}}


def test_join_permissive_failure_waits_for_all() -> None:
    r = _fork(permissive=("a",))
    _set(r, "a", S.FAILED, None, "soft")
    assert _join_outcome(r) is None
    _set(r, "b", S.COMPLETED)
    _set(r, "c", S.COMPLETED)
    out = _join_outcome(r)
    assert out is not None and out.status == S.FAILED and out.reason == "soft"


def test_join_optional_failure_through_the_decider() -> None:
    r = _fork(optional=("b",))
    r.finish("a", output={"x": 1})
    r.finish("b", S.FAILED, reason="meh")  # ad-hoc SIMPLE def retries 3 times: exhaust them
    for _ in range(3):
        r.finish("b", S.FAILED, reason="meh")
    assert r.task("b").status == S.COMPLETED_WITH_ERRORS
    r.finish("c", output={"y": 2})
    j = r.task("join")
    assert j.status == S.COMPLETED_WITH_ERRORS and (j.reasonForIncompletion or "").endswith("completed with errors")
    assert r.wf.status == WorkflowStatus.COMPLETED


def test_join_canceled_task_terminates_the_workflow_through_the_decider() -> None:
    r = _fork(permissive=("a",))
    r.finish("a", S.CANCELED, reason="child terminated")  # permissive: the join decides
    assert r.wf.status == WorkflowStatus.RUNNING
    r.finish("b")
    r.finish("c")
    assert r.task("join").status == S.CANCELED
    assert r.wf.status == WorkflowStatus.TERMINATED


class LookupCounter:
    """Counts ``ScheduleContext.task`` lookups (installed with monkeypatch)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = ScheduleContext.task

        def counted(ctx: ScheduleContext, ref: str) -> Task | None:
            self.calls += 1
            return original(ctx, ref)

        monkeypatch.setattr(ScheduleContext, "task", counted)

    def take(self) -> int:
        n, self.calls = self.calls, 0
        return n


def _wide(n: int, items: list[Any] | None = None, retries: int = 3) -> Run:
    r = Run({"tasks": [
        {"name": "dyn", "taskReferenceName": "dyn", "type": "FORK_JOIN_DYNAMIC",
         "inputParameters": {"forkTaskName": "wide", "forkTaskInputs": "${workflow.input.items}"}},
        {"name": "join", "taskReferenceName": "join", "type": "JOIN"},
    ]}, task_defs=({"name": "wide", "retryCount": retries},), items=items if items is not None else list(range(n)))
    r.start()
    return r


@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_wide_join_cursor_keeps_each_update_cheap(monkeypatch: pytest.MonkeyPatch, order: str) -> None:
    n = 200
    r = _wide(n)
    refs = [f"_wide_{i}" for i in range(n)]
    assert r.refs() == ["dyn", *refs, "join"]
    assert join.join_refs(r.task("join")) == refs
    counter = LookupCounter(monkeypatch)
    per_update: list[int] = []
    sequence = refs if order == "forward" else refs[::-1]
    for i, ref in enumerate(sequence):
        r.finish(ref, output={"i": i})
        per_update.append(counter.take())
        if i < n - 1:
            assert r.task("join").status == S.IN_PROGRESS
    j = r.task("join")
    assert j.status == S.COMPLETED
    assert j.outputData == {ref: {"i": sequence.index(ref)} for ref in refs}
    assert list(j.outputData) == refs  # joinOn order
    assert r.wf.status == WorkflowStatus.COMPLETED
    # every update but the last looks at a handful of joined tasks, not at all of them
    assert max(per_update[:-1]) <= 4, per_update
    # the last one gathers the outputs once (a pass over joinOn), not once per update
    assert per_update[-1] <= 3 * n, per_update[-1]
    assert sum(per_update) <= 10 * n


def test_join_refs_are_built_once_per_join_on_list() -> None:
    r = _wide(50)
    j = r.task("join")
    refs = join.join_refs(j)
    assert refs == [f"_wide_{i}" for i in range(50)]
    assert join.join_refs(j) is refs  # one update of a wide fork does not rebuild them
    j.inputData = {**j.inputData, "joinOn": ["_wide_1"]}  # a replaced joinOn is read again
    assert join.join_refs(j) == ["_wide_1"]
    assert join.TASK.watches(j, r.task("_wide_1")) and not join.TASK.watches(j, r.task("_wide_2"))


class CountingDict(dict[str, Task]):
    """``WorkflowIndex.open`` that counts the entries its ``items()`` hands out."""

    seen = 0

    def items(self) -> Any:
        for kv in super().items():
            CountingDict.seen += 1
            yield kv


def test_completion_check_does_not_scan_every_open_task() -> None:
    r = _wide(200)
    idx = r.wf.index
    assert idx is not None  # kept on wide workflows
    idx.open = CountingDict(idx.open)
    CountingDict.seen = 0
    r.finish("_wide_7")
    per_pass = CountingDict.seen / max(1, len(r.decisions[-2:]))
    assert r.task("join").status == S.IN_PROGRESS
    assert per_pass <= 10, f"{CountingDict.seen} open entries looked at for one update of a 200-wide fork"


def test_wide_join_failure_seen_by_the_cursor() -> None:
    items: list[Any] = [{"permissive": True} if i == 5 else {"k": i} for i in range(40)]  # elements are node fields
    r = _wide(40, items, retries=0)
    assert r.task("_wide_5").node.permissive and not r.task("_wide_4").node.permissive
    r.finish("_wide_0", output={"i": 0})
    r.finish("_wide_5", S.FAILED, reason="x")
    assert r.task("join").status == S.IN_PROGRESS  # permissive: the join waits for all
    for i in range(1, 40):
        if i != 5:
            r.finish(f"_wide_{i}", output={"i": i})
    j = r.task("join")
    assert j.status == S.FAILED and j.reasonForIncompletion == "x"
    assert list(j.outputData) == [f"_wide_{i}" for i in range(5)]  # as upstream: gathered up to the failure
    assert r.wf.status == WorkflowStatus.FAILED


def test_wide_join_hard_failure_ends_the_workflow_at_once() -> None:
    r = _wide(40, retries=0)
    r.finish("_wide_3", S.FAILED, reason="hard")
    assert r.wf.status == WorkflowStatus.FAILED
    assert r.wf.reasonForIncompletion == f"Task {r.task('_wide_3').taskId} failed with status: FAILED and reason: 'hard'"


# --------------------------------------------------------------------------------------------
# EXCLUSIVE_JOIN


def _xjoin(join_on: list[str], defaults: list[str] | None = None) -> tuple[Run, Task]:
    fields: dict[str, Any] = {"joinOn": join_on}
    if defaults is not None:
        fields["defaultExclusiveJoinTask"] = defaults
    r = Run({"tasks": [
        {"name": "fork", "taskReferenceName": "fork", "type": "FORK_JOIN",
         "forkTasks": [[w("a")], [w("b")], [w("d")]]},
        {"name": "j", "taskReferenceName": "j", "type": "JOIN", "joinOn": ["a", "b", "d"]},
        sys("xj", "EXCLUSIVE_JOIN", **fields),
    ]})
    r.start()
    [xj] = exclusive_join.TASK.schedule(r.node("xj"), r.ctx(), 0)
    return r, xj


def test_exclusive_join_schedule_and_watch() -> None:
    r, xj = _xjoin(["a", "b"], ["d"])
    assert (xj.taskType, xj.status) == ("EXCLUSIVE_JOIN", S.IN_PROGRESS)
    assert xj.inputData == {"joinOn": ["a", "b"], "defaultExclusiveJoinTask": ["d"]}
    assert exclusive_join.TASK.watches(xj, r.task("a")) and exclusive_join.TASK.watches(xj, r.task("d"))
    assert not exclusive_join.TASK.watches(xj, r.task("fork"))


def test_exclusive_join_takes_the_first_task_that_ran() -> None:
    r, xj = _xjoin(["a", "b"])
    _set(r, "a", S.SKIPPED)
    _set(r, "b", S.COMPLETED, {"from": "b"})
    out = exclusive_join.TASK.execute(xj, r.ctx())
    assert out is not None and out.status == S.COMPLETED and out.output == {"from": "b"}
    _set(r, "a", S.COMPLETED, {"from": "a"})
    out = exclusive_join.TASK.execute(xj, r.ctx())
    assert out is not None and out.output == {"from": "a"}


def test_exclusive_join_failure() -> None:
    r, xj = _xjoin(["a", "b"])
    _set(r, "a", S.FAILED, reason="bad")
    out = exclusive_join.TASK.execute(xj, r.ctx())
    assert out is not None and out.status == S.FAILED and out.reason == "bad"
    _set(r, "b", S.FAILED, reason="worse")
    out = exclusive_join.TASK.execute(xj, r.ctx())
    assert out is not None and out.reason == "bad worse"  # upstream: reasons of every unsuccessful joined task


def test_exclusive_join_waits_for_a_running_joined_task() -> None:
    # conductor-oss ExclusiveJoin: the found task is not terminal and no default task is terminal
    # -> execute() returns false: the join stays IN_PROGRESS
    r, xj = _xjoin(["a", "b"])
    _set(r, "a", S.IN_PROGRESS)
    assert exclusive_join.TASK.execute(xj, r.ctx()) is None
    r2, xj2 = _xjoin(["a"], ["d"])
    _set(r2, "a", S.IN_PROGRESS)
    assert exclusive_join.TASK.execute(xj2, r2.ctx()) is None  # default d still SCHEDULED


def test_exclusive_join_default_tasks() -> None:
    r, xj = _xjoin(["nope"], ["b", "d"])
    _set(r, "b", S.SKIPPED)
    assert exclusive_join.TASK.execute(xj, r.ctx()) is None  # d not terminal yet
    _set(r, "d", S.COMPLETED, {"from": "d"})
    out = exclusive_join.TASK.execute(xj, r.ctx())
    assert out is not None and out.status == S.COMPLETED and out.output == {"from": "d"}
    _set(r, "d", S.FAILED, reason="dfail")
    out = exclusive_join.TASK.execute(xj, r.ctx())
    assert out is not None and out.status == S.FAILED and out.reason == "dfail "


def test_exclusive_join_after_a_switch_end_to_end() -> None:
    defn = {"tasks": [
        {"name": "sw", "taskReferenceName": "sw", "type": "SWITCH", "evaluatorType": "value-param",
         "expression": "k", "inputParameters": {"k": "${workflow.input.k}"},
         "decisionCases": {"a": [w("a")], "b": [w("b")]}},
        sys("xj", "EXCLUSIVE_JOIN", joinOn=["a", "b"]),
    ]}
    r = Run(defn, k="b")
    r.start()
    assert r.refs() == ["sw", "b"]
    r.finish("b", output={"v": 2})
    xj = r.task("xj")
    assert xj.status == S.COMPLETED and xj.outputData == {"v": 2}
    assert r.wf.status == WorkflowStatus.COMPLETED and r.wf.output == {"v": 2}


# --------------------------------------------------------------------------------------------
# FORK_JOIN_DYNAMIC: three forms


def _dyn_wf(fork: dict[str, Any], *, after: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"tasks": [
        {"name": "dyn", "taskReferenceName": "dyn", "type": "FORK_JOIN_DYNAMIC", **fork},
        {"name": "join", "taskReferenceName": "join", "type": "JOIN", "inputParameters": {"extra": "x"}},
        *(after or []),
    ]}


def test_dynamic_fork_simple_form() -> None:
    r = Run(_dyn_wf({"inputParameters": {"forkTaskName": "work", "forkTaskInputs": "${workflow.input.items}"}}),
            items=[{"a": 1}, 5])
    r.start()
    assert r.refs() == ["dyn", "_work_0", "_work_1", "join"]
    fork = r.task("dyn")
    assert (fork.taskType, fork.status) == ("FORK", S.COMPLETED)
    assert fork.inputData["forkedTasks"] == ["_work_0", "_work_1"]
    assert [d["taskReferenceName"] for d in fork.inputData["forkedTaskDefs"]] == ["_work_0", "_work_1"]
    assert fork.inputData["forkTaskName"] == "work"
    b0, b1 = r.task("_work_0"), r.task("_work_1")
    assert (b0.taskType, b0.status, b0.inputData) == ("work", S.SCHEDULED, {"a": 1, "__index": 0})
    assert b1.inputData == {"input": 5, "__index": 1}
    assert b0.node.runtime and b0.node.taskDefinition is not None  # persisted with its task
    j = r.task("join")
    assert j.inputData == {"extra": "x", "joinOn": ["_work_0", "_work_1"]}  # other join inputs copied
    assert not fork_join_dynamic.TASK.proceeds(fork)
    r.finish("_work_0", output={"r": 0})
    r.finish("_work_1", output={"r": 1})
    assert r.task("join").outputData == {"_work_0": {"r": 0}, "_work_1": {"r": 1}}
    assert r.wf.status == WorkflowStatus.COMPLETED


def test_dynamic_fork_simple_form_system_type_and_defaults() -> None:
    r = Run(_dyn_wf({"inputParameters": {"forkTaskType": "INLINE", "forkTaskInputs": [
        {"expression": "$.n * 2", "n": 1}, {"expression": "$.n * 2", "n": 2}]}}))
    r.start()
    # the name defaults to the system type; sync branches complete at once, then the join
    assert r.refs() == ["dyn", "_INLINE_0", "_INLINE_1", "join"]
    assert [r.task(f"_INLINE_{i}").outputData for i in range(2)] == [{"result": 2}, {"result": 4}]
    assert r.task("join").status == S.COMPLETED and r.wf.status == WorkflowStatus.COMPLETED
    unnamed = Run(_dyn_wf({"inputParameters": {"forkTaskInputs": [1]}}))
    unnamed.start()
    assert unnamed.refs() == ["dyn", "_dyn_0", "join"]  # the node's own ref when no name
    assert unnamed.task("_dyn_0").taskType == "dyn"


def test_dynamic_fork_simple_form_sub_workflows_and_optional() -> None:
    r = Run(_dyn_wf({"optional": True, "inputParameters": {
        "forkTaskWorkflow": "child", "forkTaskWorkflowVersion": "2", "forkTaskInputs": [{"p": 1}]}}),
        workflows=({"name": "child", "version": 1, "tasks": [w("c")]}, {"name": "child", "version": 2, "tasks": [w("c")]}))
    r.start()
    assert r.refs() == ["dyn", "_dyn_0", "join"]  # the ref uses forkTaskName (default: the node's ref)
    sub = r.task("_dyn_0")
    assert sub.taskType == "SUB_WORKFLOW" and sub.node.optional
    assert sub.inputData["subWorkflowName"] == "child" and sub.inputData["subWorkflowVersion"] == 2
    assert sub.inputData["workflowInput"] == {"p": 1, "__index": 0}
    assert [type(e) for _, e in r.effects] == [StartWorkflow]


def test_dynamic_fork_second_fork_prefixes_the_parent_ref() -> None:
    defn = {"tasks": [
        {"name": "d1", "taskReferenceName": "d1", "type": "FORK_JOIN_DYNAMIC",
         "inputParameters": {"forkTaskName": "t", "forkTaskInputs": [1]}},
        {"name": "j1", "taskReferenceName": "j1", "type": "JOIN"},
        {"name": "d2", "taskReferenceName": "d2", "type": "FORK_JOIN_DYNAMIC",
         "inputParameters": {"forkTaskName": "t", "forkTaskInputs": [1]}},
        {"name": "j2", "taskReferenceName": "j2", "type": "JOIN"},
    ]}
    r = Run(defn)
    r.start()
    r.finish("_t_0")
    assert r.refs() == ["d1", "_t_0", "j1", "d2", "_d2_t_0", "j2"]


def test_dynamic_fork_tasks_param_form_evaluates_branch_inputs() -> None:
    r = Run(_dyn_wf({"dynamicForkTasksParam": "tasks", "dynamicForkTasksInputParamName": "inputs",
                     "inputParameters": {"tasks": "${workflow.input.tasks}", "inputs": "${workflow.input.inputs}"}}),
            tasks=[{"name": "x", "taskReferenceName": "x1"}, {"name": "y", "taskReferenceName": "y1", "type": "NOOP"}],
            inputs={"x1": {"k": "${workflow.input.v}", "lit": 1}, "y1": {"n": 2}}, v="evaluated")
    r.start()
    assert r.refs() == ["dyn", "x1", "y1", "join"]
    x1, y1 = r.task("x1"), r.task("y1")
    assert (x1.taskType, x1.inputData) == ("x", {"k": "evaluated", "lit": 1})
    assert (y1.taskType, y1.status, y1.inputData) == ("NOOP", S.COMPLETED, {"n": 2})
    assert r.task("join").inputData["joinOn"] == ["x1", "y1"]


def test_dynamic_fork_legacy_form() -> None:
    r = Run(_dyn_wf({"dynamicForkJoinTasksParam": "dt", "inputParameters": {"dt": "${workflow.input.dt}"}}),
            workflows=({"name": "child", "version": 1, "tasks": [w("c")]},),
            dt={"dynamicTasks": [{"taskName": "x", "referenceName": "x1", "input": {"q": 1}},
                                 {"taskName": "c", "workflowName": "child", "referenceName": "c1"}]})
    r.start()
    assert r.refs() == ["dyn", "x1", "c1", "join"]
    assert r.task("x1").taskType == "x" and r.task("x1").inputData == {"q": 1}
    assert r.task("c1").taskType == "SUB_WORKFLOW" and r.task("c1").inputData["subWorkflowName"] == "child"


@pytest.mark.parametrize(
    ("fork", "inp", "message"),
    [
        ({"dynamicForkTasksParam": "tasks", "dynamicForkTasksInputParamName": "inputs",
          "inputParameters": {"tasks": "${workflow.input.tasks}", "inputs": {}}},
         {"tasks": "notalist"}, "Input 'tasks' is invalid. Cannot deserialize a list of Workflow Tasks from 'notalist'"),
        ({"dynamicForkTasksParam": "tasks", "dynamicForkTasksInputParamName": "inputs",
          "inputParameters": {"tasks": "${workflow.input.tasks}", "inputs": {}}},
         {"tasks": [{"name": "x"}]}, "Input 'tasks' is invalid. Cannot deserialize a list of Workflow Tasks"),
        ({"dynamicForkTasksParam": "tasks", "dynamicForkTasksInputParamName": "inputs",
          "inputParameters": {"tasks": [{"name": "x", "taskReferenceName": "x1"}], "inputs": "${workflow.input.i}"}},
         {"i": [1, 2]},
         "Input to the dynamically forked tasks is not a map -> expecting a map of K,V  but found [1, 2]"),
        ({"dynamicForkJoinTasksParam": "dt", "inputParameters": {"dt": "${workflow.input.dt}"}},
         {"dt": {"nope": 1}}, "Input 'dt' is invalid"),
        ({"dynamicForkTasksParam": "tasks", "dynamicForkTasksInputParamName": "inputs",
          "inputParameters": {"tasks": [{"name": "x", "taskReferenceName": "dup"},
                                        {"name": "y", "taskReferenceName": "dup"}], "inputs": {}}},
         {}, "attempted to create a duplicate task reference name: dup"),
    ],
)
def test_dynamic_fork_invalid_inputs_fail_the_workflow(fork: dict[str, Any], inp: dict[str, Any], message: str) -> None:
    r = Run(_dyn_wf(fork), **inp)
    with pytest.raises(TerminateWorkflow) as exc:
        fork_join_dynamic.TASK.schedule(r.node("dyn"), r.ctx(), 0)
    assert message in str(exc.value)
    r.start()
    assert r.wf.status == WorkflowStatus.FAILED and message in (r.wf.reasonForIncompletion or "")
    assert r.wf.tasks == []


def test_dynamic_fork_ref_clashing_with_an_existing_task_fails() -> None:
    defn = {"tasks": [w("a"), *_dyn_wf({"dynamicForkTasksParam": "tasks", "dynamicForkTasksInputParamName": "inputs",
                                        "inputParameters": {"tasks": [{"name": "x", "taskReferenceName": "a"}],
                                                            "inputs": {}}})["tasks"]]}
    r = Run(defn)
    r.start()
    r.finish("a")
    assert r.wf.status == WorkflowStatus.FAILED
    assert (r.wf.reasonForIncompletion or "").startswith("No dynamic tasks could be created for the Workflow: wf")
    assert "duplicate task reference name: a" in (r.wf.reasonForIncompletion or "")


def test_dynamic_fork_without_a_join_fails() -> None:
    r = Run({"tasks": [{"name": "dyn", "taskReferenceName": "dyn", "type": "FORK_JOIN_DYNAMIC",
                        "inputParameters": {"forkTaskInputs": [1]}}, w("after")]})
    r.start()
    assert r.wf.status == WorkflowStatus.FAILED
    assert r.wf.reasonForIncompletion == (
        "Dynamic join definition is not followed by a join task.  Check the workflow definition.")


# --------------------------------------------------------------------------------------------
# DO_WHILE


def _loop(body: list[dict[str, Any]], condition: str | None = "$.loop.iteration < 3", **fields: Any) -> dict[str, Any]:
    node_: dict[str, Any] = {"name": "loop", "taskReferenceName": "loop", "type": "DO_WHILE", "loopOver": body, **fields}
    if condition is not None:
        node_["loopCondition"] = condition
    return node_


def test_do_while_starts_iteration_one_and_counts() -> None:
    r = Run({"tasks": [_loop([w("body", inputParameters={"i": "${loop.output.iteration}"})]), w("after")]})
    first = r.start()
    loop = r.task("loop")
    assert loop.taskType == "DO_WHILE" and loop.status == S.IN_PROGRESS
    assert loop.iteration == 1 and loop.outputData == {"iteration": 1}
    assert r.refs() == ["loop", "body__1"]
    body = r.task("body__1")
    assert body.iteration == 1 and body.inputData == {"i": 1}  # the body reads the loop's own output
    assert [t.referenceTaskName for t in first[0].schedule] == ["loop"]
    r.finish("body__1", output={"n": 1})
    loop = r.task("loop")
    assert loop.iteration == 2 and loop.outputData == {"iteration": 2, "1": {"body": {"n": 1}}}
    assert r.task("body__2").inputData == {"i": 2}
    r.finish("body__2", output={"n": 2})
    r.finish("body__3", output={"n": 3})
    loop = r.task("loop")
    assert loop.status == S.COMPLETED and loop.iteration == 3
    assert loop.outputData == {"iteration": 3, "1": {"body": {"n": 1}}, "2": {"body": {"n": 2}}, "3": {"body": {"n": 3}}}
    assert r.refs() == ["loop", "body__1", "body__2", "body__3", "after"]


def test_do_while_runs_the_body_at_least_once() -> None:
    r = Run({"tasks": [_loop([sys("n", "NOOP")], condition="false")]})
    r.start()
    assert r.refs() == ["loop", "n__1"]
    assert r.task("loop").status == S.COMPLETED and r.wf.status == WorkflowStatus.COMPLETED


def test_do_while_iteration_completes_only_when_every_body_task_is_done_and_handled() -> None:
    r = Run({"tasks": [_loop([w("a"), w("b")], condition="$.loop.iteration < 2")]})
    r.start()
    r.finish("a__1")
    assert r.refs() == ["loop", "a__1", "b__1"]
    assert r.task("loop").iteration == 1
    loop = r.task("loop")
    assert do_while.TASK.watches(loop, r.task("b__1")) and do_while.TASK.watches(loop, r.task("a__1"))
    # b done but not yet handled by the decider (its successors may not exist yet): no advance
    b = r.task("b__1")
    b.status = S.COMPLETED
    assert do_while.TASK.execute(loop, r.ctx()) is None
    r.settle([b])
    assert r.task("loop").iteration == 2 and r.refs()[-1] == "a__2"
    assert not do_while.TASK.watches(loop, r.task("a__1"))  # an older iteration


def test_do_while_with_a_switch_in_the_body() -> None:
    body = [{"name": "sw", "taskReferenceName": "sw", "type": "SWITCH", "evaluatorType": "javascript",
             "expression": "$.i % 2 == 0 ? 'even' : 'odd'", "inputParameters": {"i": "${loop.output.iteration}"},
             "decisionCases": {"even": [w("e")], "odd": [sys("o", "NOOP")]}},
            sys("tail", "NOOP")]
    r = Run({"tasks": [_loop(body, condition="$.loop.iteration < 2")]})
    r.start()
    assert r.refs() == ["loop", "sw__1", "o__1", "tail__1", "sw__2", "e__2"]
    r.finish("e__2", output={"v": 2})
    assert r.refs()[-1] == "tail__2"
    loop = r.task("loop")
    assert loop.status == S.COMPLETED
    assert loop.outputData["2"] == {"sw": {"evaluationResult": ["even"], "selectedCase": "even"}, "e": {"v": 2},
                                   "tail": {}}
    assert r.wf.status == WorkflowStatus.COMPLETED


def test_do_while_condition_bindings() -> None:
    # $.<loopRef>.iteration, $.<bodyRef> = the latest iteration's output, evaluated inputParameters
    condition = "$.loop.iteration < $.limit && $.body.more == true && $.loop['1'].body.n == 1"
    r = Run({"tasks": [_loop([w("body")], condition=condition, inputParameters={"limit": "${workflow.input.limit}"})]},
            limit=5)
    r.start()
    r.finish("body__1", output={"n": 1, "more": True})
    r.finish("body__2", output={"n": 2, "more": True})
    assert r.task("loop").iteration == 3
    r.finish("body__3", output={"n": 3, "more": False})
    loop = r.task("loop")
    assert loop.status == S.COMPLETED and loop.iteration == 3
    r2 = Run({"tasks": [_loop([w("body")], condition=condition, inputParameters={"limit": "${workflow.input.limit}"})]},
             limit=2)
    r2.start()
    r2.finish("body__1", output={"n": 1, "more": True})
    r2.finish("body__2", output={"n": 2, "more": True})
    assert r2.task("loop").status == S.COMPLETED and r2.task("loop").iteration == 2


def test_do_while_condition_error_fails_terminally() -> None:
    r = Run({"tasks": [_loop([w("body")], condition="$.nothing.here > 1")]})
    r.start()
    r.finish("body__1")
    loop = r.task("loop")
    assert loop.status == S.FAILED_WITH_TERMINAL_ERROR
    assert (loop.reasonForIncompletion or "").startswith("Unable to evaluate condition $.nothing.here > 1, exception TypeError")
    assert r.wf.status == WorkflowStatus.FAILED


def test_do_while_body_failure_fails_the_loop() -> None:
    r = Run({"tasks": [_loop([w("a"), w("b")])]})
    r.start()
    r.finish("a__1", output={"x": 1})
    b = r.task("b__1")
    b.status, b.reasonForIncompletion, b.outputData, b.executed = S.FAILED, "boom", {"e": 1}, True
    out = do_while.TASK.execute(r.task("loop"), r.ctx())
    assert out is not None and out.status == S.FAILED and out.reason == "boom "
    assert out.output is not None and out.output["1"] == {"a": {"x": 1}, "b": {"e": 1}}


def test_do_while_keep_last_n_removes_old_iterations() -> None:
    r = Run({"tasks": [_loop([w("a"), sys("n", "NOOP")], condition="$.loop.iteration < 4",
                             inputParameters={"keepLastN": 2})]})
    r.start()
    r.finish("a__1", output={"k": 1})
    r.finish("a__2", output={"k": 2})
    assert not r.removed
    r.finish("a__3", output={"k": 3})  # iteration 3 done: iteration 1 goes
    assert sorted(t.referenceTaskName for t in r.removed) == ["a__1", "n__1"]
    loop = r.task("loop")
    assert set(loop.outputData) == {"iteration", "2", "3"} and loop.iteration == 4
    r.finish("a__4", output={"k": 4})
    assert sorted(t.referenceTaskName for t in r.removed) == ["a__1", "a__2", "n__1", "n__2"]
    assert r.refs() == ["loop", "a__3", "n__3", "a__4", "n__4"]
    loop = r.task("loop")
    assert loop.status == S.COMPLETED and set(loop.outputData) == {"iteration", "3", "4"}
    assert r.wf.status == WorkflowStatus.COMPLETED


def test_do_while_keep_last_n_remove_list_from_execute() -> None:
    r = Run({"tasks": [_loop([w("a")], condition="true", inputParameters={"keepLastN": 1})]})
    r.start()
    r.finish("a__1")
    assert not r.removed  # iteration 1 done: 1 > keepLastN is false, nothing goes yet
    a1 = r.task("a__1")
    a2 = r.task("a__2")
    a2.status, a2.executed = S.COMPLETED, True
    out = do_while.TASK.execute(r.task("loop"), r.ctx())
    assert out is not None and out.status is None and out.iteration == 3
    assert [t.referenceTaskName for t in out.schedule] == ["a__3"]
    assert out.remove == [a1]  # iteration 2 done: iteration 1 goes
    assert out.output is not None and set(out.output) == {"iteration", "2"}
    r.settle([a2])
    assert r.removed == [a1] and r.refs() == ["loop", "a__2", "a__3"]
    r.finish("a__3")
    assert r.removed == [a1, a2] and r.refs() == ["loop", "a__3", "a__4"]


def test_do_while_items_mode() -> None:
    body = [w("b", inputParameters={"item": "${loop.output.loopItem}", "idx": "${loop.output.loopIndex}"})]
    r = Run({"tasks": [_loop(body, condition=None, items="${workflow.input.xs}")]}, xs=["a", "b", "c"])
    r.start()
    assert r.task("b__1").inputData == {"item": "a", "idx": 0}
    assert r.task("loop").outputData == {"iteration": 1, "loopIndex": 0, "loopItem": "a"}
    r.finish("b__1")
    assert r.task("b__2").inputData == {"item": "b", "idx": 1}
    r.finish("b__2")
    r.finish("b__3")
    loop = r.task("loop")
    assert loop.status == S.COMPLETED and loop.iteration == 3 and loop.outputData["loopItem"] == "c"
    empty = Run({"tasks": [_loop(body, condition=None, items="${workflow.input.xs}")]}, xs=[])
    empty.start()
    assert empty.refs() == ["loop"] and empty.task("loop").status == S.COMPLETED
    assert empty.task("loop").outputData == {"iteration": 0}
    literal = Run({"tasks": [_loop(body, condition="$.loopIndex < 1", inputParameters={"_items": [10, 20, 30]})]})
    literal.start()
    literal.finish("b__1")
    literal.finish("b__2")  # the condition stops it before the list ends
    assert literal.task("loop").status == S.COMPLETED and literal.task("loop").iteration == 2


# --------------------------------------------------------------------------------------------
# SUB_WORKFLOW

CHILDREN = ({"name": "child", "version": 1, "tasks": [w("c")]}, {"name": "child", "version": 2, "tasks": [w("c")]})


def _sub(param: dict[str, Any], **kw: Any) -> Run:
    inputs = kw.pop("inputParameters", {"p": "${workflow.input.p}"})
    return Run({"tasks": [sys("sub", "SUB_WORKFLOW", subWorkflowParam=param, inputParameters=inputs)]},
               workflows=CHILDREN, **kw)


def test_sub_workflow_schedule_input_keys() -> None:
    r = _sub({"name": "child"}, p=7)
    [t] = sub_workflow.TASK.schedule(r.node("sub"), r.ctx(), 0)
    assert (t.taskType, t.status) == ("SUB_WORKFLOW", S.SCHEDULED)
    assert t.inputData == {
        "subWorkflowName": "child",
        "subWorkflowVersion": 2,  # latest when no version
        "subWorkflowTaskToDomain": None,
        "subWorkflowDefinition": None,
        "priority": None,
        "workflowInput": {"p": 7},
    }
    r1 = _sub({"name": "child", "version": "${workflow.input.v}", "taskToDomain": {"c": "d1"}, "priority": 5}, v=1)
    [t1] = sub_workflow.TASK.schedule(r1.node("sub"), r1.ctx(), 3)
    assert t1.referenceTaskName == "sub__3"
    assert t1.inputData["subWorkflowVersion"] == 1 and t1.inputData["subWorkflowTaskToDomain"] == {"c": "d1"}
    assert t1.inputData["priority"] == 5


def test_sub_workflow_execute_starts_the_child_with_inherited_fields() -> None:
    r = _sub({"name": "child"}, p=7, correlation_id="corr-1", task_to_domain={"*": "dom"})
    r.wf.priority = 3
    r.start()
    t = r.task("sub")
    assert t.status == S.IN_PROGRESS and t.subWorkflowId
    assert t.outputData == {"subWorkflowId": t.subWorkflowId}
    [(owner, effect)] = r.effects
    assert owner is t and isinstance(effect, StartWorkflow)
    assert effect.workflow_id == t.subWorkflowId and effect.workflow_id.startswith("tt-")  # from new_id
    assert effect.parent_task is t
    assert effect.request == {"name": "child", "version": 2, "input": {"p": 7}, "correlationId": "corr-1",
                              "taskToDomain": {"*": "dom"}, "priority": 3}
    # once started, nothing more happens until the child reports back
    assert sub_workflow.TASK.execute(t, r.ctx()) is None


def test_sub_workflow_child_id_is_the_next_injected_id() -> None:
    r = _sub({"name": "child"})
    [t] = sub_workflow.TASK.schedule(r.node("sub"), r.ctx(), 0)
    expected = f"tt-{int(new_id()[3:]) + 1:06d}"
    outcome = sub_workflow.TASK.execute(t, r.ctx())
    assert outcome is not None and outcome.sub_workflow_id == expected
    assert outcome.changes(t, T0)["subWorkflowId"] == expected


def test_sub_workflow_overrides_and_inline_definition() -> None:
    inline_def = {"name": "inline_child", "version": 4, "tasks": [w("c")]}
    r = _sub({"workflowDefinition": inline_def, "taskToDomain": {"x": "y"}}, inputParameters={},
             task_to_domain={"*": "dom"}, correlation_id="c9")
    r.start()
    t = r.task("sub")
    assert t.inputData["subWorkflowName"] == "inline_child" and t.inputData["subWorkflowVersion"] == 4
    [(_, effect)] = r.effects
    assert effect.request["workflowDef"] == inline_def
    assert effect.request["taskToDomain"] == {"x": "y"}
    # an empty workflowInput passes the whole task input; inline children are marked dynamic
    assert effect.request["input"]["_systemMetadata"] == {"dynamic": True}
    assert effect.request["input"]["subWorkflowName"] == "inline_child"


def test_sub_workflow_missing_definition_fails_the_workflow() -> None:
    r = _sub({"name": "nope"})
    r.start()
    assert r.wf.status == WorkflowStatus.FAILED
    assert r.wf.reasonForIncompletion == "The Task nope defined as a sub-workflow has no workflow definition available "


@pytest.mark.parametrize(
    ("child", "expected", "with_reason"),
    [
        (WorkflowStatus.COMPLETED, S.COMPLETED, False),
        (WorkflowStatus.FAILED, S.FAILED, True),
        (WorkflowStatus.TERMINATED, S.CANCELED, True),
        (WorkflowStatus.TIMED_OUT, S.TIMED_OUT, True),
        (WorkflowStatus.RUNNING, S.IN_PROGRESS, False),
        (WorkflowStatus.PAUSED, S.IN_PROGRESS, False),
    ],
)
def test_sub_workflow_child_result(child: WorkflowStatus, expected: TaskStatus, with_reason: bool) -> None:
    r = _sub({"name": "child"})
    r.start()
    t = r.task("sub")
    out = sub_workflow.child_result(t, child, {"o": 1}, "it broke", "child", 2, "cid-1")
    assert out.status == expected
    assert out.output == {"o": 1, "subWorkflowId": "cid-1"}
    if with_reason:
        assert out.reason == "Sub workflow child.2/cid-1 failure reason: it broke"
    else:
        assert out.reason is None


def test_sub_workflow_result_through_the_decider() -> None:
    r = _sub({"name": "child"}, task_defs=({"name": "sub", "retryCount": 0},))
    r.start()
    t = r.task("sub")
    out = sub_workflow.child_result(t, WorkflowStatus.TERMINATED, {}, "stopped", "child", 2, t.subWorkflowId or "")
    for k, v in out.changes(t, T0).items():
        setattr(t, k, v)
    r.settle([t])
    assert t.status == S.CANCELED and r.wf.status == WorkflowStatus.TERMINATED


def test_sub_workflow_cancel_terminates_the_child() -> None:
    r = _sub({"name": "child"})
    r.start()
    t = r.task("sub")
    t.status = S.CANCELED
    r.wf.status = WorkflowStatus.TERMINATED
    services = FakeServices()
    sub_workflow.TASK.cancel(t, r.wf, services)
    assert services.terminated == [(t.subWorkflowId, "Parent workflow has been terminated with status TERMINATED")]
    r.wf.reasonForIncompletion = "stop it"
    sub_workflow.TASK.cancel(t, r.wf, services)
    assert services.terminated[-1] == (t.subWorkflowId, "Parent workflow has been terminated with reason: stop it")
    t.subWorkflowId = None
    sub_workflow.TASK.cancel(t, r.wf, services)
    assert len(services.terminated) == 2


# --------------------------------------------------------------------------------------------
# START_WORKFLOW


def test_start_workflow_starts_and_completes() -> None:
    r = Run({"tasks": [sys("sw", "START_WORKFLOW", inputParameters={
        "startWorkflow": {"name": "child", "input": {"a": "${workflow.input.a}"}}})]},
        workflows=CHILDREN, correlation_id="corr", task_to_domain={"*": "d"}, a=1)
    [t] = start_workflow.TASK.schedule(r.node("sw"), r.ctx(), 0)
    assert (t.taskType, t.status) == ("START_WORKFLOW", S.SCHEDULED)
    r.start()
    t = r.task("sw")
    assert t.status == S.COMPLETED
    [(_, effect)] = r.effects
    assert isinstance(effect, StartWorkflow) and effect.parent_task is None  # independent
    assert t.outputData == {"workflowId": effect.workflow_id}
    assert effect.request == {"name": "child", "input": {"a": 1}, "correlationId": "corr", "taskToDomain": {"*": "d"}}
    assert r.wf.status == WorkflowStatus.COMPLETED


@pytest.mark.parametrize(
    ("inputs", "reason"),
    [
        ({}, "Missing 'startWorkflow' in input data."),
        ({"startWorkflow": "${workflow.input.nothing}"}, "Missing 'startWorkflow' in input data."),
        ({"startWorkflow": {"input": {}}},
         "startWorkflow validation failed. 'name' -> Workflow name cannot be null or empty. "),
        ({"startWorkflow": {"name": "nope"}}, "No such workflow defined. name=nope, version=null"),
        ({"startWorkflow": {"name": "child", "version": 9}}, "No such workflow defined. name=child, version=9"),
    ],
)
def test_start_workflow_input_errors(inputs: dict[str, Any], reason: str) -> None:
    r = Run({"tasks": [sys("sw", "START_WORKFLOW", inputParameters=inputs)]}, workflows=CHILDREN)
    r.start()
    t = r.task("sw")
    assert t.status == S.FAILED and t.reasonForIncompletion == reason
    assert not r.effects
    assert r.wf.status == WorkflowStatus.FAILED


# --------------------------------------------------------------------------------------------
# WAIT


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("30 seconds", 30),
        ("1 second", 1),
        ("2 minutes", 120),
        ("10 mins", 600),
        ("5m", 300),
        ("3hrs", 10_800),
        ("2 hours", 7_200),
        ("1d 6h", 108_000),
        ("2 days", 172_800),
        ("1h 30m 5s", 5_405),
        ("1d2h3m4s", 93_784),
        ("  45 SECS ", 45),
        ("1 DAY 1 HOUR", 90_000),
    ],
)
def test_wait_duration_parsing(text: str, seconds: int) -> None:
    assert wait.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "30", "5 weeks", "1m 2h", "s", "1.5h", "-5s", "1h and 5m"])
def test_wait_duration_parsing_rejects(text: str) -> None:
    with pytest.raises(wait.WaitInputError, match="Invalid duration format"):
        wait.parse_duration(text)


def _epoch(*args: int, tz: Any = None) -> int:
    import datetime as dt

    return int(dt.datetime(*args, tzinfo=tz or dt.UTC).timestamp() * 1000)


@pytest.fixture
def zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The server's default zone is New York for the test (TZ + tzset), restored afterwards."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_wait_until_formats_in_the_servers_zone(zone: None) -> None:
    import datetime as dt

    ny = dt.timezone(dt.timedelta(hours=-5))  # January: EST
    assert wait.parse_until("2030-01-01 10:00") == _epoch(2030, 1, 1, 10, 0, tz=ny)
    assert wait.parse_until("2030-01-01") == _epoch(2030, 1, 1, tz=ny)
    assert wait.parse_until("2030-01-01 10:00 +0200") == _epoch(2030, 1, 1, 8, 0)


@pytest.mark.parametrize("zone_name", ["GMT", "UTC"])
def test_wait_until_with_a_zone_name_is_not_read_in_the_servers_zone(zone: None, zone_name: str) -> None:
    assert wait.parse_until(f"2030-01-01 10:00 {zone_name}") == _epoch(2030, 1, 1, 10, 0)


def test_wait_until_rejects_bad_text() -> None:
    for text in ("tomorrow", "2030-13-01", "01/02/2030", "2030-01-01T10:00"):
        with pytest.raises(wait.WaitInputError, match=r"Invalid/Unsupported Wait Until format\.  Provided: "):
            wait.parse_until(text)


def test_wait_duration_completes_at_its_deadline() -> None:
    r = Run({"tasks": [sys("x", "WAIT", inputParameters={"duration": "${workflow.input.d}"}), w("after")]}, d="30s")
    r.start()
    t = r.task("x")
    assert (t.taskType, t.status, t.callbackAfterSeconds) == ("WAIT", S.IN_PROGRESS, 30)
    assert r.wake_at == T0 + 30_000
    r.now = T0 + 29_999
    out = wait.TASK.execute(t, r.ctx())
    assert out is not None and out.status is None and out.wake_at == T0 + 30_000
    assert not r.settle() or t.status == S.IN_PROGRESS
    assert t.status == S.IN_PROGRESS
    r.now = T0 + 30_000
    out = wait.TASK.execute(t, r.ctx())
    assert out is not None and out.status == S.COMPLETED
    r.settle()  # a timer's full pass
    assert t.status == S.COMPLETED and t.outputData == {} and r.refs() == ["x", "after"]


def test_wait_until_past_and_future() -> None:
    past = Run({"tasks": [sys("x", "WAIT", inputParameters={"until": "2020-01-01 00:00"})]})
    past.start()
    assert past.task("x").callbackAfterSeconds == 0
    assert past.task("x").status == S.COMPLETED and past.wf.status == WorkflowStatus.COMPLETED
    future = Run({"tasks": [sys("x", "WAIT", inputParameters={"until": "2099-01-01 00:00 +0000"})]})
    future.start()
    due = _epoch(2099, 1, 1)
    assert future.task("x").status == S.IN_PROGRESS and future.wake_at == due
    assert future.task("x").callbackAfterSeconds == (due - T0) // 1000


def test_wait_without_input_waits_for_an_update() -> None:
    r = one("WAIT")
    t = r.task("x")
    assert t.status == S.IN_PROGRESS and r.wake_at is None
    r.now = T0 + 10**9
    assert wait.TASK.execute(t, r.ctx()) is None
    r.finish("x", S.COMPLETED, {"signal": 1})
    assert r.wf.status == WorkflowStatus.COMPLETED and r.wf.output == {"signal": 1}


@pytest.mark.parametrize(
    ("inputs", "reason"),
    [
        ({"duration": "${workflow.input.d}", "until": "${workflow.input.u}"},
         "Both 'duration' and 'until' specified. Please provide only one input"),
        ({"duration": "${workflow.input.bad}"}, "Invalid duration format: later"),
        ({"until": "${workflow.input.bad}"}, "Invalid/Unsupported Wait Until format.  Provided: later"),
    ],
)
def test_wait_bad_input_fails_terminally(inputs: dict[str, Any], reason: str) -> None:
    r = Run({"tasks": [sys("x", "WAIT", inputParameters=inputs)]}, validate=False, bad="later", d="1s", u="2030-01-01")
    r.start()
    t = r.task("x")
    assert t.status == S.FAILED_WITH_TERMINAL_ERROR and t.reasonForIncompletion == reason
    assert r.wf.status == WorkflowStatus.FAILED


def test_wait_blank_input_is_absent() -> None:
    # conductor-oss (WaitTaskMapper): StringUtils.isNotBlank decides whether duration/until is given
    r = Run({"tasks": [sys("x", "WAIT", inputParameters={"duration": "${workflow.input.d}", "until": "2020-01-01"})]},
            validate=False, d="")
    r.start()
    assert r.task("x").status == S.COMPLETED
    n = node(type="WAIT", inputParameters={"duration": " ", "until": "2030-01-01"})
    assert wait.TASK.validate(n) == []


# --------------------------------------------------------------------------------------------
# TERMINATE


@pytest.mark.parametrize(
    ("workflow_output", "expected"),
    [({"a": 1}, {"a": 1}), ("text", {"output": "text"}), (None, {}), ([1, 2], {"output": [1, 2]})],
)
def test_terminate_output(workflow_output: Any, expected: dict[str, Any]) -> None:
    r = Run({"tasks": [sys("x", "TERMINATE", inputParameters={"terminationStatus": "COMPLETED",
                                                              "workflowOutput": "${workflow.input.o}"})]},
            o=workflow_output)
    [t] = terminate.TASK.schedule(r.node("x"), r.ctx(), 0)
    assert (t.taskType, t.status) == ("TERMINATE", S.IN_PROGRESS)
    out = terminate.TASK.execute(t, r.ctx())
    assert out is not None and out.status == S.COMPLETED and out.output == expected
    assert not terminate.TASK.proceeds(t)


def test_terminate_invalid_status_at_run_time() -> None:
    r = Run({"tasks": [sys("x", "TERMINATE", inputParameters={"terminationStatus": "${workflow.input.s}"})]}, s="PAUSED")
    r.start()
    t = r.task("x")
    assert t.status == S.FAILED and t.reasonForIncompletion == "given termination status is not valid"


def test_terminate_finishes_the_workflow() -> None:
    t = Task("tid-9", node(type="TERMINATE"), Run({"tasks": [w("a")]}).wf, "TERMINATE", S.COMPLETED)
    t.inputData = {"terminationStatus": "COMPLETED"}
    assert terminate.TASK.finishes(t) == WorkflowEnd(WorkflowStatus.COMPLETED, "Workflow is COMPLETED by TERMINATE task: tid-9", None)
    t.inputData = {"terminationStatus": "FAILED", "terminationReason": "stop"}
    t.outputData = {"o": 1}
    assert terminate.TASK.finishes(t) == WorkflowEnd(WorkflowStatus.FAILED, "stop", {"o": 1})


def test_terminate_in_a_fork_ends_the_workflow_and_cancels_the_rest() -> None:
    defn = {"tasks": [
        {"name": "fork", "taskReferenceName": "fork", "type": "FORK_JOIN", "forkTasks": [
            [w("slow")],
            [sys("t", "TERMINATE", inputParameters={"terminationStatus": "FAILED", "terminationReason": "enough",
                                                    "workflowOutput": {"r": "${workflow.input.r}"}})]]},
        {"name": "join", "taskReferenceName": "join", "type": "JOIN", "joinOn": ["slow", "t"]},
    ], "outputParameters": {"ignored": "yes"}}
    r = Run(defn, r=5)
    ds = r.start()
    assert r.wf.status == WorkflowStatus.FAILED and r.wf.reasonForIncompletion == "enough"
    assert r.wf.output == {"r": 5}  # the TERMINATE output, not outputParameters
    assert ds[-1].cancel_open and ds[-1].failed_task is r.task("t")
    assert r.task("slow").status == S.SCHEDULED  # the executor cancels it (cancel_open)


def test_terminate_completed_keeps_its_reason() -> None:
    r = Run({"tasks": [sys("x", "TERMINATE", inputParameters={"terminationStatus": "COMPLETED"}), w("never")]})
    r.start()
    assert r.wf.status == WorkflowStatus.COMPLETED
    assert r.wf.reasonForIncompletion == f"Workflow is COMPLETED by TERMINATE task: {r.task('x').taskId}"
    assert r.refs() == ["x"]


# --------------------------------------------------------------------------------------------
# INLINE and LAMBDA

# CPU-bound on purpose (~0.3 s of CPU): the script time limit counts CPU time, so a wall-clock spin
# on a busy machine could use less than the loop slice and finish on the loop
SLOW_SCRIPT = "var x = 0; for (var i = 0; i < 2000000; i++) {{ x += i; }} $.n + 1"


def test_inline_evaluates_over_its_input() -> None:
    r = one("INLINE", inputParameters={"expression": "$.a + $.b", "a": "${workflow.input.a}", "b": 2}, inp={"a": 1})
    t = r.task("x")
    assert (t.taskType, t.status, t.outputData) == ("INLINE", S.COMPLETED, {"result": 3})
    assert t.inputData == {"expression": "$.a + $.b", "a": 1, "b": 2}
    assert r.wf.output == {"result": 3}


@pytest.mark.parametrize(
    ("inputs", "result"),
    [
        ({"expression": "(function(){ return {k: [$.n, null]}; })()", "n": 2}, {"k": [2, None]}),
        ({"expression": "n", "evaluatorType": "value-param", "n": {"deep": 1}}, {"deep": 1}),
        ({"expression": "$.n > 1", "evaluatorType": "graaljs", "n": 2}, True),
    ],
)
def test_inline_results(inputs: dict[str, Any], result: Any) -> None:
    t = Task("tid", node(type="INLINE"), Run({"tasks": [w("a")]}).wf, "INLINE", S.IN_PROGRESS)
    t.inputData = inputs
    out = inline.TASK.execute(t, Run({"tasks": [w("a")]}).ctx())
    assert out is not None and out.status == S.COMPLETED and out.output == {"result": result}


@pytest.mark.parametrize(
    ("inputs", "error"),
    [
        ({"expression": "nope + 1"}, "ReferenceError: nope is not defined"),
        ({"expression": "throw new Error('boom')"}, "Error: boom"),
        ({"expression": "  "}, "Empty 'expression' in Inline task's input parameters. A non-empty String value must be provided."),
        ({"expression": "1", "evaluatorType": ""},
         "Empty 'evaluatorType' in INLINE task's input parameters. A non-empty String value must be provided."),
        ({"expression": "1", "evaluatorType": "python"}, "Unknown evaluator 'python' in INLINE task."),
    ],
)
def test_inline_errors_fail_terminally(inputs: dict[str, Any], error: str) -> None:
    r = Run({"tasks": [sys("x", "INLINE", inputParameters={"expression": "${workflow.input.e}",
                                                          "evaluatorType": "${workflow.input.ev}"})]},
            e=inputs["expression"], ev=inputs.get("evaluatorType", "javascript"))
    r.start()
    t = r.task("x")
    assert t.status == S.FAILED_WITH_TERMINAL_ERROR
    assert t.outputData == {"error": error} and t.reasonForIncompletion == error
    assert r.refs() == ["x"] and r.wf.status == WorkflowStatus.FAILED


def test_inline_long_script_leaves_the_loop_then_runs_in_a_thread() -> None:
    assert inline.LOOP_SLICE_MS < 150
    r = one("INLINE", inputParameters={"expression": SLOW_SCRIPT.format(ms=150), "n": 1})
    t = r.task("x")
    assert t.status == S.IN_PROGRESS and t.outputData == {}
    assert r.run_async == [t]  # the decider asks the executor for run()
    assert r.wf.status == WorkflowStatus.RUNNING
    out = inline.TASK.execute(t, r.ctx())
    assert out is not None and out.run_async and out.status is None and out.output is None
    services = FakeServices()
    done = asyncio.run(inline.TASK.run(t, services))
    assert done.status == S.COMPLETED and done.output == {"result": 2}
    assert len(services.threads) == 1 and services.threads[0] != "MainThread"


def test_inline_run_reports_errors() -> None:
    t = Task("tid", node(type="INLINE"), Run({"tasks": [w("a")]}).wf, "INLINE", S.IN_PROGRESS)
    t.inputData = {"expression": "nope"}
    out = asyncio.run(inline.TASK.run(t, FakeServices()))
    assert out.status == S.FAILED_WITH_TERMINAL_ERROR and out.reason == "ReferenceError: nope is not defined"


def test_lambda() -> None:
    r = one("LAMBDA", inputParameters={"scriptExpression": "return {twice: $.n * 2};", "n": "${workflow.input.n}"},
            inp={"n": 4})
    t = r.task("x")
    assert (t.taskType, t.status, t.outputData) == ("LAMBDA", S.COMPLETED, {"result": {"twice": 8}})
    # errors are retriable (FAILED), with output.error
    r = Run({"tasks": [sys("x", "LAMBDA", inputParameters={"scriptExpression": "return nope;"})]},
            task_defs=({"name": "x", "retryCount": 0},))
    r.start()
    t = r.task("x")
    assert t.status == S.FAILED and t.outputData == {"error": "ReferenceError: nope is not defined"}
    assert t.reasonForIncompletion == "ReferenceError: nope is not defined"
    empty = Task("tid", node(type="LAMBDA"), r.wf, "LAMBDA", S.IN_PROGRESS)
    empty.inputData = {"scriptExpression": ""}
    out = lambda_.TASK.execute(empty, r.ctx())
    assert out is not None and out.status == S.FAILED
    assert out.reason == "Empty 'scriptExpression' in Lambda task's input parameters"


def test_lambda_is_retried_per_its_task_def() -> None:
    r = Run({"tasks": [sys("x", "LAMBDA", inputParameters={"scriptExpression": "return nope;"})]},
            task_defs=({"name": "x", "retryCount": 1, "retryDelaySeconds": 0},))
    r.start()
    assert [t.status for t in r.wf.tasks] == [S.FAILED, S.FAILED]
    assert r.wf.tasks[1].retryCount == 1 and r.wf.status == WorkflowStatus.FAILED


def test_lambda_long_script_runs_off_the_loop() -> None:
    r = one("LAMBDA", inputParameters={"scriptExpression": "var x = 0; for (var i = 0; i < 2000000; i++) { x += i; } "
                                                           "return $.n;", "n": 5})
    t = r.task("x")
    assert t.status == S.IN_PROGRESS and r.run_async == [t]
    out = asyncio.run(lambda_.TASK.run(t, FakeServices()))
    assert out.status == S.COMPLETED and out.output == {"result": 5}


# --------------------------------------------------------------------------------------------
# JSON_JQ_TRANSFORM


def test_jq_transform() -> None:
    assert task_types.type_of("JSON_JQ_TRANSFORM") is json_jq_transform.TASK
    r = one("JSON_JQ_TRANSFORM", inputParameters={"queryExpression": ".a + .b", "a": "${workflow.input.a}", "b": 2},
            inp={"a": 40})
    t = r.task("x")
    assert (t.taskType, t.status, t.outputData) == ("JSON_JQ_TRANSFORM", S.COMPLETED, {"result": 42, "resultList": [42]})
    r = one("JSON_JQ_TRANSFORM", inputParameters={"queryExpression": ".items[] | {v: .}", "items": [1, 2]})
    assert r.task("x").outputData == {"result": {"v": 1}, "resultList": [{"v": 1}, {"v": 2}]}
    r = one("JSON_JQ_TRANSFORM", inputParameters={"queryExpression": "empty"})
    assert r.task("x").outputData == {"result": None, "resultList": []}


@pytest.mark.parametrize(
    ("query", "fragment"),
    [("${workflow.input.q}", "compile error"), ("", "Missing 'queryExpression' in input parameters")],
)
def test_jq_transform_errors_fail(query: str, fragment: str) -> None:
    r = Run({"tasks": [sys("x", "JSON_JQ_TRANSFORM", inputParameters={"queryExpression": query})]},
            task_defs=({"name": "x", "retryCount": 0},), q=".a |||")
    r.start()
    t = r.task("x")
    assert t.status == S.FAILED
    assert fragment in (t.reasonForIncompletion or "") and t.outputData == {"error": t.reasonForIncompletion}
    assert r.wf.status == WorkflowStatus.FAILED


# --------------------------------------------------------------------------------------------
# EVENT


@pytest.mark.parametrize(
    ("sink", "queue"),
    [("conductor", "conductor:wfname:ref1"), ("conductor:orders", "conductor:wfname:orders")],
)
def test_event_sink_queue_names(sink: str, queue: str) -> None:
    assert event.queue_name(sink, "wfname", "ref1") == queue


@pytest.mark.parametrize(
    ("sink", "message"),
    [
        ("conductorx", "Invalid / Unsupported sink specified: conductorx"),
        ("sqs:my-queue", "Event queue type 'sqs' of sink sqs:my-queue is not supported by this server; supported: conductor"),
        ("kafka:topic", "Event queue type 'kafka'"),
    ],
)
def test_event_unsupported_sinks(sink: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        event.queue_name(sink, "wfname", "ref1")


def test_event_publishes_its_output() -> None:
    r = Run({"tasks": [sys("ev", "EVENT", sink="conductor:${workflow.input.q}",
                           inputParameters={"orderId": "${workflow.input.id}"})]},
            correlation_id="c1", task_to_domain={"*": "d"}, q="orders", id=7)
    [t] = event.TASK.schedule(r.node("ev"), r.ctx(), 0)
    assert (t.taskType, t.status) == ("EVENT", S.SCHEDULED)
    r.start()
    t = r.task("ev")
    assert t.status == S.COMPLETED
    out = t.outputData
    assert out["orderId"] == 7
    assert out["event_produced"] == "conductor:wf:orders"
    assert out["workflowInstanceId"] == r.wf.workflowId and out["workflowType"] == "wf" and out["workflowVersion"] == 1
    assert out["correlationId"] == "c1" and out["taskToDomain"] == {"*": "d"}
    assert out["sink"] == "conductor:orders"
    [(owner, effect)] = r.effects
    assert owner is t and isinstance(effect, Publish)
    assert (effect.queue, effect.message_id, effect.payload) == ("conductor:wf:orders", t.taskId, out)
    assert event.TASK.execute(t, r.ctx()) is None  # published once


def test_event_async_complete_stays_in_progress() -> None:
    r = Run({"tasks": [sys("ev", "EVENT", sink="conductor", asyncComplete=True)]})
    r.start()
    t = r.task("ev")
    assert t.status == S.IN_PROGRESS and t.outputData["event_produced"] == "conductor:wf:ev"
    assert len(r.effects) == 1 and r.wf.status == WorkflowStatus.RUNNING


def test_event_unsupported_sink_at_run_time_fails_the_task() -> None:
    r = Run({"tasks": [sys("ev", "EVENT", sink="${workflow.input.sink}")]},
            task_defs=({"name": "ev", "retryCount": 0},), sink="sqs:q")
    r.start()
    t = r.task("ev")
    assert t.status == S.FAILED and "Event queue type 'sqs'" in (t.reasonForIncompletion or "")
    assert not r.effects


# --------------------------------------------------------------------------------------------
# HTTP


def test_http_asks_for_async_work() -> None:
    req = {"http_request": {"uri": "http://127.0.0.1:9/x", "method": "GET"}}
    r = one("HTTP", inputParameters=req)
    t = r.task("x")
    assert (t.taskType, t.status, t.inputData) == ("HTTP", S.IN_PROGRESS, req)
    assert r.run_async == [t] and r.wf.status == WorkflowStatus.RUNNING
    [raw] = http.TASK.schedule(r.node("x"), r.ctx(), 2)
    assert raw.status == S.SCHEDULED and raw.referenceTaskName == "x__2"
    out = http.TASK.execute(raw, r.ctx())
    assert out is not None and out.status == S.IN_PROGRESS and out.run_async
    assert http.TASK.kind == "async"


# --------------------------------------------------------------------------------------------
# Purity: decide() reads the workflow, never changes it

EVERYTHING = {
    "tasks": [
        {"name": "fork", "taskReferenceName": "fork", "type": "FORK_JOIN", "forkTasks": [
            [{"name": "sw", "taskReferenceName": "sw", "type": "SWITCH", "evaluatorType": "javascript",
              "expression": "$.k", "inputParameters": {"k": "${workflow.input.k}"},
              "decisionCases": {"a": [w("a1")]}, "defaultCase": [sys("dflt", "NOOP")]}],
            [_loop([w("body", inputParameters={"i": "${loop.output.iteration}"}),
                    sys("sv", "SET_VARIABLE", inputParameters={"last": "${body.output.n}"})],
                   condition="$.loop.iteration < 2", inputParameters={"keepLastN": 1})],
            [sys("sub", "SUB_WORKFLOW", subWorkflowParam={"name": "child"})],
            [sys("wt", "WAIT", inputParameters={"duration": "1h"})],
            [sys("h", "HUMAN")],
            [{"name": "dyn", "taskReferenceName": "dyn", "type": "FORK_JOIN_DYNAMIC",
              "inputParameters": {"forkTaskName": "leaf", "forkTaskInputs": [1, 2]}},
             {"name": "dj", "taskReferenceName": "dj", "type": "JOIN"}],
            [sys("il", "INLINE", inputParameters={"expression": "$.v * 2", "v": 21}),
             sys("jq", "JSON_JQ_TRANSFORM", inputParameters={"queryExpression": ".x", "x": "${il.output.result}"}),
             sys("ev", "EVENT", sink="conductor"),
             sys("ht", "HTTP", inputParameters={"http_request": {"uri": "http://127.0.0.1:9", "method": "GET"}})],
        ]},
        {"name": "join", "taskReferenceName": "join", "type": "JOIN",
         "joinOn": ["a1", "loop", "sub", "wt", "h", "dj", "ht"]},
        {"name": "sw2", "taskReferenceName": "sw2", "type": "SWITCH", "evaluatorType": "value-param",
         "expression": "k", "inputParameters": {"k": "${workflow.input.k}"},
         "decisionCases": {"a": [w("x1")], "b": [w("x2")]}},
        sys("xj", "EXCLUSIVE_JOIN", joinOn=["x1", "x2"]),
        sys("term", "TERMINATE", inputParameters={"terminationStatus": "COMPLETED", "workflowOutput": {"done": 1}}),
    ]
}


def _snapshot(wf: Workflow) -> Any:
    return (
        copy.deepcopy(wf.state_json()),
        [(t.taskId, id(t), id(t.node), copy.deepcopy(t.state_json())) for t in wf.tasks],
    )


def _assert_pure(r: Run) -> Decision:
    before = _snapshot(r.wf)
    open_tasks = [t for t in r.wf.tasks if not t.executed]
    first = r.decide(None)
    assert _snapshot(r.wf) == before
    again = r.decide(None)
    assert _snapshot(r.wf) == before
    assert [t.referenceTaskName for t in first.schedule] == [t.referenceTaskName for t in again.schedule]
    assert [(t.taskId, ch) for t, ch in first.updates] == [(t.taskId, ch) for t, ch in again.updates]
    r.decide(open_tasks)
    assert _snapshot(r.wf) == before
    return first


def test_decide_never_mutates_the_workflow_or_its_tasks() -> None:
    r = Run(EVERYTHING, workflows=CHILDREN, k="a")
    before = _snapshot(r.wf)
    d = r.decide()
    assert _snapshot(r.wf) == before and d.schedule
    r.start()
    assert {"fork", "sw", "a1", "loop", "body__1", "sub", "wt", "h", "dyn", "_leaf_0", "_leaf_1", "dj", "il", "jq",
            "ev", "ht", "join"} <= set(r.refs())
    assert r.wf.status == WorkflowStatus.RUNNING
    _assert_pure(r)

    # changes reported but not decided yet: the pass has work to do, and still changes nothing
    for ref, out in (("a1", {"a": 1}), ("body__1", {"n": 1}), ("_leaf_0", {"l": 0})):
        t = r.task(ref)
        t.status, t.outputData = S.COMPLETED, out
    d = _assert_pure(r)
    assert d.updates and d.schedule
    r.settle([r.task("a1"), r.task("body__1"), r.task("_leaf_0")])
    assert r.task("loop").iteration == 2 and r.wf.variables == {"last": 1}

    t = r.task("body__2")
    t.status, t.outputData = S.COMPLETED, {"n": 2}
    d = _assert_pure(r)  # the next pass finishes the iteration and removes iteration 1 (keepLastN)
    r.settle([t])
    assert r.task("loop").status == S.COMPLETED and r.removed
    assert r.wf.index is None or r.wf.index.count == len(r.wf.tasks)

    r.now = T0 + 3_600_000  # the WAIT is due
    _assert_pure(r)
    r.settle()
    assert r.task("wt").status == S.COMPLETED

    for ref in ("h", "_leaf_1", "ht"):
        r.finish(ref, output={"r": ref})
    sub = r.task("sub")
    out = sub_workflow.child_result(sub, WorkflowStatus.COMPLETED, {"c": 1}, None, "child", 2, sub.subWorkflowId or "")
    for k, v in out.changes(sub, r.now).items():
        setattr(sub, k, v)
    _assert_pure(r)
    r.settle([sub])
    assert r.task("join").status == S.COMPLETED and r.refs()[-1] == "x1"
    r.task("x1").status = S.COMPLETED
    _assert_pure(r)
    r.settle([r.task("x1")])
    assert r.task("xj").status == S.COMPLETED
    assert r.wf.status == WorkflowStatus.COMPLETED and r.wf.output == {"done": 1}
    finished = _snapshot(r.wf)
    d = r.decide(None)
    assert not d.changed and _snapshot(r.wf) == finished


# --------------------------------------------------------------------------------------------
# schedule() across types: runtime type, initial status, iteration suffix; default routing

SCHEDULE_TABLE: list[tuple[str, dict[str, Any], str, TaskStatus]] = [
    ("SIMPLE", {"name": "job"}, "job", S.SCHEDULED),
    ("DYNAMIC", {"dynamicTaskNameParam": "tn", "inputParameters": {"tn": "resolved"}}, "resolved", S.SCHEDULED),
    ("DECISION", {"caseValueParam": "k", "decisionCases": {"a": [w("a1")]}}, "DECISION", S.IN_PROGRESS),
    ("SWITCH", {"evaluatorType": "value-param", "expression": "k", "decisionCases": {"a": [w("a1")]}},
     "SWITCH", S.IN_PROGRESS),
    ("FORK_JOIN", {"forkTasks": [[w("a1")]]}, "FORK", S.COMPLETED),
    ("FORK_JOIN_DYNAMIC", {"inputParameters": {"forkTaskInputs": [1]}}, "FORK", S.COMPLETED),
    ("JOIN", {"joinOn": ["a"]}, "JOIN", S.IN_PROGRESS),
    ("EXCLUSIVE_JOIN", {"joinOn": ["a"]}, "EXCLUSIVE_JOIN", S.IN_PROGRESS),
    ("SUB_WORKFLOW", {"subWorkflowParam": {"name": "child"}}, "SUB_WORKFLOW", S.SCHEDULED),
    ("START_WORKFLOW", {}, "START_WORKFLOW", S.SCHEDULED),
    ("WAIT", {}, "WAIT", S.IN_PROGRESS),
    ("HUMAN", {}, "HUMAN", S.IN_PROGRESS),
    ("TERMINATE", {"inputParameters": {"terminationStatus": "COMPLETED"}}, "TERMINATE", S.IN_PROGRESS),
    ("SET_VARIABLE", {}, "SET_VARIABLE", S.IN_PROGRESS),
    ("NOOP", {}, "NOOP", S.IN_PROGRESS),
    ("INLINE", {"inputParameters": {"expression": "1"}}, "INLINE", S.IN_PROGRESS),
    ("LAMBDA", {"inputParameters": {"scriptExpression": "return 1;"}}, "LAMBDA", S.IN_PROGRESS),
    ("JSON_JQ_TRANSFORM", {"inputParameters": {"queryExpression": "."}}, "JSON_JQ_TRANSFORM", S.IN_PROGRESS),
    ("HTTP", {"inputParameters": {"uri": "http://127.0.0.1:9", "method": "GET"}}, "HTTP", S.SCHEDULED),
    ("EVENT", {"sink": "conductor"}, "EVENT", S.SCHEDULED),
]


@pytest.mark.parametrize(("type_", "fields", "runtime_type", "status"), SCHEDULE_TABLE,
                         ids=[row[0] for row in SCHEDULE_TABLE])
def test_schedule_initial_status_and_iteration_suffix(
    type_: str, fields: dict[str, Any], runtime_type: str, status: TaskStatus
) -> None:
    fields = dict(fields)
    name = fields.pop("name", "n")
    tasks = [{"name": name, "taskReferenceName": "n", "type": type_, **fields}]
    if type_ in ("FORK_JOIN", "FORK_JOIN_DYNAMIC"):
        tasks.append({"name": "j", "taskReferenceName": "j", "type": "JOIN"})
    r = Run({"tasks": tasks}, workflows=CHILDREN)
    tt = task_types.type_of(type_)
    for iteration, ref in ((0, "n"), (3, "n__3")):
        created = tt.schedule(r.node("n"), r.ctx(), iteration)
        t = created[0]
        assert (t.taskType, t.status) == (runtime_type, status)
        assert (t.referenceTaskName, t.iteration) == (ref, iteration)
        assert t.scheduledTime == T0 and t.workflowInstanceId == r.wf.workflowId
        assert all(c.iteration == iteration for c in created)
        if status.terminal:
            assert t.startTime == t.endTime == T0


@pytest.mark.parametrize("type_", sorted(set(CONDUCTOR_TYPES) - {"SWITCH", "DECISION", "FORK_JOIN",
                                                                  "FORK_JOIN_DYNAMIC", "TERMINATE"}))
def test_default_routing(type_: str) -> None:
    tt = task_types.type_of(type_)
    t = Task("tid", node(type=type_), Run({"tasks": [w("a")]}).wf, type_, S.COMPLETED)
    assert tt.proceeds(t) and tt.finishes(t) is None
    if not tt.reevaluate:
        assert not tt.watches(t, t)


def test_sync_types_have_no_async_work() -> None:
    t = Task("tid", node(type="NOOP"), Run({"tasks": [w("a")]}).wf, "NOOP", S.IN_PROGRESS)
    with pytest.raises(NotImplementedError, match="NOOP has no asynchronous work"):
        asyncio.run(noop.TASK.run(t, FakeServices()))
