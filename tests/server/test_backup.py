"""Backup (``POST /api/admin/backup``, ``conductor-lab backup``) of a server under load.

A real server in a subprocess; one thread starts workflows, another polls and completes their
tasks. Every workflow acknowledged before the backup call (and every task completion acknowledged
by then) must be in the copy, which a second server opens; the load goes on during and after the
backup without a single error.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx

from conductor_lab.engine.executor import Executor
from conductor_lab.engine.store import backup as backup_module
from conductor_lab.engine.store.archive import archive_dir
from conductor_lab.engine.store.backup import cancel_backup
from conductor_lab.engine.store.duckdb import SCHEMA_VERSION, DuckDBStore, journal_dir
from conductor_lab.server.run import TOKEN_ENV
from tests.conftest import REPO_ROOT, ServerProcess, wait_until
from tests.server.util import assert_error, register_chain, uid


class Load:
    """Two threads on the server: one starts workflows, one completes their tasks. Each records
    what the server acknowledged (in order) and any answer that was not a success."""

    def __init__(self, api: str, name: str, task_type: str) -> None:
        self.api, self.name, self.task_type = api, name, task_type
        self.started: list[str] = []  # acknowledged starts
        self.completed: list[str] = []  # workflows whose task completion was acknowledged
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._guard, args=(self._starter,), daemon=True),
            threading.Thread(target=self._guard, args=(self._worker,), daemon=True),
        ]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)
            assert not t.is_alive(), "a load thread did not stop"

    def acknowledged(self) -> tuple[set[str], set[str]]:
        with self._lock:
            return set(self.started), set(self.completed)

    def _guard(self, fn: Any) -> None:
        try:
            fn()
        except Exception as e:  # a transport error is a failure of the server to keep serving
            self.errors.append(f"{type(e).__name__}: {e}")

    def _starter(self) -> None:
        with httpx.Client(base_url=self.api, timeout=30) as http:
            n = 0
            while not self._stop.is_set():
                r = http.post(f"/workflow/{self.name}", json={"n": n})
                if r.status_code != 200:
                    self.errors.append(f"start: {r.status_code} {r.text}")
                    continue
                with self._lock:
                    self.started.append(r.text)
                n += 1

    def _worker(self) -> None:
        with httpx.Client(base_url=self.api, timeout=30) as http:
            while not self._stop.is_set():
                r = http.get(f"/tasks/poll/batch/{self.task_type}", params={"count": 20, "timeout": 50})
                if r.status_code != 200:
                    self.errors.append(f"poll: {r.status_code} {r.text}")
                    continue
                for task in r.json():
                    result = {
                        "workflowInstanceId": task["workflowInstanceId"],
                        "taskId": task["taskId"],
                        "status": "COMPLETED",
                        "outputData": {"ok": True},
                    }
                    u = http.post("/tasks", json=result)
                    if u.status_code != 200:
                        self.errors.append(f"update: {u.status_code} {u.text}")
                        continue
                    with self._lock:
                        self.completed.append(task["workflowInstanceId"])


def statuses(api: str, ids: set[str]) -> dict[str, str]:
    """workflowId -> status on the server at ``api`` (404s left out)."""
    out: dict[str, str] = {}
    with httpx.Client(base_url=api, timeout=30) as http:
        for wid in ids:
            r = http.get(f"/workflow/{wid}", params={"includeTasks": False})
            if r.status_code == 200:
                out[wid] = r.json()["status"]
            else:
                assert r.status_code == 404, r.text
    return out


def test_backup_under_load_restores_every_acknowledged_workflow(tmp_path: Path) -> None:
    name, task_type = uid("bk"), uid("bk_task")
    with ServerProcess(tmp_path / "live" / "c.duckdb", log_dir=tmp_path / "live") as live:
        with httpx.Client(base_url=live.api, timeout=30) as http:
            register_chain(http, name, [task_type])
        with Load(live.api, name, task_type) as load:
            wait_until(lambda: len(load.completed) >= 300, timeout=60, what="300 workflows through")
            started_before, completed_before = load.acknowledged()  # all acknowledged before the call
            began = time.monotonic()
            r = httpx.post(live.api + "/admin/backup", json={"to": str(tmp_path / "copy")}, timeout=120)
            took = time.monotonic() - began
            assert r.status_code == 200, r.text
            during = len(load.started)
            wait_until(lambda: len(load.started) >= during + 100, timeout=60, what="the load went on after")
        assert load.errors == [], load.errors[:5]
        result = r.json()
        assert result["path"] == str(tmp_path / "copy" / "c.duckdb")
        assert result["bytes"] == Path(result["path"]).stat().st_size > 0
        assert result["folded_seq"] > 0 and 0 <= result["seconds"] <= took
        assert result["archive_files"] == 0
        assert not list((tmp_path / "copy").glob("*.partial*")) and not Path(result["path"] + ".wal").exists()
        live_after = statuses(live.api, started_before)

    with duckdb.connect(result["path"], read_only=True) as con:
        meta = dict(con.execute("SELECT key, value FROM cl_meta").fetchall())
        assert meta["schema_version"] == str(SCHEMA_VERSION)
        assert meta["journal_folded_seq"] == str(result["folded_seq"])
        assert con.execute("SELECT count(*) FROM cl_journal").fetchone() == (0,)

    with ServerProcess(result["path"], log_dir=tmp_path / "restored") as restored:
        in_copy = statuses(restored.api, started_before)
        assert set(in_copy) == started_before, f"{len(started_before - set(in_copy))} workflows missing"
        for wid, status in in_copy.items():
            if wid in completed_before:
                assert status == "COMPLETED", (wid, status)
            else:
                assert status in ("RUNNING", "COMPLETED"), (wid, status)
            assert live_after[wid] in ("RUNNING", "COMPLETED")
        # the restored server goes on: a new workflow (and whatever was queued in the copy) completes
        with httpx.Client(base_url=restored.api, timeout=30) as http:
            wid = http.post(f"/workflow/{name}", json={}).text
            done: set[str] = set()

            def work() -> bool:
                polled = http.get(f"/tasks/poll/batch/{task_type}", params={"count": 100, "timeout": 100})
                for t in polled.json():
                    res = {
                        "workflowInstanceId": t["workflowInstanceId"],
                        "taskId": t["taskId"],
                        "status": "COMPLETED",
                    }
                    assert http.post("/tasks", json=res).status_code == 200
                    done.add(t["workflowInstanceId"])
                return wid in done

            wait_until(work, timeout=30, what="the new workflow's task polled on the restored server")
            for w in done:
                assert (
                    http.get(f"/workflow/{w}", params={"includeTasks": False}).json()["status"] == "COMPLETED"
                )


def test_backup_refusals_and_the_cli(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("x")
    with ServerProcess(tmp_path / "c.duckdb", ["--token", "s3cret"], log_dir=tmp_path) as proc:
        auth = {"Authorization": "Bearer s3cret"}
        assert_error(httpx.post(proc.api + "/admin/backup", json={"to": str(tmp_path / "b")}), 401)
        assert_error(httpx.post(proc.api + "/admin/backup", json={}, headers=auth), 400, "'to'")
        assert_error(
            httpx.post(proc.api + "/admin/backup", json={"to": str(tmp_path / "a_file" / "b")}, headers=auth),
            400,
            "cannot create the backup directory",
        )

        def backup_cli(to: Path, *extra: str) -> subprocess.CompletedProcess[str]:
            cmd = [
                sys.executable,
                "-m",
                "conductor_lab.cli",
                "backup",
                "--url",
                proc.url,
                "--to",
                str(to),
                *extra,
            ]
            env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
            return subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=env)

        done = backup_cli(tmp_path / "b", "--token", "s3cret")
        assert done.returncode == 0, done.stderr
        target = tmp_path / "b" / "c.duckdb"
        assert (
            done.stdout.startswith(f"conductor-lab backup: wrote {target} (") and done.stdout.count("\n") == 1
        )
        assert "folded_seq" in done.stdout and done.stderr == ""
        assert target.is_file()

        # the same place again: 400 over HTTP, one line and status 2 from the CLI
        assert_error(
            httpx.post(proc.api + "/admin/backup", json={"to": str(tmp_path / "b")}, headers=auth),
            400,
            "exists already",
        )
        again = backup_cli(tmp_path / "b", "--token", "s3cret")
        assert again.returncode == 2 and again.stdout == ""
        assert (
            again.stderr.count("\n") == 1
            and "answered 400" in again.stderr
            and "exists already" in again.stderr
        )
        no_token = backup_cli(tmp_path / "c")
        assert (
            no_token.returncode == 2
            and "answered 401" in no_token.stderr
            and no_token.stderr.count("\n") == 1
        )
        url = proc.url
    gone = subprocess.run(
        [sys.executable, "-m", "conductor_lab.cli", "backup", "--url", url, "--to", str(tmp_path / "d")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert gone.returncode == 2 and gone.stderr.startswith(f"conductor-lab backup: cannot reach {url}")
    assert gone.stderr.count("\n") == 1


def test_backup_copies_the_parquet_archive(tmp_path: Path) -> None:
    """Archived runs (retention) come along: the copy's archive files, found by the copy's views."""
    db = tmp_path / "a.duckdb"
    day = 86_400_000
    now = [1_800_000_000_000]
    flow = {"name": "one", "tasks": [{"name": "job", "taskReferenceName": "job"}]}

    async def main() -> tuple[set[str], str, dict[str, Any]]:
        store = DuckDBStore(db)
        ex = Executor(store, clock=lambda: now[0], archive_after_days=1.0, archive_interval_s=3600)
        await ex.start()
        try:
            await ex.register_workflow_def(flow)
            done: set[str] = set()
            for i in range(3):
                wid = await ex.start_workflow({"name": "one", "input": {"i": i}})
                (t,) = await ex.poll("job", worker_id="w", count=1, timeout_ms=0)
                await ex.update_task({"workflowInstanceId": wid, "taskId": t.taskId, "status": "COMPLETED"})
                done.add(wid)
            now[0] += 2 * day
            running = await ex.start_workflow({"name": "one"})
            assert await ex.archive_now() == 3
            result = await asyncio.get_running_loop().run_in_executor(
                None, store.backup, str(tmp_path / "copy")
            )
        finally:
            await ex.close()
        return done, running, result

    done, running, result = asyncio.run(main())
    assert result["archive_files"] == 4  # workflows, tasks, transitions, task_logs of one batch
    copied = sorted(
        p.relative_to(archive_dir(result["path"])) for p in archive_dir(result["path"]).rglob("*.parquet")
    )
    original = sorted(p.relative_to(archive_dir(db)) for p in archive_dir(db).rglob("*.parquet"))
    assert copied == original and len(copied) == 4
    size = Path(result["path"]).stat().st_size + sum(
        p.stat().st_size for p in archive_dir(result["path"]).rglob("*") if p.is_file()
    )
    assert result["bytes"] == size
    # the original archive is not needed by the copy: move it away, open the copy
    archive_dir(db).rename(tmp_path / "moved")
    with DuckDBStore(result["path"]) as copy:
        cur = copy.cursor()
        try:
            assert {
                r[0] for r in cur.execute("SELECT workflow_id FROM cl_archive_workflows").fetchall()
            } == done
            assert {r[0] for r in cur.execute("SELECT workflow_id FROM cl_workflows").fetchall()} == {running}
        finally:
            cur.close()
        got = copy.get_workflow(sorted(done)[0])
        assert got is not None and '"COMPLETED"' in got.json


def test_a_backup_in_progress_is_interrupted_for_closing(tmp_path: Path) -> None:
    """``cancel_backup`` (the server calls it at shutdown): the copy stops, nothing is left behind,
    and the store closes (DuckDB would refuse while the cursor copies)."""
    store = DuckDBStore(tmp_path / "a.duckdb")
    cur = store.cursor()
    try:  # enough rows that the copy takes a while (data at rest: written straight into a table)
        cur.execute(
            "INSERT INTO cl_task_logs SELECT 't' || i, i, repeat('log line ', 20) || i FROM range(1000000) r(i)"
        )
    finally:
        cur.close()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = store.backup(tmp_path / "copy")
        except Exception as e:
            outcome["error"] = e

    thread = threading.Thread(target=run)
    thread.start()
    wait_until(lambda: id(store) in backup_module._running, what="the backup to start copying")
    assert cancel_backup(store)
    thread.join(30)
    assert isinstance(outcome.get("error"), duckdb.InterruptException), outcome
    assert list((tmp_path / "copy").iterdir()) == []
    assert not cancel_backup(store)  # nothing running any more
    store.close()
    assert not journal_dir(tmp_path / "a.duckdb").exists()  # closed cleanly
