"""Control-flow system tasks as stories over the real HTTP API (conductor-oss test-harness style).

Each story registers a blueprint from ``tests/fixtures/blueprints`` under unique names, starts a
workflow, plays the workers, and after every step checks the task list (reference names with
``__N`` loop suffixes, task types, statuses, inputs and outputs) and the workflow's status and
output, as conductor-oss's SwitchTaskSpec, DecisionTaskSpec, ForkJoinSpec, ExclusiveJoinSpec,
DynamicForkJoinSpec, DoWhileSpec, SubWorkflowSpec and StartWorkflowSpec do.

Sections: SWITCH / DECISION, FORK_JOIN + JOIN, EXCLUSIVE_JOIN, FORK_JOIN_DYNAMIC, DYNAMIC,
DO_WHILE, SUB_WORKFLOW, START_WORKFLOW.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.scenario.harness import Story

C, S, IP = "COMPLETED", "SCHEDULED", "IN_PROGRESS"


@pytest.fixture
def story(http: httpx.Client) -> Story:
    return Story(http)


def by_ref(tasks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Latest task per reference name."""
    return {t["referenceTaskName"]: t for t in tasks}


# ============================================================================================
# SWITCH / DECISION


def test_switch_value_param_case(story: Story) -> None:
    """SWITCH value-param: the case named by the input runs; the task after the SWITCH follows it."""
    story.register("switch")
    wid = story.start("switch_value", {"kind": "a"})
    task_a, task_z = story.name("sw_task_a"), story.name("sw_task_z")
    assert story.summary(wid) == [("sw", "SWITCH", C), ("a", task_a, S)]
    sw = story.task(wid, "sw")
    assert sw["outputData"] == {"evaluationResult": ["a"], "selectedCase": "a"}
    assert sw["inputData"] == {"kind": "a", "case": "a", "hasChildren": "true"}

    polled = story.poll_and_complete("sw_task_a", {"done": "a"})
    assert polled["inputData"] == {"k": "a"}
    assert story.summary(wid) == [("sw", "SWITCH", C), ("a", task_a, C), ("z", task_z, S)]
    assert story.task(wid, "z")["inputData"] == {"case": "a"}

    story.poll_and_complete("sw_task_z", {"done": True})
    wf = story.wait_workflow(wid, C)
    assert wf["output"] == {"case": "a", "z": True}


def test_switch_value_param_default_case(story: Story) -> None:
    """SWITCH value-param: a value with no case runs the defaultCase."""
    story.register("switch")
    wid = story.start("switch_value", {"kind": "other"})
    assert story.summary(wid) == [("sw", "SWITCH", C), ("d", story.name("sw_task_d"), S)]
    assert story.task(wid, "sw")["outputData"] == {"evaluationResult": ["other"], "selectedCase": "other"}
    story.poll_and_complete("sw_task_d")
    assert story.summary(wid)[-1] == ("z", story.name("sw_task_z"), S)
    story.poll_and_complete("sw_task_z", {"done": 1})
    assert story.wait_workflow(wid, C)["output"] == {"case": "other", "z": 1}


def test_switch_value_param_stringifies_like_java(story: Story) -> None:
    """SWITCH value-param: the case is Java's ``String.valueOf`` of the input value (numbers, doubles,
    booleans, a missing value -> "null"), and such values fall to the defaultCase here."""
    story.register("switch")
    for value, case in [(1, "1"), (2.5, "2.5"), (1.0, "1.0"), (True, "true"), (None, "null")]:
        wid = story.start("switch_value", {"kind": value} if value is not None else {})
        assert story.summary(wid) == [("sw", "SWITCH", C), ("d", story.name("sw_task_d"), S)], value
        assert story.task(wid, "sw")["outputData"] == {"evaluationResult": [case], "selectedCase": case}
        story.terminate(wid)


def test_switch_explicitly_empty_case_runs_nothing(story: Story) -> None:
    """SWITCH: a case present but empty runs nothing (no fallback to defaultCase, unlike DECISION)."""
    story.register("switch")
    wid = story.start("switch_value", {"kind": "none"})
    assert story.summary(wid) == [("sw", "SWITCH", C), ("z", story.name("sw_task_z"), S)]
    sw = story.task(wid, "sw")
    assert sw["inputData"] == {"kind": "none", "case": "none"}  # no hasChildren
    assert sw["outputData"]["selectedCase"] == "none"
    story.poll_and_complete("sw_task_z", {"done": 2})
    assert story.wait_workflow(wid, C)["output"] == {"case": "none", "z": 2}


def test_switch_javascript_and_number_result(story: Story) -> None:
    """SWITCH javascript: ``$.x > 1 ? 'big' : 'small'``; a number result is stringified like Java
    (``2 / 2`` -> case "1", ``1 / 2`` -> "0.5" -> defaultCase)."""
    story.register("switch")
    wid = story.start("switch_js", {"x": 2})
    assert story.summary(wid) == [("size", "SWITCH", C), ("big", story.name("js_big"), S)]
    assert story.task(wid, "size")["outputData"] == {"evaluationResult": ["big"], "selectedCase": "big"}
    story.poll_and_complete("js_big")
    assert story.summary(wid)[2:] == [("half", "SWITCH", C), ("one", story.name("js_one"), S)]
    assert story.task(wid, "half")["outputData"] == {"evaluationResult": ["1"], "selectedCase": "1"}
    story.poll_and_complete("js_one")
    story.wait_workflow(wid, C)

    wid = story.start("switch_js", {"x": 2.0})  # a JSON double: 2.0 / 2 is still case "1"
    story.poll_and_complete("js_big")
    assert story.summary(wid)[2:] == [("half", "SWITCH", C), ("one", story.name("js_one"), S)]
    story.poll_and_complete("js_one")
    story.wait_workflow(wid, C)

    wid = story.start("switch_js", {"x": 1})
    assert story.summary(wid) == [("size", "SWITCH", C), ("small", story.name("js_small"), S)]
    story.poll_and_complete("js_small")
    assert story.summary(wid)[2:] == [("half", "SWITCH", C), ("other", story.name("js_other"), S)]
    assert story.task(wid, "half")["outputData"] == {"evaluationResult": ["0.5"], "selectedCase": "0.5"}
    story.poll_and_complete("js_other")
    story.wait_workflow(wid, C)


def test_switch_nested(story: Story) -> None:
    """A SWITCH in a SWITCH case: inner branch, then the rest of the outer case, then the outer successor."""
    story.register("switch")
    wid = story.start("switch_nested", {"outer": "x", "inner": "y"})
    assert story.summary(wid) == [("outer", "SWITCH", C), ("inner", "SWITCH", C), ("yes", story.name("nest_yes"), S)]
    assert story.task(wid, "inner")["outputData"]["selectedCase"] == "yes"
    story.poll_and_complete("nest_yes")
    assert story.summary(wid)[3:] == [("tail", story.name("nest_tail"), S)]
    story.poll_and_complete("nest_tail")
    assert story.summary(wid)[3:] == [("tail", story.name("nest_tail"), C), ("end", story.name("nest_end"), S)]
    story.poll_and_complete("nest_end")
    story.wait_workflow(wid, C)

    wid = story.start("switch_nested", {"outer": "x", "inner": "n"})
    assert story.summary(wid) == [("outer", "SWITCH", C), ("inner", "SWITCH", C), ("no", story.name("nest_no"), S)]
    story.poll_and_complete("nest_no")
    story.poll_and_complete("nest_tail")
    story.poll_and_complete("nest_end")
    story.wait_workflow(wid, C)
    assert [ref for ref, _, status in story.summary(wid) if status == C] == ["outer", "inner", "no", "tail", "end"]

    wid = story.start("switch_nested", {"outer": "q"})  # outer defaultCase is empty
    assert story.summary(wid) == [("outer", "SWITCH", C), ("end", story.name("nest_end"), S)]
    story.poll_and_complete("nest_end")
    story.wait_workflow(wid, C)


