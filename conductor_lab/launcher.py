"""``conductor-lab lab``: the server on a DuckDB file plus JupyterLab on the notebooks, together.

This is what ``make run`` starts. The server runs as ``conductor-lab serve`` in a child process;
JupyterLab runs in another with ``CONDUCTOR_SERVER_URL`` pointing at it, so ``Lab()`` in a
notebook connects to that server instead of starting its own. Both URLs are printed once both
listen. Ctrl-C (or SIGTERM) stops JupyterLab first, then the server (its last commit lands).
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import FrameType

LISTENING = re.compile(r"conductor-lab listening on (http://\S+)")
STARTUP_SECONDS = 60.0


class LaunchError(RuntimeError):
    """One of the two processes did not come up; the message says which and why."""


class ServerRefused(LaunchError):
    """The server exited with status 2 before listening: it printed its one-line reason on our
    stderr already (``server.startup``), so nothing is added to it."""


def _start_server(db: str, host: str, port: int, extra: list[str]) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "conductor_lab.cli", "serve", "--db", db, "--host", host, "--port", str(port)]
    proc = subprocess.Popen([*cmd, *extra], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break  # the server exited; its error is on our stderr already
        match = LISTENING.search(line)
        if match:
            return proc, match.group(1)
    proc.kill()
    status = proc.wait()
    if status == 2:
        raise ServerRefused(f"the conductor-lab server did not start (exit status {status})")
    raise LaunchError(f"the conductor-lab server did not start (exit status {status}); see the lines above")


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _start_jupyter(root: Path, port: int, server_url: str, token: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, CONDUCTOR_SERVER_URL=server_url)
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)


def _wait_jupyter(proc: subprocess.Popen[bytes], base: str, token: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LaunchError(f"JupyterLab exited with status {proc.returncode}; see the lines above")
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise LaunchError(f"JupyterLab did not answer on {base} within {STARTUP_SECONDS:.0f}s")


def _stop(proc: subprocess.Popen[bytes] | subprocess.Popen[str] | None, grace: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main_lab(db: str, *, port: int, lab_port: int, notebooks: str, server_args: list[str] | None = None) -> int:
    """Run both until interrupted; returns the process exit code."""
    host = "127.0.0.1"
    root = Path(notebooks).resolve()
    if not root.is_dir():
        print(f"conductor-lab: notebooks directory {root} does not exist", file=sys.stderr)
        return 2
    if not _port_free(host, lab_port):
        print(f"conductor-lab: port {lab_port} for JupyterLab is in use; pick another with "
              f"--lab-port (make run LAB_PORT=...)", file=sys.stderr)  # fmt: skip
        return 2
    stopping = False  # the server creates the DuckDB file's directory (or says why it cannot)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    server: subprocess.Popen[str] | None = None
    jupyter: subprocess.Popen[bytes] | None = None
    try:
        server, url = _start_server(db, host, port, server_args or [])
        token = secrets.token_hex(16)
        jupyter = _start_jupyter(root, lab_port, url, token)
        base = f"http://{host}:{lab_port}"
        _wait_jupyter(jupyter, base, token)
        print(f"conductor-lab server:  {url}   (DuckDB file {db})", flush=True)
        print(f"JupyterLab:            {base}/lab?token={token}", flush=True)
        print("Notebooks connect to the server through CONDUCTOR_SERVER_URL. Ctrl-C stops both.", flush=True)
        while server.poll() is None and jupyter.poll() is None:
            time.sleep(0.5)
        if not stopping:
            which = "server" if server.poll() is not None else "JupyterLab"
            print(f"conductor-lab: the {which} exited; stopping the other", file=sys.stderr)
            return 1
    except ServerRefused:
        return 2  # its one line is on stderr already
    except LaunchError as e:
        print(f"conductor-lab: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        _stop(jupyter)
        _stop(server)
    return 0
