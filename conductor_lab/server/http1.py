"""The REST API's HTTP/1.1 server: httptools parses, the workers' hot routes are answered here,
every other request goes to the Tornado application unchanged.

Why (docs/performance.md, "The HTTP layer"): Tornado's ``HTTP1Connection`` and ``RequestHandler``
cost ~0.3-0.4 ms of CPU per request on a 2-vCPU VM, more than the whole CPU budget per worker
task. httptools (llhttp, the parser uvicorn uses) in an ``asyncio.Protocol`` costs a fifth of that.

* **Lean routes.** A handler class names the methods that may run without Tornado in its
  ``lean`` attribute (the task update and update-v2, the polls, the starts, a workflow read).
  Those methods are called with a :class:`LeanRequest` in place of the handler: it offers what
  they use (``executor``, ``q``, ``body()``, ``reply_*``), parsed by the same declarations
  (:func:`~conductor_lab.server.base.parse_query`, :func:`~conductor_lab.server.base.parse_body`),
  answered through the same error mapping (:func:`~conductor_lab.server.base.error_reply`).
  A route is lean only where Tornado's routing would pick the same handler: the same ``Route``
  table, tried in the same order, and paths with percent-escapes go to Tornado.
* **Everything else** is handed to the ``tornado.web.Application`` through Tornado's public
  ``HTTPServerConnectionDelegate``/``HTTPConnection`` interfaces: the app sees the same start
  line, headers and body chunks as under Tornado's own server, and answers through
  :class:`_TornadoConnection`.
* **The connection**: keep-alive (HTTP/1.0 only when asked), pipelined requests answered in
  order (reading pauses past :data:`MAX_PIPELINED` waiting requests), ``Expect: 100-continue``,
  chunked request bodies, bodies past the limit dropped and answered 413 (past 8x the limit:
  answered at once and the connection closed), headers past :data:`MAX_HEADER_BYTES` answered 431,
  malformed requests 400, both with the error JSON and a close. A connection idle (or stuck in
  the middle of a request) for ``idle_timeout`` seconds is closed. On shutdown, idle connections
  close at once and busy ones after their answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import re
import socket
import time
from collections import deque
from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Any

import httptools
import tornado.web
from tornado import httputil, iostream

from conductor_lab.server.base import (
    DISCARD_LIMIT_FACTOR,
    JSON_TYPE,
    TEXT_TYPE,
    Op,
    Route,
    ServerContext,
    check_token,
    dumps,
    error_json,
    error_reply,
    log_failure,
    parse_body,
    parse_query,
    payload_too_large,
)

log = logging.getLogger("conductor_lab.server")
access_log = logging.getLogger("tornado.access")

MAX_HEADER_BYTES = 64 * 1024  # start line + headers (Tornado's default max_header_size)
MAX_PIPELINED = 16  # requests read ahead of their answer before reading pauses
MAX_BUFFERED_BODY = 1 << 20  # body bytes held for a Tornado handler not ready for them
IDLE_TIMEOUT_SECONDS = 3600.0  # Tornado's idle_connection_timeout default
_CONTINUE = b"HTTP/1.1 100 (Continue)\r\n\r\n"
_JSON = JSON_TYPE.encode()
_TEXT = TEXT_TYPE.encode()
_STATUS_LINE = {s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus}
_CR_OR_LF = re.compile(b"\r|\n")


class _Clock:
    """The ``Date`` header, formatted once per second."""

    second = -1
    value = b""

    @classmethod
    def date(cls) -> bytes:
        now = int(time.time())
        if now != cls.second:
            cls.second, cls.value = now, email.utils.formatdate(now, usegmt=True).encode()
        return cls.value


def log_access(status: int, method: str, uri: str, remote_ip: str | None, seconds: float) -> None:
    """Access log: successes at DEBUG (the hot path stays quiet), 4xx at INFO, 5xx at WARNING."""
    level = logging.DEBUG if status < 400 else logging.INFO if status < 500 else logging.WARNING
    if access_log.isEnabledFor(level):
        access_log.log(level, "%d %s %s (%s) %.2fms", status, method, uri, remote_ip, 1000.0 * seconds)


def answer_bytes(status: int, content_type: bytes | None, payload: bytes | None, connection: bytes | None,
                 *, head: bool = False) -> bytes:  # fmt: skip
    """An answer written by this layer: status line, ``Date``, ``Content-Type``/``-Length`` (none
    for ``payload`` None: 204), ``Connection`` when given; the body unless ``head``."""
    parts = [_STATUS_LINE.get(status) or b"HTTP/1.1 %d Unknown\r\n" % status, b"Date: ", _Clock.date(), b"\r\n"]
    if content_type is not None:
        parts += (b"Content-Type: ", content_type, b"\r\n")
    if payload is not None:
        parts.append(b"Content-Length: %d\r\n" % len(payload))
    if connection is not None:
        parts += (b"Connection: ", connection, b"\r\n")
    parts.append(b"\r\n")
    if payload and not head:
        parts.append(payload)
    return b"".join(parts)


# ------------------------------------------------------------------------------------------------
# Lean routes


class LeanRequest:
    """What a lean handler method sees instead of its Tornado ``BaseHandler``."""

    __slots__ = ("ctx", "op", "q", "_raw", "_too_large", "status", "content_type", "payload")

    def __init__(self, ctx: ServerContext, op: Op, raw: bytes, too_large: bool) -> None:
        self.ctx = ctx
        self.op = op
        self.q: dict[str, Any] = {}
        self._raw = raw
        self._too_large = too_large
        self.status = 0  # set by a reply_* method
        self.content_type: bytes | None = None
        self.payload: bytes | None = None  # None: no body and no Content-Length (204)

    @property
    def executor(self) -> Any:
        return self.ctx.executor

    def body(self) -> Any:
        if self._too_large:
            raise payload_too_large(self.ctx)
        assert self.op.body is not None, "operation declares no body"
        return parse_body(self.op.body, self._raw)

    def reply_json(self, value: Any, status: int = 200) -> None:
        self.status, self.content_type, self.payload = status, _JSON, dumps(value)

    def reply_text(self, value: str) -> None:
        self.status, self.content_type, self.payload = 200, _TEXT, value.encode()

    def reply_empty(self) -> None:
        self.status, self.content_type, self.payload = 200, None, b""

    def reply_no_content(self) -> None:
        self.status, self.content_type, self.payload = 204, None, None


LeanMethod = tuple[Callable[..., Any], Op]


class LeanRouter:
    """Finds the lean method for a request, trying the routes in Tornado's order.

    Only the routes up to the last one with a lean method are tried: a request whose first
    matching route lies beyond them is not lean, and Tornado routes it again.
    """

    def __init__(self, routes: tuple[Route, ...]) -> None:
        last = max((i for i, r in enumerate(routes) if getattr(r.handler, "lean", ())), default=-1)
        self.table: list[tuple[re.Pattern[str], dict[str, LeanMethod]]] = []
        for route in routes[: last + 1]:
            methods: dict[str, LeanMethod] = {}
            for name in getattr(route.handler, "lean", ()):
                if any(p.kind != "str" for p in route.params):
                    raise ValueError(f"{route.template}: lean routes take string path parameters only")
                fn = getattr(route.handler, name)
                op = getattr(fn, "__api_op__", None)
                if not isinstance(op, Op):
                    raise ValueError(f"{route.handler.__name__}.{name} declares no operation")
                methods[name.upper()] = (fn, op)
            self.table.append((re.compile(route.pattern), methods))

    def find(self, method: str, path: str) -> tuple[LeanMethod, dict[str, str]] | None:
        if "%" in path:  # Tornado decodes escapes in path segments: leave those to it
            return None
        for pattern, methods in self.table:
            m = pattern.match(path)
            if m is not None:
                found = methods.get(method)
                return None if found is None else (found, m.groupdict())
        return None


# ------------------------------------------------------------------------------------------------
# Exchanges: one request and its answer


class _Reject(Exception):
    """Stops parsing: the connection answers ``status`` and closes."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _StopParsing(Exception):
    """The connection is closing: whatever follows in the input is ignored."""


