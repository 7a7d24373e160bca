from google.protobuf import any_pb2 as _any_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from conductor_lab.rpc.gen.model import definitions_pb2 as _definitions_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExecutionMetadata(_message.Message):
    __slots__ = ("server_send_time", "client_receive_time", "execution_start_time", "execution_end_time", "client_send_time", "poll_network_latency", "update_network_latency", "additional_context")
    class AdditionalContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    SERVER_SEND_TIME_FIELD_NUMBER: _ClassVar[int]
    CLIENT_RECEIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_START_TIME_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_END_TIME_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SEND_TIME_FIELD_NUMBER: _ClassVar[int]
    POLL_NETWORK_LATENCY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_NETWORK_LATENCY_FIELD_NUMBER: _ClassVar[int]
    ADDITIONAL_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    server_send_time: int
    client_receive_time: int
    execution_start_time: int
    execution_end_time: int
    client_send_time: int
    poll_network_latency: int
    update_network_latency: int
    additional_context: _containers.MessageMap[str, _struct_pb2.Value]
    def __init__(self, server_send_time: _Optional[int] = ..., client_receive_time: _Optional[int] = ..., execution_start_time: _Optional[int] = ..., execution_end_time: _Optional[int] = ..., client_send_time: _Optional[int] = ..., poll_network_latency: _Optional[int] = ..., update_network_latency: _Optional[int] = ..., additional_context: _Optional[_Mapping[str, _struct_pb2.Value]] = ...) -> None: ...

