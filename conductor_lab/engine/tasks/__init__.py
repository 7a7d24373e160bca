"""Task types: one module per type, each an instance of a ``TaskType`` (``base.py``) in ``REGISTRY``.

Adding a task type means adding a module and one entry to ``_TYPES``: the decider, the executor
and registration (``TaskType.validate``) reach it through ``type_of``. Unknown types are worker
tasks (USER_DEFINED), as in conductor-oss.
"""

from __future__ import annotations

from conductor_lab.engine.tasks import (
    do_while,
    dynamic,
    event,
    exclusive_join,
    fork_join,
    fork_join_dynamic,
    http,
    human,
    inline,
    join,
    json_jq_transform,
    lambda_,
    noop,
    set_variable,
    simple,
    start_workflow,
    sub_workflow,
    switch,
    terminate,
    wait,
)
from conductor_lab.engine.tasks.base import TaskType

_TYPES: tuple[TaskType, ...] = (
    simple.TASK,
    dynamic.TASK,
    switch.SWITCH,
    switch.DECISION,
    fork_join.TASK,
    fork_join_dynamic.TASK,
    join.TASK,
    exclusive_join.TASK,
    do_while.TASK,
    sub_workflow.TASK,
    start_workflow.TASK,
    wait.TASK,
    human.TASK,
    terminate.TASK,
    set_variable.TASK,
    noop.TASK,
    inline.TASK,
    lambda_.TASK,
    json_jq_transform.TASK,
    http.TASK,
    event.TASK,
)

REGISTRY: dict[str, TaskType] = {t.TYPE: t for t in _TYPES}

#: conductor-oss types that need a broker or feature this server does not have: registering a
#: definition that uses one answers 400 naming what is supported
UNSUPPORTED = frozenset({"KAFKA_PUBLISH", "PULL_WORKFLOW_MESSAGES"})


def type_of(task_type: str) -> TaskType:
    """The type for a workflow-task ``type``; unknown types are worker tasks (USER_DEFINED)."""
    return REGISTRY.get(task_type, simple.TASK)


def supported_types() -> list[str]:
    return sorted(REGISTRY)
