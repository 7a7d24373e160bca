"""Owners of the views: they compute what the ESM draws and turn clicks into method calls.

``RunController`` keeps a :class:`~conductor_lab.widgets.views.GraphView` in step with one
execution. A daemon thread long-polls the server's watch endpoint
(``/api/lab/workflow/{id}/watch``: it answers as soon as the workflow changes), keeps only the
newest answer, and hands it to the kernel's event loop at most ``max_rate`` times a second. The
view's traits are only ever written on that loop (ipywidgets' rule); outside a kernel there is no
loop to hand over to and the thread applies the update itself. The layout is computed once and
again only when the execution adds nodes (a dynamic fork's branches, an expanded loop), so an
update is a new Status map that the ESM applies as a delta.

Buttons call the ``Run``'s own methods (``retry``, ``pause``...), the ones a user would call in a
cell, and are enabled only where conductor-oss allows the verb (``Run.allowed_actions``).
``BlueprintController`` does the same for a definition with no run, ``HistoryController`` turns
the history table's filters into ``Lab.history`` calls and opens the clicked run below the table.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Container, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from conductor_lab.widgets.graph import blueprint_graph, execution_status, tasks_by_node
from conductor_lab.widgets.layout import layout
from conductor_lab.widgets.views import GraphView, HistoryView

if TYPE_CHECKING:
    import networkx as nx

    from conductor_lab.lab import Lab
    from conductor_lab.run import Run

log = logging.getLogger(__name__)

Json = dict[str, Any]

#: the control buttons, in toolbar order: (verb, label, what it does)
VERBS: tuple[tuple[str, str, str], ...] = (
    ("pause", "Pause", "pause the workflow: no new tasks are scheduled"),
    ("resume", "Resume", "resume a paused workflow"),
    ("terminate", "Terminate", "terminate the workflow; open tasks are canceled"),
    ("retry", "Retry", "retry from the last failed task"),
    ("restart", "Restart", "start the same execution again from the beginning"),
    ("rerun", "Rerun from selected", "rerun from the selected task (or from the start)"),
)
#: characters of input/output shown in the side panel; the full value is on ``run.task(ref)``
PREVIEW_CHARS = 4000
#: task log lines shown in the side panel (the newest)
PREVIEW_LOGS = 50
#: how long one watch call waits on the server for a change
WATCH_TIMEOUT_MS = 10_000


def kernel_loop() -> asyncio.AbstractEventLoop | None:
    """The loop this code runs on inside a Jupyter cell (ipykernel runs cells on it), else None."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def preview(value: Any, limit: int = PREVIEW_CHARS) -> tuple[str, bool]:
    """Pretty JSON text of ``value`` cut to ``limit`` characters; (text, truncated)."""
    text = orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str).decode()
    if len(text) <= limit:
        return text, False
    return text[
        :limit
    ] + f"\n... ({len(text) - limit:,} more characters; the full value: run.task(ref))", True


def _when(ms: Any) -> str:
    if not isinstance(ms, int) or ms <= 0:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _seconds(start: Any, end: Any) -> str:
    if not isinstance(start, int) or not isinstance(end, int) or start <= 0 or end < start:
        return ""
    return f"{(end - start) / 1000:.3f} s"


