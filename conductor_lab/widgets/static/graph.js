// conductor_lab GraphView: draws a Layout that Python computed (conductor_lab.widgets.layout) as SVG,
// paints the run's Status map on it, and reports clicks back through the model.
//
// Python decides everything (positions, which actions are allowed, what the detail panel says);
// this module only draws and reports: `selected` and `expanded` are trait writes, toolbar actions
// are custom messages {type: "action", verb, selected}. Status updates are applied as deltas:
// only the nodes whose Status entry changed are touched, the SVG is never rebuilt for them.
// Colours come from the `palette` trait (conductor_lab.widgets.palette); graph.css only holds
// neutral greys for chrome and blueprint nodes. No innerHTML: all data goes through textContent.

const SVG_NS = "http://www.w3.org/2000/svg";
const ZOOM_STEP = 1.25;
const SHAPE_NAMES = {
  rect: "task", diamond: "switch", fork: "fork", join: "join", loop: "loop", sub: "sub-workflow",
  terminal: "start / end", event: "event", wait: "wait", system: "system task",
};
const TABS = [["input", "Input"], ["output", "Output"], ["logs", "Logs"], ["attempts", "Attempts"]];
let instances = 0;

/** An HTML element with a class and optional text (always textContent). */
function html(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

/** An SVG element with a class and attributes. */
function svg(tag, cls, attrs) {
  const e = document.createElementNS(SVG_NS, tag);
  if (cls) e.setAttribute("class", cls);
  if (attrs) for (const k in attrs) e.setAttribute(k, String(attrs[k]));
  return e;
}

const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : 0);
const r2 = (v) => Math.round(num(v) * 100) / 100;

/** Cut `text` to about what fits in `width` px (full text stays in the node's <title>). */
function fit(text, width, charPx = 6.6) {
  const s = String(text ?? "");
  const max = Math.max(3, Math.floor(width / charPx));
  return s.length <= max ? s : s.slice(0, max - 1) + "…";
}

/** The outline elements of a node shape, drawn in the node's local box (0, 0, w, h). */
function shapeElements(shape, w, h) {
  const main = [];
  const extra = [];
  switch (shape) {
    case "diamond":
      main.push(svg("polygon", "cl-shape", { points: `${w / 2},0 ${w},${h / 2} ${w / 2},${h} 0,${h / 2}` }));
      break;
    case "fork":
    case "join":
      main.push(svg("rect", "cl-shape cl-bar", { x: 0, y: 0, width: w, height: h, rx: Math.min(h / 2, 6) }));
      break;
    case "terminal":
      main.push(svg("rect", "cl-shape", { x: 0, y: 0, width: w, height: h, rx: h / 2 }));
      break;
    case "loop":
      main.push(svg("rect", "cl-shape", { x: 0, y: 0, width: w, height: h, rx: 14 }));
      extra.push(svg("path", "cl-shape-extra cl-loop-mark", {
        d: `M ${w - 18} ${h / 2 - 6} a 6 6 0 1 1 -6 6 m 0 0 l -3 -3 m 3 3 l 3 -3`,
      }));
      break;
    case "sub":
      main.push(svg("rect", "cl-shape", { x: 0, y: 0, width: w, height: h, rx: 6 }));
      extra.push(svg("rect", "cl-shape-extra", {
        x: 4, y: 4, width: Math.max(0, w - 8), height: Math.max(0, h - 8), rx: 4,
      }));
      break;
    case "event": {
      const k = Math.min(12, w / 6);
      main.push(svg("polygon", "cl-shape", { points: `${k},0 ${w},0 ${w - k},${h} 0,${h}` }));
      break;
    }
    case "wait": {
      const c = Math.min(10, h / 3);
      main.push(svg("polygon", "cl-shape", {
        points: `${c},0 ${w - c},0 ${w},${c} ${w},${h - c} ${w - c},${h} ${c},${h} 0,${h - c} 0,${c}`,
      }));
      break;
    }
    case "system":
      main.push(svg("rect", "cl-shape", { x: 0, y: 0, width: w, height: h, rx: 3 }));
      extra.push(svg("line", "cl-shape-extra", { x1: 7, y1: 0, x2: 7, y2: h }));
      extra.push(svg("line", "cl-shape-extra", { x1: w - 7, y1: 0, x2: w - 7, y2: h }));
      break;
    default:
      main.push(svg("rect", "cl-shape", { x: 0, y: 0, width: w, height: h, rx: 6 }));
  }
  return { main, extra };
}

