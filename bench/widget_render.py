"""GraphView's ESM in headless Chromium: mount time for a 500-node graph, cost of a status delta.

    python bench/widget_render.py                  # ~500 nodes, 9 runs
    python bench/widget_render.py --nodes 2000 --runs 5
    python bench/widget_render.py --generated      # the harness's grid layout, not a blueprint's

The Layout is helper graph's real one (``blueprint_graph`` + ``layout``) on the seeded synthetic
blueprint of ``bench/widget_layout.py`` (forks, switches, loops; every loop expanded), or, when
those modules are missing or ``--generated`` is given, ``tests.widgets.harness.synthetic_layout``.
The page is the plain-page harness of the browser tests (fake model, no Jupyter), so the figures
are the ESM's own cost: no comm, no JSON decoding of the state, no JupyterLab.

Each run opens a fresh page, imports the ESM once (not timed), then measures in the page with
``performance.now()``:

- render: ``render()`` alone, i.e. from mount until every node is in the DOM (it is synchronous);
- mount -> painted: the same plus style, layout and paint (two animation frames later);
- status delta: a new Status map in which 50 nodes changed (``harness.push("status", ...)``), until
  they carry the new ``data-status``; then until painted;
- for scale: a Status map in which every node changed, and a Layout push (full redraw).

Medians (min-max) over ``--runs``. There are no targets: figures only.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(1, str(BENCH.parent))

from _common import code_line, machine_line, print_table  # noqa: E402

from conductor_lab.widgets.views import GraphView  # noqa: E402
from tests.widgets.harness import (  # noqa: E402
    WidgetPage,
    launch_chromium,
    serve_harness,
    synthetic_layout,
    widget_state,
)

Json = dict[str, Any]

MOUNT_JS = """async ([state, css]) => {
  await import('/static/graph.js');                       // warm: the import is not timed
  const t0 = performance.now();
  await window.mountWidget('graph', state, css);
  const nodes = document.querySelectorAll('#root g.cl-node').length;
  const t1 = performance.now();
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  return { render: window.harness.renderMs, mounted: t1 - t0, painted: performance.now() - t0, nodes };
}"""

PUSH_JS = """async ([key, value, expect]) => {
  const t0 = performance.now();
  window.harness.push(key, value);
  const t1 = performance.now();
  const root = document.getElementById('root');
  const ok = Object.entries(expect).every(([id, s]) =>
    root.querySelector(`g.cl-node[data-id="${CSS.escape(id)}"]`)?.dataset.status === s);
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  return { applied: t1 - t0, painted: performance.now() - t0, ok };
}"""


def real_layout(nodes: int, seed: int) -> Json | None:
    """helper graph's layout of bench/widget_layout.py's synthetic blueprint, if both exist."""
    try:
        from widget_layout import Generator

        from conductor_lab.widgets.graph import blueprint_graph
        from conductor_lab.widgets.layout import layout
    except ImportError:
        return None
    definition = Generator(seed).blueprint(nodes)
    return dict(layout(blueprint_graph(definition, collapse_threshold=10**6)))


def entry(status: str) -> Json:
    return {"status": status, "attempts": 1, "iterations": None, "taskId": ""}


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ms ({min(values):.1f}-{max(values):.1f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=500, help="task nodes in the graph")
    ap.add_argument("--runs", type=int, default=9, help="fresh pages (median over them)")
    ap.add_argument("--delta", type=int, default=50, help="nodes changed by the status delta")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--generated", action="store_true", help="use the harness's generated grid layout")
    args = ap.parse_args()

    print(machine_line())
    print(code_line())
    lay = None if args.generated else real_layout(args.nodes, args.seed)
    source = "blueprint_graph + layout (bench/widget_layout.py blueprint)"
    if lay is None:
        lay, source = synthetic_layout(args.nodes), "tests.widgets.harness.synthetic_layout"
    ids = [n["id"] for n in lay["nodes"]]
    print(f"layout: {source}: {len(ids)} nodes, {len(lay['edges'])} edges, {len(lay['groups'])} groups, "
          f"{lay['width']:.0f} x {lay['height']:.0f} px")

    # before: every other node COMPLETED; the delta: `--delta` of the others start (IN_PROGRESS)
    before = {i: entry("COMPLETED") for i in ids[::2]}
    fresh = [i for i in ids if i not in before][: args.delta]
    delta = copy.deepcopy(before) | {i: entry("IN_PROGRESS") for i in fresh}
    everything = {i: entry("FAILED") for i in ids}
    view = GraphView(layout=lay, status=before, run_status="RUNNING", title="bench")
    state, css = widget_state(view)
    relaid = copy.deepcopy(state["graph"])

    figures: dict[str, list[float]] = {k: [] for k in (
        "render", "mounted", "painted", "delta", "delta_painted", "all", "all_painted", "relayout")}
    with serve_harness() as url, launch_chromium() as browser:
        for _ in range(args.runs):
            context = browser.new_context(viewport={"width": 1200, "height": 900})
            wp = WidgetPage(context.new_page(), url)
            m = wp.page.evaluate(MOUNT_JS, [state, css])
            assert m["nodes"] == len(ids), m
            d = wp.page.evaluate(PUSH_JS, ["status", delta, {i: "IN_PROGRESS" for i in fresh}])
            a = wp.page.evaluate(PUSH_JS, ["status", everything, {ids[0]: "FAILED", ids[-1]: "FAILED"}])
            r = wp.page.evaluate(PUSH_JS, ["graph", relaid, {ids[0]: "FAILED"}])
            assert d["ok"] and a["ok"] and r["ok"], (d, a, r)
            assert not wp.errors, wp.errors
            context.close()
            figures["render"].append(m["render"])
            figures["mounted"].append(m["mounted"])
            figures["painted"].append(m["painted"])
            figures["delta"].append(d["applied"])
            figures["delta_painted"].append(d["painted"])
            figures["all"].append(a["applied"])
            figures["all_painted"].append(a["painted"])
            figures["relayout"].append(r["painted"])

    print_table(
        ["step", f"median (min-max) of {args.runs}"],
        [
            [f"render(): mount -> {len(ids)} nodes in the DOM", fmt(figures["render"])],
            ["mountWidget incl. fake model", fmt(figures["mounted"])],
            ["mount -> painted", fmt(figures["painted"])],
            [f"status delta, {len(fresh)} nodes changed", fmt(figures["delta"])],
            ["  ... -> painted", fmt(figures["delta_painted"])],
            [f"status change of all {len(ids)} nodes", fmt(figures["all"])],
            ["  ... -> painted", fmt(figures["all_painted"])],
            ["layout push (full redraw) -> painted", fmt(figures["relayout"])],
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
