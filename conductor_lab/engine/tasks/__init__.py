"""Task types: one module per type, looked up in an explicit registry.

A task-type module provides:

``TYPE``
    the workflow-task ``type`` string it handles.
``KIND``
    ``"worker"`` (queued for external workers), ``"sync"`` (executed by the engine inside the
    decider loop) or ``"async"`` (executed by the engine off the decider loop; later issues).
``BUILT_IN``
    True for operators that are never retried (SWITCH, FORK, JOIN, DO_WHILE, ...).
``schedule(node, ctx) -> list[Task]``
    the mapper half: the runtime task records for one definition node.
``execute(task, view) -> Outcome``
    for ``sync``/``async`` kinds: how the scheduled task advances.
``after_branch(node) -> "next" | "stop" | "self"`` (containers only)
    where the flow goes when the last task of one of the node's nested lists finishes.

Adding a task type means adding a module and one line to ``REGISTRY``; the decider and the
executor do not change.
"""

from __future__ import annotations

from types import ModuleType

from conductor_lab.engine.tasks import noop, set_variable, simple

REGISTRY: dict[str, ModuleType] = {
    simple.TYPE: simple,
    noop.TYPE: noop,
    set_variable.TYPE: set_variable,
}

#: conductor-oss system task types that this engine does not execute yet. Definitions using them
#: register (so blueprints validate); scheduling one fails the workflow with a clear reason.
NOT_YET_SUPPORTED = frozenset(
    {
        "DECISION",
        "SWITCH",
        "FORK_JOIN",
        "FORK_JOIN_DYNAMIC",
        "FORK",
        "JOIN",
        "EXCLUSIVE_JOIN",
        "DO_WHILE",
        "DYNAMIC",
        "SUB_WORKFLOW",
        "START_WORKFLOW",
        "EVENT",
        "WAIT",
        "HUMAN",
        "TERMINATE",
        "INLINE",
        "LAMBDA",
        "JSON_JQ_TRANSFORM",
        "HTTP",
        "KAFKA_PUBLISH",
    }
)


def kind_of(task_type: str) -> ModuleType:
    """The module for a workflow-task ``type``; unknown types are worker tasks (USER_DEFINED)."""
    return REGISTRY.get(task_type, simple)

