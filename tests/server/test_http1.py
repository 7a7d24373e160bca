"""The HTTP/1.1 layer (server/http1.py) on the wire: raw sockets against a real server.

Lean routes (task update, polls, starts, a workflow read) are answered by the layer itself;
every other route goes to the Tornado application. Both must behave as one HTTP server:
pipelining in order, keep-alive rules, ``Expect: 100-continue``, chunked bodies, the body and
header limits, malformed input, idle connections and shutdown.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import tornado.netutil

from conductor_lab.server.app import DEFAULT_MAX_BODY_BYTES, make_app
from conductor_lab.server.http1 import HttpServer, LeanRouter
from conductor_lab.server.run import start_server
from tests.conftest import ServerProcess, wait_until

MB = 1024 * 1024


class Wire:
    """One raw client connection: send bytes, read whole answers (Content-Length or chunked)."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    @classmethod
    def to(cls, url: str) -> Wire:
        host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
        return cls(host, int(port))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionError("closed while reading a body")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError("closed while reading a line")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def answer(self, head: bool = False) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError("closed before an answer")
        raw, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        if head or status in (100, 204, 304):
            return status, headers, b""
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while size := int(self._line(), 16):
                body += self._take(size)
                self._take(2)
            self._line()
            return status, headers, body
        return status, headers, self._take(int(headers.get("content-length", "0")))

    def closed(self) -> bool:
        """True once the server has closed the connection (EOF after any buffered answer)."""
        try:
            return self.sock.recv(65536) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


