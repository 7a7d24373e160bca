"""The one palette every view uses: task and workflow statuses, node shapes, chrome colours.

Conductor's classic UI colours its diagram and its timeline differently (IN_PROGRESS is yellow in
one and blue in the other, CANCELED purple in one and red in the other). conductor_lab keeps a
single table, taken from the diagram (``ui/src/components/diagram/diagram.scss``), and pairs every
colour with an icon and a label so that no view relies on colour alone. The graph ESM receives
``palette_json()`` as a trait and hard-codes no colour; the static SVG and matplotlib plots read
the same table through ``status_style`` / ``status_color``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = [
    "NOT_EXECUTED",
    "SHAPES",
    "SHAPE_BY_TYPE",
    "SHAPE_LABELS",
    "STATUS_STYLE",
    "UI",
    "StatusStyle",
    "palette_json",
    "shape_of",
    "status_color",
    "status_style",
]


@dataclass(frozen=True)
class StatusStyle:
    """How one status is drawn: node fill and border, text colour, an icon character, a label."""

    fill: str
    stroke: str
    text: str
    icon: str
    label: str


#: what a node that has not run (yet) looks like once a run is shown on the graph
NOT_EXECUTED = "NOT_EXECUTED"

_GREEN = ("#aee1b8", "#2f7a3d", "#163e1d")
_AMBER = ("#feeac5", "#c08a1e", "#8b5b02")
_YELLOW = ("#fff5da", "#c2920d", "#6b4f00")  # Conductor's #c2920d text is too faint on #fff5da
_BLUE = ("#cbe2f7", "#3d7ab8", "#11497a")
_PURPLE = ("#ded5f8", "#6a55a8", "#26194b")
_RED = ("#f9c6c9", "#c62828", "#7f050b")
_GRAY = ("#e8eaed", "#80868b", "#3c4043")


def _style(colours: tuple[str, str, str], icon: str, label: str) -> StatusStyle:
    fill, stroke, text = colours
    return StatusStyle(fill=fill, stroke=stroke, text=text, icon=icon, label=label)


#: task statuses (``Task.Status``), NOT_EXECUTED, and the workflow statuses a task never has
STATUS_STYLE: dict[str, StatusStyle] = {
    "SCHEDULED": _style(_BLUE, "◷", "Scheduled"),
    "IN_PROGRESS": _style(_YELLOW, "▶", "In progress"),
    "COMPLETED": _style(_GREEN, "✓", "Completed"),
    "COMPLETED_WITH_ERRORS": _style(_AMBER, "⚠", "Completed with errors"),
    "FAILED": _style(_RED, "✗", "Failed"),
    "FAILED_WITH_TERMINAL_ERROR": _style(_RED, "✖", "Failed (terminal error)"),
    "TIMED_OUT": _style(_RED, "⏱", "Timed out"),
    "CANCELED": _style(_PURPLE, "⊘", "Canceled"),
    "SKIPPED": _style(_GRAY, "↷", "Skipped"),
    NOT_EXECUTED: StatusStyle(
        fill="#fafafa", stroke="#c8c8c8", text="#9e9e9e", icon="○", label="Not executed"
    ),
    # workflow statuses (COMPLETED / FAILED / TIMED_OUT are shared with tasks)
    "RUNNING": _style(_YELLOW, "▶", "Running"),
    "PAUSED": _style(_BLUE, "⏸", "Paused"),
    "TERMINATED": _style(_RED, "⏹", "Terminated"),
}

#: the style of a status this table does not know (a newer server's status, a typo)
_UNKNOWN = StatusStyle(fill="#ffffff", stroke="#5f6368", text="#202124", icon="?", label="Unknown")

#: node shapes the views know how to draw
SHAPES = ("rect", "diamond", "fork", "join", "loop", "sub", "terminal", "event", "wait", "system")

#: Conductor task type -> node shape ("START" / "END" are the synthetic terminals); unknown -> rect
SHAPE_BY_TYPE: dict[str, str] = {
    "SIMPLE": "rect",
    "DYNAMIC": "rect",
    "SWITCH": "diamond",
    "DECISION": "diamond",
    "FORK_JOIN": "fork",
    "FORK_JOIN_DYNAMIC": "fork",
    "JOIN": "join",
    "EXCLUSIVE_JOIN": "join",
    "DO_WHILE": "loop",
    "SUB_WORKFLOW": "sub",
    "START_WORKFLOW": "sub",
    "TERMINATE": "terminal",
    "START": "terminal",
    "END": "terminal",
    "EVENT": "event",
    "KAFKA_PUBLISH": "event",
    "WAIT": "wait",
    "HUMAN": "wait",
    "HTTP": "system",
    "INLINE": "system",
    "LAMBDA": "system",
    "JSON_JQ_TRANSFORM": "system",
    "SET_VARIABLE": "system",
    "NOOP": "system",
}

#: what each shape stands for, for legends
SHAPE_LABELS: dict[str, str] = {
    "rect": "worker task",
    "diamond": "switch / decision",
    "fork": "fork",
    "join": "join",
    "loop": "do-while loop",
    "sub": "sub-workflow / start workflow",
    "terminal": "start / end / terminate",
    "event": "event / publish",
    "wait": "wait / human",
    "system": "system task",
}

#: colours of everything that is not a status: plain nodes, edges, groups, badges, selection
UI: dict[str, str] = {
    "background": "#ffffff",
    "nodeFill": "#ffffff",
    "nodeStroke": "#5f6368",
    "nodeText": "#202124",
    "sublabelText": "#5f6368",
    "edge": "#9aa0a6",
    "edgeExecuted": "#2e6b37",
    "edgeDimmed": "#dadce0",
    "edgeLabel": "#3c4043",
    "edgeLabelBackground": "#ffffff",
    "groupFill": "#f6f8fc",
    "groupStroke": "#c5cbd3",
    "groupText": "#5f6368",
    "badgeFill": "#3c4043",
    "badgeText": "#ffffff",
    "selection": "#1a73e8",
}

Part = Literal["fill", "stroke", "text"]


def status_style(status: str | None) -> StatusStyle:
    """The style of ``status``; None means not executed; an unknown status gets a neutral style."""
    if status is None:
        return STATUS_STYLE[NOT_EXECUTED]
    return STATUS_STYLE.get(status, _UNKNOWN)


def status_color(status: str | None, part: Part = "fill") -> str:
    """One colour of ``status`` as ``#rrggbb``, e.g. for matplotlib bars (``part="fill"``)."""
    return str(getattr(status_style(status), part))


def shape_of(task_type: str | None) -> str:
    """The node shape of a Conductor task type; unknown and missing types are plain rectangles."""
    return SHAPE_BY_TYPE.get((task_type or "").upper(), "rect")


def palette_json() -> dict[str, Any]:
    """Everything the ESM needs to colour and shape nodes, as plain JSON.

    ``{"status": {STATUS: {fill, stroke, text, icon, label}}, "shapes": {TYPE: shape},
    "shapeLabels": {shape: text}, "ui": {name: colour}, "notExecuted": "NOT_EXECUTED"}``
    """
    return {
        "status": {name: asdict(style) for name, style in STATUS_STYLE.items()},
        "shapes": dict(SHAPE_BY_TYPE),
        "shapeLabels": dict(SHAPE_LABELS),
        "ui": dict(UI),
        "notExecuted": NOT_EXECUTED,
    }