def test_switch_evaluation_error_fails_workflow(story: Story) -> None:
    """SWITCH javascript that throws: the SWITCH task is FAILED (never retried), the workflow FAILED."""
    story.register("switch")
    wid = story.start("switch_error", {"x": 1})
    wf = story.wait_workflow(wid, "FAILED")
    assert story.summary(wid) == [("bad", "SWITCH", "FAILED")]
    bad = story.task(wid, "bad")
    assert bad["reasonForIncompletion"], bad
    assert bad["reasonForIncompletion"] in wf["reasonForIncompletion"]
    assert wf["failedReferenceTaskNames"] == ["bad"]
    assert story.poll("err_after", timeout_ms=0) is None


def test_decision_case_value_param(story: Story) -> None:
    """Legacy DECISION on caseValueParam: output ``caseOutput``; an empty case falls back to defaultCase."""
    story.register("decision")
    wid = story.start("decision_param", {"kind": "a"})
    assert story.summary(wid) == [("dec", "DECISION", C), ("a", story.name("dec_task_a"), S)]
    dec = story.task(wid, "dec")
    assert dec["outputData"] == {"caseOutput": ["a"]}
    assert dec["inputData"]["case"] == "a"
    story.poll_and_complete("dec_task_a")
    assert story.summary(wid)[2:] == [("z", story.name("dec_task_z"), S)]
    story.poll_and_complete("dec_task_z")
    story.wait_workflow(wid, C)

    wid = story.start("decision_param", {"kind": "empty"})
    assert story.summary(wid) == [("dec", "DECISION", C), ("d", story.name("dec_task_d"), S)]
    assert story.task(wid, "dec")["outputData"] == {"caseOutput": ["empty"]}
    story.poll_and_complete("dec_task_d")
    story.poll_and_complete("dec_task_z")
    story.wait_workflow(wid, C)


def test_decision_case_expression(story: Story) -> None:
    """Legacy DECISION on a caseExpression evaluated over the task input."""
    story.register("decision")
    wid = story.start("decision_expr", {"x": 5})
    assert story.summary(wid) == [("dec", "DECISION", C), ("big", story.name("dec_big"), S)]
    assert story.task(wid, "dec")["outputData"] == {"caseOutput": ["big"]}
    story.poll_and_complete("dec_big", {"r": 1})
    assert story.wait_workflow(wid, C)["output"] == {"r": 1}

    wid = story.start("decision_expr", {"x": 0})
    assert story.summary(wid) == [("dec", "DECISION", C), ("small", story.name("dec_small"), S)]
    story.poll_and_complete("dec_small")
    story.wait_workflow(wid, C)


def test_decision_expression_error_fails_workflow(story: Story) -> None:
    """Legacy DECISION whose caseExpression throws: the workflow FAILED "Error while evaluating script: ..."
    with no task (DecisionTaskMapper throws while mapping)."""
    story.register("decision")
    wid = story.start("decision_bad", {"x": 1})
    wf = story.wait_workflow(wid, "FAILED")
    assert wf["reasonForIncompletion"].startswith("Error while evaluating script: $.x.y.z"), wf
    assert wf["tasks"] == []


# ============================================================================================
# FORK_JOIN + JOIN


def test_fork_join_two_branches(story: Story) -> None:
    """FORK_JOIN with branches (a1 -> a2) and (b1): the JOIN gathers ``{ref: output}`` of its joinOn;
    the task after the JOIN is scheduled only when both branches are done."""
    story.register("fork_join")
    a1, a2, b1, after = (story.name(n) for n in ("fj_a1", "fj_a2", "fj_b1", "fj_after"))
    wid = story.start("fork_basic")
    assert story.summary(wid) == [("fork", "FORK", C), ("a1", a1, S), ("b1", b1, S), ("join", "JOIN", IP)]
    assert story.task(wid, "join")["inputData"]["joinOn"] == ["a2", "b1"]

    story.poll_and_complete("fj_b1", {"b": 1})
    assert story.summary(wid) == [("fork", "FORK", C), ("a1", a1, S), ("b1", b1, C), ("join", "JOIN", IP)]

    story.poll_and_complete("fj_a1", {"v": 7})
    assert story.summary(wid) == [
        ("fork", "FORK", C), ("a1", a1, C), ("b1", b1, C), ("join", "JOIN", IP), ("a2", a2, S)
    ]  # fmt: skip
    polled = story.poll_and_complete("fj_a2", {"a": 2})
    assert polled["inputData"] == {"prev": 7}

    joined = {"a2": {"a": 2}, "b1": {"b": 1}}
    assert story.summary(wid)[3:] == [("join", "JOIN", C), ("a2", a2, C), ("after", after, S)]
    assert story.task(wid, "join")["outputData"] == joined
    assert story.task(wid, "after")["inputData"] == {"joined": joined}
    story.poll_and_complete("fj_after")
    assert story.wait_workflow(wid, C)["output"] == {"joined": joined}


def test_fork_join_branch_task_retried(story: Story) -> None:
    """A branch task FAILED with retryCount 1 is retried (a new task; the old one marked ``retried``)
    and the JOIN completes with the retry's output."""
    story.register("fork_join")
    a1, flaky = story.name("fj_a1"), story.name("fj_flaky")
    wid = story.start("fork_retry")
    assert story.summary(wid) == [("fork", "FORK", C), ("a1", a1, S), ("b1", flaky, S), ("join", "JOIN", IP)]

    first = story.poll_and_fail("fj_flaky", "flake")
    tasks = story.tasks(wid)
    assert [(t["referenceTaskName"], t["status"], t["retryCount"]) for t in tasks] == [
        ("fork", C, 0), ("a1", S, 0), ("b1", "FAILED", 0), ("join", IP, 0), ("b1", S, 1)
    ]  # fmt: skip
    assert tasks[2]["taskId"] == first["taskId"] and tasks[2]["retried"] is True
    assert tasks[2]["reasonForIncompletion"] == "flake"
    assert tasks[4]["retriedTaskId"] == first["taskId"] and tasks[4]["inputData"] == {"p": 1}
    assert story.workflow(wid)["status"] == "RUNNING"

    second = story.poll_and_complete("fj_flaky", {"ok": True})
    assert second["taskId"] == tasks[4]["taskId"] and second["retryCount"] == 1
    assert story.task(wid, "join")["status"] == IP
    story.poll_and_complete("fj_a1", {"a": 1})
    wf = story.wait_workflow(wid, C)
    assert by_ref(wf["tasks"])["join"]["outputData"] == {"a1": {"a": 1}, "b1": {"ok": True}}


def test_fork_join_optional_branch_failure(story: Story) -> None:
    """An optional branch task that fails becomes COMPLETED_WITH_ERRORS; the JOIN ends
    COMPLETED_WITH_ERRORS naming it, and the workflow goes on and completes."""
    story.register("fork_join")
    a1, b1, after = story.name("fj_a1"), story.name("fj_b1"), story.name("fj_after")
    wid = story.start("fork_optional")
    failed = story.poll_and_fail("fj_b1", "optional boom")
    assert story.summary(wid) == [
        ("fork", "FORK", C), ("a1", a1, S), ("b1", b1, "COMPLETED_WITH_ERRORS"), ("join", "JOIN", IP)
    ]  # fmt: skip
    story.poll_and_complete("fj_a1", {"a": 1})
    assert story.summary(wid)[3:] == [("join", "JOIN", "COMPLETED_WITH_ERRORS"), ("after", after, S)]
    join = story.task(wid, "join")
    assert join["reasonForIncompletion"] == f"{b1}/{failed['taskId']} completed with errors"
    assert join["outputData"] == {"a1": {"a": 1}}
    story.poll_and_complete("fj_after")
    story.wait_workflow(wid, C)


