"""REST contract: transport rules against the real server (health, errors, limits, parsing)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from tests.conftest import ServerProcess
from tests.server.util import assert_error, get_workflow, register_chain, start, uid


def test_health_version_token_docs(http: httpx.Client) -> None:
    base = http.base_url.copy_with(path="/")
    assert httpx.get(str(base) + "health").json() == {"healthResults": [], "healthy": True}
    assert http.get("/health").json() == {"healthResults": [], "healthy": True}
    r = http.get("/version")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain") and r.text
    assert_error(http.post("/token", json={"keyId": "k", "keySecret": "s"}), 404)
    doc = httpx.get(str(base) + "api-docs").json()
    assert doc["openapi"].startswith("3.") and "/api/workflow/{workflowId}" in doc["paths"]
    assert http.get("/openapi.json").json() == doc


def test_unknown_path_and_wrong_method(http: httpx.Client) -> None:
    body = assert_error(http.get("/no/such/thing"), 404)
    assert body["message"] == "No static resource api/no/such/thing." and body["instance"]
    assert_error(http.post("/scheduler/schedules", json={}), 404)
    assert_error(http.put("/metadata/taskdefs/x", json={}), 405, "PUT")
    assert_error(http.request("PATCH", "/tasks", json={}), 405)


def test_malformed_json_is_500_and_the_server_stays_healthy(http: httpx.Client) -> None:
    for bad in (b"{", b"[{]", b"\xff\xfe", b"nul"):
        r = http.post("/workflow", content=bad, headers={"Content-Type": "application/json"})
        assert_error(r, 500, "JSON parse error")
    assert http.get("/health").json()["healthy"] is True


def test_oversized_body_is_413(http: httpx.Client) -> None:
    big = b'[{"name": "' + b"x" * (10 * 1024 * 1024) + b'"}]'
    r = http.post("/metadata/taskdefs", content=big, headers={"Content-Type": "application/json"})
    assert_error(r, 413)

    def chunks() -> Iterator[bytes]:
        for _ in range(11):
            yield b" " * (1024 * 1024)

    assert_error(http.post("/metadata/taskdefs", content=chunks()), 413)  # no Content-Length
    assert http.get("/health").json()["healthy"] is True


def test_get_with_json_content_type_and_no_body(http: httpx.Client) -> None:
    r = http.get("/metadata/taskdefs", headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and isinstance(r.json(), list)


def test_boolean_query_values_in_both_spellings(http: httpx.Client) -> None:
    name = uid("wf")
    register_chain(http, name, [uid("t")])
    wid = start(http, name)
    assert http.get(f"/workflow/{wid}", params={"includeTasks": "False"}).json().get("tasks", []) == []
    assert http.get(f"/workflow/{wid}", params={"includeTasks": "TRUE"}).json()["tasks"]
    assert http.get(f"/workflow/{wid}", params={"includeTasks": ""}).json()["tasks"]  # empty = default
    assert_error(http.get(f"/workflow/{wid}", params={"includeTasks": "maybe"}), 500)
    assert get_workflow(http, wid)["status"] == "RUNNING"


def test_keep_alive_connection_survives_errors(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.api, timeout=10) as c:
        for _ in range(3):
            assert c.get("/no/such").status_code == 404
            assert c.post("/workflow", content=b"{").status_code == 500
            assert c.get("/health").status_code == 200


def test_get_answers_carry_no_etag_and_ignore_if_none_match(http: httpx.Client) -> None:
    """conductor-oss sends no ETag; the server does not hash every GET answer to make one, so a
    conditional GET is answered in full (never 304 with no body)."""
    name = uid("etag")
    register_chain(http, name, ["etag_a"])
    wid = start(http, name, {"x": 1})
    r = http.get(f"/workflow/{wid}")
    assert r.status_code == 200 and "etag" not in r.headers
    for condition in ("*", '"0123456789abcdef"'):
        r = http.get(f"/workflow/{wid}", headers={"If-None-Match": condition})
        assert r.status_code == 200 and r.json()["workflowId"] == wid
