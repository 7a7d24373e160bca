"""Small helpers for the REST contract tests (unique names, definitions, assertions)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

JSON = "application/json"


def uid(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def simple_task(name: str, ref: str | None = None, **inputs: Any) -> dict[str, Any]:
    return {"name": name, "taskReferenceName": ref or name, "type": "SIMPLE", "inputParameters": inputs}


def workflow_def(name: str, tasks: list[dict[str, Any]], version: int = 1, **extra: Any) -> dict[str, Any]:
    return {"name": name, "version": version, "schemaVersion": 2, "tasks": tasks, **extra}


def register_chain(http: httpx.Client, name: str, task_types: list[str], **extra: Any) -> dict[str, Any]:
    """Register a workflow running ``task_types`` in order (SIMPLE tasks, refs = type names)."""
    wd = workflow_def(name, [simple_task(t) for t in task_types], **extra)
    r = http.post("/metadata/workflow", json=wd)
    assert r.status_code == 200, r.text
    return wd


def start(http: httpx.Client, name: str, workflow_input: dict[str, Any] | None = None, **params: Any) -> str:
    r = http.post(f"/workflow/{name}", json=workflow_input or {}, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain"), r.headers
    return r.text


def get_workflow(http: httpx.Client, workflow_id: str, include_tasks: bool = True) -> dict[str, Any]:
    r = http.get(f"/workflow/{workflow_id}", params={"includeTasks": include_tasks})
    assert r.status_code == 200, r.text
    return r.json()


def batch_poll(
    http: httpx.Client, task_type: str, count: int = 1, timeout: int = 100, **params: Any
) -> list[Any]:
    r = http.get(f"/tasks/poll/batch/{task_type}", params={"count": count, "timeout": timeout, **params})
    assert r.status_code == 200, r.text
    return r.json()


def poll_one(
    http: httpx.Client, task_type: str, timeout: int = 2000, worker_id: str = "w1"
) -> dict[str, Any]:
    tasks = batch_poll(http, task_type, timeout=timeout, workerid=worker_id)
    assert len(tasks) == 1, tasks
    return tasks[0]


def complete(http: httpx.Client, task: dict[str, Any], output: dict[str, Any] | None = None) -> None:
    result = {
        "workflowInstanceId": task["workflowInstanceId"],
        "taskId": task["taskId"],
        "status": "COMPLETED",
        "outputData": output or {},
    }
    r = http.post("/tasks", json=result)
    assert r.status_code == 200, r.text
    assert r.text == task["taskId"]


def assert_error(r: httpx.Response, status: int, *fragments: str) -> dict[str, Any]:
    """Conductor's error JSON: ``{"status", "message", "instance"?, "retryable"}``."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith(JSON), r.headers
    body = r.json()
    assert body["status"] == status
    assert body["retryable"] is False
    for fragment in fragments:
        assert fragment in body["message"], (fragment, body)
    return body


def assert_empty_200(r: httpx.Response) -> None:
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.content == b""
    assert r.headers.get("content-length") == "0"