class _Exchange:
    __slots__ = (
        "conn", "method", "uri", "path", "query", "version", "raw_headers", "keep_alive",
        "content_length", "expect_continue", "complete", "active", "done", "started",
    )  # fmt: skip

    def __init__(
        self, conn: HttpConnection, method: str, uri: str, version: str, raw_headers: list[tuple[bytes, bytes]]
    ) -> None:
        self.conn = conn
        self.method = method
        self.uri = uri
        self.path, _, self.query = uri.partition("?")
        self.version = version  # "1.1" / "1.0"
        self.raw_headers = raw_headers
        self.keep_alive = conn.parser.should_keep_alive()
        length = self.header("content-length")
        self.content_length = int(length) if length is not None and length.isdigit() else None
        expect = self.header("expect")
        self.expect_continue = expect is not None and expect.lower() == "100-continue"
        self.complete = False  # the whole request has been read
        self.active = False  # head of the connection's queue: its turn to be answered
        self.done = False  # answered
        self.started = time.perf_counter()

    def header(self, name: str) -> str | None:
        """A request header by case-insensitive name (the first one)."""
        key = name.lower().encode()
        for n, v in self.raw_headers:
            if n.lower() == key:
                return v.decode("latin-1")
        return None

    def activate(self) -> None:
        raise NotImplementedError

    def on_body(self, chunk: bytes) -> None:
        raise NotImplementedError

    def on_complete(self) -> None:
        raise NotImplementedError

    def lost(self) -> None:
        """The connection closed before the answer went out."""


