"""The official SDK's workflow client drives the control verbs; the SDK's getters read the outcome.

Every call goes through ``conductor-python``'s ``OrkesWorkflowClient`` / ``OrkesTaskClient`` /
``WorkflowBulkResourceApi`` exactly as an application would use them (query strings such as
``useLatestDefinitions=True``, the ``{}`` bodies, the ``skipTaskRequest`` repr), and every assertion reads
the server's state back through the SDK's models. Expected behaviour: conductor-oss
(``WorkflowExecutorOps``; reference/conductor-contract.md section 7).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from conductor.client.configuration.configuration import Configuration
from conductor.client.http.api.workflow_bulk_resource_api import WorkflowBulkResourceApi
from conductor.client.http.api_client import ApiClient
from conductor.client.http.models.rerun_workflow_request import RerunWorkflowRequest
from conductor.client.http.models.skip_task_request import SkipTaskRequest
from conductor.client.http.models.start_workflow_request import StartWorkflowRequest
from conductor.client.http.models.task import Task
from conductor.client.http.models.task_def import TaskDef
from conductor.client.http.models.task_result import TaskResult
from conductor.client.http.models.workflow import Workflow
from conductor.client.http.models.workflow_def import WorkflowDef
from conductor.client.http.models.workflow_task import WorkflowTask
from conductor.client.http.models.workflow_test_request import WorkflowTestRequest
from conductor.client.http.rest import ApiException
from conductor.client.orkes.orkes_metadata_client import OrkesMetadataClient
from conductor.client.orkes.orkes_task_client import OrkesTaskClient
from conductor.client.orkes.orkes_workflow_client import OrkesWorkflowClient

from tests.conftest import ServerProcess, wait_until

pytestmark = pytest.mark.timeout(120)


class Sdk:
    """The SDK's clients on the session server, plus the few steps every test repeats."""

    def __init__(self, api: str) -> None:
        cfg = Configuration(server_api_url=api)
        self.metadata = OrkesMetadataClient(cfg)
        self.workflows = OrkesWorkflowClient(cfg)
        self.tasks = OrkesTaskClient(cfg)
        self.bulk = WorkflowBulkResourceApi(ApiClient(cfg))

    def register_chain(self, refs: list[str], *, version: int = 1, retry_count: int = 0, name: str = "") -> tuple[str, str]:
        """A workflow of SIMPLE tasks (one task type, refs in order, each reading ``x`` from the workflow
        input); the type's TaskDef has ``retry_count`` retries. Returns (workflow name, task type)."""
        name = name or f"sdkv_{uuid.uuid4().hex[:10]}"
        task_type = f"{name}_t"
        self.metadata.register_task_def(
            TaskDef(name=task_type, retry_count=retry_count, retry_delay_seconds=0, response_timeout_seconds=60)
        )
        tasks = [
            WorkflowTask(name=task_type, task_reference_name=ref, type="SIMPLE", input_parameters={"x": "${workflow.input.x}"})
            for ref in refs
        ]
        self.metadata.register_workflow_def(WorkflowDef(name=name, version=version, tasks=tasks), overwrite=True)
        return name, task_type

    def poll(self, task_type: str) -> Task:
        task = self.tasks.poll_task(task_type, worker_id="sdk-verbs")
        assert task is not None and task.task_id, f"nothing to poll for {task_type}"
        return task

    def finish(self, task: Task, status: str = "COMPLETED", output: dict[str, Any] | None = None, reason: str | None = None) -> None:
        result = TaskResult(
            workflow_instance_id=task.workflow_instance_id,
            task_id=task.task_id,
            status=status,
            output_data=output or {},
            reason_for_incompletion=reason,
        )
        assert self.tasks.update_task(result) == task.task_id

    def wf(self, workflow_id: str) -> Workflow:
        workflow = self.workflows.get_workflow(workflow_id, include_tasks=True)
        assert workflow is not None, "the SDK could not deserialise the workflow (an enum out of range?)"
        return workflow


def shape(workflow: Workflow) -> list[tuple[str, str]]:
    return [(t.reference_task_name, t.status) for t in workflow.tasks]


