"""Timeouts across pause and resume (contract 7.1, 7.2, 6.6, 6.7), on an injected clock.

The workflow-level timeout is judged before the PAUSED check (a paused workflow can still time
out); task-level timeouts are not judged while paused, and are at resume; resume restarts the
workflow-timeout clock (``lastRetriedTime``).
"""

from __future__ import annotations

from pathlib import Path

from conductor_lab.engine.executor import Executor
from tests.scenario.test_executor_clock import Clock, poll_one, run


def _workflow(timeout_s: int = 0, task_timeout_s: int = 0) -> dict[str, object]:
    wd: dict[str, object] = {"name": "pausable", "tasks": [{"name": "job", "taskReferenceName": "job"}]}
    if timeout_s:
        wd.update(timeoutSeconds=timeout_s, timeoutPolicy="TIME_OUT_WF")
    return wd


async def _setup(ex: Executor, **kw: int) -> str:
    td = {"name": "job", "retryCount": 0, "responseTimeoutSeconds": 100, "timeoutPolicy": "TIME_OUT_WF"}
    if kw.get("task_timeout_s"):
        td["timeoutSeconds"] = kw["task_timeout_s"]
        td["responseTimeoutSeconds"] = kw["task_timeout_s"]
    await ex.register_task_defs([td])
    await ex.register_workflow_def(_workflow(kw.get("timeout_s", 0)))
    return await ex.start_workflow({"name": "pausable", "input": {}})


def test_a_paused_workflow_still_times_out(tmp_path: Path) -> None:
    async def story(ex: Executor, clock: Clock) -> None:
        wid = await _setup(ex, timeout_s=10)
        clock.advance(5)
        await ex.pause_workflow(wid)
        clock.advance(6)
        ex.run_timers()
        wf = await ex.get_workflow(wid)
        assert wf.status == "TIMED_OUT" and "Workflow timed out after 11 seconds" in (wf.reasonForIncompletion or "")

    run(tmp_path, story)


def test_resume_restarts_the_workflow_timeout_clock(tmp_path: Path) -> None:
    async def story(ex: Executor, clock: Clock) -> None:
        wid = await _setup(ex, timeout_s=10)
        clock.advance(5)
        await ex.pause_workflow(wid)
        clock.advance(3)
        await ex.resume_workflow(wid)  # at +8: the clock starts again from here
        clock.advance(9)  # +17: past the first deadline (+10), before the new one (+18)
        ex.run_timers()
        assert (await ex.get_workflow(wid)).status == "RUNNING"
        clock.advance(2)  # +19
        ex.run_timers()
        assert (await ex.get_workflow(wid)).status == "TIMED_OUT"

    run(tmp_path, story)


def test_task_timeouts_wait_for_resume(tmp_path: Path) -> None:
    async def story(ex: Executor, clock: Clock) -> None:
        wid = await _setup(ex, task_timeout_s=5)
        assert await poll_one(ex, "job") is not None  # IN_PROGRESS from now
        clock.advance(1)
        await ex.pause_workflow(wid)
        clock.advance(10)  # past the task's 5 s: not judged while paused
        ex.run_timers()
        wf = await ex.get_workflow(wid)
        assert wf.status == "PAUSED" and wf.tasks[0].status == "IN_PROGRESS"
        await ex.resume_workflow(wid)  # judged now
        wf = await ex.get_workflow(wid)
        assert wf.tasks[0].status == "TIMED_OUT" and wf.status == "TIMED_OUT"

    run(tmp_path, story)
