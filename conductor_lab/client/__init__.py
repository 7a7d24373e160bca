"""HTTP client and worker runner for the Conductor REST API (conductor-oss wire format)."""

from conductor_lab.client.errors import ApiError
from conductor_lab.client.http import TERMINAL_WORKFLOW_STATUSES, ConductorClient
from conductor_lab.client.worker import (
    MissingInputError,
    NonRetryableError,
    RunnerSnapshot,
    TaskInProgress,
    TaskTypeStats,
    Worker,
    WorkerRunner,
)

__all__ = [
    "TERMINAL_WORKFLOW_STATUSES",
    "ApiError",
    "ConductorClient",
    "MissingInputError",
    "NonRetryableError",
    "RunnerSnapshot",
    "TaskInProgress",
    "TaskTypeStats",
    "Worker",
    "WorkerRunner",
]
