"""One error hierarchy for the engine, the server and the client side.

::

    ConductorLabError              500  (anything unexpected)
    ├── NotFound                   404  unknown workflow / task / definition
    ├── Conflict                   409  duplicate definition, verb not allowed in this state
    ├── InvalidInput               400  bad argument, definition validation (``validationErrors``)
    ├── IllegalState               500  conductor-oss answers IllegalStateException with 500
    ├── MalformedBody              500  unparsable JSON / wrong JSON types (Jackson errors are 500 upstream)
    └── PayloadTooLarge            413

The server maps these to Conductor's error JSON in exactly one place
(``conductor_lab.server.handlers``). Status codes mirror conductor-oss, including the cases where it
answers 500 (see ``docs/compat.md`` and the contract reference, section 1.4).
"""

from __future__ import annotations

from typing import Any


class ConductorLabError(Exception):
    """Base class; ``status`` is the HTTP status the server answers with."""

    status: int = 500
    retryable: bool = False

    def __init__(self, message: str, *, validation_errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.validation_errors = validation_errors

    def to_json(self, instance: str | None = None) -> dict[str, Any]:
        """Conductor's ErrorResponse shape (nulls omitted)."""
        body: dict[str, Any] = {"status": self.status, "message": self.message}
        if instance and not self.validation_errors:
            body["instance"] = instance
        body["retryable"] = self.retryable
        if self.validation_errors:
            body["validationErrors"] = self.validation_errors
        return body


class NotFound(ConductorLabError):
    """A workflow, task or definition does not exist."""

    status = 404


class Conflict(ConductorLabError):
    """The request conflicts with stored state (duplicate, wrong state for a verb)."""

    status = 409


class InvalidInput(ConductorLabError):
    """A bad argument or an invalid definition."""

    status = 400


class IllegalState(ConductorLabError):
    """An operation not allowed in the current state that conductor-oss reports as 500."""

    status = 500


class MalformedBody(ConductorLabError):
    """The request body is not valid JSON or has wrong JSON types (500, as conductor-oss)."""

    status = 500


class PayloadTooLarge(ConductorLabError):
    """A request or payload above the configured size limit."""

    status = 413


def validation_error(path: str, message: str, invalid_value: Any = None) -> InvalidInput:
    """A 400 in conductor-oss's constraint-violation shape."""
    item: dict[str, Any] = {"path": path, "message": message}
    if isinstance(invalid_value, str | int | float | bool):
        item["invalidValue"] = invalid_value
    return InvalidInput("Validation failed, check below errors for detail.", validation_errors=[item])