/** A polyline's point at half its length (where an edge label goes). */
function midpoint(points) {
  if (points.length === 0) return [0, 0];
  let total = 0;
  const seg = [];
  for (let i = 1; i < points.length; i++) {
    const d = Math.hypot(points[i][0] - points[i - 1][0], points[i][1] - points[i - 1][1]);
    seg.push(d);
    total += d;
  }
  let rest = total / 2;
  for (let i = 1; i < points.length; i++) {
    if (rest <= seg[i - 1] && seg[i - 1] > 0) {
      const t = rest / seg[i - 1];
      const [a, b] = [points[i - 1], points[i]];
      return [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])];
    }
    rest -= seg[i - 1];
  }
  return points[points.length - 1];
}

class GraphDom {
  constructor(model, el) {
    this.model = model;
    this.el = el;
    this.uid = `cl${++instances}`;
    this.handlers = [];
    this.nodes = new Map(); // id -> {g, node, fills, strokes, texts, icon, title, attempts, iterations}
    this.edges = new Map(); // id -> {g, path}
    this.drawnStatus = new Map(); // id -> JSON of the Status entry last painted ("" = none)
    this.drawnExecuted = new Set();
    this.legendKey = null;
    this.activeTab = "input";
    this.vb = { x: 0, y: 0, w: 100, h: 100 };
    this.bounds = { w: 100, h: 100 };
    this.build();
    this.on("change:graph", () => this.drawGraph());
    this.on("change:status", () => this.applyStatusDelta());
    this.on("change:executed_edges", () => this.applyExecutedDelta());
    this.on("change:run_status", () => { this.drawRunStatus(); this.repaintAll(); });
    this.on("change:palette", () => {
      this.applyPaletteVars();
      this.drawRunStatus();
      this.repaintAll();
      this.drawDetail();
    });
    this.on("change:title", () => this.drawTitle());
    this.on("change:actions", () => this.drawActions());
    this.on("change:message", () => this.drawMessage());
    this.on("change:selected", () => this.drawSelection());
    this.on("change:detail", () => this.drawDetail());
    this.applyPaletteVars();
    this.drawTitle();
    this.drawRunStatus();
    this.drawActions();
    this.drawMessage();
    this.drawGraph();
    this.drawDetail();
  }

  on(event, fn) {
    this.model.on(event, fn);
    this.handlers.push([event, fn]);
  }

  destroy() {
    for (const [event, fn] of this.handlers) this.model.off(event, fn);
    this.handlers = [];
    this.root.remove();
  }

  palette() { return this.model.get("palette") || {}; }

  statusStyle(status) {
    const all = this.palette().status || {};
    return (status && all[status]) || null;
  }

  isRun() {
    const s = this.model.get("run_status");
    return s !== null && s !== undefined;
  }

  // ---------------------------------------------------------------- scaffold

