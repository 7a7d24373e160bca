"""HUMAN: IN_PROGRESS until completed or failed through the task-update APIs (contract 4.15)."""

from __future__ import annotations

from conductor_lab.engine.tasks.base import TaskType


class Human(TaskType):
    TYPE = "HUMAN"


TASK = Human()
