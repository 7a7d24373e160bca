"""anywidget views: thin front-ends over models that Python computes.

``GraphView`` draws a Layout (``conductor_lab.widgets.layout``) with a Status map on top, reports
clicks (node selection, loop expand/collapse, control actions) and shows the task detail Python
computed for the selected node. ``HistoryView`` is a filterable table of workflow runs whose
filters Python turns into SQL. The ESM files in ``static/`` only draw and report; every decision
(what a node looks like in a run, which actions are allowed, what a filter means) stays here or in
the code that owns these views.

Wire contract (trait names as the ESM reads them):

- ``GraphView.graph`` is the Layout JSON of the common contract. In Python it is also reachable as
  ``view.layout`` (and ``GraphView(layout=...)``): the synced trait cannot be called ``layout``,
  because ipywidgets' front-end treats a DOM widget's ``layout`` state as a reference to a Layout
  *model* and tries to build a view from it (``setLayout`` -> ``create_child_view``), which fails
  on a plain dict (checked in JupyterLab 4.6: "Cannot read properties of undefined (reading
  'then')" as a page error). Shadowing the inherited trait with a property keeps ``layout`` off
  the wire.
- ``status`` is the Status map; the ESM applies a new map as a delta (only the nodes whose entry
  changed are touched), so an owner may replace the whole dict on every update.
- Control actions arrive as custom messages ``{"type": "action", "verb": v, "selected": id}``.
"""

from __future__ import annotations

import html
import logging
import pathlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NotRequired, TypedDict

import anywidget
import traitlets

log = logging.getLogger(__name__)

STATIC = pathlib.Path(__file__).parent / "static"

Json = dict[str, Any]
ActionCallback = Callable[[str, Json], None]
FiltersCallback = Callable[[Json], None]


class ActionSpec(TypedDict):
    """One toolbar button: a Conductor verb (``retry``, ``restart``...), enabled when allowed."""

    verb: str
    label: str
    enabled: bool
    title: NotRequired[str]


class AttemptRow(TypedDict):
    """One attempt of the selected task (retries + 1 rows), newest last."""

    attempt: int
    status: str
    taskId: str
    start: str
    end: str
    reason: str


class TaskDetail(TypedDict, total=False):
    """The side panel for ``selected``: bounded previews Python already formatted as text."""

    title: str
    status: str
    summary: list[list[str]]
    input: str
    output: str
    logs: list[str]
    attempts: list[AttemptRow]
    truncated: bool


class HistoryFilters(TypedDict, total=False):
    """What the history filter bar writes; ``""`` means "any" for every key.

    ``since`` is one of ``"1h"``, ``"24h"``, ``"7d"`` or ``""`` (all time); ``text`` is free text
    matched against ids, correlation ids, reasons and input/output by the owner.
    """

    name: str
    status: str
    since: str
    text: str


HISTORY_COLUMNS: list[str] = [
    "workflowType",
    "version",
    "status",
    "startTime",
    "duration_s",
    "workflowId",
    "correlationId",
    "reason",
]
SINCE_CHOICES: tuple[str, ...] = ("", "1h", "24h", "7d")


def _palette_json() -> Json:
    """The shared palette (``conductor_lab.widgets.palette``), or ``{}`` while it is missing.

    An empty palette is still drawable: the stylesheets give neutral greys, and status icons and
    labels fall back to the status names, so colour is never the only carrier of meaning.
    """
    try:
        from conductor_lab.widgets import palette
    except ImportError:
        return {}
    return dict(palette.palette_json())


Bundle = Mapping[str, Any] | tuple[Mapping[str, Any], Mapping[str, Any]] | None


def _bundle(data: Bundle) -> tuple[Json, Json]:
    """Normalise what ``AnyWidget._repr_mimebundle_`` returned into ``(data, metadata)``."""
    if data is None:
        return {}, {}
    if isinstance(data, tuple):
        return dict(data[0]), dict(data[1])
    return dict(data), {}


