"""The notebook's entry point: a :class:`Lab` is a Conductor server plus a client, in one object.

    lab = Lab()                          # embedded: engine + server in this process (./conductor_lab.duckdb)
    lab = Lab("runs.duckdb")             # embedded, on that file
    lab = Lab("http://host:8080")        # remote (also: url=..., or $CONDUCTOR_SERVER_URL)

Embedded, the engine and its HTTP server run in a daemon thread with their own asyncio loop on
a free 127.0.0.1 port, so a long-running cell never stalls them. Either way every engine
operation goes over the REST API through one :class:`~conductor_lab.run.LabClient`, so an
embedded and a remote lab behave the same; only SQL differs in its transport (embedded: the
sandboxed ``run_sql`` on the store; remote: ``POST /api/lab/sql``), not in its answers.

What a Lab offers: authoring (``register``), workers from cells (``@lab.worker``), runs
(``start``, ``run``, ``execute``), and history as DataFrames (``sql``, ``history``, ``runs``,
``queues``, ``diff``, ``durations``, ``failures``, ``taskdefs``, ``workflow_defs``).
"""

from __future__ import annotations

import atexit
import functools
import html
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload
from urllib.parse import urlparse

import httpx
import orjson
import pandas as pd

from conductor_lab.client.errors import ApiError
from conductor_lab.errors import ConductorLabError
from conductor_lab.run import LabClient, LabError, LabValidationError, Run

if TYPE_CHECKING:
    from conductor_lab.client.worker import WorkerRunner
    from conductor_lab.server.run import ServerHandle

__all__ = [
    "DEFAULT_DB",
    "DEFAULT_TASK_DEF",
    "CellWorker",
    "Lab",
    "LabError",
    "LabValidationError",
    "Registration",
    "RunSet",
]

Json = dict[str, Any]

DEFAULT_DB = "conductor_lab.duckdb"
URL_ENV = "CONDUCTOR_SERVER_URL"
TOKEN_ENV = "CONDUCTOR_LAB_TOKEN"

#: what a SIMPLE task without a registered definition gets: no retries (a failing cell function
#: fails the run at once, instead of Conductor's 3 retries 60 s apart), no timeout, the default
#: response timeout (a task held longer by a worker is queued again)
DEFAULT_TASK_DEF: Json = {
    "retryCount": 0,
    "timeoutSeconds": 0,
    "responseTimeoutSeconds": 3600,
    "timeoutPolicy": "TIME_OUT_WF",
}

#: definition fields a diff does not show (they change on every registration)
_DIFF_IGNORED = frozenset({"createTime", "updateTime", "createdBy", "updatedBy"})

FAILED_TASK_STATUSES = ("FAILED", "FAILED_WITH_TERMINAL_ERROR", "TIMED_OUT")
_BULK_MAX = 1000


# ------------------------------------------------------------------------------------------------
# one Lab per DuckDB file in this process


_registry_lock = threading.Lock()
_open_files: dict[str, Lab] = {}  # resolved DuckDB path -> the embedded Lab that has it open
_open_labs: dict[int, Lab] = {}  # every open Lab (closed at interpreter exit)
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in .*?\(PID (\d+)\)")


def _in_use(path: str, holder: str) -> LabError:
    return LabError(f"{path} is already in use by {holder}; close that Lab or pick another file")


@atexit.register
def _close_all() -> None:
    for lab in list(_open_labs.values()):
        try:
            lab.close()
        except Exception:  # the interpreter is going away: close the others all the same
            pass


# ------------------------------------------------------------------------------------------------
# Blueprint


class Blueprint:
    """A workflow definition as a graph: displays as the graph widget (a static SVG in saved
    notebooks); ``to_networkx()`` gives the graph for your own analysis, ``selected`` the node
    clicked last, ``definition`` the Conductor JSON."""

    def __init__(self, definition: Json) -> None:
        from conductor_lab.widgets.live import BlueprintController

        self.definition = definition
        self._controller = BlueprintController(definition)

    @property
    def view(self) -> Any:
        return self._controller.view

    @property
    def selected(self) -> str | None:
        return self._controller.view.selected

    def to_networkx(self) -> Any:
        return self._controller.to_networkx()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        return self.view._repr_mimebundle_(include=include, exclude=exclude)

    def __repr__(self) -> str:
        d = self.definition
        return f"Blueprint({d.get('name')!r}, version={d.get('version')}, {self.view.node_count()} nodes)"


class _ClosesCurrent:
    """Lets ``Lab.close`` stop the run a history table opened last."""

    def __init__(self, controller: Any) -> None:
        self.controller = controller

    def close(self) -> None:
        if self.controller.current is not None:
            self.controller.current.close()


# ------------------------------------------------------------------------------------------------
# Lab


