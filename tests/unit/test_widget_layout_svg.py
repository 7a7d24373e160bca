"""Layout (``widgets.layout``), static SVG (``widgets.svg``) and palette (``widgets.palette``):
determinism, geometry invariants on every fixture blueprint and on generated ones, and an SVG
that parses, escapes what it shows and explains itself in a legend."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import xml.etree.ElementTree as ET
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from conductor_lab.widgets.graph import END, START, blueprint_graph, execution_status
from conductor_lab.widgets.layout import MAX_W, MIN_W, Layout, layout
from conductor_lab.widgets.palette import (
    NOT_EXECUTED,
    SHAPE_BY_TYPE,
    SHAPE_LABELS,
    SHAPES,
    STATUS_STYLE,
    UI,
    palette_json,
    shape_of,
    status_color,
    status_style,
)
from conductor_lab.widgets.svg import to_svg
from tests.unit.test_widget_graph import fixture_workflows, run_of, t, task_run, workflow

REPO_ROOT = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"
NODE_KEYS = {
    "id",
    "ref",
    "label",
    "sublabel",
    "type",
    "shape",
    "x",
    "y",
    "w",
    "h",
    "parent",
    "badge",
    "collapsible",
    "collapsed",
}
EDGE_KEYS = {"id", "source", "target", "label", "kind", "points"}
GROUP_KEYS = {"id", "label", "x", "y", "w", "h"}
EPS = 0.11  # coordinates are rounded to 0.1 px


def generated(seed: int, size: int) -> dict[str, Any]:
    """A random blueprint of about ``size`` tasks: chains, switches, forks, loops, terminates, nested."""
    rng = random.Random(seed)
    count = [0]

    def ref(prefix: str) -> str:
        count[0] += 1
        return f"{prefix}{count[0]}"

    def seq(depth: int, n: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for _ in range(n):
            r = rng.random()
            if depth > 2 or r < 0.45:
                out.append(t(ref("t"), rng.choice(["SIMPLE", "HTTP", "INLINE", "WAIT"])))
            elif r < 0.65:
                cases = {f"c{i}": seq(depth + 1, rng.randint(0, 2)) for i in range(rng.randint(1, 3))}
                default = (
                    [t(ref("end"), "TERMINATE")] if rng.random() < 0.2 else seq(depth + 1, rng.randint(0, 1))
                )
                out.append(
                    t(ref("s"), rng.choice(["SWITCH", "DECISION"]), decisionCases=cases, defaultCase=default)
                )
            elif r < 0.85:
                lanes = [seq(depth + 1, rng.randint(0, 3)) for _ in range(rng.randint(1, 4))]
                out += [t(ref("f"), "FORK_JOIN", forkTasks=lanes), t(ref("j"), "JOIN")]
            else:
                out.append(t(ref("l"), "DO_WHILE", loopOver=seq(depth + 1, rng.randint(1, 3))))
        return out

    tasks: list[dict[str, Any]] = []
    while count[0] < size:
        tasks += seq(0, 3)
    return {"name": f"gen{seed}", "tasks": tasks}


CASES = [(key, wd) for key, wd in fixture_workflows()] + [
    (f"generated:{s}", generated(s, 60)) for s in range(8)
]


def laid_out(wd: dict[str, Any], **kw: Any) -> Layout:
    return layout(blueprint_graph(wd, collapse_threshold=kw.pop("collapse_threshold", 10**6), **kw))


def rect(n: dict[str, Any]) -> tuple[float, float, float, float]:
    return n["x"], n["y"], n["x"] + n["w"], n["y"] + n["h"]


def overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] - EPS and b[0] < a[2] - EPS and a[1] < b[3] - EPS and b[1] < a[3] - EPS


def on_border(p: list[float], n: dict[str, Any]) -> bool:
    x0, y0, x1, y1 = rect(n)
    x, y = p
    inside = x0 - EPS <= x <= x1 + EPS and y0 - EPS <= y <= y1 + EPS
    return inside and min(abs(x - x0), abs(x - x1), abs(y - y0), abs(y - y1)) <= EPS


# ------------------------------------------------------------------------------------------------
# Layout


def test_same_input_gives_byte_identical_json() -> None:
    for wd in (workflow("kitchen_sink", "kitchen_sink"), generated(3, 150)):
        first = json.dumps(laid_out(wd))
        assert json.dumps(laid_out(json.loads(json.dumps(wd)))) == first
        assert json.dumps(laid_out(wd)) == first


def test_layout_does_not_depend_on_hash_randomisation() -> None:
    script = (
        "import json, hashlib\n"
        "from tests.unit.test_widget_layout_svg import generated, laid_out\n"
        "print(hashlib.sha1(json.dumps(laid_out(generated(5, 120))).encode()).hexdigest())\n"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script], env={**os.environ, "PYTHONHASHSEED": seed}, cwd=REPO_ROOT,
            capture_output=True, text=True, check=True, timeout=120,
        ).stdout.strip()
        for seed in ("1", "2")
    }  # fmt: skip
    assert digests == {hashlib.sha1(json.dumps(laid_out(generated(5, 120))).encode()).hexdigest()}


@pytest.mark.parametrize(("key", "wd"), CASES, ids=[k for k, _ in CASES])
def test_layout_geometry(key: str, wd: dict[str, Any]) -> None:
    lay = laid_out(wd)
    assert json.loads(json.dumps(lay)) == lay  # plain JSON types only
    nodes = {n["id"]: n for n in lay["nodes"]}
    assert all(set(n) == NODE_KEYS for n in lay["nodes"])
    assert all(set(e) == EDGE_KEYS for e in lay["edges"]) and all(set(g) == GROUP_KEYS for g in lay["groups"])
    # nothing overlaps, everything is inside the canvas
    for a, b in combinations(lay["nodes"], 2):
        assert not overlap(rect(a), rect(b)), (a["id"], b["id"])
    for n in lay["nodes"]:
        assert (
            n["x"] >= 0
            and n["y"] >= 0
            and n["x"] + n["w"] <= lay["width"]
            and n["y"] + n["h"] <= lay["height"]
        )
        if n["shape"] not in ("diamond",) and n["type"] not in ("START", "END"):
            assert MIN_W <= n["w"] <= MAX_W and n["h"] == 44
    # edges: known ends, polylines from the source's border to the target's, downwards unless looping
    ids = [e["id"] for e in lay["edges"]]
    assert len(ids) == len(set(ids))
    for e in lay["edges"]:
        src, dst, pts = nodes[e["source"]], nodes[e["target"]], e["points"]
        assert len(pts) >= 2 and on_border(pts[0], src) and on_border(pts[-1], dst), e
        if e["kind"] == "loop":  # up the side, into the DO_WHILE's right-hand side
            assert pts[-1] == [dst["x"] + dst["w"], dst["y"] + dst["h"] / 2]
            assert pts[0] == [src["x"] + src["w"] / 2, src["y"] + src["h"]]
        else:
            assert pts[0] == [src["x"] + src["w"] / 2, src["y"] + src["h"]]
            assert pts[-1] == [dst["x"] + dst["w"] / 2, dst["y"]]
            assert dst["y"] > src["y"] + src["h"], e["id"]
        assert all(0 <= x <= lay["width"] and 0 <= y <= lay["height"] for x, y in pts)  # bends on the canvas
    # groups: the box holds its members and nothing else
    for g in lay["groups"]:
        box = (g["x"], g["y"], g["x"] + g["w"], g["y"] + g["h"])
        members = {n["id"] for n in lay["nodes"] if _inside_group(n, g["id"], nodes)}
        assert members
        for n in lay["nodes"]:
            if n["id"] in members:
                r = rect(n)
                assert box[0] <= r[0] and r[2] <= box[2] and box[1] <= r[1] and r[3] <= box[3], (
                    g["id"],
                    n["id"],
                )
            else:
                assert not overlap(rect(n), box), (g["id"], n["id"])


def _inside_group(n: dict[str, Any], group: str, nodes: dict[str, dict[str, Any]]) -> bool:
    p = n["parent"]
    while p is not None:
        if p == group:
            return True
        p = nodes[p]["parent"]
    return False


def test_chains_are_straight_and_parents_centre_over_their_branches() -> None:
    lay = laid_out(workflow("kitchen_sink", "kitchen_sink"))
    nodes = {n["id"]: n for n in lay["nodes"]}

    def cx(n: str) -> float:
        return float(nodes[n]["x"] + nodes[n]["w"] / 2)

    assert cx(START) == cx("prepare") == cx("remember") == cx("classify") == cx("by_size")
    assert (
        cx("parallel_join") == cx("fan_out") == cx("fan_in") == cx("dynamic") == cx("retries") == cx("child")
    )
    lanes = ["fetch", "reshape", "cool_down", "announce", "approve"]
    xs = sorted(cx(lane) for lane in lanes)
    assert xs[0] < cx("parallel") < xs[-1]
    assert [n for n in sorted(lanes, key=cx)] == lanes  # definition order kept: no reason to cross
    # the node after a loop sits below the loop's whole body; the unreachable one below the TERMINATE
    group = next(g for g in lay["groups"] if g["id"] == "retries")
    assert nodes["child"]["y"] > group["y"] + group["h"]
    assert nodes["never"]["y"] > nodes["finish"]["y"] + nodes["finish"]["h"]
    assert nodes[END]["y"] > nodes["never"]["y"]


def test_no_crossings_where_none_are_needed() -> None:
    lay = laid_out(workflow("exclusive_join", "exclusive_join"))
    nodes = {n["id"]: n for n in lay["nodes"]}
    order = sorted(["task2", "task4"], key=lambda n: nodes[n]["x"])
    assert order == ["task2", "task4"]
    assert nodes["task3"]["x"] < nodes["task5"]["x"]  # each switch's case right under it
    assert nodes["switch2"]["x"] < nodes["switch3"]["x"]


def test_collapsed_loop_has_no_group_and_expanded_one_does() -> None:
    wd = {"tasks": [t("loop", "DO_WHILE", loopOver=[t("a"), t("b")]), t("after")]}
    assert laid_out(wd, collapsed=["loop"])["groups"] == []
    lay = laid_out(wd)
    assert [(g["id"], g["label"]) for g in lay["groups"]] == [("loop", "loop")]
    loop_edge = next(e for e in lay["edges"] if e["kind"] == "loop")
    assert (loop_edge["source"], loop_edge["target"], loop_edge["label"]) == ("b", "loop", "loop")


def test_five_hundred_nodes_lay_out() -> None:
    """Size sanity only (the timing is in bench/widget_layout.py)."""
    wd = generated(11, 500)
    lay = laid_out(wd)
    assert len(lay["nodes"]) > 500
    assert json.dumps(lay) == json.dumps(laid_out(wd))


# ------------------------------------------------------------------------------------------------
# SVG


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return ["".join(el.itertext()) for el in root.iter(f"{SVG}text")]


@pytest.mark.parametrize(("key", "wd"), CASES[:40], ids=[k for k, _ in CASES[:40]])
def test_svg_parses_and_is_self_contained(key: str, wd: dict[str, Any]) -> None:
    lay = laid_out(wd)
    status = {
        n["id"]: {"status": "COMPLETED", "attempts": 1, "iterations": None, "taskId": ""}
        for n in lay["nodes"][:3]
    }
    for svg in (to_svg(lay), to_svg(lay, status, title=key)):
        root = parse(svg)
        assert (
            float(root.get("width") or 0) >= lay["width"] and float(root.get("height") or 0) >= lay["height"]
        )
        lowered = svg.lower()
        assert (
            "<script" not in lowered
            and "href" not in lowered
            and "url(" not in lowered
            and "<style" not in lowered
        )
        labels = texts(root)
        assert all(any(n["label"] in s for s in labels) for n in lay["nodes"] if len(n["label"]) < 12)


def test_svg_escapes_every_text() -> None:
    nasty = "a<b>&\"c'\x01]]>"
    wd = {"tasks": [t(nasty, "SWITCH", name="<script>alert(1)</script>", decisionCases={'x"<y': [t("ok")]})]}
    g = blueprint_graph(wd)
    lay = layout(g)
    svg = to_svg(
        lay,
        {nasty: {"status": "FAILED", "attempts": 2, "iterations": None, "taskId": "t"}},
        title="</svg><script>x</script>",
    )
    root = parse(svg)
    assert "<script" not in svg
    shown = texts(root)
    assert "a<b>&\"c']]>" in "".join(shown)  # the control character is dropped, the rest shown as is
    assert 'x"<y' in shown
    assert any("</svg><script>x</script>" in s for s in shown)


def test_svg_shows_status_executed_edges_and_a_legend() -> None:
    wd = workflow("kitchen_sink", "kitchen_sink")
    run = run_of(
        task_run("prepare"),
        task_run("remember", taskType="SET_VARIABLE"),
        task_run("classify", "FAILED", taskType="INLINE"),
        task_run("classify", taskType="INLINE"),
        task_run("by_size", "IN_PROGRESS", taskType="SWITCH"),
    )
    g = blueprint_graph(wd)
    lay = layout(g)
    status, executed = execution_status(g, run)
    root = parse(to_svg(lay, status, executed_edges=executed, title="kitchen"))
    legend = texts(root)
    for style in (STATUS_STYLE["COMPLETED"], STATUS_STYLE["IN_PROGRESS"], STATUS_STYLE[NOT_EXECUTED]):
        assert f"{style.icon} {style.label}" in legend
    assert (
        f"{STATUS_STYLE['FAILED'].icon} {STATUS_STYLE['FAILED'].label}" not in legend
    )  # retried: not on show
    assert SHAPE_LABELS["diamond"] in legend and SHAPE_LABELS["loop"] in legend
    assert "✓ classify" in legend and "▶ by_size" in legend
    assert any("2 attempts" in s for s in legend)

    groups = {g.get("data-id"): g for g in root.iter(f"{SVG}g") if g.get("data-id")}
    assert groups["classify"][1].get("fill") == STATUS_STYLE["COMPLETED"].fill
    assert groups["by_size"][1].get("fill") == STATUS_STYLE["IN_PROGRESS"].fill
    assert groups["give_up"][1].get("fill") == STATUS_STYLE[NOT_EXECUTED].fill
    strokes = [p.get("stroke") for p in root.iter(f"{SVG}polyline")]
    assert (
        strokes.count(UI["edgeExecuted"]) == len(executed) == 4
    )  # start->prepare->remember->classify->by_size
    assert strokes.count(UI["edgeDimmed"]) == len(lay["edges"]) - 4

    plain = texts(parse(to_svg(lay)))
    assert not any(s.label in t for s in STATUS_STYLE.values() for t in plain if t.startswith(s.icon + " "))
    assert SHAPE_LABELS["rect"] in plain
    bare = texts(parse(to_svg(lay, legend=False)))
    assert not any(v in bare for v in SHAPE_LABELS.values())


def test_badges_are_drawn() -> None:
    wd = {"tasks": [t("loop", "DO_WHILE", loopOver=[t(f"b{i}") for i in range(3)])]}
    svg = to_svg(laid_out(wd, collapsed=["loop"]))
    assert "3 tasks" in texts(parse(svg))


# ------------------------------------------------------------------------------------------------
# Palette


def _luminance(colour: str) -> float:
    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def test_palette_covers_every_status_with_icon_label_and_readable_text() -> None:
    task_statuses = [
        "SCHEDULED",
        "IN_PROGRESS",
        "COMPLETED",
        "COMPLETED_WITH_ERRORS",
        "FAILED",
        "FAILED_WITH_TERMINAL_ERROR",
        "TIMED_OUT",
        "CANCELED",
        "SKIPPED",
    ]
    assert set(STATUS_STYLE) == {*task_statuses, NOT_EXECUTED, "RUNNING", "PAUSED", "TERMINATED"}
    assert len({STATUS_STYLE[s].icon for s in [*task_statuses, NOT_EXECUTED]}) == len(task_statuses) + 1
    assert len({s.label for s in STATUS_STYLE.values()}) == len(STATUS_STYLE)
    for name, style in STATUS_STYLE.items():
        for colour in (style.fill, style.stroke, style.text):
            assert len(colour) == 7 and colour.startswith("#") and int(colour[1:], 16) >= 0
        if name != NOT_EXECUTED:  # dimmed on purpose
            hi, lo = sorted((_luminance(style.fill), _luminance(style.text)), reverse=True)
            assert (hi + 0.05) / (lo + 0.05) >= 4.5, name
    # Conductor's diagram colours
    assert status_color("COMPLETED") == "#aee1b8" and status_color("IN_PROGRESS") == "#fff5da"
    assert status_color("SCHEDULED") == "#cbe2f7" and status_color("CANCELED") == "#ded5f8"
    assert status_color("FAILED") == status_color("TIMED_OUT") == "#f9c6c9"
    assert status_color("SKIPPED", "stroke") == STATUS_STYLE["SKIPPED"].stroke
    assert status_style(None) == STATUS_STYLE[NOT_EXECUTED]
    assert status_style("NEW_STATUS").label == "Unknown"


def test_palette_json_and_shapes() -> None:
    pj = palette_json()
    assert json.loads(json.dumps(pj)) == pj
    assert set(pj["status"]) == set(STATUS_STYLE)
    assert pj["status"]["FAILED"] == {
        "fill": "#f9c6c9",
        "stroke": STATUS_STYLE["FAILED"].stroke,
        "text": STATUS_STYLE["FAILED"].text,
        "icon": "✗",
        "label": "Failed",
    }
    assert pj["shapes"] == SHAPE_BY_TYPE and set(pj["shapeLabels"]) == set(SHAPES) and pj["ui"] == UI
    assert set(SHAPE_BY_TYPE.values()) <= set(SHAPES)
    assert shape_of("switch") == "diamond" and shape_of("whatever") == "rect" and shape_of(None) == "rect"
