"""Plain-page browser harness for the widgets' ESM (recipe §4): no Jupyter, a fake model, real Chromium.

A ``ThreadingHTTPServer`` on 127.0.0.1:0 serves ``index.html`` (below) and the package's
``conductor_lab/widgets/static/`` files. The page imports a widget's ESM and renders it against a
fake anywidget model that logs what the JS does: ``log.saved`` (one dict of changed traits per
``save_changes()``), ``log.sent`` (custom messages). ``harness.push(key, value)`` plays a kernel
update (the change event fires, nothing is logged as dirty). Tests feed the real Python widget's
``get_state()`` in and replay ``log.saved`` into ``widget.set_state`` to prove Python accepts it.

Also here: Layout fixtures (a small hand-written one and a generated N-node one) and a palette
for tests, used by the browser tests and by ``bench/widget_render.py``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

Json = dict[str, Any]

STATIC = Path(__file__).resolve().parents[2] / "conductor_lab" / "widgets" / "static"
CHROMIUM = "/usr/bin/chromium"
CHROME_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

INDEX_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>widget harness</title></head>
<body style="margin:8px;width:1100px">
<div id="root"></div>
<script type="module">
function makeModel(state) {
  const ls = {};
  const log = { saved: [], sent: [], dirty: {} };
  const emit = (ev, ...a) => (ls[ev] || []).slice().forEach((f) => f(...a));
  const model = {
    get: (k) => state[k],
    set: (k, v) => { state[k] = v; log.dirty[k] = v; emit("change:" + k, null, v); emit("change"); },
    on: (ev, f) => ev.split(" ").forEach((e) => (ls[e] ||= []).push(f)),
    off: (ev, f) => {
      if (!ev) { for (const k in ls) delete ls[k]; return; }
      ev.split(" ").forEach((e) => { ls[e] = (ls[e] || []).filter((g) => f && g !== f); });
    },
    save_changes: () => { log.saved.push(log.dirty); log.dirty = {}; },
    send: (content) => log.sent.push(JSON.parse(JSON.stringify(content))),
    widget_manager: {},
  };
  // a kernel -> browser update: the view hears the change, nothing becomes dirty
  const push = (k, v) => { state[k] = v; emit("change:" + k, null, v); emit("change"); };
  const listeners = () => Object.values(ls).reduce((n, a) => n + a.length, 0);
  return { model, log, push, listeners, state };
}
window.mountWidget = async (name, state, css) => {
  const style = document.createElement("style");
  style.textContent = css || "";
  document.head.append(style);
  const mod = await import("/static/" + name + ".js");
  let def = mod.default ?? mod;
  if (typeof def === "function") def = await def();
  const h = makeModel(state);
  const el = document.getElementById("root");
  await def.initialize?.({ model: h.model });
  const t0 = performance.now();
  const cleanup = await def.render({ model: h.model, el });
  h.renderMs = performance.now() - t0;
  h.cleanup = cleanup;
  window.harness = h;
  return h.renderMs;
};
window.harnessReady = true;
</script>
</body></html>
"""

_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


class _Handler(BaseHTTPRequestHandler):
    """``/`` and ``/index.html``: the harness page; ``/static/<file>``: the widgets' static files."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            self._reply(200, INDEX_HTML.encode(), "text/html; charset=utf-8")
            return
        if path.startswith("/static/"):
            name = path.removeprefix("/static/")
            file = STATIC / name
            if "/" not in name and file.suffix in _TYPES and file.is_file():
                self._reply(200, file.read_bytes(), _TYPES[file.suffix])
                return
        self._reply(404, b"not found", "text/plain")

    def _reply(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (signature of the base)
        """Quiet: no access log on stderr."""


@contextlib.contextmanager
def serve_harness() -> Iterator[str]:
    """Serve the harness page on a free 127.0.0.1 port; yields the base URL; stops on exit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="widget-harness", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def launch_chromium() -> Iterator[Browser]:
    """Debian's Chromium through Playwright (never a downloaded browser)."""
    pw: Playwright = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        pw.stop()


def widget_state(widget: Any) -> tuple[Json, str]:
    """The widget's synced state without ``_esm``/``_css``, and its CSS text."""
    state = dict(widget.get_state())
    state.pop("_esm", None)
    css = str(state.pop("_css", "") or "")
    return state, css


