"""conductor_lab.engine.httpcall against a real Tornado server on 127.0.0.1 (free port, same event loop).

Each async test body runs in its own ``asyncio.run`` with a fresh server and ``HttpCaller``; slow and
gated routes wait on events the test controls, so nothing depends on sleeping for long enough.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import pytest
from tornado.httpserver import HTTPServer
from tornado.iostream import StreamClosedError
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from conductor_lab.engine.httpcall import (
    MISSING_METHOD,
    MISSING_REQUEST,
    MISSING_URI,
    HttpCaller,
    HttpInputError,
    HttpRequest,
    HttpResult,
    parse_request,
    validate_node_input,
)

pytestmark = pytest.mark.timeout(60)

LIMIT = 1_000_000  # max_response_bytes of the default caller in these tests


# -- the local server --------------------------------------------------------------------------------


class State:
    """What the handlers share with the test; created inside the test's event loop."""

    def __init__(self) -> None:
        self.release = asyncio.Event()  # lets /slow answer
        self.slow_entered = asyncio.Event()
        self.slow_closed = asyncio.Event()  # the client closed a /slow connection
        self.arrived = 0  # /gate requests seen
        self.in_flight = 0
        self.max_in_flight = 0
        self.gates: list[asyncio.Event] = []


class Base(RequestHandler):
    """Handlers get the shared state and send raw bytes with an explicit content type."""

    def initialize(self, state: State) -> None:
        self.state = state

    def send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.set_status(status)
        if body:
            self.set_header("Content-Type", content_type)
        self.finish(body)


def fixed(status: int, body: bytes, content_type: str = "application/json") -> type[Base]:
    """A handler answering every GET with the same response."""

    class Fixed(Base):
        def get(self) -> None:
            self.send(status, body, content_type)

    return Fixed


class Echo(Base):
    """201 + JSON describing the request: method, headers (name -> [values]), raw body, query."""

    def _echo(self) -> None:
        headers: dict[str, list[str]] = {}
        for name, value in self.request.headers.get_all():
            headers.setdefault(name.lower(), []).append(value)
        doc = {
            "method": self.request.method,
            "headers": headers,
            "body": self.request.body.decode("utf-8"),
            "query": self.request.query,
        }
        self.send(201, json.dumps(doc).encode())

    get = post = put = delete = patch = options = _echo


class Slow(Base):
    """Answers only when the test sets ``state.release``."""

    gone = False

    async def get(self) -> None:
        self.state.slow_entered.set()
        await self.state.release.wait()
        if not self.gone:
            self.send(200, b'"late"')

    def on_connection_close(self) -> None:
        self.gone = True
        self.state.slow_closed.set()


class Gate(Base):
    """Counts requests in flight; each waits for its own event, set by the test."""

    async def get(self) -> None:
        state = self.state
        state.arrived += 1
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        gate = asyncio.Event()
        state.gates.append(gate)
        try:
            await gate.wait()
        finally:
            state.in_flight -= 1
        self.send(200, b'{"ok":true}')


class Huge(Base):
    """2 MB in one piece (Content-Length set); HEAD only announces a large length."""

    def get(self) -> None:
        self.send(200, b"x" * 2_000_000, "text/plain")

    def head(self) -> None:
        self.set_header("Content-Length", "5000000")
        self.finish()


class HugeChunked(Base):
    """4 MB in flushed chunks (chunked transfer encoding, no Content-Length)."""

    async def get(self) -> None:
        self.set_header("Content-Type", "text/plain")
        try:
            for _ in range(64):
                self.write(b"y" * 65536)
                await self.flush()
        except StreamClosedError:
            return


class Redirect(Base):
    def get(self) -> None:
        self.redirect("/json")


class Multi(Base):
    def get(self) -> None:
        self.add_header("X-Multi", "a")
        self.add_header("X-Multi", "b")
        self.send(200, b"{}")


class NoContent(Base):
    def get(self) -> None:
        self.set_status(204)
        self.finish()


