"""GraphView: the Python widget, and its ESM (graph.js) rendered in headless Chromium.

The browser tests build the real ``GraphView``, mount its ESM on a plain page with a fake model
(tests/widgets/harness.py), assert the DOM, and replay what the JS wrote back into Python.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from playwright.sync_api import expect

from conductor_lab.widgets.views import GraphView
from tests.widgets.harness import WidgetPage, palette_for_tests, small_layout, synthetic_layout

Json = dict[str, Any]


def entry(status: str, attempts: int = 1, iterations: int | None = None) -> Json:
    return {"status": status, "attempts": attempts, "iterations": iterations, "taskId": f"t-{status.lower()}"}


def run_view(**traits: Any) -> GraphView:
    """A small run: fetch completed after 3 attempts, route took default, the loop is running."""
    defaults: Json = {
        "layout": small_layout(),
        "title": "etl",
        "run_status": "RUNNING",
        "palette": palette_for_tests(),
        "status": {
            "__start__": entry("COMPLETED"),
            "fetch": entry("COMPLETED", attempts=3),
            "route": entry("COMPLETED"),
            "loop": entry("IN_PROGRESS", iterations=2),
            "step": entry("SCHEDULED"),
        },
        "executed_edges": ["__start__->fetch", "fetch->route", "route->loop", "loop->step"],
        "actions": [
            {"verb": "pause", "label": "Pause", "enabled": True, "title": "pause the workflow"},
            {"verb": "retry", "label": "Retry", "enabled": False,
             "title": "only a failed run can be retried"},
        ],
    }
    defaults.update(traits)
    return GraphView(**defaults)


def node(wp: WidgetPage, node_id: str) -> Any:
    return wp.page.locator(f'#root g.cl-node[data-id="{node_id}"]')


# ------------------------------------------------------------------------------------------------
# Python side (no browser)


def test_python_api_layout_alias_repr_and_fallback() -> None:
    lay = small_layout()
    w = GraphView(layout=lay, title="etl", palette=palette_for_tests())
    assert w.graph == lay and w.layout == lay
    state = w.get_state()
    assert state["graph"] == lay
    assert "layout" not in state  # ipywidgets' Layout-model slot stays off the wire
    w.layout = {"width": 1, "height": 1, "nodes": [], "edges": [], "groups": []}
    assert w.graph["nodes"] == []
    w.layout = lay

    assert repr(w) == "<GraphView 'etl' 13 nodes>"
    w.run_status = "FAILED"
    assert repr(w) == "<GraphView 'etl' 13 nodes FAILED>"

    data, _meta = w._repr_mimebundle_()
    assert data["text/plain"] == repr(w)
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == w.model_id
    page = data["text/html"]
    assert page.startswith("<div class='cl-graph-static'>")
    try:
        import conductor_lab.widgets.svg  # noqa: F401
    except ImportError:  # a summary table until helper graph's svg.py exists
        assert "<table>" in page and "<td>13</td>" in page
    else:
        assert "<svg" in page and page.count("<svg") == 1
    summary = w._summary_html()  # what shows when the SVG cannot be made
    assert "<b>etl</b>" in summary and "<td>13</td>" in summary and "<td>FAILED</td>" in summary


def test_on_action_dispatch_and_errors_shown_in_message() -> None:
    w = run_view()
    seen: list[tuple[str, Json]] = []
    w.on_action(lambda verb, msg: seen.append((verb, msg)))
    w._handle_custom_msg({"type": "action", "verb": "pause", "selected": "fetch"}, [])
    w._handle_custom_msg({"type": "other", "verb": "pause"}, [])  # not an action
    w._handle_custom_msg({"type": "action"}, [])  # no verb
    assert seen == [("pause", {"type": "action", "verb": "pause", "selected": "fetch"})]

    def broken(verb: str, msg: Json) -> None:
        raise RuntimeError("workflow is not RUNNING")

    w.on_action(broken)
    w._handle_custom_msg({"type": "action", "verb": "pause"}, [])
    assert w.message == "pause failed: workflow is not RUNNING"
    w.on_action(broken, remove=True)
    w.message = ""
    w._handle_custom_msg({"type": "action", "verb": "pause"}, [])
    assert w.message == "" and len(seen) == 3


def test_default_palette_comes_from_the_palette_module() -> None:
    palette = pytest.importorskip("conductor_lab.widgets.palette")
    w = GraphView(layout=small_layout())
    assert w.palette == palette.palette_json()
    assert {"fill", "stroke", "text", "icon", "label"} <= set(w.palette["status"]["COMPLETED"])


# ------------------------------------------------------------------------------------------------
# Browser: drawing


def test_blueprint_renders_nodes_edges_groups_legend(widget_page: WidgetPage) -> None:
    lay = small_layout()
    w = GraphView(layout=lay, title="etl blueprint", palette=palette_for_tests())
    wp = widget_page
    wp.mount(w, "graph")
    root = wp.page.locator("#root")
    nodes = root.locator("g.cl-node")
    expect(nodes).to_have_count(len(lay["nodes"]))
    assert nodes.evaluate_all("els => els.map(e => e.dataset.id)") == [n["id"] for n in lay["nodes"]]
    assert nodes.evaluate_all("els => els.map(e => e.dataset.type)") == [n["type"] for n in lay["nodes"]]
    assert nodes.evaluate_all("els => els.map(e => e.dataset.shape)") == [n["shape"] for n in lay["nodes"]]
    assert root.locator("g.cl-node .cl-label").all_text_contents() == [n["label"] for n in lay["nodes"]]
    assert "fetch (SIMPLE)" in root.locator(".cl-sublabel").all_text_contents()
    # a blueprint has no run: no status, nothing dimmed, no run chip
    assert nodes.evaluate_all("els => els.filter(e => e.hasAttribute('data-status')).length") == 0
    expect(root.locator(".cl-dimmed")).to_have_count(0)
    expect(root.locator(".cl-run-status")).to_be_hidden()
    expect(root.locator(".cl-title")).to_have_text("etl blueprint")

    edges = root.locator("g.cl-edge")
    expect(edges).to_have_count(len(lay["edges"]))
    assert edges.evaluate_all("els => els.map(e => e.dataset.edge)") == [e["id"] for e in lay["edges"]]
    assert root.locator(".cl-edge-label").all_text_contents() == ["a", "default", "loop"]
    assert root.locator('g.cl-edge[data-kind="loop"] path').get_attribute("marker-end")
    # arrowhead markers are defined once per widget instance and referenced by every edge
    markers = root.locator("marker").evaluate_all("els => els.map(e => e.id)")
    assert len(markers) == 2
    refs = root.locator(".cl-edge-line").evaluate_all(
        "els => [...new Set(els.map(e => e.getAttribute('marker-end')))]")
    assert refs == [f"url(#{markers[0]})"]

    groups = root.locator("g.cl-group")
    expect(groups).to_have_count(1)
    assert groups.get_attribute("data-id") == "loop"
    expect(groups.locator(".cl-group-label")).to_have_text("loop body")
    # the collapsed loop's badge, the expanded loop's toggle; plain nodes have none
    expect(node(wp, "batch").locator(".cl-badge-toggle .cl-badge-text")).to_have_text("3 tasks")
    expect(node(wp, "loop").locator(".cl-badge-toggle")).to_have_count(1)
    expect(node(wp, "fetch").locator(".cl-badge")).to_have_count(0)

    legend_shapes = root.locator(".cl-legend-shape").evaluate_all("els => els.map(e => e.dataset.shape)")
    assert sorted(legend_shapes) == sorted({n["shape"] for n in lay["nodes"]})
    expect(root.locator(".cl-legend-status")).to_have_count(0)
    assert wp.errors == []


def test_run_status_colours_icons_badges_and_executed_edges(widget_page: WidgetPage) -> None:
    w = run_view()
    pal = w.palette["status"]
    wp = widget_page
    wp.mount(w, "graph")
    root = wp.page.locator("#root")
    statuses = root.locator("g.cl-node").evaluate_all(
        "els => Object.fromEntries(els.map(e => [e.dataset.id, e.dataset.status]))")
    assert [statuses[k] for k in ("fetch", "loop", "step")] == ["COMPLETED", "IN_PROGRESS", "SCHEDULED"]
    assert statuses["notify"] == "NOT_EXECUTED" and statuses["__end__"] == "NOT_EXECUTED"

    fetch = node(wp, "fetch")
    # colour from the palette, and an icon + tooltip so colour is not the only carrier
    fill = fetch.locator(".cl-shape").first.evaluate("e => e.style.fill")
    normalise = "(c) => { const d = document.createElement('div'); d.style.fill = c; return d.style.fill; }"
    assert fill == wp.page.evaluate(normalise, pal["COMPLETED"]["fill"])
    expect(fetch.locator(".cl-icon")).to_have_text(pal["COMPLETED"]["icon"])
    assert pal["COMPLETED"]["label"] in (fetch.locator("title").text_content() or "")
    expect(fetch.locator(".cl-attempts-text")).to_have_text("×3")
    expect(node(wp, "route").locator(".cl-attempts")).to_have_count(0)
    expect(node(wp, "loop").locator(".cl-iterations-text")).to_have_text("↻2")

    expect(node(wp, "loop")).to_have_class("cl-node cl-pulse")
    assert root.locator(".cl-pulse").evaluate_all("els => els.map(e => e.dataset.id)") == ["loop"]
    pulse = root.locator(".cl-pulse .cl-shape").first
    assert pulse.evaluate("e => getComputedStyle(e).animationName") == "cl-pulse"
    dimmed = root.locator(".cl-dimmed").evaluate_all("els => els.map(e => e.dataset.id)")
    assert set(dimmed) == {n["id"] for n in small_layout()["nodes"]} - set(w.status)

    executed = root.locator(".cl-edge-executed").evaluate_all("els => els.map(e => e.dataset.edge)")
    assert executed == w.executed_edges
    assert root.locator('g.cl-edge[data-edge="fetch->route"] path').get_attribute("marker-end") != \
        root.locator('g.cl-edge[data-edge="route->notify"] path').get_attribute("marker-end")

    chip = root.locator(".cl-run-status")
    expect(chip).to_have_attribute("data-status", "RUNNING")
    expect(chip).to_contain_text(pal["RUNNING"]["label"])
    legend = root.locator(".cl-legend-status").evaluate_all("els => els.map(e => e.dataset.status)")
    assert set(legend) == {"COMPLETED", "IN_PROGRESS", "SCHEDULED", "NOT_EXECUTED"}
    assert wp.errors == []


def test_status_push_is_applied_as_a_delta(widget_page: WidgetPage) -> None:
    w = run_view()
    wp = widget_page
    wp.mount(w, "graph")
    page = wp.page
    # mark every node element and the svg with a JS property; record attribute mutations per node
    page.evaluate("""() => {
        const root = document.getElementById('root');
        root.querySelector('svg.cl-svg').__mark = 'svg';
        root.querySelectorAll('g.cl-node').forEach(g => { g.__mark = g.dataset.id; });
        window.touched = new Set();
        window.observer = new MutationObserver(records => {
            for (const r of records) {
                const g = (r.target.nodeType === 1 ? r.target : r.target.parentElement).closest('g.cl-node');
                window.touched.add(g ? g.dataset.id : '(outside nodes)');
            }
        });
        window.observer.observe(root.querySelector('g.cl-nodes'),
                                {subtree: true, attributes: true, childList: true, characterData: true});
    }""")
    status = copy.deepcopy(w.status)
    status["loop"] = entry("COMPLETED", iterations=3)
    status["step"] = entry("FAILED", attempts=2)
    status["batch"] = entry("IN_PROGRESS")
    w.status = status  # what the owner does; the kernel then pushes the new map
    wp.push("status", w.get_state()["status"])

    expect(node(wp, "step")).to_have_attribute("data-status", "FAILED")
    expect(node(wp, "batch")).to_have_attribute("data-status", "IN_PROGRESS")
    expect(node(wp, "loop")).to_have_attribute("data-status", "COMPLETED")
    expect(node(wp, "step").locator(".cl-attempts-text")).to_have_text("×2")
    expect(node(wp, "loop").locator(".cl-iterations-text")).to_have_text("↻3")
    touched = page.evaluate("() => { window.observer.takeRecords(); return [...window.touched].sort(); }")
    assert touched == ["batch", "loop", "step"]  # only the changed nodes were touched
    marks = page.evaluate("""() => ({
        svg: document.querySelector('#root svg.cl-svg').__mark,
        nodes: [...document.querySelectorAll('#root g.cl-node')].map(g => g.__mark === g.dataset.id),
    })""")
    assert marks["svg"] == "svg" and all(marks["nodes"]) and len(marks["nodes"]) == 13
    assert page.locator("#root .cl-pulse").evaluate_all("els => els.map(e => e.dataset.id)") == ["batch"]

    # executed edges are a delta too: the new edge lights up, the same elements stay
    edge = page.locator('#root g.cl-edge[data-edge="loop->batch"]')
    edge.evaluate("e => { e.__mark = 1; }")
    wp.push("executed_edges", [*w.executed_edges, "loop->batch"])
    expect(edge).to_have_class("cl-edge cl-edge-executed")
    assert edge.evaluate("e => e.__mark") == 1
    legend = page.locator("#root .cl-legend-status").evaluate_all("els => els.map(e => e.dataset.status)")
    assert "FAILED" in legend and "SCHEDULED" not in legend
    assert wp.errors == []


def test_layout_push_redraws(widget_page: WidgetPage) -> None:
    w = run_view()
    wp = widget_page
    wp.mount(w, "graph")
    expect(wp.page.locator("#root g.cl-node")).to_have_count(13)
    bigger = synthetic_layout(30)
    w.layout = bigger
    wp.push("graph", w.get_state()["graph"])
    expect(wp.page.locator("#root g.cl-node")).to_have_count(32)
    expect(wp.page.locator("#root g.cl-group")).to_have_count(0)
    # nodes of the old layout that are not in the new one are gone; the Status map is painted on
    # the new nodes (only __start__ is in both), run mode dims the rest
    expect(wp.page.locator('#root g.cl-node[data-id="fetch"]')).to_have_count(0)
    expect(node(wp, "__start__")).to_have_attribute("data-status", "COMPLETED")
    expect(wp.page.locator("#root .cl-dimmed")).to_have_count(31)
    assert wp.errors == []


def test_500_node_layout_renders_every_node(widget_page: WidgetPage) -> None:
    lay = synthetic_layout(500)
    w = GraphView(layout=lay, title="big", palette=palette_for_tests(), run_status="RUNNING",
                  status={f"task_{i}": entry("COMPLETED") for i in range(0, 500, 2)})
    wp = widget_page
    wp.mount(w, "graph")
    expect(wp.page.locator("#root g.cl-node")).to_have_count(502)
    expect(wp.page.locator("#root g.cl-edge")).to_have_count(len(lay["edges"]))
    expect(wp.page.locator('#root g.cl-node[data-status="COMPLETED"]')).to_have_count(250)
    assert wp.errors == []


# ------------------------------------------------------------------------------------------------
# Browser: clicks and panels


def test_node_click_writes_selected_and_outlines(widget_page: WidgetPage) -> None:
    w = run_view()
    wp = widget_page
    wp.mount(w, "graph")
    node(wp, "fetch").locator(".cl-shape").first.click()
    saved = wp.saved()
    assert saved == [{"selected": "fetch"}]
    w.set_state(saved[0])
    assert w.selected == "fetch"
    expect(node(wp, "fetch")).to_have_class("cl-node cl-selected")
    expect(wp.page.locator("#root .cl-ring")).to_have_count(1)

    node(wp, "route").locator(".cl-label").click(force=True)  # the label passes clicks to its node
    assert wp.saved()[-1] == {"selected": "route"}
    expect(wp.page.locator("#root .cl-selected")).to_have_count(1)
    expect(node(wp, "route")).to_have_class("cl-node cl-selected")
    # the kernel changes the selection: the outline follows, nothing is written back
    wp.push("selected", "step")
    expect(node(wp, "step")).to_have_class("cl-node cl-selected")
    expect(wp.page.locator("#root .cl-ring")).to_have_count(1)
    assert len(wp.saved()) == 2
    assert wp.errors == []


def test_badge_click_toggles_expanded_without_selecting(widget_page: WidgetPage) -> None:
    w = run_view()
    wp = widget_page
    wp.mount(w, "graph")
    node(wp, "batch").locator(".cl-badge-toggle").click()
    saved = wp.saved()
    assert saved == [{"expanded": ["batch"]}]
    w.set_state(saved[0])
    assert w.expanded == ["batch"]
    node(wp, "loop").locator(".cl-badge-toggle").click()
    node(wp, "batch").locator(".cl-badge-toggle").click()
    assert wp.saved()[1:] == [{"expanded": ["batch", "loop"]}, {"expanded": ["loop"]}]
    w.set_state(wp.saved()[-1])
    assert w.expanded == ["loop"] and w.selected is None
    assert wp.errors == []


def test_actions_send_messages_and_disabled_ones_do_not(widget_page: WidgetPage) -> None:
    w = run_view(selected="fetch")
    seen: list[tuple[str, Json]] = []
    w.on_action(lambda verb, msg: seen.append((verb, msg)))
    wp = widget_page
    wp.mount(w, "graph")
    buttons = wp.page.locator("#root button.cl-action")
    assert buttons.evaluate_all("els => els.map(e => [e.dataset.verb, e.textContent, e.disabled])") == [
        ["pause", "Pause", False], ["retry", "Retry", True]]
    retry = wp.page.locator('#root button[data-verb="retry"]')
    expect(retry).to_be_disabled()
    expect(retry).to_have_attribute("title", "only a failed run can be retried")
    retry.click(force=True)
    retry.dispatch_event("click")
    assert wp.sent() == []

    wp.page.locator('#root button[data-verb="pause"]').click()
    sent = wp.sent()
    assert sent == [{"type": "action", "verb": "pause", "selected": "fetch"}]
    for msg in sent:  # what the comm would deliver to the kernel
        w._handle_msg({"content": {"data": {"method": "custom", "content": msg}}, "buffers": []})
    assert seen == [("pause", sent[0])]
    assert wp.saved() == []  # an action is a message, not a trait write

    # the owner answers: new buttons, a message in the toolbar
    wp.push("actions", [{"verb": "resume", "label": "Resume", "enabled": True}])
    wp.push("message", "pause: done in 12 ms")
    expect(wp.page.locator("#root button.cl-action")).to_have_count(1)
    expect(wp.page.locator("#root .cl-message")).to_have_text("pause: done in 12 ms")
    assert wp.errors == []


def test_detail_push_shows_the_side_panel_with_tabs(widget_page: WidgetPage) -> None:
    w = run_view()
    wp = widget_page
    wp.mount(w, "graph")
    panel = wp.page.locator("#root .cl-panel")
    expect(panel).to_be_hidden()
    evil = '<img src=x onerror="window.pwned=1">'
    w.detail = {
        "title": "fetch",
        "status": "COMPLETED",
        "summary": [["type", "SIMPLE"], ["attempt", "3"], ["reason", evil]],
        "input": '{\n  "order": 42\n}',
        "output": '{"ok": true, "html": "' + evil + '"}',
        "logs": ["fetching order 42", "done"],
        "attempts": [
            {"attempt": 1, "status": "FAILED", "taskId": "t-1", "start": "10:00:00", "end": "10:00:01",
             "reason": "timeout"},
            {"attempt": 2, "status": "FAILED", "taskId": "t-2", "start": "10:00:02", "end": "10:00:03",
             "reason": "timeout"},
            {"attempt": 3, "status": "COMPLETED", "taskId": "t-3", "start": "10:00:04", "end": "10:00:05",
             "reason": ""},
        ],
        "truncated": True,
    }
    wp.push("detail", w.get_state()["detail"])
    expect(panel).to_be_visible()
    expect(panel.locator(".cl-panel-title")).to_have_text("fetch")
    expect(panel.locator(".cl-panel-status")).to_have_attribute("data-status", "COMPLETED")
    expect(panel.locator(".cl-truncated")).to_be_visible()
    assert panel.locator(".cl-summary th").all_text_contents() == ["type", "attempt", "reason"]
    assert panel.locator(".cl-summary td").all_text_contents() == ["SIMPLE", "3", evil]
    expect(panel.locator(".cl-pre")).to_have_text('{\n  "order": 42\n}')
    panel.locator('.cl-tab[data-tab="output"]').click()
    expect(panel.locator(".cl-pre")).to_contain_text('"ok": true')
    panel.locator('.cl-tab[data-tab="logs"]').click()
    expect(panel.locator(".cl-pre")).to_have_text("fetching order 42\ndone")
    panel.locator('.cl-tab[data-tab="attempts"]').click()
    rows = panel.locator(".cl-attempts-table tr[data-attempt]")
    expect(rows).to_have_count(3)
    assert rows.evaluate_all("els => els.map(e => e.querySelector('.cl-chip').dataset.status)") == [
        "FAILED", "FAILED", "COMPLETED"]
    # data is text, never markup
    expect(wp.page.locator("#root img")).to_have_count(0)
    assert wp.page.evaluate("() => window.pwned") is None

    # the tab survives a detail refresh; an empty detail hides the panel; close deselects
    wp.push("detail", {**w.detail, "attempts": w.detail["attempts"][:1]})
    expect(panel.locator(".cl-attempts-table tr[data-attempt]")).to_have_count(1)
    wp.push("detail", {})
    expect(panel).to_be_hidden()
    wp.push("detail", w.get_state()["detail"])
    panel.locator(".cl-panel-close").click()
    assert wp.saved() == [{"selected": None}]
    w.set_state(wp.saved()[0])
    assert w.selected is None
    assert wp.errors == []


def test_search_highlights_matches(widget_page: WidgetPage) -> None:
    w = run_view()
    wp = widget_page
    wp.mount(w, "graph")
    search = wp.page.locator("#root input.cl-search")
    search.fill("do_while")  # matches type / sublabel, case-insensitive
    matches = wp.page.locator("#root .cl-match").evaluate_all("els => els.map(e => e.dataset.id)")
    assert matches == ["loop", "batch"]
    expect(wp.page.locator("#root .cl-search-count")).to_have_text("2 matches")
    expect(wp.page.locator("#root .cl-graph")).to_have_class("cl-graph cl-run cl-searching")
    before = wp.page.locator("#root svg.cl-svg").get_attribute("viewBox")
    search.press("Enter")  # centres the first match
    assert wp.page.locator("#root svg.cl-svg").get_attribute("viewBox") != before
    search.fill("")
    expect(wp.page.locator("#root .cl-match")).to_have_count(0)
    expect(wp.page.locator("#root .cl-search-count")).to_have_text("")
    assert wp.saved() == []
    assert wp.errors == []


def test_zoom_buttons_wheel_and_drag_pan(widget_page: WidgetPage) -> None:
    w = run_view()
    wp = widget_page
    wp.mount(w, "graph")
    svg = wp.page.locator("#root svg.cl-svg")

    def view_box() -> list[float]:
        return [float(v) for v in (svg.get_attribute("viewBox") or "").split()]

    fit = view_box()
    assert fit == [-20, -20, 540, 890]  # the layout (500 x 850) plus padding
    wp.page.locator('#root button[data-zoom="in"]').click()
    zoomed = view_box()
    assert zoomed[2] == pytest.approx(fit[2] / 1.25) and zoomed[3] == pytest.approx(fit[3] / 1.25)
    wp.page.locator('#root button[data-zoom="out"]').click()
    wp.page.locator('#root button[data-zoom="out"]').click()
    assert view_box()[2] == pytest.approx(fit[2] * 1.25)
    wp.page.locator('#root button[data-zoom="fit"]').click()
    assert view_box() == fit

    box = svg.bounding_box()
    assert box is not None
    cx, cy = box["x"] + 40, box["y"] + 40  # a background corner, not a node
    wp.page.mouse.move(cx, cy)
    wp.page.mouse.wheel(0, -200)  # a plain wheel scrolls the notebook, the graph keeps its zoom
    assert view_box() == fit
    wp.page.keyboard.down("Control")
    wp.page.mouse.wheel(0, -200)
    wp.page.keyboard.up("Control")
    assert view_box()[2] < fit[2]

    wp.page.locator('#root button[data-zoom="fit"]').click()
    wp.page.mouse.move(cx, cy)
    wp.page.mouse.down()
    wp.page.mouse.move(cx + 60, cy + 30, steps=4)
    wp.page.mouse.up()
    panned = view_box()
    assert panned[0] < fit[0] and panned[1] < fit[1] and panned[2:] == fit[2:]
    assert wp.saved() == []  # panning selects nothing
    assert wp.errors == []


def test_cleanup_removes_listeners_and_dom(widget_page: WidgetPage) -> None:
    w = run_view()
    wp = widget_page
    wp.mount(w, "graph")
    assert wp.listeners() > 0
    wp.cleanup()
    assert wp.listeners() == 0
    expect(wp.page.locator("#root .cl-graph")).to_have_count(0)
    wp.push("status", {})  # a late kernel update after the view is gone is harmless
    assert wp.errors == []


def test_real_layout_of_a_fixture_blueprint(widget_page: WidgetPage) -> None:
    """Once helper graph's layout exists: a real blueprint's Layout draws every node and edge."""
    graph_mod = pytest.importorskip("conductor_lab.widgets.graph")
    layout_mod = pytest.importorskip("conductor_lab.widgets.layout")
    import json
    from pathlib import Path

    blueprint = json.loads((Path(__file__).parents[1] / "fixtures/blueprints/kitchen_sink.json").read_text())
    lay = layout_mod.layout(graph_mod.blueprint_graph(blueprint))
    w = GraphView(layout=lay, title=blueprint.get("name", ""))
    wp = widget_page
    wp.mount(w, "graph")
    expect(wp.page.locator("#root g.cl-node")).to_have_count(len(lay["nodes"]))
    expect(wp.page.locator("#root g.cl-edge")).to_have_count(len(lay["edges"]))
    expect(wp.page.locator("#root g.cl-group")).to_have_count(len(lay["groups"]))
    assert wp.errors == []
