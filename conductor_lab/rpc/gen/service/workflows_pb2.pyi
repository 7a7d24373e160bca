from conductor_lab.rpc.gen.model import workflows_pb2 as _workflows_pb2
from conductor_lab.rpc.gen.service import search_pb2 as _search_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StartWorkflowResponse(_message.Message):
    __slots__ = ("workflow_id",)
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    def __init__(self, workflow_id: _Optional[str] = ...) -> None: ...

class GetWorkflowsRequest(_message.Message):
    __slots__ = ("name", "correlation_id", "include_closed", "include_tasks")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_CLOSED_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TASKS_FIELD_NUMBER: _ClassVar[int]
    name: str
    correlation_id: _containers.RepeatedScalarFieldContainer[str]
    include_closed: bool
    include_tasks: bool
    def __init__(self, name: _Optional[str] = ..., correlation_id: _Optional[_Iterable[str]] = ..., include_closed: _Optional[bool] = ..., include_tasks: _Optional[bool] = ...) -> None: ...

class GetWorkflowsResponse(_message.Message):
    __slots__ = ("workflows_by_id",)
    class Workflows(_message.Message):
        __slots__ = ("workflows",)
        WORKFLOWS_FIELD_NUMBER: _ClassVar[int]
        workflows: _containers.RepeatedCompositeFieldContainer[_workflows_pb2.Workflow]
        def __init__(self, workflows: _Optional[_Iterable[_Union[_workflows_pb2.Workflow, _Mapping]]] = ...) -> None: ...
    class WorkflowsByIdEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: GetWorkflowsResponse.Workflows
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[GetWorkflowsResponse.Workflows, _Mapping]] = ...) -> None: ...
    WORKFLOWS_BY_ID_FIELD_NUMBER: _ClassVar[int]
    workflows_by_id: _containers.MessageMap[str, GetWorkflowsResponse.Workflows]
    def __init__(self, workflows_by_id: _Optional[_Mapping[str, GetWorkflowsResponse.Workflows]] = ...) -> None: ...

class GetWorkflowStatusRequest(_message.Message):
    __slots__ = ("workflow_id", "include_tasks")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TASKS_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    include_tasks: bool
    def __init__(self, workflow_id: _Optional[str] = ..., include_tasks: _Optional[bool] = ...) -> None: ...

class GetWorkflowStatusResponse(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: _workflows_pb2.Workflow
    def __init__(self, workflow: _Optional[_Union[_workflows_pb2.Workflow, _Mapping]] = ...) -> None: ...

class RemoveWorkflowRequest(_message.Message):
    __slots__ = ("workflod_id", "archive_workflow")
    WORKFLOD_ID_FIELD_NUMBER: _ClassVar[int]
    ARCHIVE_WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflod_id: str
    archive_workflow: bool
    def __init__(self, workflod_id: _Optional[str] = ..., archive_workflow: _Optional[bool] = ...) -> None: ...

class RemoveWorkflowResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetRunningWorkflowsRequest(_message.Message):
    __slots__ = ("name", "version", "start_time", "end_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    start_time: int
    end_time: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., start_time: _Optional[int] = ..., end_time: _Optional[int] = ...) -> None: ...

class GetRunningWorkflowsResponse(_message.Message):
    __slots__ = ("workflow_ids",)
    WORKFLOW_IDS_FIELD_NUMBER: _ClassVar[int]
    workflow_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, workflow_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DecideWorkflowRequest(_message.Message):
    __slots__ = ("workflow_id",)
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    def __init__(self, workflow_id: _Optional[str] = ...) -> None: ...

class DecideWorkflowResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PauseWorkflowRequest(_message.Message):
    __slots__ = ("workflow_id",)
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    def __init__(self, workflow_id: _Optional[str] = ...) -> None: ...

class PauseWorkflowResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResumeWorkflowRequest(_message.Message):
    __slots__ = ("workflow_id",)
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    def __init__(self, workflow_id: _Optional[str] = ...) -> None: ...

class ResumeWorkflowResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SkipTaskRequest(_message.Message):
    __slots__ = ("workflow_id", "task_reference_name", "request")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_REFERENCE_NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    task_reference_name: str
    request: _workflows_pb2.SkipTaskRequest
    def __init__(self, workflow_id: _Optional[str] = ..., task_reference_name: _Optional[str] = ..., request: _Optional[_Union[_workflows_pb2.SkipTaskRequest, _Mapping]] = ...) -> None: ...

class SkipTaskResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RerunWorkflowResponse(_message.Message):
    __slots__ = ("workflow_id",)
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    def __init__(self, workflow_id: _Optional[str] = ...) -> None: ...

class RestartWorkflowRequest(_message.Message):
    __slots__ = ("workflow_id", "use_latest_definitions")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    USE_LATEST_DEFINITIONS_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    use_latest_definitions: bool
    def __init__(self, workflow_id: _Optional[str] = ..., use_latest_definitions: _Optional[bool] = ...) -> None: ...

class RestartWorkflowResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RetryWorkflowRequest(_message.Message):
    __slots__ = ("workflow_id", "resume_subworkflow_tasks")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    RESUME_SUBWORKFLOW_TASKS_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    resume_subworkflow_tasks: bool
    def __init__(self, workflow_id: _Optional[str] = ..., resume_subworkflow_tasks: _Optional[bool] = ...) -> None: ...

class RetryWorkflowResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResetWorkflowCallbacksRequest(_message.Message):
    __slots__ = ("workflow_id",)
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    def __init__(self, workflow_id: _Optional[str] = ...) -> None: ...

class ResetWorkflowCallbacksResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TerminateWorkflowRequest(_message.Message):
    __slots__ = ("workflow_id", "reason")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    reason: str
    def __init__(self, workflow_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class TerminateWorkflowResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WorkflowSummarySearchResult(_message.Message):
    __slots__ = ("total_hits", "results")
    TOTAL_HITS_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    total_hits: int
    results: _containers.RepeatedCompositeFieldContainer[_workflows_pb2.WorkflowSummary]
    def __init__(self, total_hits: _Optional[int] = ..., results: _Optional[_Iterable[_Union[_workflows_pb2.WorkflowSummary, _Mapping]]] = ...) -> None: ...

class WorkflowSearchResult(_message.Message):
    __slots__ = ("total_hits", "results")
    TOTAL_HITS_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    total_hits: int
    results: _containers.RepeatedCompositeFieldContainer[_workflows_pb2.Workflow]
    def __init__(self, total_hits: _Optional[int] = ..., results: _Optional[_Iterable[_Union[_workflows_pb2.Workflow, _Mapping]]] = ...) -> None: ...
