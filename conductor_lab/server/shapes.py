"""Engine results in conductor-oss's wire shapes (contract section 3).

The engine answers with model objects (``Workflow``, ``Task``, ``TaskDef``, ``WorkflowDef``, store
rows); handlers turn them into the JSON conductor-oss serves with these functions, so a second
transport (gRPC) can shape the same objects its own way.
"""

from __future__ import annotations

from typing import Any

from conductor_lab.engine.model import Task, Workflow, WorkflowDef, poll_data, summary, task_exec_log
from conductor_lab.engine.store.base import LogRow, PollDataRow


def workflow(wf: Workflow, definition_json: dict[str, Any] | None, *, include_tasks: bool = True) -> dict[str, Any]:
    """``Workflow`` (``definition_json``: the stored snapshot it runs, as ``workflowDefinition``)."""
    return wf.to_json(include_tasks=include_tasks, definition_json=definition_json)


def workflow_status(wf: Workflow, *, include_output: bool, include_variables: bool) -> dict[str, Any]:
    """``WorkflowStatus``: id, correlation id, status (and output / variables when asked)."""
    out: dict[str, Any] = {"workflowId": wf.workflowId}
    if wf.correlationId is not None:
        out["correlationId"] = wf.correlationId
    if include_output:
        out["output"] = wf.output
    if include_variables:
        out["variables"] = wf.variables
    out["status"] = wf.status.value
    return out


def task(t: Task) -> dict[str, Any]:
    return t.to_json()


def tasks(ts: list[Task]) -> list[dict[str, Any]]:
    return [t.to_json() for t in ts]


def search_result(total: int, results: list[dict[str, Any]]) -> dict[str, Any]:
    """``SearchResult<T>``."""
    return {"totalHits": total, "results": results}


def definition_summaries(defs: list[WorkflowDef]) -> list[dict[str, Any]]:
    """``WorkflowDefSummary[]``."""
    return [summary(wd) for wd in defs]


def bulk_response(succeeded: list[str]) -> dict[str, Any]:
    """``BulkResponse`` (every item succeeded: failures raise before anything is written)."""
    return {"bulkSuccessfulResults": succeeded, "bulkErrorResults": {}}


def task_logs(rows: list[LogRow]) -> list[dict[str, Any]]:
    """``TaskExecLog[]``."""
    return [task_exec_log(r.log, r.task_id, r.created_time) for r in rows]


def poll_data_list(rows: list[PollDataRow]) -> list[dict[str, Any]]:
    """``PollData[]``."""
    return [poll_data(r.queue_name, r.domain or None, r.worker_id, r.last_poll_time) for r in rows]
