"""The pure decider: scheduling, retries, timeouts, completion, purity."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from conductor_lab.engine.decide import decide, retry_delay_seconds
from conductor_lab.engine.metadata import Metadata, parse_task_def, parse_workflow_def
from conductor_lab.engine.model import Task, TaskDef, TaskStatus, Workflow, WorkflowStatus

T0 = 1_700_000_000_000


def make_wf(defn: dict[str, Any], task_defs: list[dict[str, Any]] = (), **inp: Any) -> Workflow:  # type: ignore[assignment]
    meta = Metadata()
    for td in task_defs:
        meta.put_task_def(parse_task_def(td, "td"))
    wd = parse_workflow_def({"name": "wf", **defn})
    sid, snap, _ = meta.snapshot_for(wd, registered=True)
    wf = Workflow("wf-1", snap, sid, T0)
    wf.input = dict(inp)
    return wf


_ids = itertools.count(1)


def ids() -> str:
    return f"t{next(_ids)}"


def apply(wf: Workflow, now: int) -> Any:
    """Minimal applier for tests: what the executor does, without store and queue."""
    d = decide(wf, now, new_id=ids)
    for t, changes in d.updates:
        for k, v in changes.items():
            setattr(t, k, v)
    for t in d.schedule:
        t.seq = len(wf.tasks) + 1
        wf.tasks.append(t)
    if d.complete:
        wf.status = d.complete
        wf.output = d.output or {}
        wf.reasonForIncompletion = d.reason
    return d


def finish(t: Task, status: TaskStatus, output: dict[str, Any] | None = None, reason: str | None = None) -> None:
    t.status = status
    t.outputData = output or {}
    t.reasonForIncompletion = reason


LINEAR = {
    "tasks": [
        {"name": "a", "taskReferenceName": "a", "inputParameters": {"x": "${workflow.input.x}"}},
        {"name": "b", "taskReferenceName": "b", "inputParameters": {"y": "${a.output.y}", "k": "lit"}},
    ]
}


def test_first_task_scheduled_with_evaluated_input() -> None:
    wf = make_wf(LINEAR, x=5)
    d = apply(wf, T0)
    assert [t.referenceTaskName for t in d.schedule] == ["a"]
    a = d.schedule[0]
    assert a.status == TaskStatus.SCHEDULED and a.taskType == "a" and a.inputData == {"x": 5}
    # unregistered SIMPLE task: conductor-oss ad-hoc defaults
    assert a.responseTimeoutSeconds == 3600
    assert a.node.taskDefinition is not None and a.node.taskDefinition.retryCount == 3


def test_sequential_flow_and_output_is_last_task_output() -> None:
    wf = make_wf(LINEAR, x=1)
    apply(wf, T0)
    finish(wf.tasks[0], TaskStatus.COMPLETED, {"y": 2})
    d = apply(wf, T0 + 10)
    assert [t.referenceTaskName for t in d.schedule] == ["b"]
    assert wf.tasks[1].inputData == {"y": 2, "k": "lit"}
    assert wf.tasks[0].executed
    finish(wf.tasks[1], TaskStatus.COMPLETED, {"z": 3})
    d = apply(wf, T0 + 20)
    assert d.complete == WorkflowStatus.COMPLETED
    assert wf.output == {"z": 3}


def test_output_parameters_win() -> None:
    wf = make_wf({**LINEAR, "outputParameters": {"r": "${a.output.y}", "n": "${workflow.input.x}"}}, x=9)
    apply(wf, T0)
    finish(wf.tasks[0], TaskStatus.COMPLETED, {"y": 2})
    apply(wf, T0)
    finish(wf.tasks[1], TaskStatus.COMPLETED, {"z": 3})
    apply(wf, T0)
    assert wf.status == WorkflowStatus.COMPLETED and wf.output == {"r": 2, "n": 9}


def test_decide_is_pure_and_idempotent_once_applied() -> None:
    wf = make_wf(LINEAR, x=1)
    apply(wf, T0)
    finish(wf.tasks[0], TaskStatus.COMPLETED, {"y": 2})
    before = [t.state_json() for t in wf.tasks]
    wf_before = copy.deepcopy(wf.state_json())
    d1 = decide(wf, T0 + 5, new_id=ids)
    d2 = decide(wf, T0 + 5, new_id=ids)
    assert [t.state_json() for t in wf.tasks] == before and wf.state_json() == wf_before
    assert [t.referenceTaskName for t in d1.schedule] == [t.referenceTaskName for t in d2.schedule] == ["b"]
    apply(wf, T0 + 5)
    again = decide(wf, T0 + 5, new_id=ids)
    assert not again.schedule and not again.complete


@pytest.mark.parametrize(
    ("logic", "delay", "scale", "expected"),
    [
        ("FIXED", 5, 1, [5, 5, 5]),
        ("LINEAR_BACKOFF", 5, 2, [10, 20, 30]),
        ("EXPONENTIAL_BACKOFF", 5, 1, [5, 10, 20]),
    ],
)
def test_retry_delay_logics(logic: str, delay: int, scale: int, expected: list[int]) -> None:
    td = TaskDef.parse({"name": "x", "retryLogic": logic, "retryDelaySeconds": delay, "backoffScaleFactor": scale})
    assert [retry_delay_seconds(td, k, "id") for k in range(3)] == expected


def test_retry_delay_cap_and_jitter() -> None:
    td = TaskDef.parse(
        {"name": "x", "retryLogic": "EXPONENTIAL_BACKOFF", "retryDelaySeconds": 10, "maxRetryDelaySeconds": 25}
    )
    assert [retry_delay_seconds(td, k, "id") for k in range(4)] == [10, 20, 25, 25]
    td.backoffJitterMs = 3000
    jittered = retry_delay_seconds(td, 0, "some-task")
    assert 10 <= jittered <= 13
    assert retry_delay_seconds(td, 0, "some-task") == jittered  # deterministic


def test_failed_task_is_retried_as_new_task() -> None:
    wf = make_wf(LINEAR, [{"name": "a", "retryCount": 2, "retryDelaySeconds": 7}], x=1)
    apply(wf, T0)
    first = wf.tasks[0]
    finish(first, TaskStatus.FAILED, reason="boom")
    d = apply(wf, T0 + 1)
    assert len(d.schedule) == 1
    retry = d.schedule[0]
    assert retry.taskId != first.taskId and retry.retryCount == 1 and retry.retriedTaskId == first.taskId
    assert retry.status == TaskStatus.SCHEDULED and retry.callbackAfterSeconds == 7
    assert retry.reasonForIncompletion == "boom" and retry.inputData == {"x": 1}
    assert first.retried and first.executed and first.status == TaskStatus.FAILED
    assert wf.status == WorkflowStatus.RUNNING


def test_retries_exhausted_fail_the_workflow() -> None:
    wf = make_wf(LINEAR, [{"name": "a", "retryCount": 1, "retryDelaySeconds": 0}])
    apply(wf, T0)
    finish(wf.tasks[0], TaskStatus.FAILED, reason="r1")
    apply(wf, T0)
    finish(wf.tasks[1], TaskStatus.FAILED, reason="r2")
    d = apply(wf, T0)
    assert d.complete == WorkflowStatus.FAILED
    assert d.failed_task is wf.tasks[1]
    assert wf.reasonForIncompletion == f"Task {wf.tasks[1].taskId} failed with status: FAILED and reason: 'r2'"


def test_terminal_error_is_not_retried() -> None:
    wf = make_wf(LINEAR, [{"name": "a", "retryCount": 5}])
    apply(wf, T0)
    finish(wf.tasks[0], TaskStatus.FAILED_WITH_TERMINAL_ERROR, reason="fatal")
    d = apply(wf, T0)
    assert d.complete == WorkflowStatus.FAILED and not d.schedule


def test_workflow_task_retry_count_overrides_task_def() -> None:
    defn = {"tasks": [{"name": "a", "taskReferenceName": "a", "retryCount": 0}]}
    wf = make_wf(defn, [{"name": "a", "retryCount": 5}])
    apply(wf, T0)
    finish(wf.tasks[0], TaskStatus.FAILED)
    assert apply(wf, T0).complete == WorkflowStatus.FAILED


def test_canceled_task_terminates_workflow() -> None:
    wf = make_wf(LINEAR)
    apply(wf, T0)
    finish(wf.tasks[0], TaskStatus.CANCELED)
    assert apply(wf, T0).complete == WorkflowStatus.TERMINATED


def test_optional_failure_completes_with_errors() -> None:
    defn = {
        "tasks": [
            {"name": "a", "taskReferenceName": "a", "optional": True},
            {"name": "b", "taskReferenceName": "b"},
        ]
    }
    wf = make_wf(defn, [{"name": "a", "retryCount": 0}])
    apply(wf, T0)
    finish(wf.tasks[0], TaskStatus.FAILED, reason="meh")
    d = apply(wf, T0)
    assert wf.tasks[0].status == TaskStatus.COMPLETED_WITH_ERRORS
    assert [t.referenceTaskName for t in d.schedule] == ["b"]
    finish(wf.tasks[1], TaskStatus.COMPLETED)
    assert apply(wf, T0).complete == WorkflowStatus.COMPLETED


def test_response_timeout_times_out_then_retries() -> None:
    wf = make_wf(LINEAR, [{"name": "a", "retryCount": 1, "retryDelaySeconds": 0, "responseTimeoutSeconds": 10}])
    apply(wf, T0)
    a = wf.tasks[0]
    a.status, a.startTime, a.updateTime = TaskStatus.IN_PROGRESS, T0, T0
    d = apply(wf, T0 + 9_999)
    assert not d.schedule and d.wake_at == T0 + 10_000
    d = apply(wf, T0 + 10_000)
    assert a.status == TaskStatus.TIMED_OUT and "responseTimeout: 10 exceeded" in (a.reasonForIncompletion or "")
    assert [t.retryCount for t in d.schedule] == [1]


@pytest.mark.parametrize(
    ("policy", "expect"),
    [("RETRY", TaskStatus.TIMED_OUT), ("TIME_OUT_WF", TaskStatus.TIMED_OUT), ("ALERT_ONLY", TaskStatus.IN_PROGRESS)],
)
def test_task_timeout_policies(policy: str, expect: TaskStatus) -> None:
    td = {"name": "a", "retryCount": 1, "retryDelaySeconds": 0, "timeoutSeconds": 30, "responseTimeoutSeconds": 30,
          "timeoutPolicy": policy}
    wf = make_wf(LINEAR, [td])
    apply(wf, T0)
    a = wf.tasks[0]
    a.status, a.startTime = TaskStatus.IN_PROGRESS, T0
    a.updateTime = T0 + 29_000  # recent heartbeat: no response timeout
    d = apply(wf, T0 + 30_000)
    assert a.status == expect
    if policy == "RETRY":
        assert wf.status == WorkflowStatus.RUNNING and d.schedule and d.schedule[0].retryCount == 1
        assert "Timeout policy configured to RETRY" in (a.reasonForIncompletion or "")
    elif policy == "TIME_OUT_WF":
        assert wf.status == WorkflowStatus.TIMED_OUT and not d.schedule
    else:
        assert wf.status == WorkflowStatus.RUNNING and not d.schedule


def test_poll_timeout() -> None:
    wf = make_wf(LINEAR, [{"name": "a", "retryCount": 0, "pollTimeoutSeconds": 5}])
    apply(wf, T0)
    assert decide(wf, T0 + 4_000, new_id=ids).wake_at == T0 + 5_000
    d = apply(wf, T0 + 5_000)
    assert wf.tasks[0].status == TaskStatus.TIMED_OUT and d.complete == WorkflowStatus.TIMED_OUT


def test_workflow_timeout_policies() -> None:
    wf = make_wf({**LINEAR, "timeoutSeconds": 60, "timeoutPolicy": "TIME_OUT_WF"})
    apply(wf, T0)
    assert decide(wf, T0 + 59_000, new_id=ids).wake_at == T0 + 60_000
    d = apply(wf, T0 + 60_000)
    assert d.complete == WorkflowStatus.TIMED_OUT and "Workflow timed out after 60 seconds" in (d.reason or "")
    alert = make_wf({**LINEAR, "timeoutSeconds": 60})
    apply(alert, T0)
    assert apply(alert, T0 + 120_000).complete is None


def test_paused_workflow_schedules_nothing() -> None:
    wf = make_wf(LINEAR)
    apply(wf, T0)
    finish(wf.tasks[0], TaskStatus.COMPLETED)
    wf.status = WorkflowStatus.PAUSED
    assert not decide(wf, T0, new_id=ids).changed


def test_async_system_task_asks_the_executor_to_run_it() -> None:
    wf = make_wf({"tasks": [{"name": "h", "taskReferenceName": "h", "type": "HTTP",
                             "inputParameters": {"http_request": {"uri": "http://x", "method": "GET"}}}]})
    d = apply(wf, T0)
    assert d.complete is None
    assert [t.status for t in d.schedule] == [TaskStatus.IN_PROGRESS]
    assert d.run_async == d.schedule


def test_user_defined_type_is_a_worker_task_on_the_type_queue() -> None:
    wf = make_wf({"tasks": [{"name": "n", "taskReferenceName": "n", "type": "MY_CUSTOM"}]})
    d = apply(wf, T0)
    assert d.schedule[0].taskType == "MY_CUSTOM" and d.schedule[0].status == TaskStatus.SCHEDULED
