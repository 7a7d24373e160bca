"""The project's errors as gRPC status codes (one table), and the wrappers that apply it.

conductor-oss answers every caught error with INTERNAL plus a stack trace in the trailers; here a
client gets the code that says what went wrong and the project's one-line message, never a trace
(an unexpected exception is logged on the server and answered ``INTERNAL: internal error``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import NoReturn, TypeVar

import grpc
import grpc.aio

from conductor_lab.errors import (
    ConductorLabError,
    Conflict,
    IllegalState,
    InvalidInput,
    MalformedBody,
    NotFound,
    PayloadTooLarge,
)

log = logging.getLogger("conductor_lab.rpc")

#: Most specific class first. REST answers MalformedBody and IllegalState with 500, as
#: conductor-oss does; over gRPC the caller learns it was its argument or the state.
STATUS_CODES: tuple[tuple[type[ConductorLabError], grpc.StatusCode], ...] = (
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (MalformedBody, grpc.StatusCode.INVALID_ARGUMENT),
    (Conflict, grpc.StatusCode.FAILED_PRECONDITION),
    (IllegalState, grpc.StatusCode.FAILED_PRECONDITION),
    (PayloadTooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (ConductorLabError, grpc.StatusCode.INTERNAL),
)

INTERNAL_MESSAGE = "internal error (details in the server log)"


class Unimplemented(ConductorLabError):
    """An RPC of the contract that conductor_lab does not serve (UNIMPLEMENTED)."""


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The code and message a client gets for ``exc``."""
    if isinstance(exc, Unimplemented):
        return grpc.StatusCode.UNIMPLEMENTED, exc.message
    if isinstance(exc, ConductorLabError):
        for cls, code in STATUS_CODES:
            if isinstance(exc, cls):
                return code, _message(exc)
    return grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE


def _message(exc: ConductorLabError) -> str:
    """The message, with conductor-oss's ``validationErrors`` spelled out (``path: message``)."""
    details = "; ".join(
        f"{v.get('path')}: {v.get('message')}" for v in exc.validation_errors or () if isinstance(v, dict)
    )
    return f"{exc.message} ({details})" if details else exc.message


async def abort(context: grpc.aio.ServicerContext, exc: BaseException) -> NoReturn:
    code, message = status_of(exc)
    if code == grpc.StatusCode.INTERNAL:
        log.error("gRPC call failed", exc_info=exc)
    await context.abort(code, message)
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover


S = TypeVar("S")
Req = TypeVar("Req")
Resp = TypeVar("Resp")


def unary(
    fn: Callable[[S, Req, grpc.aio.ServicerContext], Awaitable[Resp]],
) -> Callable[[S, Req, grpc.aio.ServicerContext], Awaitable[Resp]]:
    """A unary RPC whose errors go through :func:`status_of`."""

    @functools.wraps(fn)
    async def call(self: S, request: Req, context: grpc.aio.ServicerContext) -> Resp:
        try:
            return await fn(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await abort(context, exc)

    return call


def streaming(
    fn: Callable[[S, Req, grpc.aio.ServicerContext], AsyncIterator[Resp]],
) -> Callable[[S, Req, grpc.aio.ServicerContext], AsyncIterator[Resp]]:
    """A server-streaming RPC whose errors go through :func:`status_of`."""

    @functools.wraps(fn)
    async def call(self: S, request: Req, context: grpc.aio.ServicerContext) -> AsyncIterator[Resp]:
        try:
            async for item in fn(self, request, context):
                yield item
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await abort(context, exc)

    return call


def optional(s: str) -> str | None:
    """A proto3 string: empty means absent (conductor-oss's ``GRPCHelper.optional``)."""
    return s or None
