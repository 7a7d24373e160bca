from conductor_lab.rpc.gen.model import tasks_pb2 as _tasks_pb2
from conductor_lab.rpc.gen.service import search_pb2 as _search_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PollRequest(_message.Message):
    __slots__ = ("task_type", "worker_id", "domain")
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    task_type: str
    worker_id: str
    domain: str
    def __init__(self, task_type: _Optional[str] = ..., worker_id: _Optional[str] = ..., domain: _Optional[str] = ...) -> None: ...

class PollResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: _tasks_pb2.Task
    def __init__(self, task: _Optional[_Union[_tasks_pb2.Task, _Mapping]] = ...) -> None: ...

class BatchPollRequest(_message.Message):
    __slots__ = ("task_type", "worker_id", "domain", "count", "timeout")
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    task_type: str
    worker_id: str
    domain: str
    count: int
    timeout: int
    def __init__(self, task_type: _Optional[str] = ..., worker_id: _Optional[str] = ..., domain: _Optional[str] = ..., count: _Optional[int] = ..., timeout: _Optional[int] = ...) -> None: ...

class UpdateTaskRequest(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _tasks_pb2.TaskResult
    def __init__(self, result: _Optional[_Union[_tasks_pb2.TaskResult, _Mapping]] = ...) -> None: ...

class UpdateTaskResponse(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class AddLogRequest(_message.Message):
    __slots__ = ("task_id", "log")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    log: str
    def __init__(self, task_id: _Optional[str] = ..., log: _Optional[str] = ...) -> None: ...

class AddLogResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTaskLogsRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class GetTaskLogsResponse(_message.Message):
    __slots__ = ("logs",)
    LOGS_FIELD_NUMBER: _ClassVar[int]
    logs: _containers.RepeatedCompositeFieldContainer[_tasks_pb2.TaskExecLog]
    def __init__(self, logs: _Optional[_Iterable[_Union[_tasks_pb2.TaskExecLog, _Mapping]]] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class GetTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: _tasks_pb2.Task
    def __init__(self, task: _Optional[_Union[_tasks_pb2.Task, _Mapping]] = ...) -> None: ...

class QueueSizesRequest(_message.Message):
    __slots__ = ("task_types",)
    TASK_TYPES_FIELD_NUMBER: _ClassVar[int]
    task_types: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, task_types: _Optional[_Iterable[str]] = ...) -> None: ...

class QueueSizesResponse(_message.Message):
    __slots__ = ("queue_for_task",)
    class QueueForTaskEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    QUEUE_FOR_TASK_FIELD_NUMBER: _ClassVar[int]
    queue_for_task: _containers.ScalarMap[str, int]
    def __init__(self, queue_for_task: _Optional[_Mapping[str, int]] = ...) -> None: ...

class QueueInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class QueueInfoResponse(_message.Message):
    __slots__ = ("queues",)
    class QueuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    queues: _containers.ScalarMap[str, int]
    def __init__(self, queues: _Optional[_Mapping[str, int]] = ...) -> None: ...

class QueueAllInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class QueueAllInfoResponse(_message.Message):
    __slots__ = ("queues",)
    class ShardInfo(_message.Message):
        __slots__ = ("size", "uacked")
        SIZE_FIELD_NUMBER: _ClassVar[int]
        UACKED_FIELD_NUMBER: _ClassVar[int]
        size: int
        uacked: int
        def __init__(self, size: _Optional[int] = ..., uacked: _Optional[int] = ...) -> None: ...
    class QueueInfo(_message.Message):
        __slots__ = ("shards",)
        class ShardsEntry(_message.Message):
            __slots__ = ("key", "value")
            KEY_FIELD_NUMBER: _ClassVar[int]
            VALUE_FIELD_NUMBER: _ClassVar[int]
            key: str
            value: QueueAllInfoResponse.ShardInfo
            def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[QueueAllInfoResponse.ShardInfo, _Mapping]] = ...) -> None: ...
        SHARDS_FIELD_NUMBER: _ClassVar[int]
        shards: _containers.MessageMap[str, QueueAllInfoResponse.ShardInfo]
        def __init__(self, shards: _Optional[_Mapping[str, QueueAllInfoResponse.ShardInfo]] = ...) -> None: ...
    class QueuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: QueueAllInfoResponse.QueueInfo
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[QueueAllInfoResponse.QueueInfo, _Mapping]] = ...) -> None: ...
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    queues: _containers.MessageMap[str, QueueAllInfoResponse.QueueInfo]
    def __init__(self, queues: _Optional[_Mapping[str, QueueAllInfoResponse.QueueInfo]] = ...) -> None: ...

class TaskSummarySearchResult(_message.Message):
    __slots__ = ("total_hits", "results")
    TOTAL_HITS_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    total_hits: int
    results: _containers.RepeatedCompositeFieldContainer[_tasks_pb2.TaskSummary]
    def __init__(self, total_hits: _Optional[int] = ..., results: _Optional[_Iterable[_Union[_tasks_pb2.TaskSummary, _Mapping]]] = ...) -> None: ...

class TaskSearchResult(_message.Message):
    __slots__ = ("total_hits", "results")
    TOTAL_HITS_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    total_hits: int
    results: _containers.RepeatedCompositeFieldContainer[_tasks_pb2.Task]
    def __init__(self, total_hits: _Optional[int] = ..., results: _Optional[_Iterable[_Union[_tasks_pb2.Task, _Mapping]]] = ...) -> None: ...