def api_error(call: Callable[[], Any]) -> ApiException:
    with pytest.raises(ApiException) as info:
        call()
    return info.value


@pytest.fixture(scope="module")
def sdk(server: ServerProcess) -> Sdk:
    return Sdk(server.api)


def test_pause_holds_the_flow_and_resume_advances_it(sdk: Sdk) -> None:
    name, task_type = sdk.register_chain(["a", "b"])
    wid = sdk.workflows.start_workflow_by_name(name, {"x": 1})
    a = sdk.poll(task_type)

    sdk.workflows.pause_workflow(wid)
    assert sdk.wf(wid).status == "PAUSED"
    assert sdk.workflows.get_workflow_status(wid).status == "PAUSED"
    sdk.workflows.pause_workflow(wid)  # already paused: a no-op
    assert sdk.wf(wid).status == "PAUSED"

    # a worker may still finish a task it holds; nothing new is scheduled while paused
    sdk.finish(a, output={"y": 1})
    paused = sdk.wf(wid)
    assert paused.status == "PAUSED" and shape(paused) == [("a", "COMPLETED")]
    assert sdk.tasks.get_queue_size_for_task(task_type) == 0

    sdk.workflows.resume_workflow(wid)
    resumed = sdk.wf(wid)
    assert resumed.status == "RUNNING"
    assert shape(resumed) == [("a", "COMPLETED"), ("b", "SCHEDULED")]

    err = api_error(lambda: sdk.workflows.resume_workflow(wid))  # not PAUSED: conductor-oss answers 500
    assert err.status == 500 and "not PAUSED" in err.message and wid in err.message
    assert sdk.wf(wid).status == "RUNNING"

    sdk.finish(sdk.poll(task_type))
    assert sdk.wf(wid).status == "COMPLETED"
    err = api_error(lambda: sdk.workflows.pause_workflow(wid))
    assert err.status == 409 and "has ended" in err.message
    assert sdk.wf(wid).status == "COMPLETED"


def test_skip_a_task_not_reached_yet(sdk: Sdk) -> None:
    name, task_type = sdk.register_chain(["a", "b", "c"])
    wid = sdk.workflows.start_workflow_by_name(name, {"x": 7})

    # the SDK puts the request in the query string as a Python repr; conductor-oss binds no body
    # for skiptask, so the skipped task's input/output stay empty
    sdk.workflows.skip_task_from_workflow(wid, "b", SkipTaskRequest(task_input={"i": 1}, task_output={"o": 2}))
    wf = sdk.wf(wid)
    assert wf.status == "RUNNING"
    assert shape(wf) == [("a", "SCHEDULED"), ("b", "SKIPPED")]
    skipped = wf.tasks[1]
    assert skipped.output_data == {} and skipped.end_time and skipped.end_time > 0

    before = shape(wf)
    for ref, fragment in (("a", "already been processed"), ("b", "already been processed"), ("nope", "does not exist")):
        err = api_error(lambda ref=ref: sdk.workflows.skip_task_from_workflow(wid, ref, SkipTaskRequest()))
        assert err.status == 500 and fragment in err.message and ref in err.message, err.message
    assert shape(sdk.wf(wid)) == before  # rejected skips change nothing

    sdk.finish(sdk.poll(task_type))  # a: the flow jumps over b to c
    wf = sdk.wf(wid)
    assert shape(wf) == [("a", "COMPLETED"), ("b", "SKIPPED"), ("c", "SCHEDULED")]
    assert wf.tasks[2].input_data == {"x": 7}
    sdk.finish(sdk.poll(task_type), output={"done": True})
    wf = sdk.wf(wid)
    assert wf.status == "COMPLETED" and wf.output == {"done": True}

    err = api_error(lambda: sdk.workflows.skip_task_from_workflow(wid, "c", SkipTaskRequest()))
    assert err.status == 500 and "not running" in err.message


