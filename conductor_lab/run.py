"""One workflow execution seen from a notebook: :class:`Run` and its views.

A ``Run`` is a handle on a workflowId. Everything it knows comes from the server over the REST
API (``GET /api/workflow/{id}``), so an embedded and a remote lab behave the same; ``run.json``
is the last Conductor JSON it fetched. The verbs are conductor-oss's control verbs under their
own names (``pause``, ``resume``, ``terminate``, ``retry``, ``restart``, ``rerun``, ``skip``),
each one REST call followed by a refresh. The tables are pandas DataFrames built from that JSON:

    run.tasks()        one row per task attempt (times as Timestamps, flattened input/output)
    run.timeline()     queue wait and run time per attempt; .plot() draws the Gantt
    run.iterations(r)  the tasks of each DO_WHILE iteration
    run.why()          the root failure and what it caused (recursing into sub-workflows)

This module needs pandas (``import conductor_lab`` does not load it: ``conductor_lab.Run`` is
imported on first use); matplotlib is imported when a plot is drawn.
"""

from __future__ import annotations

import pprint
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson
import pandas as pd

from conductor_lab.client.errors import ApiError
from conductor_lab.client.http import ConductorClient

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from conductor_lab.lab import Lab

__all__ = [
    "ACTIONS",
    "LabClient",
    "LabError",
    "LabValidationError",
    "Run",
    "TaskView",
    "Timeline",
    "Why",
    "allowed_actions",
]

Json = dict[str, Any]

TERMINAL = frozenset({"COMPLETED", "FAILED", "TIMED_OUT", "TERMINATED"})
#: task statuses that end an attempt unsuccessfully (a root cause candidate)
FAILED_TASK = frozenset({"FAILED", "FAILED_WITH_TERMINAL_ERROR", "TIMED_OUT"})
#: task statuses a retry gives a new attempt (``engine/commands.py`` RETRIABLE)
RETRIABLE_TASK = frozenset({"FAILED", "FAILED_WITH_TERMINAL_ERROR", "TIMED_OUT", "CANCELED"})
OPEN_TASK = frozenset({"SCHEDULED", "IN_PROGRESS"})
_ITERATION_SUFFIX = re.compile(r"__\d+$")


# ------------------------------------------------------------------------------------------------
# errors


class LabError(RuntimeError):
    """Something the lab cannot do, said in a sentence (no server traceback)."""


class LabValidationError(LabError, ValueError):
    """The server refused a definition (400 with ``validationErrors``); one ``path: message`` per line."""

    def __init__(self, message: str, errors: list[Json]) -> None:
        self.errors = errors
        lines = [f"{e.get('path', '?')}: {e.get('message', '')}" for e in errors]
        super().__init__("\n".join([message, *("  " + line for line in lines)]))

    @classmethod
    def from_api(cls, what: str, err: ApiError) -> LabError:
        body = err.body if isinstance(err.body, dict) else {}
        errors = body.get("validationErrors")
        if isinstance(errors, list) and errors:
            return cls(f"{what} refused by the server:", [e for e in errors if isinstance(e, dict)])
        return LabError(f"{what} refused by the server: {err.message} (HTTP {err.status})")


def _refused(verb: str, workflow_id: str, err: ApiError) -> LabError:
    return LabError(f"{verb} {workflow_id}: {err.message} (HTTP {err.status})")


# ------------------------------------------------------------------------------------------------
# the client


#: the lab's client is the project's ConductorClient (kept as a name for the lab's signatures)
LabClient = ConductorClient


def _seg(value: object) -> str:
    """One URL path segment, percent-encoded."""
    return quote(str(value), safe="")


# ------------------------------------------------------------------------------------------------
# which verbs a status allows


