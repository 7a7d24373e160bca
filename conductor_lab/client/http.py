"""A small synchronous client for the Conductor REST API (conductor-oss wire format).

Every method is one HTTP call. JSON answers come back as plain dicts/lists (parsed with
orjson), ``text/plain`` answers (workflow ids, task ids, the version) as ``str``, empty
answers as ``None``. Any non-2xx answer raises :class:`ApiError`.

    with ConductorClient("http://127.0.0.1:8080") as client:
        wf_id = client.start_workflow("hello", {"name": "lab"})
        client.wait_for_workflow(wf_id)

Pass ``transport=httpx.MockTransport(handler)`` to talk to an in-test fake instead of a socket.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import orjson

from conductor_lab.client.errors import ApiError

if TYPE_CHECKING:
    import pyarrow as pa

Json = dict[str, Any]

TERMINAL_WORKFLOW_STATUSES: frozenset[str] = frozenset({"COMPLETED", "FAILED", "TIMED_OUT", "TERMINATED"})

_JSON_HEADERS = {"Content-Type": "application/json"}
_TEXT_HEADERS = {"Content-Type": "text/plain; charset=utf-8"}


def _seg(value: object) -> str:
    """One URL path segment, percent-encoded (names may contain '/', spaces, …)."""
    return quote(str(value), safe="")


def _api_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    return base if base.endswith("/api") else base + "/api"


class ConductorClient:
    """Blocking client over one keep-alive ``httpx.Client``; safe to share between threads."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8080",
        *,
        timeout: float | httpx.Timeout = 10.0,
        transport: httpx.BaseTransport | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.base_url = _api_url(base_url)
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout, transport=transport, headers=headers
        )

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ConductorClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ConductorClient({self.base_url!r})"

    # -- plumbing --------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | list[tuple[str, Any]] | None = None,
        json: Any = None,
        text: str | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        if isinstance(params, dict):  # drop unset optionals instead of sending "key="
            params = {k: v for k, v in params.items() if v is not None}
        content: bytes | None = None
        headers: dict[str, str] | None = None
        if json is not None:
            content, headers = orjson.dumps(json), _JSON_HEADERS
        elif text is not None:
            content, headers = text.encode(), _TEXT_HEADERS
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        response = self._http.request(method, path, params=params, content=content, headers=headers, **extra)
        if not response.is_success:
            raise _api_error(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return orjson.loads(response.content)

    def _text(self, method: str, path: str, **kwargs: Any) -> str:
        return self._request(method, path, **kwargs).text

    # -- metadata --------------------------------------------------------------------------------

    def register_task_defs(self, task_defs: list[Json]) -> None:
        self._request("POST", "/metadata/taskdefs", json=task_defs)

    def update_task_def(self, task_def: Json) -> None:
        self._request("PUT", "/metadata/taskdefs", json=task_def)

    def get_task_def(self, name: str) -> Json:
        return self._json("GET", f"/metadata/taskdefs/{_seg(name)}")

    def get_task_defs(self) -> list[Json]:
        return self._json("GET", "/metadata/taskdefs") or []

    def delete_task_def(self, name: str) -> None:
        self._request("DELETE", f"/metadata/taskdefs/{_seg(name)}")

    def register_workflow_def(self, workflow_def: Json, overwrite: bool = False) -> None:
        self._request("POST", "/metadata/workflow", params={"overwrite": overwrite}, json=workflow_def)

    def update_workflow_defs(self, workflow_defs: list[Json]) -> Json | None:
        """Upsert definitions; returns the BulkResponse (``bulkSuccessfulResults``/``bulkErrorResults``)."""
        return self._json("PUT", "/metadata/workflow", json=workflow_defs)

    def get_workflow_def(self, name: str, version: int | None = None) -> Json:
        return self._json("GET", f"/metadata/workflow/{_seg(name)}", params={"version": version})

    def get_workflow_defs(self) -> list[Json]:
        return self._json("GET", "/metadata/workflow") or []

    def delete_workflow_def(self, name: str, version: int) -> None:
        self._request("DELETE", f"/metadata/workflow/{_seg(name)}/{_seg(version)}")

    # -- workflows -------------------------------------------------------------------------------

    def start_workflow(
        self,
        name: str,
        input: Json | None = None,
        *,
        version: int | None = None,
        correlation_id: str | None = None,
        priority: int | None = None,
    ) -> str:
        """Start by name (``POST /workflow/{name}``); returns the new workflow id."""
        params = {"version": version, "correlationId": correlation_id, "priority": priority}
        return self._text(
            "POST", f"/workflow/{_seg(name)}", params=params, json=input if input is not None else {}
        )

    def start(self, request: Json) -> str:
        """Start from a StartWorkflowRequest (``name``, ``input``, ``taskToDomain``, ``workflowDef`` …)."""
        return self._text("POST", "/workflow", json=request)

    def get_workflow(self, workflow_id: str, include_tasks: bool = True) -> Json:
        return self._json("GET", f"/workflow/{_seg(workflow_id)}", params={"includeTasks": include_tasks})

    def watch_workflow(
        self, workflow_id: str, version: str | None = None, timeout_ms: int = 10_000
    ) -> tuple[str, Json | None]:
        """Long poll: (version, workflow) once it differs from ``version``; (version, None) on timeout.

        conductor_lab's own endpoint (``/api/lab/workflow/{id}/watch``), used by live views.
        """
        answer = self._json(
            "GET",
            f"/lab/workflow/{_seg(workflow_id)}/watch",
            params={"version": version, "timeoutMs": timeout_ms},
            timeout=self._long_poll_timeout(timeout_ms),
        )
        return str(answer["version"]), answer.get("workflow")

    def get_workflow_status(
        self, workflow_id: str, include_output: bool = False, include_variables: bool = False
    ) -> Json:
        params = {"includeOutput": include_output, "includeVariables": include_variables}
        return self._json("GET", f"/workflow/{_seg(workflow_id)}/status", params=params)

    def terminate(self, workflow_id: str, reason: str | None = None) -> None:
        self._request("DELETE", f"/workflow/{_seg(workflow_id)}", params={"reason": reason})

    def remove_workflow(self, workflow_id: str, archive: bool = True) -> None:
        self._request("DELETE", f"/workflow/{_seg(workflow_id)}/remove", params={"archiveWorkflow": archive})

    def search_workflows(
        self,
        query: str | None = None,
        free_text: str = "*",
        start: int = 0,
        size: int = 100,
        sort: str | None = None,
    ) -> Json:
        """SearchResult<WorkflowSummary>: ``{"totalHits": n, "results": [...]}``."""
        params = {"query": query, "freeText": free_text, "start": start, "size": size, "sort": sort}
        return self._json("GET", "/workflow/search", params=params)

    def running_workflows(self, name: str, version: int = 1) -> list[str]:
        return self._json("GET", f"/workflow/running/{_seg(name)}", params={"version": version}) or []

    def correlated(
        self, name: str, correlation_id: str, include_closed: bool = False, include_tasks: bool = False
    ) -> list[Json]:
        params = {"includeClosed": include_closed, "includeTasks": include_tasks}
        return (
            self._json("GET", f"/workflow/{_seg(name)}/correlated/{_seg(correlation_id)}", params=params)
            or []
        )

    def pause(self, workflow_id: str) -> None:
        self._request("PUT", f"/workflow/{_seg(workflow_id)}/pause")

    def resume(self, workflow_id: str) -> None:
        self._request("PUT", f"/workflow/{_seg(workflow_id)}/resume")

    def retry(self, workflow_id: str, resume_subworkflow_tasks: bool = False) -> None:
        params = {"resumeSubworkflowTasks": resume_subworkflow_tasks}
        self._request("POST", f"/workflow/{_seg(workflow_id)}/retry", params=params)

    def restart(self, workflow_id: str, use_latest_definitions: bool = False) -> None:
        params = {"useLatestDefinitions": use_latest_definitions}
        self._request("POST", f"/workflow/{_seg(workflow_id)}/restart", params=params)

    def rerun(self, workflow_id: str, request: Json | None = None) -> str:
        """Rerun in place from a RerunWorkflowRequest; returns the (same) workflow id."""
        return self._text("POST", f"/workflow/{_seg(workflow_id)}/rerun", json=request or {})

    def decide(self, workflow_id: str) -> None:
        self._request("PUT", f"/workflow/decide/{_seg(workflow_id)}")

    def wait_for_workflow(
        self,
        workflow_id: str,
        *,
        timeout: float = 30.0,
        statuses: Collection[str] = TERMINAL_WORKFLOW_STATUSES,
        include_tasks: bool = True,
    ) -> Json:
        """Poll until the workflow's status is in ``statuses``; raise ``TimeoutError`` at the deadline."""
        deadline = time.monotonic() + timeout
        interval = 0.02
        while True:
            workflow = self.get_workflow(workflow_id, include_tasks=include_tasks)
            status = workflow.get("status")
            if status in statuses:
                return workflow
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"workflow {workflow_id} is still {status} after {timeout:g}s")
            time.sleep(min(interval, remaining))
            interval = min(interval * 1.5, 0.2)

    # -- tasks -----------------------------------------------------------------------------------

    def poll(self, task_type: str, worker_id: str | None = None, domain: str | None = None) -> Json | None:
        """Pop at most one task (the server waits ≤100 ms); ``None`` when the queue is empty."""
        params = {"workerid": worker_id, "domain": domain}
        return self._json("GET", f"/tasks/poll/{_seg(task_type)}", params=params)

    def batch_poll(
        self,
        task_type: str,
        count: int = 1,
        timeout_ms: int = 100,
        worker_id: str | None = None,
        domain: str | None = None,
    ) -> list[Json]:
        """Long-poll up to ``count`` tasks for up to ``timeout_ms`` (server cap: 5000)."""
        params = {"workerid": worker_id, "domain": domain, "count": count, "timeout": timeout_ms}
        return (
            self._json(
                "GET",
                f"/tasks/poll/batch/{_seg(task_type)}",
                params=params,
                timeout=self._long_poll_timeout(timeout_ms),
            )
            or []
        )

    def update_task(self, result: Json) -> str:
        """Report a TaskResult (``POST /tasks``); returns the task id."""
        return self._text("POST", "/tasks", json=result)

    def update_task_v2(self, result: Json) -> Json | None:
        """Report a TaskResult; the server may hand back the next task of the same type (else ``None``)."""
        return self._json("POST", "/tasks/update-v2", json=result)

    def update_task_by_ref(
        self,
        workflow_id: str,
        ref: str,
        status: str,
        output: Json | None = None,
        worker_id: str | None = None,
    ) -> str:
        """Update the pending task ``ref`` of a workflow; returns its id ('' when nothing matched)."""
        path = f"/tasks/{_seg(workflow_id)}/{_seg(ref)}/{_seg(status)}"
        return self._text("POST", path, params={"workerid": worker_id}, json=output or {})

    def get_task(self, task_id: str) -> Json:
        return self._json("GET", f"/tasks/{_seg(task_id)}")

    def add_task_log(self, task_id: str, line: str) -> None:
        self._request("POST", f"/tasks/{_seg(task_id)}/log", text=line)

    def get_task_logs(self, task_id: str) -> list[Json]:
        return self._json("GET", f"/tasks/{_seg(task_id)}/log") or []

    def queue_size(self, task_type: str, domain: str | None = None) -> int:
        return int(self._json("GET", "/tasks/queue/size", params={"taskType": task_type, "domain": domain}))

    def queue_sizes(self, task_types: Iterable[str]) -> dict[str, int]:
        params = [("taskType", t) for t in task_types]
        return self._json("GET", "/tasks/queue/sizes", params=params) or {}

    def poll_data(self, task_type: str) -> list[Json]:
        return self._json("GET", "/tasks/queue/polldata", params={"taskType": task_type}) or []

    # -- misc ------------------------------------------------------------------------------------

    def sql(
        self,
        query: str,
        params: list[Any] | None = None,
        *,
        max_rows: int | None = None,
        timeout_s: float | None = None,
    ) -> pa.Table:
        """``POST /api/lab/sql``: one read-only SELECT over the history views (docs/sql.md), as Arrow.

        The schema metadata says whether the server cut the rows (``truncated``: ``b"true"``) and
        ``elapsedMs``. A refused or failing query raises ``ApiError`` (400, DuckDB's message).
        """
        body: Json = {"query": query, "params": params, "maxRows": max_rows, "timeoutSeconds": timeout_s}
        timeout = self._long_poll_timeout(int(1000 * (timeout_s if timeout_s is not None else 30.0)))
        response = self._http.post(
            "/lab/sql",
            content=orjson.dumps({k: v for k, v in body.items() if v is not None}),
            headers={**_JSON_HEADERS, "Accept": "application/vnd.apache.arrow.stream"},
            timeout=timeout,
        )
        if not response.is_success:
            raise _api_error(response)
        import pyarrow as pa  # here: workers that never query SQL do not pay for importing it

        with pa.ipc.open_stream(response.content) as reader:
            return reader.read_all()

    def validate_workflow_def(self, workflow_def: Json) -> None:
        """``POST /metadata/workflow/validate``: 400 with ``validationErrors`` when it is not valid."""
        self._request("POST", "/metadata/workflow/validate", json=workflow_def)

    def skip_task(self, workflow_id: str, ref: str) -> None:
        """``PUT /workflow/{id}/skiptask/{ref}``: the flow jumps over ``ref`` when it gets there."""
        self._request("PUT", f"/workflow/{_seg(workflow_id)}/skiptask/{_seg(ref)}")

    def execute_workflow(
        self,
        name: str,
        request: Json,
        *,
        version: int = 0,
        wait_until_task_ref: str | None = None,
        wait_for_seconds: int = 10,
    ) -> Json:
        """``POST /workflow/execute/{name}/{version}`` (0: latest): start and wait (SignalResponse)."""
        params = {"waitUntilTaskRef": wait_until_task_ref, "waitForSeconds": wait_for_seconds}
        extra = self._long_poll_timeout(wait_for_seconds * 1000)
        return self._json(
            "POST",
            f"/workflow/execute/{_seg(name)}/{_seg(version)}",
            params=params,
            json=request,
            timeout=extra,
        )

    def queue_all(self) -> dict[str, int]:
        """``GET /tasks/queue/all``: every non-empty queue (``[domain:]taskType``) and its size."""
        return self._json("GET", "/tasks/queue/all") or {}

    def all_poll_data(self) -> list[Json]:
        """``GET /tasks/queue/polldata/all``: the last poll of every queue."""
        return self._json("GET", "/tasks/queue/polldata/all") or []

    def bulk(self, verb: str, workflow_ids: list[str], **params: Any) -> Json:
        """``/workflow/bulk/{verb}`` (pause, resume, restart, retry, terminate): a BulkResponse."""
        method = "PUT" if verb in ("pause", "resume") else "POST"
        return self._json(method, f"/workflow/bulk/{verb}", params=params, json=workflow_ids) or {}

    def workflow_versions(self, name: str) -> list[int]:
        """Stored versions of one workflow definition (empty when there is none)."""
        try:
            summaries = self._json("GET", f"/metadata/workflow/{_seg(name)}/versions") or []
        except ApiError as e:
            if e.status == 404:
                return []
            raise
        return sorted(int(s["version"]) for s in summaries if isinstance(s, dict) and "version" in s)

    def health(self) -> Json:
        return self._json("GET", "/health")

    def version(self) -> str:
        return self._text("GET", "/version")

    def _long_poll_timeout(self, timeout_ms: int) -> httpx.Timeout:
        """The client's timeout with the read budget stretched by the long-poll wait."""
        t = self._http.timeout
        read = None if t.read is None else t.read + timeout_ms / 1000
        return httpx.Timeout(connect=t.connect, read=read, write=t.write, pool=t.pool)


def _api_error(response: httpx.Response) -> ApiError:
    """Build an ApiError, preferring the ``message`` of a Conductor error body."""
    text = response.text
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return ApiError(response.status_code, text or response.reason_phrase, text)
    if isinstance(body, dict):
        message = body.get("message")
        return ApiError(response.status_code, str(message) if message else response.reason_phrase, body)
    return ApiError(response.status_code, text, body)