ROUTES: list[tuple[str, type[Base]]] = [
    ("/json", fixed(200, b'{"a": 1, "nested": {"b": [1, 2.5, "x"]}}')),
    ("/array", fixed(200, b'[1, "two", {"three": 3}]')),
    ("/text", fixed(200, b"hello world", "text/plain")),
    ("/number", fixed(200, b"42.42")),
    ("/int", fixed(200, b"42")),
    ("/jstring", fixed(200, b'"hello"')),
    ("/jtrue", fixed(200, b"true")),
    ("/jnull", fixed(200, b"null")),
    ("/latin1", fixed(200, "café".encode("latin-1"), "text/plain; charset=ISO-8859-1")),
    ("/almost", fixed(200, b"12 monkeys", "text/plain")),
    ("/notfound", fixed(404, b'{"error":"nope"}')),
    ("/error", fixed(500, b"Something went wrong!\r\nline2\ttab", "text/plain")),
    ("/unavailable", fixed(503, b"")),
    ("/echo", Echo),
    ("/slow", Slow),
    ("/gate", Gate),
    ("/huge", Huge),
    ("/huge-chunked", HugeChunked),
    ("/redirect", Redirect),
    ("/multi", Multi),
    ("/nocontent", NoContent),
]


class Server:
    """The routes above on 127.0.0.1, a free port, in the running event loop."""

    def __init__(self) -> None:
        self.state = State()
        self.http = HTTPServer(
            Application([(path, handler, {"state": self.state}) for path, handler in ROUTES])
        )
        sockets = bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self.http.add_sockets(sockets)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def stop(self) -> None:
        self.state.release.set()
        for gate in self.state.gates:
            gate.set()
        self.http.stop()
        await asyncio.wait_for(self.http.close_all_connections(), 10)


Body = Callable[[Server, HttpCaller], Awaitable[None]]


@pytest.fixture
def run() -> Callable[..., None]:
    """``run(body, **caller_kwargs)``: ``asyncio.run`` the body with a fresh server and caller."""

    def runner(body: Body, **caller_kwargs: Any) -> None:
        async def main() -> None:
            server = Server()
            caller = HttpCaller(**{"max_response_bytes": LIMIT, **caller_kwargs})
            try:
                await body(server, caller)
            finally:
                await caller.aclose()
                await server.stop()

        asyncio.run(main())

    return runner


