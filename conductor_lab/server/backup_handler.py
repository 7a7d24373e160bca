"""``POST /api/admin/backup``: a consistent copy of the store while the server keeps serving.

Body ``{"to": "<directory>"}``: a directory on the SERVER's machine (a relative path resolves
against the server's working directory), created if missing. The copy is
``<to>/<db file name>`` (plus ``<to>/<db file name>.archive/`` when the store has a Parquet
archive); restoring is starting a server on it. Answers
``{"path", "bytes", "seconds", "folded_seq", "archive_files"}``; 400 when the copy exists already
or the directory cannot be written. How the copy stays consistent: ``engine/store/backup.py``.

The copy runs on a thread of the loop's default executor, not on the loop and not on the engine's
two store-reader threads: requests, reads and commits go on meanwhile. ``conductor-lab backup``
(``cli.py``) calls it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import duckdb

from conductor_lab.errors import ConductorLabError, InvalidInput
from conductor_lab.server.base import BaseHandler, Body, api, ok_json

log = logging.getLogger("conductor_lab.server")


class BackupInterrupted(ConductorLabError):
    """The server began shutting down during the copy (``engine.store.backup.cancel_backup``)."""

    status = 503
    retryable = True


class BackupHandler(BaseHandler):
    tag = "admin"

    @api(
        "Back up the store into a directory on the server's machine while it keeps serving",
        body=Body(
            "object", "BackupRequest", '{"to": "<directory>"} (relative to the server\'s working directory)'
        ),
        returns=[ok_json("BackupResult", "{path, bytes, seconds, folded_seq, archive_files}")],
        doc="400 when the target file exists already or the directory is not writable. "
        "Restore: start a server on the copy (conductor-lab serve --db <path>).",
    )
    async def post(self) -> None:
        body = self.body()
        to = body.get("to")
        if not isinstance(to, str) or not to.strip():
            raise InvalidInput("backup: 'to' (a directory on the server's machine) is required")
        store = self.executor.store
        backup = getattr(store, "backup", None)
        if backup is None:
            raise InvalidInput(f"backup: this store ({type(store).__name__}) cannot be backed up")
        try:
            result: dict[str, Any] = await asyncio.get_running_loop().run_in_executor(None, backup, to)
        except duckdb.InterruptException:
            raise BackupInterrupted(
                "backup interrupted: the server is shutting down (no copy was left)"
            ) from None
        log.info(
            "backup of %s: %s (%d bytes, %.2fs)",
            store.path,
            result["path"],
            result["bytes"],
            result["seconds"],
        )
        self.reply_json(result)
