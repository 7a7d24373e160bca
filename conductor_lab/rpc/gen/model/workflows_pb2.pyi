from google.protobuf import any_pb2 as _any_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from conductor_lab.rpc.gen.model import definitions_pb2 as _definitions_pb2
from conductor_lab.rpc.gen.model import tasks_pb2 as _tasks_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Workflow(_message.Message):
    __slots__ = ("status", "end_time", "workflow_id", "parent_workflow_id", "parent_workflow_task_id", "tasks", "input", "output", "correlation_id", "re_run_from_workflow_id", "reason_for_incompletion", "event", "task_to_domain", "failed_reference_task_names", "workflow_definition", "external_input_payload_storage_path", "external_output_payload_storage_path", "priority", "variables", "last_retried_time", "failed_task_names", "history")
    class WorkflowStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        RUNNING: _ClassVar[Workflow.WorkflowStatus]
        COMPLETED: _ClassVar[Workflow.WorkflowStatus]
        FAILED: _ClassVar[Workflow.WorkflowStatus]
        TIMED_OUT: _ClassVar[Workflow.WorkflowStatus]
        TERMINATED: _ClassVar[Workflow.WorkflowStatus]
        PAUSED: _ClassVar[Workflow.WorkflowStatus]
    RUNNING: Workflow.WorkflowStatus
    COMPLETED: Workflow.WorkflowStatus
    FAILED: Workflow.WorkflowStatus
    TIMED_OUT: Workflow.WorkflowStatus
    TERMINATED: Workflow.WorkflowStatus
    PAUSED: Workflow.WorkflowStatus
    class InputEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    class OutputEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    class TaskToDomainEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class VariablesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    STATUS_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_WORKFLOW_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    RE_RUN_FROM_WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FOR_INCOMPLETION_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    TASK_TO_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    FAILED_REFERENCE_TASK_NAMES_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_DEFINITION_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_INPUT_PAYLOAD_STORAGE_PATH_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_OUTPUT_PAYLOAD_STORAGE_PATH_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    LAST_RETRIED_TIME_FIELD_NUMBER: _ClassVar[int]
    FAILED_TASK_NAMES_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    status: Workflow.WorkflowStatus
    end_time: int
    workflow_id: str
    parent_workflow_id: str
    parent_workflow_task_id: str
    tasks: _containers.RepeatedCompositeFieldContainer[_tasks_pb2.Task]
    input: _containers.MessageMap[str, _struct_pb2.Value]
    output: _containers.MessageMap[str, _struct_pb2.Value]
    correlation_id: str
    re_run_from_workflow_id: str
    reason_for_incompletion: str
    event: str
    task_to_domain: _containers.ScalarMap[str, str]
    failed_reference_task_names: _containers.RepeatedScalarFieldContainer[str]
    workflow_definition: _definitions_pb2.WorkflowDef
    external_input_payload_storage_path: str
    external_output_payload_storage_path: str
    priority: int
    variables: _containers.MessageMap[str, _struct_pb2.Value]
    last_retried_time: int
    failed_task_names: _containers.RepeatedScalarFieldContainer[str]
    history: _containers.RepeatedCompositeFieldContainer[Workflow]
    def __init__(self, status: _Optional[_Union[Workflow.WorkflowStatus, str]] = ..., end_time: _Optional[int] = ..., workflow_id: _Optional[str] = ..., parent_workflow_id: _Optional[str] = ..., parent_workflow_task_id: _Optional[str] = ..., tasks: _Optional[_Iterable[_Union[_tasks_pb2.Task, _Mapping]]] = ..., input: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., output: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., correlation_id: _Optional[str] = ..., re_run_from_workflow_id: _Optional[str] = ..., reason_for_incompletion: _Optional[str] = ..., event: _Optional[str] = ..., task_to_domain: _Optional[_Mapping[str, str]] = ..., failed_reference_task_names: _Optional[_Iterable[str]] = ..., workflow_definition: _Optional[_Union[_definitions_pb2.WorkflowDef, _Mapping]] = ..., external_input_payload_storage_path: _Optional[str] = ..., external_output_payload_storage_path: _Optional[str] = ..., priority: _Optional[int] = ..., variables: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., last_retried_time: _Optional[int] = ..., failed_task_names: _Optional[_Iterable[str]] = ..., history: _Optional[_Iterable[_Union[Workflow, _Mapping]]] = ...) -> None: ...