def test_terminate_then_restart_with_and_without_latest_definitions(sdk: Sdk) -> None:
    name, task_type = sdk.register_chain(["a", "b"])
    wid = sdk.workflows.start_workflow(StartWorkflowRequest(name=name, version=1, input={"x": 3}, correlation_id="corr-1"))
    a = sdk.poll(task_type)

    err = api_error(lambda: sdk.workflows.restart_workflow(wid))
    assert err.status == 409 and "not in terminal state" in err.message

    sdk.workflows.terminate_workflow(wid, reason="operator said so")
    wf = sdk.wf(wid)
    assert wf.status == "TERMINATED" and wf.reason_for_incompletion == "operator said so"
    assert shape(wf) == [("a", "CANCELED")] and wf.end_time and wf.end_time > 0
    assert sdk.workflows.get_workflow_status(wid).status == "TERMINATED"
    sdk.workflows.terminate_workflow(wid, reason="again")  # TERMINATED: a no-op
    assert sdk.wf(wid).reason_for_incompletion == "operator said so"
    sdk.finish(a)  # a late update of the cancelled task is ignored (conductor-oss: 200, nothing changes)
    wf = sdk.wf(wid)
    assert wf.status == "TERMINATED" and shape(wf) == [("a", "CANCELED")]

    # version 2 of the definition starts with a different task
    v2_tasks = [WorkflowTask(name=task_type, task_reference_name="v2_first", type="SIMPLE", input_parameters={"x": "${workflow.input.x}"})]
    sdk.metadata.register_workflow_def(WorkflowDef(name=name, version=2, tasks=v2_tasks), overwrite=True)

    sdk.workflows.restart_workflow(wid)  # same id, same input and correlation id, version 1 again
    wf = sdk.wf(wid)
    assert wf.status == "RUNNING" and wf.workflow_id == wid and wf.workflow_version == 1
    assert wf.input == {"x": 3} and wf.correlation_id == "corr-1"
    assert shape(wf) == [("a", "SCHEDULED")] and not wf.reason_for_incompletion
    assert wf.tasks[0].task_id != a.task_id

    sdk.workflows.terminate_workflow(wid)
    sdk.workflows.restart_workflow(wid, use_latest_def=True)  # ?useLatestDefinitions=True
    wf = sdk.wf(wid)
    assert wf.status == "RUNNING" and wf.workflow_version == 2
    assert shape(wf) == [("v2_first", "SCHEDULED")]
    sdk.finish(sdk.poll(task_type), output={"v": 2})
    wf = sdk.wf(wid)
    assert wf.status == "COMPLETED" and wf.output == {"v": 2}

    err = api_error(lambda: sdk.workflows.terminate_workflow(wid, reason="too late"))
    assert err.status == 409 and "COMPLETED" in err.message


def test_retry_a_failed_workflow(sdk: Sdk) -> None:
    name, task_type = sdk.register_chain(["a", "b"], retry_count=0)
    wid = sdk.workflows.start_workflow_by_name(name, {"x": 5})

    err = api_error(lambda: sdk.workflows.retry_workflow(wid))
    assert err.status == 404 and "still running" in err.message

    sdk.finish(sdk.poll(task_type), output={"ya": 1})
    b = sdk.poll(task_type)
    sdk.finish(b, status="FAILED", reason="boom")
    wf = sdk.wf(wid)
    assert wf.status == "FAILED" and "boom" in (wf.reason_for_incompletion or "")
    assert shape(wf) == [("a", "COMPLETED"), ("b", "FAILED")]

    sdk.workflows.retry_workflow(wid)
    wf = sdk.wf(wid)
    assert wf.status == "RUNNING" and not wf.reason_for_incompletion
    assert shape(wf) == [("a", "COMPLETED"), ("b", "FAILED"), ("b", "SCHEDULED")]
    retried = wf.tasks[2]
    assert retried.retry_count == 1 and retried.retried_task_id == b.task_id and retried.task_id != b.task_id
    assert retried.input_data == {"x": 5}

    again = sdk.poll(task_type)
    assert again.task_id == retried.task_id
    sdk.finish(again, output={"yb": 2})
    wf = sdk.wf(wid)
    assert wf.status == "COMPLETED" and wf.output == {"yb": 2}

    err = api_error(lambda: sdk.workflows.retry_workflow(wid))
    assert err.status == 409 and "no retryable tasks" in err.message


