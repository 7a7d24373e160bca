"""Engine results in conductor-oss's wire shapes (contract section 3).

The engine answers with model objects (``Workflow``, ``Task``, ``TaskDef``, ``WorkflowDef``, store
rows); handlers turn them into the JSON conductor-oss serves with these functions, so a second
transport (gRPC) can shape the same objects its own way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from conductor_lab.engine.model import Task, Workflow, WorkflowDef, poll_data, summary, task_exec_log
from conductor_lab.engine.params import to_java_string
from conductor_lab.engine.store.base import LogRow, PollDataRow

if TYPE_CHECKING:
    from conductor_lab.engine.services.sync import SignalResult


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


# ------------------------------------------------------------------------------------------------
# Synchronous execution and signals: SignalResponse (contract 3.11, 7.11), null fields omitted


def signal_response(r: SignalResult) -> dict[str, Any]:
    """``WorkflowRun`` or ``TaskRun`` (conductor-oss ``NotificationResult.toResponse``)."""
    out: dict[str, Any] = {
        "responseType": r.strategy,
        "targetWorkflowId": r.target.workflowId,
        "targetWorkflowStatus": r.target.status.value,
        "requestId": r.request_id,
    }
    t = r.task
    if t is not None:  # TaskRun: the first blocking task
        out["workflowId"] = t.workflowInstanceId
        out["correlationId"] = t.correlationId
        out["input"] = t.inputData
        out["output"] = t.outputData
        out["signalTimeout"] = r.timed_out
        out["taskType"] = t.taskType
        out["taskId"] = t.taskId
        out["referenceTaskName"] = t.referenceTaskName
        out["retryCount"] = t.retryCount
        out["taskDefName"] = t.taskDefName
        out["retriedTaskId"] = t.retriedTaskId
        out["workflowType"] = t.workflowType
        out["reasonForIncompletion"] = t.reasonForIncompletion
        out["priority"] = t.workflowPriority
        out["createdBy"] = t.workerId
        out["createTime"] = t.startTime
        out["updateTime"] = t.updateTime
        out["status"] = t.status.value
    else:  # WorkflowRun: the target or the blocking (sub-)workflow
        wf = r.workflow or r.target
        out["workflowId"] = wf.workflowId
        out["correlationId"] = wf.correlationId
        out["input"] = wf.input
        out["output"] = wf.output
        out["signalTimeout"] = r.timed_out
        out["priority"] = wf.priority
        out["variables"] = wf.variables
        out["tasks"] = [x.to_json() for x in wf.tasks]
        out["createdBy"] = wf.createdBy
        out["createTime"] = wf.createTime
        out["status"] = wf.status.value
        out["updateTime"] = wf.updateTime
    return {k: v for k, v in out.items() if v is not None}


# ------------------------------------------------------------------------------------------------
# Search summaries (contract section 3.11): times as ISO-8601 UTC strings, input/output as Java's
# Map.toString()


def iso_time(ms: int) -> str:
    """``yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`` (UTC) of epoch milliseconds, as conductor-oss's summaries."""
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def classifier(wd: WorkflowDef | None) -> str:
    """conductor-oss's ``WorkflowClassifier.classifierOf``: ``metadata.classifier`` when a
    non-blank string, ``agent`` for agent definitions, otherwise ``workflow``."""
    metadata = getattr(wd, "metadata", None)
    if not isinstance(metadata, dict) or not metadata:
        return "workflow"
    explicit = metadata.get("classifier")
    if isinstance(explicit, str) and explicit.strip():
        return explicit
    if metadata.get("agent_sdk") is not None or metadata.get("agentDef") is not None:
        return "agent"
    return "workflow"


def workflow_summary(wf: Workflow) -> dict[str, Any]:
    """``WorkflowSummary``: ``endTime`` only once ended; ``executionTime`` = end - start then."""
    inp = to_java_string(wf.input) if wf.input is not None else None
    out = to_java_string(wf.output) if wf.output is not None else None
    extra = wf.extra or {}
    s: dict[str, Any] = {
        "workflowType": wf.definition.name,
        "version": wf.definition.version,
        "workflowId": wf.workflowId,
        "correlationId": wf.correlationId,
        "startTime": iso_time(wf.createTime),
        "updateTime": iso_time(wf.updateTime),
        "endTime": iso_time(wf.endTime) if wf.endTime > 0 else None,
        "status": wf.status.value,
        "input": inp,
        "output": out,
        "reasonForIncompletion": wf.reasonForIncompletion,
        "executionTime": wf.endTime - wf.createTime if wf.endTime > 0 else 0,
        "event": wf.event,
        "failedReferenceTaskNames": ",".join(wf.failedReferenceTaskNames or []),
        "externalInputPayloadStoragePath": extra.get("externalInputPayloadStoragePath") or None,
        "externalOutputPayloadStoragePath": extra.get("externalOutputPayloadStoragePath") or None,
        "priority": wf.priority,
        "failedTaskNames": list(wf.failedTaskNames or []),
        "createdBy": wf.createdBy,
        "taskToDomain": wf.taskToDomain or {},
        "idempotencyKey": extra.get("idempotencyKey"),
        "parentWorkflowId": wf.parentWorkflowId or "",
        "classifier": classifier(wf.definition),
        "inputSize": len(inp) if inp is not None else 0,
        "outputSize": len(out) if out is not None else 0,
    }
    return {k: v for k, v in s.items() if v is not None}


def task_summary(t: Task) -> dict[str, Any]:
    """``TaskSummary``: every time formatted, unset ones as ``1970-01-01T00:00:00.000Z``."""
    s: dict[str, Any] = {
        "workflowId": t.workflowInstanceId,
        "workflowType": t.workflowType,
        "correlationId": t.correlationId,
        "scheduledTime": iso_time(t.scheduledTime),
        "startTime": iso_time(t.startTime),
        "updateTime": iso_time(t.updateTime),
        "endTime": iso_time(t.endTime),
        "status": t.status.value,
        "reasonForIncompletion": t.reasonForIncompletion,
        "executionTime": t.endTime - t.startTime if t.endTime > 0 else 0,
        "queueWaitTime": max(0, t.startTime - t.scheduledTime) if t.startTime else 0,
        "taskDefName": t.taskDefName,
        "taskType": t.taskType,
        "input": to_java_string(t.inputData),
        "output": to_java_string(t.outputData),
        "taskId": t.taskId,
        "workflowPriority": t.workflowPriority,
        "domain": t.domain,
    }
    extra = t.extra or {}
    for name in ("externalInputPayloadStoragePath", "externalOutputPayloadStoragePath"):
        if extra.get(name):
            s[name] = extra[name]
    return {k: v for k, v in s.items() if v is not None}