class _LeanExchange(_Exchange):
    __slots__ = ("lean", "kwargs", "chunks", "size", "too_large", "coro")

    def __init__(self, conn: HttpConnection, method: str, uri: str, version: str,
                 raw_headers: list[tuple[bytes, bytes]], lean: LeanMethod, kwargs: dict[str, str]) -> None:  # fmt: skip
        super().__init__(conn, method, uri, version, raw_headers)
        self.lean = lean
        self.kwargs = kwargs
        self.chunks: list[bytes] = []
        self.size = 0
        limit = conn.server.ctx.max_body_bytes
        self.too_large = self.content_length is not None and self.content_length > limit
        self.coro: Coroutine[Any, Any, None] | None = None

    def activate(self) -> None:
        conn = self.conn
        limit = conn.server.ctx.max_body_bytes
        if self.content_length is not None and self.content_length > DISCARD_LIMIT_FACTOR * limit:
            conn.closing = True  # not worth reading: answer now, then close
            exc = payload_too_large(conn.server.ctx)
            conn.respond(self, exc.status, _JSON, dumps(exc.to_json(conn.server.ctx.instance)))
        elif self.complete:
            self.run()
        elif self.expect_continue:
            conn.write(_CONTINUE)

    def on_body(self, chunk: bytes) -> None:
        if self.too_large:
            return
        self.size += len(chunk)
        if self.size > self.conn.server.ctx.max_body_bytes:  # chunked upload without Content-Length
            self.too_large = True
            self.chunks.clear()
            return
        self.chunks.append(chunk)

    def on_complete(self) -> None:
        self.complete = True
        if self.active and not self.done:
            self.run()

    def run(self) -> None:
        """Run the handler now, in this callback, and on when what it awaits is done.

        An asyncio Task would run its first step a loop turn later and costs a Task object, a
        context copy and its registry entry per request; the lean handlers only ever await
        futures (the commit barrier, a long poll's wake-up, a store read), which is all this
        trampoline steps through (as ``Task.__step`` does). A poll that finds its tasks at once
        answers within the ``data_received`` that read it."""
        self.coro = self._run()
        self._step()

    def _step(self, _: object = None) -> None:
        coro = self.coro
        assert coro is not None
        try:
            waiting = coro.send(None)
        except StopIteration:
            self.coro = None
            return
        except asyncio.CancelledError:  # what it awaited was cancelled (shutdown): as a Task would end
            self.coro = None
            return
        if getattr(waiting, "_asyncio_future_blocking", False):
            waiting._asyncio_future_blocking = False
            waiting.add_done_callback(self._step)
        elif waiting is None:  # a bare yield (``asyncio.sleep(0)``)
            self.conn.server.loop.call_soon(self._step)
        else:
            coro.close()
            self.coro = None
            raise RuntimeError(f"lean handler {self.method} {self.path} awaited {waiting!r}, not a future")

    async def _run(self) -> None:
        conn = self.conn
        ctx = conn.server.ctx
        (fn, op), kwargs = self.lean, self.kwargs
        req = LeanRequest(ctx, op, b"".join(self.chunks), self.too_large)
        try:
            check_token(ctx, self.path, self.header)
            if self.too_large and self.content_length is not None:
                raise payload_too_large(ctx)
            req.q = parse_query(op.query, httputil.parse_qs_bytes(self.query, keep_blank_values=True))
            result = fn(req, **kwargs)
            if asyncio.iscoroutine(result):
                await result
            if not req.status:
                raise RuntimeError(f"{self.method} {self.path}: the handler sent no answer")
            status, content_type, payload = req.status, req.content_type, req.payload
        except Exception as exc:
            log_failure(self.method, self.uri, exc)
            status, body = error_reply(ctx, exc, self.method, self.path)
            content_type, payload = _JSON, dumps(body)
        conn.respond(self, status, content_type, payload)


