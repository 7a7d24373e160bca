"""Run the standalone server: DuckDB store + executor + Tornado HTTP server on one event loop.

``serve()`` prints exactly one line, ``conductor-lab listening on http://HOST:PORT``, once the
socket is bound and the engine has recovered, so launchers and tests can read the URL (port 0
picks a free port). SIGTERM/SIGINT stop it: no new connections, open ones closed, then the
executor closes (its last group commit lands before the process exits).
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import os
import signal
import sys
from pathlib import Path

import tornado.httpserver
import tornado.netutil

from conductor_lab.server.app import DEFAULT_MAX_BODY_BYTES, make_app

log = logging.getLogger("conductor_lab.server")

TOKEN_ENV = "CONDUCTOR_LAB_TOKEN"
SHUTDOWN_GRACE_SECONDS = 5.0


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


async def serve(
    db_path: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    durable: bool = True,
    token: str | None = None,
    allow_remote: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> None:
    """Serve until SIGTERM/SIGINT. ``token``: required bearer token for ``/api`` (None: open)."""
    token = token or None
    check_binding(host, allow_remote=allow_remote, token=token)

    from conductor_lab.engine.executor import Executor
    from conductor_lab.engine.store.duckdb import DuckDBStore

    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    store = DuckDBStore(db_path, durable=durable)
    executor = Executor(store)
    try:
        await executor.start()
    except BaseException:
        store.close()
        raise
    # Move everything recovered (up to a million running workflows) out of the cyclic collector's
    # sight, so its full collections do not walk those records again and again.
    gc.collect()
    gc.freeze()
    server: tornado.httpserver.HTTPServer | None = None
    try:
        app = make_app(executor, max_body_bytes=max_body_bytes, token=token)
        # Last-resort cap: handlers answer 413 above max_body_bytes (they drop data past it);
        # only a chunked upload beyond twice the limit hits Tornado's own 400 + close.
        server = tornado.httpserver.HTTPServer(
            app, max_body_size=2 * max_body_bytes + 1024 * 1024, xheaders=False
        )
        sockets = tornado.netutil.bind_sockets(port, address=host)
        server.add_sockets(sockets)
        bound = sockets[0].getsockname()[1]

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print(f"conductor-lab listening on http://{_url_host(host)}:{bound}", flush=True)
        await stop.wait()
        log.info("shutting down")
    finally:
        if server is not None:
            server.stop()
            try:
                await asyncio.wait_for(server.close_all_connections(), SHUTDOWN_GRACE_SECONDS)
            except TimeoutError:
                log.warning("connections still open after %.0fs; closing anyway", SHUTDOWN_GRACE_SECONDS)
        await executor.close()


def token_from_env(token: str | None) -> str | None:
    return token or os.environ.get(TOKEN_ENV) or None


def main_serve(
    db_path: str,
    *,
    host: str,
    port: int,
    durable: bool,
    token: str | None,
    allow_remote: bool,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> int:
    """Blocking entry point for the CLI; returns the process exit code."""
    try:
        asyncio.run(
            serve(
                db_path,
                host=host,
                port=port,
                durable=durable,
                token=token_from_env(token),
                allow_remote=allow_remote,
                max_body_bytes=max_body_bytes,
            )
        )
    except UnsafeBinding as e:
        print(f"conductor-lab: {e}", file=sys.stderr)
        return 2
    except Exception:
        log.exception("conductor-lab could not serve %s", db_path)
        return 1
    return 0
