"""Many concurrently running workflows: start rate, memory per running workflow, restart time.

    python bench/parked.py                      # 1,000,000 workflows (several minutes)
    python bench/parked.py --quick              # 20,000 workflows
    python bench/parked.py --workflows 200000 --no-fsync

One workflow definition with a single SIMPLE task that nobody polls, so every started workflow
stays RUNNING with one SCHEDULED task in the queue. Steps:

1. start a fresh server on a temp DuckDB file; RSS before.
2. ``--starters`` processes x ``--threads`` keep-alive ``http.client`` connections start N workflows
   as fast as they can (progress every 10 s) -> start rate; stops early at ``--time-limit``.
3. RSS after, (RSS after - RSS before) / N = bytes per running workflow; queue size == N;
   DuckDB file size.
4. SIGTERM (time to exit), restart on the same file, time until the "listening" line (the server
   prints it after recovery has rebuilt workflows and queues from DuckDB); queue size == N
   again; RSS after restart per workflow.

``--kill``: step 4 is a crash instead: SIGKILL the moment the last start is acknowledged (after
one ``GET /metrics`` for the number of group commits not yet folded), so the commit log still
holds the batches not folded into DuckDB (the fold runs every 2 s or 2,048 commits) and the
restart replays them. Step 3's
figures are then read after the restart only, and every acknowledged start must be back.

Targets (issue): <= 2 KB RSS per running workflow; restart <= 60 s. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import sys
import tempfile
import threading
import time
import traceback
from array import array
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    RawClient,
    Server,
    code_line,
    load_line,
    machine_line,
    mib,
    mono,
    ms,
    percentile,
    print_table,
    rate,
    scrape_metrics,
    verdict,
)

WF_NAME = "bench_park_wf"
TASK_TYPE = "bench_park_task"
TARGET_BYTES_PER_WF = 2048
TARGET_RESTART_S = 60.0


def register(api: str) -> None:
    c = RawClient(api)
    try:
        c.register_task_defs(
            [
                {
                    "name": TASK_TYPE,
                    "retryCount": 0,
                    "timeoutSeconds": 0,
                    "responseTimeoutSeconds": 3600,
                    "ownerEmail": "bench@example.com",
                }
            ]
        )
        c.register_workflow_def(
            {
                "name": WF_NAME,
                "version": 1,
                "schemaVersion": 2,
                "ownerEmail": "bench@example.com",
                "tasks": [
                    {
                        "name": TASK_TYPE,
                        "taskReferenceName": "park",
                        "type": "SIMPLE",
                        "inputParameters": {"n": "${workflow.input.n}"},
                    }
                ],
            }
        )
    finally:
        c.close()


def starter_proc(
    api: str,
    first: int,
    count: int,
    threads: int,
    ready: Any,
    go: MpEvent,
    stop: MpEvent,
    started: Synchronized[int],
    out: Any,
) -> None:
    """Start workflows ``first .. first+count-1`` over ``threads`` connections until done or ``stop``."""
    try:
        lock = threading.Lock()
        nxt = [first]
        end = first + count
        lat = array("d")
        errors = [0]

        def run() -> None:
            c = RawClient(api)
            c.json("GET", "/health")
            mine = array("d")
            local = 0
            go.wait()
            while not stop.is_set():
                with lock:
                    i = nxt[0]
                    if i >= end:
                        break
                    nxt[0] = i + 1
                t0 = mono()
                try:
                    c.start_workflow(WF_NAME, {"n": i})
                except Exception:
                    with lock:
                        errors[0] += 1
                    c.close()
                    continue
                mine.append(mono() - t0)
                local += 1
                if local == 50:
                    with started.get_lock():
                        started.value += local
                    local = 0
            if local:
                with started.get_lock():
                    started.value += local
            c.close()
            with lock:
                lat.extend(mine)

        ts = [threading.Thread(target=run) for _ in range(threads)]
        for t in ts:
            t.start()
        ready.put(1)
        for t in ts:
            t.join()
        out.put((lat.tobytes(), errors[0]))
    except Exception:
        ready.put(1)
        out.put(traceback.format_exc())


def start_many(server: Server, args: argparse.Namespace) -> tuple[int, float, list[float], int, bool]:
    """Returns (started, seconds, latencies, errors, stopped_early)."""
    n = args.workflows
    ctx = mp.get_context("spawn")
    ready, out = ctx.Queue(), ctx.Queue()
    go, stop = ctx.Event(), ctx.Event()
    started = ctx.Value("q", 0)
    share = [n // args.starters + (1 if i < n % args.starters else 0) for i in range(args.starters)]
    procs = []
    first = 0
    for i in range(args.starters):
        p = ctx.Process(
            target=starter_proc,
            args=(server.api, first, share[i], args.threads, ready, go, stop, started, out),
            daemon=True,
        )
        p.start()
        procs.append(p)
        first += share[i]
    stopped_early = False
    try:
        for _ in procs:
            ready.get(timeout=120)
        time.sleep(0.2)
        t_go = mono()
        go.set()
        last_t, last_n = t_go, 0
        while any(p.is_alive() for p in procs) and out.qsize() < len(procs):
            time.sleep(0.05)
            now = mono()
            if now - t_go > args.time_limit and not stop.is_set():
                print(f"  time limit {args.time_limit:g}s reached: stopping the starters", flush=True)
                stop.set()
                stopped_early = True
            if now - last_t >= args.progress:
                cur = started.value
                print(
                    f"  {cur:>10,} started  {now - t_go:6.0f}s  avg {rate(cur, now - t_go):6,.0f}/s  "
                    f"last {rate(cur - last_n, now - last_t):6,.0f}/s  server RSS {mib(server.rss())}  "
                    f"db {mib(server.db_bytes())}  {load_line()}",
                    flush=True,
                )
                last_t, last_n = now, cur
        lat: list[float] = []
        errors = 0
        for _ in procs:
            got = out.get(timeout=600)
            if isinstance(got, str):
                raise RuntimeError(f"starter failed:\n{got}")
            raw, errs = got
            a = array("d")
            a.frombytes(raw)
            lat.extend(a)
            errors += errs
        t_end = mono()
        for p in procs:
            p.join(30)
        return len(lat), t_end - t_go, lat, errors, stopped_early
    finally:
        stop.set()
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join(10)


def error_summary(text: str) -> str:
    """The most telling line of a server failure (the last exception line of its stderr)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "Error" in ln or "Exception" in ln:
            return ln
    return lines[-1] if lines else text