class _TornadoExchange(_Exchange):
    """A request for the Tornado application, streamed to it as Tornado's own server would."""

    __slots__ = ("delegate", "ready", "pending", "pending_size", "max_body", "size",
                 "close_callback", "chunking", "status")  # fmt: skip

    def __init__(self, conn: HttpConnection, method: str, uri: str, version: str,
                 raw_headers: list[tuple[bytes, bytes]]) -> None:  # fmt: skip
        super().__init__(conn, method, uri, version, raw_headers)
        self.delegate: httputil.HTTPMessageDelegate | None = None
        self.ready = False  # the delegate takes body data now
        self.pending: deque[bytes] = deque()
        self.pending_size = 0
        self.max_body = conn.server.max_body_size  # raised by BaseHandler for a body it drops
        self.size = 0
        self.close_callback: Callable[[], None] | None = None
        self.chunking = False
        self.status = 0

    def activate(self) -> None:
        conn = self.conn
        request_conn = _TornadoConnection(self)
        self.delegate = conn.server.app.start_request(conn, request_conn)
        headers = httputil.HTTPHeaders()
        for name, value in self.raw_headers:
            headers.add(name.decode("latin-1"), value.decode("latin-1"))
        start_line = httputil.RequestStartLine(self.method, self.uri, f"HTTP/{self.version}")
        gate = self.delegate.headers_received(start_line, headers)
        if gate is None:
            self._open()
        else:
            asyncio.ensure_future(gate).add_done_callback(lambda _: self._open())

    def _open(self) -> None:
        """The delegate is ready for the body (Tornado: after ``prepare``)."""
        if self.done or self.conn.transport is None:
            return
        if self.content_length is not None and self.content_length > self.max_body:
            self.conn.reject(400, "Content-Length too long", self)
            return
        if self.expect_continue and not self.complete:
            self.conn.write(_CONTINUE)
        self.ready = True
        self._drain()

    def on_body(self, chunk: bytes) -> None:
        if self.done:
            return  # answered before the body was read: diverted (the connection closes)
        self.size += len(chunk)
        if self.size > self.max_body:
            raise _Reject(400, "Request body too large")
        if self.ready and not self.pending:
            self._feed(chunk)
        else:
            self.pending.append(chunk)
            self.pending_size += len(chunk)
            if self.pending_size > MAX_BUFFERED_BODY:
                self.conn.pause_reading()

    def on_complete(self) -> None:
        self.complete = True
        if self.ready:
            self._drain()

    def _drain(self) -> None:
        while self.ready and self.pending and not self.done:
            chunk = self.pending.popleft()
            self.pending_size -= len(chunk)
            self._feed(chunk)
        if not self.pending:
            if len(self.conn.queue) <= MAX_PIPELINED:
                self.conn.resume_reading()
            if self.ready and self.complete and not self.done and self.delegate is not None:
                self.ready = False  # finish() once
                self.delegate.finish()

    def _feed(self, chunk: bytes) -> None:
        assert self.delegate is not None
        waiting = self.delegate.data_received(chunk)
        if waiting is not None:  # the delegate asks to wait before the next chunk
            self.ready = False
            asyncio.ensure_future(waiting).add_done_callback(lambda _: self._ready_again())

    def _ready_again(self) -> None:
        self.ready = True
        self._drain()

    def lost(self) -> None:
        if self.delegate is not None and not self.done:
            if not self.complete:
                self.delegate.on_connection_close()
            callback, self.close_callback = self.close_callback, None
            if callback is not None:
                callback()