def test_fork_join_non_optional_failure_fails_workflow(story: Story) -> None:
    """A non-optional branch task failing without retries fails the workflow at once; the JOIN and
    the other open branch tasks are CANCELED (conductor-oss ForkJoinSpec "fork join failure flow")."""
    story.register("fork_join")
    a1, a2, b1 = story.name("fj_a1"), story.name("fj_a2"), story.name("fj_b1")
    wid = story.start("fork_fail")
    story.poll_and_complete("fj_a1")
    story.poll_and_fail("fj_b1", "branch boom")
    wf = story.wait_workflow(wid, "FAILED")
    assert story.summary(wid) == [
        ("fork", "FORK", C), ("a1", a1, C), ("b1", b1, "FAILED"), ("join", "JOIN", "CANCELED"), ("a2", a2, "CANCELED")
    ]  # fmt: skip
    assert "branch boom" in wf["reasonForIncompletion"]
    assert wf["failedReferenceTaskNames"] == ["b1"]
    assert story.poll("fj_a2", timeout_ms=0) is None


def test_fork_join_permissive_failure_fails_join(story: Story) -> None:
    """Permissive branch tasks: a failure lets the other branch finish; then the JOIN is FAILED
    with the failed task's reason and the workflow FAILED (ForkJoinSpec permissive flow)."""
    story.register("fork_join")
    a1, b1 = story.name("fj_a1"), story.name("fj_b1")
    wid = story.start("fork_permissive")
    story.poll_and_fail("fj_a1", "permissive boom")
    assert story.summary(wid) == [("fork", "FORK", C), ("a1", a1, "FAILED"), ("b1", b1, S), ("join", "JOIN", IP)]
    assert story.workflow(wid)["status"] == "RUNNING"
    story.poll_and_complete("fj_b1", {"b": 1})
    wf = story.wait_workflow(wid, "FAILED")
    assert story.summary(wid) == [("fork", "FORK", C), ("a1", a1, "FAILED"), ("b1", b1, C), ("join", "JOIN", "FAILED")]
    join = story.task(wid, "join")
    assert join["reasonForIncompletion"] == "permissive boom"
    assert join["outputData"] == {}  # conductor-oss stops at the first failed ref (a1) before copying b1
    assert "permissive boom" in wf["reasonForIncompletion"]


def test_fork_in_fork(story: Story) -> None:
    """A fork/join nested in a fork branch: the inner JOIN gathers c1/c2, its successor a2 runs, and the
    outer JOIN waits on a2 and b1."""
    story.register("fork_join")
    c1, c2, b1, a2, after = (story.name(n) for n in ("fj_c1", "fj_c2", "fj_b1", "fj_a2", "fj_after"))
    wid = story.start("fork_nested")
    assert story.summary(wid) == [
        ("outer", "FORK", C), ("inner", "FORK", C), ("c1", c1, S), ("c2", c2, S), ("inner_join", "JOIN", IP),
        ("b1", b1, S), ("outer_join", "JOIN", IP),
    ]  # fmt: skip
    story.poll_and_complete("fj_c1", {"c": 1})
    story.poll_and_complete("fj_b1", {"b": 1})
    assert by_ref(story.tasks(wid))["inner_join"]["status"] == IP
    story.poll_and_complete("fj_c2", {"c": 2})
    tasks = by_ref(story.tasks(wid))
    assert tasks["inner_join"]["status"] == C
    assert tasks["inner_join"]["outputData"] == {"c1": {"c": 1}, "c2": {"c": 2}}
    assert tasks["outer_join"]["status"] == IP
    assert story.summary(wid)[-1] == ("a2", a2, S)
    polled = story.poll_and_complete("fj_a2", {"a": 2})
    assert polled["inputData"] == {"inner": {"c1": {"c": 1}, "c2": {"c": 2}}}
    tasks = by_ref(story.tasks(wid))
    assert tasks["outer_join"]["status"] == C
    assert tasks["outer_join"]["outputData"] == {"a2": {"a": 2}, "b1": {"b": 1}}
    assert story.summary(wid)[-1] == ("after", after, S)
    story.poll_and_complete("fj_after")
    story.wait_workflow(wid, C)


# ============================================================================================
# EXCLUSIVE_JOIN


def test_exclusive_join_takes_the_branch_that_ran(story: Story) -> None:
    """EXCLUSIVE_JOIN after nested SWITCHes: both true -> the join's output is task3's output."""
    story.register("exclusive_join")
    t = story.name
    wid = story.start("exclusive_join", {"payload": "p", "s1": "true", "s2": "true"})
    assert story.summary(wid) == [("task1", t("ej_task1"), S)]
    story.poll_and_complete("ej_task1", {"from": "task1"})
    assert story.summary(wid)[1:] == [("switch1", "SWITCH", C), ("task2", t("ej_task2"), S)]
    story.poll_and_complete("ej_task2", {"from": "task2"})
    assert story.summary(wid)[3:] == [("switch2", "SWITCH", C), ("task3", t("ej_task3"), S)]
    story.poll_and_complete("ej_task3", {"from": "task3"})
    wf = story.wait_workflow(wid, C)
    assert story.summary(wid)[5:] == [("exclusiveJoin", "EXCLUSIVE_JOIN", C)]
    assert story.task(wid, "exclusiveJoin")["outputData"] == {"from": "task3"}
    assert wf["output"] == {"joined": {"from": "task3"}}


def test_exclusive_join_default_tasks(story: Story) -> None:
    """EXCLUSIVE_JOIN: when no joinOn task ran, the first defaultExclusiveJoinTask that ran gives the
    output (task4 when s1 is false; task1 when no case of s1 matched)."""
    story.register("exclusive_join")
    t = story.name
    wid = story.start("exclusive_join", {"s1": "false"})
    story.poll_and_complete("ej_task1", {"from": "task1"})
    story.poll_and_complete("ej_task4", {"from": "task4"})
    wf = story.wait_workflow(wid, C)
    assert story.summary(wid) == [
        ("task1", t("ej_task1"), C), ("switch1", "SWITCH", C), ("task4", t("ej_task4"), C),
        ("switch3", "SWITCH", C), ("exclusiveJoin", "EXCLUSIVE_JOIN", C),
    ]  # fmt: skip
    assert story.task(wid, "switch3")["outputData"]["selectedCase"] == "null"
    assert wf["output"] == {"joined": {"from": "task4"}}

    wid = story.start("exclusive_join", {"s1": "maybe"})
    story.poll_and_complete("ej_task1", {"from": "task1"})
    wf = story.wait_workflow(wid, C)
    assert story.summary(wid) == [
        ("task1", t("ej_task1"), C), ("switch1", "SWITCH", C), ("exclusiveJoin", "EXCLUSIVE_JOIN", C)
    ]  # fmt: skip
    assert wf["output"] == {"joined": {"from": "task1"}}


# ============================================================================================
# FORK_JOIN_DYNAMIC


