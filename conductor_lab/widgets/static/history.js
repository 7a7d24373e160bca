// conductor_lab HistoryView: a filter bar and a table of workflow runs.
//
// Python owns the query: the filter bar only writes the `filters` trait ({name, status, since, text},
// "" = any) and Python answers with new `rows` / `total`. Clicking a row writes `selected` (the
// workflowId). Status colours come from the `palette` trait; all data goes through textContent.

const SINCE = [["", "all time"], ["1h", "last hour"], ["24h", "last 24 h"], ["7d", "last 7 days"]];
const EMPTY_FILTERS = { name: "", status: "", since: "", text: "" };
const DEFAULT_COLUMNS = [
  "workflowType", "version", "status", "startTime", "duration_s", "workflowId", "correlationId", "reason",
];
const LABELS = {
  workflowType: "workflow", version: "version", status: "status", startTime: "started", endTime: "ended",
  duration_s: "duration", workflowId: "workflowId", correlationId: "correlationId", reason: "reason",
};
const TEXT_DEBOUNCE_MS = 400;

function html(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

/** 0.85 -> "850 ms", 12.3 -> "12.3 s", 245 -> "4m 05s", 7380 -> "2h 03m", 93600 -> "1d 2h". */
export function humanDuration(value) {
  if (value === null || value === undefined || value === "") return "";
  const s = Number(value);
  if (!Number.isFinite(s)) return String(value);
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s < 10 ? s.toFixed(2) : s.toFixed(1)} s`;
  const pad = (n) => String(n).padStart(2, "0");
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(Math.floor(s % 60))}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** "2024-05-01T10:20:30.123+00:00" -> "2024-05-01 10:20:30+00:00" (the full value is the cell title). */
function shortTime(value) {
  if (!value) return "";
  return String(value).replace("T", " ").replace(/\.\d+/, "");
}

function columnSpec(c) {
  if (typeof c === "string") return { key: c, label: LABELS[c] || c };
  const key = String(c.key ?? "");
  return { key, label: String(c.label ?? LABELS[key] ?? key) };
}

class HistoryDom {
  constructor(model, el) {
    this.model = model;
    this.handlers = [];
    this.timer = null;
    this.root = html("div", "cl-history");
    this.bar = html("div", "cl-filters");
    this.nameSlot = html("span", "cl-filter-name");
    this.statusEl = html("select", "cl-filter-status");
    this.statusEl.setAttribute("aria-label", "status");
    this.sinceEl = html("select", "cl-filter-since");
    this.sinceEl.setAttribute("aria-label", "started");
    for (const [v, label] of SINCE) this.sinceEl.append(option(v, label));
    this.textEl = html("input", "cl-filter-text");
    this.textEl.type = "search";
    this.textEl.placeholder = "search ids, reasons, input…";
    this.textEl.setAttribute("aria-label", "search");
    const clear = html("button", "cl-btn cl-filter-clear", "clear");
    clear.type = "button";
    clear.title = "clear all filters";
    this.bar.append(this.nameSlot, this.statusEl, this.sinceEl, this.textEl, clear);

    this.table = html("table", "cl-runs");
    this.thead = html("thead");
    this.tbody = html("tbody");
    this.table.append(this.thead, this.tbody);
    const scroller = html("div", "cl-runs-scroll");
    scroller.append(this.table);
    this.footer = html("div", "cl-footer");
    this.root.append(this.bar, scroller, this.footer);
    el.append(this.root);

    this.statusEl.addEventListener("change", () => this.write("status", this.statusEl.value));
    this.sinceEl.addEventListener("change", () => this.write("since", this.sinceEl.value));
    this.textEl.addEventListener("input", () => this.debounce("text", this.textEl));
    this.textEl.addEventListener("change", () => this.write("text", this.textEl.value.trim()));
    this.textEl.addEventListener("keydown", (e) => {
      if (e.key === "Enter") this.write("text", this.textEl.value.trim());
    });
    clear.addEventListener("click", () => {
      this.model.set("filters", { ...EMPTY_FILTERS });
      this.model.save_changes();
    });
    this.tbody.addEventListener("click", (e) => this.select(e));
    this.tbody.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        this.select(e);
      }
    });

    this.on("change:names", () => { this.drawNameControl(); this.drawFilters(); });
    this.on("change:statuses change:palette", () => {
      this.drawStatusOptions();
      this.drawFilters();
      this.drawRows();
    });
    this.on("change:filters", () => this.drawFilters());
    this.on("change:columns", () => { this.drawHead(); this.drawRows(); });
    this.on("change:rows", () => this.drawRows());
    this.on("change:total", () => this.drawFooter());
    this.on("change:selected", () => this.drawSelection());
    this.drawNameControl();
    this.drawStatusOptions();
    this.drawFilters();
    this.drawHead();
    this.drawRows();
  }

  on(events, fn) {
    for (const ev of events.split(" ")) {
      this.model.on(ev, fn);
      this.handlers.push([ev, fn]);
    }
  }

  destroy() {
    clearTimeout(this.timer);
    for (const [ev, fn] of this.handlers) this.model.off(ev, fn);
    this.handlers = [];
    this.root.remove();
  }

  filters() { return { ...EMPTY_FILTERS, ...(this.model.get("filters") || {}) }; }

  statusStyle(s) {
    const all = (this.model.get("palette") || {}).status || {};
    return (s && all[s]) || null;
  }

  /** Write one filter key (only when it changed) and sync it to Python. */
  write(key, value) {
    clearTimeout(this.timer);
    const current = this.filters();
    if ((current[key] ?? "") === value) return;
    this.model.set("filters", { ...current, [key]: value });
    this.model.save_changes();
  }

  debounce(key, input) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.write(key, input.value.trim()), TEXT_DEBOUNCE_MS);
  }

  select(e) {
    const tr = e.target.closest("tr[data-id]");
    if (!tr) return;
    this.model.set("selected", tr.dataset.id);
    this.model.save_changes();
  }

  // ---------------------------------------------------------------- filter bar

  drawNameControl() {
    const names = this.model.get("names") || [];
    let control;
    if (names.length > 0) {
      control = html("select", "cl-filter-name-select");
      control.append(option("", "all workflows"));
      for (const n of names) control.append(option(String(n), String(n)));
      control.addEventListener("change", () => this.write("name", control.value));
    } else {
      control = html("input", "cl-filter-name-text");
      control.type = "search";
      control.placeholder = "workflow name";
      control.addEventListener("input", () => this.debounce("name", control));
      control.addEventListener("change", () => this.write("name", control.value.trim()));
      control.addEventListener("keydown", (e) => {
        if (e.key === "Enter") this.write("name", control.value.trim());
      });
    }
    control.setAttribute("aria-label", "workflow name");
    this.nameEl = control;
    this.nameSlot.replaceChildren(control);
  }

  drawStatusOptions() {
    const opts = [option("", "any status")];
    for (const s of this.model.get("statuses") || []) {
      const st = this.statusStyle(String(s));
      opts.push(option(String(s), `${st && st.icon ? st.icon + " " : ""}${(st && st.label) || s}`));
    }
    this.statusEl.replaceChildren(...opts);
  }

  /** Show the current `filters` in the controls (a kernel push must not echo back). */
  drawFilters() {
    const f = this.filters();
    const setSelect = (sel, value) => {
      if (value && ![...sel.options].some((o) => o.value === value)) sel.append(option(value, value));
      sel.value = value;
    };
    if (this.nameEl.tagName === "SELECT") setSelect(this.nameEl, String(f.name ?? ""));
    else if (document.activeElement !== this.nameEl) this.nameEl.value = String(f.name ?? "");
    setSelect(this.statusEl, String(f.status ?? ""));
    setSelect(this.sinceEl, String(f.since ?? ""));
    if (document.activeElement !== this.textEl) this.textEl.value = String(f.text ?? "");
  }

  // ---------------------------------------------------------------- table

  columns() {
    const cols = this.model.get("columns") || [];
    return (cols.length ? cols : DEFAULT_COLUMNS).map(columnSpec);
  }

  drawHead() {
    const tr = html("tr");
    for (const c of this.columns()) {
      const th = html("th", null, c.label);
      th.dataset.key = c.key;
      tr.append(th);
    }
    this.thead.replaceChildren(tr);
  }

  drawRows() {
    const rows = this.model.get("rows") || [];
    const cols = this.columns();
    const frag = document.createDocumentFragment();
    for (const row of rows) {
      const tr = html("tr", "cl-row");
      tr.dataset.id = String(row.workflowId ?? "");
      tr.dataset.status = String(row.status ?? "");
      tr.tabIndex = 0;
      for (const c of cols) tr.append(this.cell(c.key, row[c.key]));
      frag.append(tr);
    }
    if (rows.length === 0) {
      const tr = html("tr", "cl-empty-row");
      const td = html("td", "cl-empty", "No runs match these filters.");
      td.colSpan = Math.max(cols.length, 1);
      tr.append(td);
      frag.append(tr);
    }
    this.tbody.replaceChildren(frag);
    this.drawSelection();
    this.drawFooter();
  }

  cell(key, value) {
    const td = html("td");
    td.dataset.key = key;
    if (value === null || value === undefined) return td;
    if (key === "status") {
      const chip = html("span", "cl-chip");
      const st = this.statusStyle(String(value));
      chip.dataset.status = String(value);
      chip.textContent = `${st && st.icon ? st.icon + " " : ""}${(st && st.label) || value}`;
      chip.style.background = (st && st.fill) || "";
      chip.style.borderColor = (st && st.stroke) || "";
      chip.style.color = (st && (st.text ?? st.color)) || "";
      td.append(chip);
    } else if (key === "duration_s") {
      td.textContent = humanDuration(value);
      td.className = "cl-num";
    } else if (key === "startTime" || key === "endTime") {
      td.textContent = shortTime(value);
      td.title = String(value);
      td.className = "cl-time";
    } else if (key === "workflowId" || key === "correlationId") {
      td.textContent = String(value);
      td.className = "cl-mono";
    } else if (key === "reason") {
      td.textContent = String(value);
      td.title = String(value);
      td.className = "cl-reason";
    } else {
      td.textContent = typeof value === "object" ? JSON.stringify(value) : String(value);
    }
    return td;
  }

  drawSelection() {
    const sel = this.model.get("selected");
    for (const tr of this.tbody.querySelectorAll("tr.cl-row")) {
      const on = sel !== null && sel !== undefined && tr.dataset.id === String(sel);
      tr.classList.toggle("cl-selected", on);
      tr.setAttribute("aria-selected", on ? "true" : "false");
    }
  }

  drawFooter() {
    const n = (this.model.get("rows") || []).length;
    const total = Number(this.model.get("total") ?? n);
    this.footer.textContent = `${n} of ${Math.max(total, n)} runs`;
  }
}

function option(value, label) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = label;
  return o;
}

export default {
  render({ model, el }) {
    const view = new HistoryDom(model, el);
    return () => view.destroy();
  },
};