class _TornadoConnection(httputil.HTTPConnection):
    """Tornado's view of one exchange: where its ``RequestHandler`` writes the answer."""

    def __init__(self, exchange: _TornadoExchange) -> None:
        self.exchange = exchange
        self.context = exchange.conn.context  # remote_ip and protocol for HTTPServerRequest

    def write_headers(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
        chunk: bytes | None = None,
    ) -> asyncio.Future[None]:
        ex = self.exchange
        assert isinstance(start_line, httputil.ResponseStartLine)
        code = start_line.code
        ex.status = code
        bodiless = ex.method == "HEAD" or code in (204, 304) or 100 <= code < 200
        ex.chunking = ex.version == "1.1" and not bodiless and "Content-Length" not in headers
        keep = ex.conn.keeps_alive(ex)
        if ex.version == "1.1" and not keep:
            headers["Connection"] = "close"
        elif ex.version == "1.0" and keep:
            headers["Connection"] = "Keep-Alive"
        if ex.chunking:
            headers["Transfer-Encoding"] = "chunked"
        if "Server" in headers:  # the same headers as the lean routes' answers
            del headers["Server"]
        lines = [b"HTTP/1.1 %d %s" % (code, start_line.reason.encode("latin-1"))]
        lines.extend(f"{n}: {v}".encode("latin-1") for n, v in headers.get_all())
        for line in lines:
            if _CR_OR_LF.search(line):
                raise ValueError(f"Illegal characters (CR or LF) in header: {line!r}")
        data = b"\r\n".join(lines) + b"\r\n\r\n"
        if chunk:
            data += self._chunk(chunk)
        return ex.conn.write(data)

    def write(self, chunk: bytes) -> asyncio.Future[None]:
        return self.exchange.conn.write(self._chunk(chunk))

    def _chunk(self, chunk: bytes) -> bytes:
        if self.exchange.method == "HEAD":
            return b""
        if self.exchange.chunking and chunk:
            return b"%x\r\n%s\r\n" % (len(chunk), chunk)
        return chunk

    def finish(self) -> None:
        ex = self.exchange
        if ex.chunking:
            ex.conn.write(b"0\r\n\r\n")
        ex.close_callback = None
        log_access(ex.status, ex.method, ex.uri, ex.conn.context.remote_ip, time.perf_counter() - ex.started)
        ex.conn.answered(ex)

    def set_close_callback(self, callback: Callable[[], None] | None) -> None:
        self.exchange.close_callback = callback

    def set_max_body_size(self, max_body_size: int) -> None:
        self.exchange.max_body = max_body_size

    def set_body_timeout(self, timeout: float) -> None:
        """The connection's idle timeout covers slow bodies."""

    def detach(self) -> iostream.IOStream:
        raise NotImplementedError("detach() is not supported by conductor_lab's HTTP server")


# ------------------------------------------------------------------------------------------------
# The connection


class _Context:
    """What Tornado's ``HTTPServerRequest`` reads off ``connection.context``."""

    __slots__ = ("remote_ip", "protocol", "address")

    def __init__(self, peer: Any) -> None:
        self.address = peer
        self.remote_ip = peer[0] if isinstance(peer, tuple) and peer else "0.0.0.0"
        self.protocol = "http"


