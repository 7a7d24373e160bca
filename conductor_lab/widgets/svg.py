"""A layout (and optionally a run's status) as one standalone SVG string.

This is the static fallback the widgets put in their mime bundles: GitHub, nbviewer and nbconvert
drop widget views without saved state, but they show ``image/svg+xml``. So the SVG carries
everything itself: inline attributes only (no CSS, no ``<defs>``/``url(#id)`` that could clash
with another SVG on the same page, no script, no external reference), arrowheads as polygons,
and every text escaped. Colours, icons and labels come from ``palette``, as in the live view.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any
from xml.sax.saxutils import escape

from conductor_lab.widgets.layout import DIAMOND_LABEL_ROOM, DIAMOND_SUBLABEL_ROOM
from conductor_lab.widgets.palette import NOT_EXECUTED, SHAPE_LABELS, SHAPES, STATUS_STYLE, UI, status_style

__all__ = ["shape_elements", "to_svg"]

FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"
TITLE_H = 30.0
LEGEND_ROW_H = 22.0
LEGEND_PAD = 12.0
CHAR_W = 7.0  # 12 px text
EDGE_CHAR_W = 6.4  # 11 px
LABEL_CHAR_W = 7.6  # 13 px bold
SUB_CHAR_W = 6.3  # 11 px
BADGE_CHAR_W = 6.2  # 10 px

_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _esc(text: Any) -> str:
    """Text safe in an XML text node or a double-quoted attribute (characters XML cannot hold,
    such as control characters, are dropped)."""
    return escape(_INVALID_XML.sub("", str(text)), {'"': "&quot;"})


def _n(v: float) -> str:
    """A coordinate, short: 12, 12.5 (one decimal at most)."""
    r = round(float(v), 1)
    return str(int(r)) if r == int(r) else str(r)


def _open(tag: str, **attrs: Any) -> str:
    """An opening tag; attribute names with ``_`` become ``-`` (``stroke_width``), numbers are
    shortened, None values are left out, values are escaped."""
    parts = [tag]
    for key, value in attrs.items():
        if value is None:
            continue
        shown = _n(value) if isinstance(value, float | int) and not isinstance(value, bool) else value
        parts.append(f'{key.rstrip("_").replace("_", "-")}="{_esc(shown)}"')
    return "<" + " ".join(parts) + ">"


def _el(tag: str, text: str | None = None, **attrs: Any) -> str:
    """One complete element, empty or holding escaped ``text``."""
    head = _open(tag, **attrs)
    return head[:-1] + "/>" if text is None else f"{head}{_esc(text)}</{tag}>"


def _fit(text: str, width: float, char_w: float) -> str:
    """``text`` cut with an ellipsis so that it fits ``width`` px (estimated glyph widths)."""
    room = max(int(width / char_w), 1)
    return text if len(text) <= room else text[: max(room - 1, 0)] + "…"


def _points(pts: Iterable[tuple[float, float]]) -> str:
    return " ".join(f"{_n(x)},{_n(y)}" for x, y in pts)


# ------------------------------------------------------------------------------------------------
# Shapes


def shape_elements(
    shape: str, x: float, y: float, w: float, h: float, fill: str, stroke: str, stroke_width: float = 1.5
) -> list[str]:
    """SVG elements drawing a node outline of ``shape`` in the box (x, y, w, h)."""
    paint: dict[str, Any] = {"fill": fill, "stroke": stroke, "stroke_width": stroke_width}
    line: dict[str, Any] = {"fill": "none", "stroke": stroke, "stroke_width": max(stroke_width - 0.5, 1.0)}
    c = min(10.0, w / 4, h / 3)  # corner cut / slant
    r, b, cx, cy = x + w, y + h, x + w / 2, y + h / 2
    polygons = {
        "diamond": [(cx, y), (r, cy), (cx, b), (x, cy)],
        "fork": [(x + c, y), (r - c, y), (r, b), (x, b)],
        "join": [(x, y), (r, y), (r - c, b), (x + c, b)],
        "event": [(x, y), (r - c, y), (r, cy), (r - c, b), (x, b)],
        "wait": [
            (x + c, y),
            (r - c, y),
            (r, y + c),
            (r, b - c),
            (r - c, b),
            (x + c, b),
            (x, b - c),
            (x, y + c),
        ],
    }
    if shape in polygons:
        return [_el("polygon", points=_points(polygons[shape]), **paint)]
    radius = {"terminal": h / 2, "loop": 6.0, "sub": 2.0, "system": 0.0}.get(shape, 6.0)
    out = [_el("rect", x=x, y=y, width=w, height=h, rx=radius, **paint)]
    if shape == "loop":  # double border
        d = min(3.0, h / 6)
        out.append(_el("rect", x=x + d, y=y + d, width=w - 2 * d, height=h - 2 * d, rx=4.0, **line))
    elif shape == "sub":  # flowchart "predefined process": bars at both ends
        d = min(8.0, w / 6)
        out.append(_el("line", x1=x + d, y1=y, x2=x + d, y2=b, **line))
        out.append(_el("line", x1=r - d, y1=y, x2=r - d, y2=b, **line))
    elif shape == "system":  # one bar on the left
        d = min(5.0, w / 8)
        out.append(_el("line", x1=x + d, y1=y, x2=x + d, y2=b, **line))
    return out


# ------------------------------------------------------------------------------------------------
# Pieces


def _arrowhead(p0: tuple[float, float], p1: tuple[float, float], colour: str) -> str:
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    length = math.hypot(dx, dy) or 1.0
    ux, uy = dx / length, dy / length
    size, half = 8.0, 4.0
    bx, by = p1[0] - ux * size, p1[1] - uy * size
    tip = [p1, (bx - uy * half, by + ux * half), (bx + uy * half, by - ux * half)]
    return _el("polygon", points=_points(tip), fill=colour)


def _label_anchor(pts: list[tuple[float, float]], kind: str) -> tuple[float, float]:
    """Where an edge label sits: mid first segment; on a loop edge, mid of its longest segment."""
    i = 0
    if kind == "loop":
        i = max(range(len(pts) - 1), key=lambda j: math.dist(pts[j], pts[j + 1]))
    (x0, y0), (x1, y1) = pts[i], pts[i + 1]
    return (x0 + x1) / 2, (y0 + y1) / 2


def _edge(e: Mapping[str, Any], state: str) -> list[str]:
    colour = {"executed": UI["edgeExecuted"], "dimmed": UI["edgeDimmed"]}.get(state, UI["edge"])
    width = {"executed": 2.5, "dimmed": 1.2}.get(state, 1.5)
    pts = [(float(p[0]), float(p[1])) for p in e.get("points") or []]
    if len(pts) < 2:
        return []
    kind = str(e.get("kind") or "next")
    out = [
        _el("polyline", points=_points(pts), fill="none", stroke=colour, stroke_width=width,
            stroke_linejoin="round", stroke_dasharray="5 3" if kind == "loop" else None),
        _arrowhead(pts[-2], pts[-1], colour),
    ]  # fmt: skip
    label = e.get("label")
    if label and not (kind == "loop" and label == "loop"):  # the dashes say it already
        text = _fit(str(label), 150, EDGE_CHAR_W)
        lx, ly = _label_anchor(pts, kind)
        tw = len(text) * EDGE_CHAR_W + 8
        out.append(_el("rect", x=lx - tw / 2, y=ly - 8, width=tw, height=16, rx=3,
                       fill=UI["edgeLabelBackground"], fill_opacity=0.9))  # fmt: skip
        out.append(_el("text", text, x=lx, y=ly + 4, text_anchor="middle", font_size=11,
                       fill=UI["edgeLabel"]))  # fmt: skip
    return out


def _node(n: Mapping[str, Any], entry: Mapping[str, Any] | None, with_status: bool) -> list[str]:
    x, y, w, h = (float(n[k]) for k in ("x", "y", "w", "h"))
    status = entry.get("status") if entry else None
    attempts = int(entry.get("attempts") or 1) if entry else 0
    tooltip = f"{n.get('label')} ({n.get('type')})"
    if with_status:
        style = status_style(str(status) if status is not None else None)
        fill, stroke, text, sub = style.fill, style.stroke, style.text, style.text
        tooltip += f" · {style.label}" + (f" · {attempts} attempts" if attempts > 1 else "")
        icon = style.icon if status is not None else ""
    else:
        fill, stroke, text, sub = UI["nodeFill"], UI["nodeStroke"], UI["nodeText"], UI["sublabelText"]
        icon = ""
    out = [_open("g", data_id=n.get("id")), _el("title", tooltip)]
    out += shape_elements(str(n.get("shape") or "rect"), x, y, w, h, fill, stroke, 2.0 if status else 1.5)

    diamond = n.get("shape") == "diamond"
    label = str(n.get("label") or "")
    first = f"{icon} {label}" if icon else label
    sublabel = str(n.get("sublabel") or "")
    cx, cy = x + w / 2, y + h / 2
    room = w * DIAMOND_LABEL_ROOM if diamond else w - 20
    out.append(_el("text", _fit(first, room, LABEL_CHAR_W), x=cx, y=cy + (-2 if sublabel else 4.5),
                   text_anchor="middle", font_size=13, font_weight=600, fill=text))  # fmt: skip
    if sublabel:
        room = w * DIAMOND_SUBLABEL_ROOM if diamond else w - 20
        out.append(_el("text", _fit(sublabel, room, SUB_CHAR_W), x=cx, y=cy + 12, text_anchor="middle",
                       font_size=11, fill=sub, fill_opacity=0.85))  # fmt: skip

    badge = n.get("badge")
    if attempts > 1:
        badge = (f"{badge} · " if badge else "") + f"{attempts} attempts"
    if badge:
        shown = _fit(str(badge), 150, BADGE_CHAR_W)
        bw = len(shown) * BADGE_CHAR_W + 12
        bx, by = x + w - bw + 6, y - 9
        out.append(_el("rect", x=bx, y=by, width=bw, height=16, rx=8, fill=UI["badgeFill"]))
        out.append(_el("text", shown, x=bx + bw / 2, y=by + 11.5, text_anchor="middle", font_size=10,
                       fill=UI["badgeText"]))  # fmt: skip
    out.append("</g>")
    return out


def _group(g: Mapping[str, Any]) -> list[str]:
    x, y, w, h = (float(g[k]) for k in ("x", "y", "w", "h"))
    label = _fit("↻ " + str(g.get("label") or ""), w - 16, SUB_CHAR_W)
    return [
        _el("rect", x=x, y=y, width=w, height=h, rx=8, fill=UI["groupFill"], stroke=UI["groupStroke"],
            stroke_dasharray="4 3"),
        _el("text", label, x=x + 8, y=y + 16, font_size=11, fill=UI["groupText"]),
    ]  # fmt: skip


def _legend_items(layout: Mapping[str, Any], status: Mapping[str, Any] | None) -> list[tuple[str, str, str]]:
    """(kind, key, text) for every status and shape on the picture, in palette order."""
    items: list[tuple[str, str, str]] = []
    if status is not None:
        present = {str(v.get("status")) for v in status.values()}
        if any(n["id"] not in status for n in layout.get("nodes") or []):
            present.add(NOT_EXECUTED)
        known = [s for s in STATUS_STYLE if s in present]
        for s in [*known, *sorted(present - set(known))]:
            style = status_style(s)
            items.append(("status", s, f"{style.icon} {style.label}"))
    shapes = {str(n.get("shape") or "rect") for n in layout.get("nodes") or []}
    for shape in [s for s in SHAPES if s in shapes] + sorted(shapes - set(SHAPES)):
        items.append(("shape", shape, SHAPE_LABELS.get(shape, shape)))
    return items


def _legend(items: list[tuple[str, str, str]], width: float, top: float) -> tuple[list[str], float]:
    """Legend rows wrapped to ``width``; returns the elements and their height."""
    out: list[str] = []
    x, y = LEGEND_PAD, top + LEGEND_PAD
    for kind, key, text in items:
        item_w = 30 + len(text) * CHAR_W + 14
        if x > LEGEND_PAD and x + item_w > width - LEGEND_PAD:
            x, y = LEGEND_PAD, y + LEGEND_ROW_H
        if kind == "status":
            style = status_style(key)
            out.append(_el("rect", x=x, y=y, width=22, height=14, rx=3, fill=style.fill, stroke=style.stroke))
        else:
            out += shape_elements(key, x, y, 22, 14, UI["nodeFill"], UI["nodeStroke"], 1.2)
        out.append(_el("text", text, x=x + 30, y=y + 11, font_size=12, fill=UI["nodeText"]))
        x += item_w
    height = (y + LEGEND_ROW_H + LEGEND_PAD - top) if items else 0.0
    return out, height


# ------------------------------------------------------------------------------------------------


def to_svg(
    layout: Mapping[str, Any],
    status: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    title: str | None = None,
    legend: bool = True,
    executed_edges: Collection[str] | None = None,
) -> str:
    """A standalone SVG of ``layout`` (from ``layout.layout``), optionally with a run on it.

    With ``status`` (``graph.execution_status``), nodes take their status colours and icons,
    nodes that did not run are dimmed, and executed edges are drawn thicker and darker: the ids in
    ``executed_edges`` or, without them, every edge whose two ends ran. Nodes retried show an
    "N attempts" badge. The legend lists the statuses and shapes on the picture.
    """
    gw, gh = float(layout.get("width") or 0), float(layout.get("height") or 0)
    top = TITLE_H if title else 0.0
    items = _legend_items(layout, status) if legend else []
    width = max(gw, 320.0) if items else gw
    legend_els, legend_h = _legend(items, width, top + gh)
    height = top + gh + legend_h

    with_status = status is not None
    st: Mapping[str, Mapping[str, Any]] = status or {}
    edges = layout.get("edges") or []
    if with_status and executed_edges is None:
        executed = {str(e["id"]) for e in edges if e["source"] in st and e["target"] in st}
    else:
        executed = set(executed_edges or ())

    parts = [
        _open("svg", xmlns="http://www.w3.org/2000/svg", width=width, height=height,
              viewBox=f"0 0 {_n(width)} {_n(height)}", font_family=FONT, font_size=12, role="img"),
        _el("rect", x=0, y=0, width=width, height=height, fill=UI["background"]),
    ]  # fmt: skip
    if title:
        parts.append(_el("title", title))
        parts.append(_el("text", title, x=LEGEND_PAD, y=20, font_size=15, font_weight=600,
                         fill=UI["nodeText"]))  # fmt: skip
    parts.append(_open("g", transform=f"translate(0,{_n(top)})"))
    for g in layout.get("groups") or []:
        parts += _group(g)
    for e in edges:
        state = ("executed" if str(e["id"]) in executed else "dimmed") if with_status else "plain"
        parts += _edge(e, state)
    for n in layout.get("nodes") or []:
        parts += _node(n, st.get(str(n["id"])), with_status)
    parts.append("</g>")
    parts += legend_els
    parts.append("</svg>")
    return "\n".join(parts)