def request(method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
            version: str = "1.1") -> bytes:  # fmt: skip
    lines = [f"{method} {path} HTTP/{version}", "Host: test"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body is not None and not any(k.lower() == "transfer-encoding" for k in headers or {}):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


@pytest.fixture(scope="module")
def flow(http: httpx.Client) -> dict[str, str]:
    """A task def and a one-task workflow def, unique to this module."""
    suffix = uuid.uuid4().hex[:8]
    task, wf = f"h1_task_{suffix}", f"h1_wf_{suffix}"
    http.post("/metadata/taskdefs", json=[{"name": task, "retryCount": 0, "responseTimeoutSeconds": 60}])
    http.post("/metadata/workflow", json={
        "name": wf, "version": 1, "schemaVersion": 2,
        "tasks": [{"name": task, "taskReferenceName": "t1", "type": "SIMPLE"}],
    }).raise_for_status()  # fmt: skip
    return {"task": task, "wf": wf}


@pytest.fixture()
def wire(server: ServerProcess) -> Iterator[Wire]:
    w = Wire.to(server.url)
    yield w
    w.close()


def test_the_lean_router_follows_tornados_route_order() -> None:
    from conductor_lab.server.app import ROUTES

    router = LeanRouter(ROUTES)
    assert router.find("POST", "/api/tasks") is not None
    assert router.find("GET", "/api/tasks/poll/batch/x") is not None
    assert router.find("POST", "/api/workflow/wf") is not None
    assert router.find("GET", "/api/workflow/wf") is not None
    # earlier literal routes win, as in Tornado; other methods and later routes are Tornado's
    assert router.find("GET", "/api/workflow/search") is None
    assert router.find("POST", "/api/workflow/test") is None
    assert router.find("DELETE", "/api/workflow/x") is None
    assert router.find("GET", "/api/tasks/queue/sizes") is None
    assert router.find("GET", "/health") is None
    assert router.find("GET", "/api/workflow/a%2Fb") is None  # escapes: Tornado decodes them


def test_pipelined_requests_are_answered_in_order(wire: Wire, flow: dict[str, str]) -> None:
    """Lean and Tornado requests in one write: the answers come back in request order."""
    start = request("POST", f"/api/workflow/{flow['wf']}", b'{"n": 1}', {"Content-Type": "application/json"})
    wire.send(start + request("GET", "/health") + request("GET", "/api/workflow/nope-1")
              + request("GET", "/api/version") + start)  # fmt: skip
    answers = [wire.answer() for _ in range(5)]
    assert [a[0] for a in answers] == [200, 200, 404, 200, 200]
    assert json.loads(answers[1][2]) == {"healthResults": [], "healthy": True}
    assert "nope-1" in json.loads(answers[2][2])["message"]
    first, second = answers[0][2].decode(), answers[4][2].decode()
    assert len(first) == 36 and len(second) == 36 and first != second
    # the connection is still usable
    wire.send(request("GET", f"/api/workflow/{first}?includeTasks=false"))
    status, headers, body = wire.answer()
    assert status == 200 and json.loads(body)["workflowId"] == first
    assert headers["content-type"] == "application/json" and "server" not in headers


def test_lean_and_tornado_answers_carry_the_same_headers(wire: Wire) -> None:
    wire.send(request("GET", "/api/workflow/nope-2") + request("GET", "/api/workflow/nope-2/status"))
    lean, tornado_ = wire.answer(), wire.answer()
    assert lean[0] == tornado_[0] == 404
    assert set(lean[1]) == set(tornado_[1]) == {"date", "content-type", "content-length"}
    assert json.loads(lean[2]).keys() == json.loads(tornado_[2]).keys()


def test_expect_100_continue_on_lean_and_tornado_routes(wire: Wire, flow: dict[str, str]) -> None:
    body = b'{"x": 1}'
    for path in (f"/api/workflow/{flow['wf']}", "/api/metadata/workflow/validate"):
        head = request("POST", path, body, {"Expect": "100-continue", "Content-Type": "application/json"})
        wire.send(head[: -len(body)])
        assert wire.answer()[0] == 100
        wire.send(body)
        status, _, answer = wire.answer()
        assert status in (200, 400, 500), answer  # the validator may refuse the body; it was read
    wire.send(request("GET", "/health"))
    assert wire.answer()[0] == 200


def test_http_1_0_closes_unless_keep_alive_is_asked(server: ServerProcess) -> None:
    w = Wire.to(server.url)
    w.send(request("GET", "/api/workflow/nope-3", version="1.0"))
    status, headers, _ = w.answer()
    assert status == 404 and "connection" not in headers
    assert wait_until(w.closed, what="HTTP/1.0 connection closed")
    w.close()
    w = Wire.to(server.url)
    for path in ("/api/workflow/nope-4", "/health"):  # one lean, one Tornado
        w.send(request("GET", path, version="1.0", headers={"Connection": "keep-alive"}))
        status, headers, _ = w.answer()
        assert headers["connection"].lower() == "keep-alive", path
    w.close()


def test_connection_close_is_honoured(wire: Wire) -> None:
    wire.send(request("GET", "/api/workflow/nope-5", headers={"Connection": "close"}))
    status, headers, _ = wire.answer()
    assert status == 404 and headers["connection"] == "close"
    assert wait_until(wire.closed, what="closed after Connection: close")


def test_chunked_bodies_are_read(wire: Wire, flow: dict[str, str]) -> None:
    payload = b'{"chunked": true, "pad": "' + b"x" * 3000 + b'"}'
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (payload[:10], payload[10:2000], payload[2000:]))
    for path in (f"/api/workflow/{flow['wf']}", "/api/metadata/workflow/validate"):
        headers = {"Transfer-Encoding": "chunked", "Content-Type": "application/json"}
        wire.send(request("POST", path, None, headers) + chunked + b"0\r\n\r\n")
        status, _, body = wire.answer()
        assert status != 413 and (path.endswith("validate") or status == 200), body


