"""Search (conductor-oss ``WorkflowService.searchWorkflows*``, ``TaskService.search*``,
``ExecutionService.search*``): SQL over the store's execution tables, no separate index.

The query syntax is conductor-oss's SQL index's (``engine/search.py``); the store turns it into
SQL (``store/duckdb_search.py``). Every search first waits for the group commit in flight and the
store folds its journal before reading, so a search sees every acknowledged change.

Results are model objects, shaped by ``server/shapes.py``: summaries (``search``) and full objects
(``search-v2``) come from the same rows here, where conductor-oss reads summaries from its index
and full objects from the execution store. Workflows come without their tasks, as upstream's
``getWorkflow(id, false)``.
"""

from __future__ import annotations

from typing import Any

import orjson

from conductor_lab.engine import search
from conductor_lab.engine.model import Task, Workflow, WorkflowTask
from conductor_lab.engine.runtime import Runtime
from conductor_lab.engine.store.base import SearchQuery, StoredWorkflow
from conductor_lab.errors import ConductorLabError, validation_error


class SearchService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    # ------------------------------------------------------------------------------------------
    # workflows: /api/workflow/search, /search-v2, /search-by-tasks, /search-by-tasks-v2

    async def search_workflows(
        self,
        *,
        start: int = 0,
        size: int = 100,
        sort: str | None = None,
        free_text: str | None = "*",
        query: str | None = None,
        classifier: str | None = None,
        top_level_only: bool = False,
        method: str = "searchWorkflows",
    ) -> tuple[int, list[Workflow]]:
        """(how many match, the page): the workflows behind ``SearchResult<WorkflowSummary>`` and
        ``SearchResult<Workflow>`` (search-v2); ``method`` names the operation in a 400."""
        _check_size(size, method)
        q = search.parse(
            start=start, size=size, sort=sort, free_text=free_text, query=_filters(query, classifier, top_level_only)
        )
        await self.rt.committer.barrier(held=True)
        return await self.rt.read(self._load_workflows, q)

    async def search_workflows_by_tasks(
        self,
        *,
        start: int = 0,
        size: int = 100,
        sort: str | None = None,
        free_text: str | None = "*",
        query: str | None = None,
    ) -> tuple[int, list[Workflow]]:
        """The query runs over tasks; the page's tasks' workflows, each once, in the tasks' order.

        ``totalHits`` as conductor-oss computes it: matching tasks minus the page's tasks that
        gave no new workflow (a second task of the same workflow, or a workflow gone).
        """
        q = search.parse(start=start, size=size, sort=sort, free_text=free_text, query=query)
        await self.rt.committer.barrier(held=True)
        return await self.rt.read(self._load_workflows_of_tasks, q)

    # ------------------------------------------------------------------------------------------
    # tasks: /api/tasks/search, /search-v2

    async def search_tasks(
        self,
        *,
        start: int = 0,
        size: int = 100,
        sort: str | None = None,
        free_text: str | None = "*",
        query: str | None = None,
        with_nodes: bool = False,
    ) -> tuple[int, list[Task]]:
        """(how many match, the page): the tasks behind ``SearchResult<TaskSummary>``, or with
        ``with_nodes`` ``SearchResult<Task>`` (search-v2: each task with its ``workflowTask``).

        A summary needs nothing of the task's definition node, so without ``with_nodes`` the tasks
        are rebuilt from their rows alone (with a stand-in node, as recovery does for a node missing
        from a snapshot): no lookup of their workflows.
        """
        q = search.parse(start=start, size=size, sort=sort, free_text=free_text, query=query)
        await self.rt.committer.barrier(held=True)
        return await self.rt.read(self._load_tasks, q, with_nodes)

    # ------------------------------------------------------------------------------------------
    # reads (on a reader thread)

    def _load_workflows(self, q: SearchQuery) -> tuple[int, list[Workflow]]:
        total, rows = self.rt.store.search_workflows(q)
        found = [wf for wf in (self._workflow(r) for r in rows) if wf is not None]
        return total - (len(rows) - len(found)), found  # as upstream: hits that could not be loaded

    def _workflow(self, row: StoredWorkflow) -> Workflow | None:
        try:
            return self.rt.rebuild(row.json, row.snapshot_id, [])
        except ConductorLabError:  # its definition snapshot is missing
            return None

    def _load_tasks(self, q: SearchQuery, with_nodes: bool) -> tuple[int, list[Task]]:
        total, texts = self.rt.store.search_tasks(q)
        if not with_nodes:
            tasks = [_summary_task(orjson.loads(t)) for t in texts]
            return total, tasks
        by_workflow: dict[str, list[str]] = {}
        order: list[str] = []
        for text in texts:
            data = orjson.loads(text)
            order.append(data.get("taskId") or "")
            by_workflow.setdefault(data.get("workflowInstanceId") or "", []).append(text)
        stored = self.rt.store.get_workflows(list(by_workflow))
        rebuilt: dict[str, Task] = {}
        for wid, group in by_workflow.items():
            row = stored.get(wid)
            if row is None:
                continue
            try:
                wf = self.rt.rebuild(row.json, row.snapshot_id, group)
            except ConductorLabError:
                continue
            rebuilt.update((t.taskId, t) for t in wf.tasks)
        found = [rebuilt[tid] for tid in order if tid in rebuilt]
        return total - (len(texts) - len(found)), found

    def _load_workflows_of_tasks(self, q: SearchQuery) -> tuple[int, list[Workflow]]:
        total, texts = self.rt.store.search_tasks(q)
        ids = list(
            dict.fromkeys(
                wid for text in texts if isinstance(wid := orjson.loads(text).get("workflowInstanceId"), str)
            )
        )
        stored = self.rt.store.get_workflows(ids)
        found = [wf for wf in (self._workflow(stored[i]) for i in ids if i in stored) if wf is not None]
        return total - (len(texts) - len(found)), found


def _check_size(size: int, method: str) -> None:
    """conductor-oss's ``@Max(5000)`` on the workflow search service: a constraint violation (400)."""
    if size > search.MAX_WORKFLOW_SIZE:
        raise validation_error(
            f"{method}.size",
            f"Cannot return more than {search.MAX_WORKFLOW_SIZE} workflows. Please use pagination.",
            str(size),
        )


def _filters(query: str | None, classifier: str | None, top_level_only: bool) -> str | None:
    """The ``classifier`` and ``topLevelOnly`` request parameters, folded into the query string
    as conductor-oss's ``WorkflowResource`` does (``classifier IN (...)``, ``parentWorkflowId=""``)."""
    clauses: list[str] = []
    if classifier and classifier.strip():
        values = ",".join(v.strip() for v in classifier.split(",") if v.strip())
        if values:
            clauses.append(f"classifier IN ({values})")
    if top_level_only:
        clauses.append('parentWorkflowId=""')
    if not clauses:
        return query
    if query is None or not query.strip():
        return " AND ".join(clauses)
    return " AND ".join([query, *clauses])


def _summary_task(data: dict[str, Any]) -> Task:
    ref = data.get("referenceTaskName") or ""
    node = WorkflowTask.parse(
        {"name": data.get("taskDefName") or ref, "taskReferenceName": ref, "type": data.get("taskType")}
    )
    return Task.from_state(data, node)
