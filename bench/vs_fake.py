"""Issue 8's ratios to the fake Conductor: ``perf_probe.py`` against ``conductor-lab serve`` and
against ``../shared/tools/fake_conductor.py``, alternated, with CPU and host steal per run.

    python bench/vs_fake.py                  # 3 pairs of perf_probe --quick: worker tasks/s ratio (>= 0.5x)
    python bench/vs_fake.py --cpu            # 3 pairs of --only throughput, 4 workers: CPU per task (<= 1.5x)
    python bench/vs_fake.py --pairs 6 --cpu

Both tools stay in ``../shared/tools`` (``--tools``); this script only runs them. Each pair runs the
server (a fresh durable DuckDB file, default options) and the fake back to back, the order swapped
every other pair. Per run:

* ``worker_tasks_per_s`` as the probe prints it (its throughput window);
* CPU per task: the process's user + system CPU (``/proc/PID/stat``, all threads) over the whole
  probe run, divided by tasks/s x the window (15 s; 5 s with ``--quick``). The run's warm-up and
  clean-up are inside the CPU and outside the tasks, for both processes alike;
* steal: the host's steal time over the run (``/proc/stat``, 1/100 s ticks over all CPUs): time a
  neighbour took the cores. Steal slows each process differently, so pairs with much of it do not
  compare well.

Printed: each run, each pair's ratios (server / fake), and their medians over all pairs and over
the quiet ones (both runs' steal below ``--quiet-steal`` ticks).
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO_ROOT, Server, code_line, machine_line, print_table, steal_ticks  # noqa: E402

TASKS_PER_S = re.compile(r"^worker_tasks_per_s: ([\d.]+)", re.M)


@dataclass
class Run:
    who: str
    tasks_per_s: float
    cpu_s: float
    window_s: float
    steal: int

    @property
    def cpu_ms_per_task(self) -> float:
        return self.cpu_s / (self.tasks_per_s * self.window_s) * 1000 if self.tasks_per_s else float("nan")


def _list(xs: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in xs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def probe(tools: Path, api: str, args: list[str]) -> str:
    out = subprocess.run(
        [sys.executable, str(tools / "perf_probe.py"), *args],
        env={"CONDUCTOR_SERVER_URL": api, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0 or not TASKS_PER_S.search(out.stdout):
        raise RuntimeError(f"perf_probe failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out.stdout


def measured(who: str, pid: int, tools: Path, api: str, args: list[str], window: float) -> Run:
    proc = psutil.Process(pid)
    t0, s0 = proc.cpu_times(), steal_ticks()
    out = probe(tools, api, args)
    t1, s1 = proc.cpu_times(), steal_ticks()
    m = TASKS_PER_S.search(out)
    assert m is not None
    cpu = (t1.user + t1.system) - (t0.user + t0.system)
    return Run(who, float(m.group(1)), cpu, window, s1 - s0)


def run_server(tools: Path, args: list[str], window: float) -> Run:
    with tempfile.TemporaryDirectory(prefix="vs_fake_") as d:
        server = Server(Path(d) / "probe.duckdb")
        server.start()
        try:
            return measured("server", server.pid, tools, server.api, args, window)
        finally:
            server.stop()


def run_fake(tools: Path, args: list[str], window: float) -> Run:
    port = free_port()
    fake = subprocess.Popen(
        [sys.executable, str(tools / "fake_conductor.py"), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
                break
            except OSError:
                if fake.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the fake did not start") from None
                time.sleep(0.05)
        return measured("fake", fake.pid, tools, f"http://127.0.0.1:{port}/api", args, window)
    finally:
        fake.terminate()
        fake.wait(30)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpu", action="store_true", help="perf_probe --only throughput (4 workers), for CPU per task")
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--quiet-steal", type=int, default=100, help="steal ticks per run below which a pair counts as quiet")
    p.add_argument("--tools", default=str(REPO_ROOT.parent / "shared" / "tools"), help="where perf_probe.py is")
    args = p.parse_args()
    tools = Path(args.tools)
    if not (tools / "perf_probe.py").exists() or not (tools / "fake_conductor.py").exists():
        sys.exit(f"perf_probe.py and fake_conductor.py not found in {tools} (--tools)")
    probe_args, window = (["--only", "throughput"], 15.0) if args.cpu else (["--quick"], 5.0)
    print(machine_line())
    print(code_line())
    print(f"perf_probe {' '.join(probe_args)}; {args.pairs} pairs", flush=True)
    rows, pairs = [], []
    for i in range(args.pairs):
        order = ("server", "fake") if i % 2 == 0 else ("fake", "server")
        got = {}
        for who in order:
            got[who] = run_server(tools, probe_args, window) if who == "server" else run_fake(tools, probe_args, window)
            r = got[who]
            cpu = f"{r.cpu_ms_per_task:.3f}" if args.cpu else "-"
            rows.append([i + 1, who, f"{r.tasks_per_s:,.1f}", cpu, r.steal])
            print(f"  pair {i + 1} {who:6s} {r.tasks_per_s:8,.1f} tasks/s  CPU ms per task {cpu}  steal {r.steal}", flush=True)
        pairs.append((got["server"], got["fake"]))
    print()
    print_table(["pair", "process", "tasks/s", "CPU ms/task", "steal ticks"], rows)

    def summary(label: str, chosen: list[tuple[Run, Run]]) -> None:
        if not chosen:
            print(f"{label}: no pairs")
            return
        tr = [s.tasks_per_s / f.tasks_per_s for s, f in chosen]
        line = f"{label} ({len(chosen)} pairs): tasks/s ratio median {statistics.median(tr):.2f}x ({_list(tr)})"
        if args.cpu:  # a --quick run's CPU covers its other phases too: not per worker task
            cr = [s.cpu_ms_per_task / f.cpu_ms_per_task for s, f in chosen]
            line += f"; CPU per task ratio median {statistics.median(cr):.2f}x ({_list(cr)})"
        print(line)

    print()
    summary("all", pairs)
    summary(f"quiet (steal < {args.quiet_steal} in both runs)", [
        (s, f) for s, f in pairs if s.steal < args.quiet_steal and f.steal < args.quiet_steal
    ])  # fmt: skip
    print("targets (issue 8): --quick tasks/s ratio >= 0.5x; --cpu CPU per task ratio <= 1.5x")


if __name__ == "__main__":
    main()
