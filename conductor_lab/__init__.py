"""conductor_lab: a Conductor-compatible workflow engine that lives in a notebook.

    import conductor_lab as cl

    lab = cl.Lab()                                  # embedded engine + server (or cl.Lab("http://..."))
    lab.register(workflow={...})                    # Conductor JSON, JSON files or builder workflows
    run = lab.start("etl", {"day": "2026-11-27"})
    run.wait().tasks()                              # a pandas DataFrame

The builder's names are imported at once (standard library only); ``Lab``, ``Run`` and the rest
on first use (PEP 562), so ``import conductor_lab`` stays cheap and the server never pulls in
pandas or the widget stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# the builder is standard-library Python only: imported at once, its names are this package's
from conductor_lab.builder import *  # noqa: F403
from conductor_lab.builder import __all__ as _BUILDER_NAMES

if TYPE_CHECKING:  # for type checkers: the same names, re-exported
    from conductor_lab.lab import Blueprint as Blueprint
    from conductor_lab.lab import CellWorker as CellWorker
    from conductor_lab.lab import Lab as Lab
    from conductor_lab.lab import Registration as Registration
    from conductor_lab.lab import RunSet as RunSet
    from conductor_lab.run import LabError as LabError
    from conductor_lab.run import LabValidationError as LabValidationError
    from conductor_lab.run import Run as Run
    from conductor_lab.run import TaskView as TaskView
    from conductor_lab.run import Timeline as Timeline
    from conductor_lab.run import Why as Why

#: public name -> the module that defines it (imported on first use: pandas, widgets)
_LAZY: dict[str, str] = {
    name: module
    for module, names in (
        ("conductor_lab.lab", ("Blueprint", "CellWorker", "Lab", "Registration", "RunSet")),
        ("conductor_lab.run", ("LabError", "LabValidationError", "Run", "TaskView", "Timeline", "Why")),
    )
    for name in names
}

__all__ = [*_LAZY, *_BUILDER_NAMES]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'conductor_lab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