async def until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    """Yield to the loop until ``predicate()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout:g}s: {what}")
        await asyncio.sleep(0.005)


def get(url: str, **extra: Any) -> dict[str, Any]:
    return {"http_request": {"uri": url, "method": "GET", **extra}}


def reached(state: State, count: int) -> bool:
    """At least ``count`` /gate requests have reached the server."""
    return len(state.gates) >= count


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- parse_request -----------------------------------------------------------------------------------


def test_parse_http_request_form_defaults() -> None:
    req = parse_request({"http_request": {"uri": "http://h/x", "method": "get"}, "asyncComplete": False})
    assert req == HttpRequest(
        uri="http://h/x",
        method="GET",
        headers={},
        body=None,
        accept="application/json",
        content_type="application/json",
        connect_timeout_ms=3000,
        read_timeout_ms=3000,
    )


def test_parse_top_level_form_and_all_fields() -> None:
    req = parse_request(
        {
            "uri": "https://h:8443/p?q=1",
            "method": "Patch",
            "headers": {"X-A": "a", "X-N": 5, "X-F": 1.0, "X-B": True, "X-Null": None, "X-L": [1, "b"]},
            "body": {"k": [1, 2]},
            "accept": ["application/json", "text/plain"],
            "contentType": "text/plain; charset=utf-8",
            "connectionTimeOut": "250",
            "readTimeOut": 1500.0,
            "someOtherInput": 1,
        }
    )
    assert req.method == "PATCH"
    assert req.headers == {"X-A": "a", "X-N": "5", "X-F": "1.0", "X-B": "true", "X-L": "[1, b]"}
    assert req.body == {"k": [1, 2]}
    assert req.accept == "application/json, text/plain"
    assert req.content_type == "text/plain; charset=utf-8"
    assert (req.connect_timeout_ms, req.read_timeout_ms) == (250, 1500)


def test_parse_null_http_request_falls_back_to_top_level() -> None:
    req = parse_request({"http_request": None, "uri": "http://h", "method": "DELETE"})
    assert (req.uri, req.method) == ("http://h", "DELETE")


def test_parse_http_request_wins_over_top_level() -> None:
    req = parse_request(
        {"http_request": {"uri": "http://a", "method": "PUT"}, "uri": "http://b", "method": "GET"}
    )
    assert (req.uri, req.method) == ("http://a", "PUT")


@pytest.mark.parametrize(
    ("task_input", "message"),
    [
        ({"http_request": {"method": "GET"}}, MISSING_URI),
        ({"http_request": {"uri": "", "method": "GET"}}, MISSING_URI),
        ({"method": "GET"}, MISSING_URI),
        ({}, MISSING_URI),
        ({"http_request": {"uri": "http://h"}}, MISSING_METHOD),
        ({"uri": "http://h"}, MISSING_METHOD),
        ({"http_request": "http://h"}, MISSING_REQUEST),
        (
            {"http_request": {"uri": "http://h", "method": "FOO"}},
            "http_request.method 'FOO' is not one of GET, POST, PUT, DELETE, OPTIONS, HEAD, PATCH",
        ),
        ({"uri": "ftp://h/x", "method": "GET"}, "uri 'ftp://h/x' is not an absolute http:// or https:// URL"),
        ({"uri": "/relative", "method": "GET"}, "uri '/relative' is not an absolute http:// or https:// URL"),
        ({"uri": 42, "method": "GET"}, "uri must be a string"),
        (
            {"uri": "http://h", "method": "GET", "readTimeOut": -1},
            "readTimeOut must be a non-negative integer number of milliseconds, got -1",
        ),
        (
            {"uri": "http://h", "method": "GET", "connectionTimeOut": "soon"},
            "connectionTimeOut must be a non-negative integer number of milliseconds, got 'soon'",
        ),
        (
            {"uri": "http://h", "method": "GET", "headers": ["X-A"]},
            "headers must be a map of header name to value",
        ),
        (
            {"uri": "http://h", "method": "GET", "contentType": "json"},
            "contentType 'json' is not a media type",
        ),
    ],
)
def test_parse_request_errors(task_input: dict[str, Any], message: str) -> None:
    with pytest.raises(HttpInputError) as info:
        parse_request(task_input)
    assert str(info.value).startswith(message)


def test_missing_messages_are_upstreams() -> None:
    assert MISSING_URI == "Missing HTTP URI.  See documentation for HttpTask for required input parameters"
    assert MISSING_METHOD == "No HTTP method specified"


# -- validate_node_input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"http_request": {"uri": "http://h", "method": "GET"}}, None),
        ({"http_request": {"uri": "${workflow.input.url}", "method": "${workflow.input.verb}"}}, None),
        ({"http_request": {"uri": "http://h/${workflow.input.id}", "method": "post"}}, None),
        ({"http_request": "${workflow.input.request}"}, None),
        ({"uri": "http://h", "method": "GET", "other": 1}, None),
        (
            {
                "http_request": {
                    "uri": "http://h",
                    "method": "GET",
                    "headers": {"Authorization": "${workflow.input.token}"},
                    "accept": ["${workflow.input.accept}", "text/plain"],
                    "contentType": "${workflow.input.ct}",
                    "readTimeOut": "${workflow.input.timeout}",
                    "connectionTimeOut": 100,
                }
            },
            None,
        ),
        ({}, "http_request.uri is required"),
        ({"http_request": {"method": "GET"}}, "http_request.uri is required"),
        ({"http_request": {"uri": "http://h"}}, "http_request.method is required"),
        ({"method": "GET"}, "uri is required"),
        ({"uri": "http://h"}, "method is required"),
        (
            {"http_request": {"uri": "http://h", "method": "FOO"}},
            "http_request.method 'FOO' is not one of GET, POST, PUT, DELETE, OPTIONS, HEAD, PATCH",
        ),
        (
            {"http_request": {"uri": "not a url", "method": "GET"}},
            "http_request.uri 'not a url' is not an absolute http:// or https:// URL",
        ),
        ({"http_request": 5}, "http_request must be a map (or a ${...} expression)"),
        (
            {"http_request": {"uri": "http://h", "method": "GET", "readTimeOut": -5}},
            "http_request.readTimeOut must be a non-negative integer number of milliseconds, got -5",
        ),
        (
            {"http_request": {"uri": "http://h", "method": "GET", "headers": "X-A: b"}},
            "http_request.headers must be a map of header name to value",
        ),
        (
            {"http_request": {"uri": "http://h", "method": "GET", "accept": ["json"]}},
            "http_request.accept 'json' is not a media type (does not contain '/')",
        ),
    ],
)
def test_validate_node_input(params: dict[str, Any], expected: str | None) -> None:
    assert validate_node_input(params) == expected


# -- successful calls --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/json", {"a": 1, "nested": {"b": [1, 2.5, "x"]}}),
        ("/array", [1, "two", {"three": 3}]),
        ("/text", "hello world"),
        ("/number", 42.42),
        ("/jstring", "hello"),
        ("/jtrue", "true"),
        ("/jnull", "null"),
        ("/latin1", "café"),
        ("/almost", "12 monkeys"),
    ],
)
def test_2xx_body_extraction(run: Callable[..., None], path: str, expected: Any) -> None:
    async def body(srv: Server, caller: HttpCaller) -> None:
        result = await caller.call(get(srv.url(path)))
        assert result.status == "COMPLETED", result
        assert result.reason is None
        response = result.output["response"]
        assert response["body"] == expected
        assert response["statusCode"] == 200
        assert response["reasonPhrase"] == "OK"

    run(body)


def test_number_body_is_a_float_like_upstreams_double(run: Callable[..., None]) -> None:
    async def body(srv: Server, caller: HttpCaller) -> None:
        result = await caller.call(get(srv.url("/int")))
        value = result.output["response"]["body"]
        assert value == 42.0 and isinstance(value, float)

    run(body)


def test_response_headers_are_a_multimap(run: Callable[..., None]) -> None:
    async def body(srv: Server, caller: HttpCaller) -> None:
        result = await caller.call(get(srv.url("/multi")))
        headers = result.output["response"]["headers"]
        assert headers["X-Multi"] == ["a", "b"]
        assert headers["Content-Type"] == ["application/json"]
        assert all(isinstance(v, list) and all(isinstance(i, str) for i in v) for v in headers.values())

    run(body)


def test_post_sends_json_body_headers_accept_and_content_type(run: Callable[..., None]) -> None:
    async def body(srv: Server, caller: HttpCaller) -> None:
        result = await caller.call(
            {
                "http_request": {
                    "uri": srv.url("/echo?a=1"),
                    "method": "post",
                    "headers": {"X-Num": 5, "X-Bool": True, "X-None": None, "X-Str": "s"},
                    "accept": ["application/json", "text/plain"],
                    "body": {"x": 1, "y": [True, None], "s": "é"},
                }
            }
        )
        assert result.status == "COMPLETED", result
        response = result.output["response"]
        assert (response["statusCode"], response["reasonPhrase"]) == (201, "Created")
        echo = response["body"]
        assert echo["method"] == "POST"
        assert echo["query"] == "a=1"
        assert echo["body"] == '{"x":1,"y":[true,null],"s":"é"}'
        headers = echo["headers"]
        assert headers["content-type"] == ["application/json"]
        assert headers["accept"] == ["application/json, text/plain"]
        assert headers["x-num"] == ["5"]
        assert headers["x-bool"] == ["true"]
        assert headers["x-str"] == ["s"]
        assert "x-none" not in headers

    run(body)


@pytest.mark.parametrize(
    ("content_type", "payload"),
    [
        ("text/plain", "héllo raw"),
        ("application/json", '{"already":"json"}'),
        ("application/json", "not quoted"),
    ],
)
def test_string_body_is_sent_as_is(run: Callable[..., None], content_type: str, payload: str) -> None:
    async def body(srv: Server, caller: HttpCaller) -> None:
        result = await caller.call(
            {"uri": srv.url("/echo"), "method": "PUT", "contentType": content_type, "body": payload}
        )
        echo = result.output["response"]["body"]
        assert echo["method"] == "PUT"
        assert echo["body"] == payload
        assert echo["headers"]["content-type"] == [content_type]

    run(body)


def test_headers_override_content_type_and_accept(run: Callable[..., None]) -> None:
    async def body(srv: Server, caller: HttpCaller) -> None:
        result = await caller.call(
            get(srv.url("/echo"), headers={"content-type": "application/xml", "Accept": "text/html"})
        )
        headers = result.output["response"]["body"]["headers"]
        assert headers["content-type"] == ["application/xml"]
        assert headers["accept"] == ["text/html"]

    run(body)


def test_204_completes_with_null_body(run: Callable[..., None]) -> None:
    async def body(srv: Server, caller: HttpCaller) -> None:
        result = await caller.call(get(srv.url("/nocontent")))
        assert result.status == "COMPLETED"
        response = result.output["response"]
        assert (response["body"], response["statusCode"], response["reasonPhrase"]) == (
            None,
            204,
            "No Content",
        )

    run(body)


# -- failures ----------------------------------------------------------------------------------------


def test_404_fails_with_springs_message(run: Callable[..., None]) -> None:
    async def body(srv: Server, caller: HttpCaller) -> None:
        result = await caller.call(get(srv.url("/notfound?token=secret")))
        where = srv.url("/notfound")
        exception = f'java.lang.Exception: 404 Not Found on GET request for "{where}": "{{"error":"nope"}}"'
        assert result == HttpResult(
            "FAILED", {"response": exception}, "Failed to invoke HTTP task due to: " + exception
        )
        assert "secret" not in (result.reason or "")

    run(body)


def test_500_body_newlines_and_controls_are_escaped(run: Callable[..., None]) -> None:
    async def body(srv: Server, caller: HttpCaller) -> None:
        result = await caller.call(get(srv.url("/error")))
        assert result.status == "FAILED"
        assert result.reason == (
            "Failed to invoke HTTP task due to: java.lang.Exception: "
            "500 Internal Server Error on GET request for "
            f'"{srv.url("/error")}": "Something went wrong!<EOL><EOL>line2?tab"'
        )

    run(body)


def test_5xx_without_body(run: Callable[..., None]) -> None:
    async def body(srv: Server, caller: HttpCaller) -> None:
        result = await caller.call({"uri": srv.url("/unavailable"), "method": "GET"})
        assert result.reason == (
            "Failed to invoke HTTP task due to: java.lang.Exception: "
            "503 Service Unavailable on GET request for "
            f'"{srv.url("/unavailable")}": [no body]'
        )

    run(body)


def test_input_errors_fail_without_output(run: Callable[..., None]) -> None:
    async def body(srv: Server, caller: HttpCaller) -> None:
        assert await caller.call({"http_request": {"method": "GET"}}) == HttpResult("FAILED", {}, MISSING_URI)
        assert await caller.call({"uri": srv.url("/json")}) == HttpResult("FAILED", {}, MISSING_METHOD)

    run(body)


def test_unserialisable_body_fails(run: Callable[..., None]) -> None:
    async def body(srv: Server, caller: HttpCaller) -> None:
        result = await caller.call({"uri": srv.url("/echo"), "method": "POST", "body": {"x": object()}})
        assert result.status == "FAILED"
        assert (result.reason or "").startswith(
            "Failed to invoke HTTP task due to: java.lang.Exception: "
            "Could not write request body for POST request "
            f'for "{srv.url("/echo")}"'
        )

    run(body)


def test_read_timeout_fires(run: Callable[..., None]) -> None:
    async def body(srv: Server, caller: HttpCaller) -> None:
        started = time.monotonic()
        result = await caller.call(get(srv.url("/slow?x=1"), readTimeOut=200))
        elapsed = time.monotonic() - started
        assert result.status == "FAILED"
        assert result.reason == (
            "Failed to invoke HTTP task due to: java.lang.Exception: I/O error on GET request for "
            f'"{srv.url("/slow")}": Read timed out after 200 ms (readTimeOut)'
        )
        assert result.output == {
            "response": (result.reason or "").removeprefix("Failed to invoke HTTP task due to: ")
        }
        assert srv.state.slow_entered.is_set()
        assert 0.15 < elapsed < 3.0

    run(body)


def test_connection_refused(run: Callable[..., None]) -> None:
    async def body(srv: Server, caller: HttpCaller) -> None:
        port = free_port()
        result = await caller.call(get(f"http://127.0.0.1:{port}/x", connectionTimeOut=500))
        assert result.status == "FAILED"
        assert (result.reason or "").startswith(
            "Failed to invoke HTTP task due to: java.lang.Exception: I/O error on GET request for "
            f'"http://127.0.0.1:{port}/x": Connect to http://127.0.0.1:{port} failed: '
        )

    run(body)


@pytest.mark.parametrize("path", ["/huge", "/huge-chunked"])
def test_response_size_limit(run: Callable[..., None], path: str) -> None:
    async def body(srv: Server, caller: HttpCaller) -> None:
        result = await caller.call(get(srv.url(path)))
        assert result.status == "FAILED"
        assert result.reason == (
            "Failed to invoke HTTP task due to: java.lang.Exception: Response body of GET request for "
            f'"{srv.url(path)}" (status 200) exceeds the limit of {LIMIT} bytes'
        )
        after = await caller.call(get(srv.url("/json")))  # the client is still fine
        assert after.status == "COMPLETED"

    run(body)


def test_head_is_not_limited_by_announced_length(run: Callable[..., None]) -> None:
    async def body(srv: Server, caller: HttpCaller) -> None:
        result = await caller.call({"uri": srv.url("/huge"), "method": "head"})
        assert result.status == "COMPLETED", result
        response = result.output["response"]
        assert response["body"] is None
        assert response["headers"]["Content-Length"] == ["5000000"]

    run(body)


def test_redirect_not_followed_by_default(run: Callable[..., None]) -> None:
    async def body(srv: Server, caller: HttpCaller) -> None:
        result = await caller.call(get(srv.url("/redirect")))
        assert result.status == "FAILED"
        assert result.reason == 'No response from the remote service (302 redirect to "/json" not followed)'
        response = result.output["response"]
        assert (response["statusCode"], response["reasonPhrase"], response["body"]) == (302, "Found", None)
        assert response["headers"]["Location"] == ["/json"]

    run(body)


def test_redirect_followed_when_enabled(run: Callable[..., None]) -> None:
    async def body(srv: Server, caller: HttpCaller) -> None:
        result = await caller.call(get(srv.url("/redirect")))
        assert result.status == "COMPLETED"
        assert result.output["response"]["body"] == {"a": 1, "nested": {"b": [1, 2.5, "x"]}}

    run(body, follow_redirects=True)


# -- cancellation and concurrency --------------------------------------------------------------------


def test_cancellation_aborts_the_request(run: Callable[..., None]) -> None:
    async def body(srv: Server, caller: HttpCaller) -> None:
        task = asyncio.create_task(caller.call(get(srv.url("/slow"), readTimeOut=0)))  # 0: no read timeout
        await asyncio.wait_for(srv.state.slow_entered.wait(), 5)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2)
        assert task in done and task.cancelled()
        with pytest.raises(asyncio.CancelledError):
            task.result()
        await asyncio.wait_for(srv.state.slow_closed.wait(), 5)  # the server saw the connection go
        # the only slot was given back and the client still works
        assert (await caller.call(get(srv.url("/json")))).status == "COMPLETED"

    run(body, max_concurrency=1)


def test_concurrency_cap(run: Callable[..., None]) -> None:
    async def body(srv: Server, caller: HttpCaller) -> None:
        state = srv.state
        tasks = [asyncio.create_task(caller.call(get(srv.url("/gate")))) for _ in range(5)]
        await until(lambda: state.arrived == 2, what="two requests at the server")
        await asyncio.sleep(0.1)  # a window for a third request to (wrongly) get through
        assert state.arrived == 2
        for i in range(5):
            await until(partial(reached, state, i + 1), what=f"request {i + 1} at the server")
            assert state.in_flight <= 2
            state.gates[i].set()
        results = await asyncio.wait_for(asyncio.gather(*tasks), 10)
        assert [r.status for r in results] == ["COMPLETED"] * 5
        assert state.max_in_flight == 2

    run(body, max_concurrency=2)


def test_waiting_for_a_slot_does_not_count_toward_the_timeout(run: Callable[..., None]) -> None:
    async def body(srv: Server, caller: HttpCaller) -> None:
        first = asyncio.create_task(caller.call(get(srv.url("/slow"), readTimeOut=300)))
        await asyncio.wait_for(srv.state.slow_entered.wait(), 5)
        started = time.monotonic()
        second = await caller.call(get(srv.url("/json"), readTimeOut=300, connectionTimeOut=300))
        waited = time.monotonic() - started
        assert (await first).status == "FAILED"  # read timeout after 300 ms, freeing the slot
        assert second.status == "COMPLETED"
        assert waited > 0.2  # queued behind the first for most of its 300 ms, yet not timed out

    run(body, max_concurrency=1)


def test_closed_caller_fails_instead_of_raising(run: Callable[..., None]) -> None:
    async def body(srv: Server, caller: HttpCaller) -> None:
        await caller.aclose()
        result = await caller.call(get(srv.url("/json")))
        assert result.status == "FAILED"
        assert "I/O error on GET request" in (result.reason or "")

    run(body)
