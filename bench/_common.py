"""Shared pieces of the benchmarks: a server subprocess, a raw keep-alive HTTP client, figures.

Nothing here imports ``tests/``. The server is the real CLI (``python -m conductor_lab.cli serve``)
on a DuckDB file, started on port 0; its one stdout line ``conductor-lab listening on URL`` says
it is ready (it is printed after recovery, so the time to that line is the restart time).
"""

from __future__ import annotations

import hashlib
import http.client
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlencode, urlsplit

import orjson
import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
LISTENING = re.compile(r"conductor-lab listening on (http://\S+)")

Json = dict[str, Any]


# ------------------------------------------------------------------------------------------------
# The server under test


class Server:
    """``python -m conductor_lab.cli serve --db DB --port 0 [--no-fsync]`` as a child process.

    ``start()`` returns the seconds from spawn to the "listening" line; ``stop()`` the seconds
    from SIGTERM to exit. stderr goes to ``log_dir/server-N.err``.
    """

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        *,
        durable: bool = True,
        log_dir: str | os.PathLike[str] | None = None,
        log_level: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.db_path = Path(db_path)
        self.durable = durable
        self.log_dir = Path(log_dir) if log_dir is not None else self.db_path.parent
        self.log_level = log_level
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.starts = 0
        self._err: IO[bytes] | None = None
        self._ready = threading.Event()
        self._stdout_tail: list[str] = []

    @property
    def api(self) -> str:
        return self.url + "/api"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "server not started"
        return self.proc.pid

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "conductor_lab.cli", "serve", "--db", str(self.db_path), "--port", "0"]
        if not self.durable:
            cmd.append("--no-fsync")
        if self.log_level:
            cmd += ["--log-level", self.log_level]
        return cmd + self.extra_args

    def start(self, timeout: float = 900.0) -> float:
        """Spawn and wait for the listening line; returns the seconds it took."""
        assert not self.alive(), "already running"
        self.starts += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._close_log()
        self._err = open(self.err_path, "wb")  # noqa: SIM115
        self._ready = threading.Event()
        self._stdout_tail = []
        self.url = ""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            self.command(), cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=self._err, env=env
        )
        threading.Thread(target=self._drain, args=(self.proc,), daemon=True).start()
        deadline = t0 + timeout
        while not self._ready.wait(0.005):
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            if time.perf_counter() > deadline:
                self.kill()
                raise RuntimeError(f"server not listening after {timeout:g}s:\n{self.output()}")
        return time.perf_counter() - t0

    def _drain(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self._stdout_tail = (self._stdout_tail + [line])[-50:]
            m = LISTENING.search(line)
            if m and not self._ready.is_set():
                self.url = m.group(1)
                self._ready.set()

    def stop(self, timeout: float = 300.0) -> float:
        """SIGTERM and wait (SIGKILL after ``timeout``); returns the seconds until it exited."""
        if self.proc is None or self.proc.poll() is not None:
            self._close_log()
            return 0.0
        t0 = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
        elapsed = time.perf_counter() - t0
        self._close_log()
        return elapsed

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self._close_log()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.returncode

    def rss(self) -> int:
        """Resident set size of the server process, bytes."""
        return int(psutil.Process(self.pid).memory_info().rss)

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the server process has used so far (all its threads)."""
        t = psutil.Process(self.pid).cpu_times()
        return float(t.user + t.system)

    def db_bytes(self) -> int:
        return db_size(self.db_path)

    @property
    def err_path(self) -> Path:
        """The current (latest) start's stderr: the server's log."""
        return self.log_dir / f"server-{self.starts}.err"

    def output(self) -> str:
        err = self.err_path
        text = err.read_text(errors="replace")[-8000:] if err.exists() else ""
        return "--- stdout ---\n" + "\n".join(self._stdout_tail) + "\n--- stderr ---\n" + text

    def _close_log(self) -> None:
        if self._err is not None:
            self._err.close()
            self._err = None

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def db_size(path: str | os.PathLike[str]) -> int:
    """Bytes of a DuckDB database file plus its write-ahead log (``PATH.wal``), if present."""
    total = 0
    for p in (Path(path), Path(str(path) + ".wal")):
        try:
            total += p.stat().st_size
        except FileNotFoundError:
            pass
    return total


# ------------------------------------------------------------------------------------------------
# A small keep-alive HTTP client (stdlib http.client): about 2.5x less client CPU than httpx


class ApiFailure(RuntimeError):
    def __init__(self, status: int, method: str, path: str, body: bytes) -> None:
        super().__init__(f"{method} {path} -> {status}: {body[:300]!r}")
        self.status = status


class RawClient:
    """One keep-alive ``http.client.HTTPConnection`` to ``/api``; one per thread (not thread-safe).

    GETs are retried once on a broken connection; POSTs are not (a start must not run twice).
    """

    def __init__(self, api_url: str, timeout: float = 60.0) -> None:
        parts = urlsplit(api_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            conn.connect()
            assert conn.sock is not None
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> tuple[int, bytes]:
        """Send one request; returns (status, body). ``path`` is relative to ``/api``."""
        url = self.prefix + path
        headers = {"Content-Type": content_type} if body is not None else {}
        for attempt in (0, 1):
            conn = self._connection()
            if conn.sock is not None:
                conn.sock.settimeout(timeout if timeout is not None else self.timeout)
            try:
                conn.request(method, url, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                return resp.status, data
            except (http.client.HTTPException, ConnectionError, TimeoutError, OSError):
                self.close()
                if attempt or method != "GET":
                    raise
        raise AssertionError("unreachable")

    def call(self, method: str, path: str, payload: Any = None, *, timeout: float | None = None) -> bytes:
        body = None if payload is None else orjson.dumps(payload)
        status, data = self.request(method, path, body, timeout=timeout)
        if status >= 300:
            raise ApiFailure(status, method, path, data)
        return data

    def json(self, method: str, path: str, payload: Any = None, *, timeout: float | None = None) -> Any:
        data = self.call(method, path, payload, timeout=timeout)
        return orjson.loads(data) if data else None

    # -- the calls the benchmarks make -----------------------------------------------------------

    def register_task_defs(self, defs: list[Json]) -> None:
        self.call("POST", "/metadata/taskdefs", defs)

    def register_workflow_def(self, d: Json) -> None:
        self.call("POST", "/metadata/workflow?overwrite=true", d)

    def start_workflow(self, name: str, workflow_input: Json) -> str:
        return self.call("POST", f"/workflow/{quote(name, safe='')}", workflow_input).decode()

    def batch_poll(self, task_type: str, count: int, timeout_ms: int, worker_id: str) -> list[Json]:
        q = urlencode({"count": count, "timeout": timeout_ms, "workerid": worker_id})
        path = f"/tasks/poll/batch/{quote(task_type, safe='')}?{q}"
        return self.json("GET", path, timeout=self.timeout + timeout_ms / 1000) or []

    def update_v2(self, result: Json) -> Json | None:
        """POST /tasks/update-v2: returns the next task of the same type (204 -> None)."""
        return self.json("POST", "/tasks/update-v2", result)

    def update(self, result: Json) -> str:
        return self.call("POST", "/tasks", result).decode()

    def get_workflow(self, workflow_id: str, include_tasks: bool = True) -> Json:
        flag = "true" if include_tasks else "false"
        return self.json("GET", f"/workflow/{quote(workflow_id, safe='')}?includeTasks={flag}")

    def queue_size(self, task_type: str) -> int:
        return int(self.json("GET", f"/tasks/queue/size?{urlencode({'taskType': task_type})}"))

    def search_total(self, query: str) -> int:
        q = urlencode({"query": query, "size": 1, "start": 0})
        return int(self.json("GET", f"/workflow/search?{q}", timeout=600.0)["totalHits"])


# ------------------------------------------------------------------------------------------------
# Figures


def scrape_metrics(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``GET {url}/metrics`` as {(sample name, its labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url + "/metrics", timeout=60) as r:
        text = r.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100) with linear interpolation; NaN for an empty sequence."""
    if not values:
        return math.nan
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    if lo == hi:
        return float(s[lo])
    return float(s[lo] + (s[hi] - s[lo]) * (k - lo))


def ms(seconds: float) -> str:
    """Seconds as a millisecond figure for tables."""
    if math.isnan(seconds):
        return "n/a"
    v = seconds * 1000
    return f"{v:.2f} ms" if abs(v) < 10 else f"{v:.1f} ms"


def rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else math.nan


def mib(n: float) -> str:
    return f"{n / (1024 * 1024):,.1f} MiB"


def ratio(a: float, b: float) -> str:
    if not b or math.isnan(a) or math.isnan(b):
        return "n/a"
    return f"{a / b:.2f}x"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    body = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("  ".join("-" * w for w in widths))
    for r in body:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def steal_ticks() -> int:
    """The host's steal time so far, all CPUs, in 1/100 s ticks (``/proc/stat``): time a neighbour
    had the cores this machine was given."""
    with open("/proc/stat") as f:
        return int(f.readline().split()[8])


def machine_line() -> str:
    la = os.getloadavg()
    mem = psutil.virtual_memory()
    return (
        f"machine: {os.cpu_count()} cpus, load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}, "
        f"RAM {mem.total / 2**30:.1f} GiB ({mem.available / 2**30:.1f} GiB available), "
        f"python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def code_line() -> str:
    """A fingerprint of the server code under test (the package changes while benchmarks run)."""
    h = hashlib.sha1()
    newest = 0.0
    pkg = REPO_ROOT / "conductor_lab"
    for f in sorted(pkg.rglob("*.py")):
        h.update(f.read_bytes())
        newest = max(newest, f.stat().st_mtime)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(newest))
    return f"code: conductor_lab sha1 {h.hexdigest()[:12]}, newest file {stamp}"


def load_line() -> str:
    la = os.getloadavg()
    return f"load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}"


def mono() -> float:
    """CLOCK_MONOTONIC seconds: system-wide on Linux, so comparable between processes."""
    return time.monotonic()


# ------------------------------------------------------------------------------------------------
# Profiling the server with py-spy (optional)


def find_py_spy() -> str | None:
    local = Path(sys.executable).with_name("py-spy")
    if local.exists():
        return str(local)
    return shutil.which("py-spy")


class PySpy:
    """``py-spy record --format raw`` on a pid until ``stop()``; then ``top()`` summarises it."""

    def __init__(self, pid: int, out_path: Path, *, rate_hz: int = 200, native: bool = False) -> None:
        exe = find_py_spy()
        if exe is None:
            raise RuntimeError("py-spy not found (pip install py-spy)")
        self.out_path = out_path
        cmd = [exe, "record", "-p", str(pid), "-o", str(out_path), "--format", "raw", "-r", str(rate_hz)]
        cmd += ["--threads", "--nonblocking"]
        if native:
            cmd.append("--native")
        self._log = open(out_path.with_suffix(".log"), "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()

    def top(self, n: int = 15) -> str:
        return summarize_collapsed(self.out_path, n)


def summarize_collapsed(path: Path, n: int = 12) -> str:
    """Per thread: top functions by self samples, and project functions by inclusive samples.

    Reads py-spy's collapsed-stack output (``--format raw --threads``). Percentages are of all
    non-idle samples of the process (py-spy drops idle samples unless ``--idle``).
    """
    if not path.exists():
        return f"(no profile written at {path})"
    self_c: dict[str, Counter[str]] = {}
    incl: dict[str, Counter[str]] = {}
    threads: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = stack.split(";")
        total += count
        thread = "?"
        if frames and frames[0].startswith(("thread (", "process ")):
            thread = frames[0]
            frames = [f for f in frames if not f.startswith(("thread (", "process "))]
        threads[thread] += count
        if not frames:
            continue
        self_c.setdefault(thread, Counter())[_short(frames[-1])] += count
        inc = incl.setdefault(thread, Counter())
        for f in {_short(f) for f in frames if _is_project(f)}:
            inc[f] += count
    if not total:
        return "(empty profile)"
    out = [f"samples: {total} (non-idle)"]
    for thread, tc in threads.most_common(3):
        out.append(f"{thread}: {tc * 100 / total:.0f}% of samples")
        out.append("  self:")
        out += [f"    {c * 100 / total:5.1f}%  {f}" for f, c in self_c.get(thread, Counter()).most_common(n)]
        out.append("  inclusive (conductor_lab frames):")
        out += [f"    {c * 100 / total:5.1f}%  {f}" for f, c in incl.get(thread, Counter()).most_common(n)]
    return "\n".join(out)


_BOILERPLATE = ("conductor_lab/cli.py", "server/run.py")


def _is_project(frame: str) -> bool:
    return "conductor_lab/" in frame and not any(b in frame for b in _BOILERPLATE)


def _short(frame: str) -> str:
    """``func (path/to/module.py:123)`` -> ``func (module.py)``; line numbers merged."""
    m = re.match(r"^(.*) \((.*?):(\d+)\)$", frame)
    if not m:
        return frame
    func, path = m.group(1), m.group(2)
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if len(parts) >= 2 else path
    return f"{func} ({short})"
