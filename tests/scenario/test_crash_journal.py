"""kill -9 inside the commit log's write and inside a fold, injected at an exact point.

The server is started with ``CONDUCTOR_LAB_CRASH=<point>:<n>`` (``engine/store/journal.py``) and
driven by a starter and workers that record every ACKNOWLEDGED start and task update; it kills
itself at the injected point. A new server on the same file (without the variable) must have every
acknowledged change, nothing unacknowledged half-applied, the log segments left by the crash gone
after its first fold, and every workflow carried on to COMPLETED.

Crash points: ``journal-write`` (half of the n-th frame written), ``fold-before-commit`` and
``fold-after-commit`` (inside the n-th fold, before/after its DuckDB COMMIT).
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import httpx
import pytest

from conductor_lab.client import ApiError, ConductorClient
from conductor_lab.engine.store.duckdb import journal_dir
from conductor_lab.engine.store.journal import CRASH_ENV
from tests.conftest import ServerProcess, wait_until

pytestmark = pytest.mark.timeout(180)

WF = {
    "name": "journal_crash_wf",
    "version": 1,
    "tasks": [
        {"name": "jc_a", "taskReferenceName": "a", "inputParameters": {"n": "${workflow.input.n}"}},
        {"name": "jc_b", "taskReferenceName": "b", "inputParameters": {"m": "${a.output.m}"}},
    ],
    "outputParameters": {"m": "${b.output.m}"},
}
TASK_DEFS = [
    # short response timeout: tasks polled before the crash and never reported are re-delivered
    {"name": name, "retryCount": 5, "retryDelaySeconds": 0, "responseTimeoutSeconds": 2, "timeoutSeconds": 0}
    for name in ("jc_a", "jc_b")
]
RECOVERY = re.compile(r"commit log: (\d+) records to fold, (\d+) already folded, (\d+) torn bytes dropped")


def _output(task: dict) -> dict:
    return {"m": (task["inputData"].get("n") or task["inputData"].get("m") or 0) + 1}


class Traffic:
    """A starter and workers against one server, recording what the server acknowledged."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.started: list[tuple[str, int]] = []  # (workflowId, n) of acknowledged starts
        self.updated: dict[str, str] = {}  # taskId -> workflowId of acknowledged COMPLETED updates
        self.errors: list[BaseException] = []
        # the starter waits for the first acknowledged update after its first start: a crash
        # early in the log (journal-write:30) must find both kinds acknowledged, however fast the
        # starts' commits are
        self.first_update = threading.Event()
        self.threads = [threading.Thread(target=self._starter)] + [
            threading.Thread(target=self._worker, args=(tt,)) for tt in ("jc_a", "jc_b", "jc_a")
        ]

    def __enter__(self) -> Traffic:
        for th in self.threads:
            th.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for th in self.threads:
            th.join(30)
        assert not any(th.is_alive() for th in self.threads)

    def _starter(self) -> None:
        with ConductorClient(self.url, timeout=5) as c:
            n = 0
            while True:
                try:
                    wid = c.start_workflow("journal_crash_wf", {"n": n})
                except (httpx.HTTPError, ApiError):
                    return  # the server died: this start was not acknowledged
                self.started.append((wid, n))
                n += 1
                if n == 1:
                    self.first_update.wait(30)

    def _worker(self, task_type: str) -> None:
        with ConductorClient(self.url, timeout=5) as c:
            while True:
                try:
                    for t in c.batch_poll(task_type, count=5, timeout_ms=100, worker_id="journal-crash"):
                        c.update_task(
                            {
                                "workflowInstanceId": t["workflowInstanceId"],
                                "taskId": t["taskId"],
                                "status": "COMPLETED",
                                "outputData": _output(t),
                            }
                        )
                        self.updated[t["taskId"]] = t["workflowInstanceId"]
                        self.first_update.set()
                except (httpx.HTTPError, ApiError):
                    return
                except BaseException as exc:  # pragma: no cover - surfaced by the test
                    self.errors.append(exc)
                    return


def _segments(db: Path) -> set[str]:
    d = journal_dir(db)
    return {p.name for p in d.iterdir() if p.suffix == ".log"} if d.exists() else set()


