from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CacheConfig(_message.Message):
    __slots__ = ("key", "ttl_in_second")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TTL_IN_SECOND_FIELD_NUMBER: _ClassVar[int]
    key: str
    ttl_in_second: int
    def __init__(self, key: _Optional[str] = ..., ttl_in_second: _Optional[int] = ...) -> None: ...

class RateLimitConfig(_message.Message):
    __slots__ = ("rate_limit_key", "concurrent_exec_limit", "policy")
    class RateLimitPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        QUEUE: _ClassVar[RateLimitConfig.RateLimitPolicy]
        REJECT: _ClassVar[RateLimitConfig.RateLimitPolicy]
    QUEUE: RateLimitConfig.RateLimitPolicy
    REJECT: RateLimitConfig.RateLimitPolicy
    RATE_LIMIT_KEY_FIELD_NUMBER: _ClassVar[int]
    CONCURRENT_EXEC_LIMIT_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    rate_limit_key: str
    concurrent_exec_limit: int
    policy: RateLimitConfig.RateLimitPolicy
    def __init__(self, rate_limit_key: _Optional[str] = ..., concurrent_exec_limit: _Optional[int] = ..., policy: _Optional[_Union[RateLimitConfig.RateLimitPolicy, str]] = ...) -> None: ...

class SchemaDef(_message.Message):
    __slots__ = ("name", "version", "type")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        JSON: _ClassVar[SchemaDef.Type]
        AVRO: _ClassVar[SchemaDef.Type]
        PROTOBUF: _ClassVar[SchemaDef.Type]
    JSON: SchemaDef.Type
    AVRO: SchemaDef.Type
    PROTOBUF: SchemaDef.Type
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    type: SchemaDef.Type
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., type: _Optional[_Union[SchemaDef.Type, str]] = ...) -> None: ...

class TaskDef(_message.Message):
    __slots__ = ("name", "description", "retry_count", "timeout_seconds", "input_keys", "output_keys", "timeout_policy", "retry_logic", "retry_delay_seconds", "response_timeout_seconds", "concurrent_exec_limit", "input_template", "rate_limit_per_frequency", "rate_limit_frequency_in_seconds", "isolation_group_id", "execution_name_space", "owner_email", "poll_timeout_seconds", "backoff_scale_factor", "base_type", "total_timeout_seconds", "task_status_listener_enabled", "max_retry_delay_seconds", "backoff_jitter_ms")
    class TimeoutPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        RETRY: _ClassVar[TaskDef.TimeoutPolicy]
        TIME_OUT_WF: _ClassVar[TaskDef.TimeoutPolicy]
        ALERT_ONLY: _ClassVar[TaskDef.TimeoutPolicy]
    RETRY: TaskDef.TimeoutPolicy
    TIME_OUT_WF: TaskDef.TimeoutPolicy
    ALERT_ONLY: TaskDef.TimeoutPolicy
    class RetryLogic(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        FIXED: _ClassVar[TaskDef.RetryLogic]
        EXPONENTIAL_BACKOFF: _ClassVar[TaskDef.RetryLogic]
        LINEAR_BACKOFF: _ClassVar[TaskDef.RetryLogic]
    FIXED: TaskDef.RetryLogic
    EXPONENTIAL_BACKOFF: TaskDef.RetryLogic
    LINEAR_BACKOFF: TaskDef.RetryLogic
    class InputTemplateEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    RETRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    INPUT_KEYS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_KEYS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_POLICY_FIELD_NUMBER: _ClassVar[int]
    RETRY_LOGIC_FIELD_NUMBER: _ClassVar[int]
    RETRY_DELAY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CONCURRENT_EXEC_LIMIT_FIELD_NUMBER: _ClassVar[int]
    INPUT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_PER_FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_FREQUENCY_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_NAME_SPACE_FIELD_NUMBER: _ClassVar[int]
    OWNER_EMAIL_FIELD_NUMBER: _ClassVar[int]
    POLL_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BACKOFF_SCALE_FACTOR_FIELD_NUMBER: _ClassVar[int]
    BASE_TYPE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TASK_STATUS_LISTENER_ENABLED_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRY_DELAY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BACKOFF_JITTER_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    retry_count: int
    timeout_seconds: int
    input_keys: _containers.RepeatedScalarFieldContainer[str]
    output_keys: _containers.RepeatedScalarFieldContainer[str]
    timeout_policy: TaskDef.TimeoutPolicy
    retry_logic: TaskDef.RetryLogic
    retry_delay_seconds: int
    response_timeout_seconds: int
    concurrent_exec_limit: int
    input_template: _containers.MessageMap[str, _struct_pb2.Value]
    rate_limit_per_frequency: int
    rate_limit_frequency_in_seconds: int
    isolation_group_id: str
    execution_name_space: str
    owner_email: str
    poll_timeout_seconds: int
    backoff_scale_factor: int
    base_type: str
    total_timeout_seconds: int
    task_status_listener_enabled: bool
    max_retry_delay_seconds: int
    backoff_jitter_ms: int
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., retry_count: _Optional[int] = ..., timeout_seconds: _Optional[int] = ..., input_keys: _Optional[_Iterable[str]] = ..., output_keys: _Optional[_Iterable[str]] = ..., timeout_policy: _Optional[_Union[TaskDef.TimeoutPolicy, str]] = ..., retry_logic: _Optional[_Union[TaskDef.RetryLogic, str]] = ..., retry_delay_seconds: _Optional[int] = ..., response_timeout_seconds: _Optional[int] = ..., concurrent_exec_limit: _Optional[int] = ..., input_template: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., rate_limit_per_frequency: _Optional[int] = ..., rate_limit_frequency_in_seconds: _Optional[int] = ..., isolation_group_id: _Optional[str] = ..., execution_name_space: _Optional[str] = ..., owner_email: _Optional[str] = ..., poll_timeout_seconds: _Optional[int] = ..., backoff_scale_factor: _Optional[int] = ..., base_type: _Optional[str] = ..., total_timeout_seconds: _Optional[int] = ..., task_status_listener_enabled: _Optional[bool] = ..., max_retry_delay_seconds: _Optional[int] = ..., backoff_jitter_ms: _Optional[int] = ...) -> None: ...

