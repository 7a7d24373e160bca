"""What every handler shares: operation declarations, parsing, replies and the one error mapping.

An operation is declared once, on the handler method, with :func:`api`::

    @api("Get a workflow definition", query=[Param("version", "int")], returns=[ok_json("WorkflowDef")])
    def get(self, name: str) -> None:
        self.reply_json(self.executor.get_workflow_def(name, self.q["version"]))

The same declaration drives query parsing (``self.q``), body parsing (``self.body()``) and the
OpenAPI document (:mod:`conductor_lab.server.openapi`), so the documentation cannot drift from
what the server does. Routes are :class:`Route` templates (``/api/tasks/{taskId}``) that compile to
Tornado patterns; path segments arrive percent-decoded.

Errors are mapped in exactly one place, :meth:`BaseHandler.write_error`, to conductor-oss's error
JSON (``{"status", "message", "instance", "retryable"}``; contract section 1.4).
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import orjson
import tornado.web
from tornado import httputil

from conductor_lab.errors import ConductorLabError, MalformedBody, NotFound, PayloadTooLarge

log = logging.getLogger("conductor_lab.server")

JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain;charset=UTF-8"
HTTP_METHODS = ("get", "post", "put", "delete", "patch", "head", "options")

ParamKind = Literal["bool", "int", "long", "str", "str[]"]
BodyKind = Literal["object", "array", "any", "text"]

_INT_RANGES = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_INT_RE = re.compile(r"[+-]?\d+")
_TRUE = frozenset({"true", "on", "yes", "1"})
_FALSE = frozenset({"false", "off", "no", "0"})
DISCARD_LIMIT_FACTOR = 8  # bodies up to 8x the limit are read and dropped before the 413
_JAVA_TYPE = {"bool": "boolean", "int": "int", "long": "long", "str": "String", "str[]": "List"}


# ------------------------------------------------------------------------------------------------
# Declarations


@dataclass(frozen=True, slots=True)
class Param:
    """A query parameter: its wire name, type, default and whether it is required."""

    name: str
    kind: ParamKind = "str"
    default: Any = None
    required: bool = False
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Body:
    """A request body: ``object``/``array``/``any`` JSON, or ``text`` taken verbatim."""

    kind: BodyKind
    schema: str  # Conductor type name, for the documentation ("WorkflowDef", "TaskDef")
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    """One documented success response: status and content (``json``, ``text`` or none)."""

    status: int
    content: Literal["json", "text", "none"] = "none"
    schema: str | None = None
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Op:
    """Everything known about one (path, method) operation."""

    summary: str
    query: tuple[Param, ...] = ()
    body: Body | None = None
    returns: tuple[Reply, ...] = ()
    doc: str = ""


def ok_json(schema: str, doc: str = "") -> Reply:
    return Reply(200, "json", schema, doc)


def ok_text(doc: str) -> Reply:
    return Reply(200, "text", "string", doc)


OK_EMPTY = Reply(200, "none", None, "empty body")
NO_CONTENT = Reply(204, "none", None, "no content")

F = TypeVar("F", bound=Callable[..., Any])


def api(
    summary: str,
    *,
    query: Sequence[Param] = (),
    body: Body | None = None,
    returns: Sequence[Reply] = (OK_EMPTY,),
    doc: str = "",
) -> Callable[[F], F]:
    """Declare a handler method as an API operation (see the module docstring)."""
    op = Op(summary, tuple(query), body, tuple(returns), doc)

    def mark(fn: F) -> F:
        fn.__api_op__ = op  # type: ignore[attr-defined]
        return fn

    return mark


def operations(handler: type[tornado.web.RequestHandler]) -> dict[str, Op]:
    """The declared operations of a handler class, by lower-case HTTP method."""
    ops: dict[str, Op] = {}
    for method in HTTP_METHODS:
        op = getattr(getattr(handler, method, None), "__api_op__", None)
        if isinstance(op, Op):
            ops[method] = op
    return ops


# ------------------------------------------------------------------------------------------------
# Routes

_SEGMENT = re.compile(r"\{(\w+)(?::(int))?\}")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass(frozen=True)
class PathParam:
    name: str  # wire name, as documented ("taskId")
    arg: str  # the handler method's keyword argument ("task_id")
    kind: Literal["str", "int"]


@dataclass(frozen=True)
class Route:
    """``template`` uses OpenAPI syntax; ``{version:int}`` marks an integer segment."""

    template: str
    handler: type[BaseHandler]
    params: tuple[PathParam, ...] = field(init=False)
    path: str = field(init=False)  # the template without type markers (OpenAPI key)
    pattern: str = field(init=False)  # Tornado regex; named groups are the method's kwargs

    def __post_init__(self) -> None:
        params = tuple(
            PathParam(m.group(1), _snake(m.group(1)), "int" if m.group(2) else "str")
            for m in _SEGMENT.finditer(self.template)
        )
        pattern, pos = "", 0
        for m in _SEGMENT.finditer(self.template):
            pattern += re.escape(self.template[pos : m.start()]) + f"(?P<{_snake(m.group(1))}>[^/]+)"
            pos = m.end()
        pattern += re.escape(self.template[pos:]) + "$"
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "path", _SEGMENT.sub(r"{\1}", self.template))
        object.__setattr__(self, "pattern", pattern)

    def sample(self) -> str:
        """A concrete path this route should match (each parameter replaced by a value)."""
        return _SEGMENT.sub(lambda m: "7" if m.group(2) else "x", self.template)


# ------------------------------------------------------------------------------------------------
# Context shared by every handler


@dataclass(frozen=True)
class ServerContext:
    executor: Any  # conductor_lab.engine.executor.Executor (kept loose: the server only calls it)
    instance: str
    version: str
    max_body_bytes: int
    token: str | None = None
    openapi: dict[str, Any] = field(default_factory=dict)
    open_paths: frozenset[str] = frozenset({"/health", "/api/health", "/api-docs", "/api/token"})


# ------------------------------------------------------------------------------------------------
# Parsing helpers (conductor-oss / Spring binding rules, contract section 1.4)


def _type_mismatch(name: str, kind: str, value: str) -> MalformedBody:
    return MalformedBody(
        f"Failed to convert value of type 'java.lang.String' to required type '{_JAVA_TYPE.get(kind, kind)}'; "
        f"For input string: \"{value}\" (parameter '{name}')"
    )


def convert(name: str, kind: str, value: str) -> Any:
    """One query/path value to its declared type; a bad value is a 500 (MethodArgumentTypeMismatch)."""
    if kind in _INT_RANGES:
        lo, hi = _INT_RANGES[kind]
        if not _INT_RE.fullmatch(value) or not lo <= int(value) <= hi:
            raise _type_mismatch(name, kind, value)
        return int(value)
    if kind == "bool":
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise _type_mismatch(name, kind, value)
    return value


def parse_query(params: Sequence[Param], arguments: dict[str, list[bytes]]) -> dict[str, Any]:
    """Declared query parameters -> values. ``None`` (literal) and empty values count as absent."""
    out: dict[str, Any] = {}
    for p in params:
        raw = [v.decode("utf-8", "replace") for v in arguments.get(p.name, ())]
        if p.kind == "str[]":  # repeatable, and Spring also splits comma-separated values
            values = [s.strip() for v in raw for s in v.split(",")]
            values = [v for v in values if v and v != "None"]
            out[p.name] = values if values else list(p.default or [])
            continue
        present = [v for v in raw if v != "" and v != "None"]
        if not present:
            if p.required:
                raise MalformedBody(
                    f"Required request parameter '{p.name}' for method parameter type "
                    f"{_JAVA_TYPE[p.kind]} is not present"
                )
            out[p.name] = p.default
            continue
        out[p.name] = convert(p.name, p.kind, present[0])
    return out


def parse_body(body: Body, raw: bytes) -> Any:
    """The request body according to its declaration; problems are 500s, as in conductor-oss."""
    if not raw.strip():
        raise MalformedBody("Required request body is missing")
    if body.kind == "text":
        return raw.decode("utf-8", "replace")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise MalformedBody(f"JSON parse error: {e}") from None
    if body.kind == "array" and not isinstance(value, list):
        raise MalformedBody(
            f"JSON parse error: Cannot deserialize value of type `List<{body.schema}>` from "
            f"{_json_kind(value)} value (expected a JSON array)"
        )
    if body.kind == "object" and not isinstance(value, dict):
        raise MalformedBody(
            f"JSON parse error: Cannot deserialize value of type `{body.schema}` from "
            f"{_json_kind(value)} value (expected a JSON object)"
        )
    return value


def _json_kind(value: Any) -> str:
    return {dict: "Object", list: "Array", str: "String", bool: "Boolean", type(None): "null"}.get(
        type(value), "Number"
    )


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)



# ------------------------------------------------------------------------------------------------
# The base handler


@tornado.web.stream_request_body
class BaseHandler(tornado.web.RequestHandler):
    """Parses per the method's :class:`Op`, replies in conductor-oss's formats, maps every error.

    Bodies are streamed so that an oversized one is refused with a 413 error JSON without being
    buffered: past ``max_body_bytes`` incoming data is dropped (the HTTP server's own
    ``max_body_size`` is only a last-resort cap). Errors found before the body arrives are
    answered after it has been read (see :meth:`prepare`).
    """

    tag = "misc"  # OpenAPI tag
    # Methods the lean HTTP layer (server/http1.py) may call with a LeanRequest instead of a
    # handler: they use only ``executor``, ``q``, ``body()`` and the ``reply_*`` methods.
    lean: frozenset[str] = frozenset()

    ctx: ServerContext
    op: Op | None
    q: dict[str, Any]

    def initialize(self, ctx: ServerContext, route: Route | None = None) -> None:
        self.ctx = ctx
        self.route = route
        self.op = None
        self.q = {}
        self._chunks: list[bytes] = []
        self._size = 0
        self._too_large = False
        self._discard = False

    @property
    def executor(self) -> Any:
        return self.ctx.executor

    def compute_etag(self) -> str | None:
        """No ``Etag``: conductor-oss sends none, and Tornado would hash every GET answer's body
        (a batch poll of 20 tasks: ~30 KB of SHA-1) and answer ``If-None-Match`` with a 304."""
        return None

    # -- request ---------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Check and parse everything but the body (which has not arrived yet).

        An error found here is raised only once the body has been read: Tornado closes a
        keep-alive connection whose response finished before its request body was consumed, and
        clients (the SDK's pooled httpx) would then hit a reset on their next request.
        """
        header = self.request.headers.get("Content-Length", "")
        length = int(header) if header.isdigit() else 0
        if length > DISCARD_LIMIT_FACTOR * self.ctx.max_body_bytes:
            raise self._payload_too_large()  # not worth reading: answer now (the connection closes)
        try:
            self.check_token()
            self.op = getattr(getattr(self, self.request.method.lower(), None), "__api_op__", None)
            if self.op is None:
                raise tornado.web.HTTPError(405)
            if length > self.ctx.max_body_bytes:
                conn = self.request.connection
                if conn is not None:
                    conn.set_max_body_size(length)  # type: ignore[attr-defined]  # read it, drop it, then 413
                raise self._payload_too_large()
            self.q = parse_query(self.op.query, self.request.query_arguments)
            self._convert_path_args()
        except Exception as exc:
            self._defer(exc)

    def _defer(self, exc: Exception) -> None:
        """Answer with ``exc`` instead of running the method, once the body has been read."""
        self._discard = True

        def fail(*args: Any, **kwargs: Any) -> None:
            raise exc

        setattr(self, self.request.method.lower(), fail)

    def _convert_path_args(self) -> None:
        for route_param in self.route.params if self.route else ():
            value = self.path_kwargs.get(route_param.arg)
            if route_param.kind == "int" and isinstance(value, str):
                self.path_kwargs[route_param.arg] = convert(route_param.name, "int", value)

    def check_token(self) -> None:
        """With a token configured, ``/api`` and ``/metrics`` requests must carry it (design: Security)."""
        check_token(self.ctx, self.request.path, self.request.headers.get)

    def data_received(self, chunk: bytes) -> None:
        if self._too_large or self._discard:
            return
        self._size += len(chunk)
        if self._size > self.ctx.max_body_bytes:  # chunked upload without Content-Length
            self._too_large = True
            self._chunks.clear()
            return
        self._chunks.append(chunk)

    def body(self) -> Any:
        """The request body parsed per the operation's :class:`Body` declaration."""
        if self._too_large:
            raise self._payload_too_large()
        assert self.op is not None and self.op.body is not None, "operation declares no body"
        return parse_body(self.op.body, b"".join(self._chunks))

    def _payload_too_large(self) -> PayloadTooLarge:
        return payload_too_large(self.ctx)

    # -- replies ---------------------------------------------------------------------------------

    def reply_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(dumps(value))

    def reply_text(self, value: str) -> None:
        self.set_header("Content-Type", TEXT_TYPE)
        self.finish(value.encode())

    def reply_empty(self) -> None:
        """200 with an empty body (Java ``void``); Tornado sets ``Content-Length: 0``."""
        self.clear_header("Content-Type")
        self.finish()

    def reply_no_content(self) -> None:
        self.set_status(204)
        self.finish()

    # -- errors: the one mapping -----------------------------------------------------------------

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if exc is None:
            status, body = status_code, error_json(self.ctx, status_code, self._reason)
        else:
            status, body = error_reply(self.ctx, exc, self.request.method or "", self.request.path)
        self.set_status(status)
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(dumps(body))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        log_failure(self.request.method or "", self.request.uri or "", value, tb)