def test_dynamic_fork_tasks_param(story: Story) -> None:
    """FORK_JOIN_DYNAMIC with dynamicForkTasksParam + dynamicForkTasksInputParamName: three branches,
    a FORK task, a JOIN waiting on the dynamic refs, the JOIN output, then the next task."""
    story.register("dynamic_fork")
    worker, after = story.name("df_worker"), story.name("df_after")
    refs = ["d1", "d2", "d3"]
    wid = story.start(
        "dyn_fork_param",
        {
            "dynamicTasks": [{"name": worker, "taskReferenceName": r, "type": "SIMPLE"} for r in refs],
            "dynamicTasksInput": {r: {"k": i} for i, r in enumerate(refs, 1)},
        },
    )
    assert story.summary(wid) == [
        ("dyn_fork", "FORK", C), ("d1", worker, S), ("d2", worker, S), ("d3", worker, S), ("dyn_join", "JOIN", IP)
    ]  # fmt: skip
    tasks = by_ref(story.tasks(wid))
    assert tasks["dyn_fork"]["inputData"]["forkedTasks"] == refs
    assert tasks["dyn_join"]["inputData"] == {"note": "joined", "joinOn": refs}
    assert [tasks[r]["inputData"] for r in refs] == [{"k": 1}, {"k": 2}, {"k": 3}]

    for _ in refs:
        task = story.poll("df_worker")
        assert task is not None
        story.update(task, C, {"r": task["inputData"]["k"] * 10})
    joined = {"d1": {"r": 10}, "d2": {"r": 20}, "d3": {"r": 30}}
    assert story.summary(wid)[4:] == [("dyn_join", "JOIN", C), ("after", after, S)]
    assert story.task(wid, "dyn_join")["outputData"] == joined
    assert story.task(wid, "after")["inputData"] == {"joined": joined}
    story.poll_and_complete("df_after")
    assert story.wait_workflow(wid, C)["output"] == {"joined": joined}


def test_dynamic_fork_simple_form(story: Story) -> None:
    """FORK_JOIN_DYNAMIC simple form: ``forkTaskName`` + ``forkTaskInputs``: refs ``_<name>_<i>``,
    ``__index`` in the inputs, a non-map element becomes ``{"input": element}``."""
    story.register("dynamic_fork")
    item = story.name("df_item")
    refs = [f"_{item}_{i}" for i in range(3)]
    wid = story.start("dyn_fork_simple", {"items": [{"n": 1}, {"n": 2}, 7]})
    assert story.summary(wid) == [("dyn_fork", "FORK", C), *[(r, item, S) for r in refs], ("dyn_join", "JOIN", IP)]
    tasks = by_ref(story.tasks(wid))
    assert [tasks[r]["inputData"] for r in refs] == [
        {"n": 1, "__index": 0}, {"n": 2, "__index": 1}, {"input": 7, "__index": 2}
    ]  # fmt: skip
    assert tasks["dyn_join"]["inputData"]["joinOn"] == refs
    assert tasks["dyn_fork"]["inputData"]["forkedTasks"] == refs

    for _ in refs:
        task = story.poll("df_item")
        assert task is not None
        story.update(task, C, {"i": task["inputData"]["__index"]})
    joined = {r: {"i": i} for i, r in enumerate(refs)}
    assert story.summary(wid)[4:] == [("dyn_join", "JOIN", C), ("after", story.name("df_after"), S)]
    assert story.task(wid, "dyn_join")["outputData"] == joined
    story.poll_and_complete("df_after")
    story.wait_workflow(wid, C)


@pytest.mark.parametrize("form", ["simple", "param"])
def test_dynamic_fork_zero_branches(story: Story, form: str) -> None:
    """FORK_JOIN_DYNAMIC over an empty list: the JOIN completes at once and the workflow goes on."""
    story.register("dynamic_fork")
    if form == "simple":
        wid = story.start("dyn_fork_simple", {"items": []})
    else:
        wid = story.start("dyn_fork_param", {"dynamicTasks": [], "dynamicTasksInput": {}})
    after = story.name("df_after")
    tasks = story.wait_tasks(wid, lambda ts: len(ts) == 3, timeout=5, what="the JOIN completes")
    assert [(t["referenceTaskName"], t["taskType"], t["status"]) for t in tasks] == [
        ("dyn_fork", "FORK", C), ("dyn_join", "JOIN", C), ("after", after, S)
    ]  # fmt: skip
    assert tasks[1]["inputData"]["joinOn"] == []
    assert tasks[1]["outputData"] == {}
    story.poll_and_complete("df_after")
    story.wait_workflow(wid, C)


@pytest.mark.parametrize(
    ("workflow_input", "message"),
    [
        (
            {"dynamicTasks": "oops", "dynamicTasksInput": {}},
            "Input 'dynamicTasks' is invalid. Cannot deserialize a list of Workflow Tasks from 'oops'",
        ),
        (
            {"dynamicTasks": [{"name": "x", "type": "SIMPLE"}], "dynamicTasksInput": {}},
            "Input 'dynamicTasks' is invalid. Cannot deserialize a list of Workflow Tasks from ",
        ),
        (
            {"dynamicTasks": [{"name": "x", "taskReferenceName": "d1"}]},
            "Input to the dynamically forked tasks is not a map -> expecting a map of K,V  but found null",
        ),
        (
            {"dynamicTasks": [{"name": "x", "taskReferenceName": "d1"}], "dynamicTasksInput": {"d1": "v1"}},
            "Tasks could not be dynamically forked due to invalid input: ",
        ),
    ],
    ids=["tasks-not-a-list", "task-without-ref", "inputs-missing", "input-not-a-map"],
)
def test_dynamic_fork_invalid_input_fails_workflow(story: Story, workflow_input: dict[str, Any], message: str) -> None:
    """FORK_JOIN_DYNAMIC with invalid branch lists / inputs: the workflow FAILED with conductor-oss's
    message and no task (DynamicForkJoinSpec "start with invalid input")."""
    story.register("dynamic_fork")
    wid = story.start("dyn_fork_param", workflow_input)
    wf = story.wait_workflow(wid, "FAILED")
    assert wf["reasonForIncompletion"].startswith(message), wf["reasonForIncompletion"]
    assert wf["tasks"] == []


def test_dynamic_fork_of_sub_workflows(story: Story) -> None:
    """FORK_JOIN_DYNAMIC with ``forkTaskWorkflow``: one SUB_WORKFLOW per element (refs
    ``_<forkRef>_<i>``), children run worker tasks with the element as input; the JOIN gathers them."""
    names = story.register("dynamic_fork")
    refs = ["_dyn_fork_0", "_dyn_fork_1"]
    wid = story.start("dyn_fork_sub", {"items": [{"n": 1}, {"n": 2}]})
    assert story.summary(wid) == [
        ("dyn_fork", "FORK", C), (refs[0], "SUB_WORKFLOW", IP), (refs[1], "SUB_WORKFLOW", IP), ("dyn_join", "JOIN", IP)
    ]  # fmt: skip
    tasks = by_ref(story.tasks(wid))
    child_ids = [tasks[r]["subWorkflowId"] for r in refs]
    for i, (r, cid) in enumerate(zip(refs, child_ids, strict=True)):
        assert tasks[r]["inputData"]["subWorkflowName"] == names["df_child"]
        assert tasks[r]["inputData"]["subWorkflowVersion"] == 1
        child = story.workflow(cid)
        assert child["status"] == "RUNNING" and child["parentWorkflowId"] == wid
        assert child["input"] == {"n": i + 1, "__index": i}

    for _ in refs:
        task = story.poll("df_child_task")
        assert task is not None
        story.update(task, C, {"r": task["inputData"]["n"] * 100})
    wf = story.wait_workflow(wid, C)
    joined = {
        refs[0]: {"r": 100, "index": 0, "subWorkflowId": child_ids[0]},
        refs[1]: {"r": 200, "index": 1, "subWorkflowId": child_ids[1]},
    }
    assert by_ref(wf["tasks"])["dyn_join"]["outputData"] == joined
    assert wf["output"] == {"joined": joined}
    for cid in child_ids:
        assert story.workflow(cid)["status"] == C


# ============================================================================================
# DYNAMIC