def test_retry_with_resume_subworkflow_tasks_reuses_the_failed_child(sdk: Sdk) -> None:
    child, task_type = sdk.register_chain(["c1"], retry_count=0)
    parent = f"{child}_parent"
    sub = WorkflowTask(name="sub", task_reference_name="sub", type="SUB_WORKFLOW", input_parameters={"x": "${workflow.input.x}"})
    sub.sub_workflow_param = {"name": child, "version": 1}
    sdk.metadata.register_workflow_def(WorkflowDef(name=parent, version=1, tasks=[sub]), overwrite=True)

    def fail_child(pid: str) -> str:
        child_id = wait_until(lambda: (sdk.wf(pid).tasks or [None])[-1].sub_workflow_id, timeout=10, what="child started")
        sdk.finish(sdk.poll(task_type), status="FAILED", reason="child boom")
        wait_until(lambda: sdk.wf(pid).status == "FAILED", timeout=10, what="parent FAILED")
        assert sdk.wf(child_id).status == "FAILED"
        return str(child_id)

    # plain retry: a new child workflow
    pid = sdk.workflows.start_workflow_by_name(parent, {"x": 1})
    first_child = fail_child(pid)
    sdk.workflows.retry_workflow(pid)
    wf = sdk.wf(pid)
    assert wf.status == "RUNNING" and shape(wf) == [("sub", "FAILED"), ("sub", "IN_PROGRESS")]
    new_child = wait_until(lambda: sdk.wf(pid).tasks[-1].sub_workflow_id, timeout=10, what="second child")
    assert new_child != first_child and sdk.wf(first_child).status == "FAILED"
    sdk.finish(sdk.poll(task_type))
    wait_until(lambda: sdk.wf(pid).status == "COMPLETED", timeout=10, what="parent COMPLETED")

    # resumeSubworkflowTasks=True: the failed child itself is retried, the parent follows it
    pid = sdk.workflows.start_workflow_by_name(parent, {"x": 2})
    child_id = fail_child(pid)
    sdk.workflows.retry_workflow(pid, resume_subworkflow_tasks=True)
    wf = sdk.wf(pid)
    assert wf.status == "RUNNING"
    assert wf.tasks[-1].sub_workflow_id == child_id and wf.tasks[-1].status == "IN_PROGRESS"
    child_wf = sdk.wf(child_id)
    assert child_wf.status == "RUNNING" and shape(child_wf) == [("c1", "FAILED"), ("c1", "SCHEDULED")]
    sdk.finish(sdk.poll(task_type), output={"ok": True})
    wait_until(lambda: sdk.wf(pid).status == "COMPLETED", timeout=10, what="parent COMPLETED after child retry")
    assert sdk.wf(child_id).status == "COMPLETED"


def test_rerun_from_a_task_and_from_the_start(sdk: Sdk) -> None:
    name, task_type = sdk.register_chain(["a", "b"])
    wid = sdk.workflows.start_workflow(StartWorkflowRequest(name=name, version=1, input={"x": 1}, correlation_id="c-old"))

    err = api_error(lambda: sdk.workflows.rerun_workflow(wid, RerunWorkflowRequest()))
    assert err.status == 409 and "not in terminal state" in err.message

    a = sdk.poll(task_type)
    sdk.finish(a, output={"ya": 1})
    b = sdk.poll(task_type)
    sdk.finish(b, output={"yb": 1})
    assert sdk.wf(wid).status == "COMPLETED"

    # from task b with new task input and new workflow input: same id, b reset in place
    rerun_id = sdk.workflows.rerun_workflow(
        wid, RerunWorkflowRequest(re_run_from_task_id=b.task_id, task_input={"x": 42}, workflow_input={"x": 9})
    )
    assert rerun_id == wid
    wf = sdk.wf(wid)
    assert wf.status == "RUNNING" and wf.input == {"x": 9}
    assert shape(wf) == [("a", "COMPLETED"), ("b", "SCHEDULED")]
    assert wf.tasks[0].task_id == a.task_id and wf.tasks[0].output_data == {"ya": 1}
    assert wf.tasks[1].task_id == b.task_id and wf.tasks[1].input_data == {"x": 42} and wf.tasks[1].output_data == {}
    b2 = sdk.poll(task_type)
    assert b2.task_id == b.task_id and b2.input_data == {"x": 42}
    sdk.finish(b2, output={"yb": 2})
    wf = sdk.wf(wid)
    assert wf.status == "COMPLETED" and wf.output == {"yb": 2}

    # from the start, with a new correlation id: every task is new, the input is re-read
    sdk.workflows.rerun_workflow(wid, RerunWorkflowRequest(workflow_input={"x": 100}, correlation_id="c-new"))
    wf = sdk.wf(wid)
    assert wf.status == "RUNNING" and wf.correlation_id == "c-new" and wf.input == {"x": 100}
    assert shape(wf) == [("a", "SCHEDULED")] and wf.tasks[0].input_data == {"x": 100}

    err = api_error(lambda: sdk.workflows.rerun_workflow(wid, RerunWorkflowRequest()))
    assert err.status == 409
    sdk.workflows.terminate_workflow(wid)
    err = api_error(lambda: sdk.workflows.rerun_workflow(wid, RerunWorkflowRequest(re_run_from_task_id="no-such-task")))
    assert err.status == 400 and "no-such-task" in err.message
    assert sdk.wf(wid).status == "TERMINATED"


