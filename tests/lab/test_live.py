"""The view owners (``conductor_lab/widgets/live.py``) against real runs: the live graph follows a
run through the watch endpoint without re-layout, clicks show task detail, buttons call the Run's
verbs; blueprints expand/collapse; the history table filters and opens runs. No kernel here, so
the watch thread applies updates itself (in a kernel it hands them to the kernel's loop)."""

from __future__ import annotations

from typing import Any

import networkx as nx

from conductor_lab.builder import fork, loop, simple, switch, wf_input, workflow
from conductor_lab.lab import Lab
from tests.conftest import wait_until
from tests.lab.conftest import POLL_MS, unique


def chain(name: str, a: str, b: str) -> dict[str, Any]:
    return workflow(
        name,
        simple(a, input={"n": wf_input("n")})
        >> switch("route", wf_input("kind"), cases={"big": simple(b, ref="big")}, default=simple(b, ref="small")),
    ).to_dict()


def statuses(view: Any) -> dict[str, str]:
    return {node: entry["status"] for node, entry in view.status.items()}


def test_live_view_follows_a_run_without_relayout(lab: Lab) -> None:
    a, b = unique("live_a"), unique("live_b")
    name = unique("live")
    lab.register(chain(name, a, b))
    run = lab.start(name, {"n": 3, "kind": "big"})
    view = run.view()
    assert run.view() is view  # one live view per Run
    layouts: list[Any] = []
    view.observe(lambda change: layouts.append(change), "graph")
    assert statuses(view)[a] == "SCHEDULED" and view.run_status == "RUNNING"
    enabled = {x["verb"] for x in view.actions if x["enabled"]}
    assert enabled == {"pause", "terminate"}

    @lab.worker(a, poll_timeout_ms=POLL_MS)
    def first(n: int) -> dict[str, Any]:
        print(f"got n={n}")
        return {"doubled": 2 * n}

    @lab.worker(b, poll_timeout_ms=POLL_MS)
    def second() -> dict[str, Any]:
        return {}

    wait_until(lambda: view.run_status == "COMPLETED", 15, what="the live view shows COMPLETED")
    assert statuses(view) == {"__start__": "COMPLETED", a: "COMPLETED", "route": "COMPLETED",
                              "big": "COMPLETED", "__end__": "COMPLETED"}  # fmt: skip
    assert "small" not in view.status  # the untaken branch stays not executed (dimmed)
    assert any("route" in e and "big" in e for e in view.executed_edges)
    assert not any("small" in e for e in view.executed_edges)
    assert layouts == []  # status deltas only: the layout was never sent again
    assert {x["verb"] for x in view.actions if x["enabled"]} == {"restart", "rerun"}

    view.selected = a  # a click on the node
    detail = view.detail
    assert detail["title"] == a and detail["status"] == "COMPLETED"
    assert '"doubled": 6' in detail["output"] and '"n": 3' in detail["input"]
    assert [row["status"] for row in detail["attempts"]] == ["COMPLETED"]
    assert any("got n=3" in line for line in detail["logs"])
    view.selected = None
    assert view.detail == {}


def test_buttons_call_the_run_verbs(lab: Lab) -> None:
    a = unique("btn")
    name = unique("btnwf")
    lab.register(workflow(name, simple(a)).to_dict())
    failures = {"left": 1}

    @lab.worker(a, poll_timeout_ms=POLL_MS)
    def flaky() -> dict[str, Any]:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("first attempt fails")
        return {"ok": True}

    run = lab.start(name)
    view = run.view()
    wait_until(lambda: view.run_status == "FAILED", 15, what="the run fails")
    assert {x["verb"] for x in view.actions if x["enabled"]} >= {"retry", "restart"}
    assert "retry" not in {x["verb"] for x in view.actions if not x["enabled"]}

    view._dispatch_msg(view, {"type": "pause"}, [])  # not an action: ignored
    view._dispatch_msg(view, {"type": "action", "verb": "pause"}, [])  # not allowed when FAILED
    assert "pause" in view.message and "not allowed" in view.message
    view._dispatch_msg(view, {"type": "action", "verb": "retry"}, [])  # what the Retry button sends
    assert view.message.startswith("retry: done")
    wait_until(lambda: view.run_status == "COMPLETED", 15, what="the retried run completes")
    assert view.status[a]["attempts"] == 2
    assert run.status == "COMPLETED"


def test_blueprint_expands_and_collapses(lab: Lab) -> None:
    name = unique("bp")
    body = simple("x1") >> simple("x2") >> simple("x3")
    wf = workflow(name, fork("f", simple("p"), simple("q")) >> loop("lp", body, times=2)).to_dict()
    bp = lab.blueprint(wf)
    graph = bp.to_networkx()
    assert isinstance(graph, nx.DiGraph) and {"p", "q", "f", "lp", "x1"} <= set(graph.nodes)
    assert bp.view.node_count() == graph.number_of_nodes()
    html = bp._repr_mimebundle_()[0]["text/html"]
    assert "<svg" in html and "lp" in html  # the static fallback for saved notebooks

    bp.view.expanded = ["lp"]  # the badge click: collapse the (small, expanded) loop
    assert "x1" not in bp.to_networkx() and bp.to_networkx().nodes["lp"]["collapsed"]
    bp.view.expanded = []  # and expand it again
    assert "x1" in bp.to_networkx()
    bp.view.selected = "f"
    assert bp.view.detail["title"] == "f" and "FORK_JOIN" in bp.view.detail["input"]


def test_history_table_filters_and_opens_runs(embedded_lab: Lab) -> None:
    lab = embedded_lab
    name = unique("hist")
    lab.register({"name": name, "tasks": [{"name": "w", "taskReferenceName": "w", "type": "WAIT"}]})
    first = lab.start(name)
    second = lab.start(name)
    second.terminate("enough")
    box = lab.browse(limit=50)
    table = box.children[0]
    table.filters = {"name": name, "status": "", "since": "", "text": ""}
    assert {r["workflowId"] for r in table.rows} == {first.id, second.id}
    table.filters = {"name": name, "status": "TERMINATED", "since": "", "text": ""}
    assert [r["workflowId"] for r in table.rows] == [second.id]
    assert name in table.names
    table.selected = second.id  # a row click opens the run's live graph
    controller = lab._views[-1].controller
    assert controller.current is not None and controller.current.run.id == second.id
    assert controller.current.view.run_status == "TERMINATED"
    first.terminate("done")


def test_close_stops_live_views(tmp_path: Any) -> None:
    with Lab(tmp_path / "live.duckdb") as lab:
        lab.register({"name": "w1", "tasks": [{"name": "w", "taskReferenceName": "w", "type": "WAIT"}]})
        run = lab.start("w1")
        run.view()
        controller = run._live
        assert controller._thread.is_alive()
    assert controller.closed
    controller._thread.join(15)
    assert not controller._thread.is_alive()