class Lab:
    """A Conductor server (embedded in this process, or remote) and everything a notebook does with it.

    An open Lab is referenced by this module until ``close()`` (or interpreter exit, through an
    atexit hook): its server thread and workers must be stopped on purpose, not by the collector.
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | None = None,
        *,
        db: str | os.PathLike[str] | None = None,
        url: str | None = None,
        token: str | None = None,
        port: int = 0,
    ) -> None:
        if target is not None:
            if db is not None or url is not None:
                raise LabError(
                    "give the database file or server URL once: Lab(target) or Lab(db=...)/Lab(url=...)"
                )
            if isinstance(target, str) and re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", target):
                url = target
            else:
                db = target
        if db is not None and url is not None:
            raise LabError("a Lab is either embedded (db=...) or remote (url=...), not both")
        if db is None and url is None:
            url = os.environ.get(URL_ENV) or None
            if url is None:
                db = DEFAULT_DB
        self._token = token or os.environ.get(TOKEN_ENV) or None
        self._server: ServerHandle | None = None
        self._path: str | None = None
        self._workers: dict[tuple[str, str | None], CellWorker] = {}
        #: live views (RunController...) to stop on close: their threads long-poll this server
        self._views: list[Any] = []
        self._closed = False
        if url is not None:
            self.mode = "remote"
            self.url = _check_url(url)
            self.client = self.new_client()
            _check_reachable(self.client, self.url)
        else:
            assert db is not None
            self.mode = "embedded"
            self.url = self._open_embedded(db, port)
            self.client = self.new_client()
        with _registry_lock:
            _open_labs[id(self)] = self

    def _open_embedded(self, db: str | os.PathLike[str], port: int) -> str:
        from conductor_lab.server.run import start_server
        from conductor_lab.server.startup import describe_startup_error

        # the kernel is not a server console: its access log (4xx at INFO) stays out of the cells
        logging.getLogger("tornado.access").setLevel(logging.WARNING)

        path = str(Path(db).expanduser().resolve())
        with _registry_lock:
            if path in _open_files:
                raise _in_use(path, "this process")
            _open_files[path] = self
        try:
            self._server = start_server(path, port=port, token=self._token)
        except Exception as e:
            with _registry_lock:
                _open_files.pop(path, None)
            m = _LOCK_HOLDER.search(str(e))
            if m:
                pid = int(m.group(1))
                raise _in_use(path, "this process" if pid == os.getpid() else f"process PID {pid}") from None
            line = describe_startup_error(e, path, "127.0.0.1", port)  # the CLI's one-line explanation
            raise LabError(line.removeprefix("conductor-lab: ") if line else f"could not open {path}: {e}") from None
        self._path = path
        return self._server.url

    @property
    def db(self) -> str | None:
        """The DuckDB file of an embedded lab (None when remote)."""
        return self._path

    @property
    def closed(self) -> bool:
        return self._closed

    def new_client(self) -> LabClient:
        """A new client on this lab's server (threads that long-poll use their own)."""
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else None
        return LabClient(self.url, headers=headers)

    def close(self) -> None:
        """Stop the cell workers, then (embedded) the server. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for view in self._views:
            view.close()
        self._views.clear()
        self.stop_workers()
        self.client.close()
        if self._server is not None:
            self._server.stop()
        with _registry_lock:
            if self._path is not None and _open_files.get(self._path) is self:
                del _open_files[self._path]
            _open_labs.pop(id(self), None)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = f"db={self._path!r}, " if self._path else ""
        state = ", closed" if self._closed else ""
        return f"Lab({self.mode}, {where}url={self.url!r}{state})"

    def _check_open(self) -> None:
        if self._closed:
            raise LabError("this Lab is closed")

    # -- authoring ---------------------------------------------------------------------------

    def register(
        self,
        *items: Any,
        taskdefs: Iterable[Any] | None = None,
        workflow: Any = None,
        overwrite: bool = True,
        new_version: bool = False,
    ) -> Registration:
        """Register task and workflow definitions: dicts, JSON files (a workflow, a task def or a
        list of them), builder workflows (anything with ``to_dict()``), or lists of these.

        ``overwrite``: replace a workflow stored at the same name and version (else 409 -> LabError);
        ``new_version``: store each workflow as the next version instead. SIMPLE tasks without a
        task definition get :data:`DEFAULT_TASK_DEF`. Returns a :class:`Registration` that shows,
        for each workflow that replaced or followed a stored one, what changed.
        """
        self._check_open()
        wfs: list[Json] = []
        tds: list[Json] = []
        for item in [*items, *(taskdefs or []), *([workflow] if workflow is not None else [])]:
            _classify(item, wfs, tds)
        if not wfs and not tds:
            raise LabError("nothing to register: pass workflow or task definitions")
        reg = Registration()
        for wf in wfs:  # every workflow is checked before anything is written
            self._validate(wf)
        stored_tds = {td["name"] for td in self.client.get_task_defs()}
        if tds:
            todo = tds if overwrite else [td for td in tds if td["name"] not in stored_tds]
            if todo:
                self._call("task definitions", self.client.register_task_defs, todo)
            reg.taskdefs = [td["name"] for td in todo]
        known = stored_tds | {td["name"] for td in tds}
        missing = sorted({n for wf in wfs for n in _simple_task_names(wf)} - known)
        if missing:
            self._call(
                "task definitions", self.client.register_task_defs, [_default_task_def(n) for n in missing]
            )
            reg.defaulted = missing
        for wf in wfs:
            reg.workflows.append(self._register_workflow(wf, overwrite=overwrite, new_version=new_version))
        return reg

    def _validate(self, wf: Json) -> None:
        try:
            self.client.validate_workflow_def(wf)
        except ApiError as e:
            if e.status == 404:  # a server without the validate endpoint: registration validates
                return
            raise LabValidationError.from_api(f"workflow {wf.get('name')!r}", e) from None

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ApiError as e:
            raise LabValidationError.from_api(what, e) from None

    def _register_workflow(self, wf: Json, *, overwrite: bool, new_version: bool) -> RegisteredWorkflow:
        name = str(wf.get("name"))
        versions = self.client.workflow_versions(name)
        version = int(wf.get("version") or 1)
        if new_version and versions:
            version = max(versions) + 1
            wf = {**wf, "version": version}
        compare_with = max(versions) if new_version and versions else version
        before = self.client.get_workflow_def(name, compare_with) if compare_with in versions else None
        if before is not None and not overwrite and not new_version:
            raise LabError(
                f"workflow {name} version {version} is already stored; "
                "pass overwrite=True to replace it or new_version=True to store the next version"
            )
        self._call(f"workflow {name!r}", self.client.register_workflow_def, wf, overwrite=overwrite)
        after = self.client.get_workflow_def(name, version)
        if before is None:
            action = "registered"
        elif new_version:
            action = f"new version (after {compare_with})"
        else:
            action = "replaced" if _definition_diff(before, after) else "unchanged"
        changes = _definition_diff(before, after) if before is not None else []
        return RegisteredWorkflow(
            name, version, action, compare_with if before is not None else None, changes
        )

    # -- workers -----------------------------------------------------------------------------

    def worker(
        self,
        task_type: str,
        *,
        threads: int = 1,
        poll_count: int | None = None,
        poll_timeout_ms: int | None = None,
        domain: str | None = None,
    ) -> Callable[[Callable[..., Any]], CellWorker]:
        """Decorator: the function becomes a worker for ``task_type``, polling in background threads.

        Running the cell again replaces the previous worker for that task type (it is stopped
        first). A missing task definition is registered with :data:`DEFAULT_TASK_DEF`.
        """

        def decorate(fn: Callable[..., Any]) -> CellWorker:
            from conductor_lab.client.worker import Worker, WorkerRunner

            self._check_open()
            previous = self._workers.pop((task_type, domain), None)
            if previous is not None:
                previous.stop()
            self._ensure_task_def(task_type)
            options: dict[str, Any] = {"threads": threads, "domain": domain}
            if poll_count is not None:
                options["poll_count"] = poll_count
            if poll_timeout_ms is not None:
                options["poll_timeout_ms"] = poll_timeout_ms
            w = Worker.from_function(task_type, fn, **options)
            runner = WorkerRunner(self.new_client, [w])
            cell = CellWorker(task_type, fn, runner, domain=domain)
            self._workers[(task_type, domain)] = cell
            cell.start()
            return cell

        return decorate

    def _ensure_task_def(self, task_type: str) -> bool:
        """Register the default task definition when there is none; whether it did."""
        try:
            self.client.get_task_def(task_type)
            return False
        except ApiError as e:
            if e.status != 404:
                raise
        self._call("task definition", self.client.register_task_defs, [_default_task_def(task_type)])
        return True

    @property
    def workers(self) -> list[CellWorker]:
        """The workers defined in cells of this lab (running or stopped)."""
        return list(self._workers.values())

    def stop_workers(self, timeout: float = 5.0) -> bool:
        """Stop every cell worker (tasks in hand finish first); True when all stopped in time.

        The workers are stopped together: each may be in a long poll (up to its poll timeout), so
        one after the other would take that long per worker."""
        workers = [w for w in self._workers.values() if w.runner.state != "stopped"]
        if len(workers) <= 1:
            return all([w.stop(timeout) for w in workers])
        with ThreadPoolExecutor(max_workers=len(workers), thread_name_prefix="stop-worker") as pool:
            return all(list(pool.map(lambda w: w.stop(timeout), workers)))

    # -- views -------------------------------------------------------------------------------

    def blueprint(self, workflow: str | Json | Any, version: int | None = None) -> Blueprint:
        """A workflow definition drawn as a graph: a stored one by name (latest version unless
        ``version``), or a definition given as a dict / builder workflow (not registered)."""
        if isinstance(workflow, str):
            self._check_open()
            definition = self._call(f"workflow {workflow}", self.client.get_workflow_def, workflow, version)
        elif hasattr(workflow, "to_dict"):
            definition = workflow.to_dict()
        else:
            definition = dict(workflow)
        return Blueprint(definition)

    def browse(self, limit: int = 100) -> Any:
        """Recent runs as a filterable table; clicking a row opens that run's live graph below it."""
        from ipywidgets import VBox

        from conductor_lab.widgets.live import HistoryController

        controller = HistoryController(self, limit=limit)
        self._views.append(_ClosesCurrent(controller))
        return VBox([controller.table, controller.opened])

    def _watch(self, controller: Any) -> None:
        """Remember a live view so ``close()`` stops its watch thread."""
        self._views = [v for v in self._views if not getattr(v, "closed", False)]
        self._views.append(controller)

    # -- runs --------------------------------------------------------------------------------

    def start(
        self,
        name: str,
        input: Json | None = None,
        *,
        version: int | None = None,
        correlation_id: str | None = None,
        priority: int = 0,
        task_to_domain: dict[str, str] | None = None,
    ) -> Run:
        """Start the workflow ``name`` (latest version unless given); its :class:`Run`."""
        self._check_open()
        request: Json = {"name": name, "input": input or {}, "priority": priority}
        if version is not None:
            request["version"] = version
        if correlation_id is not None:
            request["correlationId"] = correlation_id
        if task_to_domain:
            request["taskToDomain"] = task_to_domain
        try:
            workflow_id = self.client.start(request)
        except ApiError as e:
            raise LabValidationError.from_api(f"start {name!r}", e) from None
        return Run(self.client, workflow_id, lab=self)

    def run(self, workflow_id: str) -> Run:
        """The run with this workflowId."""
        self._check_open()
        return Run(self.client, workflow_id, lab=self)

    def execute(
        self,
        name: str,
        input: Json | None = None,
        *,
        version: int | None = None,
        wait_until_task_ref: str | None = None,
        wait_for_seconds: int = 10,
    ) -> Run:
        """Start and wait on the server (the synchronous execution API) until the run ends, a
        blocking task (WAIT, HUMAN) is reached, ``wait_until_task_ref`` ended, or
        ``wait_for_seconds`` passed; its :class:`Run`."""
        self._check_open()
        request: Json = {"name": name, "input": input or {}}
        try:
            answer = self.client.execute_workflow(
                name,
                request,
                version=version or 0,
                wait_until_task_ref=wait_until_task_ref,
                wait_for_seconds=wait_for_seconds,
            )
        except ApiError as e:
            raise LabValidationError.from_api(f"execute {name!r}", e) from None
        workflow_id = answer.get("targetWorkflowId") or answer.get("workflowId")
        return Run(self.client, str(workflow_id), lab=self)

    # -- SQL and history ---------------------------------------------------------------------

    def sql(
        self,
        query: str,
        params: Sequence[Any] | None = None,
        *,
        max_rows: int = 100_000,
        timeout_s: float = 30.0,
        verbose: bool = False,
    ) -> pd.DataFrame:
        """A read-only SQL query over the history views (``workflows``, ``tasks``, ``transitions``,
        ``task_logs``, ``event_executions``, ...; see docs/sql.md) as a DataFrame.

        ``df.attrs["truncated"]`` is True when the answer stopped at ``max_rows``.
        """
        self._check_open()
        if verbose:
            print("-- " + " ".join(query.split()))
        truncated = False
        try:
            if self._server is not None:
                from conductor_lab.engine.sql import run_sql

                # as the server's endpoint does: see every change made before this call
                executor = self._server.executor
                self._server.call(lambda: executor.committer.barrier(), timeout=timeout_s)
                result = run_sql(
                    executor.store,
                    query,
                    params=list(params) if params is not None else None,
                    max_rows=max_rows,
                    timeout_s=timeout_s,
                )
                table, truncated = result.table, bool(result.truncated)
            else:
                table = self.client.sql(
                    query,
                    params=list(params) if params is not None else None,
                    max_rows=max_rows,
                    timeout_s=timeout_s,
                )
                truncated = (table.schema.metadata or {}).get(b"truncated") == b"true"
        except ConductorLabError as e:
            raise LabError(f"SQL refused: {e.message}") from None
        except ApiError as e:
            raise LabError(f"SQL refused: {e.message}") from None
        frame = table.to_pandas()
        frame.attrs["sql"] = query
        frame.attrs["truncated"] = truncated
        return frame

    def _query(self, query: str, params: list[Any], *, verbose: bool) -> pd.DataFrame:
        """Run a query built here; print it (literals inlined) when ``verbose``: the "show as SQL"."""
        shown = _inline(query, params)
        if verbose:
            print("-- " + shown)
        frame = self.sql(query, params)
        frame.attrs["sql"] = shown
        return frame

    def history(
        self,
        name: str | None = None,
        status: str | Sequence[str] | None = None,
        since: str | datetime | timedelta | None = None,
        limit: int = 100,
        *,
        text: str | None = None,
        verbose: bool = True,
    ) -> pd.DataFrame:
        """Recent runs, newest first: workflowId, workflowType, version, status, startTime, endTime,
        duration_s, correlationId, reason. ``since``: "30m", "2h", "7d", "1w", a datetime (naive
        means local time) or a timedelta; ``text``: a substring of the input or output JSON.

        Prints the SQL it ran as one comment line (``verbose=False`` to keep quiet); it is also in
        ``df.attrs["sql"]``, ready for ``lab.sql``.
        """
        where, params = _run_filters(name, status, since, text)
        query = (
            'SELECT workflow_id AS "workflowId", name AS "workflowType", version, status, '
            'created_at AS "startTime", ended_at AS "endTime", duration_s, '
            'correlation_id AS "correlationId", reason FROM workflows'
            + (" WHERE " + " AND ".join(where) if where else "")
            + f" ORDER BY created_at DESC, workflow_id DESC LIMIT {int(limit)}"
        )
        return self._query(query, params, verbose=verbose)

    def runs(
        self,
        name: str | None = None,
        status: str | Sequence[str] | None = None,
        since: str | datetime | timedelta | None = None,
        limit: int = 100,
        *,
        text: str | None = None,
    ) -> RunSet:
        """The runs ``history`` would list, as a :class:`RunSet` (bulk verbs, ``Run`` per item)."""
        frame = self.history(name, status, since, limit, text=text, verbose=False)
        return RunSet(self, [str(i) for i in frame["workflowId"]], frame)

    def queues(self) -> pd.DataFrame:
        """Worker task queues: task_type, domain, pending (queued, delayed ones included),
        last_poll_at (UTC) and last_worker, from the queue sizes and the poll data."""
        self._check_open()
        rows: dict[tuple[str, str | None], Json] = {}

        def row(task_type: str, domain: str | None) -> Json:
            return rows.setdefault(
                (task_type, domain),
                {
                    "task_type": task_type,
                    "domain": domain,
                    "pending": 0,
                    "last_poll_at": None,
                    "last_worker": None,
                },
            )

        for queue, size in self.client.queue_all().items():
            domain, _, task_type = queue.rpartition(":")
            row(task_type, domain or None)["pending"] = int(size)
        for poll in self.client.all_poll_data():
            r = row(str(poll.get("queueName")), poll.get("domain") or None)
            r["last_poll_at"] = poll.get("lastPollTime") or None
            r["last_worker"] = poll.get("workerId")
        frame = pd.DataFrame(
            sorted(rows.values(), key=lambda r: (r["task_type"], r["domain"] or "")),
            columns=["task_type", "domain", "pending", "last_poll_at", "last_worker"],
        )
        frame["last_poll_at"] = pd.to_datetime(frame["last_poll_at"], unit="ms", utc=True)
        return frame

    def diff(self, run_a: Run | str, run_b: Run | str) -> pd.DataFrame:
        """What differs between two runs, as rows (section, key, a, b); equal rows are left out.

        Sections: blueprint (workflow name, version, then the definition's fields), input, task
        status and task output (per reference name, latest attempt), duration (seconds, per task
        and for the whole run).
        """
        a = run_a if isinstance(run_a, Run) else self.run(run_a)
        b = run_b if isinstance(run_b, Run) else self.run(run_b)
        rows: list[tuple[str, str, Any, Any]] = []

        def add(section: str, va: Json, vb: Json) -> None:
            found: list[tuple[str, Any, Any]] = []
            _diff(va, vb, "", found)
            rows.extend((section, key, x, y) for key, x, y in found)

        ja, jb = a.refresh().json, b.refresh().json
        rows.extend(("blueprint", key, va, vb) for key, va, vb in _blueprint_rows(ja, jb))
        add("input", ja.get("input") or {}, jb.get("input") or {})
        ta, tb = _latest_tasks(ja), _latest_tasks(jb)
        add(
            "task status",
            {r: t.get("status") for r, t in ta.items()},
            {r: t.get("status") for r, t in tb.items()},
        )
        add(
            "task output",
            {r: t.get("outputData") or {} for r, t in ta.items()},
            {r: t.get("outputData") or {} for r, t in tb.items()},
        )
        add("duration", _durations(ja, ta), _durations(jb, tb))
        frame = pd.DataFrame(rows, columns=["section", "key", "a", "b"], dtype=object)  # None stays None
        frame.attrs["a"], frame.attrs["b"] = a.id, b.id
        return frame

    def durations(self, name: str, last: int = 50, *, verbose: bool = False) -> pd.DataFrame:
        """Per task reference name over the ``last`` runs of ``name``: runs, p50_s, p95_s, max_s
        (run time of the attempts) and failures (failed or timed-out attempts), in task order."""
        query = (
            "WITH recent AS (SELECT workflow_id FROM workflows WHERE name = ? "
            "ORDER BY created_at DESC LIMIT ?) "
            "SELECT ref_name AS ref, count(DISTINCT workflow_id) AS runs, "
            "quantile_cont(run_s, 0.5) AS p50_s, quantile_cont(run_s, 0.95) AS p95_s, max(run_s) AS max_s, "
            f"count(*) FILTER (WHERE status IN {_in_list(FAILED_TASK_STATUSES)}) AS failures "
            "FROM tasks WHERE workflow_id IN (SELECT workflow_id FROM recent) "
            "GROUP BY ref_name ORDER BY min(seq), ref_name"
        )
        return self._query(query, [name, int(last)], verbose=verbose)

    def failures(
        self,
        since: str | datetime | timedelta | None = None,
        *,
        name: str | None = None,
        verbose: bool = False,
    ) -> pd.DataFrame:
        """Failed task attempts grouped by reason, digits normalised to N (as Conductor's error
        inspector does): reason, tasks, runs, refs, first_at, last_at, example (a workflowId)."""
        where = [f"status IN {_in_list(FAILED_TASK_STATUSES)}"]
        params: list[Any] = []
        if since is not None:
            where.append("coalesce(ended_at, updated_at) >= ?")
            params.append(_since(since))
        if name is not None:
            where.append("workflow_name = ?")
            params.append(name)
        query = (
            "SELECT regexp_replace(coalesce(reason, '(no reason)'), '[0-9]+', 'N', 'g') AS reason, "
            "count(*) AS tasks, count(DISTINCT workflow_id) AS runs, "
            "string_agg(DISTINCT ref_name, ', ' ORDER BY ref_name) AS refs, "
            "min(coalesce(ended_at, updated_at)) AS first_at, max(coalesce(ended_at, updated_at)) AS last_at, "
            "max(workflow_id) AS example "
            "FROM tasks WHERE " + " AND ".join(where) + " GROUP BY 1 ORDER BY tasks DESC, reason"
        )
        return self._query(query, params, verbose=verbose)

    def taskdefs(self) -> pd.DataFrame:
        """Registered task definitions, one row each (Conductor's field names)."""
        self._check_open()
        defs = sorted(self.client.get_task_defs(), key=lambda d: str(d.get("name")))
        frame = pd.DataFrame(defs)
        for col in ("createTime", "updateTime"):
            if col in frame:
                frame[col] = pd.to_datetime(frame[col].where(frame[col] > 0), unit="ms", utc=True)
        return frame

    def workflow_defs(self) -> pd.DataFrame:
        """Registered workflow definitions: name, version, tasks (top-level count), description,
        restartable, timeoutSeconds, failureWorkflow, createTime, updateTime."""
        self._check_open()
        rows = [
            {
                "name": d.get("name"),
                "version": d.get("version"),
                "tasks": len(d.get("tasks") or []),
                "description": d.get("description"),
                "restartable": d.get("restartable"),
                "timeoutSeconds": d.get("timeoutSeconds"),
                "failureWorkflow": d.get("failureWorkflow"),
                "createTime": d.get("createTime") or None,
                "updateTime": d.get("updateTime") or None,
            }
            for d in sorted(
                self.client.get_workflow_defs(), key=lambda d: (str(d.get("name")), d.get("version", 0))
            )
        ]
        frame = pd.DataFrame(
            rows,
            columns=[
                "name", "version", "tasks", "description", "restartable", "timeoutSeconds",
                "failureWorkflow", "createTime", "updateTime",
            ],
        )  # fmt: skip
        for col in ("createTime", "updateTime"):
            frame[col] = pd.to_datetime(frame[col], unit="ms", utc=True)
        return frame