def test_dynamic_task_name_from_input(story: Story) -> None:
    """DYNAMIC: the task name comes from ``dynamicTaskNameParam``; the worker for that name polls it."""
    story.register("dynamic")
    target = story.name("dyn_target")
    wid = story.start("dynamic", {"task_name": target, "v": 3})
    assert story.summary(wid) == [("dyn", target, S)]
    dyn = story.task(wid, "dyn")
    assert dyn["taskDefName"] == target
    assert dyn["inputData"] == {"taskToExecute": target, "v": 3}
    polled = story.poll_and_complete("dyn_target", {"r": 9})
    assert polled["taskId"] == dyn["taskId"]
    assert story.summary(wid) == [("dyn", target, C), ("after", story.name("dyn_after"), S)]
    assert story.task(wid, "after")["inputData"] == {"prev": 9}
    story.poll_and_complete("dyn_after")
    story.wait_workflow(wid, C)


def test_dynamic_missing_name_fails_workflow(story: Story) -> None:
    """DYNAMIC without the name input: the workflow FAILED "Cannot map a dynamic task ..."."""
    story.register("dynamic")
    wid = story.start("dynamic", {"v": 3})
    wf = story.wait_workflow(wid, "FAILED")
    assert wf["reasonForIncompletion"].startswith(
        "Cannot map a dynamic task based on the parameter and input. Parameter= taskToExecute, input= "
    ), wf["reasonForIncompletion"]
    assert wf["tasks"] == []


# ============================================================================================
# DO_WHILE


@pytest.mark.parametrize("workflow", ["loop_if", "loop_dot"])
def test_do_while_three_iterations(story: Story, workflow: str) -> None:
    """DO_WHILE, 3 iterations of SIMPLE + INLINE, with ``if ($.loop['iteration'] < 3) {true;} else
    {false;}`` and with ``$.loop.iteration < 3``: refs ``x__N``/``calc__N``, ``iteration`` on tasks,
    DO_WHILE output ``iteration`` and ``"N": {baseRef: output}``; expressions after the loop read
    the latest iteration."""
    story.register("do_while")
    x, after = story.name("dw_task"), story.name("dw_after")
    wid = story.start(workflow)
    assert story.summary(wid) == [("loop", "DO_WHILE", IP), ("x__1", x, S)]
    tasks = by_ref(story.tasks(wid))
    assert tasks["loop"]["iteration"] == 1 and tasks["x__1"]["iteration"] == 1
    assert tasks["loop"]["outputData"]["iteration"] == 1

    expected: list[tuple[str, str, str]] = [("loop", "DO_WHILE", IP)]
    for n in (1, 2, 3):
        polled = story.poll_and_complete("dw_task", {"n": n})
        assert polled["referenceTaskName"] == f"x__{n}" and polled["iteration"] == n
        assert polled["inputData"] == {"i": n}
        expected += [(f"x__{n}", x, C), (f"calc__{n}", "INLINE", C)]
        tasks = by_ref(story.tasks(wid))
        assert tasks[f"calc__{n}"]["outputData"] == {"result": n * 10}
        assert tasks[f"calc__{n}"]["iteration"] == n
        loop = tasks["loop"]
        assert loop["outputData"][str(n)] == {"x": {"n": n}, "calc": {"result": n * 10}}
        if n < 3:
            assert story.summary(wid) == [*expected, (f"x__{n + 1}", x, S)]
            assert loop["iteration"] == n + 1 and loop["outputData"]["iteration"] == n + 1

    expected[0] = ("loop", "DO_WHILE", C)
    assert story.summary(wid) == [*expected, ("after", after, S)]
    loop = story.task(wid, "loop")
    assert loop["outputData"] == {
        "iteration": 3,
        **{str(n): {"x": {"n": n}, "calc": {"result": n * 10}} for n in (1, 2, 3)},
    }
    assert story.task(wid, "after")["inputData"] == {"lastN": 3, "lastCalc": 30}
    story.poll_and_complete("dw_after")
    assert story.wait_workflow(wid, C)["output"] == {"iterations": 3, "lastCalc": 30}


def test_do_while_false_condition_runs_body_once(story: Story) -> None:
    """DO_WHILE whose condition is false from the start: the body still runs once."""
    story.register("do_while")
    wid = story.start("loop_once")
    assert story.summary(wid) == [("loop", "DO_WHILE", IP), ("x__1", story.name("dw_task"), S)]
    story.poll_and_complete("dw_task", {"n": 1})
    assert story.summary(wid) == [
        ("loop", "DO_WHILE", C), ("x__1", story.name("dw_task"), C), ("after", story.name("dw_after"), S)
    ]  # fmt: skip
    assert story.task(wid, "loop")["outputData"] == {"iteration": 1, "1": {"x": {"n": 1}}}
    story.poll_and_complete("dw_after")
    story.wait_workflow(wid, C)


def test_do_while_task_failure_fails_workflow(story: Story) -> None:
    """A body task failing without retries fails the workflow; the DO_WHILE is CANCELED with the other
    open tasks (conductor-oss DoWhileSpec "retrying a failed do while workflow")."""
    story.register("do_while")
    x = story.name("dw_task")
    wid = story.start("loop_fail")
    story.poll_and_complete("dw_task", {"n": 1})
    failed = story.poll_and_fail("dw_task", "loop boom")
    assert failed["referenceTaskName"] == "x__2"
    wf = story.wait_workflow(wid, "FAILED")
    assert story.summary(wid) == [("loop", "DO_WHILE", "CANCELED"), ("x__1", x, C), ("x__2", x, "FAILED")]
    assert "loop boom" in wf["reasonForIncompletion"]
    assert wf["failedReferenceTaskNames"] == ["x__2"]
    assert story.poll("dw_after", timeout_ms=0) is None


def test_do_while_permissive_task_failure_fails_loop(story: Story) -> None:
    """A permissive body task failing: the iteration goes on to the next body task, the DO_WHILE is FAILED
    with the task's reason, then the workflow FAILED."""
    story.register("do_while")
    x, tail = story.name("dw_task"), story.name("dw_tail")
    wid = story.start("loop_permissive")
    story.poll_and_fail("dw_task", "loop boom")
    wf = story.wait_workflow(wid, "FAILED")
    assert story.summary(wid) == [("loop", "DO_WHILE", "FAILED"), ("x__1", x, "FAILED"), ("tail__1", tail, "CANCELED")]
    loop = story.task(wid, "loop")
    assert loop["reasonForIncompletion"].strip() == "loop boom"
    assert loop["outputData"] == {"iteration": 1, "1": {"x": {}}}
    assert "loop boom" in wf["reasonForIncompletion"]


def test_do_while_retried_task_does_not_fail_loop(story: Story) -> None:
    """A body task retried after a failure (retryCount 1): the loop looks at the latest attempt and goes on."""
    story.register("do_while")
    flaky = story.name("dw_flaky")
    wid = story.start("loop_retry")
    story.poll_and_fail("dw_flaky", "flake")
    tasks = story.tasks(wid)
    assert [(t["referenceTaskName"], t["status"], t["retryCount"]) for t in tasks] == [
        ("loop", IP, 0), ("x__1", "FAILED", 0), ("x__1", S, 1)
    ]  # fmt: skip
    assert tasks[2]["iteration"] == 1
    story.poll_and_complete("dw_flaky", {"n": 1})
    assert story.summary(wid) == [
        ("loop", "DO_WHILE", IP), ("x__1", flaky, "FAILED"), ("x__1", flaky, C), ("x__2", flaky, S)
    ]  # fmt: skip
    story.poll_and_complete("dw_flaky", {"n": 2})
    wf = story.wait_workflow(wid, C)
    assert by_ref(wf["tasks"])["loop"]["outputData"] == {"iteration": 2, "1": {"x": {"n": 1}}, "2": {"x": {"n": 2}}}