class HttpConnection(asyncio.Protocol):
    """One client connection: parses requests, answers them in order."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[_Exchange] = deque()
        self.parsing: _Exchange | None = None
        self.url = b""
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.header_bytes = 0
        self.closing = False  # no more requests: close once the queued ones are answered
        self.reading_paused = False
        self.writing_paused = False
        self.drain_waiters: list[asyncio.Future[None]] = []
        self.last_input = server.loop.time()
        self.context = _Context(None)

    # -- asyncio.Protocol --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.context = _Context(transport.get_extra_info("peername"))
        self.server.connections.add(self)
        if self.server.shutting_down:
            self.closing = True
            transport.close()

    def data_received(self, data: bytes) -> None:
        self.last_input = self.server.loop.time()
        if self.closing:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.closing = True  # no protocol switch: the request is answered, then we close
        except httptools.HttpParserCallbackError as e:
            cause = e.__context__
            if isinstance(cause, _Reject):
                self.reject(cause.status, cause.message)
            elif not isinstance(cause, _StopParsing):
                log.error("failed to read a request", exc_info=cause)
                self.reject(500, "Internal error reading the request")
        except httptools.HttpParserError as e:
            self.reject(400, f"Malformed HTTP request: {e}")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.forget(self)
        queue, self.queue = self.queue, deque()
        for ex in queue:
            if ex.active and not ex.done:
                ex.lost()
        self._wake_writers(exc or ConnectionResetError("connection closed"))

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake_writers(None)

    # -- httptools callbacks -----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.closing:
            raise _StopParsing
        self.url = b""
        self.raw_headers = []
        self.header_bytes = 0

    def on_url(self, url: bytes) -> None:
        self.url += url
        self._count_header_bytes(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))
        self._count_header_bytes(len(name) + len(value) + 4)

    def _count_header_bytes(self, n: int) -> None:
        self.header_bytes += n
        if self.header_bytes > MAX_HEADER_BYTES:
            raise _Reject(431, f"Request headers are larger than {MAX_HEADER_BYTES} bytes")

    def on_headers_complete(self) -> None:
        method = self.parser.get_method().decode("ascii")
        uri = self.url.decode("latin-1")
        version = self.parser.get_http_version()
        path = uri.partition("?")[0]
        found = self.server.router.find(method, path)
        ex: _Exchange
        if found is None:
            ex = _TornadoExchange(self, method, uri, version, self.raw_headers)
        else:
            ex = _LeanExchange(self, method, uri, version, self.raw_headers, found[0], found[1])
        self.parsing = ex
        self.queue.append(ex)
        if len(self.queue) > MAX_PIPELINED:
            self.pause_reading()
        if len(self.queue) == 1:
            ex.active = True
            ex.activate()

    def on_body(self, body: bytes) -> None:
        if self.parsing is not None:
            self.parsing.on_body(body)

    def on_message_complete(self) -> None:
        ex, self.parsing = self.parsing, None
        if ex is not None:
            ex.on_complete()

    # -- answers -------------------------------------------------------------------------------------

    def keeps_alive(self, ex: _Exchange) -> bool:
        """Whether the connection stays open after ``ex``'s answer (decided when it is written)."""
        return ex.keep_alive and ex.complete and not self.closing and not self.server.shutting_down

    def respond(self, ex: _Exchange, status: int, content_type: bytes | None, payload: bytes | None) -> None:
        """Write a lean answer: status line, Date, Content-Type/-Length, Connection when it matters."""
        keep = self.keeps_alive(ex)
        connection = None  # HTTP/1.1 keeps alive and HTTP/1.0 closes unless said otherwise
        if not keep and ex.version == "1.1":
            connection = b"close"
        elif keep and ex.version == "1.0":
            connection = b"Keep-Alive"
        transport = self.transport
        if transport is not None and not transport.is_closing():  # no flow-control future: nothing waits
            transport.write(answer_bytes(status, content_type, payload, connection, head=ex.method == "HEAD"))
        log_access(status, ex.method, ex.uri, self.context.remote_ip, time.perf_counter() - ex.started)
        self.answered(ex)

    def answered(self, ex: _Exchange) -> None:
        """``ex``'s answer is written: close, or move on to the next request."""
        ex.done = True
        if not self.queue or self.queue[0] is not ex:
            return  # the connection was lost meanwhile
        if not self.keeps_alive(ex):
            self.closing = True
            self.queue.clear()
            if self.transport is not None:
                self.transport.close()  # after the buffered answer is sent
            return
        self.queue.popleft()
        if len(self.queue) <= MAX_PIPELINED:
            self.resume_reading()
        if self.queue:
            nxt = self.queue[0]
            nxt.active = True
            nxt.activate()
        elif self.server.shutting_down:
            self.closing = True
            if self.transport is not None:
                self.transport.close()

    def reject(self, status: int, message: str, ex: _Exchange | None = None) -> None:
        """Refuse a request that cannot be read (malformed, too large) and close the connection.

        ``ex`` is the refused request (default: the one being parsed, if any); it and whatever
        was read after it are dropped. With no earlier answer pending, ``status`` is answered
        with the error JSON; otherwise the pending answer says ``Connection: close`` and the
        connection closes after it (the client retries what followed)."""
        self.closing = True
        ex = ex if ex is not None else self.parsing
        if ex is not None and ex in self.queue:
            while self.queue:
                dropped = self.queue.pop()
                if dropped.active and not dropped.done:
                    dropped.done = True
                    dropped.lost()
                if dropped is ex:
                    break
        if self.queue or self.transport is None or self.transport.is_closing():
            return
        self.write(answer_bytes(status, _JSON, dumps(error_json(self.server.ctx, status, message)), b"close"))
        self.transport.close()

    def write(self, data: bytes) -> asyncio.Future[None]:
        """Write ``data``; the future resolves when the transport takes more (flow control)."""
        fut: asyncio.Future[None] = self.server.loop.create_future()
        if self.transport is None or self.transport.is_closing():
            fut.set_exception(iostream.StreamClosedError())
            fut.exception()  # retrieved: nobody has to wait for it
            return fut
        self.transport.write(data)
        if self.writing_paused:
            self.drain_waiters.append(fut)
        else:
            fut.set_result(None)
        return fut

    def _wake_writers(self, exc: BaseException | None) -> None:
        waiters, self.drain_waiters = self.drain_waiters, []
        for fut in waiters:
            if fut.done():
                continue
            if exc is None:
                fut.set_result(None)
            else:
                fut.set_exception(iostream.StreamClosedError(real_error=exc))
                fut.exception()

    def pause_reading(self) -> None:
        if not self.reading_paused and self.transport is not None and not self.transport.is_closing():
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.reading_paused and self.transport is not None and not self.transport.is_closing():
            self.reading_paused = False
            self.transport.resume_reading()

    # -- timeouts and shutdown ---------------------------------------------------------------------

    def idle_since(self) -> float | None:
        """When this connection last received input, if it is waiting for some (None: busy)."""
        if not self.queue or not self.queue[0].complete:
            return self.last_input
        return None

    def shutdown(self) -> None:
        """Stop reading requests; close now when idle, else after the answer in progress."""
        self.closing = True
        if not any(ex.active and ex.complete for ex in self.queue) and self.transport is not None:
            self.transport.close()