# ------------------------------------------------------------------------------------------------
# connecting


def _check_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise LabError(f"not a server URL: {url!r} (expected http://host:port)")
    base = url.rstrip("/")
    return base[: -len("/api")] if base.endswith("/api") else base


def _check_reachable(client: LabClient, url: str) -> None:
    try:
        client.health()
    except httpx.TransportError as e:
        client.close()
        raise LabError(f"cannot reach a Conductor server at {url}: {e}") from None
    except ApiError as e:
        client.close()
        if e.status in (401, 403):
            raise LabError(
                f"{url} refused the token (HTTP {e.status}); pass token=... or set {TOKEN_ENV}"
            ) from None
        raise LabError(
            f"{url} does not answer like a Conductor server (/api/health: HTTP {e.status})"
        ) from None
    except orjson.JSONDecodeError:
        client.close()
        raise LabError(f"{url} does not answer like a Conductor server (/api/health is not JSON)") from None


# ------------------------------------------------------------------------------------------------
# workers from cells


class CellWorker:
    """A worker defined in a notebook cell (``@lab.worker("fetch")``): a handle on its runner.

    Calling it calls the function (handy for trying it on a sample input); ``stop()`` / ``start()``
    control the polling threads; ``stats`` are its counters; displayed, it is the progress view.
    """

    def __init__(
        self, task_type: str, fn: Callable[..., Any], runner: WorkerRunner, *, domain: str | None = None
    ) -> None:
        self.task_type = task_type
        self.fn = fn
        self.domain = domain
        self.runner = runner
        self._progress: Any = None
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def start(self) -> CellWorker:
        """Start polling (again)."""
        if not self.runner.running:
            self.runner.start()
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop polling; tasks in hand finish and are reported. True when its threads ended in time."""
        if self.runner.state == "stopped":
            return True
        return self.runner.stop(timeout)

    @property
    def running(self) -> bool:
        return self.runner.running

    @property
    def stats(self) -> dict[str, int]:
        """polled, completed, failed, in_progress, errors, running (tasks executing right now)."""
        return dict(self.runner.stats.get(self.task_type, {}))

    def progress(self) -> Any:
        """The live progress view of this worker (``conductor_lab.widgets.progress.WorkerProgress``)."""
        if self._progress is None:
            from conductor_lab.widgets.progress import WorkerProgress

            self._progress = WorkerProgress(self.runner)
        return self._progress

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle = dict(self.progress()._repr_mimebundle_(include=include, exclude=exclude) or {})
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        s = self.stats
        domain = f", domain={self.domain!r}" if self.domain else ""
        return (
            f"CellWorker({self.task_type!r}{domain}, {self.runner.state}, "
            f"completed={s.get('completed', 0)}, failed={s.get('failed', 0)})"
        )


# ------------------------------------------------------------------------------------------------
# registration


@dataclass
class RegisteredWorkflow:
    """One workflow definition of a registration and how it compares with the stored one."""

    name: str
    version: int
    action: str  # "registered" | "replaced" | "unchanged" | "new version (after N)"
    compared_with: int | None  # the stored version it was compared with
    changes: list[tuple[str, Any, Any]]  # (path, stored, new)


@dataclass
class Registration:
    """What ``lab.register`` did: task definitions registered (``defaulted`` ones filled in for
    SIMPLE tasks that had none) and workflows with their differences from the stored version."""

    taskdefs: list[str] = field(default_factory=list)
    defaulted: list[str] = field(default_factory=list)
    workflows: list[RegisteredWorkflow] = field(default_factory=list)

    @property
    def changes(self) -> pd.DataFrame:
        """Every difference from a stored version: workflow, version, path, stored, new."""
        rows = [(w.name, w.version, p, s, n) for w in self.workflows for p, s, n in w.changes]
        frame = pd.DataFrame(rows, columns=["workflow", "version", "path", "stored", "new"], dtype=object)
        return frame.astype({"workflow": str, "version": int, "path": str}) if rows else frame

    def diff(self, name: str | None = None) -> pd.DataFrame:
        """The differences of one workflow (the first one when ``name`` is None): path | stored | new."""
        found = [w for w in self.workflows if name is None or w.name == name]
        if not found:
            raise LabError(f"no workflow {name!r} in this registration")
        frame = pd.DataFrame(found[0].changes, columns=["path", "stored", "new"], dtype=object)
        return frame.astype({"path": str}) if found[0].changes else frame

    def _summary(self) -> list[str]:
        lines = [f"workflow {w.name} v{w.version}: {w.action}" for w in self.workflows]
        if self.taskdefs:
            lines.append("task definitions: " + ", ".join(self.taskdefs))
        if self.defaulted:
            lines.append("default task definitions (SIMPLE tasks had none): " + ", ".join(self.defaulted))
        return lines

    def __repr__(self) -> str:
        lines = self._summary()
        for w in self.workflows:
            for path, stored, new in w.changes:
                lines.append(f"  {w.name} {path}: {_short(stored)} -> {_short(new)}")
        return (
            "Registration\n" + "\n".join("  " + line for line in lines) if lines else "Registration (empty)"
        )

    def _repr_html_(self) -> str:
        parts = ["<div class='cl-registration'>"]
        parts.append("<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in self._summary()) + "</ul>")
        for w in self.workflows:
            if w.changes:
                parts.append(
                    f"<p>{html.escape(w.name)} v{w.version} against stored v{w.compared_with}: "
                    f"{len(w.changes)} change(s)</p>"
                )
                parts.append(self.diff(w.name).to_html(index=False, na_rep=""))
        parts.append("</div>")
        return "".join(parts)


def _classify(item: Any, wfs: list[Json], tds: list[Json]) -> None:
    """Sort a register() argument into workflow and task definitions."""
    if hasattr(item, "to_dict") and not isinstance(item, dict):
        _classify(item.to_dict(), wfs, tds)
    elif isinstance(item, str | os.PathLike):
        path = Path(item).expanduser()
        if not path.is_file():
            raise LabError(f"no such definition file: {path}")
        try:
            data = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as e:
            raise LabError(f"{path} is not JSON: {e}") from None
        _classify(data, wfs, tds)
    elif isinstance(item, list | tuple):
        for x in item:
            _classify(x, wfs, tds)
    elif isinstance(item, dict):
        if "tasks" in item:
            wfs.append(item)
        elif item.get("name"):
            tds.append(item)
        else:
            raise LabError(f"not a workflow or task definition (no 'tasks', no 'name'): {_short(item)}")
    else:
        raise LabError(
            f"cannot register a {type(item).__name__}: pass dicts, JSON files or builder workflows"
        )


def _simple_task_names(wf: Json) -> set[str]:
    """Names of SIMPLE tasks (nested ones too) without an embedded taskDefinition."""
    from conductor_lab.run import _walk_nodes

    return {
        str(n["name"])
        for n in _walk_nodes(wf.get("tasks"))
        if (n.get("type") or "SIMPLE") == "SIMPLE" and n.get("name") and not n.get("taskDefinition")
    }


def _default_task_def(name: str) -> Json:
    return {"name": name, **DEFAULT_TASK_DEF}


def _definition_diff(before: Json | None, after: Json) -> list[tuple[str, Any, Any]]:
    """(path, stored, new) for every difference; see :func:`_diff`."""
    rows: list[tuple[str, Any, Any]] = []
    _diff(
        {k: v for k, v in (before or {}).items() if k not in _DIFF_IGNORED},
        {k: v for k, v in after.items() if k not in _DIFF_IGNORED},
        "",
        rows,
    )
    return rows


_MISSING: Any = None


def _diff(a: Any, b: Any, path: str, rows: list[tuple[str, Any, Any]]) -> None:
    """Differences of two JSON values. A subtree present on one side only is one row; lists of
    workflow tasks are matched by taskReferenceName (``tasks[fetch].inputParameters.n``), so
    inserting a task does not shift every later one; a changed sequence of references is one row."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=lambda k: _natural(str(k))):
            sub = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                rows.append((sub, a.get(key, _MISSING), b.get(key, _MISSING)))
            else:
                _diff(a[key], b[key], sub, rows)
    elif isinstance(a, list) and isinstance(b, list):
        ra, rb = _refs(a), _refs(b)
        if ra is not None and rb is not None:
            if ra != rb:
                rows.append((f"{path} (order)", ra, rb))
            ia, ib = dict(zip(ra, a, strict=True)), dict(zip(rb, b, strict=True))
            for ref in [*ra, *(r for r in rb if r not in ia)]:
                sub = f"{path}[{ref}]"
                if ref not in ia or ref not in ib:
                    rows.append((sub, ia.get(ref, _MISSING), ib.get(ref, _MISSING)))
                else:
                    _diff(ia[ref], ib[ref], sub, rows)
            return
        for i in range(max(len(a), len(b))):
            sub = f"{path}[{i}]"
            if i >= len(a) or i >= len(b):
                rows.append((sub, a[i] if i < len(a) else _MISSING, b[i] if i < len(b) else _MISSING))
            else:
                _diff(a[i], b[i], sub, rows)
    elif a != b:
        rows.append((path, a, b))


