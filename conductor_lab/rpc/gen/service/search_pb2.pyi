from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Request(_message.Message):
    __slots__ = ("start", "size", "sort", "free_text", "query")
    START_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SORT_FIELD_NUMBER: _ClassVar[int]
    FREE_TEXT_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    start: int
    size: int
    sort: str
    free_text: str
    query: str
    def __init__(self, start: _Optional[int] = ..., size: _Optional[int] = ..., sort: _Optional[str] = ..., free_text: _Optional[str] = ..., query: _Optional[str] = ...) -> None: ...
