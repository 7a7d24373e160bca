"""Run the server: DuckDB store + executor + HTTP server (``server/http1.py``, in front of the
Tornado application) on one event loop.

Two ways in, one body (:func:`open_server`):

* ``serve()`` (the CLI) runs on the main thread's loop and prints exactly one line,
  ``conductor-lab listening on http://HOST:PORT``, once the socket is bound and the engine has
  recovered, so launchers and tests can read the URL (port 0 picks a free port). SIGTERM/SIGINT
  stop it: no new connections, open ones closed, then the executor closes (its last group commit
  lands before the process exits).
* ``start_server()`` (the notebook Lab) runs the same server in a daemon thread with its own
  asyncio loop, so a long-running notebook cell never stalls workers or the engine, and returns a
  :class:`ServerHandle` once it listens (or raises what stopped it from starting, e.g. DuckDB's
  lock error when another process holds the file). ``handle.stop()`` shuts it down the same way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import ipaddress
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, TypeVar, Unpack

import tornado.netutil

from conductor_lab.engine.store.archive import ARCHIVE_BATCH, ARCHIVE_INTERVAL_SECONDS
from conductor_lab.engine.store.backup import cancel_backup
from conductor_lab.server.app import DEFAULT_MAX_BODY_BYTES, make_app
from conductor_lab.server.http1 import HttpServer
from conductor_lab.server.startup import ListenError, StartupError, startup_error

if TYPE_CHECKING:
    from conductor_lab.engine.executor import Executor
    from conductor_lab.rpc.server import GrpcServer

log = logging.getLogger("conductor_lab.server")

TOKEN_ENV = "CONDUCTOR_LAB_TOKEN"
SHUTDOWN_GRACE_SECONDS = 5.0
STARTUP_TIMEOUT_SECONDS = 120.0
#: the cyclic collector's young-generation threshold in ``serve`` (Python's default: 700)
GC_YOUNG_THRESHOLD = 5000
#: young collections per middle-generation one in ``serve`` (Python's default: 10). A middle pass
#: walks every workflow started since the one before (~3 us each): at 600 workflows/s, ten young
#: passes apart it held the loop 13-35 ms; two apart, under 25 ms (docs/performance.md)
GC_MIDDLE_THRESHOLD = 2
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080

T = TypeVar("T")


class UnsafeBinding(ValueError):
    """Binding a non-loopback address without ``allow_remote`` and a token."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, *, allow_remote: bool, token: str | None) -> None:
    """The design's security rule: loopback by default; elsewhere only with a flag and a token."""
    if is_loopback(host):
        return
    if not allow_remote:
        raise UnsafeBinding(f"refusing to bind {host!r}: a non-loopback address needs --allow-remote")
    if not token:
        raise UnsafeBinding(f"refusing to bind {host!r} without a token: pass --token or set {TOKEN_ENV}")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@dataclass(frozen=True)
class RunningServer:
    """What :func:`open_server` yields: the bound address and the engine behind it."""

    url: str
    host: str
    port: int
    executor: Executor
    grpc_target: str | None = None  # ``host:port`` of the gRPC listener, when one was asked for


