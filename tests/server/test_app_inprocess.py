"""The HTTP layer in-process, over a stub executor: error mapping, replies, limits, auth.

The stub only records calls and returns canned values; engine behaviour is tested against the
real server in the other modules of this package.
"""

from __future__ import annotations

from typing import Any

import orjson
import tornado.testing
import tornado.web

from conductor_lab.errors import Conflict, NotFound, validation_error
from conductor_lab.server.app import make_app


class Canned:
    """A model object standing in for the engine's: its JSON is canned."""

    def __init__(self, json: dict[str, Any]) -> None:
        self.json = json

    def to_json(self, **_: Any) -> dict[str, Any]:
        return self.json


class StubExecutor:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.poll_result: list[Canned] = []
        self.logs: list[Any] = []

    def _record(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((name, args, kwargs))

    def get_task_defs(self) -> list[dict[str, Any]]:
        raise RuntimeError("disk on fire")

    def get_task_def(self, name: str) -> dict[str, Any]:
        raise NotFound(f"No such taskType found by name: {name}")

    async def register_task_defs(self, defs: list[Any]) -> None:
        self._record("register_task_defs", defs)

    async def register_workflow_def(self, d: dict[str, Any], *, overwrite: bool) -> None:
        self._record("register_workflow_def", d, overwrite=overwrite)
        if not overwrite:
            raise Conflict(f"Workflow with {d.get('name')}.1 already exists!")

    async def start_workflow_by_name(self, name: str, input: Any, **kwargs: Any) -> str:
        self._record("start_workflow_by_name", name, input, **kwargs)
        return "wf-1"

    async def get_workflow(self, workflow_id: str) -> Canned:
        self._record("get_workflow", workflow_id)
        return Canned({"workflowId": workflow_id, "tasks": []})

    def definition_json(self, wf: Any) -> None:
        return None

    async def terminate_workflow(self, workflow_id: str, reason: str | None) -> None:
        self._record("terminate_workflow", workflow_id, reason)

    async def decide(self, workflow_id: str) -> None:
        self._record("decide", workflow_id)

    async def poll(self, task_type: str, **kwargs: Any) -> list[Canned]:
        self._record("poll", task_type, **kwargs)
        return self.poll_result

    async def update_task_v2(self, result: dict[str, Any]) -> dict[str, Any] | None:
        self._record("update_task_v2", result)
        return None

    async def update_task_by_ref(self, *args: Any, **kwargs: Any) -> str | None:
        self._record("update_task_by_ref", *args, **kwargs)
        return None

    async def add_task_log(self, task_id: str, log: str) -> None:
        self._record("add_task_log", task_id, log)

    async def get_task_logs(self, task_id: str) -> list[Any]:
        return self.logs

    async def delete_workflow_def(self, name: str, version: int) -> None:
        self._record("delete_workflow_def", name, version)

    def validate_workflow_def(self, d: dict[str, Any]) -> None:
        raise validation_error("validateWorkflowDef.name", "WorkflowDef name cannot be null or empty")

    def queue_size(self, task_type: str, **kwargs: Any) -> int:
        self._record("queue_size", task_type, **kwargs)
        return 7


class AppCase(tornado.testing.AsyncHTTPTestCase):
    token: str | None = None
    max_body = 1024

    def get_app(self) -> tornado.web.Application:
        self.executor = StubExecutor()
        return make_app(self.executor, max_body_bytes=self.max_body, instance="test-host", token=self.token)

    def req(self, method: str, path: str, body: bytes | str | None = None, **headers: str) -> Any:
        if body is None and method in ("POST", "PUT"):
            body = b"{}"
        return self.fetch(path, method=method, body=body, headers=headers or None, raise_error=False,
                          allow_nonstandard_methods=True)  # fmt: skip

    def error(self, response: Any, status: int) -> dict[str, Any]:
        assert response.code == status, (response.code, response.body)
        assert response.headers["Content-Type"] == "application/json"
        body = orjson.loads(response.body)
        assert body["status"] == status and body["retryable"] is False
        return body


class TestReplies(AppCase):
    def test_unexpected_exception_is_a_500_json_and_the_server_keeps_serving(self) -> None:
        body = self.error(self.req("GET", "/api/metadata/taskdefs"), 500)
        assert body == {"status": 500, "message": "RuntimeError: disk on fire", "instance": "test-host",
                        "retryable": False}  # fmt: skip
        assert self.req("GET", "/health").code == 200

    def test_conductor_errors_map_to_their_status(self) -> None:
        body = self.error(self.req("GET", "/api/metadata/taskdefs/nope"), 404)
        assert body["message"] == "No such taskType found by name: nope" and body["instance"] == "test-host"
        self.error(self.req("POST", "/api/metadata/workflow", b'{"name": "x"}'), 409)
        r = self.req("POST", "/api/metadata/workflow?overwrite=True", b'{"name": "x"}')
        assert r.code == 200 and r.body == b"" and r.headers["Content-Length"] == "0"
        assert "Content-Type" not in r.headers

    def test_validation_errors_have_no_instance(self) -> None:
        body = self.error(self.req("POST", "/api/metadata/workflow/validate", b"{}"), 400)
        assert "instance" not in body and body["validationErrors"][0]["path"] == "validateWorkflowDef.name"

    def test_text_and_json_content_types(self) -> None:
        r = self.req("POST", "/api/workflow/hello?version=None&correlationId=&priority=None", b'{"a": 1}')
        assert r.code == 200 and r.body == b"wf-1" and r.headers["Content-Type"] == "text/plain;charset=UTF-8"
        assert self.executor.calls[-1] == (
            "start_workflow_by_name", ("hello", {"a": 1}), {"version": None, "correlation_id": None, "priority": 0}
        )  # fmt: skip
        r = self.req("GET", "/api/tasks/queue/size?taskType=t&domain=None")
        assert r.body == b"7" and r.headers["Content-Type"] == "application/json"
        assert self.executor.calls[-1][2]["domain"] is None

    def test_path_segments_are_percent_decoded(self) -> None:
        self.req("GET", "/api/workflow/a%2Fb%20c?includeTasks=FALSE")
        assert self.executor.calls[-1] == ("get_workflow", ("a/b c",), {})
        self.req("DELETE", "/api/metadata/workflow/a%2Fb/3")
        assert self.executor.calls[-1] == ("delete_workflow_def", ("a/b", 3), {})

    def test_int_path_segment_with_a_bad_value_is_500(self) -> None:
        self.error(self.req("DELETE", "/api/metadata/workflow/x/abc"), 500)

    def test_bodyless_verbs_accept_and_ignore_a_json_body(self) -> None:
        assert self.req("PUT", "/api/workflow/decide/w1", b"{}").code == 200
        assert self.req("PUT", "/api/workflow/decide/w2", b"not json at all").code == 200
        r = self.fetch("/api/workflow/w3?reason=None", method="DELETE", raise_error=False)
        assert r.code == 200 and ("terminate_workflow", ("w3", None), {}) in self.executor.calls

    def test_get_with_json_content_type_and_no_body(self) -> None:
        r = self.req("GET", "/api/workflow/w1", **{"Content-Type": "application/json"})
        assert r.code == 200 and orjson.loads(r.body)["workflowId"] == "w1"

    def test_empty_single_poll_is_204_and_batch_poll_is_empty_list(self) -> None:
        r = self.req("GET", "/api/tasks/poll/t")
        assert r.code == 204 and r.body == b""
        assert self.executor.calls[-1][2] == {
            "worker_id": None,
            "domain": None,
            "count": 1,
            "timeout_ms": 100,
        }
        r = self.req("GET", "/api/tasks/poll/batch/t")
        assert r.code == 200 and r.body == b"[]"
        self.executor.poll_result = [Canned({"taskId": "t1"})]
        assert orjson.loads(self.req("GET", "/api/tasks/poll/t?workerid=w").body) == {"taskId": "t1"}

    def test_batch_poll_hands_its_timeout_to_the_engine(self) -> None:
        # the 5 s limit lives in the engine (REST and gRPC share it): tests/server/test_rest_tasks.py
        assert self.req("GET", "/api/tasks/poll/batch/t?timeout=5001").code == 200
        assert self.executor.calls[-1][2]["timeout_ms"] == 5001

    def test_update_v2_without_next_task_is_204(self) -> None:
        r = self.req(
            "POST",
            "/api/tasks/update-v2",
            b'{"workflowInstanceId": "w", "taskId": "t", "status": "COMPLETED"}',
        )
        assert r.code == 204 and r.body == b""

    def test_update_by_ref_without_match_is_empty_200_and_bad_status_is_500(self) -> None:
        r = self.req("POST", "/api/tasks/w/ref/COMPLETED?workerid=x", b'{"a": 1}')
        assert r.code == 200 and r.body == b""
        assert self.executor.calls[-1] == (
            "update_task_by_ref", ("w", "ref", "COMPLETED", {"a": 1}), {"worker_id": "x"}
        )  # fmt: skip
        self.error(self.req("POST", "/api/tasks/w/ref/DONE", b"{}"), 500)

    def test_task_log_body_is_verbatim_and_no_logs_is_204(self) -> None:
        raw = b'hello \\"world\\"\\nline2'
        assert self.req("POST", "/api/tasks/t1/log", raw, **{"Content-Type": "application/json"}).code == 200
        assert self.executor.calls[-1] == ("add_task_log", ("t1", raw.decode()), {})
        r = self.req("GET", "/api/tasks/t1/log")
        assert r.code == 204 and r.body == b""

    def test_malformed_and_wrongly_shaped_bodies_are_500(self) -> None:
        assert (
            "JSON parse error"
            in self.error(self.req("POST", "/api/metadata/taskdefs", b"[{"), 500)["message"]
        )
        self.error(self.req("POST", "/api/metadata/taskdefs", b'{"name": "x"}'), 500)
        self.error(self.req("POST", "/api/workflow/hello", b"[1, 2]"), 500)
        self.error(self.req("POST", "/api/metadata/taskdefs", b""), 500)
        assert not [c for c in self.executor.calls if c[0] == "register_task_defs"]

    def test_priority_range_is_400(self) -> None:
        body = self.error(self.req("POST", "/api/workflow/hello?priority=100"), 400)
        assert body["validationErrors"] == [
            {"path": "startWorkflow.priority", "message": "99 is the maximum priority value", "invalidValue": "100"}
        ]
        body = self.error(self.req("POST", "/api/workflow/hello?priority=-1"), 400)
        assert body["validationErrors"][0]["message"] == "0 is the minimum priority value"
        self.error(self.req("POST", "/api/workflow/hello?priority=high"), 500)

    def test_unknown_path_wrong_method_and_token(self) -> None:
        body = self.error(self.req("GET", "/api/nope/nothing"), 404)
        assert body["message"] == "No static resource api/nope/nothing."
        body = self.error(self.req("PATCH", "/api/metadata/taskdefs", b"{}"), 405)
        assert body["message"] == "Request method 'PATCH' is not supported"
        self.error(self.req("DELETE", "/health"), 405)
        self.error(self.req("POST", "/api/token", b'{"keyId": "k", "keySecret": "s"}'), 404)

    def test_health_version_openapi(self) -> None:
        for path in ("/health", "/api/health"):
            assert orjson.loads(self.req("GET", path).body) == {"healthResults": [], "healthy": True}
        r = self.req("GET", "/api/version")
        assert r.headers["Content-Type"].startswith("text/plain") and r.body.decode()
        doc = orjson.loads(self.req("GET", "/api-docs").body)
        assert doc == orjson.loads(self.req("GET", "/api/openapi.json").body)
        assert "/api/tasks/poll/batch/{tasktype}" in doc["paths"]


class TestBodyLimit(AppCase):
    max_body = 1024

    def test_oversized_body_is_413_and_the_connection_stays_usable(self) -> None:
        body = self.error(self.req("POST", "/api/metadata/taskdefs", b"[" + b" " * 5000 + b"]"), 413)
        assert "1024" in body["message"]
        assert self.req("POST", "/api/metadata/taskdefs", b'[{"name": "ok"}]').code == 200
        assert self.req("GET", "/health").code == 200

    def test_oversized_chunked_body_is_413(self) -> None:
        def chunks(write: Any) -> None:
            for _ in range(10):
                write(b" " * 500)

        r = self.fetch("/api/metadata/taskdefs", method="POST", body_producer=chunks, raise_error=False)
        self.error(r, 413)


class TestToken(AppCase):
    token = "s3cret"

    def test_api_needs_the_token_and_health_stays_open(self) -> None:
        self.error(self.req("GET", "/api/tasks/queue/size?taskType=t"), 401)
        self.error(self.req("GET", "/api/tasks/queue/size?taskType=t", Authorization="Bearer wrong"), 401)
        self.error(self.req("GET", "/api/nope", Authorization="Bearer wrong"), 401)
        assert self.req("GET", "/api/tasks/queue/size?taskType=t", Authorization="Bearer s3cret").code == 200
        assert (
            self.req("GET", "/api/tasks/queue/size?taskType=t", **{"X-Authorization": "s3cret"}).code == 200
        )
        assert self.req("GET", "/health").code == 200
        assert self.req("GET", "/api/health").code == 200

    def test_token_endpoint_exchanges_the_secret(self) -> None:
        r = self.req("POST", "/api/token", b'{"keyId": "any", "keySecret": "s3cret"}')
        assert r.code == 200 and orjson.loads(r.body) == {"token": "s3cret"}
        self.error(self.req("POST", "/api/token", b'{"keyId": "any", "keySecret": "nope"}'), 401)
