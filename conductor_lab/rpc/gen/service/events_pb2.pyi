from conductor_lab.rpc.gen.model import events_pb2 as _events_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AddEventHandlerRequest(_message.Message):
    __slots__ = ("handler",)
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    handler: _events_pb2.EventHandler
    def __init__(self, handler: _Optional[_Union[_events_pb2.EventHandler, _Mapping]] = ...) -> None: ...

class AddEventHandlerResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UpdateEventHandlerRequest(_message.Message):
    __slots__ = ("handler",)
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    handler: _events_pb2.EventHandler
    def __init__(self, handler: _Optional[_Union[_events_pb2.EventHandler, _Mapping]] = ...) -> None: ...

class UpdateEventHandlerResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RemoveEventHandlerRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RemoveEventHandlerResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetEventHandlersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetEventHandlersForEventRequest(_message.Message):
    __slots__ = ("event", "active_only")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_ONLY_FIELD_NUMBER: _ClassVar[int]
    event: str
    active_only: bool
    def __init__(self, event: _Optional[str] = ..., active_only: _Optional[bool] = ...) -> None: ...
