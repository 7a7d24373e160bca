"""kill -9 mid-stream: every acknowledged start and update survives, nothing is half-applied,
and the workflows run to completion after a restart on the same DuckDB file."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from conductor_lab.client import ApiError, ConductorClient
from tests.conftest import ServerProcess, wait_until

pytestmark = pytest.mark.timeout(240)

WF = {
    "name": "crash_wf",
    "version": 1,
    "tasks": [
        {"name": "crash_a", "taskReferenceName": "a", "inputParameters": {"n": "${workflow.input.n}"}},
        {"name": "crash_b", "taskReferenceName": "b", "inputParameters": {"m": "${a.output.m}"}},
    ],
    "outputParameters": {"m": "${b.output.m}"},
}
TASK_DEFS = [
    # short response timeout: tasks polled before the crash and never reported are re-delivered
    {"name": name, "retryCount": 5, "retryDelaySeconds": 0, "responseTimeoutSeconds": 2, "timeoutSeconds": 0}
    for name in ("crash_a", "crash_b")
]


def test_kill9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path / "crash.duckdb", log_dir=tmp_path)
    proc.start()
    with ConductorClient(proc.url) as c:
        c.register_task_defs(TASK_DEFS)
        c.register_workflow_def(WF)

    started: list[tuple[str, int]] = []  # acknowledged starts
    updated: dict[str, str] = {}  # acknowledged task updates: taskId -> workflowId
    stop = threading.Event()
    errors: list[BaseException] = []

    def starter() -> None:
        with ConductorClient(proc.url, timeout=5) as c:
            n = 0
            while not stop.is_set():
                try:
                    wid = c.start_workflow("crash_wf", {"n": n})
                except (httpx.HTTPError, ApiError):
                    return  # the server died mid-request: not acknowledged
                started.append((wid, n))
                n += 1

    def worker(task_type: str) -> None:
        with ConductorClient(proc.url, timeout=5) as c:
            while not stop.is_set():
                try:
                    tasks = c.batch_poll(task_type, count=5, timeout_ms=200, worker_id="crash-worker")
                    for t in tasks:
                        out = {"m": (t["inputData"].get("n") or t["inputData"].get("m") or 0) + 1}
                        c.update_task(
                            {
                                "workflowInstanceId": t["workflowInstanceId"],
                                "taskId": t["taskId"],
                                "status": "COMPLETED",
                                "outputData": out,
                            }
                        )
                        updated[t["taskId"]] = t["workflowInstanceId"]
                except (httpx.HTTPError, ApiError):
                    return
                except BaseException as exc:  # pragma: no cover - surfaced below
                    errors.append(exc)
                    return

    threads = [threading.Thread(target=starter)] + [
        threading.Thread(target=worker, args=(tt,)) for tt in ("crash_a", "crash_b", "crash_a")
    ]
    for th in threads:
        th.start()
    wait_until(lambda: len(started) >= 150 and len(updated) >= 100, timeout=60, what="traffic before the crash")
    proc.kill9()  # mid-stream: requests are in flight
    stop.set()
    for th in threads:
        th.join(30)
    assert not errors, errors
    acked_starts, acked_updates = list(started), dict(updated)

    proc.start()  # same file, new process
    with ConductorClient(proc.url) as c:
        for wid, n in acked_starts:
            wf = c.get_workflow(wid)
            assert wf["input"] == {"n": n}
            tasks = wf["tasks"]
            # never half-applied: a completed first task always has its successor scheduled
            by_ref = {}
            for t in tasks:
                by_ref.setdefault(t["referenceTaskName"], []).append(t)
            if any(t["status"] == "COMPLETED" for t in by_ref.get("a", [])):
                assert "b" in by_ref, f"{wid}: a completed but b was never scheduled"
        for task_id, wid in acked_updates.items():
            t = c.get_task(task_id)
            assert t["status"] == "COMPLETED", f"acknowledged update of {task_id} lost: {t['status']}"
            assert t["workflowInstanceId"] == wid

        # all acknowledged workflows carry on to completion after the restart
        done = threading.Event()

        def finish_worker(task_type: str) -> None:
            with ConductorClient(proc.url, timeout=10) as wc:
                while not done.is_set():
                    for t in wc.batch_poll(task_type, count=10, timeout_ms=200, worker_id="after-crash"):
                        out = {"m": (t["inputData"].get("n") or t["inputData"].get("m") or 0) + 1}
                        wc.update_task(
                            {
                                "workflowInstanceId": t["workflowInstanceId"],
                                "taskId": t["taskId"],
                                "status": "COMPLETED",
                                "outputData": out,
                            }
                        )

        workers = [threading.Thread(target=finish_worker, args=(tt,)) for tt in ("crash_a", "crash_b")]
        for th in workers:
            th.start()
        try:
            deadline = time.monotonic() + 90
            for wid, n in acked_starts:
                wf = c.wait_for_workflow(wid, timeout=max(1.0, deadline - time.monotonic()))
                assert wf["status"] == "COMPLETED", (wid, wf["status"], wf.get("reasonForIncompletion"))
                assert wf["output"] == {"m": n + 2}
        finally:
            done.set()
            for th in workers:
                th.join(30)
    assert proc.stop() == 0