#: workflow status -> the verbs conductor-oss accepts in it, from the preconditions of
#: ``engine/commands.py`` and ``services/workflows.py``: pause only RUNNING (PAUSED is a no-op),
#: resume only PAUSED, terminate while not terminal (the server also relabels a FAILED or
#: TIMED_OUT run as TERMINATED; that is not offered), skip only RUNNING, retry / restart / rerun
#: only terminal. ``allowed_actions`` refines retry and restart with the run's tasks.
ACTIONS: dict[str, tuple[str, ...]] = {
    "RUNNING": ("pause", "terminate", "skip"),
    "PAUSED": ("resume", "terminate"),
    "COMPLETED": ("restart", "rerun"),
    "FAILED": ("retry", "restart", "rerun"),
    "TIMED_OUT": ("retry", "restart", "rerun"),
    "TERMINATED": ("retry", "restart", "rerun"),
}


def allowed_actions(workflow: Json) -> list[str]:
    """The verbs the server accepts for this Conductor workflow JSON, in ``ACTIONS`` order.

    retry needs a task whose last attempt failed, timed out or was cancelled (a TIMED_OUT run
    always qualifies) and a run that has tasks; restart of a COMPLETED run needs a restartable
    definition.
    """
    status = str(workflow.get("status", ""))
    actions = list(ACTIONS.get(status, ()))
    tasks = workflow.get("tasks") or []
    if "retry" in actions:
        last: dict[str, Json] = {}
        for t in sorted(tasks, key=lambda t: t.get("seq", 0)):
            if not t.get("retried"):
                last[str(t.get("referenceTaskName"))] = t
        retriable = any(t.get("status") in RETRIABLE_TASK for t in last.values())
        if not tasks or not (retriable or status == "TIMED_OUT"):
            actions.remove("retry")
    if "restart" in actions and status == "COMPLETED":
        definition = workflow.get("workflowDefinition") or {}
        if definition.get("restartable") is False:
            actions.remove("restart")
    return actions


# ------------------------------------------------------------------------------------------------
# helpers over the Conductor JSON