  build() {
    const root = (this.root = html("div", "cl-graph"));
    const bar = html("div", "cl-toolbar");
    this.titleEl = html("span", "cl-title");
    this.runStatusEl = html("span", "cl-chip cl-run-status");
    this.actionsEl = html("span", "cl-actions");
    this.messageEl = html("span", "cl-message");
    this.messageEl.setAttribute("role", "status");
    this.messageEl.setAttribute("aria-live", "polite");
    const spacer = html("span", "cl-spacer");
    this.searchEl = html("input", "cl-search");
    this.searchEl.type = "search";
    this.searchEl.placeholder = "find node";
    this.searchEl.setAttribute("aria-label", "find node");
    this.searchCountEl = html("span", "cl-search-count");
    const zoom = html("span", "cl-zoom");
    const zoomButtons = [["out", "−", "zoom out"], ["fit", "fit", "fit to view"], ["in", "+", "zoom in"]];
    for (const [z, label, tip] of zoomButtons) {
      const b = html("button", "cl-btn cl-zoom-btn", label);
      b.type = "button";
      b.dataset.zoom = z;
      b.title = tip;
      zoom.append(b);
    }
    bar.append(this.titleEl, this.runStatusEl, this.actionsEl, this.messageEl, spacer,
      this.searchEl, this.searchCountEl, zoom);

    const body = html("div", "cl-body");
    this.canvasEl = html("div", "cl-canvas");
    this.canvasEl.title = "drag to pan, Ctrl+wheel to zoom";
    const s = (this.svgEl = svg("svg", "cl-svg", { preserveAspectRatio: "xMidYMin meet" }));
    s.setAttribute("role", "img");
    const defs = svg("defs");
    // marker ids are per instance: several graphs can share one notebook document
    const markers = [[`${this.uid}-arrow`, "cl-arrow"], [`${this.uid}-arrow-exec`, "cl-arrow cl-arrow-exec"]];
    for (const [id, cls] of markers) {
      const m = svg("marker", null, {
        id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
      });
      m.append(svg("path", cls, { d: "M 0 0 L 10 5 L 0 10 z" }));
      defs.append(m);
    }
    this.groupsEl = svg("g", "cl-groups");
    this.edgesEl = svg("g", "cl-edges");
    this.nodesEl = svg("g", "cl-nodes");
    s.append(defs, this.groupsEl, this.edgesEl, this.nodesEl);
    this.canvasEl.append(s);
    this.panelEl = html("div", "cl-panel");
    this.panelEl.hidden = true;
    body.append(this.canvasEl, this.panelEl);
    this.legendEl = html("div", "cl-legend");
    root.append(bar, body, this.legendEl);
    this.el.append(root);

    zoom.addEventListener("click", (e) => {
      const b = e.target.closest("[data-zoom]");
      if (!b) return;
      if (b.dataset.zoom === "fit") this.fitView();
      else this.zoomBy(b.dataset.zoom === "in" ? ZOOM_STEP : 1 / ZOOM_STEP);
    });
    this.actionsEl.addEventListener("click", (e) => {
      const b = e.target.closest("button[data-verb]");
      if (!b || b.disabled || b.getAttribute("aria-disabled") === "true") return;
      this.model.send({ type: "action", verb: b.dataset.verb, selected: this.model.get("selected") ?? null });
    });
    this.nodesEl.addEventListener("click", (e) => this.onNodeClick(e));
    this.nodesEl.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); this.onNodeClick(e); }
    });
    this.searchEl.addEventListener("input", () => this.drawSearch());
    this.searchEl.addEventListener("keydown", (e) => {
      if (e.key === "Enter") { e.preventDefault(); this.nextMatch(); }
      if (e.key === "Escape") { this.searchEl.value = ""; this.drawSearch(); }
    });
    this.installPanZoom();
  }

  // ---------------------------------------------------------------- toolbar

  drawTitle() {
    this.titleEl.textContent = this.model.get("title") || "";
  }

  drawRunStatus() {
    const s = this.model.get("run_status");
    const chip = this.runStatusEl;
    this.root.classList.toggle("cl-run", this.isRun());
    if (s === null || s === undefined) {
      chip.hidden = true;
      chip.textContent = "";
      chip.removeAttribute("data-status");
      return;
    }
    chip.hidden = false;
    paintChip(chip, String(s), this.statusStyle(String(s)));
  }

  /** Chrome colours the palette defines (edges, selection); backgrounds follow the notebook theme. */
  applyPaletteVars() {
    const ui = this.palette().ui || {};
    const done = this.statusStyle("COMPLETED");
    const vars = {
      "--cl-edge": ui.edge,
      "--cl-executed": ui.edgeExecuted ?? (done && done.stroke),
      "--cl-selection": ui.selection,
    };
    for (const [name, value] of Object.entries(vars)) {
      if (value) this.root.style.setProperty(name, String(value));
      else this.root.style.removeProperty(name);
    }
  }

  drawActions() {
    const list = this.model.get("actions") || [];
    const buttons = list.map((a) => {
      const b = html("button", "cl-btn cl-action", a.label || a.verb);
      b.type = "button";
      b.dataset.verb = String(a.verb ?? "");
      b.disabled = !a.enabled;
      if (a.title) b.title = String(a.title);
      return b;
    });
    this.actionsEl.replaceChildren(...buttons);
  }

  drawMessage() {
    const m = this.model.get("message") || "";
    this.messageEl.textContent = m;
    this.messageEl.hidden = !m;
  }

  // ---------------------------------------------------------------- the graph

  drawGraph() {
    const g = this.model.get("graph") || {};
    const nodes = Array.isArray(g.nodes) ? g.nodes : [];
    const edges = Array.isArray(g.edges) ? g.edges : [];
    const groups = Array.isArray(g.groups) ? g.groups : [];
    this.nodes.clear();
    this.edges.clear();
    this.drawnStatus.clear();
    this.drawnExecuted = new Set();

    const gf = document.createDocumentFragment();
    for (const grp of groups) {
      const e = svg("g", "cl-group");
      e.dataset.id = String(grp.id ?? "");
      e.append(svg("rect", "cl-group-box", {
        x: r2(grp.x), y: r2(grp.y), width: r2(grp.w), height: r2(grp.h), rx: 10,
      }));
      const t = svg("text", "cl-group-label", { x: r2(num(grp.x) + 8), y: r2(num(grp.y) + 14) });
      t.textContent = String(grp.label ?? "");
      e.append(t);
      gf.append(e);
    }
    this.groupsEl.replaceChildren(gf);

    const ef = document.createDocumentFragment();
    for (const edge of edges) ef.append(this.makeEdge(edge));
    this.edgesEl.replaceChildren(ef);

    const nf = document.createDocumentFragment();
    for (const node of nodes) nf.append(this.makeNode(node));
    this.nodesEl.replaceChildren(nf);

    this.bounds = { w: Math.max(num(g.width), 1), h: Math.max(num(g.height), 1) };
    const height = Math.min(Math.max(this.bounds.h + 40, 140), 640);
    this.canvasEl.style.height = `${height}px`;
    this.fitView();
    this.applyStatusDelta();
    this.applyExecutedDelta();
    this.drawSelection();
    this.drawSearch();
  }

  makeEdge(edge) {
    const id = String(edge.id ?? `${edge.source}->${edge.target}`);
    const g = svg("g", "cl-edge");
    g.dataset.edge = id;
    g.dataset.kind = String(edge.kind ?? "next");
    const pts = (Array.isArray(edge.points) ? edge.points : []).map((p) => [num(p[0]), num(p[1])]);
    const d = pts.map((p, i) => `${i ? "L" : "M"} ${r2(p[0])} ${r2(p[1])}`).join(" ");
    const path = svg("path", "cl-edge-line", { d, "marker-end": `url(#${this.uid}-arrow)` });
    g.append(path);
    if (edge.label) {
      const [mx, my] = midpoint(pts);
      const text = String(edge.label);
      const w = text.length * 6.2 + 8;
      g.append(svg("rect", "cl-edge-label-bg", {
        x: r2(mx - w / 2), y: r2(my - 8), width: r2(w), height: 15, rx: 3,
      }));
      const t = svg("text", "cl-edge-label", { x: r2(mx), y: r2(my + 3.5) });
      t.textContent = text;
      g.append(t);
    }
    this.edges.set(id, { g, path });
    return g;
  }

  makeNode(node) {
    const id = String(node.id ?? "");
    const w = Math.max(num(node.w), 1);
    const h = Math.max(num(node.h), 1);
    const shape = String(node.shape || "rect");
    const g = svg("g", "cl-node", { transform: `translate(${r2(node.x)},${r2(node.y)})`, tabindex: 0 });
    g.dataset.id = id;
    g.dataset.type = String(node.type ?? "");
    g.dataset.shape = shape;
    g.setAttribute("role", "button");
    const title = svg("title");
    g.append(title);
    const { main, extra } = shapeElements(shape, w, h);
    g.append(...main, ...extra);

    const texts = [];
    const small = h < 30;
    const label = svg("text", small ? "cl-label cl-label-small" : "cl-label", { x: r2(w / 2) });
    label.textContent = fit(node.label ?? id, w - (small ? 12 : 34), small ? 5.6 : 6.6);
    texts.push(label);
    let sub = null;
    if (node.sublabel && h >= 36) {
      label.setAttribute("y", r2(h / 2 - 3));
      sub = svg("text", "cl-sublabel", { x: r2(w / 2), y: r2(h / 2 + 11) });
      sub.textContent = fit(node.sublabel, w - 34, 5.6);
      texts.push(sub);
    } else {
      label.setAttribute("y", r2(h / 2 + (small ? 3.5 : 4)));
    }
    g.append(...texts);
    const iconX = shape === "diamond" ? w * 0.2 + 4 : 12;
    const icon = svg("text", "cl-icon", { x: r2(iconX), y: r2(h / 2 + 4.5) });
    if (!small) g.append(icon);

    if (node.badge || node.collapsible) {
      const text = node.badge ? String(node.badge) : node.collapsed ? "+" : "−";
      const bw = text.length * 6 + 12;
      const badge = svg("g", node.collapsible ? "cl-badge cl-badge-toggle" : "cl-badge", {
        transform: `translate(${r2(w - bw / 2 - 6)},${r2(h)})`,
      });
      badge.dataset.id = id;
      if (node.collapsible) {
        badge.setAttribute("role", "button");
        badge.setAttribute("tabindex", "0");
        badge.setAttribute("aria-label", `${node.collapsed ? "expand" : "collapse"} ${node.label ?? id}`);
        badge.setAttribute("aria-expanded", node.collapsed ? "false" : "true");
      }
      badge.append(svg("rect", "cl-badge-box", { x: r2(-bw / 2), y: -8, width: r2(bw), height: 16, rx: 8 }));
      const bt = svg("text", "cl-badge-text", { x: 0, y: 4 });
      bt.textContent = text;
      badge.append(bt);
      g.append(badge);
    }
    const rec = {
      g, node, w, h, title, icon, texts,
      fills: main, strokes: [...main, ...extra], attempts: null, iterations: null, ring: null,
    };
    this.nodes.set(id, rec);
    this.paintNode(rec, null);
    this.drawnStatus.set(id, "");
    return g;
  }

  /** Paint one node for its Status entry (null = not executed / blueprint). */
  paintNode(rec, entry) {
    const run = this.isRun();
    const executed = !!(entry && entry.status);
    const status = executed ? String(entry.status) : run ? "NOT_EXECUTED" : "";
    const st = status ? this.statusStyle(status) : null;
    if (status) rec.g.setAttribute("data-status", status);
    else rec.g.removeAttribute("data-status");
    for (const e of rec.fills) e.style.fill = (st && st.fill) || "";
    for (const e of rec.strokes) e.style.stroke = (st && st.stroke) || "";
    for (const e of rec.texts) e.style.fill = (st && (st.text ?? st.color)) || "";
    rec.icon.textContent = executed || run ? String((st && st.icon) || "") : "";
    rec.icon.style.fill = (st && (st.text ?? st.color)) || "";
    rec.g.classList.toggle("cl-dimmed", run && !executed);
    rec.g.classList.toggle("cl-pulse", status === "IN_PROGRESS");

    const attempts = executed ? num(entry.attempts) : 0;
    if (attempts > 1) {
      if (!rec.attempts) {
        rec.attempts = svg("g", "cl-attempts", { transform: `translate(${r2(rec.w - 2)},0)` });
        rec.attempts.append(svg("rect", "cl-attempts-box", { x: -14, y: -8, width: 28, height: 16, rx: 8 }));
        rec.attempts.append(svg("text", "cl-attempts-text", { x: 0, y: 4 }));
        rec.g.append(rec.attempts);
      }
      const text = `×${attempts}`;
      const bw = text.length * 6.5 + 10;
      rec.attempts.firstChild.setAttribute("x", r2(-bw / 2));
      rec.attempts.firstChild.setAttribute("width", r2(bw));
      rec.attempts.lastChild.textContent = text;
      rec.attempts.removeAttribute("display");
    } else if (rec.attempts) {
      rec.attempts.setAttribute("display", "none");
    }

    const iterations = executed && entry.iterations != null ? num(entry.iterations) : 0;
    if (iterations > 0) {
      if (!rec.iterations) {
        rec.iterations = svg("g", "cl-iterations", { transform: `translate(${r2(rec.w - 44)},0)` });
        rec.iterations.append(svg("rect", "cl-iterations-box", { y: -8, height: 16, rx: 8 }));
        rec.iterations.append(svg("text", "cl-iterations-text", { x: 0, y: 4 }));
        rec.g.append(rec.iterations);
      }
      const text = `↻${iterations}`;
      const bw = text.length * 6.5 + 10;
      rec.iterations.firstChild.setAttribute("x", r2(-bw / 2));
      rec.iterations.firstChild.setAttribute("width", r2(bw));
      rec.iterations.lastChild.textContent = text;
      rec.iterations.removeAttribute("display");
    } else if (rec.iterations) {
      rec.iterations.setAttribute("display", "none");
    }

    const n = rec.node;
    const lines = [String(n.label ?? n.id ?? "")];
    if (n.sublabel) lines.push(String(n.sublabel));
    if (status) lines.push((st && st.label) || status);
    if (attempts > 1) lines.push(`${attempts} attempts`);
    if (iterations > 0) lines.push(`${iterations} iterations`);
    rec.title.textContent = lines.join("\n");
  }

  /** Repaint only the nodes whose Status entry differs from what was painted last. */
  applyStatusDelta() {
    const status = this.model.get("status") || {};
    for (const [id, rec] of this.nodes) {
      const entry = status[id];
      const key = entry ? JSON.stringify(entry) : "";
      if (this.drawnStatus.get(id) === key) continue;
      this.drawnStatus.set(id, key);
      this.paintNode(rec, entry || null);
    }
    this.drawLegend();
  }

  /** Repaint everything (palette or run mode changed: every node's look depends on it). */
  repaintAll() {
    this.drawnStatus.clear();
    this.applyStatusDelta();
  }

  applyExecutedDelta() {
    const next = new Set((this.model.get("executed_edges") || []).map(String));
    for (const id of this.drawnExecuted) if (!next.has(id)) this.markEdge(id, false);
    for (const id of next) if (!this.drawnExecuted.has(id)) this.markEdge(id, true);
    this.drawnExecuted = new Set([...next].filter((id) => this.edges.has(id)));
  }

  markEdge(id, executed) {
    const rec = this.edges.get(id);
    if (!rec) return;
    rec.g.classList.toggle("cl-edge-executed", executed);
    rec.path.setAttribute("marker-end", `url(#${this.uid}-${executed ? "arrow-exec" : "arrow"})`);
  }

  drawLegend() {
    const status = this.model.get("status") || {};
    const present = new Set();
    for (const id of this.nodes.keys()) {
      const e = status[id];
      if (e && e.status) present.add(String(e.status));
      else if (this.isRun()) present.add("NOT_EXECUTED");
    }
    const order = Object.keys(this.palette().status || {});
    const statuses = [...present].sort((a, b) => rank(order, a) - rank(order, b) || (a < b ? -1 : 1));
    const shapes = [...new Set([...this.nodes.values()].map((r) => String(r.node.shape || "rect")))];
    const key = JSON.stringify([statuses, shapes, this.palette()]);
    if (key === this.legendKey) return;
    this.legendKey = key;
    const items = [];
    for (const s of statuses) {
      const item = html("span", "cl-legend-item cl-legend-status");
      item.dataset.status = s;
      const chip = html("span", "cl-chip");
      paintChip(chip, s, this.statusStyle(s));
      item.append(chip);
      items.push(item);
    }
    for (const shape of shapes) {
      const item = html("span", "cl-legend-item cl-legend-shape");
      item.dataset.shape = shape;
      const icon = svg("svg", "cl-legend-glyph", { width: 26, height: 16, viewBox: "-1 -1 30 18" });
      const { main, extra } = shapeElements(shape, 28, shape === "fork" || shape === "join" ? 8 : 16);
      icon.append(...main, ...extra);
      const names = this.palette().shapeLabels || {};
      item.append(icon, html("span", "cl-legend-label", names[shape] || SHAPE_NAMES[shape] || shape));
      items.push(item);
    }
    this.legendEl.replaceChildren(...items);
    this.legendEl.hidden = items.length === 0;
  }

  // ---------------------------------------------------------------- clicks

  onNodeClick(e) {
    const badge = e.target.closest(".cl-badge-toggle");
    if (badge) {
      e.stopPropagation();
      const id = badge.dataset.id;
      const current = (this.model.get("expanded") || []).map(String);
      const next = current.includes(id) ? current.filter((x) => x !== id) : [...current, id];
      this.model.set("expanded", next);
      this.model.save_changes();
      return;
    }
    const g = e.target.closest(".cl-node");
    if (!g || this.dragged) return;
    this.model.set("selected", g.dataset.id);
    this.model.save_changes();
  }

  drawSelection() {
    const sel = this.model.get("selected");
    const old = this.selectedRec;
    if (old && old.ring) {
      old.ring.remove();
      old.ring = null;
      old.g.classList.remove("cl-selected");
    }
    this.selectedRec = null;
    const rec = sel === null || sel === undefined ? null : this.nodes.get(String(sel));
    if (!rec) return;
    rec.ring = svg("rect", "cl-ring", { x: -5, y: -5, width: r2(rec.w + 10), height: r2(rec.h + 10), rx: 9 });
    rec.g.insertBefore(rec.ring, rec.g.firstChild.nextSibling);
    rec.g.classList.add("cl-selected");
    this.selectedRec = rec;
  }

  // ---------------------------------------------------------------- search

  drawSearch() {
    const q = this.searchEl.value.trim().toLowerCase();
    this.matches = [];
    this.matchIndex = -1;
    this.root.classList.toggle("cl-searching", q.length > 0);
    for (const [id, rec] of this.nodes) {
      const n = rec.node;
      const fields = [id, n.ref, n.label, n.sublabel, n.type];
      const hit = q.length > 0 && fields.some((v) => v && String(v).toLowerCase().includes(q));
      rec.g.classList.toggle("cl-match", hit);
      if (hit) this.matches.push(rec);
    }
    const count = this.matches.length;
    this.searchCountEl.textContent = q ? `${count} match${count === 1 ? "" : "es"}` : "";
  }

  nextMatch() {
    if (!this.matches || this.matches.length === 0) return;
    this.matchIndex = (this.matchIndex + 1) % this.matches.length;
    const n = this.matches[this.matchIndex].node;
    const scale = Math.min(1, this.vb.w / Math.max(this.bounds.w, 1));
    const w = Math.max(this.vb.w * scale, 200);
    const h = this.vb.h * (w / this.vb.w);
    this.setView({ x: num(n.x) + num(n.w) / 2 - w / 2, y: num(n.y) + num(n.h) / 2 - h / 2, w, h });
  }

  // ---------------------------------------------------------------- zoom and pan (viewBox)

  setView(vb) {
    this.vb = vb;
    this.svgEl.setAttribute("viewBox", `${r2(vb.x)} ${r2(vb.y)} ${r2(vb.w)} ${r2(vb.h)}`);
  }

  fitView() {
    const pad = 20;
    this.setView({ x: -pad, y: -pad, w: this.bounds.w + 2 * pad, h: this.bounds.h + 2 * pad });
  }

  zoomBy(factor, cx, cy) {
    const vb = this.vb;
    const maxW = (this.bounds.w + 40) * 8;
    const w = Math.min(Math.max(vb.w / factor, 40), maxW);
    const k = w / vb.w;
    const px = cx ?? vb.x + vb.w / 2;
    const py = cy ?? vb.y + vb.h / 2;
    this.setView({ x: px - (px - vb.x) * k, y: py - (py - vb.y) * k, w, h: vb.h * k });
  }

  /** Pixels on screen per viewBox unit is 1/k (preserveAspectRatio "meet"). */
  unitsPerPixel() {
    const r = this.svgEl.getBoundingClientRect();
    if (!r.width || !r.height) return 1;
    return Math.max(this.vb.w / r.width, this.vb.h / r.height);
  }

  installPanZoom() {
    const s = this.svgEl;
    let drag = null;
    s.addEventListener("wheel", (e) => {
      if (!(e.ctrlKey || e.metaKey)) return; // plain wheel keeps scrolling the notebook
      e.preventDefault();
      const ctm = s.getScreenCTM();
      let cx;
      let cy;
      if (ctm) {
        const p = new DOMPoint(e.clientX, e.clientY).matrixTransform(ctm.inverse());
        cx = p.x;
        cy = p.y;
      }
      this.zoomBy(e.deltaY < 0 ? 1.15 : 1 / 1.15, cx, cy);
    }, { passive: false });
    s.addEventListener("pointerdown", (e) => {
      if (e.button !== 0 || e.target.closest(".cl-badge-toggle")) return;
      drag = {
        x: e.clientX, y: e.clientY, vb: { ...this.vb }, k: this.unitsPerPixel(), moved: false, id: e.pointerId,
      };
      this.dragged = false;
    });
    s.addEventListener("pointermove", (e) => {
      if (!drag || e.pointerId !== drag.id) return;
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 4) return;
      if (!drag.moved) {
        drag.moved = true;
        try { s.setPointerCapture(e.pointerId); } catch (_) { /* pointer already gone */ }
        this.root.classList.add("cl-panning");
      }
      this.setView({ ...drag.vb, x: drag.vb.x - dx * drag.k, y: drag.vb.y - dy * drag.k });
    });
    const end = (e) => {
      if (!drag || e.pointerId !== drag.id) return;
      this.dragged = drag.moved; // a drag that ends on a node is not a click on it
      drag = null;
      this.root.classList.remove("cl-panning");
      setTimeout(() => { this.dragged = false; }, 0);
    };
    s.addEventListener("pointerup", end);
    s.addEventListener("pointercancel", end);
  }

  // ---------------------------------------------------------------- side panel

  drawDetail() {
    const d = this.model.get("detail") || {};
    const panel = this.panelEl;
    if (!d.title) {
      panel.hidden = true;
      panel.replaceChildren();
      return;
    }
    panel.hidden = false;
    const head = html("div", "cl-panel-head");
    const title = html("span", "cl-panel-title", d.title);
    const close = html("button", "cl-btn cl-panel-close", "×");
    close.type = "button";
    close.title = "close";
    close.setAttribute("aria-label", "close task detail");
    close.addEventListener("click", () => {
      this.model.set("selected", null);
      this.model.save_changes();
    });
    head.append(title);
    if (d.status) {
      const chip = html("span", "cl-chip cl-panel-status");
      paintChip(chip, String(d.status), this.statusStyle(String(d.status)));
      head.append(chip);
    }
    head.append(close);
    const parts = [head];
    if (d.truncated) {
      parts.push(html("div", "cl-truncated", "Previews are truncated: use run.task(ref) in Python for the full data."));
    }
    const summary = html("table", "cl-summary");
    for (const row of Array.isArray(d.summary) ? d.summary : []) {
      const tr = html("tr");
      tr.append(html("th", null, row[0]), html("td", null, row[1]));
      summary.append(tr);
    }
    parts.push(summary);
    const tabs = html("div", "cl-tabs");
    tabs.setAttribute("role", "tablist");
    const pane = html("div", "cl-pane");
    const show = (name) => {
      this.activeTab = name;
      for (const b of tabs.children) b.setAttribute("aria-selected", String(b.dataset.tab === name));
      pane.dataset.tab = name;
      pane.replaceChildren(this.tabContent(d, name));
    };
    for (const [name, label] of TABS) {
      const b = html("button", "cl-tab", label);
      b.type = "button";
      b.dataset.tab = name;
      b.setAttribute("role", "tab");
      b.addEventListener("click", () => show(name));
      tabs.append(b);
    }
    parts.push(tabs, pane);
    panel.replaceChildren(...parts);
    show(this.activeTab);
  }

  tabContent(d, name) {
    if (name === "attempts") {
      const rows = Array.isArray(d.attempts) ? d.attempts : [];
      if (rows.length === 0) return html("div", "cl-empty", "no attempts");
      const table = html("table", "cl-attempts-table");
      const head = html("tr");
      for (const c of ["#", "status", "taskId", "start", "end", "reason"]) head.append(html("th", null, c));
      table.append(head);
      for (const a of rows) {
        const tr = html("tr");
        tr.dataset.attempt = String(a.attempt ?? "");
        const chip = html("span", "cl-chip");
        paintChip(chip, String(a.status ?? ""), this.statusStyle(String(a.status ?? "")));
        const st = html("td");
        st.append(chip);
        tr.append(html("td", null, a.attempt ?? ""), st, html("td", "cl-mono", a.taskId ?? ""),
          html("td", null, a.start ?? ""), html("td", null, a.end ?? ""), html("td", null, a.reason ?? ""));
        table.append(tr);
      }
      return table;
    }
    let text;
    if (name === "logs") text = (Array.isArray(d.logs) ? d.logs : []).join("\n");
    else text = d[name] ?? "";
    if (!text) return html("div", "cl-empty", name === "logs" ? "no logs" : `no ${name}`);
    return html("pre", "cl-pre", text);
  }
}

function rank(order, s) {
  const i = order.indexOf(s);
  return i < 0 ? order.length : i;
}

/** A status chip: icon + label text (never colour alone), colours from the palette entry. */
function paintChip(chip, status, st) {
  chip.dataset.status = status;
  const icon = st && st.icon ? `${st.icon} ` : "";
  chip.textContent = `${icon}${(st && st.label) || status}`;
  chip.style.background = (st && st.fill) || "";
  chip.style.borderColor = (st && st.stroke) || "";
  chip.style.color = (st && (st.text ?? st.color)) || "";
}

export default {
  render({ model, el }) {
    const view = new GraphDom(model, el);
    return () => view.destroy();
  },
};