def _refs(items: list[Any]) -> list[str] | None:
    """The taskReferenceNames of a list of workflow tasks (None when it is not one)."""
    refs = [x.get("taskReferenceName") for x in items if isinstance(x, dict)]
    if (
        len(refs) != len(items)
        or not all(isinstance(r, str) and r for r in refs)
        or len(set(refs)) != len(refs)
    ):
        return None
    return [str(r) for r in refs]


def _natural(path: str) -> list[Any]:
    """Sort key: ``tasks[2]`` before ``tasks[10]``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------------------------------------
# runs as a set


class RunSet(Sequence[Run]):
    """Runs picked by a filter (``lab.runs(...)``), newest first: index it for a :class:`Run`, or
    apply a verb to all (``retry``, ``restart``, ``terminate``, ``pause``, ``resume``): each answers a
    DataFrame workflowId | ok | error, one row per run."""

    def __init__(self, lab: Lab, ids: list[str], frame: pd.DataFrame | None = None) -> None:
        self.lab = lab
        self.ids = list(ids)
        self.frame = frame if frame is not None else pd.DataFrame({"workflowId": self.ids})

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> Run: ...

    @overload
    def __getitem__(self, index: slice) -> RunSet: ...

    def __getitem__(self, index: int | slice) -> Run | RunSet:
        if isinstance(index, slice):
            return RunSet(self.lab, self.ids[index], self.frame.iloc[index].reset_index(drop=True))
        return self.lab.run(self.ids[index])

    def __iter__(self) -> Iterator[Run]:
        for workflow_id in self.ids:
            yield self.lab.run(workflow_id)

    def last(self, n: int = 1) -> RunSet:
        """The ``n`` most recent runs (newest first)."""
        return self[:n]

    def _bulk(self, verb: str, **params: Any) -> pd.DataFrame:
        self.lab._check_open()
        rows: list[tuple[str, bool, str | None]] = []
        for i in range(0, len(self.ids), _BULK_MAX):
            chunk = self.ids[i : i + _BULK_MAX]
            try:
                answer = self.lab.client.bulk(verb, chunk, **params)
            except ApiError as e:
                rows.extend((w, False, e.message) for w in chunk)
                continue
            ok = set(answer.get("bulkSuccessfulResults") or [])
            errors = answer.get("bulkErrorResults") or {}
            rows.extend((w, w in ok, errors.get(w)) for w in chunk)
        return pd.DataFrame(rows, columns=["workflowId", "ok", "error"])

    def retry(self) -> pd.DataFrame:
        return self._bulk("retry")

    def restart(self, latest: bool = False) -> pd.DataFrame:
        return self._bulk("restart", useLatestDefinitions=latest)

    def terminate(self, reason: str | None = None) -> pd.DataFrame:
        return self._bulk("terminate", reason=reason)

    def pause(self) -> pd.DataFrame:
        return self._bulk("pause")

    def resume(self) -> pd.DataFrame:
        return self._bulk("resume")

    def __repr__(self) -> str:
        shown = ", ".join(self.ids[:3]) + (", ..." if len(self.ids) > 3 else "")
        return f"RunSet({len(self.ids)} runs: [{shown}])"

    def _repr_html_(self) -> str:
        return f"<p>RunSet: {len(self.ids)} runs</p>" + self.frame.to_html(
            index=False, max_rows=50, na_rep=""
        )


# ------------------------------------------------------------------------------------------------
# SQL building blocks


_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _since(since: str | datetime | timedelta) -> datetime:
    """A UTC (naive, as the views' TIMESTAMP columns) cutoff from "2h" / "7d" / a datetime / a timedelta."""
    if isinstance(since, timedelta):
        return (datetime.now(UTC) - since).replace(tzinfo=None)
    if isinstance(since, datetime):  # naive: local time, as datetime.now() gives
        return since.astimezone(UTC).replace(tzinfo=None)
    m = _SINCE.match(since) if isinstance(since, str) else None
    if m is None:
        raise LabError(f"since={since!r}: use e.g. '30m', '2h', '7d', '1w', a datetime or a timedelta")
    delta = timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})
    return (datetime.now(UTC) - delta).replace(tzinfo=None)