def payload_too_large(ctx: ServerContext) -> PayloadTooLarge:
    return PayloadTooLarge(f"Request body is larger than the limit of {ctx.max_body_bytes} bytes")


def error_json(ctx: ServerContext, status: int, message: str) -> dict[str, Any]:
    return {"status": status, "message": message, "instance": ctx.instance, "retryable": False}


def error_reply(ctx: ServerContext, exc: BaseException, method: str, path: str) -> tuple[int, dict[str, Any]]:
    """The one mapping from an error to a status and conductor-oss's error JSON (every transport
    of the REST API answers through it: Tornado's handlers and the lean HTTP layer)."""
    if isinstance(exc, ConductorLabError):
        return exc.status, exc.to_json(ctx.instance)
    if isinstance(exc, tornado.web.HTTPError):
        status = exc.status_code
        if status == 405:
            message = f"Request method '{method}' is not supported"
        elif status == 404:
            message = f"No static resource {path.lstrip('/')}."
        else:
            message = exc.log_message or exc.reason or httputil.responses.get(status, "Unknown")
    else:  # a bug: answer 500, keep serving (log_failure has the traceback)
        status, message = 500, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return status, error_json(ctx, status, message)


def log_failure(method: str, uri: str, exc: BaseException, tb: Any = None) -> None:
    """Client mistakes answered with a 5xx at INFO (saying why), bugs at ERROR with the traceback."""
    if isinstance(exc, ConductorLabError | tornado.web.HTTPError):
        status = exc.status if isinstance(exc, ConductorLabError) else exc.status_code
        if status >= 500:  # conductor-oss answers many client mistakes with 500: say why
            log.info("%s %s -> %d: %s", method, uri, status, exc)
        return
    log.error("%s %s failed", method, uri, exc_info=(type(exc), exc, tb or exc.__traceback__))


def check_token(ctx: ServerContext, path: str, header: Callable[[str], str | None]) -> None:
    """With a token configured, ``/api`` and ``/metrics`` requests must carry it (design: Security):
    ``Authorization: Bearer <token>`` or ``X-Authorization: <token>``, compared in constant time."""
    token = ctx.token
    if token is None or path in ctx.open_paths:
        return
    if not path.startswith("/api") and path != "/metrics":
        return
    auth = header("Authorization") or ""
    given = auth[7:].strip() if auth[:7].lower() == "bearer " else header("X-Authorization")
    if given is None or not hmac.compare_digest(given.encode(), token.encode()):
        raise Unauthorized("Missing or invalid token: send 'Authorization: Bearer <token>'")


class Unauthorized(ConductorLabError):
    """No or a wrong bearer token (only when the server runs with a token)."""

    status = 401


class NotFoundHandler(BaseHandler):
    """Every unknown path: 404 in Conductor's error JSON."""

    def prepare(self) -> None:
        try:
            self.check_token()
            raise NotFound(f"No static resource {self.request.path.lstrip('/')}.")
        except ConductorLabError as exc:
            self._defer(exc)