def test_do_while_condition_reads_inputs_and_body_outputs(story: Story) -> None:
    """The loopCondition sees the DO_WHILE's evaluated inputParameters (``$.max``) and the latest output
    of each body task by base ref (``$.x.n``)."""
    story.register("do_while")
    x = story.name("dw_task")
    wid = story.start("loop_input", {"max": 5})
    assert story.task(wid, "loop")["inputData"] == {"max": 5}
    story.poll_and_complete("dw_task", {"n": "go"})
    assert story.summary(wid)[-1] == ("x__2", x, S)
    story.poll_and_complete("dw_task", {"n": "stop"})
    wf = story.wait_workflow(wid, C)
    assert story.summary(wid) == [("loop", "DO_WHILE", C), ("x__1", x, C), ("x__2", x, C)]
    assert by_ref(wf["tasks"])["loop"]["outputData"]["iteration"] == 2

    wid = story.start("loop_input", {"max": 1})
    story.poll_and_complete("dw_task", {"n": "go"})
    story.wait_workflow(wid, C)
    assert story.summary(wid) == [("loop", "DO_WHILE", C), ("x__1", x, C)]


def test_do_while_keep_last_n(story: Story) -> None:
    """DO_WHILE ``keepLastN: 2`` over 4 iterations: tasks and output maps of older iterations are removed."""
    story.register("do_while")
    x = story.name("dw_task")
    wid = story.start("loop_keep")
    story.poll_and_complete("dw_task", {"n": 1})
    story.poll_and_complete("dw_task", {"n": 2})
    assert story.summary(wid) == [("loop", "DO_WHILE", IP), ("x__1", x, C), ("x__2", x, C), ("x__3", x, S)]
    story.poll_and_complete("dw_task", {"n": 3})
    assert story.summary(wid) == [("loop", "DO_WHILE", IP), ("x__2", x, C), ("x__3", x, C), ("x__4", x, S)]
    assert story.task(wid, "loop")["outputData"] == {"iteration": 4, "2": {"x": {"n": 2}}, "3": {"x": {"n": 3}}}
    story.poll_and_complete("dw_task", {"n": 4})
    wf = story.wait_workflow(wid, C)
    assert story.summary(wid) == [("loop", "DO_WHILE", C), ("x__3", x, C), ("x__4", x, C)]
    loop = by_ref(wf["tasks"])["loop"]
    assert loop["outputData"] == {"iteration": 4, "3": {"x": {"n": 3}}, "4": {"x": {"n": 4}}}
    assert loop["iteration"] == 4


def test_do_while_items(story: Story) -> None:
    """DO_WHILE over ``items``: one iteration per element, ``${loop.output.loopItem}`` /
    ``loopIndex`` visible to the body; output ``loopIndex``/``loopItem`` of the last element."""
    story.register("do_while")
    x = story.name("dw_task")
    wid = story.start("loop_items", {"items": ["a", "b", "c"]})
    assert story.summary(wid) == [("loop", "DO_WHILE", IP), ("x__1", x, S)]
    for i, item in enumerate(["a", "b", "c"]):
        polled = story.poll_and_complete("dw_task", {"seen": item})
        assert polled["referenceTaskName"] == f"x__{i + 1}"
        assert polled["inputData"] == {"item": item, "index": i}
    assert story.summary(wid)[-2:] == [("x__3", x, C), ("after", story.name("dw_after"), S)]
    loop = story.task(wid, "loop")
    assert loop["status"] == C
    assert loop["outputData"] == {
        "iteration": 3, "loopIndex": 2, "loopItem": "c",
        "1": {"x": {"seen": "a"}}, "2": {"x": {"seen": "b"}}, "3": {"x": {"seen": "c"}},
    }  # fmt: skip
    assert story.task(wid, "after")["inputData"] == {"last": "c"}
    story.poll_and_complete("dw_after")
    story.wait_workflow(wid, C)


def test_do_while_empty_items(story: Story) -> None:
    """DO_WHILE over an empty ``items`` list: COMPLETED with iteration 0, the body never scheduled."""
    story.register("do_while")
    wid = story.start("loop_items", {"items": []})
    tasks = story.wait_tasks(wid, lambda ts: len(ts) == 2, timeout=5, what="the loop completes")
    assert [(t["referenceTaskName"], t["status"]) for t in tasks] == [("loop", C), ("after", S)]
    assert tasks[0]["outputData"] == {"iteration": 0}
    assert story.poll("dw_task", timeout_ms=0) is None
    story.poll_and_complete("dw_after")
    story.wait_workflow(wid, C)


def test_do_while_switch_in_loop(story: Story) -> None:
    """A SWITCH inside the loop picks a branch per iteration (odd, then even); the loop body's next task
    follows the chosen branch."""
    story.register("do_while")
    odd, even, tail = story.name("dw_odd"), story.name("dw_even"), story.name("dw_tail")
    wid = story.start("loop_switch")
    assert story.summary(wid) == [("loop", "DO_WHILE", IP), ("s__1", "SWITCH", C), ("o__1", odd, S)]
    assert story.task(wid, "s__1")["outputData"]["selectedCase"] == "odd"
    story.poll_and_complete("dw_odd", {"odd": 1})
    assert story.summary(wid)[3:] == [("tail__1", tail, S)]
    story.poll_and_complete("dw_tail", {"t": 1})
    assert story.summary(wid)[1:] == [
        ("s__1", "SWITCH", C), ("o__1", odd, C), ("tail__1", tail, C), ("s__2", "SWITCH", C), ("e__2", even, S)
    ]  # fmt: skip
    assert story.task(wid, "s__2")["outputData"]["selectedCase"] == "even"
    assert story.task(wid, "s__2")["iteration"] == 2
    story.poll_and_complete("dw_even", {"even": 2})
    story.poll_and_complete("dw_tail", {"t": 2})
    wf = story.wait_workflow(wid, C)
    out = by_ref(wf["tasks"])["loop"]["outputData"]
    assert out["iteration"] == 2
    assert out["1"]["o"] == {"odd": 1} and out["1"]["tail"] == {"t": 1} and "e" not in out["1"]
    assert out["2"]["e"] == {"even": 2} and out["2"]["tail"] == {"t": 2} and "o" not in out["2"]
    assert out["2"]["s"]["selectedCase"] == "even"


def test_do_while_fork_in_loop(story: Story) -> None:
    """A fork/join inside the loop: ``j__N`` waits on ``p__N``/``q__N`` (joinOn stays unsuffixed)."""
    story.register("do_while")
    p, q = story.name("dw_p"), story.name("dw_q")
    wid = story.start("loop_fork")
    assert story.summary(wid) == [
        ("loop", "DO_WHILE", IP), ("f__1", "FORK", C), ("p__1", p, S), ("q__1", q, S), ("j__1", "JOIN", IP)
    ]  # fmt: skip
    assert story.task(wid, "j__1")["inputData"]["joinOn"] == ["p", "q"]
    story.poll_and_complete("dw_p", {"p": 1})
    assert story.task(wid, "j__1")["status"] == IP
    story.poll_and_complete("dw_q", {"q": 1})
    assert story.summary(wid)[4:] == [
        ("j__1", "JOIN", C), ("f__2", "FORK", C), ("p__2", p, S), ("q__2", q, S), ("j__2", "JOIN", IP)
    ]  # fmt: skip
    assert story.task(wid, "j__1")["outputData"] == {"p__1": {"p": 1}, "q__1": {"q": 1}}
    story.poll_and_complete("dw_p", {"p": 2})
    story.poll_and_complete("dw_q", {"q": 2})
    wf = story.wait_workflow(wid, C)
    tasks = by_ref(wf["tasks"])
    assert tasks["j__2"]["outputData"] == {"p__2": {"p": 2}, "q__2": {"q": 2}}
    out = tasks["loop"]["outputData"]
    assert out["iteration"] == 2
    assert out["2"]["p"] == {"p": 2} and out["2"]["j"] == {"p__2": {"p": 2}, "q__2": {"q": 2}}