class WidgetPage:
    """One browser page with the harness loaded, the errors it raised, and helpers to drive it."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", self._on_console)
        page.goto(base_url + "/index.html")
        page.wait_for_function("() => window.harnessReady === true")

    def _on_console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.errors.append(f"console.error: {msg.text}")

    def mount(self, widget: Any, module: str) -> float:
        """Render ``widget``'s ESM (``static/<module>.js``, checked to be what the widget ships)."""
        shipped = str(widget.get_state()["_esm"])
        assert shipped == (STATIC / f"{module}.js").read_text(encoding="utf-8"), "widget _esm is not the file"
        state, css = widget_state(widget)
        return float(self.page.evaluate("([n, s, c]) => window.mountWidget(n, s, c)", [module, state, css]))

    def mount_state(self, module: str, state: Json, css: str = "") -> float:
        """Render ``static/<module>.js`` against a hand-made state (benchmarks)."""
        return float(self.page.evaluate("([n, s, c]) => window.mountWidget(n, s, c)", [module, state, css]))

    def saved(self) -> list[Json]:
        """What the ESM synced: one dict of changed traits per ``save_changes()``."""
        return list(self.page.evaluate("() => window.harness.log.saved"))

    def sent(self) -> list[Json]:
        """Custom messages the ESM sent (``model.send``)."""
        return list(self.page.evaluate("() => window.harness.log.sent"))

    def push(self, key: str, value: Any) -> None:
        """Play a kernel update of one trait."""
        self.page.evaluate("([k, v]) => window.harness.push(k, v)", [key, value])

    def listeners(self) -> int:
        return int(self.page.evaluate("() => window.harness.listeners()"))

    def cleanup(self) -> None:
        """Call the cleanup function ``render`` returned."""
        self.page.evaluate("() => window.harness.cleanup && window.harness.cleanup()")


# ------------------------------------------------------------------------------------------------
# Fixtures: layouts and a palette


def palette_for_tests() -> Json:
    """The real palette once ``conductor_lab.widgets.palette`` exists, else a small stand-in."""
    try:
        from conductor_lab.widgets.palette import palette_json
    except ImportError:
        def style(fill: str, stroke: str, icon: str, label: str) -> Json:
            return {"fill": fill, "stroke": stroke, "text": stroke, "icon": icon, "label": label}

        return {"status": {
            "SCHEDULED": style("#cbe2f7", "#11497a", "◷", "Scheduled"),
            "IN_PROGRESS": style("#fff5da", "#c2920d", "▶", "In progress"),
            "COMPLETED": style("#aee1b8", "#163e1d", "✓", "Completed"),
            "FAILED": style("#f9c6c9", "#7f050b", "✗", "Failed"),
            "NOT_EXECUTED": style("#fafafa", "#c8c8c8", "○", "Not executed"),
            "RUNNING": style("#fff5da", "#c2920d", "▶", "Running"),
        }}
    return palette_json()


def _node(id_: str, shape: str, type_: str, x: float, y: float, w: float = 160, h: float = 44, *,
          label: str | None = None, sublabel: str = "", parent: str | None = None,
          badge: str | None = None, collapsible: bool = False, collapsed: bool = False) -> Json:  # fmt: skip
    terminal = id_ in ("__start__", "__end__")
    return {
        "id": id_, "ref": None if terminal else id_, "label": label or id_, "sublabel": sublabel,
        "type": type_, "shape": shape, "x": x, "y": y, "w": w, "h": h, "parent": parent,
        "badge": badge, "collapsible": collapsible, "collapsed": collapsed,
    }


def _edges(nodes: list[Json], pairs: list[tuple[str, str, str, str | None]]) -> list[Json]:
    """Edges from source bottom-centre to target top-centre (one bend when they are not aligned)."""
    by_id = {n["id"]: n for n in nodes}
    out = []
    for source, target, kind, label in pairs:
        s, t = by_id[source], by_id[target]
        x0, y0 = s["x"] + s["w"] / 2, s["y"] + s["h"]
        x1, y1 = t["x"] + t["w"] / 2, t["y"]
        if kind == "loop":  # back up the right-hand side
            x0, y0, x1, y1 = s["x"] + s["w"], s["y"] + s["h"] / 2, t["x"] + t["w"], t["y"] + t["h"] / 2
            points = [[x0, y0], [x0 + 30, y0], [x1 + 30, y1], [x1, y1]]
        elif x0 == x1:
            points = [[x0, y0], [x1, y1]]
        else:
            mid = (y0 + y1) / 2
            points = [[x0, y0], [x0, mid], [x1, mid], [x1, y1]]
        out.append({"id": f"{source}->{target}", "source": source, "target": target, "label": label,
                    "kind": kind, "points": points})
    return out


