from google.protobuf import any_pb2 as _any_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventHandler(_message.Message):
    __slots__ = ("name", "event", "condition", "actions", "active", "evaluator_type")
    class UpdateWorkflowVariables(_message.Message):
        __slots__ = ("workflow_id", "variables", "append_array")
        class VariablesEntry(_message.Message):
            __slots__ = ("key", "value")
            KEY_FIELD_NUMBER: _ClassVar[int]
            VALUE_FIELD_NUMBER: _ClassVar[int]
            key: str
            value: _struct_pb2.Value
            def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
        WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
        VARIABLES_FIELD_NUMBER: _ClassVar[int]
        APPEND_ARRAY_FIELD_NUMBER: _ClassVar[int]
        workflow_id: str
        variables: _containers.MessageMap[str, _struct_pb2.Value]
        append_array: bool
        def __init__(self, workflow_id: _Optional[str] = ..., variables: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., append_array: _Optional[bool] = ...) -> None: ...
    class TerminateWorkflow(_message.Message):
        __slots__ = ("workflow_id", "termination_reason")
        WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
        TERMINATION_REASON_FIELD_NUMBER: _ClassVar[int]
        workflow_id: str
        termination_reason: str
        def __init__(self, workflow_id: _Optional[str] = ..., termination_reason: _Optional[str] = ...) -> None: ...
    class StartAgent(_message.Message):
        __slots__ = ("name", "version", "prompt", "session_id", "media", "context", "idempotency_key")
        class ContextEntry(_message.Message):
            __slots__ = ("key", "value")
            KEY_FIELD_NUMBER: _ClassVar[int]
            VALUE_FIELD_NUMBER: _ClassVar[int]
            key: str
            value: _struct_pb2.Value
            def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
        NAME_FIELD_NUMBER: _ClassVar[int]
        VERSION_FIELD_NUMBER: _ClassVar[int]
        PROMPT_FIELD_NUMBER: _ClassVar[int]
        SESSION_ID_FIELD_NUMBER: _ClassVar[int]
        MEDIA_FIELD_NUMBER: _ClassVar[int]
        CONTEXT_FIELD_NUMBER: _ClassVar[int]
        IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
        name: str
        version: int
        prompt: str
        session_id: str
        media: _containers.RepeatedScalarFieldContainer[str]
        context: _containers.MessageMap[str, _struct_pb2.Value]
        idempotency_key: str
        def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., prompt: _Optional[str] = ..., session_id: _Optional[str] = ..., media: _Optional[_Iterable[str]] = ..., context: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...
    class StartWorkflow(_message.Message):
        __slots__ = ("name", "version", "correlation_id", "input", "input_message", "task_to_domain")
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
        INPUT_MESSAGE_FIELD_NUMBER: _ClassVar[int]
        TASK_TO_DOMAIN_FIELD_NUMBER: _ClassVar[int]
        name: str
        version: int
        correlation_id: str
        input: _containers.MessageMap[str, _struct_pb2.Value]
        input_message: _any_pb2.Any
        task_to_domain: _containers.ScalarMap[str, str]
        def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., correlation_id: _Optional[str] = ..., input: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., input_message: _Optional[_Union[_any_pb2.Any, _Mapping]] = ..., task_to_domain: _Optional[_Mapping[str, str]] = ...) -> None: ...
    class TaskDetails(_message.Message):
        __slots__ = ("workflow_id", "task_ref_name", "output", "output_message", "task_id", "reason_for_incompletion")
        class OutputEntry(_message.Message):
            __slots__ = ("key", "value")
            KEY_FIELD_NUMBER: _ClassVar[int]
            VALUE_FIELD_NUMBER: _ClassVar[int]
            key: str
            value: _struct_pb2.Value
            def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
        WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
        TASK_REF_NAME_FIELD_NUMBER: _ClassVar[int]
        OUTPUT_FIELD_NUMBER: _ClassVar[int]
        OUTPUT_MESSAGE_FIELD_NUMBER: _ClassVar[int]
        TASK_ID_FIELD_NUMBER: _ClassVar[int]
        REASON_FOR_INCOMPLETION_FIELD_NUMBER: _ClassVar[int]
        workflow_id: str
        task_ref_name: str
        output: _containers.MessageMap[str, _struct_pb2.Value]
        output_message: _any_pb2.Any
        task_id: str
        reason_for_incompletion: str
        def __init__(self, workflow_id: _Optional[str] = ..., task_ref_name: _Optional[str] = ..., output: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., output_message: _Optional[_Union[_any_pb2.Any, _Mapping]] = ..., task_id: _Optional[str] = ..., reason_for_incompletion: _Optional[str] = ...) -> None: ...
    class Action(_message.Message):
        __slots__ = ("action", "start_workflow", "complete_task", "fail_task", "expand_inline_json", "terminate_workflow", "update_workflow_variables", "start_agent")
        class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
            __slots__ = ()
            START_WORKFLOW: _ClassVar[EventHandler.Action.Type]
            COMPLETE_TASK: _ClassVar[EventHandler.Action.Type]
            FAIL_TASK: _ClassVar[EventHandler.Action.Type]
            TERMINATE_WORKFLOW: _ClassVar[EventHandler.Action.Type]
            UPDATE_WORKFLOW_VARIABLES: _ClassVar[EventHandler.Action.Type]
            START_AGENT: _ClassVar[EventHandler.Action.Type]
        START_WORKFLOW: EventHandler.Action.Type
        COMPLETE_TASK: EventHandler.Action.Type
        FAIL_TASK: EventHandler.Action.Type
        TERMINATE_WORKFLOW: EventHandler.Action.Type
        UPDATE_WORKFLOW_VARIABLES: EventHandler.Action.Type
        START_AGENT: EventHandler.Action.Type
        ACTION_FIELD_NUMBER: _ClassVar[int]
        START_WORKFLOW_FIELD_NUMBER: _ClassVar[int]
        COMPLETE_TASK_FIELD_NUMBER: _ClassVar[int]
        FAIL_TASK_FIELD_NUMBER: _ClassVar[int]
        EXPAND_INLINE_JSON_FIELD_NUMBER: _ClassVar[int]
        TERMINATE_WORKFLOW_FIELD_NUMBER: _ClassVar[int]
        UPDATE_WORKFLOW_VARIABLES_FIELD_NUMBER: _ClassVar[int]
        START_AGENT_FIELD_NUMBER: _ClassVar[int]
        action: EventHandler.Action.Type
        start_workflow: EventHandler.StartWorkflow
        complete_task: EventHandler.TaskDetails
        fail_task: EventHandler.TaskDetails
        expand_inline_json: bool
        terminate_workflow: EventHandler.TerminateWorkflow
        update_workflow_variables: EventHandler.UpdateWorkflowVariables
        start_agent: EventHandler.StartAgent
        def __init__(self, action: _Optional[_Union[EventHandler.Action.Type, str]] = ..., start_workflow: _Optional[_Union[EventHandler.StartWorkflow, _Mapping]] = ..., complete_task: _Optional[_Union[EventHandler.TaskDetails, _Mapping]] = ..., fail_task: _Optional[_Union[EventHandler.TaskDetails, _Mapping]] = ..., expand_inline_json: _Optional[bool] = ..., terminate_workflow: _Optional[_Union[EventHandler.TerminateWorkflow, _Mapping]] = ..., update_workflow_variables: _Optional[_Union[EventHandler.UpdateWorkflowVariables, _Mapping]] = ..., start_agent: _Optional[_Union[EventHandler.StartAgent, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    EVALUATOR_TYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    event: str
    condition: str
    actions: _containers.RepeatedCompositeFieldContainer[EventHandler.Action]
    active: bool
    evaluator_type: str
    def __init__(self, name: _Optional[str] = ..., event: _Optional[str] = ..., condition: _Optional[str] = ..., actions: _Optional[_Iterable[_Union[EventHandler.Action, _Mapping]]] = ..., active: _Optional[bool] = ..., evaluator_type: _Optional[str] = ...) -> None: ...

class EventExecution(_message.Message):
    __slots__ = ("id", "message_id", "name", "event", "created", "status", "action", "output")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        IN_PROGRESS: _ClassVar[EventExecution.Status]
        COMPLETED: _ClassVar[EventExecution.Status]
        FAILED: _ClassVar[EventExecution.Status]
        SKIPPED: _ClassVar[EventExecution.Status]
    IN_PROGRESS: EventExecution.Status
    COMPLETED: EventExecution.Status
    FAILED: EventExecution.Status
    SKIPPED: EventExecution.Status
    class OutputEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    id: str
    message_id: str
    name: str
    event: str
    created: int
    status: EventExecution.Status
    action: EventHandler.Action.Type
    output: _containers.MessageMap[str, _struct_pb2.Value]
    def __init__(self, id: _Optional[str] = ..., message_id: _Optional[str] = ..., name: _Optional[str] = ..., event: _Optional[str] = ..., created: _Optional[int] = ..., status: _Optional[_Union[EventExecution.Status, str]] = ..., action: _Optional[_Union[EventHandler.Action.Type, str]] = ..., output: _Optional[_Mapping[str, _struct_pb2.Value]] = ...) -> None: ...
