"""REST contract: /api/event (event handler definitions), against a real server and DuckDB file."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from tests.conftest import ServerProcess
from tests.server.util import assert_empty_200, assert_error, uid


def event_handler(name: str, event: str, *, active: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "event": event,
        "active": active,
        "actions": [
            {
                "action": "complete_task",
                "complete_task": {"workflowId": "${workflowInstanceId}", "taskRefName": "notify_ref",
                                  "output": {"ack": True}},
            }
        ],
        **extra,
    }  # fmt: skip


def handler_names(http: httpx.Client) -> list[str]:
    r = http.get("/event")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    return [h["name"] for h in r.json()]


def test_add_get_update_delete(http: httpx.Client) -> None:
    name = uid("eh")
    event = f"conductor:{uid('wf')}:notify_ref"
    assert_empty_200(http.post("/event", json=event_handler(name, event, condition="$.ok == true")))
    [got] = [h for h in http.get("/event").json() if h["name"] == name]
    assert got == {
        "name": name,
        "event": event,
        "condition": "$.ok == true",
        "actions": [
            {
                "action": "complete_task",
                "complete_task": {"workflowId": "${workflowInstanceId}", "taskRefName": "notify_ref",
                                  "output": {"ack": True}},
                "expandInlineJSON": False,
            }
        ],
        "active": True,
    }  # fmt: skip

    body = assert_error(http.post("/event", json=event_handler(name, event)), 409)
    assert body["message"] == f"EventHandler with name {name} already exists!"

    assert_empty_200(
        http.put("/event", json=event_handler(name, event, active=False, evaluatorType="javascript"))
    )
    [updated] = [h for h in http.get("/event").json() if h["name"] == name]
    assert (
        updated["active"] is False and updated["evaluatorType"] == "javascript" and "condition" not in updated
    )

    assert_empty_200(http.delete(f"/event/{name}"))
    assert name not in handler_names(http)
    body = assert_error(http.delete(f"/event/{name}"), 404)
    assert body["message"] == f"EventHandler with name {name} not found!"
    body = assert_error(http.put("/event", json=event_handler(name, event)), 404)
    assert body["message"] == f"EventHandler with name {name} not found!"


def test_get_by_event_with_colons_and_active_only(http: httpx.Client) -> None:
    event = f"conductor:{uid('wf')}:publish_ref"
    on, off, elsewhere = uid("on"), uid("off"), uid("other")
    assert_empty_200(http.post("/event", json=event_handler(on, event)))
    assert_empty_200(http.post("/event", json=event_handler(off, event, active=False)))
    assert_empty_200(http.post("/event", json=event_handler(elsewhere, event + "_x")))

    r = http.get(f"/event/{event}")  # colons in the path segment, activeOnly defaults to true
    assert r.status_code == 200, r.text
    assert [h["name"] for h in r.json()] == [on]
    assert [h["name"] for h in http.get(f"/event/{event}", params={"activeOnly": "false"}).json()] == sorted(
        [on, off]
    )
    assert [h["name"] for h in http.get(f"/event/{quote(event, safe='')}").json()] == [on]  # %3A decoded
    assert http.get("/event/conductor:nothing:here").json() == []
    # an inactive handler is never the default: "active" must be sent
    quiet = uid("quiet")
    h = event_handler(quiet, event)
    del h["active"]
    assert_empty_200(http.post("/event", json=h))
    [got] = [
        x for x in http.get(f"/event/{event}", params={"activeOnly": False}).json() if x["name"] == quiet
    ]
    assert got["active"] is False


def test_validation_errors(http: httpx.Client) -> None:
    r = http.post("/event", json={"active": True})
    body = assert_error(r, 400, "Validation failed")
    assert "instance" not in body
    assert body["validationErrors"] == [
        {"path": "addEventHandler.eventHandler.name", "message": "Missing event handler name"},
        {"path": "addEventHandler.eventHandler.event", "message": "Missing event location"},
        {
            "path": "addEventHandler.eventHandler.actions",
            "message": "No actions specified. Please specify at-least one action",
        },
    ]
    body = assert_error(http.post("/event", json={"name": uid("x"), "event": "e", "actions": []}), 400)
    assert [e["path"] for e in body["validationErrors"]] == ["addEventHandler.eventHandler.actions"]
    body = assert_error(
        http.put("/event", json={"name": "", "event": "e", "actions": [{"action": "fail_task"}]}), 400
    )
    assert body["validationErrors"] == [
        {
            "path": "updateEventHandler.eventHandler.name",
            "message": "Missing event handler name",
            "invalidValue": "",
        }
    ]
    # Jackson-level problems are 500s upstream: a bad enum, malformed JSON, a missing body
    assert_error(
        http.post("/event", json=event_handler(uid("x"), "e") | {"actions": [{"action": "nope"}]}), 500
    )
    assert_error(http.post("/event", content=b"{", headers={"content-type": "application/json"}), 500)
    assert_error(http.post("/event"), 500, "Required request body is missing")


def test_handlers_survive_a_restart(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path / "events.duckdb", log_dir=tmp_path)
    proc.start()
    try:
        with httpx.Client(base_url=proc.api, timeout=30.0) as http:
            assert_empty_200(http.post("/event", json=event_handler("kept", "conductor:wf:a")))
            assert_empty_200(
                http.post("/event", json=event_handler("changed", "conductor:wf:b", active=False))
            )
            assert_empty_200(http.put("/event", json=event_handler("changed", "conductor:wf:c")))
            assert_empty_200(http.post("/event", json=event_handler("removed", "conductor:wf:a")))
            assert_empty_200(http.delete("/event/removed"))
        assert proc.stop() == 0, proc.output()
        proc.start()
        with httpx.Client(base_url=proc.api, timeout=30.0) as http:
            assert [(h["name"], h["event"], h["active"]) for h in http.get("/event").json()] == [
                ("changed", "conductor:wf:c", True),
                ("kept", "conductor:wf:a", True),
            ]
            assert [h["name"] for h in http.get("/event/conductor:wf:c").json()] == ["changed"]
            assert_error(http.post("/event", json=event_handler("kept", "conductor:wf:a")), 409)
    finally:
        proc.stop()