def _finish(url: str, acked: list[tuple[str, int]]) -> None:
    """Workers complete whatever is left; every acknowledged workflow must reach COMPLETED."""
    done = threading.Event()

    def worker(task_type: str) -> None:
        with ConductorClient(url, timeout=10) as wc:
            while not done.is_set():
                for t in wc.batch_poll(task_type, count=10, timeout_ms=100, worker_id="after-crash"):
                    wc.update_task(
                        {
                            "workflowInstanceId": t["workflowInstanceId"],
                            "taskId": t["taskId"],
                            "status": "COMPLETED",
                            "outputData": _output(t),
                        }
                    )

    workers = [threading.Thread(target=worker, args=(tt,)) for tt in ("jc_a", "jc_b")]
    for th in workers:
        th.start()
    try:
        deadline = time.monotonic() + 90
        with ConductorClient(url) as c:
            for wid, n in acked:
                wf = c.wait_for_workflow(wid, timeout=max(1.0, deadline - time.monotonic()))
                assert wf["status"] == "COMPLETED", (wid, wf["status"], wf.get("reasonForIncompletion"))
                assert wf["output"] == {"m": n + 2}
    finally:
        done.set()
        for th in workers:
            th.join(30)


@pytest.mark.parametrize(
    ("point", "n"),
    [("journal-write", 30), ("journal-write", 150), ("fold-before-commit", 2), ("fold-after-commit", 2)],
)
def test_kill9_at_an_injected_point_loses_nothing_acknowledged(tmp_path: Path, point: str, n: int) -> None:
    db = tmp_path / "crash.duckdb"
    proc = ServerProcess(db, log_dir=tmp_path, env={CRASH_ENV: f"{point}:{n}"})
    proc.start()
    with ConductorClient(proc.url) as c:
        c.register_task_defs(TASK_DEFS)
        c.register_workflow_def(WF)

    with Traffic(proc.url) as traffic:
        wait_until(lambda: not proc.alive(), timeout=60, what=f"the server to kill itself at {point}:{n}")
    assert proc.proc is not None and proc.proc.returncode == -9, proc.output()
    assert not traffic.errors, traffic.errors
    acked_starts, acked_updates = list(traffic.started), dict(traffic.updated)
    assert acked_starts and acked_updates, "no traffic was acknowledged before the crash"
    left = _segments(db)
    assert left, "the crash left no commit log segments"

    proc.env = None  # the same file, a normal server
    proc.start()
    m = RECOVERY.search(proc.output())
    assert m, proc.output()
    to_fold, already, torn = (int(x) for x in m.groups())
    if point == "journal-write":
        assert torn > 0 and to_fold > 0  # half a frame was cut off; the frames before it are replayed
    elif point == "fold-before-commit":
        assert to_fold > 0 and already == 0 and torn == 0  # the fold's records come back from the log
    else:
        assert already > 0 and torn == 0  # the fold was committed: its records are skipped, not re-applied
    assert not left & _segments(db), "segments left by the crash survived the first fold"

    with ConductorClient(proc.url) as c:
        for wid, n_in in acked_starts:
            wf = c.get_workflow(wid)
            assert wf["input"] == {"n": n_in}
            refs: dict[str, list[dict]] = {}
            for t in wf["tasks"]:
                refs.setdefault(t["referenceTaskName"], []).append(t)
            # never half-applied: a task update and the scheduling it caused are one group commit
            if any(t["status"] == "COMPLETED" for t in refs.get("a", [])):
                assert "b" in refs, f"{wid}: a completed but b was never scheduled"
            # every task appears once per attempt: nothing applied twice
            assert len({t["taskId"] for t in wf["tasks"]}) == len(wf["tasks"])
        for task_id, wid in acked_updates.items():
            t = c.get_task(task_id)
            assert t["status"] == "COMPLETED", f"acknowledged update of {task_id} lost: {t['status']}"
            assert t["workflowInstanceId"] == wid

    _finish(proc.url, acked_starts)
    assert proc.stop() == 0, proc.output()
    assert not journal_dir(db).exists()  # a clean stop folds everything and removes the log