def test_requests_split_across_reads_of_two_connections(server: ServerProcess, flow: dict[str, str]) -> None:
    """A request that arrives in pieces, with another connection's requests read and answered in
    between, keeps exactly its own bytes (split in the request line, in a header, in a body of
    several reads)."""
    pad = "".join(chr(ord("a") + i % 26) for i in range(200_000))  # > 3 reads of 64 KiB
    body = json.dumps({"pad": pad}).encode()
    first = request("POST", f"/api/workflow/{flow['wf']}", body, {"Content-Type": "application/json"})
    a, b = Wire.to(server.url), Wire.to(server.url)
    try:
        cuts = [0, 7, 40, 70_000, 140_000, len(first)]  # mid request line, mid header, mid body
        for i, (lo, hi) in enumerate(itertools.pairwise(cuts)):
            a.send(first[lo:hi])
            b.send(request("POST", f"/api/workflow/{flow['wf']}", b'{"n": %d}' % i, {"Content-Type": "application/json"}))
            status, _, wid = b.answer()
            assert status == 200 and len(wid) == 36
        status, _, wid = a.answer()
        assert status == 200, wid
        a.send(request("GET", f"/api/workflow/{wid.decode()}?includeTasks=false"))
        status, _, got = a.answer()
        assert status == 200 and json.loads(got)["input"] == {"pad": pad}
    finally:
        a.close()
        b.close()