def test_do_while_loop_in_fork(story: Story) -> None:
    """A DO_WHILE as a fork branch: the JOIN waits for the loop, not for its first iteration."""
    story.register("do_while")
    task, b = story.name("dw_task"), story.name("dw_b")
    wid = story.start("fork_loop")
    assert story.summary(wid) == [
        ("f", "FORK", C), ("inner_loop", "DO_WHILE", IP), ("b", b, S), ("j", "JOIN", IP), ("lt__1", task, S)
    ]  # fmt: skip
    story.poll_and_complete("dw_b", {"b": 1})
    story.poll_and_complete("dw_task", {"n": 1})
    tasks = by_ref(story.tasks(wid))
    assert tasks["j"]["status"] == IP and tasks["inner_loop"]["status"] == IP
    assert tasks["lt__2"]["status"] == S
    story.poll_and_complete("dw_task", {"n": 2})
    tasks = by_ref(story.tasks(wid))
    assert tasks["inner_loop"]["status"] == C
    assert tasks["j"]["status"] == C
    assert tasks["j"]["outputData"] == {
        "inner_loop": {"iteration": 2, "1": {"lt": {"n": 1}}, "2": {"lt": {"n": 2}}},
        "b": {"b": 1},
    }
    assert story.summary(wid)[-1] == ("after", story.name("dw_after"), S)
    story.poll_and_complete("dw_after")
    story.wait_workflow(wid, C)


# ============================================================================================
# SUB_WORKFLOW


def test_sub_workflow_latest_version(story: Story) -> None:
    """SUB_WORKFLOW by name runs the latest version; input goes through ``workflowInput``; the child
    links to its parent and inherits the correlationId; the child output lands in the task output."""
    names = story.register("sub_workflow")
    corr = f"corr-{story.uid}"
    wid = story.start("parent_latest", {"v": "hello"}, correlationId=corr)
    assert story.summary(wid) == [("sw", "SUB_WORKFLOW", IP)]
    sw = story.task(wid, "sw")
    cid = sw["subWorkflowId"]
    assert cid and sw["outputData"] == {"subWorkflowId": cid}
    assert sw["inputData"]["subWorkflowName"] == names["child"]
    assert sw["inputData"]["subWorkflowVersion"] == 2
    assert sw["inputData"]["workflowInput"] == {"v": "hello"}

    child = story.workflow(cid)
    assert child["status"] == "RUNNING"
    assert (child["workflowName"], child["workflowVersion"]) == (names["child"], 2)
    assert child["parentWorkflowId"] == wid and child["parentWorkflowTaskId"] == sw["taskId"]
    assert child["correlationId"] == corr
    assert child["input"] == {"v": "hello"}
    assert story.summary(cid) == [("c1", story.name("child_task"), S)]

    polled = story.poll_and_complete("child_task", {"r": "R"})
    assert polled["inputData"] == {"v": "hello"} and polled["workflowInstanceId"] == cid
    child = story.wait_workflow(cid, C)
    assert child["output"] == {"childOut": "R", "version": 2}
    sw = story.task(wid, "sw")
    assert sw["status"] == C
    assert sw["outputData"] == {"childOut": "R", "version": 2, "subWorkflowId": cid}
    assert story.summary(wid) == [("sw", "SUB_WORKFLOW", C), ("after", story.name("parent_after"), S)]
    assert story.task(wid, "after")["inputData"] == {"fromChild": "R"}
    story.poll_and_complete("parent_after")
    assert story.wait_workflow(wid, C)["output"] == {"fromChild": "R", "childId": cid}


def test_sub_workflow_explicit_version(story: Story) -> None:
    """SUB_WORKFLOW pinned to version 1 runs version 1 although version 2 exists."""
    names = story.register("sub_workflow")
    wid = story.start("parent_v1", {"v": "one"})
    sw = story.task(wid, "sw")
    assert sw["inputData"]["subWorkflowVersion"] == 1
    child = story.workflow(sw["subWorkflowId"])
    assert (child["workflowName"], child["workflowVersion"]) == (names["child"], 1)
    story.poll_and_complete("child_task", {"r": "x"})
    assert story.wait_workflow(wid, C)["output"] == {"fromChild": "x", "version": 1}


def test_sub_workflow_inline_definition(story: Story) -> None:
    """SUB_WORKFLOW with an inline ``workflowDefinition``: the child runs it (input marked dynamic)."""
    story.register("sub_workflow")
    wid = story.start("parent_inline", {"v": 4})
    sw = story.task(wid, "sw")
    assert sw["status"] == IP
    child = story.workflow(sw["subWorkflowId"])
    assert child["workflowName"] == "inline_child" and child["parentWorkflowId"] == wid
    assert child["input"] == {"v": 4, "_systemMetadata": {"dynamic": True}}
    assert story.summary(child["workflowId"]) == [("i1", story.name("inline_task"), S)]
    story.poll_and_complete("inline_task", {"r": "inline!"})
    assert story.wait_workflow(wid, C)["output"] == {"fromChild": "inline!"}


def test_sub_workflow_child_failure_fails_parent(story: Story) -> None:
    """A FAILED child fails the parent task with "Sub workflow <name>.<v>/<id> failure reason: ..."
    (no task definition for the node: no retry), and the parent workflow FAILED."""
    names = story.register("sub_workflow")
    wid = story.start("parent_v1", {"v": 1})
    cid = story.task(wid, "sw")["subWorkflowId"]
    story.poll_and_fail("child_task", "child boom")
    child = story.wait_workflow(cid, "FAILED")
    assert "child boom" in child["reasonForIncompletion"]
    wf = story.wait_workflow(wid, "FAILED")
    assert story.summary(wid) == [("sw", "SUB_WORKFLOW", "FAILED")]
    sw = story.task(wid, "sw")
    assert sw["reasonForIncompletion"] == (
        f"Sub workflow {names['child']}.1/{cid} failure reason: {child['reasonForIncompletion']}"
    )
    assert sw["outputData"]["subWorkflowId"] == cid
    assert "child boom" in wf["reasonForIncompletion"]


def test_sub_workflow_retry_starts_new_child(story: Story) -> None:
    """With a task definition for the SUB_WORKFLOW node allowing one retry, a failed child is followed by
    a retry of the task that starts a NEW child; the parent completes with the new child's output."""
    names = story.register("sub_workflow")
    wid = story.start("parent_retry", {"v": 1})
    first = story.task(wid, "sw")
    assert first["taskDefName"] == names["sub_retry"]
    story.poll_and_fail("child_task", "first child fails")
    story.wait_workflow(first["subWorkflowId"], "FAILED")
    tasks = story.wait_tasks(wid, lambda ts: len(ts) == 2, what="the SUB_WORKFLOW task is retried")
    assert [(t["referenceTaskName"], t["status"], t["retryCount"]) for t in tasks] == [
        ("sw", "FAILED", 0), ("sw", IP, 1)
    ]  # fmt: skip
    assert tasks[0]["retried"] is True
    assert tasks[0]["reasonForIncompletion"].startswith(
        f"Sub workflow {names['child']}.1/{first['subWorkflowId']} failure reason: "
    )
    second_child = tasks[1]["subWorkflowId"]
    assert second_child and second_child != first["subWorkflowId"]
    assert story.workflow(second_child)["parentWorkflowTaskId"] == tasks[1]["taskId"]
    assert story.workflow(wid)["status"] == "RUNNING"
    polled = story.poll_and_complete("child_task", {"r": "second"})
    assert polled["workflowInstanceId"] == second_child
    assert story.wait_workflow(wid, C)["output"] == {"fromChild": "second"}