def test_bulk_verbs_through_the_sdk(sdk: Sdk) -> None:
    name, _ = sdk.register_chain(["a"])
    ids = [sdk.workflows.start_workflow_by_name(name, {"x": i}) for i in range(3)]
    unknown = f"missing-{uuid.uuid4().hex[:8]}"

    def statuses() -> list[str]:
        return [sdk.wf(i).status for i in ids]

    r = sdk.bulk.pause_workflow(ids + [unknown])
    assert sorted(r.bulk_successful_results) == sorted(ids)
    assert list(r.bulk_error_results) == [unknown] and unknown in r.bulk_error_results[unknown]
    assert statuses() == ["PAUSED"] * 3

    r = sdk.bulk.resume_workflow(ids)
    assert sorted(r.bulk_successful_results) == sorted(ids) and not r.bulk_error_results
    assert statuses() == ["RUNNING"] * 3

    r = sdk.bulk.terminate(ids, reason="bulk stop")
    assert sorted(r.bulk_successful_results) == sorted(ids)
    assert statuses() == ["TERMINATED"] * 3
    assert {sdk.wf(i).reason_for_incompletion for i in ids} == {"bulk stop"}

    r = sdk.bulk.retry(ids)  # a TERMINATED workflow's CANCELED task is retryable
    assert sorted(r.bulk_successful_results) == sorted(ids)
    assert statuses() == ["RUNNING"] * 3

    r = sdk.bulk.retry(ids)  # now running: every id is an error, none changes
    assert r.bulk_successful_results == [] and sorted(r.bulk_error_results) == sorted(ids)
    assert all("still running" in msg for msg in r.bulk_error_results.values())

    sdk.bulk.terminate(ids)
    r = sdk.bulk.restart(ids, use_latest_definitions=True)
    assert sorted(r.bulk_successful_results) == sorted(ids)
    assert statuses() == ["RUNNING"] * 3
    assert all(shape(sdk.wf(i)) == [("a", "SCHEDULED")] for i in ids)


def test_search_by_correlation_id_and_status(sdk: Sdk) -> None:
    name, task_type = sdk.register_chain(["a"])
    corr = f"corr_{uuid.uuid4().hex[:10]}"
    ids = [sdk.workflows.start_workflow_by_name(name, {"x": i}, correlationId=corr) for i in range(3)]
    done = sdk.poll(task_type)
    sdk.finish(done)
    assert sdk.wf(done.workflow_instance_id).status == "COMPLETED"

    def search(query: str, size: int = 100) -> list[Any]:
        result = sdk.workflows.search(start=0, size=size, free_text="*", query=query)
        assert result is not None
        return list(result.results or [])

    found = wait_until(lambda: len(search(f'correlationId = "{corr}"')) == 3 and search(f'correlationId = "{corr}"'),
                       timeout=10, what="3 search hits")
    assert sorted(s.workflow_id for s in found) == sorted(ids)
    assert {s.workflow_type for s in found} == {name} and {s.correlation_id for s in found} == {corr}

    completed = search(f'correlationId = "{corr}" AND status IN (COMPLETED)')
    assert [s.workflow_id for s in completed] == [done.workflow_instance_id]
    running = search(f"workflowType = '{name}' AND status = RUNNING")
    assert sorted(s.workflow_id for s in running) == sorted(set(ids) - {done.workflow_instance_id})
    assert len(search(f'correlationId = "{corr}"', size=1)) == 1
    assert search(f'correlationId = "{corr}_none"') == []

    by_corr = sdk.workflows.get_by_correlation_ids(name, [corr], include_completed=True)
    assert sorted(w.workflow_id for w in by_corr[corr]) == sorted(ids)
    running_only = sdk.workflows.get_by_correlation_ids(name, [corr])
    assert len(running_only[corr]) == 2