def _run_filters(
    name: str | None, status: str | Sequence[str] | None, since: Any, text: str | None
) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if name is not None:
        where.append("name = ?")
        params.append(name)
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        where.append("status IN (" + ", ".join("?" for _ in statuses) + ")")
        params.extend(s.upper() for s in statuses)
    if since is not None:
        where.append("created_at >= ?")
        params.append(_since(since))
    if text:
        where.append(
            "(CAST(input AS VARCHAR) ILIKE ? ESCAPE '\\' OR CAST(output AS VARCHAR) ILIKE ? ESCAPE '\\')"
        )
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        params.extend([pattern, pattern])
    return where, params


def _in_list(values: Sequence[str]) -> str:
    return "(" + ", ".join(_literal(v) for v in values) + ")"


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ', timespec='milliseconds')}'"
    return "'" + str(value).replace("'", "''") + "'"


def _inline(query: str, params: Sequence[Any]) -> str:
    """The query with its ``?`` parameters written as SQL literals (for showing, not for running)."""
    parts = query.split("?")
    if len(parts) - 1 != len(params):
        return query
    out = [parts[0]]
    for value, rest in zip(params, parts[1:], strict=True):
        out.append(_literal(value) + rest)
    return "".join(out)


# ------------------------------------------------------------------------------------------------
# diff building blocks