def task_detail(node_id: str, execution: Mapping[str, Any] | None, definition_node: Json | None,
                logs: Callable[[str], list[str]] | None = None,
                known: Container[str] = ()) -> Json:  # fmt: skip
    """The side panel for a node: the latest attempt's summary, previews, logs and every attempt.

    ``known``: the graph's node ids (how ``graph.task_node_id`` tells a loop iteration's ``x__N``
    from a reference name that merely ends that way)."""
    attempts = tasks_by_node(execution, known).get(node_id, []) if execution else []
    if not attempts:
        if definition_node is None:
            return {}
        text, cut = preview(definition_node)
        return {
            "title": node_id,
            "status": "NOT_EXECUTED" if execution else "",
            "summary": [
                ["type", str(definition_node.get("type", ""))],
                ["name", str(definition_node.get("name", ""))],
            ],
            "input": text,
            "output": "",
            "logs": [],
            "attempts": [],
            "truncated": cut,
        }
    latest = attempts[-1]
    input_text, cut_in = preview(latest.get("inputData") or {})
    output_text, cut_out = preview(latest.get("outputData") or {})
    summary = [
        ["reference", str(latest.get("referenceTaskName", ""))],
        ["type", str(latest.get("taskType", ""))],
        ["task def", str(latest.get("taskDefName", ""))],
        ["status", str(latest.get("status", ""))],
        ["attempt", str(int(latest.get("retryCount") or 0) + 1)],
        ["worker", str(latest.get("workerId") or "")],
        ["scheduled", _when(latest.get("scheduledTime"))],
        ["started", _when(latest.get("startTime"))],
        ["ended", _when(latest.get("endTime"))],
        ["queue wait", _seconds(latest.get("scheduledTime"), latest.get("startTime"))],
        ["run time", _seconds(latest.get("startTime"), latest.get("endTime"))],
        ["reason", str(latest.get("reasonForIncompletion") or "")],
        ["taskId", str(latest.get("taskId", ""))],
    ]
    if latest.get("subWorkflowId"):
        summary.append(["sub-workflow", str(latest["subWorkflowId"])])
    lines: list[str] = []
    if logs is not None and latest.get("taskId"):
        try:
            lines = logs(str(latest["taskId"]))[-PREVIEW_LOGS:]
        except Exception as e:  # the panel still shows the rest
            lines = [f"(logs unavailable: {e})"]
    return {
        "title": node_id,
        "status": str(latest.get("status", "")),
        "summary": [row for row in summary if row[1]],
        "input": input_text,
        "output": output_text,
        "logs": lines,
        "attempts": [
            {
                "attempt": i + 1,
                "status": str(t.get("status", "")),
                "taskId": str(t.get("taskId", "")),
                "start": _when(t.get("startTime")),
                "end": _when(t.get("endTime")),
                "reason": str(t.get("reasonForIncompletion") or ""),
            }
            for i, t in enumerate(attempts)
        ],
        "truncated": cut_in or cut_out,
    }


def _definition_nodes(tasks: list[Any], out: dict[str, Json]) -> dict[str, Json]:
    """Every WorkflowTask of a definition by reference name, nested ones included."""
    for node in tasks:
        if not isinstance(node, dict):
            continue
        ref = node.get("taskReferenceName")
        if isinstance(ref, str):
            out[ref] = node
        for key in ("loopOver", "defaultCase"):
            _definition_nodes(node.get(key) or [], out)
        for branch in (node.get("decisionCases") or {}).values():
            _definition_nodes(branch or [], out)
        for lane in node.get("forkTasks") or []:
            _definition_nodes(lane or [], out)
    return out


class BlueprintController:
    """A definition drawn as a graph: expand/collapse re-lays it out, a click shows the node's JSON."""

    def __init__(self, definition: Mapping[str, Any]) -> None:
        self.definition = dict(definition)
        self._nodes = _definition_nodes(list(self.definition.get("tasks") or []), {})
        self.expanded: list[str] = []
        self.collapsed: list[str] = []
        self.graph = blueprint_graph(self.definition)
        title = f"{self.definition.get('name', '')} v{self.definition.get('version', 1)}"
        self.view = GraphView(layout=layout(self.graph), title=title, run_status=None)
        self.view.observe(self._on_expanded, "expanded")
        self.view.observe(self._on_selected, "selected")

    def to_networkx(self) -> nx.DiGraph:
        return self.graph

    def _on_expanded(self, change: Mapping[str, Any]) -> None:
        _toggle(self.graph, change, self.expanded, self.collapsed)
        self.graph = blueprint_graph(self.definition, expanded=self.expanded, collapsed=self.collapsed)
        self.view.layout = layout(self.graph)

    def _on_selected(self, change: Mapping[str, Any]) -> None:
        node = change["new"]
        self.view.detail = task_detail(node, None, self._nodes.get(node)) if node else {}