def _ms(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and value > 0 else 0


def _seconds(start: int, end: int) -> float | None:
    return (end - start) / 1000.0 if start and end and end >= start else None


def _base_ref(ref: str) -> str:
    """``ref__3`` (iteration 3 of a DO_WHILE body) -> ``ref``."""
    return _ITERATION_SUFFIX.sub("", ref)


def _walk_nodes(nodes: list[Json] | None) -> Iterator[Json]:
    for node in nodes or ():
        yield node
        for case in (node.get("decisionCases") or {}).values():
            yield from _walk_nodes(case)
        yield from _walk_nodes(node.get("defaultCase"))
        for lane in node.get("forkTasks") or ():
            yield from _walk_nodes(lane)
        yield from _walk_nodes(node.get("loopOver"))


def _timestamps(frame: pd.DataFrame, columns: dict[str, str]) -> None:
    """Epoch-ms columns -> UTC pandas Timestamps (0 -> NaT), renamed as ``columns`` says."""
    for src, dst in columns.items():
        ms = frame[src].where(frame[src] > 0) if len(frame) else frame[src]
        frame[dst] = pd.to_datetime(ms, unit="ms", utc=True)


# ------------------------------------------------------------------------------------------------
# Run


class Run:
    """A workflow execution: its state (``json``), its tables and its verbs.

    Built by ``lab.start(...)``, ``lab.run(workflow_id)`` or ``Run(client, workflow_id)``.
    """

    def __init__(
        self, client: LabClient, workflow_id: str, *, lab: Lab | None = None, json: Json | None = None
    ) -> None:
        self.client = client
        self.id = workflow_id
        self._lab = lab
        self._live: Any = None
        self.json: Json = json if json is not None else {}
        if json is None:
            self.refresh()

    @property
    def lab(self) -> Lab:
        """The Lab this run was reached from (live views open their own clients through it)."""
        if self._lab is None:
            raise LabError(f"run {self.id} was not reached through a Lab")
        return self._lab

    # -- state --------------------------------------------------------------------------------

    def refresh(self) -> Run:
        """Fetch the workflow (with its tasks) again."""
        try:
            self.json = self.client.get_workflow(self.id, include_tasks=True)
        except ApiError as e:
            if e.status == 404:
                raise LabError(f"no workflow {self.id} on the server") from None
            raise
        return self

    def view(self) -> Any:
        """The live graph of this run (a ``GraphView``): statuses stream in while it runs, the
        buttons call this Run's verbs. One per Run: showing it again shows the same widget."""
        if self._live is None or self._live.closed:
            from conductor_lab.widgets.live import RunController

            self._live = RunController(self)
            if self._lab is not None:
                self._lab._watch(self._live)
        return self._live.view

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        return self.view()._repr_mimebundle_(include=include, exclude=exclude)

    def _update(self, workflow: Json) -> None:
        """Take a newer Conductor JSON of this run (a live view's watch answer)."""
        self.json = workflow

    def _fresh(self) -> Json:
        """The JSON, fetched again unless the run has ended (an ended run changes only by a verb)."""
        if self.json.get("status") not in TERMINAL:
            self.refresh()
        return self.json

    @property
    def name(self) -> str:
        return str(self.json.get("workflowName") or self.json.get("workflowType") or "")

    @property
    def version(self) -> int | None:
        v = self.json.get("workflowVersion")
        return int(v) if isinstance(v, int) else None

    @property
    def status(self) -> str:
        """The workflow status, fetched now."""
        return str(self.refresh().json.get("status"))

    @property
    def input(self) -> Json:
        return dict(self.json.get("input") or {})

    @property
    def output(self) -> Json:
        return dict(self._fresh().get("output") or {})

    @property
    def reason(self) -> str | None:
        """``reasonForIncompletion`` of the workflow (None while it has none)."""
        reason = self._fresh().get("reasonForIncompletion")
        return str(reason) if reason else None

    @property
    def correlation_id(self) -> str | None:
        return self.json.get("correlationId")

    @property
    def parent_id(self) -> str | None:
        return self.json.get("parentWorkflowId")

    def _tasks_json(self) -> list[Json]:
        return sorted(self.json.get("tasks") or [], key=lambda t: t.get("seq", 0))

    def open_tasks(self) -> list[str]:
        """Reference names of the tasks not finished yet (last fetched state)."""
        return [str(t["referenceTaskName"]) for t in self._tasks_json() if t.get("status") in OPEN_TASK]

    def wait(self, timeout: float = 60.0) -> Run:
        """Block until the run ends (COMPLETED, FAILED, TIMED_OUT, TERMINATED); TimeoutError naming
        its status and open tasks when ``timeout`` seconds pass first.

        Uses the server's long poll (``/api/lab/workflow/{id}/watch``), so it returns as soon as
        the run ends; against a server without it, it polls.
        """
        deadline = time.monotonic() + timeout
        version: str | None = None
        use_watch = True
        interval = 0.02
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            if use_watch:
                try:
                    wait_ms = int(min(remaining, 10.0) * 1000)
                    version, workflow = self.client.watch_workflow(self.id, version, timeout_ms=wait_ms)
                except ApiError:
                    use_watch = False  # no watch endpoint there (or no such run: refresh() says so)
                    continue
                if workflow is not None:
                    self.json = workflow
            else:
                self.refresh()
            if self.json.get("status") in TERMINAL:
                return self
            if time.monotonic() >= deadline:
                self.refresh()
                if self.json.get("status") in TERMINAL:
                    return self
                open_refs = ", ".join(self.open_tasks()) or "none"
                raise TimeoutError(
                    f"run {self.name} {self.id} is still {self.json.get('status')} after {timeout:g}s; "
                    f"open tasks: {open_refs}"
                )
            if not use_watch:
                time.sleep(min(interval, remaining))
                interval = min(interval * 1.5, 0.2)

    # -- tables -------------------------------------------------------------------------------

    def tasks(self) -> pd.DataFrame:
        """One row per task attempt, in ``seq`` order.

        Columns: seq, ref, iteration, type, name, status, attempt (retryCount + 1), retried,
        scheduled/started/ended (UTC Timestamps, NaT when not yet), wait_s (queued until polled),
        run_s (started until ended), worker, reason, task_id, then ``input.*`` and ``output.*``
        flattened (nested objects as ``input.a.b``).
        """
        self._fresh()
        rows = []
        for t in self._tasks_json():
            sched, start, end = _ms(t.get("scheduledTime")), _ms(t.get("startTime")), _ms(t.get("endTime"))
            rows.append(
                {
                    "seq": t.get("seq"),
                    "ref": t.get("referenceTaskName"),
                    "iteration": t.get("iteration", 0),
                    "type": (t.get("workflowTask") or {}).get("type") or t.get("taskType"),
                    "name": t.get("taskDefName"),
                    "status": t.get("status"),
                    "attempt": int(t.get("retryCount") or 0) + 1,
                    "retried": bool(t.get("retried")),
                    "_scheduled": sched,
                    "_started": start,
                    "_ended": end,
                    "wait_s": _seconds(sched, start),
                    "run_s": _seconds(start, end),
                    "worker": t.get("workerId"),
                    "reason": t.get("reasonForIncompletion"),
                    "task_id": t.get("taskId"),
                }
            )
        columns = [
            "seq", "ref", "iteration", "type", "name", "status", "attempt", "retried",
            "_scheduled", "_started", "_ended", "wait_s", "run_s", "worker", "reason", "task_id",
        ]  # fmt: skip
        frame = pd.DataFrame(rows, columns=columns)
        _timestamps(frame, {"_scheduled": "scheduled", "_started": "started", "_ended": "ended"})
        frame = frame.drop(columns=["_scheduled", "_started", "_ended"])
        order = [*columns[:8], "scheduled", "started", "ended", *columns[11:]]
        frame = frame[order]
        for key, prefix in (("inputData", "input"), ("outputData", "output")):
            flat = pd.json_normalize([t.get(key) or {} for t in self._tasks_json()], sep=".")
            if len(flat.columns):
                flat.columns = [f"{prefix}.{c}" for c in flat.columns]
                frame = pd.concat([frame, flat.set_index(frame.index)], axis=1)
        return frame

    def timeline(self) -> Timeline:
        """Per task attempt: ref, attempt, status, queued_at, started_at, ended_at, wait_s, run_s."""
        frame = self.tasks()
        out = Timeline(
            {
                "ref": frame["ref"],
                "attempt": frame["attempt"],
                "status": frame["status"],
                "queued_at": frame["scheduled"],
                "started_at": frame["started"],
                "ended_at": frame["ended"],
                "wait_s": frame["wait_s"],
                "run_s": frame["run_s"],
            }
        )
        out.attrs["workflowId"] = self.id
        out.attrs["name"] = self.name
        return out

    def iterations(self, loop_ref: str) -> pd.DataFrame:
        """The tasks of each iteration of the DO_WHILE ``loop_ref``: iteration, ref (without the
        ``__N`` suffix), type, status, attempt, wait_s, run_s, reason, then ``output.*``."""
        definition = self.json.get("workflowDefinition") or {}
        loop = next(
            (n for n in _walk_nodes(definition.get("tasks")) if n.get("taskReferenceName") == loop_ref), None
        )
        if loop is None or loop.get("type") != "DO_WHILE":
            raise LabError(f"{loop_ref!r} is not a DO_WHILE of {self.name}")
        body = {n.get("taskReferenceName") for n in _walk_nodes(loop.get("loopOver"))}
        frame = self.tasks()
        frame["ref"] = frame["ref"].map(_base_ref)
        frame = frame[frame["ref"].isin(body)]
        keep = ["iteration", "ref", "type", "status", "attempt", "wait_s", "run_s", "reason"]
        outputs = [c for c in frame.columns if c.startswith("output.") and frame[c].notna().any()]
        return frame[keep + outputs].sort_values(["iteration"], kind="stable").reset_index(drop=True)

    # -- verbs --------------------------------------------------------------------------------

    def _verb(self, verb: str, call: Any, *args: Any, **kwargs: Any) -> Run:
        try:
            call(self.id, *args, **kwargs)
        except ApiError as e:
            raise _refused(verb, self.id, e) from e
        return self.refresh()

    def pause(self) -> Run:
        """PAUSED: nothing new is scheduled; running tasks finish."""
        return self._verb("pause", self.client.pause)

    def resume(self) -> Run:
        return self._verb("resume", self.client.resume)

    def terminate(self, reason: str | None = None) -> Run:
        return self._verb("terminate", self.client.terminate, reason)

    def retry(self, resume_subworkflow_tasks: bool = False) -> Run:
        """A new attempt of every failed, timed-out or cancelled task (from where it failed)."""
        return self._verb("retry", self.client.retry, resume_subworkflow_tasks)

    def restart(self, latest: bool = False) -> Run:
        """Start over (same id and input); ``latest``: with the newest definition version."""
        return self._verb("restart", self.client.restart, latest)

    def rerun(
        self, from_task: str | None = None, input: Json | None = None, task_input: Json | None = None
    ) -> Run:
        """Run again from the start or from the task ``from_task`` (a reference name, here or in a
        sub-workflow), optionally with new workflow ``input`` and ``task_input`` for that task."""
        request: Json = {"reRunFromWorkflowId": self.id}
        if input is not None:
            request["workflowInput"] = input
        if from_task is not None:
            request["reRunFromTaskId"] = self._task_id_of(from_task)
            if task_input is not None:
                request["taskInput"] = task_input
        return self._verb("rerun", self.client.rerun, request)

    def skip(self, ref: str) -> Run:
        """Mark ``ref`` (a task not reached yet) SKIPPED: the flow jumps over it."""
        return self._verb("skip", self.client.skip_task, ref)

    def _task_id_of(self, ref: str) -> str:
        """The latest attempt of ``ref`` in this run or, depth first, in its sub-workflows."""
        found = self._latest(ref)
        if found is not None:
            return str(found["taskId"])
        for t in self._tasks_json():
            if t.get("taskType") == "SUB_WORKFLOW" and t.get("subWorkflowId"):
                try:
                    return Run(self.client, str(t["subWorkflowId"]), lab=self._lab)._task_id_of(ref)
                except LabError:
                    continue
        raise LabError(f"no task {ref!r} in run {self.name} {self.id}")

    def _latest(self, ref: str) -> Json | None:
        found = None
        for t in self._tasks_json():
            if t.get("referenceTaskName") == ref:
                found = t
        if found is None:  # a DO_WHILE body task: its latest iteration
            for t in self._tasks_json():
                if _base_ref(str(t.get("referenceTaskName"))) == ref and t.get("iteration"):
                    found = t
        return found

    def allowed_actions(self, fresh: bool = True) -> list[str]:
        """The verbs the server accepts now (see :data:`ACTIONS`); ``fresh=False`` judges the last
        fetched state instead of fetching it again (a live view that has just been updated)."""
        return allowed_actions(self.refresh().json if fresh else self.json)

    # -- navigation ---------------------------------------------------------------------------

    def task(self, ref: str) -> TaskView:
        """The latest attempt of the task ``ref`` (``ref__N`` for a given loop iteration)."""
        self._fresh()
        if self._latest(ref) is None:
            raise LabError(f"no task {ref!r} in run {self.name} {self.id} (yet)")
        return TaskView(self, ref)

    def child(self, ref: str) -> Run:
        """The sub-workflow started by the SUB_WORKFLOW task ``ref`` (its latest attempt)."""
        self._fresh()
        t = self._latest(ref)
        if t is None:
            raise LabError(f"no task {ref!r} in run {self.name} {self.id}")
        child_id = t.get("subWorkflowId") or (t.get("outputData") or {}).get("subWorkflowId")
        if not child_id:
            raise LabError(f"task {ref!r} ({t.get('taskType')}) of run {self.id} has no sub-workflow (yet)")
        return Run(self.client, str(child_id), lab=self._lab)

    def why(self) -> Why:
        """The root failure and what it caused (falsy when nothing failed)."""
        return Why.of(self._fresh_all())

    def _fresh_all(self) -> Run:
        self._fresh()
        return self

    # -- sharing ------------------------------------------------------------------------------

    def to_json(self) -> str:
        """The Conductor JSON of the execution (as ``GET /api/workflow/{id}`` answers), indented."""
        return orjson.dumps(self.json, option=orjson.OPT_INDENT_2).decode()

    def as_code(self) -> str:
        """Python that starts this run again: ``run = lab.start(...)``."""
        args = [repr(self.name), _literal(self.input)]
        if self.version is not None:
            args.append(f"version={self.version}")
        if self.correlation_id:
            args.append(f"correlation_id={self.correlation_id!r}")
        if self.json.get("priority"):
            args.append(f"priority={self.json['priority']}")
        if self.json.get("taskToDomain"):
            args.append(f"task_to_domain={_literal(self.json['taskToDomain'])}")
        body = ",\n".join("    " + a.replace("\n", "\n    ") for a in args)
        return f"run = lab.start(\n{body},\n)"

    def __repr__(self) -> str:
        return f"Run({self.name!r}, {self.id!r}, status={self.json.get('status')})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


def _literal(value: Any) -> str:
    return pprint.pformat(value, width=90, sort_dicts=False)


# ------------------------------------------------------------------------------------------------
# TaskView


class TaskView:
    """One task of a run by reference name: its latest attempt, its attempts, WAIT/HUMAN completion."""

    def __init__(self, run: Run, ref: str) -> None:
        self.run = run
        self.ref = ref

    @property
    def json(self) -> Json:
        t = self.run._latest(self.ref)
        if t is None:
            raise LabError(f"no task {self.ref!r} in run {self.run.id}")
        return t

    def _fresh(self) -> Json:
        self.run._fresh()
        return self.json

    @property
    def task_id(self) -> str:
        return str(self.json["taskId"])

    @property
    def status(self) -> str:
        return str(self._fresh().get("status"))

    @property
    def type(self) -> str:
        return str((self.json.get("workflowTask") or {}).get("type") or self.json.get("taskType"))

    @property
    def input(self) -> Json:
        return dict(self._fresh().get("inputData") or {})

    @property
    def output(self) -> Json:
        return dict(self._fresh().get("outputData") or {})

    @property
    def reason(self) -> str | None:
        return self._fresh().get("reasonForIncompletion") or None

    @property
    def logs(self) -> list[str]:
        """The task's execution log lines (``GET /api/tasks/{taskId}/log``), oldest first."""
        return [str(entry.get("log", "")) for entry in self.run.client.get_task_logs(self.task_id)]

    @property
    def attempts(self) -> pd.DataFrame:
        """Every attempt of this reference name (rows of ``run.tasks()``)."""
        frame = self.run._fresh_all().tasks()
        return frame[frame["ref"] == self.json.get("referenceTaskName")].reset_index(drop=True)

    def complete(self, output: Json | None = None) -> Run:
        """COMPLETED with ``output`` (``POST /api/tasks``): how a WAIT or HUMAN task is finished."""
        return self._update("COMPLETED", output=output)

    def fail(self, reason: str, output: Json | None = None) -> Run:
        """FAILED with ``reason`` (retried if the task definition allows)."""
        return self._update("FAILED", output=output, reason=reason)

    def _update(self, status: str, *, output: Json | None, reason: str | None = None) -> Run:
        t = self._fresh()
        if t.get("status") not in OPEN_TASK:
            raise LabError(
                f"task {self.ref!r} of run {self.run.id} is {t.get('status')}; it cannot be updated"
            )
        result: Json = {
            "workflowInstanceId": self.run.id,
            "taskId": t["taskId"],
            "status": status,
            "outputData": output or {},
        }
        if reason is not None:
            result["reasonForIncompletion"] = reason
        try:
            self.run.client.update_task(result)
        except ApiError as e:
            raise _refused(f"{status.lower()} task {self.ref!r} of", self.run.id, e) from e
        return self.run.refresh()

    def __repr__(self) -> str:
        t = self.run._latest(self.ref) or {}
        return f"TaskView({self.ref!r}, type={self.type if t else '?'}, status={t.get('status')})"


# ------------------------------------------------------------------------------------------------
# Why


@dataclass
class Why:
    """Why a run did not complete: its root failure and what that caused.

    ``ref``/``type``/``task_reason``/``worker``/``attempt`` describe the first failed task by time
    (a final attempt: an attempt that was retried did not end the run); ``canceled``/``skipped``
    the tasks that did not run because of it. A failed SUB_WORKFLOW task points into ``child``,
    the child's own ``Why``; ``root`` follows those links down. Falsy when nothing failed.
    """

    workflow_id: str
    name: str
    status: str
    reason: str | None = None
    ref: str | None = None
    type: str | None = None
    task_name: str | None = None
    task_id: str | None = None
    task_status: str | None = None
    task_reason: str | None = None
    worker: str | None = None
    attempt: int | None = None
    failed_at: int | None = None
    canceled: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    child: Why | None = None

    @classmethod
    def of(cls, run: Run) -> Why:
        wf = run.json
        status = str(wf.get("status"))
        why = cls(run.id, run.name, status, wf.get("reasonForIncompletion") or None)
        if status not in ("FAILED", "TIMED_OUT", "TERMINATED"):
            return why
        tasks = run._tasks_json()
        why.canceled = [str(t["referenceTaskName"]) for t in tasks if t.get("status") == "CANCELED"]
        why.skipped = [str(t["referenceTaskName"]) for t in tasks if t.get("status") == "SKIPPED"]
        failed = [t for t in tasks if t.get("status") in FAILED_TASK]
        final = [t for t in failed if not t.get("retried")] or failed
        if not final:
            return why
        root = min(final, key=lambda t: (_ms(t.get("endTime")) or _ms(t.get("updateTime")), t.get("seq", 0)))
        why.ref = str(root.get("referenceTaskName"))
        why.type = str((root.get("workflowTask") or {}).get("type") or root.get("taskType"))
        why.task_name = root.get("taskDefName")
        why.task_id = root.get("taskId")
        why.task_status = root.get("status")
        why.task_reason = root.get("reasonForIncompletion") or None
        why.worker = root.get("workerId")
        why.attempt = int(root.get("retryCount") or 0) + 1
        why.failed_at = _ms(root.get("endTime")) or None
        child_id = root.get("subWorkflowId") or (root.get("outputData") or {}).get("subWorkflowId")
        if why.type == "SUB_WORKFLOW" and child_id:
            try:
                why.child = Run(run.client, str(child_id), lab=run._lab).why()
            except LabError:
                why.child = None
        return why

    @property
    def failed(self) -> bool:
        return self.status in ("FAILED", "TIMED_OUT", "TERMINATED")

    def __bool__(self) -> bool:
        return self.failed

    @property
    def root(self) -> Why:
        """The deepest ``Why`` along failed sub-workflows (``self`` when the failure is here)."""
        return self.child.root if self.child is not None and self.child.ref else self

    def _lines(self, depth: int = 0) -> list[str]:
        pad = "  " * depth
        head = f"{pad}{self.name} {self.workflow_id}: {self.status}"
        if not self.failed:
            return [f"{pad}nothing failed: {self.name} {self.workflow_id} is {self.status}"]
        lines = [head + (f": {self.reason}" if self.reason else "")]
        if self.ref:
            who = f", worker {self.worker}" if self.worker else ""
            lines.append(
                f"{pad}root: task {self.ref} ({self.type}, attempt {self.attempt}{who}) {self.task_status}"
                + (f": {self.task_reason}" if self.task_reason else "")
            )
        else:
            lines.append(f"{pad}root: no task failed (the run was {self.status.lower()})")
        if self.canceled:
            lines.append(f"{pad}canceled: {', '.join(self.canceled)}")
        if self.skipped:
            lines.append(f"{pad}skipped: {', '.join(self.skipped)}")
        if self.child is not None:
            lines.append(f"{pad}in sub-workflow {self.ref}:")
            lines.extend(self.child._lines(depth + 1))
        return lines

    def __repr__(self) -> str:
        return "\n".join(self._lines())

    def _repr_markdown_(self) -> str:
        if not self.failed:
            return f"**Nothing failed**: `{self.name}` `{self.workflow_id}` is {self.status}."
        out: list[str] = []
        why: Why | None = self
        depth = 0
        while why is not None:
            pad = "> " * depth
            out.append(
                f"{pad}**{why.name}** `{why.workflow_id}` **{why.status}**"
                + (f": {why.reason}" if why.reason else "")
            )
            if why.ref:
                who = f", worker `{why.worker}`" if why.worker else ""
                out.append(
                    f"{pad}- root: task `{why.ref}` ({why.type}, attempt {why.attempt}{who}) "
                    f"{why.task_status}" + (f": {why.task_reason}" if why.task_reason else "")
                )
            if why.canceled:
                out.append(f"{pad}- canceled: " + ", ".join(f"`{r}`" for r in why.canceled))
            if why.skipped:
                out.append(f"{pad}- skipped: " + ", ".join(f"`{r}`" for r in why.skipped))
            why = why.child
            depth += 1
            if why is not None:
                out.append("")
        return "\n".join(out)


# ------------------------------------------------------------------------------------------------
# Timeline


#: (light, solid) greys for when the palette module is not there
_FALLBACK = ("#e0e0e0", "#757575")


def status_colours(status: str) -> tuple[str, str]:
    """(light, solid) colours of a task status: the palette's fill and stroke
    (``conductor_lab.widgets.palette``, the one every view uses)."""
    try:
        from conductor_lab.widgets.palette import status_color
    except ImportError:  # pragma: no cover - the palette ships with the package
        return _FALLBACK
    return status_color(status, "fill"), status_color(status, "stroke")


class Timeline(pd.DataFrame):
    """``run.timeline()``: one row per task attempt (ref, attempt, status, queued_at, started_at,
    ended_at, wait_s, run_s). ``plot()`` draws it as a Gantt chart; anything derived from it
    (a filter, a sort) is a plain DataFrame."""

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def plot(  # type: ignore[override]
        self, ax: Axes | None = None, *, now: pd.Timestamp | None = None
    ) -> Axes:
        """A Gantt chart: per task attempt a light bar for the queue wait (queued -> started) and a
        solid bar for the run (started -> ended), in the light and solid colours of its status. A
        task still waiting or running gets an open-ended bar up to ``now`` (hatched). Returns the
        matplotlib Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(9, max(1.5, 0.3 * len(self) + 1)))
        now = now if now is not None else pd.Timestamp.now(tz="UTC")
        labels = [f"{r} #{a}" if a > 1 else str(r) for r, a in zip(self["ref"], self["attempt"], strict=True)]
        ys = list(range(len(self)))
        for y, row in zip(ys, self.itertuples(index=False), strict=True):
            queued, started, ended = row.queued_at, row.started_at, row.ended_at
            light, solid = status_colours(str(row.status))
            if pd.notna(queued):
                wait_end = started if pd.notna(started) else (ended if pd.notna(ended) else now)
                waiting = pd.isna(started) and pd.isna(ended)
                self._bar(ax, y, queued, wait_end, light, edge=solid, open_ended=waiting)
            if pd.notna(started):
                run_end = ended if pd.notna(ended) else now
                self._bar(ax, y, started, run_end, solid, edge=solid, open_ended=pd.isna(ended))
        ax.set_yticks(ys, labels)
        ax.invert_yaxis()
        ax.set_xlabel("time (UTC)")
        title = self.attrs.get("name")
        if title:
            ax.set_title(f"{title} {self.attrs.get('workflowId', '')}".strip())
        ax.xaxis_date()
        import matplotlib.dates as mdates

        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # "12:26:35.3", not microseconds
        return ax

    @staticmethod
    def _bar(
        ax: Axes, y: int, start: pd.Timestamp, end: pd.Timestamp, colour: str, *, edge: str, open_ended: bool
    ) -> None:
        import matplotlib.dates as mdates

        left = mdates.date2num(start.tz_convert("UTC").tz_localize(None))
        right = mdates.date2num(end.tz_convert("UTC").tz_localize(None))
        ax.barh(
            y,
            max(right - left, 0.0),
            left=left,
            height=0.6,
            color=colour,
            edgecolor=edge,
            linewidth=0.8,
            hatch="//" if open_ended else None,
            alpha=0.6 if open_ended else 1.0,
        )