class WorkflowSummary(_message.Message):
    __slots__ = ("workflow_type", "version", "workflow_id", "correlation_id", "start_time", "update_time", "end_time", "status", "input", "output", "reason_for_incompletion", "execution_time", "event", "failed_reference_task_names", "external_input_payload_storage_path", "external_output_payload_storage_path", "priority", "failed_task_names", "created_by", "task_to_domain", "idempotency_key", "parent_workflow_id", "classifier")
    class TaskToDomainEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    WORKFLOW_TYPE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    REASON_FOR_INCOMPLETION_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_TIME_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    FAILED_REFERENCE_TASK_NAMES_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_INPUT_PAYLOAD_STORAGE_PATH_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_OUTPUT_PAYLOAD_STORAGE_PATH_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    FAILED_TASK_NAMES_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    TASK_TO_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    PARENT_WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    CLASSIFIER_FIELD_NUMBER: _ClassVar[int]
    workflow_type: str
    version: int
    workflow_id: str
    correlation_id: str
    start_time: str
    update_time: str
    end_time: str
    status: Workflow.WorkflowStatus
    input: str
    output: str
    reason_for_incompletion: str
    execution_time: int
    event: str
    failed_reference_task_names: str
    external_input_payload_storage_path: str
    external_output_payload_storage_path: str
    priority: int
    failed_task_names: _containers.RepeatedScalarFieldContainer[str]
    created_by: str
    task_to_domain: _containers.ScalarMap[str, str]
    idempotency_key: str
    parent_workflow_id: str
    classifier: str
    def __init__(self, workflow_type: _Optional[str] = ..., version: _Optional[int] = ..., workflow_id: _Optional[str] = ..., correlation_id: _Optional[str] = ..., start_time: _Optional[str] = ..., update_time: _Optional[str] = ..., end_time: _Optional[str] = ..., status: _Optional[_Union[Workflow.WorkflowStatus, str]] = ..., input: _Optional[str] = ..., output: _Optional[str] = ..., reason_for_incompletion: _Optional[str] = ..., execution_time: _Optional[int] = ..., event: _Optional[str] = ..., failed_reference_task_names: _Optional[str] = ..., external_input_payload_storage_path: _Optional[str] = ..., external_output_payload_storage_path: _Optional[str] = ..., priority: _Optional[int] = ..., failed_task_names: _Optional[_Iterable[str]] = ..., created_by: _Optional[str] = ..., task_to_domain: _Optional[_Mapping[str, str]] = ..., idempotency_key: _Optional[str] = ..., parent_workflow_id: _Optional[str] = ..., classifier: _Optional[str] = ...) -> None: ...

class StartWorkflowRequest(_message.Message):
    __slots__ = ("name", "version", "correlation_id", "input", "task_to_domain", "workflow_def", "external_input_payload_storage_path", "priority", "created_by")
    class InputEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    class TaskToDomainEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    TASK_TO_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_DEF_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_INPUT_PAYLOAD_STORAGE_PATH_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    correlation_id: str
    input: _containers.MessageMap[str, _struct_pb2.Value]
    task_to_domain: _containers.ScalarMap[str, str]
    workflow_def: _definitions_pb2.WorkflowDef
    external_input_payload_storage_path: str
    priority: int
    created_by: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., correlation_id: _Optional[str] = ..., input: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., task_to_domain: _Optional[_Mapping[str, str]] = ..., workflow_def: _Optional[_Union[_definitions_pb2.WorkflowDef, _Mapping]] = ..., external_input_payload_storage_path: _Optional[str] = ..., priority: _Optional[int] = ..., created_by: _Optional[str] = ...) -> None: ...

class RerunWorkflowRequest(_message.Message):
    __slots__ = ("re_run_from_workflow_id", "workflow_input", "re_run_from_task_id", "task_input", "correlation_id")
    class WorkflowInputEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    class TaskInputEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    RE_RUN_FROM_WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_INPUT_FIELD_NUMBER: _ClassVar[int]
    RE_RUN_FROM_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_INPUT_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    re_run_from_workflow_id: str
    workflow_input: _containers.MessageMap[str, _struct_pb2.Value]
    re_run_from_task_id: str
    task_input: _containers.MessageMap[str, _struct_pb2.Value]
    correlation_id: str
    def __init__(self, re_run_from_workflow_id: _Optional[str] = ..., workflow_input: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., re_run_from_task_id: _Optional[str] = ..., task_input: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., correlation_id: _Optional[str] = ...) -> None: ...

class SkipTaskRequest(_message.Message):
    __slots__ = ("task_input", "task_output", "task_input_message", "task_output_message")
    class TaskInputEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    class TaskOutputEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    TASK_INPUT_FIELD_NUMBER: _ClassVar[int]
    TASK_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    TASK_INPUT_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TASK_OUTPUT_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    task_input: _containers.MessageMap[str, _struct_pb2.Value]
    task_output: _containers.MessageMap[str, _struct_pb2.Value]
    task_input_message: _any_pb2.Any
    task_output_message: _any_pb2.Any
    def __init__(self, task_input: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., task_output: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., task_input_message: _Optional[_Union[_any_pb2.Any, _Mapping]] = ..., task_output_message: _Optional[_Union[_any_pb2.Any, _Mapping]] = ...) -> None: ...

class UpgradeWorkflowRequest(_message.Message):
    __slots__ = ("name", "version", "workflow_input", "task_output")
    class WorkflowInputEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    class TaskOutputEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_INPUT_FIELD_NUMBER: _ClassVar[int]
    TASK_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    workflow_input: _containers.MessageMap[str, _struct_pb2.Value]
    task_output: _containers.MessageMap[str, _struct_pb2.Value]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., workflow_input: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., task_output: _Optional[_Mapping[str, _struct_pb2.Value]] = ...) -> None: ...