class RunController:
    """One execution's live graph: a watch thread feeding status deltas, clicks calling ``Run`` methods."""

    def __init__(self, run: Run, *, max_rate: float = 5.0, watch: bool = True) -> None:
        self.run = run
        self.min_interval = 1.0 / max_rate
        execution = run.json if run.json.get("tasks") is not None else run.refresh().json
        self.execution: Json = execution
        self.definition: Json = dict(execution.get("workflowDefinition") or {})
        self._nodes = _definition_nodes(list(self.definition.get("tasks") or []), {})
        self.expanded: list[str] = []
        self.collapsed: list[str] = []
        self.graph = self._build()
        title = f"{execution.get('workflowName', '')} v{execution.get('workflowVersion', '')} · {run.id}"
        self.view = GraphView(layout=layout(self.graph), title=title)
        self._show(execution)
        self.view.on_action(self._on_action)
        self.view.observe(self._on_selected, "selected")
        self.view.observe(self._on_expanded, "expanded")
        self._loop = kernel_loop()
        self._lock = threading.Lock()
        self._pending: tuple[str, Json] | None = None
        self._scheduled = False
        self._stop = threading.Event()
        self._last_offer = 0.0
        self.updates = 0  # applied updates (tests and benchmarks read it)
        self._thread: threading.Thread | None = None
        if watch:
            self._thread = threading.Thread(target=self._watch, name=f"live-{run.id}", daemon=True)
            self._thread.start()

    # -- feeding -----------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop watching (the view keeps its last picture)."""
        self._stop.set()

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    def _watch(self) -> None:
        version: str | None = None
        backoff = 0.2
        with self.run.lab.new_client() as client:
            while not self._stop.is_set():
                try:
                    version, wf = client.watch_workflow(self.run.id, version, WATCH_TIMEOUT_MS)
                    backoff = 0.2
                except Exception as e:  # server restarting, workflow removed: keep the picture, retry
                    log.debug("watch %s: %s", self.run.id, e)
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                if wf is None:
                    continue
                # coalesce: a change after a quiet spell shows at once; a burst at most max_rate a second
                wait = self._last_offer + self.min_interval - time.monotonic()
                if wait > 0 and not self._stop.wait(wait):
                    try:  # the newest state after the pause (answers at once)
                        newer_version, newer = client.watch_workflow(self.run.id, version, 0)
                    except Exception:
                        newer = None
                    if newer is not None:
                        version, wf = newer_version, newer
                self._last_offer = time.monotonic()
                self._offer(version, wf)

    def _offer(self, version: str, wf: Json) -> None:
        with self._lock:
            self._pending = (version, wf)
            if self._scheduled:
                return
            self._scheduled = True
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._apply_pending)
                return
            except RuntimeError:  # the loop closed meanwhile
                pass
        self._apply_pending()

    def _apply_pending(self) -> None:
        with self._lock:
            pending, self._pending, self._scheduled = self._pending, None, False
        if pending is not None:
            self.apply(pending[1])

    def apply(self, execution: Json) -> None:
        """Show a newer state of the execution (on the kernel's loop)."""
        self.execution = execution
        self.run._update(execution)
        self._relayout_if_changed()
        self._show(execution)
        self.updates += 1

    def _build(self) -> nx.DiGraph:
        return blueprint_graph(
            self.definition, execution=self.execution, expanded=self.expanded, collapsed=self.collapsed
        )

    def _relayout_if_changed(self) -> None:
        """Lay out again only when the run changed the picture's structure (a dynamic fork's
        branches, a badge); a plain status change keeps the layout. Building the graph is cheap
        (~12 ms at 500 nodes), the layout is what costs."""
        graph = self._build()
        if _structure(graph) != _structure(self.graph):
            self.view.layout = layout(graph)
        self.graph = graph

    def _show(self, execution: Json) -> None:
        status, edges = execution_status(self.graph, execution)
        with self.view.hold_sync():
            self.view.status = status
            self.view.executed_edges = edges
            self.view.run_status = str(execution.get("status", ""))
            self.view.actions = self.actions()
            if self.view.selected:
                self.view.detail = self._detail(self.view.selected)

    # -- clicks ------------------------------------------------------------------------------------

    def actions(self) -> list[Json]:
        allowed = set(self.run.allowed_actions(fresh=False))
        return [
            {"verb": verb, "label": label, "enabled": verb in allowed, "title": title}
            for verb, label, title in VERBS
        ]

    def _detail(self, node: str) -> Json:
        return task_detail(node, self.execution, self._nodes.get(node), logs=self._logs, known=self.graph)

    def _logs(self, task_id: str) -> list[str]:
        return [str(entry.get("log", "")) for entry in self.run.lab.client.get_task_logs(task_id)]

    def _on_selected(self, change: Mapping[str, Any]) -> None:
        node = change["new"]
        self.view.detail = self._detail(node) if node else {}

    def _on_expanded(self, change: Mapping[str, Any]) -> None:
        _toggle(self.graph, change, self.expanded, self.collapsed)
        self.graph = self._build()
        self.view.layout = layout(self.graph)
        self._show(self.execution)

    def _on_action(self, verb: str, content: Json) -> None:
        """A toolbar button: call the Run method of that name, report the outcome in the toolbar."""
        started = time.monotonic()
        try:
            if verb not in {v for v, _, _ in VERBS}:
                raise ValueError(f"unknown action {verb!r}")
            if verb not in self.run.allowed_actions(fresh=False):
                raise ValueError(f"{verb} is not allowed while the workflow is {self.run.status}")
            if verb == "rerun":
                selected = content.get("selected") or self.view.selected
                task = self._task_id(selected) if selected else None
                self.run.rerun(from_task=selected if task else None)
            elif verb == "terminate":
                self.run.terminate(reason="terminated from the notebook")
            else:
                getattr(self.run, verb)()
        except Exception as e:
            self.view.message = f"{verb} failed: {e}"
            return
        self.view.message = f"{verb}: done in {1000 * (time.monotonic() - started):.0f} ms"
        self.apply(self.run.json)

    def _task_id(self, node: str) -> str | None:
        attempts = tasks_by_node(self.execution, self.graph).get(node)
        return str(attempts[-1].get("taskId")) if attempts else None