def settle_rss(server: Server, seconds: float = 2.0) -> int:
    """RSS once it stops moving (commits land, buffers settle), at most ``seconds`` of waiting."""
    prev = server.rss()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.25)
        cur = server.rss()
        if abs(cur - prev) < 256 * 1024:
            return cur
        prev = cur
    return server.rss()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--workflows", type=int, default=1_000_000, help="N running workflows (default 1,000,000)"
    )
    ap.add_argument("--quick", action="store_true", help="20,000 workflows")
    ap.add_argument("--starters", type=int, default=2, help="starter processes (default 2)")
    ap.add_argument("--threads", type=int, default=32, help="connections per starter process (default 32)")
    ap.add_argument("--no-fsync", action="store_true", help="run the server with --no-fsync")
    ap.add_argument("--kill", action="store_true", help="crash (SIGKILL) instead of SIGTERM: recovery replays the log")
    ap.add_argument("--time-limit", type=float, default=900.0, help="stop starting after this many seconds")
    ap.add_argument("--progress", type=float, default=10.0, help="seconds between progress lines")
    ap.add_argument("--server-log-level", default=None, help="server --log-level (default: server default)")
    ap.add_argument("--dir", default=None, help="directory for the DuckDB file and logs (default: temp)")
    ap.add_argument("--keep", action="store_true", help="keep the DuckDB file and logs")
    args = ap.parse_args(argv)
    if args.quick:
        args.workflows = 20_000

    print(machine_line(), flush=True)
    print(code_line(), flush=True)
    tmp = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="cl-bench-concurrent-"))
    tmp.mkdir(parents=True, exist_ok=True)
    db = tmp / "concurrent.duckdb"
    for f in (db, Path(str(db) + ".wal")):
        f.unlink(missing_ok=True)
    server = Server(db, durable=not args.no_fsync, log_dir=tmp, log_level=args.server_log_level)
    mode = "no fsync" if args.no_fsync else "durable (group commit, fsync)"
    print(
        f"{args.workflows:,} workflows parked on an unpolled SIMPLE task; server {mode}; db {db}", flush=True
    )
    rows: list[list[object]] = []
    try:
        t_first = server.start()
        register(server.api)
        rss0 = settle_rss(server, 1.0)
        print(f"server pid {server.pid} listening after {t_first:.2f}s; RSS {mib(rss0)}", flush=True)

        print(f"starting: {args.starters} processes x {args.threads} connections", flush=True)
        n, secs, lat, errors, early = start_many(server, args)
        unfolded = 0.0
        if args.kill:
            unfolded = scrape_metrics(server.url).get(("conductor_lab_journal_unfolded_records", frozenset()), 0.0)
            server.kill()
            print(f"started {n:,} in {secs:.1f}s = {rate(n, secs):,.0f}/s (errors {errors}); killed (SIGKILL) with "
                  f"{unfolded:,.0f} group commits not folded into DuckDB", flush=True)  # fmt: skip
            rss1 = qsize1 = running1 = 0
            search_s, stop_s, code1 = 0.0, 0.0, server.returncode()
            db1 = db2 = server.db_bytes()
        else:
            rss1 = settle_rss(server)
            c = RawClient(server.api)
            qsize1 = c.queue_size(TASK_TYPE)
            t0 = time.perf_counter()
            running1 = c.search_total(f"workflowType = '{WF_NAME}' AND status = 'RUNNING'")
            search_s = time.perf_counter() - t0
            c.close()
            db1 = server.db_bytes()
            print(f"started {n:,} in {secs:.1f}s = {rate(n, secs):,.0f}/s (errors {errors}"
                  f"{', stopped early by the time limit' if early else ''})", flush=True)  # fmt: skip
            print("stopping (SIGTERM) ...", flush=True)
            stop_s = server.stop()
            code1 = server.returncode()
            db2 = server.db_bytes()
            print(f"stopped in {stop_s:.2f}s (exit {code1}); restarting on the same file ...", flush=True)
        t_restart = time.perf_counter()
        restart_error = ""
        rss2 = qsize2 = running2 = 0
        recovery_s, stop2_s, code2 = 0.0, 0.0, None
        try:
            restart_s = server.start()
        except RuntimeError as e:
            restart_s = time.perf_counter() - t_restart
            restart_error = error_summary(str(e))
            print(f"RESTART FAILED after {restart_s:.2f}s: {restart_error}", flush=True)
        if not restart_error:
            rss2 = server.rss()
            recovery_s = scrape_metrics(server.url).get(("conductor_lab_recovery_seconds", frozenset()), 0.0)
            c = RawClient(server.api)
            qsize2 = c.queue_size(TASK_TYPE)
            running2 = c.search_total(f"workflowType = '{WF_NAME}' AND status = 'RUNNING'")
            c.close()
            print(f"listening again after {restart_s:.2f}s; queue size {qsize2:,}", flush=True)
            stop2_s = server.stop()
            code2 = server.returncode()

        per1 = (rss1 - rss0) / n if n else float("nan")
        per2 = (rss2 - rss0) / n if n and not restart_error else float("nan")
        ok_restart = not restart_error and restart_s <= TARGET_RESTART_S
        rows = [
            ["workflows started", f"{n:,}", "", ""],
            ["start elapsed", f"{secs:.1f} s", "", ""],
            ["start rate", f"{rate(n, secs):,.0f} /s", "", ""],
            ["start latency p50 / p99", f"{ms(percentile(lat, 50))} / {ms(percentile(lat, 99))}", "", ""],
            ["start errors", str(errors), "0", verdict(errors == 0)],
            ["server RSS before (idle, defs registered)", mib(rss0), "", ""],
        ]
        if args.kill:
            rows += [
                ["group commits not folded at the kill", f"{unfolded:,.0f}", "", ""],
                ["DuckDB file+wal at the kill", mib(db1), "", ""],
            ]
        else:
            rows += [
                ["server RSS after starting", mib(rss1), "", ""],
                ["RSS per running workflow", f"{per1:,.0f} B", "<= 2,048 B", verdict(per1 <= TARGET_BYTES_PER_WF)],
                ["queue size after starting", f"{qsize1:,}", f"= {n:,}", verdict(qsize1 == n)],
                ["RUNNING by search (time)", f"{running1:,} ({search_s * 1000:.0f} ms)", f"= {n:,}",
                 verdict(running1 == n)],
                ["DuckDB file+wal while running", mib(db1), "", ""],
                ["DuckDB file+wal after stop", mib(db2), "", ""],
                ["DuckDB bytes per workflow", f"{db2 / max(1, n):,.0f} B", "", ""],
                ["stop (SIGTERM -> exit)", f"{stop_s:.2f} s (exit {code1})", "exit 0", verdict(code1 == 0)],
            ]
        rows.append(
            [f"restart after {'SIGKILL' if args.kill else 'SIGTERM'} (spawn -> listening, recovery)",
             f"{restart_s:.2f} s" + (" FAILED" if restart_error else ""), "<= 60 s", verdict(ok_restart)]
        )  # fmt: skip
        if restart_error:
            rows.append(["restart error (full line above)", restart_error[:60], "", "MISS"])
        else:
            rows += [
                ["of it, loading definitions and running workflows", f"{recovery_s:.2f} s", "", ""],
                ["queue size after restart", f"{qsize2:,}", f"= {n:,}", verdict(qsize2 == n)],
                ["RUNNING by search after restart", f"{running2:,}", f"= {n:,}", verdict(running2 == n)],
                ["server RSS after restart (at listening)", mib(rss2), "", ""],
                ["RSS per running workflow after restart", f"{per2:,.0f} B", "<= 2,048 B",
                 verdict(per2 <= TARGET_BYTES_PER_WF)],
                ["second stop", f"{stop2_s:.2f} s (exit {code2})", "exit 0", verdict(code2 == 0)],
            ]  # fmt: skip
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the server", file=sys.stderr)
        server.stop(60)
        return 130
    finally:
        if server.alive():
            server.stop(60)
    print("\n" + "=" * 100)
    print(f"bench/parked.py{' --kill' if args.kill else ''}: {args.workflows:,} workflows, 1 parked SIMPLE task "
          f"each; server {mode}; "
          f"{args.starters} starter processes x {args.threads} connections")  # fmt: skip
    print(machine_line())
    print(code_line())
    print()
    print_table(["figure", "measured", "target", "verdict"], rows)
    restart_failed = any(str(r[0]).startswith("restart error") for r in rows)
    if args.keep or args.dir or restart_failed:
        print(f"\nfiles kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if restart_failed else 0


if __name__ == "__main__":
    sys.exit(main())
