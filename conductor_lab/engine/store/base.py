"""The storage seam: what the executor needs from a durable store.

The executor keeps running workflows in memory and hands the store one ``Batch`` per group
commit; ``commit`` applies the whole batch atomically (all or nothing) and returns only when it is
durable. Reads serve what is not in memory (finished workflows, logs, search, recovery at start).

Rows are plain tuples so a batch can be written set-based (DuckDB) or with ``executemany``
(PostgreSQL) without the store knowing the engine's classes. JSON columns hold UTF-8 JSON text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable


class WorkflowRow(NamedTuple):
    workflow_id: str
    workflow_name: str
    workflow_version: int
    status: str
    correlation_id: str | None
    parent_workflow_id: str | None
    priority: int
    create_time: int
    update_time: int
    end_time: int
    snapshot_id: str
    json: str  # Workflow.state_json(): no tasks, no definition


class TaskRow(NamedTuple):
    task_id: str
    workflow_id: str
    seq: int
    task_type: str
    ref_name: str
    status: str
    retry_count: int
    domain: str | None
    scheduled_time: int
    start_time: int
    end_time: int
    update_time: int
    json: str  # Task.state_json(): no workflowTask


class TransitionRow(NamedTuple):
    """One state change, appended to the history (never updated)."""

    ts: int
    workflow_id: str
    task_id: str | None  # None: a workflow-level transition
    ref_name: str | None
    task_type: str | None
    status: str
    reason: str | None
    cause: str | None = None  # the control verb that caused it (pause, retry, ...); None otherwise


class LogRow(NamedTuple):
    task_id: str
    created_time: int
    log: str


class PollDataRow(NamedTuple):
    queue_name: str
    domain: str  # "" for no domain
    worker_id: str | None
    last_poll_time: int


class TaskDefRow(NamedTuple):
    name: str
    json: str


class WorkflowDefRow(NamedTuple):
    name: str
    version: int
    json: str


class EventHandlerRow(NamedTuple):
    """An event handler definition (upserted by name, like task definitions)."""

    name: str
    event: str
    active: bool
    json: str  # EventHandler JSON


class EventExecutionRow(NamedTuple):
    """One outcome of an event handler for one message (appended to the history, never updated)."""

    id: str  # <messageId>_<actionIndex>; unique per handler name
    message_id: str
    name: str  # the event handler's name
    event: str
    created: int  # epoch ms
    status: str  # IN_PROGRESS | COMPLETED | FAILED | SKIPPED
    action: str | None  # None for SKIPPED (the condition was false)
    output: str  # JSON object


@dataclass
class Batch:
    """Everything one group commit writes. Keys are unique within each upsert list."""

    workflows: list[WorkflowRow] = field(default_factory=list)
    tasks: list[TaskRow] = field(default_factory=list)
    snapshots: list[tuple[str, str]] = field(default_factory=list)  # (snapshot_id, definition JSON); insert if absent
    transitions: list[TransitionRow] = field(default_factory=list)
    logs: list[LogRow] = field(default_factory=list)
    poll_data: list[PollDataRow] = field(default_factory=list)
    task_defs: list[TaskDefRow] = field(default_factory=list)
    task_def_deletes: list[str] = field(default_factory=list)
    workflow_defs: list[WorkflowDefRow] = field(default_factory=list)
    workflow_def_deletes: list[tuple[str, int]] = field(default_factory=list)
    workflow_deletes: list[str] = field(default_factory=list)  # workflow ids: their tasks and logs go too
    task_deletes: list[str] = field(default_factory=list)  # task ids (DO_WHILE keepLastN): their logs go too
    event_handlers: list[EventHandlerRow] = field(default_factory=list)
    event_handler_deletes: list[str] = field(default_factory=list)
    event_executions: list[EventExecutionRow] = field(default_factory=list)  # appended

    def __len__(self) -> int:
        return (
            len(self.workflows)
            + len(self.tasks)
            + len(self.snapshots)
            + len(self.transitions)
            + len(self.logs)
            + len(self.poll_data)
            + len(self.task_defs)
            + len(self.task_def_deletes)
            + len(self.workflow_defs)
            + len(self.workflow_def_deletes)
            + len(self.workflow_deletes)
            + len(self.task_deletes)
            + len(self.event_handlers)
            + len(self.event_handler_deletes)
            + len(self.event_executions)
        )


class StoredWorkflow(NamedTuple):
    json: str
    snapshot_id: str


class SearchQuery(NamedTuple):
    """A parsed workflow or task search (conductor-oss SQL-index semantics, ``engine/search.py``).

    Fields are conductor-oss's names, camelCase or snake_case (``workflowType``, ``start_time``);
    the store maps them to columns and ignores fields it does not know, as the SQL index does.
    """

    clauses: list[tuple[str, str, Any]]  # (field, op, value), ANDed; op in '=', '>', '<', 'IN' (list), 'LIKE'
    free_text: str | None  # None or '*' = everything; else a case-insensitive substring of the JSON
    sort: list[tuple[str, bool]]  # (field, ascending)
    start: int
    size: int


class Store(Protocol):
    """What the engine needs from durable storage.

    ``commit`` is called by one thread at a time (the event loop's while commits are quick, else a
    writer thread's; ``engine/commit.py``); read methods may be called from other threads
    concurrently and must see only committed data. A store may keep the committed ``Batch``
    object until it has applied it (DuckDB: until the fold): callers do not change a batch after
    ``commit`` (the group committer builds a new one for each commit).
    """

    def commit(self, batch: Batch) -> None: ...

    def needs_maintenance(self) -> bool:
        """True when the store wants ``maintain()`` to run soon (on the committer's maintenance thread)."""
        ...

    def maintain(self) -> None:
        """Housekeeping between commits (DuckDB: apply the commit journal to the tables)."""
        ...

    def load_task_defs(self) -> list[str]: ...

    def load_workflow_defs(self) -> list[str]: ...

    def load_event_handlers(self) -> list[str]:
        """Every event handler's JSON, ordered by name."""
        ...

    def get_event_executions(self, name_or_event: str, limit: int = 100) -> list[EventExecutionRow]:
        """The newest ``limit`` executions of the handler named ``name_or_event`` or for that event,
        oldest first."""
        ...

    def load_poll_data(self) -> list[PollDataRow]: ...

    def load_snapshot(self, snapshot_id: str) -> str | None: ...

    def load_running(self, chunk: int = 10_000) -> Iterator[tuple[StoredWorkflow, list[str]]]:
        """Every RUNNING/PAUSED workflow with its task JSONs ordered by seq, streamed in chunks."""
        ...

    def get_workflow(self, workflow_id: str) -> StoredWorkflow | None: ...

    def get_tasks(self, workflow_id: str) -> list[str]: ...

    def get_task(self, task_id: str) -> str | None: ...

    def get_workflows_with_tasks(self, workflow_ids: list[str]) -> dict[str, tuple[StoredWorkflow, list[str]]]:
        """Several workflows with their task JSONs (ordered by seq), by id; unknown ids absent."""
        ...

    def get_task_logs(self, task_id: str) -> list[LogRow]: ...

    def search_workflows(self, query: SearchQuery) -> tuple[int, list[StoredWorkflow]]:
        """(how many workflows match, the page of them in the query's order)."""
        ...

    def search_tasks(self, query: SearchQuery) -> tuple[int, list[str]]:
        """(how many tasks match, the page of their JSONs in the query's order)."""
        ...

    def get_workflows(self, workflow_ids: list[str]) -> dict[str, StoredWorkflow]:
        """The stored workflows among ``workflow_ids`` (unknown ids are left out)."""
        ...

    def workflow_ids(
        self,
        name: str,
        *,
        version: int | None = None,
        statuses: tuple[str, ...] | None = None,
        correlation_id: str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = 1000,
    ) -> list[str]: ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


@runtime_checkable
class ArchivingStore(Store, Protocol):
    """A store that can move finished workflows out of its tables into an archive (``--archive-after``,
    ``store/archive.py``) and still answer reads of them."""

    @property
    def can_archive(self) -> bool:
        """False where there is nowhere to archive to (an in-memory store)."""
        ...

    @property
    def has_archive(self) -> bool:
        """True once anything was archived."""
        ...

    def archive_batch(self, cutoff_ms: int, limit: int = ...) -> int:
        """Archive the oldest finished workflows that ended before ``cutoff_ms`` (at most ``limit``);
        how many moved (0: nothing is due)."""
        ...

    def archived_ids(self, workflow_ids: list[str]) -> set[str]:
        """Those of ``workflow_ids`` that are archived (read-only history)."""
        ...

    def archive_files(self) -> list[Path]:
        """The archive's files (absolute paths)."""
        ...

    def archive_lock_times(self) -> list[float]:
        """Seconds each archive batch since the last call held the store's fold lock (for the log)."""
        ...
