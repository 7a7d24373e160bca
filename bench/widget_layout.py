"""Blueprint graph -> layout -> SVG on a synthetic 500-node blueprint: median times of each step.

    python bench/widget_layout.py                 # ~500 nodes, 15 runs
    python bench/widget_layout.py --nodes 2000    # a bigger one
    python bench/widget_layout.py --runs 5 --seed 7

The blueprint is generated (seeded) from segments appended until the node count is reached:
chains of SIMPLE / INLINE / HTTP tasks, SWITCHes with 2-4 cases (one of them empty, some with a
nested FORK_JOIN), FORK_JOINs with 2-5 lanes and their JOIN (some lanes empty, some holding a
SWITCH), DO_WHILE loops with 2-8 body tasks (some with a SWITCH inside), and a TERMINATE in some
switch defaults. Loops stay expanded (``collapse_threshold`` above every body) so the layout sees
every node. Steps, each timed separately, no I/O:

1. ``blueprint_graph(definition)`` -> networkx.DiGraph
2. ``layout(graph)`` -> the layout JSON (dicts)
3. ``to_svg(layout, status)`` with a status map covering half the nodes
4. ``json.dumps(layout)`` (what the widget trait sync serialises)

Target: graph + layout + SVG < 1 s for 500 nodes (median; bigger ``--nodes`` print figures only).
Also printed: node / edge / group counts, the layout's size in px and its JSON / SVG sizes, and
whether a second build gives byte-identical layout JSON. Exit code 1 on a MISS.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import code_line, machine_line, print_table, verdict  # noqa: E402

from conductor_lab.widgets.graph import blueprint_graph  # noqa: E402
from conductor_lab.widgets.layout import layout  # noqa: E402
from conductor_lab.widgets.svg import to_svg  # noqa: E402

Json = dict[str, Any]
TARGET_S = 1.0
TARGET_NODES = 500


class Generator:
    """A seeded synthetic blueprint with a mix of control flow."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.n = 0

    def ref(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}_{self.n}"

    def leaf(self) -> Json:
        kind = self.rng.choice(["SIMPLE", "SIMPLE", "SIMPLE", "INLINE", "HTTP", "SET_VARIABLE"])
        ref = self.ref(kind.lower())
        return {"name": f"bench_{kind.lower()}", "taskReferenceName": ref, "type": kind}

    def chain(self, n: int) -> list[Json]:
        return [self.leaf() for _ in range(n)]

    def switch(self, depth: int) -> Json:
        cases: dict[str, list[Json]] = {}
        for i in range(self.rng.randint(2, 4)):
            if i == 0:
                cases[f"case{i}"] = []
            elif depth < 2 and self.rng.random() < 0.3:
                cases[f"case{i}"] = [self.leaf(), *self.fork(depth + 1)]
            else:
                cases[f"case{i}"] = self.chain(self.rng.randint(1, 3))
        default: list[Json] = []
        if self.rng.random() < 0.15:
            default = [{"name": "stop", "taskReferenceName": self.ref("terminate"), "type": "TERMINATE"}]
        elif self.rng.random() < 0.6:
            default = self.chain(self.rng.randint(1, 2))
        return {"name": "route", "taskReferenceName": self.ref("switch"), "type": "SWITCH",
                "evaluatorType": "value-param", "expression": "x", "decisionCases": cases,
                "defaultCase": default}  # fmt: skip

    def fork(self, depth: int) -> list[Json]:
        lanes: list[list[Json]] = []
        for _ in range(self.rng.randint(2, 5)):
            r = self.rng.random()
            if r < 0.1:
                lanes.append([])
            elif r < 0.3 and depth < 2:
                lanes.append([self.leaf(), self.switch(depth + 1)])
            else:
                lanes.append(self.chain(self.rng.randint(1, 4)))
        fork_ref = self.ref("fork")
        return [
            {"name": "fork", "taskReferenceName": fork_ref, "type": "FORK_JOIN", "forkTasks": lanes},
            {"name": "join", "taskReferenceName": self.ref("join"), "type": "JOIN"},
        ]

    def loop(self) -> Json:
        body = self.chain(self.rng.randint(1, 4))
        if self.rng.random() < 0.4:
            body.append(self.switch(2))
        body += self.chain(self.rng.randint(0, 2))
        return {"name": "loop", "taskReferenceName": self.ref("loop"), "type": "DO_WHILE",
                "loopCondition": "false", "loopOver": body}  # fmt: skip

    def blueprint(self, nodes: int) -> Json:
        tasks: list[Json] = []
        while self.n < nodes:
            r = self.rng.random()
            if r < 0.3:
                tasks += self.chain(self.rng.randint(1, 4))
            elif r < 0.55:
                tasks.append(self.switch(0))
            elif r < 0.8:
                tasks += self.fork(0)
            else:
                tasks.append(self.loop())
        return {"name": "bench_widget_layout", "version": 1, "tasks": tasks}


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times = []
    out = None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=500, help="task nodes in the synthetic blueprint")
    ap.add_argument("--runs", type=int, default=15, help="runs per step (median)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--svg", type=Path, help="also write the SVG here")
    args = ap.parse_args()

    print(machine_line())
    print(code_line())
    definition = Generator(args.seed).blueprint(args.nodes)
    big = 10**6  # keep every loop expanded

    t_graph, graph = timed(lambda: blueprint_graph(definition, collapse_threshold=big), args.runs)
    t_layout, lay = timed(lambda: layout(graph), args.runs)
    status = {n["id"]: {"status": "COMPLETED", "attempts": 1, "iterations": None, "taskId": ""}
              for n in lay["nodes"][::2]}  # fmt: skip
    t_svg, svg = timed(lambda: to_svg(lay, status, title="bench"), args.runs)
    t_json, text = timed(lambda: json.dumps(lay), args.runs)
    again = json.dumps(layout(blueprint_graph(definition, collapse_threshold=big)))
    if args.svg:
        args.svg.write_text(svg)

    loops = sum(1 for _, a in graph.nodes(data=True) if a["type"] == "DO_WHILE")
    print(
        f"blueprint: {graph.number_of_nodes()} nodes ({loops} loops), {graph.number_of_edges()} edges, "
        f"{len(lay['groups'])} groups; layout {lay['width']:.0f} x {lay['height']:.0f} px, "
        f"JSON {len(text) / 1024:.0f} KiB, SVG {len(svg) / 1024:.0f} KiB"
    )
    total = t_graph + t_layout + t_svg
    print_table(
        ["step", f"median of {args.runs}"],
        [["blueprint_graph", f"{t_graph * 1000:.1f} ms"], ["layout", f"{t_layout * 1000:.1f} ms"],
         ["to_svg", f"{t_svg * 1000:.1f} ms"], ["json.dumps(layout)", f"{t_json * 1000:.1f} ms"],
         ["graph + layout + svg", f"{total * 1000:.1f} ms"]],
    )  # fmt: skip
    deterministic = again == text
    fast = total < TARGET_S or args.nodes > TARGET_NODES
    if args.nodes <= TARGET_NODES:
        print(f"target graph + layout + svg < {TARGET_S:g} s: {verdict(fast)}")
    else:
        print(f"(the {TARGET_S:g} s target is for {TARGET_NODES} nodes)")
    print(f"same input -> identical layout JSON: {verdict(deterministic)}")
    return 0 if fast and deterministic else 1


if __name__ == "__main__":
    sys.exit(main())