class SubWorkflowParams(_message.Message):
    __slots__ = ("name", "version", "task_to_domain", "workflow_definition")
    class TaskToDomainEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TASK_TO_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_DEFINITION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    task_to_domain: _containers.ScalarMap[str, str]
    workflow_definition: _struct_pb2.Value
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., task_to_domain: _Optional[_Mapping[str, str]] = ..., workflow_definition: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class WorkflowTask(_message.Message):
    __slots__ = ("name", "task_reference_name", "description", "input_parameters", "type", "dynamic_task_name_param", "case_value_param", "case_expression", "decision_cases", "dynamic_fork_tasks_param", "dynamic_fork_tasks_input_param_name", "default_case", "fork_tasks", "start_delay", "sub_workflow_param", "join_on", "sink", "optional", "task_definition", "rate_limited", "default_exclusive_join_task", "script_expression", "async_complete", "loop_condition", "loop_over", "retry_count", "evaluator_type", "expression", "join_status", "cache_config", "permissive", "items", "join_mode", "metadata")
    class JoinMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SYNC: _ClassVar[WorkflowTask.JoinMode]
        ASYNC: _ClassVar[WorkflowTask.JoinMode]
    SYNC: WorkflowTask.JoinMode
    ASYNC: WorkflowTask.JoinMode
    class WorkflowTaskList(_message.Message):
        __slots__ = ("tasks",)
        TASKS_FIELD_NUMBER: _ClassVar[int]
        tasks: _containers.RepeatedCompositeFieldContainer[WorkflowTask]
        def __init__(self, tasks: _Optional[_Iterable[_Union[WorkflowTask, _Mapping]]] = ...) -> None: ...
    class InputParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    class DecisionCasesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: WorkflowTask.WorkflowTaskList
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[WorkflowTask.WorkflowTaskList, _Mapping]] = ...) -> None: ...
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    TASK_REFERENCE_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    INPUT_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DYNAMIC_TASK_NAME_PARAM_FIELD_NUMBER: _ClassVar[int]
    CASE_VALUE_PARAM_FIELD_NUMBER: _ClassVar[int]
    CASE_EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    DECISION_CASES_FIELD_NUMBER: _ClassVar[int]
    DYNAMIC_FORK_TASKS_PARAM_FIELD_NUMBER: _ClassVar[int]
    DYNAMIC_FORK_TASKS_INPUT_PARAM_NAME_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_CASE_FIELD_NUMBER: _ClassVar[int]
    FORK_TASKS_FIELD_NUMBER: _ClassVar[int]
    START_DELAY_FIELD_NUMBER: _ClassVar[int]
    SUB_WORKFLOW_PARAM_FIELD_NUMBER: _ClassVar[int]
    JOIN_ON_FIELD_NUMBER: _ClassVar[int]
    SINK_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_FIELD_NUMBER: _ClassVar[int]
    TASK_DEFINITION_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMITED_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_EXCLUSIVE_JOIN_TASK_FIELD_NUMBER: _ClassVar[int]
    SCRIPT_EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    ASYNC_COMPLETE_FIELD_NUMBER: _ClassVar[int]
    LOOP_CONDITION_FIELD_NUMBER: _ClassVar[int]
    LOOP_OVER_FIELD_NUMBER: _ClassVar[int]
    RETRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    EVALUATOR_TYPE_FIELD_NUMBER: _ClassVar[int]
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    JOIN_STATUS_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONFIG_FIELD_NUMBER: _ClassVar[int]
    PERMISSIVE_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    JOIN_MODE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    name: str
    task_reference_name: str
    description: str
    input_parameters: _containers.MessageMap[str, _struct_pb2.Value]
    type: str
    dynamic_task_name_param: str
    case_value_param: str
    case_expression: str
    decision_cases: _containers.MessageMap[str, WorkflowTask.WorkflowTaskList]
    dynamic_fork_tasks_param: str
    dynamic_fork_tasks_input_param_name: str
    default_case: _containers.RepeatedCompositeFieldContainer[WorkflowTask]
    fork_tasks: _containers.RepeatedCompositeFieldContainer[WorkflowTask.WorkflowTaskList]
    start_delay: int
    sub_workflow_param: SubWorkflowParams
    join_on: _containers.RepeatedScalarFieldContainer[str]
    sink: str
    optional: bool
    task_definition: TaskDef
    rate_limited: bool
    default_exclusive_join_task: _containers.RepeatedScalarFieldContainer[str]
    script_expression: str
    async_complete: bool
    loop_condition: str
    loop_over: _containers.RepeatedCompositeFieldContainer[WorkflowTask]
    retry_count: int
    evaluator_type: str
    expression: str
    join_status: str
    cache_config: CacheConfig
    permissive: bool
    items: str
    join_mode: WorkflowTask.JoinMode
    metadata: _containers.MessageMap[str, _struct_pb2.Value]
    def __init__(self, name: _Optional[str] = ..., task_reference_name: _Optional[str] = ..., description: _Optional[str] = ..., input_parameters: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., type: _Optional[str] = ..., dynamic_task_name_param: _Optional[str] = ..., case_value_param: _Optional[str] = ..., case_expression: _Optional[str] = ..., decision_cases: _Optional[_Mapping[str, WorkflowTask.WorkflowTaskList]] = ..., dynamic_fork_tasks_param: _Optional[str] = ..., dynamic_fork_tasks_input_param_name: _Optional[str] = ..., default_case: _Optional[_Iterable[_Union[WorkflowTask, _Mapping]]] = ..., fork_tasks: _Optional[_Iterable[_Union[WorkflowTask.WorkflowTaskList, _Mapping]]] = ..., start_delay: _Optional[int] = ..., sub_workflow_param: _Optional[_Union[SubWorkflowParams, _Mapping]] = ..., join_on: _Optional[_Iterable[str]] = ..., sink: _Optional[str] = ..., optional: _Optional[bool] = ..., task_definition: _Optional[_Union[TaskDef, _Mapping]] = ..., rate_limited: _Optional[bool] = ..., default_exclusive_join_task: _Optional[_Iterable[str]] = ..., script_expression: _Optional[str] = ..., async_complete: _Optional[bool] = ..., loop_condition: _Optional[str] = ..., loop_over: _Optional[_Iterable[_Union[WorkflowTask, _Mapping]]] = ..., retry_count: _Optional[int] = ..., evaluator_type: _Optional[str] = ..., expression: _Optional[str] = ..., join_status: _Optional[str] = ..., cache_config: _Optional[_Union[CacheConfig, _Mapping]] = ..., permissive: _Optional[bool] = ..., items: _Optional[str] = ..., join_mode: _Optional[_Union[WorkflowTask.JoinMode, str]] = ..., metadata: _Optional[_Mapping[str, _struct_pb2.Value]] = ...) -> None: ...

