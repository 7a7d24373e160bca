"""``conductor-lab status --url URL [--token T]``: what a running server is doing, on one screen.

Reads ``GET /api/admin/status`` (``server/admin.py``) and prints version, uptime, store path and
size, schema version, running and paused workflows, queue depths per task type (largest first,
cut at ``MAX_QUEUE_ROWS``), commit latency p50/p99 (over the committer's ring of recent group
commits: first change queued -> durable), the commit log's fold lag and the archive's size.
A server that cannot be reached, or refuses, is one line on stderr and exit status 2.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import httpx

#: queue rows printed before "... N more"
MAX_QUEUE_ROWS = 15
TOKEN_ENV = "CONDUCTOR_LAB_TOKEN"  # as conductor_lab.server.run (not imported: it loads Tornado)
PREFIX = "conductor-lab status: "


def base_url(url: str) -> str:
    """The server's root URL: ``http://h:p``, ``http://h:p/`` and ``http://h:p/api`` all work."""
    url = url.strip().rstrip("/")
    if url.endswith("/api"):
        url = url[: -len("/api")]
    if "://" not in url:
        url = "http://" + url
    return url


def fetch_status(url: str, token: str | None, timeout: float = 10.0) -> dict[str, Any]:
    """The status document; raises ``StatusError`` (one line) when it cannot be had."""
    root = base_url(url)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        r = httpx.get(f"{root}/api/admin/status", headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        reason = " ".join((str(exc) or type(exc).__name__).split())  # one line
        raise StatusError(f"cannot reach {root}: {reason}") from exc
    if r.status_code == 401:
        raise StatusError(f"{root} needs a token: pass --token or set {TOKEN_ENV}")
    if r.status_code != 200:
        raise StatusError(f"{root} answered {r.status_code} to /api/admin/status: {_message(r)}")
    try:
        doc = r.json()
    except ValueError as exc:
        raise StatusError(f"{root} did not answer with JSON: is it a conductor-lab server?") from exc
    if not isinstance(doc, dict):
        raise StatusError(f"{root} answered something that is not a status document")
    return doc


class StatusError(Exception):
    """Why there is no status to print (one line)."""


def _message(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:200].strip() or r.reason_phrase
    return str(body.get("message") if isinstance(body, dict) else body)[:200]


# ------------------------------------------------------------------------------------------------
# rendering


def size(n: Any) -> str:
    if not isinstance(n, int | float):
        return "?"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - the loop returns at GiB


def duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "?"
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}d {hours:02d}h {minutes:02d}m"
    if hours:
        return f"{hours}h {minutes:02d}m {s:02d}s"
    if minutes:
        return f"{minutes}m {s:02d}s"
    return f"{seconds:.1f}s"


def _ms(value: Any) -> str:
    return f"{value:.2f} ms" if isinstance(value, int | float) else "n/a"


def archive_line(archive: Any) -> str:
    if not isinstance(archive, dict) or not any(archive.get(k) for k in ("workflows", "files", "bytes")):
        return "none"
    return (
        f"{archive.get('workflows', 0):,} workflows in {archive.get('files', 0):,} Parquet files, "
        f"{size(archive.get('bytes', 0))}"
    )


def render(doc: dict[str, Any], url: str) -> str:
    """The one screen ``conductor-lab status`` prints for a status document."""
    store = doc.get("store") or {}
    wfs = doc.get("workflows") or {}
    commit = doc.get("commit") or {}
    journal = doc.get("journal") or {}
    queues: dict[str, int] = doc.get("queues") or {}
    recovery = doc.get("recoverySeconds") or 0.0
    durable = "" if store.get("durable", True) else ", NOT durable"
    lines = [
        f"conductor-lab {doc.get('version', '?')} at {base_url(url)} ({doc.get('instance', '?')})",
        f"  uptime     {duration(doc.get('uptimeSeconds'))} (recovery at start {recovery:.2f}s)",
        f"  store      {store.get('path', '?')}, {size(store.get('sizeBytes'))}, "
        f"schema version {store.get('schemaVersion', '?')}{durable}",
        f"  workflows  {wfs.get('running', 0):,} running, {wfs.get('paused', 0):,} paused",
        f"  commits    p50 {_ms(commit.get('p50Ms'))}, p99 {_ms(commit.get('p99Ms'))} over the last "
        f"{commit.get('samples', 0):,} group commits ({commit.get('commits', 0):,} since start)",
    ]
    if commit.get("path"):
        where = "the event loop" if commit["path"] == "loop" else "the writer thread (commits are slow)"
        lines.append(f"             made on {where}, store commit average {_ms(commit.get('averageMs'))}")
    unfolded = journal.get("unfoldedRecords")
    if unfolded is None:
        lines.append("  fold lag   n/a (no commit log)")
    else:
        lag = journal.get("foldLagSeconds") or 0.0
        lines.append(f"  fold lag   {unfolded:,} commits not yet folded, oldest {lag:.1f}s")
    lines.append(f"  archive    {archive_line(doc.get('archive'))}")
    lines.append(f"  metrics    {'GET /metrics' if doc.get('metrics') else 'off (--no-metrics)'}")
    total = sum(queues.values())
    lines.append(f"  queues     {len(queues)} non-empty, {total:,} tasks waiting")
    if queues:
        rows = sorted(queues.items(), key=lambda kv: (-kv[1], kv[0]))
        width = min(48, max(len("task type"), *(len(name) for name, _ in rows[:MAX_QUEUE_ROWS])))
        lines.append(f"    {'task type':<{width}}  {'depth':>10}")
        for name, depth in rows[:MAX_QUEUE_ROWS]:
            shown = name if len(name) <= width else name[: width - 3] + "..."
            lines.append(f"    {shown:<{width}}  {depth:>10,}")
        if len(rows) > MAX_QUEUE_ROWS:
            rest = rows[MAX_QUEUE_ROWS:]
            lines.append(f"    ... {len(rest)} more ({sum(d for _, d in rest):,} tasks)")
    return "\n".join(lines)


def main_status(url: str, token: str | None = None, *, timeout: float = 10.0) -> int:
    """Print the server's status; 0, or 2 with one line on stderr when there is none."""
    token = token or os.environ.get(TOKEN_ENV) or None
    try:
        doc = fetch_status(url, token, timeout)
    except StatusError as exc:
        print(PREFIX + str(exc), file=sys.stderr, flush=True)
        return 2
    print(render(doc, url), flush=True)
    return 0
