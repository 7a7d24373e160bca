"""Errors raised by the HTTP client.

    ApiError            the server answered with a non-2xx status

Transport failures (connection refused, timeouts) are not wrapped: they surface as
``httpx.TransportError`` subclasses, so callers can tell "the server said no" from
"the server could not be reached".
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A non-2xx answer. ``body`` is the parsed JSON error body, or the raw text when it is not JSON."""

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.body = body

    @property
    def retryable(self) -> bool:
        """The ``retryable`` flag of a Conductor error body (false when absent)."""
        return isinstance(self.body, dict) and bool(self.body.get("retryable", False))