class WorkflowDef(_message.Message):
    __slots__ = ("name", "description", "version", "tasks", "input_parameters", "output_parameters", "failure_workflow", "schema_version", "restartable", "workflow_status_listener_enabled", "owner_email", "timeout_policy", "timeout_seconds", "variables", "input_template", "failure_workflow_version", "workflow_status_listener_sink", "rate_limit_config", "input_schema", "output_schema", "enforce_schema", "metadata", "cache_config", "masked_fields")
    class TimeoutPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        TIME_OUT_WF: _ClassVar[WorkflowDef.TimeoutPolicy]
        ALERT_ONLY: _ClassVar[WorkflowDef.TimeoutPolicy]
    TIME_OUT_WF: WorkflowDef.TimeoutPolicy
    ALERT_ONLY: WorkflowDef.TimeoutPolicy
    class OutputParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    class VariablesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    class InputTemplateEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    INPUT_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    RESTARTABLE_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_STATUS_LISTENER_ENABLED_FIELD_NUMBER: _ClassVar[int]
    OWNER_EMAIL_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_POLICY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    INPUT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_WORKFLOW_VERSION_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_STATUS_LISTENER_SINK_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_CONFIG_FIELD_NUMBER: _ClassVar[int]
    INPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    ENFORCE_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONFIG_FIELD_NUMBER: _ClassVar[int]
    MASKED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    version: int
    tasks: _containers.RepeatedCompositeFieldContainer[WorkflowTask]
    input_parameters: _containers.RepeatedScalarFieldContainer[str]
    output_parameters: _containers.MessageMap[str, _struct_pb2.Value]
    failure_workflow: str
    schema_version: int
    restartable: bool
    workflow_status_listener_enabled: bool
    owner_email: str
    timeout_policy: WorkflowDef.TimeoutPolicy
    timeout_seconds: int
    variables: _containers.MessageMap[str, _struct_pb2.Value]
    input_template: _containers.MessageMap[str, _struct_pb2.Value]
    failure_workflow_version: int
    workflow_status_listener_sink: str
    rate_limit_config: RateLimitConfig
    input_schema: SchemaDef
    output_schema: SchemaDef
    enforce_schema: bool
    metadata: _containers.MessageMap[str, _struct_pb2.Value]
    cache_config: CacheConfig
    masked_fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., version: _Optional[int] = ..., tasks: _Optional[_Iterable[_Union[WorkflowTask, _Mapping]]] = ..., input_parameters: _Optional[_Iterable[str]] = ..., output_parameters: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., failure_workflow: _Optional[str] = ..., schema_version: _Optional[int] = ..., restartable: _Optional[bool] = ..., workflow_status_listener_enabled: _Optional[bool] = ..., owner_email: _Optional[str] = ..., timeout_policy: _Optional[_Union[WorkflowDef.TimeoutPolicy, str]] = ..., timeout_seconds: _Optional[int] = ..., variables: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., input_template: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., failure_workflow_version: _Optional[int] = ..., workflow_status_listener_sink: _Optional[str] = ..., rate_limit_config: _Optional[_Union[RateLimitConfig, _Mapping]] = ..., input_schema: _Optional[_Union[SchemaDef, _Mapping]] = ..., output_schema: _Optional[_Union[SchemaDef, _Mapping]] = ..., enforce_schema: _Optional[bool] = ..., metadata: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., cache_config: _Optional[_Union[CacheConfig, _Mapping]] = ..., masked_fields: _Optional[_Iterable[str]] = ...) -> None: ...

class WorkflowDefSummary(_message.Message):
    __slots__ = ("name", "version", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    create_time: int
    update_time: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., create_time: _Optional[int] = ..., update_time: _Optional[int] = ...) -> None: ...
