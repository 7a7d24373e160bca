"""``GET /api/lab/workflow/{id}/watch``: conductor_lab's long poll behind the live views."""

from __future__ import annotations

import threading
import time

import httpx

from conductor_lab.client.http import ConductorClient
from tests.conftest import ServerProcess
from tests.server.util import assert_error, batch_poll, complete, register_chain, start, uid


def test_watch_answers_at_once_then_waits_for_a_change(server: ServerProcess, http: httpx.Client) -> None:
    name = uid("watch")
    register_chain(http, name, [f"{name}_a", f"{name}_b"])
    wid = start(http, name, {"x": 1})
    with ConductorClient(server.url) as client:
        version, wf = client.watch_workflow(wid)  # no version: answers at once
        assert wf is not None and wf["workflowId"] == wid and wf["status"] == "RUNNING"
        assert [t["referenceTaskName"] for t in wf["tasks"]] == [f"{name}_a"]

        # nothing changes: the same version comes back after the wait, with no workflow
        t0 = time.monotonic()
        same, none = client.watch_workflow(wid, version, timeout_ms=300)
        assert (same, none) == (version, None)
        assert time.monotonic() - t0 >= 0.25

        # a change made while the call waits ends the wait with the new state
        answers: list[tuple[str, dict | None]] = []
        waiter = threading.Thread(target=lambda: answers.append(client.watch_workflow(wid, version, 20_000)))
        t1 = time.monotonic()
        waiter.start()
        [task] = batch_poll(http, f"{name}_a")
        complete(http, task, {"y": 2})
        waiter.join(20)
        assert answers and time.monotonic() - t1 < 15
        new_version, changed = answers[0]
        assert new_version != version and changed is not None
        statuses = {t["referenceTaskName"]: t["status"] for t in changed["tasks"]}
        assert statuses[f"{name}_a"] in ("IN_PROGRESS", "COMPLETED")


def test_watch_finished_workflow_and_errors(server: ServerProcess, http: httpx.Client) -> None:
    name = uid("watchdone")
    register_chain(http, name, [f"{name}_a"])
    wid = start(http, name)
    [task] = batch_poll(http, f"{name}_a")
    complete(http, task)
    with ConductorClient(server.url) as client:
        deadline = time.monotonic() + 10
        version, wf = client.watch_workflow(wid)
        while wf is not None and wf["status"] != "COMPLETED" and time.monotonic() < deadline:
            version, wf = client.watch_workflow(wid, version, 2000)
        done = client.get_workflow(wid)
        assert done["status"] == "COMPLETED"
        version, wf = client.watch_workflow(wid)
        assert wf is not None and wf["status"] == "COMPLETED"
        assert client.watch_workflow(wid, version, 200) == (version, None)
    assert_error(http.get("/lab/workflow/nope/watch"), 404, "nope")
    assert_error(http.get(f"/lab/workflow/{wid}/watch", params={"timeoutMs": 30_001}), 400, "timeoutMs")