def test_delete_needs_a_terminal_workflow_to_archive(sdk: Sdk) -> None:
    name, _ = sdk.register_chain(["a"])
    wid = sdk.workflows.start_workflow_by_name(name, {"x": 1})
    err = api_error(lambda: sdk.workflows.delete_workflow(wid))  # ?archiveWorkflow=True on a RUNNING workflow
    assert err.status == 400 and "Cannot archive" in err.message and wid in err.message
    assert sdk.wf(wid).status == "RUNNING"

    sdk.workflows.terminate_workflow(wid)
    sdk.workflows.delete_workflow(wid)
    err = api_error(lambda: sdk.workflows.get_workflow(wid))
    assert err.status == 404 and wid in err.message

    other = sdk.workflows.start_workflow_by_name(name, {"x": 2})
    sdk.workflows.delete_workflow(other, archive_workflow=False)  # without archiving any status goes
    err = api_error(lambda: sdk.workflows.get_workflow(other))
    assert err.status == 404 and other in err.message


def test_verbs_on_executions_started_by_execute_and_by_test_workflow(sdk: Sdk) -> None:
    name, task_type = sdk.register_chain(["a", "b"], retry_count=0)

    # execute: nothing completes "a" within the wait, so the run comes back RUNNING; then the verbs apply
    run = sdk.workflows.execute_workflow(StartWorkflowRequest(name=name, version=1, input={"x": 2}), wait_for_seconds=1)
    assert run.status == "RUNNING" and [(t.reference_task_name, t.status) for t in run.tasks] == [("a", "SCHEDULED")]
    sdk.workflows.pause_workflow(run.workflow_id)
    assert sdk.wf(run.workflow_id).status == "PAUSED"
    sdk.workflows.terminate_workflow(run.workflow_id, reason="executed, then stopped")
    wf = sdk.wf(run.workflow_id)
    assert wf.status == "TERMINATED" and wf.reason_for_incompletion == "executed, then stopped"

    # test_workflow: "b" is mocked as FAILED; a retry keeps the test's private domain, so only a poll in
    # that domain sees the new attempt
    mocks = {"a": [{"status": "COMPLETED", "output": {"ya": 1}}], "b": [{"status": "FAILED", "output": {}}]}
    tested = sdk.workflows.test_workflow(WorkflowTestRequest(name=name, version=1, input={"x": 3}, task_ref_to_mock_output=mocks))
    assert tested.status == "FAILED" and shape(tested) == [("a", "COMPLETED"), ("b", "FAILED")]
    domain = tested.task_to_domain["*"]
    sdk.workflows.retry_workflow(tested.workflow_id)
    wf = sdk.wf(tested.workflow_id)
    assert wf.status == "RUNNING" and shape(wf) == [("a", "COMPLETED"), ("b", "FAILED"), ("b", "SCHEDULED")]
    assert wf.tasks[2].domain == domain
    assert sdk.tasks.poll_task(task_type, worker_id="sdk-verbs").task_id is None  # not in the default domain
    retried = sdk.tasks.poll_task(task_type, worker_id="sdk-verbs", domain=domain)
    assert retried.task_id == wf.tasks[2].task_id
    sdk.finish(retried, output={"yb": 5})
    wf = sdk.wf(tested.workflow_id)
    assert wf.status == "COMPLETED" and wf.output == {"yb": 5}
