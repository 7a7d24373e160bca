"""``conductor-lab lab`` (what ``make run`` starts): server + JupyterLab, both URLs printed, both stopped."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import psutil

from tests.conftest import REPO_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_lab_command_starts_and_stops_both(tmp_path: Path) -> None:
    notebooks = tmp_path / "nb"
    notebooks.mkdir()
    (notebooks / "hello.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    lab_port = free_port()
    cmd = [sys.executable, "-m", "conductor_lab.cli", "lab", "--db", str(tmp_path / "d" / "c.duckdb"),
           "--port", "0", "--lab-port", str(lab_port), "--notebooks", str(notebooks)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("JupyterLab:"):
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(90), f"no URLs printed: {lines} {proc.poll()}"
        server_url = re.search(r"server:\s+(http://\S+)", "".join(lines))
        lab_url = re.search(r"JupyterLab:\s+(http://\S+)", "".join(lines))
        assert server_url and lab_url
        assert httpx.get(server_url.group(1) + "/health").json()["healthy"] is True
        base, token = lab_url.group(1).split("/lab?token=")
        assert base == f"http://127.0.0.1:{lab_port}"
        contents = httpx.get(f"{base}/api/contents", params={"token": token}).json()
        assert [c["name"] for c in contents["content"]] == ["hello.ipynb"]
        # JupyterLab (and so every kernel it starts) has the server's URL in its environment
        children = psutil.Process(proc.pid).children()
        [jupyter] = [c for c in children if "jupyter" in " ".join(c.cmdline())]
        assert jupyter.environ()["CONDUCTOR_SERVER_URL"] == server_url.group(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0, proc.stderr.read() if proc.stderr else ""
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT of our own requests is fine
        s.bind(("127.0.0.1", lab_port))  # JupyterLab let go of its port


def test_lab_command_refuses_a_taken_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run(
            [sys.executable, "-m", "conductor_lab.cli", "lab", "--db", str(tmp_path / "c.duckdb"), "--port", "0",
             "--lab-port", str(port), "--notebooks", str(tmp_path)],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert r.returncode == 2
    assert f"port {port} for JupyterLab is in use" in r.stderr and "LAB_PORT" in r.stderr
    assert "Traceback" not in r.stderr