def test_oversized_bodies(server: ServerProcess, flow: dict[str, str]) -> None:
    limit = DEFAULT_MAX_BODY_BYTES
    w = Wire.to(server.url)
    # over the limit (below 8x): read, dropped, 413, and the connection stays usable
    body = b'{"a": "' + b"y" * (limit + 10) + b'"}'
    w.send(request("POST", f"/api/workflow/{flow['wf']}", body, {"Content-Type": "application/json"}))
    status, _, answer = w.answer()
    assert status == 413 and "larger than the limit" in json.loads(answer)["message"]
    # chunked past the limit: the same
    parts = [b'{"a": "', b"z" * (limit // 2), b"z" * (limit // 2), b"z" * 100, b'"}']
    w.send(request("POST", f"/api/workflow/{flow['wf']}", None, {"Transfer-Encoding": "chunked"})
           + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n")  # fmt: skip
    assert w.answer()[0] == 413
    w.send(request("GET", "/health"))
    assert w.answer()[0] == 200
    # past 8x the limit: answered at once, without reading the body, and closed
    w.send(request("POST", "/api/tasks", None, {"Content-Length": str(9 * limit)}))
    status, headers, _ = w.answer()
    assert status == 413 and headers["connection"] == "close"
    assert wait_until(w.closed, what="closed after the early 413")
    w.close()


def test_malformed_requests_get_400_and_a_close(server: ServerProcess) -> None:
    for raw in (
        b"NOT A REQUEST\r\n\r\n",
        b"POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
        b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header Name: 1\r\n\r\n",
    ):
        w = Wire.to(server.url)
        w.send(raw)
        status, headers, body = w.answer()
        assert status == 400 and headers["connection"] == "close", raw
        assert json.loads(body)["status"] == 400
        assert wait_until(w.closed, what="closed after a malformed request")
        w.close()


def test_headers_past_the_limit_get_431(server: ServerProcess) -> None:
    w = Wire.to(server.url)
    w.send(request("GET", "/health", headers={f"X-Pad-{i}": "p" * 1000 for i in range(70)}))
    status, headers, _ = w.answer()
    assert status == 431 and headers["connection"] == "close"
    w.close()


def test_a_malformed_request_behind_a_good_one_closes_after_the_good_answer(wire: Wire) -> None:
    wire.send(request("GET", "/api/workflow/nope-6") + b"BROKEN\r\n\r\n")
    status, headers, _ = wire.answer()
    assert status == 404
    # either the 400 follows, or the 404 said close: never a second answer to a broken request
    if headers.get("connection") != "close":
        assert wire.answer()[0] == 400
    assert wait_until(wire.closed, what="closed after the malformed request")


def test_upgrade_requests_are_answered_and_closed(wire: Wire) -> None:
    wire.send(request("GET", "/health", headers={"Connection": "Upgrade", "Upgrade": "h2c"}))
    status, headers, _ = wire.answer()
    assert status == 200 and headers.get("connection") == "close"
    assert wait_until(wire.closed, what="closed after an upgrade request")


def test_token_is_checked_on_lean_routes(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "t.duckdb", ["--token", "s3cret"], log_dir=tmp_path) as proc:
        w = Wire.to(proc.url)
        for path in ("/api/tasks/poll/batch/x?count=1&timeout=1", "/api/workflow/some-id"):
            w.send(request("GET", path))
            status, _, body = w.answer()
            assert status == 401 and "token" in json.loads(body)["message"], path
            w.send(request("GET", path, headers={"Authorization": "Bearer s3cret"}))
            assert w.answer()[0] in (200, 404), path
        w.close()


# ------------------------------------------------------------------------------------------------
# Idle connections and shutdown, on an in-process server with a short idle timeout


class InProcess:
    """A real executor on a DuckDB file behind an ``HttpServer``, on a loop in a thread."""

    def __init__(self, db: Path, idle_timeout: float) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.db, self.idle_timeout = db, idle_timeout
        self.port = self.call(self._start())

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> int:
        from conductor_lab.engine.executor import Executor
        from conductor_lab.engine.store.duckdb import DuckDBStore

        self.executor = Executor(DuckDBStore(self.db))
        await self.executor.start()
        self.server = HttpServer(make_app(self.executor), max_body_size=2 * MB, idle_timeout=self.idle_timeout)
        sockets = tornado.netutil.bind_sockets(0, address="127.0.0.1")
        await self.server.add_sockets(sockets)
        return int(sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        self.server.stop()
        await asyncio.wait_for(self.server.close_all_connections(), 10)
        await self.executor.close()

    def stop(self) -> None:
        self.call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_idle_and_stalled_connections_are_closed(tmp_path: Path) -> None:
    srv = InProcess(tmp_path / "i.duckdb", idle_timeout=0.3)
    try:
        idle = Wire("127.0.0.1", srv.port)
        idle.send(request("GET", "/health"))
        assert idle.answer()[0] == 200
        stalled = Wire("127.0.0.1", srv.port)
        stalled.send(request("POST", "/api/tasks", b'{"taskId": "x"}')[:-5])  # body never completes
        t0 = time.monotonic()
        assert wait_until(idle.closed, timeout=10, what="idle connection closed")
        assert wait_until(stalled.closed, timeout=10, what="stalled request's connection closed")
        assert time.monotonic() - t0 >= 0.2
        busy = Wire("127.0.0.1", srv.port)  # a long poll is not idle: it gets its answer
        busy.send(request("GET", "/api/tasks/poll/batch/nobody?count=1&timeout=1000"))
        status, _, body = busy.answer()
        assert status == 200 and json.loads(body) == []
        for w in (idle, stalled, busy):
            w.close()
    finally:
        srv.stop()


def test_shutdown_answers_requests_in_flight_and_closes_idle_connections(tmp_path: Path) -> None:
    """The server's own shutdown (``open_server``): idle connections close, a long poll in flight
    is answered at once (not at its 5 s timeout) with ``Connection: close``."""
    handle = start_server(tmp_path / "s.duckdb")
    host, port = handle.url.split("//")[1].rsplit(":", 1)
    idle = Wire(host, int(port))
    idle.send(request("GET", "/health"))
    assert idle.answer()[0] == 200
    polling = Wire(host, int(port))
    polling.send(request("GET", "/api/tasks/poll/batch/nobody?count=1&timeout=5000"))
    wait_until(lambda: handle.call(lambda: _polling(handle.executor)), what="the long poll is parked")
    stopper = threading.Thread(target=handle.stop)
    t0 = time.monotonic()
    stopper.start()
    assert wait_until(idle.closed, what="idle connection closed at shutdown")
    status, headers, body = polling.answer()
    assert status == 200 and json.loads(body) == [] and headers["connection"] == "close"
    stopper.join(20)
    assert not stopper.is_alive()
    assert time.monotonic() - t0 < 4.0, "the shutdown waited out the poll's 5 s timeout"
    idle.close()
    polling.close()


async def _polling(executor: Any) -> bool:
    return bool(executor.rt.queue.waiting("nobody"))
