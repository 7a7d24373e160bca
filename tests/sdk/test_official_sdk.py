"""The official Python SDK (PyPI ``conductor-python``) against a real conductor_lab server."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from conductor.client.configuration.configuration import Configuration
from conductor.client.http.models.start_workflow_request import StartWorkflowRequest
from conductor.client.http.models.task_def import TaskDef
from conductor.client.http.models.task_result import TaskResult
from conductor.client.http.models.workflow_def import WorkflowDef
from conductor.client.http.models.workflow_task import WorkflowTask
from conductor.client.orkes.orkes_metadata_client import OrkesMetadataClient
from conductor.client.orkes.orkes_task_client import OrkesTaskClient
from conductor.client.orkes.orkes_workflow_client import OrkesWorkflowClient

from tests.conftest import REPO_ROOT, ServerProcess, wait_until

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def cfg(server: ServerProcess) -> Configuration:
    return Configuration(server_api_url=server.api)


def test_sdk_registers_starts_and_task_handler_completes_20_workflows(cfg: Configuration, server: ServerProcess) -> None:
    metadata = OrkesMetadataClient(cfg)
    workflows = OrkesWorkflowClient(cfg)
    for name in ("sdk_double", "sdk_add_one"):
        metadata.register_task_def(TaskDef(name=name, retry_count=0, response_timeout_seconds=30, timeout_seconds=60))
    metadata.register_task_def(
        TaskDef(name="sdk_flaky", retry_count=2, retry_delay_seconds=0, response_timeout_seconds=30, timeout_seconds=60)
    )
    assert metadata.get_task_def("sdk_flaky").retry_count == 2

    wf_name = f"sdk_three_steps_{uuid.uuid4().hex[:8]}"
    wd = WorkflowDef(
        name=wf_name,
        version=1,
        tasks=[
            WorkflowTask(name="sdk_double", task_reference_name="double", input_parameters={"x": "${workflow.input.x}"}),
            WorkflowTask(name="sdk_flaky", task_reference_name="flaky", input_parameters={"y": "${double.output.y}"}),
            WorkflowTask(name="sdk_add_one", task_reference_name="add", input_parameters={"y": "${flaky.output.y}"}),
        ],
        output_parameters={"z": "${add.output.z}", "attempt": "${flaky.output.attempt}"},
        timeout_seconds=120,
    )
    metadata.register_workflow_def(wd, overwrite=True)
    assert metadata.get_workflow_def(wf_name).name == wf_name

    ids = {
        workflows.start_workflow(StartWorkflowRequest(name=wf_name, version=1, input={"x": i}, correlation_id=f"c{i}")): i
        for i in range(20)
    }
    assert len(ids) == 20
    assert all(workflows.get_workflow(wid, include_tasks=False).status == "RUNNING" for wid in ids)

    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.sdk.sdk_workers", server.api], cwd=REPO_ROOT, stdin=subprocess.PIPE
    )
    try:
        def all_done() -> bool:
            return all(workflows.get_workflow(wid, include_tasks=False).status == "COMPLETED" for wid in ids)

        wait_until(all_done, timeout=120, interval=0.2, what="20 SDK workflows COMPLETED")
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    for wid, x in ids.items():
        wf = workflows.get_workflow(wid, include_tasks=True)
        assert wf.status == "COMPLETED"
        assert wf.output == {"z": 2 * x + 1, "attempt": 1}
        assert wf.correlation_id == f"c{x}"
        refs = [(t.reference_task_name, t.status) for t in wf.tasks]
        # the failing first attempt of "flaky" stays in the list, then its retry
        assert refs == [("double", "COMPLETED"), ("flaky", "FAILED"), ("flaky", "COMPLETED"), ("add", "COMPLETED")]
        failed, retried = wf.tasks[1], wf.tasks[2]
        assert retried.retry_count == 1 and retried.retried_task_id == failed.task_id
        assert "flaky failure" in (failed.reason_for_incompletion or "")
        assert [t.seq for t in wf.tasks] == [1, 2, 3, 4]


def test_sdk_batch_poll_and_update(cfg: Configuration) -> None:
    metadata = OrkesMetadataClient(cfg)
    workflows = OrkesWorkflowClient(cfg)
    tasks = OrkesTaskClient(cfg)
    task_type = f"sdk_manual_{uuid.uuid4().hex[:8]}"
    wf_name = f"sdk_manual_wf_{uuid.uuid4().hex[:8]}"
    metadata.register_workflow_def(
        WorkflowDef(
            name=wf_name,
            version=1,
            tasks=[WorkflowTask(name=task_type, task_reference_name="only", input_parameters={"a": "${workflow.input.a}"})],
        ),
        overwrite=True,
    )
    wid = workflows.start_workflow(StartWorkflowRequest(name=wf_name, version=1, input={"a": 1}))
    assert tasks.get_queue_size_for_task(task_type) == 1
    polled = tasks.batch_poll_tasks(task_type, worker_id="w1", count=5, timeout_in_millisecond=500)
    assert len(polled) == 1
    t = polled[0]
    assert t.status == "IN_PROGRESS" and t.poll_count == 1 and t.input_data == {"a": 1} and t.worker_id == "w1"
    assert tasks.get_queue_size_for_task(task_type) == 0
    assert tasks.batch_poll_tasks(task_type, worker_id="w1", count=5, timeout_in_millisecond=100) == []
    result = TaskResult(workflow_instance_id=wid, task_id=t.task_id, status="COMPLETED", output_data={"done": True})
    assert tasks.update_task(result) == t.task_id
    assert tasks.get_task(t.task_id).status == "COMPLETED"
    wf = workflows.get_workflow(wid)
    assert wf.status == "COMPLETED" and wf.output == {"done": True}