class HistoryController:
    """Recent runs as a filterable table; a click opens that run's live graph below it."""

    def __init__(self, lab: Lab, *, limit: int = 100) -> None:
        import ipywidgets

        self.lab = lab
        self.limit = limit
        self.table = HistoryView()
        self.opened = ipywidgets.Output()
        self.current: RunController | None = None
        self.table.on_filters(self.refresh)
        self.table.observe(self._on_selected, "selected")
        self.refresh(dict(self.table.filters))

    def refresh(self, filters: Mapping[str, Any]) -> None:
        frame = self.lab.history(
            name=filters.get("name") or None,
            status=filters.get("status") or None,
            since=filters.get("since") or None,
            text=filters.get("text") or None,
            limit=self.limit,
            verbose=False,
        )
        rows = []
        for rec in frame.to_dict("records"):
            rows.append({k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in rec.items()})
        self.table.rows = _json_safe(rows)
        self.table.total = len(rows)
        names = self.lab.sql("SELECT DISTINCT name FROM workflows ORDER BY 1", verbose=False)
        self.table.names = [str(n) for n in names["name"].tolist()]

    def _on_selected(self, change: Mapping[str, Any]) -> None:
        workflow_id = change["new"]
        if not workflow_id:
            return
        if self.current is not None:
            self.current.close()
        self.current = RunController(self.lab.run(workflow_id))
        self.opened.clear_output()
        with self.opened:
            from IPython.display import display

            display(self.current.view)


def _structure(graph: nx.DiGraph) -> tuple[object, ...]:
    """What the layout depends on: the nodes with their badges and the edges."""
    nodes = tuple(sorted((str(n), str(a.get("badge")), bool(a.get("collapsed"))) for n, a in graph.nodes(data=True)))
    return nodes, tuple(sorted((str(u), str(v)) for u, v in graph.edges))


def _toggle(graph: nx.DiGraph, change: Mapping[str, Any], expanded: list[str], collapsed: list[str]) -> None:
    """The view reports clicks on a collapsible node's badge as ids toggled in its ``expanded``
    list; a click flips that node: collapsed ones expand, expanded ones (by size or by an
    earlier click) collapse."""
    for node in set(change["old"] or []) ^ set(change["new"] or []):
        attrs = graph.nodes.get(node, {})
        ref = str(attrs.get("ref") or node)
        for lst in (expanded, collapsed):
            if ref in lst:
                lst.remove(ref)
        (expanded if attrs.get("collapsed") else collapsed).append(ref)


def _json_safe(rows: list[Json]) -> list[Json]:
    """NaN/NaT and numpy scalars out, so the rows survive JSON on the widget wire."""
    return list(orjson.loads(orjson.dumps(rows, option=orjson.OPT_SERIALIZE_NUMPY, default=str)))
