"""SQL over the history for the server (``POST /api/lab/sql``): ``engine.sql.run_sql`` off the event loop.

Queries run on a small thread pool of their own, not on the runtime's reader threads: a query
may take up to its time limit, and searches, workflow reads and recovery must not queue behind
it. DuckDB releases the GIL while it works, so polls and task updates go on meanwhile. As
search does, a query first waits for the group commit in flight, so it sees every change
acknowledged before it was asked.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from conductor_lab.engine.runtime import Runtime
from conductor_lab.engine.sql import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ROWS,
    DEFAULT_TIMEOUT_S,
    Cancel,
    SqlRequest,
    SqlResult,
    run_sql,
)
from conductor_lab.errors import IllegalState

#: queries running at once; more wait for a thread
SQL_THREADS = 2

#: the largest answer the server builds (Arrow bytes before encoding)
SERVER_MAX_BYTES = 64 * 1024 * 1024


class SqlService:
    def __init__(self, rt: Runtime, *, threads: int = SQL_THREADS) -> None:
        self.rt = rt
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="conductor-lab-sql")
        self._lock = threading.Lock()
        self._running: set[Cancel] = set()
        self._closed = False

    async def run(
        self,
        query: str,
        *,
        params: Sequence[Any] | None = None,
        max_rows: int = DEFAULT_MAX_ROWS,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> SqlResult:
        """``run_sql`` on the SQL threads; the event loop keeps serving while it runs."""
        if self._closed:
            raise IllegalState("the engine is shutting down")
        await self.rt.committer.barrier(held=True)
        cancel = Cancel()
        call = functools.partial(
            self._run,
            cancel,
            query,
            params=params,
            max_rows=max_rows,
            timeout_s=timeout_s,
            max_bytes=max_bytes,
        )
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def answer(self, request: SqlRequest, *, arrow: bool) -> bytes:
        """The HTTP answer to ``request``: an Arrow IPC stream or the JSON body, encoded on the
        SQL thread too (a 100,000-row JSON answer is too much work for the event loop)."""
        if self._closed:
            raise IllegalState("the engine is shutting down")
        await self.rt.committer.barrier(held=True)
        cancel = Cancel()

        def call() -> bytes:
            result = self._run(
                cancel,
                request.query,
                params=request.params,
                max_rows=request.max_rows,
                timeout_s=request.timeout_s,
                max_bytes=SERVER_MAX_BYTES,
            )
            return result.to_ipc() if arrow else result.to_json_bytes()

        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def _run(self, cancel: Cancel, query: str, **kwargs: Any) -> SqlResult:
        with self._lock:
            self._running.add(cancel)
            if self._closed:
                cancel.cancel()
        try:
            return run_sql(self.rt.store, query, cancel=cancel, **kwargs)
        finally:
            with self._lock:
                self._running.discard(cancel)

    def close(self) -> None:
        """Cancel running queries and wait for their threads (before the store closes)."""
        with self._lock:
            self._closed = True
            running = list(self._running)
        for cancel in running:
            cancel.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