def small_layout() -> Json:
    """12 nodes, every shape: start -> fetch -> route(SWITCH) -> {a: notify, default: loop{step}} -> ...

    ``loop`` is an expanded DO_WHILE (group ``loop`` around ``step``, a loop back-edge),
    ``batch`` a collapsed one (badge "3 tasks"), then a fork with a sub-workflow and an event
    lane, a join, a wait and the end.
    """
    nodes = [
        _node("__start__", "terminal", "START", 230, 0, 80, 30, label="start"),
        _node("fetch", "rect", "SIMPLE", 190, 70, sublabel="fetch (SIMPLE)"),
        _node("route", "diamond", "SWITCH", 200, 150, 140, 60, sublabel="SWITCH"),
        _node("notify", "rect", "SIMPLE", 40, 260, sublabel="notify (SIMPLE)"),
        _node("loop", "loop", "DO_WHILE", 300, 260, sublabel="DO_WHILE", collapsible=True),
        _node("step", "system", "INLINE", 300, 340, sublabel="INLINE", parent="loop"),
        _node("batch", "loop", "DO_WHILE", 190, 440, badge="3 tasks", collapsible=True, collapsed=True,
              sublabel="DO_WHILE"),
        _node("fan", "fork", "FORK_JOIN", 170, 520, 200, 16),
        _node("child", "sub", "SUB_WORKFLOW", 80, 580, sublabel="child v2"),
        _node("publish", "event", "EVENT", 300, 580, sublabel="EVENT"),
        _node("merge", "join", "JOIN", 170, 670, 200, 16),
        _node("hold", "wait", "WAIT", 190, 730, sublabel="WAIT"),
        _node("__end__", "terminal", "END", 230, 820, 80, 30, label="end"),
    ]
    pairs: list[tuple[str, str, str, str | None]] = [
        ("__start__", "fetch", "next", None), ("fetch", "route", "next", None),
        ("route", "notify", "case", "a"), ("route", "loop", "default", "default"),
        ("loop", "step", "next", None), ("step", "loop", "loop", "loop"),
        ("notify", "batch", "next", None), ("loop", "batch", "next", None),
        ("batch", "fan", "next", None), ("fan", "child", "fork", None), ("fan", "publish", "fork", None),
        ("child", "merge", "join", None), ("publish", "merge", "join", None),
        ("merge", "hold", "next", None), ("hold", "__end__", "next", None),
    ]
    groups = [{"id": "loop", "label": "loop body", "x": 285, "y": 250, "w": 190, "h": 145}]
    return {"width": 500, "height": 850, "nodes": nodes, "edges": _edges(nodes, pairs), "groups": groups}


def synthetic_layout(n: int = 500, columns: int = 6) -> Json:
    """A generated Layout of ``n`` task nodes in rows of ``columns`` (plus start/end), shapes mixed.

    Every node has an edge to the node below it and every third one a diagonal edge as well, so
    there are about 1.3 edges per node, roughly what forks and switches give real blueprints.
    """
    shapes = [("rect", "SIMPLE"), ("system", "INLINE"), ("diamond", "SWITCH"), ("rect", "SIMPLE"),
              ("sub", "SUB_WORKFLOW"), ("wait", "WAIT"), ("event", "EVENT"), ("rect", "HTTP")]
    w, h, dx, dy = 170.0, 44.0, 200.0, 84.0
    rows = (n + columns - 1) // columns
    width = columns * dx
    nodes = [_node("__start__", "terminal", "START", width / 2 - 40, 0, 80, 30, label="start")]
    for i in range(n):
        shape, type_ = shapes[i % len(shapes)]
        nodes.append(_node(f"task_{i}", shape, type_, (i % columns) * dx + 15, 70 + (i // columns) * dy, w, h,
                           sublabel=f"t{i % 17} ({type_})"))
    nodes.append(_node("__end__", "terminal", "END", width / 2 - 40, 70 + rows * dy, 80, 30, label="end"))
    pairs: list[tuple[str, str, str, str | None]] = []
    for i in range(min(columns, n)):
        pairs.append(("__start__", f"task_{i}", "fork", None))
    for i in range(n):
        below = i + columns
        if below < n:
            pairs.append((f"task_{i}", f"task_{below}", "next", None))
            if i % 3 == 0 and (i % columns) + 1 < columns and below + 1 < n:
                pairs.append((f"task_{i}", f"task_{below + 1}", "case", f"c{i % 5}"))
        else:
            pairs.append((f"task_{i}", "__end__", "join", None))
    return {"width": width, "height": 70 + rows * dy + 30, "nodes": nodes, "edges": _edges(nodes, pairs),
            "groups": []}
