"""Blueprint graphs (``conductor_lab.widgets.graph``): every task type, nesting, collapse, and a
run's status on the graph, from hand-built runs and from a run on the real server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from conductor_lab.widgets.graph import END, START, blueprint_graph, execution_status
from conductor_lab.widgets.layout import layout
from conductor_lab.widgets.palette import SHAPES
from tests.scenario.harness import Story

BLUEPRINTS = Path(__file__).resolve().parents[1] / "fixtures" / "blueprints"
NODE_FIELDS = {
    "id",
    "ref",
    "label",
    "sublabel",
    "type",
    "shape",
    "parent",
    "badge",
    "collapsible",
    "collapsed",
}
EDGE_KINDS = {"next", "case", "default", "fork", "join", "loop"}
BIG = 10**6


def fixture_workflows() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(BLUEPRINTS.glob("*.json")):
        data = json.loads(path.read_text())
        for wd in data.get("workflows", [data] if "tasks" in data else []):
            out.append((f"{path.stem}:{wd['name']}:v{wd.get('version', 1)}", wd))
    return out


def workflow(fixture: str, name: str) -> dict[str, Any]:
    return next(wd for key, wd in fixture_workflows() if key.startswith(f"{fixture}:{name}:"))


def all_refs(tasks: list[dict[str, Any]]) -> set[str]:
    refs: set[str] = set()
    for t in tasks:
        refs.add(t["taskReferenceName"])
        for branch in [
            *(t.get("decisionCases") or {}).values(),
            t.get("defaultCase") or [],
            *(t.get("forkTasks") or []),
            t.get("loopOver") or [],
        ]:
            refs |= all_refs(branch)
    return refs


def edge(g: nx.DiGraph, u: str, v: str) -> dict[str, Any]:
    assert g.has_edge(u, v), (
        f"no edge {u} -> {v}; out of {u}: {list(g.successors(u)) if u in g else 'missing'}"
    )
    return dict(g.edges[u, v])


def out_edges(g: nx.DiGraph, u: str) -> dict[str, tuple[str, str | None]]:
    return {v: (a["kind"], a["label"]) for _, v, a in g.out_edges(u, data=True)}


def t(ref: str, type_: str = "SIMPLE", **kw: Any) -> dict[str, Any]:
    return {"name": kw.pop("name", ref), "taskReferenceName": ref, "type": type_, **kw}


def task_run(ref: str, status: str = "COMPLETED", seq: int = 0, **kw: Any) -> dict[str, Any]:
    """One task of a run as the server returns it (the fields the graph reads)."""
    return {
        "referenceTaskName": ref,
        "status": status,
        "seq": seq,
        "iteration": kw.pop("iteration", 0),
        "taskType": kw.pop("taskType", "SIMPLE"),
        **kw,
    }


def run_of(*tasks: dict[str, Any], status: str = "RUNNING") -> dict[str, Any]:
    """A run: ``seq`` numbers in the given order, task ids ``id-<ref>-<seq>`` unless given."""
    out = []
    for i, task in enumerate(tasks):
        seq = task.get("seq") or i + 1
        out.append(
            {**task, "seq": seq, "taskId": task.get("taskId") or f"id-{task['referenceTaskName']}-{seq}"}
        )
    return {"status": status, "tasks": out}


# ------------------------------------------------------------------------------------------------
# Every fixture blueprint


@pytest.mark.parametrize(("key", "wd"), fixture_workflows(), ids=[k for k, _ in fixture_workflows()])
def test_every_fixture_blueprint_is_a_well_formed_graph(key: str, wd: dict[str, Any]) -> None:
    g = blueprint_graph(wd, collapse_threshold=BIG)
    assert all_refs(wd["tasks"]) | {START, END} == set(g.nodes)
    for n, attrs in g.nodes(data=True):
        assert NODE_FIELDS <= set(attrs), n
        assert attrs["id"] == n
        assert attrs["shape"] in SHAPES
        assert attrs["parent"] is None or g.nodes[attrs["parent"]]["type"] == "DO_WHILE"
    for u, v, attrs in g.edges(data=True):
        assert attrs["kind"] in EDGE_KINDS and attrs["id"] == f"{u}->{v}"
    forward = nx.DiGraph([(u, v) for u, v, a in g.edges(data=True) if a["kind"] != "loop"])
    assert nx.is_directed_acyclic_graph(forward)
    assert g.in_degree(START) == 0 and g.out_degree(END) == 0 and g.in_degree(END) > 0
    # every node is reached from start, except what follows a TERMINATE in the same list
    unreachable = set(g.nodes) - nx.descendants(forward, START) - {START}
    assert unreachable <= {b for _, b in g.graph["layout_constraints"]}


def test_kitchen_sink_has_every_task_type_drawn_as_conductor_does() -> None:
    g = blueprint_graph(workflow("kitchen_sink", "kitchen_sink"))
    types = {a["type"] for _, a in g.nodes(data=True)}
    assert types == {
        "START",
        "END",
        "SIMPLE",
        "SET_VARIABLE",
        "INLINE",
        "SWITCH",
        "LAMBDA",
        "TERMINATE",
        "DECISION",
        "EXCLUSIVE_JOIN",
        "FORK_JOIN",
        "HTTP",
        "JSON_JQ_TRANSFORM",
        "WAIT",
        "EVENT",
        "HUMAN",
        "JOIN",
        "FORK_JOIN_DYNAMIC",
        "DYNAMIC",
        "DO_WHILE",
        "SUB_WORKFLOW",
        "START_WORKFLOW",
        "NOOP",
    }
    shapes = {n: a["shape"] for n, a in g.nodes(data=True)}
    assert shapes["by_size"] == shapes["route"] == "diamond"
    assert shapes["parallel"] == shapes["fan_out"] == "fork"
    assert shapes["parallel_join"] == shapes["fan_in"] == shapes["route_join"] == "join"
    assert (shapes["retries"], shapes["child"], shapes["spawn"]) == ("loop", "sub", "sub")
    assert (shapes["cool_down"], shapes["approve"], shapes["announce"]) == ("wait", "wait", "event")
    assert (shapes["give_up"], shapes[START], shapes[END]) == ("terminal", "terminal", "terminal")
    assert (shapes["fetch"], shapes["nothing"], shapes["prepare"]) == ("system", "system", "rect")

    assert out_edges(g, START) == {"prepare": ("next", None)}
    assert out_edges(g, "by_size") == {"discount": ("case", "big"), "give_up": ("default", "default")}
    assert out_edges(g, "give_up") == {END: ("next", None)}  # TERMINATE ends the workflow
    assert out_edges(g, "discount") == {"route": ("next", None)}
    # DECISION with no defaultCase: the default goes straight to the merge point
    assert out_edges(g, "route") == {
        "left": ("case", "left"),
        "right": ("case", "right"),
        "route_join": ("default", "default"),
    }
    lanes = ["fetch", "reshape", "cool_down", "announce", "approve"]
    assert out_edges(g, "parallel") == {lane: ("fork", None) for lane in lanes}
    assert all(out_edges(g, lane) == {"parallel_join": ("join", None)} for lane in lanes)
    assert out_edges(g, "fan_out") == {"fan_in": ("next", None)}  # no run: one node, no branches
    assert g.nodes["fan_out"]["collapsible"] and not g.nodes["fan_out"]["collapsed"]
    assert g.nodes["dynamic"]["sublabel"] == "DYNAMIC"
    assert g.nodes["child"]["sublabel"] == "kitchen_sink_child v1"
    assert g.nodes["spawn"]["sublabel"] == "start kitchen_sink_started v1"
    assert g.nodes["prepare"]["sublabel"] == "ks_prepare (SIMPLE)"
    # DO_WHILE: its body is a group with a loop back-edge; the next task comes from the loop node
    assert g.nodes["poke"]["parent"] == "retries" and g.nodes["retries"]["parent"] is None
    assert out_edges(g, "retries") == {"poke": ("next", None), "child": ("next", None)}
    assert out_edges(g, "poke") == {"retries": ("loop", "loop")}
    assert ("poke", "child") in g.graph["layout_constraints"]
    # what follows the final TERMINATE is unreachable but drawn, below it
    assert out_edges(g, "finish") == {END: ("next", None)}
    assert g.in_degree("never") == 0 and out_edges(g, "never") == {END: ("next", None)}
    assert ("finish", "never") in g.graph["layout_constraints"]
    assert {n: a["label"] for n, a in g.nodes(data=True) if n in (START, END)} == {START: "start", END: "end"}


def test_switch_cases_nested_switches_and_empty_defaults() -> None:
    g = blueprint_graph(workflow("exclusive_join", "exclusive_join"))
    assert out_edges(g, "switch1") == {
        "task2": ("case", "true"),
        "task4": ("case", "false"),
        "exclusiveJoin": ("default", "default"),
    }
    assert out_edges(g, "switch2") == {"task3": ("case", "true"), "exclusiveJoin": ("default", "default")}
    assert set(g.predecessors("exclusiveJoin")) == {"switch1", "switch2", "switch3", "task3", "task5"}
    assert edge(g, "switch1", "task2")["cases"] == ["true"] and edge(g, "switch1", "exclusiveJoin")["default"]


def test_two_empty_cases_share_one_edge_listing_both() -> None:
    wd = {"tasks": [t("s", "SWITCH", decisionCases={"a": [], "b": [], "c": [t("c1")]}), t("after")]}
    g = blueprint_graph(wd)
    e = edge(g, "s", "after")
    assert (e["kind"], e["label"], e["cases"], e["default"]) == ("case", "a, b, default", ["a", "b"], True)
    assert out_edges(g, "c1") == {"after": ("next", None)}


def test_decision_empty_case_runs_the_default_branch() -> None:
    g = blueprint_graph(workflow("decision", "decision_param"))
    assert out_edges(g, "dec") == {"a": ("case", "a"), "d": ("default", "empty, default")}
    assert edge(g, "dec", "d")["cases"] == ["empty"]
    assert set(g.predecessors("z")) == {"a", "d"}


def test_fork_lanes_converge_on_the_join_and_an_empty_lane_is_a_direct_edge() -> None:
    wd = {
        "tasks": [
            t(
                "f",
                "FORK_JOIN",
                forkTasks=[[t("a1"), t("a2")], [], [t("s", "SWITCH", decisionCases={"x": [t("x1")]})]],
            ),
            t("j", "JOIN", joinOn=["a2", "x1"]),
        ]
    }
    g = blueprint_graph(wd)
    assert out_edges(g, "f") == {"a1": ("fork", None), "j": ("fork", None), "s": ("fork", None)}
    assert out_edges(g, "a2") == {"j": ("join", None)}
    assert out_edges(g, "x1") == {"j": ("join", None)}
    assert out_edges(g, "s") == {"x1": ("case", "x"), "j": ("default", "default")}  # switch in a lane
    nested = blueprint_graph(workflow("fork_join", "fork_nested"))
    assert set(nested.predecessors("outer_join")) == {"a2", "b1"}
    assert out_edges(nested, "inner_join") == {"a2": ("next", None)}


def test_loop_in_switch_in_fork_in_loop() -> None:
    wd = {
        "tasks": [
            t(
                "outer",
                "DO_WHILE",
                loopCondition="false",
                loopOver=[
                    t(
                        "f",
                        "FORK_JOIN",
                        forkTasks=[
                            [
                                t(
                                    "s",
                                    "SWITCH",
                                    decisionCases={
                                        "go": [
                                            t(
                                                "inner",
                                                "DO_WHILE",
                                                loopCondition="false",
                                                loopOver=[t("i1"), t("i2")],
                                            )
                                        ],
                                    },
                                )
                            ],
                            [t("b")],
                        ],
                    ),
                    t("j", "JOIN"),
                ],
            ),
            t("after"),
        ]
    }
    g = blueprint_graph(wd)
    parents = {n: a["parent"] for n, a in g.nodes(data=True)}
    assert parents == {
        START: None,
        "outer": None,
        "f": "outer",
        "s": "outer",
        "inner": "outer",
        "i1": "inner",
        "i2": "inner",
        "b": "outer",
        "j": "outer",
        "after": None,
        END: None,
    }
    assert out_edges(g, "inner") == {"i1": ("next", None), "j": ("join", None)}
    assert out_edges(g, "i2") == {"inner": ("loop", "loop")}
    assert out_edges(g, "s") == {"inner": ("case", "go"), "j": ("default", "default")}
    assert out_edges(g, "j") == {"outer": ("loop", "loop")}
    assert out_edges(g, "outer") == {"f": ("next", None), "after": ("next", None)}
    lay = layout(g)
    assert {grp["id"] for grp in lay["groups"]} == {"outer", "inner"}


def test_a_switch_ending_a_loop_body_loops_back_from_each_branch() -> None:
    g = blueprint_graph(workflow("do_while", "loop_switch"))
    loop_edges = {(u, v) for u, v, a in g.edges(data=True) if a["kind"] == "loop"}
    assert loop_edges == {(n, "loop") for n in g.predecessors("loop") if g.nodes[n]["parent"] == "loop"}
    assert loop_edges


def test_big_loop_bodies_collapse_into_a_badge_and_expand_on_request() -> None:
    body = [t(f"b{i}") for i in range(5)]
    wd = {"tasks": [t("loop", "DO_WHILE", loopCondition="false", loopOver=body), t("after")]}
    g = blueprint_graph(wd, collapse_threshold=4)
    node = g.nodes["loop"]
    assert (node["collapsible"], node["collapsed"], node["badge"]) == (True, True, "5 tasks")
    assert set(g.nodes) == {START, "loop", "after", END}
    assert out_edges(g, "loop") == {"after": ("next", None)}

    g = blueprint_graph(wd, collapse_threshold=4, expanded=["loop"])
    assert not g.nodes["loop"]["collapsed"] and g.nodes["loop"]["badge"] is None
    assert {f"b{i}" for i in range(5)} <= set(g.nodes)

    g = blueprint_graph(wd, collapsed=["loop"])  # under the threshold, collapsed on request
    assert g.nodes["loop"]["collapsed"] and "b0" not in g
    nested = {
        "tasks": [
            t(
                "loop",
                "DO_WHILE",
                loopOver=[t("f", "FORK_JOIN", forkTasks=[[t("a")], [t("b")]]), t("j", "JOIN")],
            )
        ]
    }
    assert blueprint_graph(nested, collapsed=["loop"]).nodes["loop"]["badge"] == "4 tasks"


def test_dynamic_fork_shows_the_spawned_branches_of_a_run() -> None:
    wd = workflow("dynamic_fork", "dyn_fork_simple")
    spawned = [{"name": "df_item", "taskReferenceName": f"_df_item_{i}", "type": "SIMPLE"} for i in range(3)]
    run = run_of(
        task_run(
            "dyn_fork",
            taskType="FORK",
            inputData={"forkedTasks": [s["taskReferenceName"] for s in spawned], "forkedTaskDefs": spawned},
        ),
        task_run("_df_item_0", taskType="df_item"),
        task_run("_df_item_1", "FAILED", taskType="df_item"),
        task_run("_df_item_2", "IN_PROGRESS", taskType="df_item"),
        task_run("dyn_join", "IN_PROGRESS", taskType="JOIN"),
    )
    g = blueprint_graph(wd, execution=run)
    assert out_edges(g, "dyn_fork") == {f"_df_item_{i}": ("fork", None) for i in range(3)}
    assert all(out_edges(g, f"_df_item_{i}") == {"dyn_join": ("join", None)} for i in range(3))
    assert g.nodes["dyn_fork"]["badge"] == "3 branches, 1 failed"
    assert g.nodes["_df_item_0"]["sublabel"] == "df_item (SIMPLE)"

    collapsed = blueprint_graph(wd, execution=run, collapse_threshold=2)
    assert collapsed.nodes["dyn_fork"]["collapsed"] and "_df_item_0" not in collapsed
    assert out_edges(collapsed, "dyn_fork") == {"dyn_join": ("next", None)}
    assert "_df_item_0" in blueprint_graph(wd, execution=run, collapse_threshold=2, expanded=["dyn_fork"])

    # a server that only lists the spawned references: types come from the tasks themselves
    refs_only = run_of(
        task_run("dyn_fork", taskType="FORK", inputData={"forkedTasks": ["_x_0", "_x_1"]}),
        task_run("_x_0", taskType="df_item"),
        task_run("_x_1", taskType="HTTP"),
    )
    g = blueprint_graph(wd, execution=refs_only)
    assert (g.nodes["_x_0"]["type"], g.nodes["_x_1"]["type"]) == ("SIMPLE", "HTTP")
    assert g.nodes["dyn_fork"]["badge"] == "2 branches"


def test_dynamic_shows_the_task_it_resolved_to() -> None:
    wd = workflow("dynamic", "dynamic")
    ref = next(tk["taskReferenceName"] for tk in wd["tasks"] if tk["type"] == "DYNAMIC")
    g = blueprint_graph(wd, execution=run_of(task_run(ref, taskType="ship_fast", taskDefName="ship_fast")))
    assert g.nodes[ref]["sublabel"] == "ship_fast (DYNAMIC)"


def test_unknown_types_and_missing_fields_are_plain_nodes() -> None:
    wd = {
        "tasks": [
            {"taskReferenceName": "a"},
            t("b", "SOMETHING_NEW"),
            {"name": "noref", "type": "NOOP"},
            t(START),
            t("a"),
        ]
    }
    g = blueprint_graph(wd)
    assert (g.nodes["a"]["type"], g.nodes["a"]["shape"]) == ("SIMPLE", "rect")
    assert (g.nodes["b"]["type"], g.nodes["b"]["shape"]) == ("SOMETHING_NEW", "rect")
    assert g.nodes["noref"]["ref"] == "noref"
    # ids stay unique: a ref clashing with a terminal or another ref gets a synthetic id
    assert {"__simple____start__", "__simple__a"} <= set(g.nodes)
    assert len(g) == 7


def test_sub_workflow_sublabel_from_an_inline_definition() -> None:
    wd = {
        "tasks": [t("c", "SUB_WORKFLOW", subWorkflowParam={"workflowDefinition": {"name": "inline_child"}})]
    }
    assert blueprint_graph(wd).nodes["c"]["sublabel"] == "inline_child"


# ------------------------------------------------------------------------------------------------
# A run on the graph


def test_loop_iterations_and_retries_map_to_their_nodes() -> None:
    wd = {"tasks": [t("loop", "DO_WHILE", loopCondition="x", loopOver=[t("a"), t("b")]), t("after")]}
    run = run_of(
        task_run("loop", "IN_PROGRESS", iteration=2, taskType="DO_WHILE"),
        task_run("a__1", iteration=1),
        task_run("b__1", "FAILED", iteration=1),
        task_run("b__1", iteration=1),
        task_run("a__2", iteration=2),
        task_run("b__2", "FAILED", iteration=2),
        task_run("b__2", "SCHEDULED", iteration=2),
    )
    g = blueprint_graph(wd, execution=run)
    assert g.nodes["loop"]["badge"] == "×2 iterations"
    status, executed = execution_status(g, run)
    assert set(status) == {START, "loop", "a", "b"}
    assert status["loop"] == {"status": "IN_PROGRESS", "attempts": 1, "iterations": 2, "taskId": "id-loop-1"}
    assert status["a"] == {"status": "COMPLETED", "attempts": 1, "iterations": None, "taskId": "id-a__2-5"}
    # the latest iteration's attempts only: b failed once in iteration 2 and is being retried
    assert status["b"] == {"status": "SCHEDULED", "attempts": 2, "iterations": None, "taskId": "id-b__2-7"}
    assert set(executed) == {"__start__->loop", "loop->a", "a->b", "b->loop"}


def test_suffix_without_an_iteration_field_still_maps_to_the_loop_body() -> None:
    wd = {"tasks": [t("loop", "DO_WHILE", loopOver=[t("a")]), t("plain__1")]}
    run = run_of(
        task_run("loop", taskType="DO_WHILE"),
        {"referenceTaskName": "a__3", "status": "COMPLETED", "seq": 2, "taskId": "x"},
        task_run("plain__1"),
    )
    status, _ = execution_status(blueprint_graph(wd), run)
    assert status["a"]["taskId"] == "x" and "plain__1" in status
    assert status["loop"]["iterations"] == 0


@pytest.mark.parametrize(
    ("output", "taken"),
    [
        ({"evaluationResult": ["big"], "selectedCase": "big"}, "discount"),
        ({"evaluationResult": ["tiny"], "selectedCase": "tiny"}, "give_up"),  # no case matched: default
    ],
)
def test_only_the_switch_branch_taken_is_executed(output: dict[str, Any], taken: str) -> None:
    wd = workflow("kitchen_sink", "kitchen_sink")
    run = run_of(
        task_run("prepare"),
        task_run("remember", taskType="SET_VARIABLE"),
        task_run("classify", taskType="INLINE"),
        task_run("by_size", taskType="SWITCH", outputData=output),
        task_run(taken, taskType="LAMBDA" if taken == "discount" else "TERMINATE"),
        status="RUNNING" if taken == "discount" else "FAILED",
    )
    g = blueprint_graph(wd, execution=run)
    status, executed = execution_status(g, run)
    other = {"discount": "give_up", "give_up": "discount"}[taken]
    assert f"by_size->{taken}" in executed and f"by_size->{other}" not in executed
    assert other not in status
    assert (END in status) == (taken == "give_up")
    if taken == "give_up":
        assert status[END]["status"] == "FAILED" and "give_up->__end__" in executed
    # the layout carries the same information: same answer from it
    assert execution_status(layout(g), run) == (status, executed)


def test_switch_empty_case_and_decision_case_output() -> None:
    wd = {"tasks": [t("s", "SWITCH", decisionCases={"a": [], "b": [t("b1")]}, defaultCase=[t("d1")]), t("z")]}
    g = blueprint_graph(wd)
    run = run_of(task_run("s", taskType="SWITCH", outputData={"evaluationResult": ["a"]}), task_run("z"))
    status, executed = execution_status(g, run)
    assert "s->z" in executed and "s->b1" not in executed and "s->d1" not in executed

    dec = blueprint_graph(workflow("decision", "decision_param"))
    run = run_of(
        task_run("dec", taskType="DECISION", outputData={"caseOutput": ["empty"]}),
        task_run("d"),
        task_run("z"),
    )
    for source in (dec, layout(dec)):
        _, executed = execution_status(source, run)
        assert set(executed) == {"__start__->dec", "dec->d", "d->z"}


def test_real_run_on_the_server(http: Any) -> None:
    """A run of the real engine: retried worker task, DO_WHILE iterations, SWITCH branch."""
    story = Story(http)
    work = story.name("gw_work")
    r = http.post(
        "/metadata/taskdefs",
        json=[
            {
                "name": work,
                "retryCount": 1,
                "retryLogic": "FIXED",
                "retryDelaySeconds": 0,
                "timeoutSeconds": 0,
                "responseTimeoutSeconds": 3600,
                "ownerEmail": "stories@example.com",
            }
        ],
    )
    assert r.status_code == 200, r.text
    wd = {
        "name": story.name("gw_flow"),
        "version": 1,
        "ownerEmail": "stories@example.com",
        "schemaVersion": 2,
        "tasks": [
            {
                "name": "loop",
                "taskReferenceName": "loop",
                "type": "DO_WHILE",
                "loopCondition": "$.loop['iteration'] < 3",
                "loopOver": [
                    {
                        "name": "tick",
                        "taskReferenceName": "tick",
                        "type": "INLINE",
                        "inputParameters": {"evaluatorType": "javascript", "expression": "1"},
                    }
                ],
            },
            {
                "name": "pick",
                "taskReferenceName": "pick",
                "type": "SWITCH",
                "evaluatorType": "value-param",
                "expression": "kind",
                "inputParameters": {"kind": "${workflow.input.kind}"},
                "decisionCases": {
                    "a": [{"name": work, "taskReferenceName": "work", "type": "SIMPLE"}],
                    "b": [{"name": "other", "taskReferenceName": "other", "type": "NOOP"}],
                },
                "defaultCase": [],
            },
        ],
    }
    r = http.post("/metadata/workflow", json=wd)
    assert r.status_code == 200, r.text
    wid = story.start("gw_flow", {"kind": "a"})
    story.poll_and_fail("gw_work", "flaky")
    story.poll_and_complete("gw_work", {"ok": True})
    run = story.wait_workflow(wid, "COMPLETED")

    g = blueprint_graph(wd, execution=run)
    assert g.nodes["loop"]["badge"] == "×3 iterations"
    status, executed = execution_status(g, run)
    assert {n: s["status"] for n, s in status.items()} == {
        START: "COMPLETED",
        "loop": "COMPLETED",
        "tick": "COMPLETED",
        "pick": "COMPLETED",
        "work": "COMPLETED",
        END: "COMPLETED",
    }
    assert status["loop"]["iterations"] == 3
    assert status["work"]["attempts"] == 2
    assert status["work"]["taskId"] == next(
        tk["taskId"] for tk in reversed(run["tasks"]) if tk["referenceTaskName"] == "work"
    )
    assert set(executed) == {
        "__start__->loop",
        "loop->tick",
        "tick->loop",
        "loop->pick",
        "pick->work",
        "work->__end__",
    }
    assert execution_status(layout(g), run) == (status, executed)
