"""``conductor-lab`` command line.

    conductor-lab serve --db data/conductor.duckdb --host 127.0.0.1 --port 8080
    conductor-lab lab --db data/conductor.duckdb --port 8080 --lab-port 8888 --notebooks notebooks

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

    lab = sub.add_parser("lab", help="run the server plus JupyterLab on a notebooks directory (make run)")
    lab.add_argument("--db", default=DEFAULT_DB, help=f"DuckDB file (default {DEFAULT_DB}; parent created)")
    lab.add_argument("--port", type=int, default=8080, help="server port (default 8080; 0 = any free port)")
    lab.add_argument("--lab-port", type=int, default=8888, help="JupyterLab port (default 8888)")
    lab.add_argument("--notebooks", default="notebooks", help="JupyterLab's root directory (default notebooks)")
    lab.add_argument("--log-level", default="INFO", help="logging level on stderr (default INFO)")
    return parser


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
        )
    if args.command == "lab":
        from conductor_lab.launcher import main_lab

        return main_lab(args.db, port=args.port, lab_port=args.lab_port, notebooks=args.notebooks)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