def _blueprint_rows(a: Json, b: Json) -> list[tuple[str, Any, Any]]:
    """Name, version, then the differences of the two definitions (their task definitions aside)."""
    rows: list[tuple[str, Any, Any]] = []
    for key, field_name in (("name", "workflowName"), ("version", "workflowVersion")):
        if a.get(field_name) != b.get(field_name):
            rows.append((key, a.get(field_name), b.get(field_name)))

    def definition(wf: Json) -> Json:
        d = {k: v for k, v in (wf.get("workflowDefinition") or {}).items() if k not in _DIFF_IGNORED}
        d.pop("name", None)
        d.pop("version", None)
        return _without_task_definitions(d)

    _diff(definition(a), definition(b), "definition", rows)
    return rows


def _without_task_definitions(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_task_definitions(v) for k, v in value.items() if k != "taskDefinition"}
    if isinstance(value, list):
        return [_without_task_definitions(v) for v in value]
    return value


def _latest_tasks(wf: Json) -> dict[str, Json]:
    latest: dict[str, Json] = {}
    for t in sorted(wf.get("tasks") or [], key=lambda t: t.get("seq", 0)):
        latest[str(t.get("referenceTaskName"))] = t
    return latest


def _durations(wf: Json, tasks: dict[str, Json]) -> dict[str, Any]:
    def seconds(start: Any, end: Any) -> float | None:
        if isinstance(start, int) and isinstance(end, int) and start > 0 and end >= start:
            return round((end - start) / 1000.0, 3)
        return None

    out: dict[str, Any] = {"(workflow)": seconds(wf.get("createTime"), wf.get("endTime"))}
    for ref, t in tasks.items():
        out[ref] = seconds(t.get("startTime"), t.get("endTime"))
    return out