@contextlib.asynccontextmanager
async def open_server(
    db_path: str | os.PathLike[str],
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    durable: bool = True,
    token: str | None = None,
    allow_remote: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    freeze_gc: bool = True,
    metrics: bool = True,
    grpc_port: int | None = None,
    archive_after_days: float | None = None,
    archive_interval_s: float = ARCHIVE_INTERVAL_SECONDS,
    archive_batch: int = ARCHIVE_BATCH,
) -> AsyncIterator[RunningServer]:
    """Open the store, recover the engine, listen; on exit stop listening, close the connections
    (up to a grace period), then close the executor (its last group commit lands).

    ``freeze_gc``: move what recovery loaded out of the cyclic collector's sight (the standalone
    server; an embedded one leaves the host process's collector alone).
    ``archive_after_days``: move finished workflows older than that to Parquet beside the store
    (``engine/store/archive.py``), a round every ``archive_interval_s``, at most ``archive_batch``
    workflows per batch; None keeps everything.
    ``grpc_port``: also serve conductor-oss's gRPC API there (``conductor_lab/rpc``; 0 = any free
    port), on this loop, under the same binding and token rules; stopped before the executor.
    """
    token = token or None
    check_binding(host, allow_remote=allow_remote, token=token)

    from conductor_lab.engine.executor import Executor
    from conductor_lab.engine.store.duckdb import DuckDBStore

    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    store = DuckDBStore(db_path, durable=durable)
    executor = Executor(  # metrics=False: GET /metrics 404, hooks no-ops
        store,
        metrics=metrics,
        archive_after_days=archive_after_days,
        archive_interval_s=archive_interval_s,
        archive_batch=archive_batch,
    )
    if freeze_gc:
        # No cyclic collections while recovery loads: every record it builds stays alive (and is
        # frozen below), so each collection would only walk the growing heap again. Off,
        # 200,000 running workflows loaded in 15-30% less time in alternated restarts
        # (docs/performance.md, "Restart recovery").
        gc.disable()
    try:
        await executor.start()
    except BaseException:
        store.close()
        raise
    finally:
        if freeze_gc:
            gc.enable()
    if freeze_gc:
        # Move everything recovered (up to a million running workflows) out of the cyclic
        # collector's sight, so its full collections do not walk those records again and again.
        gc.collect()
        gc.freeze()
        # A young generation of 5,000 (Python's default: 700): a request's objects mostly die
        # before a collection sees them, so fewer are promoted and full collections (~35 ms
        # each) come 4-5x less often. GC took 1.8% instead of 3.1% of a throughput run's CPU
        # (docs/performance.md, "Held marks, handlers without Tasks, the young generation").
        # A middle pass every two young ones instead of ten: each object is walked in one middle
        # pass either way, so the pauses are shorter for about the same work.
        gc.set_threshold(GC_YOUNG_THRESHOLD, GC_MIDDLE_THRESHOLD, gc.get_threshold()[2])
        if executor.loopwatch is not None:  # that collection was on purpose, not a stall
            executor.loopwatch.restart()
    server: HttpServer | None = None
    rpc: GrpcServer | None = None
    try:
        app = make_app(executor, max_body_bytes=max_body_bytes, token=token)
        # Last-resort cap: handlers answer 413 above max_body_bytes (they drop data past it);
        # only a chunked upload beyond twice the limit is refused with a 400 and a close.
        server = HttpServer(app, max_body_size=2 * max_body_bytes + 1024 * 1024)
        try:
            sockets = tornado.netutil.bind_sockets(port, address=host)
        except OSError as e:
            raise ListenError(host, port, e) from e
        await server.add_sockets(sockets)
        bound = sockets[0].getsockname()[1]
        if grpc_port is not None:
            rpc = await _start_grpc(executor, host, grpc_port, token, max_body_bytes)
        else:  # every request comes through this server: it knows whether one could still join a commit
            executor.committer.may_join = server.may_send
        grpc_target = rpc.target if rpc is not None else None
        yield RunningServer(f"http://{_url_host(host)}:{bound}", host, bound, executor, grpc_target)
        log.info("shutting down")
    finally:
        executor.committer.may_join = None
        if server is not None:
            server.stop()  # no new connections; answers from now on close theirs
        executor.end_polls()  # long polls answer now, so the requests in flight end quickly
        if rpc is not None:
            await rpc.stop(SHUTDOWN_GRACE_SECONDS)
        if server is not None:
            try:
                await asyncio.wait_for(server.close_all_connections(), SHUTDOWN_GRACE_SECONDS)
            except TimeoutError:
                log.warning("connections still open after %.0fs; closing anyway", SHUTDOWN_GRACE_SECONDS)
                server.abort_all()
        if await asyncio.to_thread(cancel_backup, executor.store):  # it would keep the store from closing
            log.warning("a backup in progress was interrupted by the shutdown (its partial copy removed)")
        await executor.close()


async def _start_grpc(executor: Executor, host: str, port: int, token: str | None, max_bytes: int) -> GrpcServer:
    from conductor_lab.rpc.server import start_grpc  # grpcio loads only when gRPC is asked for

    try:
        return await start_grpc(executor, host=host, port=port, token=token, max_message_bytes=max_bytes)
    except OSError as e:
        raise StartupError(
            f"conductor-lab: cannot listen for gRPC on {host} port {port} (in use?); pick another with --grpc-port"
        ) from e