# ------------------------------------------------------------------------------------------------
# The server


class HttpServer:
    """Serves a Tornado ``Application`` (built by :func:`conductor_lab.server.app.make_app`)."""

    def __init__(
        self,
        app: tornado.web.Application,
        *,
        max_body_size: int,
        idle_timeout: float = IDLE_TIMEOUT_SECONDS,
    ) -> None:
        self.app = app
        self.ctx: ServerContext = app.settings["conductor_ctx"]
        self.router = LeanRouter(app.settings["conductor_routes"])
        self.max_body_size = max_body_size  # last-resort cap for Tornado's handlers (400 + close)
        self.idle_timeout = idle_timeout
        self.loop = asyncio.get_running_loop()
        self.connections: set[HttpConnection] = set()
        self.shutting_down = False
        self._servers: list[asyncio.Server] = []
        self._sweeper: asyncio.Task[None] | None = None
        self._all_closed = asyncio.Event()

    async def add_sockets(self, sockets: list[socket.socket]) -> None:
        for sock in sockets:
            server = await self.loop.create_server(lambda: HttpConnection(self), sock=sock, backlog=128)
            self._servers.append(server)
        if self._sweeper is None:
            self._sweeper = self.loop.create_task(self._sweep())

    def may_send(self) -> bool:
        """Whether a connection has no request in progress, so its client may be sending one
        (the group committer's ``may_join``: a due commit waits for such requests only)."""
        return any(not conn.queue for conn in self.connections)

    def forget(self, conn: HttpConnection) -> None:
        self.connections.discard(conn)
        if not self.connections:
            self._all_closed.set()

    async def _sweep(self) -> None:
        """Close connections that sent nothing for ``idle_timeout`` while a request was due."""
        interval = max(0.05, min(30.0, self.idle_timeout / 4))
        while True:
            await asyncio.sleep(interval)
            now = self.loop.time()
            for conn in list(self.connections):
                since = conn.idle_since()
                if since is not None and now - since > self.idle_timeout and conn.transport is not None:
                    conn.transport.close()

    def stop(self) -> None:
        """Stop accepting connections; answers from now on close their connection."""
        self.shutting_down = True
        for server in self._servers:
            server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()

    async def close_all_connections(self) -> None:
        """Close idle connections now, busy ones after their answer; return when all are closed."""
        self.shutting_down = True
        if self.connections:
            self._all_closed.clear()
            for conn in list(self.connections):
                conn.shutdown()
            await self._all_closed.wait()

    def abort_all(self) -> None:
        """Drop every connection at once (after the shutdown grace period)."""
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
