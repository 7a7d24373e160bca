"""A blueprint (Conductor workflow definition) as a ``networkx.DiGraph``, and a run's status on it.

``blueprint_graph`` is what ``Blueprint.to_networkx()`` and ``Run.to_networkx()`` return and what
``layout.layout`` lays out. It follows the reading of Conductor's own diagram
(``ui/src/components/diagram/WorkflowDAG.js``): synthetic ``__start__`` / ``__end__`` terminals,
one edge per SWITCH case labelled with the case value, fork lanes converging on their JOIN, a
DO_WHILE body drawn as a group with a "loop" back-edge, and dynamic forks expanded from the
branches a run actually spawned. Big loop bodies and big dynamic fans are collapsed into one node
with a count badge, which is what makes 500-task blueprints readable.

Node ids are ``taskReferenceName``s (plus ``__start__`` / ``__end__``); a run's ``x__N`` task
(iteration N of a DO_WHILE) maps to node ``x``. ``execution_status`` turns a run (Conductor
Workflow JSON with ``tasks``) into the ``Status`` map and the executed edge ids the views draw.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Container, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypedDict

import networkx as nx

from conductor_lab.widgets.palette import shape_of

__all__ = [
    "END",
    "START",
    "Status",
    "TaskStatusEntry",
    "blueprint_graph",
    "execution_status",
    "node_status",
    "task_node_id",
    "tasks_by_node",
]

Json = dict[str, Any]

START = "__start__"
END = "__end__"

#: types whose outgoing edges carry case values
SWITCH_TYPES = frozenset({"SWITCH", "DECISION"})
#: workflow statuses that end a run (the ``__end__`` node shows them)
TERMINAL_WORKFLOW = frozenset({"COMPLETED", "FAILED", "TIMED_OUT", "TERMINATED"})
#: task statuses counted as failed branches on a dynamic fork's badge
FAILED_TASK = frozenset({"FAILED", "FAILED_WITH_TERMINAL_ERROR", "TIMED_OUT"})
#: system task types a spawned task's ``taskType`` may name (anything else is a worker task)
_SYSTEM_TYPES = frozenset({
    "SWITCH", "DECISION", "FORK_JOIN", "FORK_JOIN_DYNAMIC", "FORK", "JOIN", "EXCLUSIVE_JOIN", "DO_WHILE",
    "DYNAMIC", "SUB_WORKFLOW", "START_WORKFLOW", "TERMINATE", "WAIT", "HUMAN", "HTTP", "INLINE", "LAMBDA",
    "JSON_JQ_TRANSFORM", "SET_VARIABLE", "EVENT", "NOOP", "KAFKA_PUBLISH",
})  # fmt: skip

_ITERATION_REF = re.compile(r"^(.+)__(\d+)$")


class TaskStatusEntry(TypedDict):
    """What the views know about one executed node (the contract's ``Status`` value)."""

    status: str
    attempts: int
    iterations: int | None
    taskId: str


#: node id -> entry, only for nodes that have executed
Status = dict[str, TaskStatusEntry]


# ------------------------------------------------------------------------------------------------
# Runs: tasks of an execution grouped by the node they belong to


def _seq_key(indexed: tuple[int, Json]) -> tuple[int, int]:
    i, task = indexed
    seq = task.get("seq")
    return (seq if isinstance(seq, int) else 0, i)


def _iteration(task: Json) -> int:
    it = task.get("iteration")
    return it if isinstance(it, int) and not isinstance(it, bool) else 0


def task_node_id(task: Json, known: Container[str]) -> str:
    """The node a task of a run belongs to: its reference name without a ``__N`` iteration suffix.

    The suffix is stripped when the task says it ran in an iteration (``iteration > 0``), or when
    the reference name is not a node but its stem is (runs from servers that omit ``iteration``).
    """
    ref = str(task.get("referenceTaskName") or "")
    m = _ITERATION_REF.match(ref)
    if m is None:
        return ref
    if _iteration(task) > 0 or (ref not in known and m.group(1) in known):
        return m.group(1)
    return ref


def tasks_by_node(execution: Mapping[str, Any], known: Container[str]) -> dict[str, list[Json]]:
    """The run's tasks grouped by node id, each list in ``seq`` order (retries and iterations)."""
    tasks = [t for t in (execution.get("tasks") or []) if isinstance(t, dict)]
    out: dict[str, list[Json]] = {}
    for _, task in sorted(enumerate(tasks), key=_seq_key):
        out.setdefault(task_node_id(task, known), []).append(task)
    return out


def _all_refs(tasks: Iterable[Json]) -> set[str]:
    out: set[str] = set()
    stack = list(tasks)
    while stack:
        t = stack.pop()
        if not isinstance(t, dict):
            continue
        ref = t.get("taskReferenceName")
        if isinstance(ref, str):
            out.add(ref)
        for branch in _children(t):
            stack.extend(branch)
    return out


def _children(task: Json) -> list[list[Json]]:
    """Every nested task list of a task: switch cases, default case, fork lanes, loop body."""
    lists: list[list[Json]] = []
    cases = task.get("decisionCases")
    if isinstance(cases, dict):
        lists.extend(_as_list(v) for v in cases.values())
    if task.get("defaultCase") is not None:
        lists.append(_as_list(task.get("defaultCase")))
    lanes = task.get("forkTasks")
    if isinstance(lanes, list):
        lists.extend(_as_list(lane) for lane in lanes)
    if task.get("loopOver") is not None:
        lists.append(_as_list(task.get("loopOver")))
    return lists


def _as_list(value: Any) -> list[Json]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


def _count(tasks: Iterable[Json]) -> int:
    """Number of task nodes in a task list, nested ones included."""
    return sum(1 + sum(_count(branch) for branch in _children(t)) for t in tasks)


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


# ------------------------------------------------------------------------------------------------
# Building the graph


@dataclass(frozen=True)
class _Stub:
    """An edge waiting for its target: the next task of the list (or the JOIN, or ``__end__``)."""

    source: str
    kind: str = "next"
    label: str | None = None
    cases: tuple[str, ...] = ()
    default: bool = False
    after: tuple[str, ...] = ()  # nodes the target must be laid out below (a loop body)


#: what building a task (list) gives: its open exits, and the ids of every node it created
_Built = tuple[list[_Stub], list[str]]


class _Builder:
    """One walk over the definition: each task list is chained after the open exits (stubs) of
    what precedes it, so control flow of any nesting composes from five small rules."""

    def __init__(
        self,
        workflow_def: Mapping[str, Any],
        execution: Mapping[str, Any] | None,
        expanded: frozenset[str],
        collapsed: frozenset[str],
        threshold: int,
    ) -> None:
        self.tasks = _as_list(workflow_def.get("tasks"))
        self.g = nx.DiGraph(name=str(workflow_def.get("name") or ""), version=workflow_def.get("version"))
        self.constraints: list[tuple[str, str]] = []
        self.end_stubs: list[_Stub] = []  # TERMINATE -> __end__, connected once __end__ exists
        self.expanded = expanded
        self.collapsed = collapsed
        self.threshold = threshold
        self.runs: dict[str, list[Json]] | None = None
        if execution is not None:
            self.runs = tasks_by_node(execution, _all_refs(self.tasks))

    # -- graph primitives ------------------------------------------------------------------------

    def build(self) -> nx.DiGraph:
        self.add_node(START, ref=None, label="start", sublabel="", type="START", parent=None)
        exits, _ = self.seq(self.tasks, [_Stub(START)], None)
        self.add_node(END, ref=None, label="end", sublabel="", type="END", parent=None)
        self.connect([*exits, *self.end_stubs], END)
        self.g.graph["layout_constraints"] = self.constraints
        return self.g

    def add_node(self, node_id: str, **attrs: Any) -> None:
        attrs.setdefault("shape", shape_of(attrs.get("type")))
        attrs.setdefault("badge", None)
        attrs.setdefault("collapsible", False)
        attrs.setdefault("collapsed", False)
        self.g.add_node(node_id, id=node_id, **attrs)

    def unique_id(self, ref: str, kind: str) -> str:
        node_id = ref
        n = 1
        while node_id in self.g or node_id in (START, END) or not node_id:
            node_id = f"__{kind}__{ref}" if n == 1 else f"__{kind}__{ref}#{n}"
            n += 1
        return node_id

    def connect(self, stubs: Iterable[_Stub], target: str, *, loop: bool = False) -> None:
        """Add the edges of ``stubs`` into ``target``; two stubs between the same nodes (two
        empty cases of one SWITCH) become one edge whose label lists both cases."""
        for s in stubs:
            kind = "loop" if loop else s.kind
            label = ("loop" if s.label is None else s.label) if loop else s.label
            if self.g.has_edge(s.source, target):
                e = self.g.edges[s.source, target]
                if label is not None and label not in (e["label"] or "").split(", "):
                    e["label"] = label if e["label"] is None else f"{e['label']}, {label}"
                e["cases"] = [*e["cases"], *(c for c in s.cases if c not in e["cases"])]
                e["default"] = e["default"] or s.default
            else:
                self.g.add_edge(
                    s.source, target, id=f"{s.source}->{target}", kind=kind, label=label,
                    cases=list(s.cases), default=s.default,
                )  # fmt: skip
            if not loop:
                self.constraints.extend((a, target) for a in s.after)

    # -- task lists --------------------------------------------------------------------------------

    def seq(self, tasks: list[Json], incoming: list[_Stub], parent: str | None) -> _Built:
        """Chain a task list after ``incoming``; returns its open exits and every node it created.

        A task that nothing leads to (it follows a TERMINATE, or a SWITCH whose every branch
        terminates) is still drawn, laid out below what precedes it.
        """
        current = incoming
        created: list[str] = []
        previous: list[str] = []
        for task in tasks:
            exits, nodes = self.task(task, current, parent)
            if not current and previous and nodes:
                self.constraints.extend((p, nodes[0]) for p in previous)
            current, previous = exits, nodes
            created.extend(nodes)
        return current, created

    def task(self, task: Json, incoming: list[_Stub], parent: str | None) -> _Built:
        ttype = str(task.get("type") or "SIMPLE").upper()
        ref = str(task.get("taskReferenceName") or task.get("name") or ttype.lower())
        node_id = self.unique_id(ref, ttype.lower())
        name = str(task.get("name") or "")
        self.add_node(
            node_id, ref=ref, label=ref, sublabel=self.sublabel(task, ttype, ref, node_id), type=ttype,
            parent=parent, name=name,
        )  # fmt: skip
        self.connect(incoming, node_id)
        if ttype in SWITCH_TYPES:
            return self.switch(task, ttype, node_id, parent)
        if ttype == "FORK_JOIN":
            return self.fork(task, node_id, parent)
        if ttype == "FORK_JOIN_DYNAMIC":
            return self.dynamic_fork(task, node_id, parent)
        if ttype == "DO_WHILE":
            return self.loop(task, node_id, parent)
        if ttype == "TERMINATE":
            self.end_stubs.append(_Stub(node_id))
            return [], [node_id]
        return [_Stub(node_id)], [node_id]

    def sublabel(self, task: Json, ttype: str, ref: str, node_id: str) -> str:
        name = str(task.get("name") or "")
        if ttype == "SUB_WORKFLOW":
            param = task.get("subWorkflowParam") or {}
            if isinstance(param, dict):
                inline = param.get("workflowDefinition")
                sub = param.get("name") or (inline.get("name") if isinstance(inline, dict) else None)
                if sub:
                    version = param.get("version")
                    return f"{sub} v{version}" if version is not None else str(sub)
        if ttype == "START_WORKFLOW":
            params = task.get("inputParameters") or {}
            start = params.get("startWorkflow") if isinstance(params, dict) else None
            if isinstance(start, dict) and start.get("name"):
                version = start.get("version")
                return f"start {start['name']}" + (f" v{version}" if version is not None else "")
        if ttype == "DYNAMIC" and self.runs is not None:
            ran = self.runs.get(node_id)
            if ran:
                resolved = ran[-1].get("taskDefName") or ran[-1].get("taskType")
                if resolved and resolved != "DYNAMIC":
                    return f"{resolved} (DYNAMIC)"
        if name and name not in (ref, ttype):
            return f"{name} ({ttype})"
        return ttype

    # -- control flow --------------------------------------------------------------------------------

    def switch(self, task: Json, ttype: str, node_id: str, parent: str | None) -> _Built:
        """One edge per case, labelled with the case value, plus "default"; branches converge on
        the task after the SWITCH. An empty case goes straight there, except in a DECISION, whose
        empty case runs the default branch (conductor-oss semantics): its label joins the default
        edge's."""
        exits: list[_Stub] = []
        created = [node_id]
        cases = task.get("decisionCases")
        to_default: list[str] = []
        for key, branch in cases.items() if isinstance(cases, dict) else ():
            case = str(key)
            tasks = _as_list(branch)
            if not tasks and ttype == "DECISION":
                to_default.append(case)
                continue
            stub = _Stub(node_id, "case", case, (case,))
            if tasks:
                ex, cr = self.seq(tasks, [stub], parent)
                exits.extend(ex)
                created.extend(cr)
            else:
                exits.append(stub)
        label = ", ".join([*to_default, "default"])
        stub = _Stub(node_id, "default", label, tuple(to_default), default=True)
        default = _as_list(task.get("defaultCase"))
        if default:
            ex, cr = self.seq(default, [stub], parent)
            exits.extend(ex)
            created.extend(cr)
        else:
            exits.append(stub)
        return exits, created

    def fork(self, task: Json, node_id: str, parent: str | None) -> _Built:
        """One lane per ``forkTasks`` list; the lanes' ends become "join" edges into the JOIN that
        follows; an empty lane is a direct fork edge to it."""
        lanes = task.get("forkTasks")
        exits: list[_Stub] = []
        created = [node_id]
        for lane in lanes if isinstance(lanes, list) else []:
            tasks = _as_list(lane)
            if tasks:
                ex, cr = self.seq(tasks, [_Stub(node_id, "fork")], parent)
                exits.extend(_to_join(ex))
                created.extend(cr)
            else:
                exits.append(_Stub(node_id, "fork"))
        return exits or [_Stub(node_id)], created

    def dynamic_fork(self, task: Json, node_id: str, parent: str | None) -> _Built:
        """One node; with a run, the branches it spawned sit between it and its JOIN, or are
        counted on its badge when there are more than the threshold (unless expanded)."""
        created = [node_id]
        spawned = self.spawned(node_id)
        attrs = self.g.nodes[node_id]
        attrs["collapsible"] = True
        if not spawned:
            return [_Stub(node_id)], created
        ref = attrs["ref"]
        collapse = ref not in self.expanded and (ref in self.collapsed or len(spawned) > self.threshold)
        attrs["collapsed"] = collapse
        badge = _plural(len(spawned), "branch", "branches")
        failed = self.failed_branches(spawned)
        attrs["badge"] = badge + (f", {failed} failed" if failed else "")
        if collapse:
            return [_Stub(node_id)], created
        exits: list[_Stub] = []
        for spec in spawned:
            ex, cr = self.seq([spec], [_Stub(node_id, "fork")], parent)
            exits.extend(_to_join(ex))
            created.extend(cr)
        return exits, created

    def spawned(self, node_id: str) -> list[Json]:
        """The branch task definitions the latest attempt of a dynamic fork spawned."""
        if self.runs is None or not self.runs.get(node_id):
            return []
        fork_input = self.runs[node_id][-1].get("inputData") or {}
        defs = fork_input.get("forkedTaskDefs")
        if isinstance(defs, list) and defs:
            return [d for d in defs if isinstance(d, dict)]
        refs = fork_input.get("forkedTasks")
        out: list[Json] = []
        for ref in refs if isinstance(refs, list) else []:
            ran = self.runs.get(str(ref)) or [{}]
            ttype = str(ran[-1].get("taskType") or "SIMPLE")
            out.append({
                "taskReferenceName": str(ref),
                "name": ran[-1].get("taskDefName") or ttype,
                "type": ttype if ttype in _SYSTEM_TYPES else "SIMPLE",
            })  # fmt: skip
        return out

    def failed_branches(self, spawned: list[Json]) -> int:
        runs = self.runs or {}
        return sum(
            1
            for spec in spawned
            if (ran := runs.get(str(spec.get("taskReferenceName")))) and ran[-1].get("status") in FAILED_TASK
        )

    def loop(self, task: Json, node_id: str, parent: str | None) -> _Built:
        """The DO_WHILE node, then its body as a group (``parent`` = the loop) whose last nodes
        have a "loop" back-edge to it; a big body collapses into the node with a count badge."""
        body = _as_list(task.get("loopOver"))
        attrs = self.g.nodes[node_id]
        attrs["collapsible"] = bool(body)
        ref = attrs["ref"]
        size = _count(body)
        collapse = bool(body) and ref not in self.expanded
        collapse = collapse and (ref in self.collapsed or size > self.threshold)
        attrs["collapsed"] = collapse
        ran = self.runs.get(node_id) if self.runs is not None else None
        iterations = _loop_iterations(ran[-1]) if ran else None
        if iterations is not None:
            attrs["badge"] = "×" + _plural(iterations, "iteration")
        elif collapse:
            attrs["badge"] = _plural(size, "task")
        if not body or collapse:
            return [_Stub(node_id)], [node_id]
        exits, created = self.seq(body, [_Stub(node_id)], node_id)
        self.connect(exits, node_id, loop=True)
        return [_Stub(node_id, after=tuple(created))], [node_id, *created]


def _to_join(stubs: list[_Stub]) -> list[_Stub]:
    return [replace(s, kind="join") if s.kind == "next" else s for s in stubs]


def _loop_iterations(task: Json) -> int | None:
    it = task.get("iteration")
    if isinstance(it, int) and not isinstance(it, bool):
        return it
    out = task.get("outputData") or {}
    it = out.get("iteration") if isinstance(out, dict) else None
    return it if isinstance(it, int) and not isinstance(it, bool) else None


def blueprint_graph(
    workflow_def: Mapping[str, Any],
    *,
    execution: Mapping[str, Any] | None = None,
    expanded: Collection[str] = (),
    collapsed: Collection[str] = (),
    collapse_threshold: int = 12,
) -> nx.DiGraph:
    """The blueprint as a directed graph (what ``Blueprint.to_networkx()`` returns).

    ``workflow_def`` is Conductor workflow JSON (a dict with ``tasks``). Nodes are
    ``taskReferenceName``s plus ``__start__`` / ``__end__``; node attributes are the layout
    contract's node fields without coordinates (``id, ref, label, sublabel, type, shape, parent,
    badge, collapsible, collapsed``) plus the task ``name``. Edge attributes: ``id``
    (``"<source>-><target>"``), ``kind`` (next / case / default / fork / join / loop), ``label``,
    and for SWITCH / DECISION edges the ``cases`` they stand for and ``default``. "loop" edges
    point back up from a DO_WHILE body's last node(s) to the DO_WHILE: remove them to get a DAG.

    ``execution`` (Conductor Workflow JSON with ``tasks``) adds what only a run knows: the branches
    of dynamic forks, the task a DYNAMIC resolved to, and iteration counts on DO_WHILE badges.
    A DO_WHILE body with more than ``collapse_threshold`` nodes, or whose ref is in ``collapsed``,
    is folded into the DO_WHILE node, and likewise a dynamic fork's branches; ``expanded`` wins
    over both. ``G.graph["layout_constraints"]`` lists (a, b) pairs that the layout keeps a above b
    although no edge joins them (the task after a loop sits below the loop's body).
    """
    builder = _Builder(workflow_def, execution, frozenset(expanded), frozenset(collapsed), collapse_threshold)
    return builder.build()


# ------------------------------------------------------------------------------------------------
# A run on the graph


@dataclass(frozen=True)
class _Edge:
    id: str
    source: str
    target: str
    kind: str
    cases: frozenset[str]
    default: bool


def _graph_parts(graph_or_layout: nx.DiGraph | Mapping[str, Any]) -> tuple[dict[str, str], list[_Edge]]:
    """Node id -> type, and the edges with their cases, from a graph or a layout."""
    if isinstance(graph_or_layout, nx.Graph):
        g = graph_or_layout
        types = {str(n): str(a.get("type") or "") for n, a in g.nodes(data=True)}
        edges = [
            _Edge(
                str(a.get("id") or f"{u}->{v}"),
                str(u),
                str(v),
                str(a.get("kind") or "next"),
                frozenset(a.get("cases") or ()),
                bool(a.get("default")),
            )  # fmt: skip
            for u, v, a in g.edges(data=True)
        ]
        return types, edges
    types = {str(n["id"]): str(n.get("type") or "") for n in graph_or_layout.get("nodes") or []}
    edges = []
    for e in graph_or_layout.get("edges") or []:
        kind = str(e.get("kind") or "next")
        label = e.get("label")
        parts = str(label).split(", ") if label else []
        default = kind == "default" or (kind == "case" and parts[-1:] == ["default"] and len(parts) > 1)
        if default and parts[-1:] == ["default"]:
            parts = parts[:-1]
        cases = frozenset([*parts, *([str(label)] if label and not default else [])])
        edges.append(_Edge(str(e["id"]), str(e["source"]), str(e["target"]), kind, cases, default))
    return types, edges


def node_status(tasks: list[Json], node_type: str) -> TaskStatusEntry:
    """The ``Status`` entry of one node from its tasks in ``seq`` order (retries, iterations)."""
    latest = tasks[-1]
    iteration = _iteration(latest)
    attempts = sum(1 for t in tasks if _iteration(t) == iteration)
    return {
        "status": str(latest.get("status") or "SCHEDULED"),
        "attempts": attempts,
        "iterations": _loop_iterations(latest) if node_type == "DO_WHILE" else None,
        "taskId": str(latest.get("taskId") or ""),
    }


def _taken_case(task: Json) -> str | None:
    out = task.get("outputData") or {}
    if not isinstance(out, dict):
        return None
    for key in ("evaluationResult", "caseOutput"):
        value = out.get(key)
        if isinstance(value, list) and value:
            return str(value[0])
    selected = out.get("selectedCase")
    return str(selected) if selected is not None else None


def execution_status(
    graph_or_layout: nx.DiGraph | Mapping[str, Any], execution: Mapping[str, Any]
) -> tuple[Status, list[str]]:
    """A run on the graph: the ``Status`` map (executed nodes only) and the executed edge ids.

    Each node takes its latest task by ``seq``; ``attempts`` counts the tries of that reference in
    its latest iteration, ``iterations`` is a DO_WHILE's ``iteration``. ``__start__`` is COMPLETED
    for any run and ``__end__`` carries the workflow status once the run has ended (both with
    ``taskId`` ""). An edge is executed when both its ends are; an edge out of a SWITCH / DECISION
    also needs its case to be the one the task chose (``evaluationResult`` / ``caseOutput``), the
    default edge being taken when no case matched.
    """
    types, edges = _graph_parts(graph_or_layout)
    runs = tasks_by_node(execution, types)
    status: Status = {START: {"status": "COMPLETED", "attempts": 1, "iterations": None, "taskId": ""}}
    for node_id, tasks in runs.items():
        if node_id in types and node_id not in (START, END):
            status[node_id] = node_status(tasks, types[node_id])
    wf_status = execution.get("status")
    if END in types and wf_status in TERMINAL_WORKFLOW:
        status[END] = {"status": str(wf_status), "attempts": 1, "iterations": None, "taskId": ""}

    cases_of: dict[str, set[str]] = {}
    for e in edges:
        cases_of.setdefault(e.source, set()).update(e.cases)
    executed: list[str] = []
    for e in edges:
        if e.source not in status or e.target not in status:
            continue
        if types.get(e.source) in SWITCH_TYPES and (e.cases or e.default):
            taken = _taken_case(runs[e.source][-1]) if runs.get(e.source) else None
            if taken is None:
                continue
            if not (taken in e.cases or (e.default and taken not in cases_of[e.source])):
                continue
        executed.append(e.id)
    return status, executed