class TaskExecLog(_message.Message):
    __slots__ = ("log", "task_id", "created_time")
    LOG_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_TIME_FIELD_NUMBER: _ClassVar[int]
    log: str
    task_id: str
    created_time: int
    def __init__(self, log: _Optional[str] = ..., task_id: _Optional[str] = ..., created_time: _Optional[int] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("task_type", "status", "input_data", "reference_task_name", "retry_count", "seq", "correlation_id", "poll_count", "task_def_name", "scheduled_time", "start_time", "end_time", "update_time", "start_delay_in_seconds", "retried_task_id", "retried", "executed", "callback_from_worker", "response_timeout_seconds", "workflow_instance_id", "workflow_type", "task_id", "reason_for_incompletion", "callback_after_seconds", "worker_id", "output_data", "workflow_task", "domain", "input_message", "output_message", "rate_limit_per_frequency", "rate_limit_frequency_in_seconds", "external_input_payload_storage_path", "external_output_payload_storage_path", "workflow_priority", "execution_name_space", "isolation_group_id", "iteration", "sub_workflow_id", "subworkflow_changed", "first_start_time", "execution_metadata", "parent_task_id", "runtime_metadata")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        IN_PROGRESS: _ClassVar[Task.Status]
        CANCELED: _ClassVar[Task.Status]
        FAILED: _ClassVar[Task.Status]
        FAILED_WITH_TERMINAL_ERROR: _ClassVar[Task.Status]
        COMPLETED: _ClassVar[Task.Status]
        COMPLETED_WITH_ERRORS: _ClassVar[Task.Status]
        SCHEDULED: _ClassVar[Task.Status]
        TIMED_OUT: _ClassVar[Task.Status]
        SKIPPED: _ClassVar[Task.Status]
    IN_PROGRESS: Task.Status
    CANCELED: Task.Status
    FAILED: Task.Status
    FAILED_WITH_TERMINAL_ERROR: Task.Status
    COMPLETED: Task.Status
    COMPLETED_WITH_ERRORS: Task.Status
    SCHEDULED: Task.Status
    TIMED_OUT: Task.Status
    SKIPPED: Task.Status
    class InputDataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    class OutputDataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    class RuntimeMetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    INPUT_DATA_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_TASK_NAME_FIELD_NUMBER: _ClassVar[int]
    RETRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    POLL_COUNT_FIELD_NUMBER: _ClassVar[int]
    TASK_DEF_NAME_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_DELAY_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RETRIED_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    RETRIED_FIELD_NUMBER: _ClassVar[int]
    EXECUTED_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_FROM_WORKER_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_TYPE_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FOR_INCOMPLETION_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DATA_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_TASK_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    INPUT_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_PER_FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_FREQUENCY_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_INPUT_PAYLOAD_STORAGE_PATH_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_OUTPUT_PAYLOAD_STORAGE_PATH_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_PRIORITY_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_NAME_SPACE_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    ITERATION_FIELD_NUMBER: _ClassVar[int]
    SUB_WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    SUBWORKFLOW_CHANGED_FIELD_NUMBER: _ClassVar[int]
    FIRST_START_TIME_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_METADATA_FIELD_NUMBER: _ClassVar[int]
    PARENT_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_METADATA_FIELD_NUMBER: _ClassVar[int]
    task_type: str
    status: Task.Status
    input_data: _containers.MessageMap[str, _struct_pb2.Value]
    reference_task_name: str
    retry_count: int
    seq: int
    correlation_id: str
    poll_count: int
    task_def_name: str
    scheduled_time: int
    start_time: int
    end_time: int
    update_time: int
    start_delay_in_seconds: int
    retried_task_id: str
    retried: bool
    executed: bool
    callback_from_worker: bool
    response_timeout_seconds: int
    workflow_instance_id: str
    workflow_type: str
    task_id: str
    reason_for_incompletion: str
    callback_after_seconds: int
    worker_id: str
    output_data: _containers.MessageMap[str, _struct_pb2.Value]
    workflow_task: _definitions_pb2.WorkflowTask
    domain: str
    input_message: _any_pb2.Any
    output_message: _any_pb2.Any
    rate_limit_per_frequency: int
    rate_limit_frequency_in_seconds: int
    external_input_payload_storage_path: str
    external_output_payload_storage_path: str
    workflow_priority: int
    execution_name_space: str
    isolation_group_id: str
    iteration: int
    sub_workflow_id: str
    subworkflow_changed: bool
    first_start_time: int
    execution_metadata: ExecutionMetadata
    parent_task_id: str
    runtime_metadata: _containers.ScalarMap[str, str]
    def __init__(self, task_type: _Optional[str] = ..., status: _Optional[_Union[Task.Status, str]] = ..., input_data: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., reference_task_name: _Optional[str] = ..., retry_count: _Optional[int] = ..., seq: _Optional[int] = ..., correlation_id: _Optional[str] = ..., poll_count: _Optional[int] = ..., task_def_name: _Optional[str] = ..., scheduled_time: _Optional[int] = ..., start_time: _Optional[int] = ..., end_time: _Optional[int] = ..., update_time: _Optional[int] = ..., start_delay_in_seconds: _Optional[int] = ..., retried_task_id: _Optional[str] = ..., retried: _Optional[bool] = ..., executed: _Optional[bool] = ..., callback_from_worker: _Optional[bool] = ..., response_timeout_seconds: _Optional[int] = ..., workflow_instance_id: _Optional[str] = ..., workflow_type: _Optional[str] = ..., task_id: _Optional[str] = ..., reason_for_incompletion: _Optional[str] = ..., callback_after_seconds: _Optional[int] = ..., worker_id: _Optional[str] = ..., output_data: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., workflow_task: _Optional[_Union[_definitions_pb2.WorkflowTask, _Mapping]] = ..., domain: _Optional[str] = ..., input_message: _Optional[_Union[_any_pb2.Any, _Mapping]] = ..., output_message: _Optional[_Union[_any_pb2.Any, _Mapping]] = ..., rate_limit_per_frequency: _Optional[int] = ..., rate_limit_frequency_in_seconds: _Optional[int] = ..., external_input_payload_storage_path: _Optional[str] = ..., external_output_payload_storage_path: _Optional[str] = ..., workflow_priority: _Optional[int] = ..., execution_name_space: _Optional[str] = ..., isolation_group_id: _Optional[str] = ..., iteration: _Optional[int] = ..., sub_workflow_id: _Optional[str] = ..., subworkflow_changed: _Optional[bool] = ..., first_start_time: _Optional[int] = ..., execution_metadata: _Optional[_Union[ExecutionMetadata, _Mapping]] = ..., parent_task_id: _Optional[str] = ..., runtime_metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class TaskResult(_message.Message):
    __slots__ = ("workflow_instance_id", "task_id", "reason_for_incompletion", "callback_after_seconds", "worker_id", "status", "output_data", "output_message", "execution_metadata", "logs", "external_output_payload_storage_path", "sub_workflow_id", "extend_lease", "supports_cancellation")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        IN_PROGRESS: _ClassVar[TaskResult.Status]
        FAILED: _ClassVar[TaskResult.Status]
        FAILED_WITH_TERMINAL_ERROR: _ClassVar[TaskResult.Status]
        COMPLETED: _ClassVar[TaskResult.Status]
        CANCELED: _ClassVar[TaskResult.Status]
    IN_PROGRESS: TaskResult.Status
    FAILED: TaskResult.Status
    FAILED_WITH_TERMINAL_ERROR: TaskResult.Status
    COMPLETED: TaskResult.Status
    CANCELED: TaskResult.Status
    class OutputDataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    WORKFLOW_INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FOR_INCOMPLETION_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DATA_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_METADATA_FIELD_NUMBER: _ClassVar[int]
    LOGS_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_OUTPUT_PAYLOAD_STORAGE_PATH_FIELD_NUMBER: _ClassVar[int]
    SUB_WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    EXTEND_LEASE_FIELD_NUMBER: _ClassVar[int]
    SUPPORTS_CANCELLATION_FIELD_NUMBER: _ClassVar[int]
    workflow_instance_id: str
    task_id: str
    reason_for_incompletion: str
    callback_after_seconds: int
    worker_id: str
    status: TaskResult.Status
    output_data: _containers.MessageMap[str, _struct_pb2.Value]
    output_message: _any_pb2.Any
    execution_metadata: ExecutionMetadata
    logs: _containers.RepeatedCompositeFieldContainer[TaskExecLog]
    external_output_payload_storage_path: str
    sub_workflow_id: str
    extend_lease: bool
    supports_cancellation: bool
    def __init__(self, workflow_instance_id: _Optional[str] = ..., task_id: _Optional[str] = ..., reason_for_incompletion: _Optional[str] = ..., callback_after_seconds: _Optional[int] = ..., worker_id: _Optional[str] = ..., status: _Optional[_Union[TaskResult.Status, str]] = ..., output_data: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., output_message: _Optional[_Union[_any_pb2.Any, _Mapping]] = ..., execution_metadata: _Optional[_Union[ExecutionMetadata, _Mapping]] = ..., logs: _Optional[_Iterable[_Union[TaskExecLog, _Mapping]]] = ..., external_output_payload_storage_path: _Optional[str] = ..., sub_workflow_id: _Optional[str] = ..., extend_lease: _Optional[bool] = ..., supports_cancellation: _Optional[bool] = ...) -> None: ...

class TaskSummary(_message.Message):
    __slots__ = ("workflow_id", "workflow_type", "correlation_id", "scheduled_time", "start_time", "update_time", "end_time", "status", "reason_for_incompletion", "execution_time", "queue_wait_time", "task_def_name", "task_type", "input", "output", "task_id", "external_input_payload_storage_path", "external_output_payload_storage_path", "workflow_priority", "domain")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_TYPE_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FOR_INCOMPLETION_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_TIME_FIELD_NUMBER: _ClassVar[int]
    QUEUE_WAIT_TIME_FIELD_NUMBER: _ClassVar[int]
    TASK_DEF_NAME_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_INPUT_PAYLOAD_STORAGE_PATH_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_OUTPUT_PAYLOAD_STORAGE_PATH_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_PRIORITY_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    workflow_type: str
    correlation_id: str
    scheduled_time: str
    start_time: str
    update_time: str
    end_time: str
    status: Task.Status
    reason_for_incompletion: str
    execution_time: int
    queue_wait_time: int
    task_def_name: str
    task_type: str
    input: str
    output: str
    task_id: str
    external_input_payload_storage_path: str
    external_output_payload_storage_path: str
    workflow_priority: int
    domain: str
    def __init__(self, workflow_id: _Optional[str] = ..., workflow_type: _Optional[str] = ..., correlation_id: _Optional[str] = ..., scheduled_time: _Optional[str] = ..., start_time: _Optional[str] = ..., update_time: _Optional[str] = ..., end_time: _Optional[str] = ..., status: _Optional[_Union[Task.Status, str]] = ..., reason_for_incompletion: _Optional[str] = ..., execution_time: _Optional[int] = ..., queue_wait_time: _Optional[int] = ..., task_def_name: _Optional[str] = ..., task_type: _Optional[str] = ..., input: _Optional[str] = ..., output: _Optional[str] = ..., task_id: _Optional[str] = ..., external_input_payload_storage_path: _Optional[str] = ..., external_output_payload_storage_path: _Optional[str] = ..., workflow_priority: _Optional[int] = ..., domain: _Optional[str] = ...) -> None: ...

class PollData(_message.Message):
    __slots__ = ("queue_name", "domain", "worker_id", "last_poll_time")
    QUEUE_NAME_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_POLL_TIME_FIELD_NUMBER: _ClassVar[int]
    queue_name: str
    domain: str
    worker_id: str
    last_poll_time: int
    def __init__(self, queue_name: _Optional[str] = ..., domain: _Optional[str] = ..., worker_id: _Optional[str] = ..., last_poll_time: _Optional[int] = ...) -> None: ...

class DynamicForkJoinTask(_message.Message):
    __slots__ = ("task_name", "workflow_name", "reference_name", "input", "type")
    class InputEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    TASK_NAME_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_NAME_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_NAME_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    task_name: str
    workflow_name: str
    reference_name: str
    input: _containers.MessageMap[str, _struct_pb2.Value]
    type: str
    def __init__(self, task_name: _Optional[str] = ..., workflow_name: _Optional[str] = ..., reference_name: _Optional[str] = ..., input: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., type: _Optional[str] = ...) -> None: ...

class DynamicForkJoinTaskList(_message.Message):
    __slots__ = ("dynamic_tasks",)
    DYNAMIC_TASKS_FIELD_NUMBER: _ClassVar[int]
    dynamic_tasks: _containers.RepeatedCompositeFieldContainer[DynamicForkJoinTask]
    def __init__(self, dynamic_tasks: _Optional[_Iterable[_Union[DynamicForkJoinTask, _Mapping]]] = ...) -> None: ...

class StateChangeEvent(_message.Message):
    __slots__ = ("type", "payload")
    class PayloadEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    type: str
    payload: _containers.MessageMap[str, _struct_pb2.Value]
    def __init__(self, type: _Optional[str] = ..., payload: _Optional[_Mapping[str, _struct_pb2.Value]] = ...) -> None: ...