def _summary_html(css_class: str, title: str, rows: Iterable[tuple[str, str]]) -> str:
    """A small escaped ``<div><b>title</b><table>..</table></div>`` for static fallbacks."""
    cells = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
        f"<td>{html.escape(v)}</td></tr>"
        for k, v in rows
    )
    return f"<div class='{css_class}'><b>{html.escape(title)}</b><table>{cells}</table></div>"


class GraphView(anywidget.AnyWidget):
    """A workflow drawn as a graph: a blueprint (``run_status=None``) or a run with live status.

    The owner (``Lab.blueprint`` / ``Run``) fills ``graph``, ``status``, ``executed_edges``,
    ``actions`` and, when ``selected`` changes, ``detail``; it registers ``on_action`` to run
    the verbs and writes the outcome to ``message``. Selecting nodes and expanding loops are
    plain trait writes from the browser that the owner observes (``observe(f, "selected")``).
    """

    _esm = STATIC / "graph.js"
    _css = STATIC / "graph.css"

    graph = traitlets.Dict().tag(sync=True)
    status = traitlets.Dict().tag(sync=True)
    executed_edges = traitlets.List(traitlets.Unicode()).tag(sync=True)
    palette = traitlets.Dict().tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    run_status = traitlets.Unicode(None, allow_none=True).tag(sync=True)
    selected = traitlets.Unicode(None, allow_none=True).tag(sync=True)
    expanded = traitlets.List(traitlets.Unicode()).tag(sync=True)
    detail = traitlets.Dict().tag(sync=True)
    actions = traitlets.List(traitlets.Dict()).tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)

    def __init__(self, layout: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        if layout is not None:
            kwargs["graph"] = dict(layout)
        super().__init__(**kwargs)
        self._action_callbacks: list[ActionCallback] = []
        self.on_msg(self._dispatch_msg)

    @traitlets.default("palette")
    def _default_palette(self) -> Json:
        return _palette_json()

    # ``layout`` is the brief's name for the Layout JSON; see the module docstring for why the
    # synced trait is ``graph``. The property shadows ipywidgets' DOMWidget.layout trait.
    @property  # type: ignore[override]
    def layout(self) -> Json:
        """The Layout JSON being drawn (alias of the synced ``graph`` trait)."""
        return dict(self.graph)

    @layout.setter
    def layout(self, value: Mapping[str, Any]) -> None:
        self.graph = dict(value)

    def on_action(self, callback: ActionCallback, *, remove: bool = False) -> None:
        """Call ``callback(verb, message)`` when a toolbar action is clicked in the browser.

        ``message`` is the whole custom message (``type``, ``verb``, ``selected``). An exception
        raised by a callback is shown in the toolbar (``message``) instead of vanishing into the
        kernel log, where nobody would see it.
        """
        if remove:
            self._action_callbacks.remove(callback)
        else:
            self._action_callbacks.append(callback)

    def _dispatch_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("type") != "action":
            return
        verb = content.get("verb")
        if not isinstance(verb, str) or not verb:
            return
        for callback in list(self._action_callbacks):
            try:
                callback(verb, content)
            except Exception as exc:  # shown to the user; the comm handler must not die
                log.exception("GraphView action %r failed", verb)
                self.message = f"{verb} failed: {exc}"

    def node_count(self) -> int:
        """How many nodes the current Layout draws."""
        return len(self.graph.get("nodes") or [])

    def __repr__(self) -> str:
        state = f" {self.run_status}" if self.run_status else ""
        return f"<GraphView {self.title!r} {self.node_count()} nodes{state}>"

    def static_html(self) -> str:
        """The picture without a front-end: the SVG of ``svg.to_svg``, or a summary table."""
        try:
            from conductor_lab.widgets.svg import to_svg
        except ImportError:
            return self._summary_html()
        try:
            svg = to_svg(
                self.graph,
                self.status or None,
                title=self.title or None,
                executed_edges=self.executed_edges or None,
            )
        except Exception:  # the fallback must never hide the live widget
            log.exception("static SVG for %r failed", self)
            return self._summary_html()
        return f"<div class='cl-graph-static'>{svg}</div>"

    def _summary_html(self) -> str:
        counts: dict[str, int] = {}
        for entry in self.status.values():
            name = str(entry.get("status", "?")) if isinstance(entry, dict) else "?"
            counts[name] = counts.get(name, 0) + 1
        rows = [("nodes", str(self.node_count())), ("edges", str(len(self.graph.get("edges") or [])))]
        if self.run_status:
            rows.append(("run status", self.run_status))
        rows.extend((f"tasks {k}", str(v)) for k, v in sorted(counts.items()))
        return _summary_html("cl-graph-static", self.title or "workflow", rows)

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[Json, Json]:
        data, metadata = _bundle(super()._repr_mimebundle_(**kwargs))
        data["text/html"] = self.static_html()
        return data, metadata


class HistoryView(anywidget.AnyWidget):
    """A table of workflow runs with a filter bar; Python runs the query behind ``filters``.

    ``rows`` are dicts with workflowId, workflowType, version, status, startTime, endTime (ISO
    strings), duration_s, correlationId and reason; ``total`` is how many runs match in all (the
    footer says "N of total"). Clicking a row writes ``selected`` (a workflowId).
    """

    _esm = STATIC / "history.js"
    _css = STATIC / "history.css"

    rows = traitlets.List(traitlets.Dict()).tag(sync=True)
    columns = traitlets.List(default_value=list(HISTORY_COLUMNS)).tag(sync=True)
    filters = traitlets.Dict(default_value={"name": "", "status": "", "since": "", "text": ""}).tag(sync=True)
    statuses = traitlets.List(traitlets.Unicode()).tag(sync=True)
    names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    selected = traitlets.Unicode(None, allow_none=True).tag(sync=True)
    palette = traitlets.Dict().tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._filter_handlers: list[tuple[FiltersCallback, Callable[[Mapping[str, Any]], None]]] = []

    @traitlets.default("palette")
    def _default_palette(self) -> Json:
        return _palette_json()

    def on_filters(self, callback: FiltersCallback, *, remove: bool = False) -> None:
        """Call ``callback(filters)`` whenever the filter bar (or Python) changes ``filters``."""

        def handler(change: Mapping[str, Any]) -> None:
            callback(dict(change["new"]))

        if remove:
            for registered, wrapped in list(self._filter_handlers):
                if registered == callback:  # == : bound methods are new objects each time
                    self.unobserve(wrapped, "filters")
                    self._filter_handlers.remove((registered, wrapped))
            return
        self._filter_handlers.append((callback, handler))
        self.observe(handler, "filters")

    def __repr__(self) -> str:
        return f"<HistoryView {len(self.rows)} of {self.total} runs>"

    def static_html(self, limit: int = 50) -> str:
        """An escaped HTML table of the first ``limit`` rows (saved notebooks, nbviewer)."""
        cols = [c if isinstance(c, str) else str(c.get("key", "")) for c in self.columns] or HISTORY_COLUMNS
        head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in cols)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_cell_text(row.get(c)))}</td>" for c in cols) + "</tr>"
            for row in self.rows[:limit]
        )
        foot = f"<p>{min(len(self.rows), limit)} of {self.total} runs</p>"
        return f"<div class='cl-history-static'><table><tr>{head}</tr>{body}</table>{foot}</div>"

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[Json, Json]:
        data, metadata = _bundle(super()._repr_mimebundle_(**kwargs))
        data["text/html"] = self.static_html()
        return data, metadata


def _cell_text(value: Any) -> str:
    """A table cell as text: ``None`` is empty, floats keep three decimals at most."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)
