"""``conductor-lab`` command line.

    conductor-lab serve --db data/conductor.duckdb --host 127.0.0.1 --port 8080
    conductor-lab lab --db data/conductor.duckdb --port 8080 --lab-port 8888 --notebooks notebooks
    conductor-lab status --url http://127.0.0.1:8080 [--token T]
    conductor-lab backup --url http://127.0.0.1:8080 --to backups/2026-12-01 [--token T]

``--port 0`` picks a free port; the server prints ``conductor-lab listening on http://HOST:PORT``.
Binding anything but a loopback address needs ``--allow-remote`` and a token (``--token`` or
``CONDUCTOR_LAB_TOKEN``); with a token, ``/api`` requests need ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

DEFAULT_DB = "data/conductor.duckdb"


def _non_negative(text: str) -> float:
    """A number >= 0 (``--archive-after`` days, ``--archive-interval`` seconds)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="conductor-lab", description="Conductor-compatible workflow engine")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the REST server (conductor-oss wire format under /api)")
    serve.add_argument("--db", default=DEFAULT_DB, help=f"DuckDB file (default {DEFAULT_DB}; parent created)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 = any free port)")
    serve.add_argument(
        "--no-fsync", action="store_true", help="do not wait for the disk on commit (faster, not crash-safe)"
    )
    serve.add_argument(
        "--allow-remote", action="store_true", help="allow binding a non-loopback address (requires a token)"
    )
    serve.add_argument(
        "--token", default=None, help="bearer token required on /api (or env CONDUCTOR_LAB_TOKEN)"
    )
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        default=10 * 1024 * 1024,
        help="largest accepted request body (413 above)",
    )
    serve.add_argument("--log-level", default="INFO", help="logging level on stderr (default INFO)")
    serve.add_argument(
        "--grpc-port",
        type=int,
        default=None,
        help="also serve conductor-oss's gRPC API on this port (off by default; conductor-oss uses 8090; 0 = any free port)",
    )
    serve.add_argument(
        "--no-metrics", action="store_true", help="count no metrics (GET /metrics answers 404; benchmarks)"
    )
    serve.add_argument(
        "--archive-after",
        type=_non_negative,
        default=None,
        metavar="DAYS",
        help="move finished workflows older than DAYS (fractions allowed) to Parquet beside the database "
        "(<db>.archive/); they stay readable (GET, search, SQL) but read-only (default: keep everything)",
    )
    serve.add_argument(
        "--archive-interval",
        type=_non_negative,
        default=60.0,
        metavar="SECONDS",
        help="seconds between archive rounds (default 60)",
    )
    serve.add_argument(
        "--archive-batch", type=int, default=2000, metavar="N", help="workflows per archive batch (default 2000)"
    )

    lab = sub.add_parser("lab", help="run the server plus JupyterLab on a notebooks directory (make run)")
    lab.add_argument("--db", default=DEFAULT_DB, help=f"DuckDB file (default {DEFAULT_DB}; parent created)")
    lab.add_argument("--port", type=int, default=8080, help="server port (default 8080; 0 = any free port)")
    lab.add_argument("--lab-port", type=int, default=8888, help="JupyterLab port (default 8888)")
    lab.add_argument("--notebooks", default="notebooks", help="JupyterLab's root directory (default notebooks)")
    lab.add_argument("--grpc-port", type=int, default=None, help="also serve conductor-oss's gRPC API (as serve)")
    lab.add_argument("--log-level", default="INFO", help="logging level on stderr (default INFO)")

    status = sub.add_parser("status", help="what a running server is doing, on one screen")
    status.add_argument("--url", default="http://127.0.0.1:8080", help="the server (default 127.0.0.1:8080)")
    status.add_argument("--token", default=None, help="the server's token (or env CONDUCTOR_LAB_TOKEN)")
    status.add_argument("--log-level", default="WARNING", help=argparse.SUPPRESS)

    backup = sub.add_parser(
        "backup", help="copy a running server's store into a directory (it keeps serving)"
    )
    backup.add_argument("--url", default="http://127.0.0.1:8080", help="the server (default 127.0.0.1:8080)")
    backup.add_argument(
        "--to",
        required=True,
        metavar="DIR",
        help="directory on the SERVER's machine (relative: to the server's working directory); "
        "restore = conductor-lab serve --db DIR/<file>",
    )
    backup.add_argument("--token", default=None, help="the server's token (or env CONDUCTOR_LAB_TOKEN)")
    backup.add_argument("--log-level", default="WARNING", help=argparse.SUPPRESS)
    return parser


def main_backup(url: str, to: str, token: str | None) -> int:
    """``POST /api/admin/backup`` and print the result in one line; errors: one line, exit 2."""
    import os

    import httpx

    from conductor_lab.status import TOKEN_ENV, base_url

    root = base_url(url)
    token = token or os.environ.get(TOKEN_ENV) or None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:  # no read timeout: a large store takes a while to copy
        r = httpx.post(
            f"{root}/api/admin/backup",
            json={"to": to},
            headers=headers,
            timeout=httpx.Timeout(10.0, read=None),
        )
    except httpx.HTTPError as exc:
        return _fail(f"cannot reach {root}: {exc or type(exc).__name__}")
    try:
        body = r.json()
    except ValueError:
        body = None
    if r.status_code != 200 or not isinstance(body, dict):
        message = body.get("message") if isinstance(body, dict) else None
        return _fail(f"{root} answered {r.status_code}: {message or r.text[:200] or r.reason_phrase}")
    archive = f"; {body['archive_files']} archive files" if body.get("archive_files") else ""
    print(
        f"conductor-lab backup: wrote {body['path']} ({body['bytes']:,} bytes in {body['seconds']:.2f}s; "
        f"folded_seq {body['folded_seq']}{archive})"
    )
    return 0


def _fail(line: str) -> int:
    print("conductor-lab backup: " + " ".join(line.split()), file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "serve":
        from conductor_lab.server.run import main_serve

        return main_serve(
            args.db,
            host=args.host,
            port=args.port,
            durable=not args.no_fsync,
            token=args.token,
            allow_remote=args.allow_remote,
            max_body_bytes=args.max_body_bytes,
            metrics=not args.no_metrics,
            grpc_port=args.grpc_port,
            archive_after_days=args.archive_after,
            archive_interval_s=args.archive_interval,
            archive_batch=args.archive_batch,
        )
    if args.command == "status":
        from conductor_lab.status import main_status

        return main_status(args.url, args.token)
    if args.command == "backup":
        return main_backup(args.url, args.to, args.token)
    if args.command == "lab":
        from conductor_lab.launcher import main_lab

        extra = ["--grpc-port", str(args.grpc_port)] if args.grpc_port is not None else []
        return main_lab(args.db, port=args.port, lab_port=args.lab_port, notebooks=args.notebooks, server_args=extra)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
