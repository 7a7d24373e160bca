"""Running it as a service: ``GET /metrics`` (Prometheus text) and ``GET /api/admin/status`` (JSON).

conductor-oss serves Micrometer's registry at ``/actuator/prometheus``; conductor_lab serves its
own metrics (``engine/metrics.py``) at ``/metrics``, the path Prometheus scrapes by default. Both
need the server's token when it has one (``BaseHandler.check_token``). ``conductor-lab status``
(``conductor_lab/status.py``) prints the status document on one screen.
"""

from __future__ import annotations

import math
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from conductor_lab.engine.metrics import commit_log_state, count_workflows
from conductor_lab.errors import NotFound
from conductor_lab.server.base import BaseHandler, ServerContext, api, ok_json, ok_text

#: what the commit percentiles of the status are computed from
COMMIT_SOURCE = "the last {n} group commits (first change queued -> durable), kept by the committer"


class MetricsHandler(BaseHandler):
    tag = "admin"

    @api(
        "Prometheus metrics (text exposition format; conductor-oss: /actuator/prometheus)",
        returns=[ok_text("metrics in Prometheus's text format")],
        doc="404 when the server runs with --no-metrics.",
    )
    async def get(self) -> None:
        metrics = self.executor.metrics
        if not metrics.enabled:
            raise NotFound("Metrics are off: the server runs with --no-metrics")
        body = await metrics.exposition()
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(body)


class StatusHandler(BaseHandler):
    tag = "admin"

    @api(
        "What the server is doing: version, uptime, store, workflows, queues, commits",
        returns=[ok_json("map")],
    )
    async def get(self) -> None:
        self.reply_json(await server_status(self.ctx))


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100.0 * len(ordered))))
    return ordered[rank - 1]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


async def server_status(ctx: ServerContext) -> dict[str, Any]:
    """The status document (``GET /api/admin/status``); the store's counts are read off the loop."""
    ex = ctx.executor
    counts = await count_workflows(ex.workflows)
    stats: dict[str, Any] = await ex.rt.read(ex.store.stats)
    log_state = commit_log_state(ex.store)
    latencies = list(ex.committer.latencies)
    queues = ex.queue.sizes()
    archive = stats.get("archive")
    now = time.time()
    return {
        "version": ctx.version,
        "instance": ctx.instance,
        "startTime": int(ex.started_at * 1000),
        "uptimeSeconds": round(now - ex.started_at, 3) if ex.started_at else 0.0,
        "recoverySeconds": round(ex.recovery_seconds, 3),
        "metrics": bool(ex.metrics.enabled),
        "store": {
            "path": stats.get("path"),
            "sizeBytes": stats.get("file_size_bytes"),
            "schemaVersion": stats.get("schema_version"),
            "durable": stats.get("durable"),
        },
        "workflows": {"running": counts.running, "paused": counts.paused, "byName": counts.by_name},
        "queues": dict(sorted(queues.items(), key=lambda kv: (-kv[1], kv[0]))),
        "commit": {
            "commits": ex.committer.commits,
            "samples": len(latencies),
            "p50Ms": _ms(percentile(latencies, 50)),
            "p99Ms": _ms(percentile(latencies, 99)),
            "source": COMMIT_SOURCE.format(n=len(latencies)),
            # where commits are made now: the event loop while they are quick, else a writer thread
            "path": "loop" if ex.committer.on_loop else "thread",
            "averageMs": _ms(ex.committer.commit_seconds),
        },
        "journal": {
            "unfoldedRecords": log_state.get("unfolded_records"),
            "foldLagSeconds": log_state.get("fold_lag_seconds"),
        },
        "archive": archive if archive else None,
    }