class ServerOptions(TypedDict, total=False):
    """The server's settings as ``serve``, ``start_server`` and ``main_serve`` take them and hand
    them on to :func:`open_server` (its defaults apply to what is left out)."""

    host: str
    port: int
    durable: bool
    token: str | None
    allow_remote: bool
    max_body_bytes: int
    metrics: bool
    grpc_port: int | None
    archive_after_days: float | None
    archive_interval_s: float
    archive_batch: int


async def serve(db_path: str, **options: Unpack[ServerOptions]) -> None:
    """Serve until SIGTERM/SIGINT. ``token``: required bearer token for ``/api`` (None: open).

    A known problem before the server listens (port in use, store in use, ...) is raised as
    :class:`StartupError` (one line; the cause chained); anything later as itself.
    """
    async with contextlib.AsyncExitStack() as stack:
        try:
            running = await stack.enter_async_context(open_server(db_path, **options))
        except Exception as exc:
            host, port = options.get("host", DEFAULT_HOST), options.get("port", DEFAULT_PORT)
            failure = startup_error(exc, db_path, host, port)
            if failure is None:
                raise
            raise failure from exc
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print(f"conductor-lab listening on {running.url}", flush=True)
        if running.grpc_target is not None:
            print(f"conductor-lab gRPC listening on {running.grpc_target}", flush=True)
        await stop.wait()


@dataclass
class ServerHandle:
    """A server running in a background thread (see :func:`start_server`)."""

    url: str
    executor: Executor
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    _stop: asyncio.Event = field(repr=False)
    _stopped: bool = field(default=False, repr=False)
    grpc_target: str | None = None  # ``host:port`` of the gRPC listener (``grpc_port`` given)

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def call(self, fn: Callable[[], Awaitable[T]], timeout: float | None = None) -> T:
        """Run a coroutine function on the server's loop from another thread; its result."""

        async def _run() -> T:
            return await fn()

        return asyncio.run_coroutine_threadsafe(_run(), self.loop).result(timeout)

    def stop(self, timeout: float = SHUTDOWN_GRACE_SECONDS + 10.0) -> bool:
        """Stop listening, close connections and the executor; True when the thread ended in time.
        Idempotent."""
        if not self._stopped:
            self._stopped = True
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self.loop.call_soon_threadsafe(self._stop.set)
        if self.thread is not threading.current_thread():
            self.thread.join(timeout)
        return not self.thread.is_alive()


def start_server(
    db_path: str | os.PathLike[str],
    *,
    thread_name: str = "conductor-lab-server",
    startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
    **options: Unpack[ServerOptions],
) -> ServerHandle:
    """Run the server in a daemon thread with its own event loop; return once it listens.

    Whatever keeps it from starting (a bad binding, DuckDB's lock error, ...) is raised here, in
    the caller's thread. The store is not ``gc.freeze()``-d: the host process owns its collector.
    ``options`` as :func:`open_server`'s, but the port defaults to 0 (any free port).
    """
    started: concurrent.futures.Future[ServerHandle] = concurrent.futures.Future()

    async def main() -> None:
        async with open_server(db_path, freeze_gc=False, **({"port": 0} | options)) as running:
            stop = asyncio.Event()
            handle = ServerHandle(
                running.url,
                running.executor,
                asyncio.get_running_loop(),
                threading.current_thread(),
                stop,
                grpc_target=running.grpc_target,
            )
            started.set_result(handle)
            await stop.wait()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the caller if it happened before listening
            if not started.done():
                started.set_exception(exc)
            else:
                log.exception("conductor-lab server thread ended with an error")

    thread = threading.Thread(target=run, name=thread_name, daemon=True)
    thread.start()
    try:
        return started.result(startup_timeout)
    except concurrent.futures.TimeoutError:
        raise TimeoutError(
            f"conductor-lab server on {db_path} did not start within {startup_timeout:g}s"
        ) from None


def token_from_env(token: str | None) -> str | None:
    return token or os.environ.get(TOKEN_ENV) or None


def main_serve(db_path: str, **options: Unpack[ServerOptions]) -> int:
    """Blocking entry point for the CLI; returns the process exit code."""
    try:
        asyncio.run(serve(db_path, **(options | {"token": token_from_env(options.get("token"))})))
    except StartupError as e:
        # the traceback only on request; the line last, where the eye lands
        log.debug("conductor-lab could not start", exc_info=e.__cause__)
        print(e.line, file=sys.stderr, flush=True)
        return 2
    except Exception:
        log.exception("conductor-lab could not serve %s", db_path)
        return 1
    return 0
