from conductor_lab.rpc.gen.model import definitions_pb2 as _definitions_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateWorkflowRequest(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: _definitions_pb2.WorkflowDef
    def __init__(self, workflow: _Optional[_Union[_definitions_pb2.WorkflowDef, _Mapping]] = ...) -> None: ...

class CreateWorkflowResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ValidateWorkflowRequest(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: _definitions_pb2.WorkflowDef
    def __init__(self, workflow: _Optional[_Union[_definitions_pb2.WorkflowDef, _Mapping]] = ...) -> None: ...

class ValidateWorkflowResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UpdateWorkflowsRequest(_message.Message):
    __slots__ = ("defs",)
    DEFS_FIELD_NUMBER: _ClassVar[int]
    defs: _containers.RepeatedCompositeFieldContainer[_definitions_pb2.WorkflowDef]
    def __init__(self, defs: _Optional[_Iterable[_Union[_definitions_pb2.WorkflowDef, _Mapping]]] = ...) -> None: ...

class UpdateWorkflowsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetWorkflowRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetWorkflowResponse(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: _definitions_pb2.WorkflowDef
    def __init__(self, workflow: _Optional[_Union[_definitions_pb2.WorkflowDef, _Mapping]] = ...) -> None: ...

class CreateTasksRequest(_message.Message):
    __slots__ = ("defs",)
    DEFS_FIELD_NUMBER: _ClassVar[int]
    defs: _containers.RepeatedCompositeFieldContainer[_definitions_pb2.TaskDef]
    def __init__(self, defs: _Optional[_Iterable[_Union[_definitions_pb2.TaskDef, _Mapping]]] = ...) -> None: ...

class CreateTasksResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UpdateTaskRequest(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: _definitions_pb2.TaskDef
    def __init__(self, task: _Optional[_Union[_definitions_pb2.TaskDef, _Mapping]] = ...) -> None: ...

class UpdateTaskResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("task_type",)
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    task_type: str
    def __init__(self, task_type: _Optional[str] = ...) -> None: ...

class GetTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: _definitions_pb2.TaskDef
    def __init__(self, task: _Optional[_Union[_definitions_pb2.TaskDef, _Mapping]] = ...) -> None: ...

class DeleteTaskRequest(_message.Message):
    __slots__ = ("task_type",)
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    task_type: str
    def __init__(self, task_type: _Optional[str] = ...) -> None: ...

class DeleteTaskResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
