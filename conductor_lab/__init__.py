"""conductor_lab: a Conductor-compatible workflow engine that lives in a notebook.

    import conductor_lab as cl

    lab = cl.Lab()                                  # embedded engine + server (or cl.Lab("http://..."))
    lab.register(workflow={...})                    # Conductor JSON, JSON files or builder workflows
    run = lab.start("etl", {"day": "2026-11-27"})
    run.wait().tasks()                              # a pandas DataFrame

The names below are imported on first use (PEP 562), so ``import conductor_lab`` stays cheap and
the server never pulls in pandas or the widget stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conductor_lab.builder import (
        BuilderError,
        Seq,
        Task,
        Workflow,
        dynamic,
        event,
        fork,
        fork_dynamic,
        http,
        human,
        inline,
        jq,
        loop,
        noop,
        ref_input,
        ref_output,
        set_variable,
        simple,
        start_workflow,
        sub_workflow,
        switch,
        task,
        terminate,
        wait,
        wf_input,
        wf_var,
        workflow,
    )
    from conductor_lab.lab import Blueprint, CellWorker, Lab, Registration, RunSet
    from conductor_lab.run import LabError, LabValidationError, Run, TaskView, Timeline, Why

__all__ = [
    "Blueprint",
    "BuilderError",
    "CellWorker",
    "Lab",
    "LabError",
    "LabValidationError",
    "Registration",
    "Run",
    "RunSet",
    "Seq",
    "Task",
    "TaskView",
    "Timeline",
    "Why",
    "Workflow",
    "dynamic",
    "event",
    "fork",
    "fork_dynamic",
    "http",
    "human",
    "inline",
    "jq",
    "loop",
    "noop",
    "ref_input",
    "ref_output",
    "set_variable",
    "simple",
    "start_workflow",
    "sub_workflow",
    "switch",
    "task",
    "terminate",
    "wait",
    "wf_input",
    "wf_var",
    "workflow",
]

#: public name -> the module that defines it
_LAZY: dict[str, str] = {
    name: module
    for module, names in (
        ("conductor_lab.lab", ("Blueprint", "CellWorker", "Lab", "Registration", "RunSet")),
        ("conductor_lab.run", ("LabError", "LabValidationError", "Run", "TaskView", "Timeline", "Why")),
        (
            "conductor_lab.builder",
            (
                "BuilderError",
                "Seq",
                "Task",
                "Workflow",
                "dynamic",
                "event",
                "fork",
                "fork_dynamic",
                "http",
                "human",
                "inline",
                "jq",
                "loop",
                "noop",
                "ref_input",
                "ref_output",
                "set_variable",
                "simple",
                "start_workflow",
                "sub_workflow",
                "switch",
                "task",
                "terminate",
                "wait",
                "wf_input",
                "wf_var",
                "workflow",
            ),
        ),
    )
    for name in names
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'conductor_lab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