def test_sub_workflow_terminating_parent_terminates_child(story: Story) -> None:
    """DELETE /workflow/{parent}?reason=x: the parent is TERMINATED, its SUB_WORKFLOW task CANCELED, and
    the running child TERMINATED (its open task CANCELED)."""
    story.register("sub_workflow")
    wid = story.start("parent_latest", {"v": 1})
    cid = story.task(wid, "sw")["subWorkflowId"]
    assert story.workflow(cid)["status"] == "RUNNING"
    story.terminate(wid, "stop it")
    wf = story.wait_workflow(wid, "TERMINATED")
    assert wf["reasonForIncompletion"] == "stop it"
    assert story.summary(wid) == [("sw", "SUB_WORKFLOW", "CANCELED")]
    story.wait_workflow(cid, "TERMINATED")
    assert story.summary(cid) == [("c1", story.name("child_task"), "CANCELED")]
    assert story.poll("child_task", timeout_ms=0) is None


def test_sub_workflow_terminated_child_reason(story: Story) -> None:
    """The child terminated with its parent says why: "Parent workflow has been terminated with reason: x"
    (conductor-oss SubWorkflow.cancel)."""
    story.register("sub_workflow")
    wid = story.start("parent_latest", {"v": 1})
    cid = story.task(wid, "sw")["subWorkflowId"]
    story.terminate(wid, "stop it")
    child = story.wait_workflow(cid, "TERMINATED")
    assert child["reasonForIncompletion"] == "Parent workflow has been terminated with reason: stop it"


def test_sub_workflow_child_terminated_terminates_parent(story: Story) -> None:
    """A child TERMINATED by a user: the SUB_WORKFLOW task is CANCELED and the parent TERMINATED
    (CANCELED is not retriable; conductor-oss DeciderService maps it to TERMINATED)."""
    story.register("sub_workflow")
    wid = story.start("parent_v1", {"v": 1})
    cid = story.task(wid, "sw")["subWorkflowId"]
    story.terminate(cid, "child stopped")
    story.wait_workflow(cid, "TERMINATED")
    wf = story.wait_workflow(wid, "TERMINATED")
    assert story.summary(wid) == [("sw", "SUB_WORKFLOW", "CANCELED")]
    sw = story.task(wid, "sw")
    assert sw["reasonForIncompletion"].endswith("failure reason: child stopped")
    assert "child stopped" in wf["reasonForIncompletion"]


def test_sub_workflow_in_loop(story: Story) -> None:
    """A SUB_WORKFLOW inside a DO_WHILE: ``sw__1`` and ``sw__2`` each start their own child; each child's
    end moves the loop on."""
    story.register("sub_workflow")
    wid = story.start("parent_loop")
    assert story.summary(wid) == [("loop", "DO_WHILE", IP), ("sw__1", "SUB_WORKFLOW", IP)]
    first = story.task(wid, "sw__1")["subWorkflowId"]
    assert story.workflow(first)["input"] == {"v": 1}
    story.poll_and_complete("child_task", {"r": "r1"})
    assert story.summary(wid) == [
        ("loop", "DO_WHILE", IP), ("sw__1", "SUB_WORKFLOW", C), ("sw__2", "SUB_WORKFLOW", IP)
    ]  # fmt: skip
    second = story.task(wid, "sw__2")["subWorkflowId"]
    assert second != first and story.workflow(second)["input"] == {"v": 2}
    story.poll_and_complete("child_task", {"r": "r2"})
    wf = story.wait_workflow(wid, C)
    assert wf["output"] == {"last": "r2"}
    out = by_ref(wf["tasks"])["loop"]["outputData"]
    assert out["1"] == {"sw": {"childOut": "r1", "version": 1, "subWorkflowId": first}}
    assert out["2"] == {"sw": {"childOut": "r2", "version": 1, "subWorkflowId": second}}


def test_sub_workflow_in_fork(story: Story) -> None:
    """Two SUB_WORKFLOW fork branches (versions 1 and 2) joined: the JOIN gathers both children's output."""
    story.register("sub_workflow")
    wid = story.start("parent_fork")
    assert story.summary(wid) == [
        ("fork", "FORK", C), ("s1", "SUB_WORKFLOW", IP), ("s2", "SUB_WORKFLOW", IP), ("join", "JOIN", IP)
    ]  # fmt: skip
    tasks = by_ref(story.tasks(wid))
    c1, c2 = tasks["s1"]["subWorkflowId"], tasks["s2"]["subWorkflowId"]
    assert story.workflow(c1)["input"] == {"v": "one"} and story.workflow(c2)["input"] == {"v": "two"}
    first = story.poll("child_task")
    assert first is not None
    story.update(first, C, {"r": first["inputData"]["v"].upper()})
    assert story.task(wid, "join")["status"] == IP
    second = story.poll("child_task")
    assert second is not None
    story.update(second, C, {"r": second["inputData"]["v"].upper()})
    wf = story.wait_workflow(wid, C)
    assert wf["output"] == {
        "joined": {
            "s1": {"childOut": "ONE", "version": 1, "subWorkflowId": c1},
            "s2": {"childOut": "TWO", "version": 2, "subWorkflowId": c2},
        }
    }
    assert story.summary(wid) == [
        ("fork", "FORK", C), ("s1", "SUB_WORKFLOW", C), ("s2", "SUB_WORKFLOW", C), ("join", "JOIN", C)
    ]  # fmt: skip


def test_sub_workflow_missing_definition_fails_workflow(story: Story) -> None:
    """SUB_WORKFLOW naming an unregistered workflow: the workflow FAILED "... has no workflow definition
    available" (conductor-oss SubWorkflowTaskMapper names the sub-workflow)."""
    story.register("sub_workflow")
    wid = story.start("parent_missing")
    wf = story.wait_workflow(wid, "FAILED")
    assert wf["reasonForIncompletion"] == (
        "The Task never_registered_child_wf defined as a sub-workflow has no workflow definition available "
    )
    assert wf["tasks"] == []


def test_sub_workflow_missing_version_fails_task(story: Story) -> None:
    """SUB_WORKFLOW pinned to a version that does not exist: the mapper does not look it up; starting the
    child fails, so the SUB_WORKFLOW task is FAILED with the start error and the workflow FAILED."""
    names = story.register("sub_workflow")
    wid = story.start("parent_bad_version")
    wf = story.wait_workflow(wid, "FAILED")
    assert story.summary(wid) == [("sw", "SUB_WORKFLOW", "FAILED")]
    sw = story.task(wid, "sw")
    assert sw["inputData"]["subWorkflowVersion"] == 9
    assert sw["reasonForIncompletion"] == f"No such workflow defined. name={names['child']}, version=9"
    assert sw["reasonForIncompletion"] in wf["reasonForIncompletion"]


# ============================================================================================
# START_WORKFLOW


def test_start_workflow_fire_and_forget(story: Story) -> None:
    """START_WORKFLOW: COMPLETED at once with output ``workflowId``; the started workflow runs on its own
    (no parent link, the caller's correlationId) and the starter does not wait for it."""
    names = story.register("start_workflow")
    corr = f"corr-{story.uid}"
    wid = story.start("starter", {"v": 5}, correlationId=corr)
    assert story.summary(wid) == [("start", "START_WORKFLOW", C), ("after", story.name("starter_after"), S)]
    started_id = story.task(wid, "start")["outputData"]["workflowId"]
    assert story.task(wid, "start")["outputData"] == {"workflowId": started_id}
    assert story.task(wid, "after")["inputData"] == {"started": started_id}

    started = story.workflow(started_id)
    assert started["workflowName"] == names["started"] and started["status"] == "RUNNING"
    assert started.get("parentWorkflowId") is None and started.get("parentWorkflowTaskId") is None
    assert started["correlationId"] == corr
    assert started["input"] == {"v": 5}
    assert story.summary(started_id) == [("s1", story.name("started_task"), S)]

    story.poll_and_complete("starter_after")
    assert story.wait_workflow(wid, C)["output"] == {"started": started_id}
    assert story.workflow(started_id)["status"] == "RUNNING"
    story.poll_and_complete("started_task")
    assert story.wait_workflow(started_id, C)["output"] == {"v": 5}
