"""The official Python SDK's synchronous calls against a real server: ``WorkflowClient.execute_workflow``,
``WorkflowExecutor.signal`` (signal/sync) and ``WorkflowClient.test_workflow`` (mocks)."""

from __future__ import annotations

import uuid

import pytest
from conductor.client.configuration.configuration import Configuration
from conductor.client.http.models.start_workflow_request import StartWorkflowRequest
from conductor.client.http.models.workflow_def import WorkflowDef
from conductor.client.http.models.workflow_task import WorkflowTask
from conductor.client.http.models.workflow_test_request import WorkflowTestRequest
from conductor.client.orkes.orkes_metadata_client import OrkesMetadataClient
from conductor.client.orkes.orkes_workflow_client import OrkesWorkflowClient
from conductor.client.workflow.executor.workflow_executor import WorkflowExecutor

from tests.conftest import ServerProcess

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def cfg(server: ServerProcess) -> Configuration:
    return Configuration(server_api_url=server.api)


def name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def test_execute_workflow_signal_and_test_workflow(cfg: Configuration) -> None:
    metadata, workflows = OrkesMetadataClient(cfg), OrkesWorkflowClient(cfg)

    # execute: a workflow of system tasks completes within the request
    calc = name("sdk_exec")
    inline = WorkflowTask(name="calc", task_reference_name="calc", type="INLINE",
                          input_parameters={"evaluatorType": "graaljs", "expression": "$.x * 10",
                                            "x": "${workflow.input.x}"})  # fmt: skip
    wd = WorkflowDef(name=calc, version=1, tasks=[inline], output_parameters={"y": "${calc.output.result}"})
    metadata.register_workflow_def(wd, overwrite=True)
    request = StartWorkflowRequest(name=calc, version=1, input={"x": 4})
    run = workflows.execute_workflow(request, request_id="sdk-req-1", wait_for_seconds=10)
    assert run.status == "COMPLETED" and run.output == {"y": 40}
    assert run.request_id == "sdk-req-1" and run.input == {"x": 4}
    assert [t.reference_task_name for t in run.tasks] == ["calc"]
    assert workflows.get_workflow(run.workflow_id, include_tasks=False).status == "COMPLETED"

    # execute stops at a WAIT; the SDK's signal (signal/sync) completes it and answers the next state
    waiting = name("sdk_wait")
    hold = WorkflowTask(name="hold", task_reference_name="hold", type="WAIT")
    metadata.register_workflow_def(
        WorkflowDef(name=waiting, version=1, tasks=[hold], output_parameters={"said": "${hold.output.said}"}),
        overwrite=True,
    )
    run = workflows.execute_workflow(
        StartWorkflowRequest(name=waiting, version=1, input={}), request_id="sdk-req-2", wait_for_seconds=10
    )
    assert run.status == "RUNNING" and [t.status for t in run.tasks] == ["IN_PROGRESS"]
    signalled = WorkflowExecutor(cfg).signal(run.workflow_id, "COMPLETED", {"said": "go"})
    assert signalled.response_type == "TARGET_WORKFLOW" and signalled.workflow_id == run.workflow_id
    status = getattr(signalled.status, "value", signalled.status)  # the SDK reads it as a TaskStatus enum
    assert status == "COMPLETED" and signalled.output == {"said": "go"}

    # test_workflow: worker tasks answered by mocks
    mocked = name("sdk_mocked")
    worker = WorkflowTask(name=name("sdk_worker"), task_reference_name="work", type="SIMPLE",
                          input_parameters={})  # fmt: skip
    metadata.register_workflow_def(
        WorkflowDef(name=mocked, version=1, tasks=[worker], output_parameters={"v": "${work.output.v}"}),
        overwrite=True,
    )
    # mocks as plain dicts: the SDK's TaskMock class serialises its private fields (``_output``, ...)
    mock = {"status": "COMPLETED", "output": {"v": 7}}
    request = WorkflowTestRequest(name=mocked, version=1, input={}, task_ref_to_mock_output={"work": [mock]})
    wf = workflows.test_workflow(request)
    assert wf.status == "COMPLETED" and wf.output == {"v": 7}
    assert wf.tasks[0].output_data == {"v": 7} and wf.tasks[0].domain == wf.task_to_domain["*"]
