"""kill -9 right after a control verb was answered: a new server on the same DuckDB file has the
verb's whole effect (workflow status, new and reset tasks, deleted tasks, queue entries), and the
workflow goes on from there. Blueprints: ``tests/fixtures/blueprints/verbs.json``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scenario.test_crash_system_tasks import Crashable

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def crash(tmp_path: Path) -> Iterator[Crashable]:
    c = Crashable(tmp_path)
    c.story.register("verbs")
    try:
        yield c
    finally:
        c.close()


def _failed_at_b(crash: Crashable) -> str:
    s = crash.story
    wid = s.start("linear", {"x": 1})
    s.poll_and_complete("task_a", {"v": 1})
    s.poll_and_fail("task_b", "boom")
    s.wait_workflow(wid, "FAILED")
    return wid


def test_retry_survives_kill9(crash: Crashable) -> None:
    wid = _failed_at_b(crash)
    assert crash.http.post(f"/workflow/{wid}/retry").status_code == 204
    before = crash.story.tasks(wid)
    crash.kill9_and_restart()
    s = crash.story
    after = s.tasks(wid)
    assert [(t["taskId"], t["status"], t["retried"]) for t in after] == [
        (t["taskId"], t["status"], t["retried"]) for t in before
    ]
    assert s.workflow(wid)["status"] == "RUNNING"
    again = s.poll_and_complete("task_b", {"v": 2})  # the new attempt is back in its queue
    assert again["taskId"] == before[-1]["taskId"] and again["retryCount"] == 1
    s.poll_and_complete("task_c", {"v": 3})
    assert s.wait_workflow(wid, "COMPLETED")["output"] == {"b": 2, "c": 3}


def test_pause_survives_kill9_and_resume_goes_on(crash: Crashable) -> None:
    s = crash.story
    wid = s.start("linear", {"x": 1})
    assert crash.http.put(f"/workflow/{wid}/pause").status_code == 200
    crash.kill9_and_restart()
    assert s.workflow(wid)["status"] == "PAUSED"
    s.poll_and_complete("task_a", {"v": 1})  # queued before the pause: still pollable
    assert s.poll("task_b", timeout_ms=200) is None  # nothing new while paused
    assert crash.http.put(f"/workflow/{wid}/resume").status_code == 200
    s.poll_and_complete("task_b", {"v": 2})
    s.poll_and_complete("task_c", {"v": 3})
    s.wait_workflow(wid, "COMPLETED")


def test_rerun_from_a_task_survives_kill9(crash: Crashable) -> None:
    s = crash.story
    wid = s.start("linear", {"x": 1})
    s.poll_and_complete("task_a", {"v": 1})
    b = s.poll_and_complete("task_b", {"v": 2})
    s.poll_and_complete("task_c", {"v": 3})
    s.wait_workflow(wid, "COMPLETED")
    r = crash.http.post(f"/workflow/{wid}/rerun", json={"reRunFromTaskId": b["taskId"], "taskInput": {"a": 9}})
    assert r.status_code == 200
    crash.kill9_and_restart()
    tasks = s.tasks(wid)  # the later task stays deleted, the target stays reset
    assert [(t["referenceTaskName"], t["status"]) for t in tasks] == [("a", "COMPLETED"), ("b", "SCHEDULED")]
    assert tasks[1]["taskId"] == b["taskId"] and tasks[1]["inputData"] == {"a": 9}
    s.poll_and_complete("task_b", {"v": 20})
    s.poll_and_complete("task_c", {"v": 30})
    assert s.wait_workflow(wid, "COMPLETED")["output"] == {"b": 20, "c": 30}


def test_restart_survives_kill9(crash: Crashable) -> None:
    wid = _failed_at_b(crash)
    assert crash.http.post(f"/workflow/{wid}/restart").status_code == 204
    crash.kill9_and_restart()
    s = crash.story
    assert s.workflow(wid)["status"] == "RUNNING"
    assert s.summary(wid) == [("a", s.name("task_a"), "SCHEDULED")]  # the old tasks stay deleted
    for name in ("task_a", "task_b", "task_c"):
        s.poll_and_complete(name, {"v": name})
    s.wait_workflow(wid, "COMPLETED")
