"""HistoryView: the Python widget, and its ESM (history.js) rendered in headless Chromium."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from conductor_lab.widgets.views import HistoryView
from tests.widgets.harness import WidgetPage, palette_for_tests

Json = dict[str, Any]


def run_row(i: int, status: str, duration_s: float | None, reason: str = "") -> Json:
    return {
        "workflowId": f"wf-{i}", "workflowType": "etl" if i % 2 else "report", "version": 1 + i % 2,
        "status": status, "startTime": f"2024-05-01T10:0{i}:30.123+00:00", "endTime": None,
        "duration_s": duration_s, "correlationId": f"order-{i}", "reason": reason,
    }


ROWS = [
    run_row(1, "COMPLETED", 0.85),
    run_row(2, "FAILED", 245.2, reason="fetch failed: <b>HTTP 503</b>"),
    run_row(3, "RUNNING", 7380),
    run_row(4, "TERMINATED", None),
]


def history(**traits: Any) -> HistoryView:
    defaults: Json = {
        "rows": ROWS, "total": 57, "palette": palette_for_tests(),
        "statuses": ["RUNNING", "COMPLETED", "FAILED", "TIMED_OUT", "TERMINATED", "PAUSED"],
        "names": ["etl", "report"],
    }
    defaults.update(traits)
    return HistoryView(**defaults)


# ------------------------------------------------------------------------------------------------
# Python side


def test_python_api_repr_fallback_and_on_filters() -> None:
    h = history()
    assert repr(h) == "<HistoryView 4 of 57 runs>"
    assert h.filters == {"name": "", "status": "", "since": "", "text": ""}
    data, _meta = h._repr_mimebundle_()
    assert data["text/plain"] == repr(h)
    assert "application/vnd.jupyter.widget-view+json" in data
    page = data["text/html"]
    assert "wf-2" in page and "&lt;b&gt;HTTP 503&lt;/b&gt;" in page and "<b>HTTP" not in page
    assert "4 of 57 runs" in page

    seen: list[Json] = []
    h.on_filters(seen.append)
    h.filters = {**h.filters, "status": "FAILED"}
    assert seen == [{"name": "", "status": "FAILED", "since": "", "text": ""}]
    h.on_filters(seen.append, remove=True)
    h.filters = {**h.filters, "status": ""}
    assert len(seen) == 1


# ------------------------------------------------------------------------------------------------
# Browser


def test_rows_render_with_status_chips_durations_and_footer(widget_page: WidgetPage) -> None:
    h = history()
    wp = widget_page
    wp.mount(h, "history")
    root = wp.page.locator("#root")
    assert root.locator("thead th").all_text_contents() == [
        "workflow", "version", "status", "started", "duration", "workflowId", "correlationId", "reason"]
    rows = root.locator("tbody tr.cl-row")
    expect(rows).to_have_count(4)
    assert rows.evaluate_all("els => els.map(e => [e.dataset.id, e.dataset.status])") == [
        ["wf-1", "COMPLETED"], ["wf-2", "FAILED"], ["wf-3", "RUNNING"], ["wf-4", "TERMINATED"]]
    assert root.locator('td[data-key="duration_s"]').all_text_contents() == ["850 ms", "4m 05s", "2h 03m", ""]
    assert root.locator('td[data-key="startTime"]').first.text_content() == "2024-05-01 10:01:30+00:00"
    chip = root.locator('tr[data-id="wf-2"] .cl-chip')
    pal = h.palette["status"]["FAILED"]
    expect(chip).to_have_text(f"{pal['icon']} {pal['label']}")
    assert chip.evaluate("e => e.style.background") != ""
    reason = root.locator('tr[data-id="wf-2"] td[data-key="reason"]')
    expect(reason).to_have_text("fetch failed: <b>HTTP 503</b>")
    expect(root.locator("tbody b")).to_have_count(0)  # text, never markup
    expect(root.locator(".cl-footer")).to_have_text("4 of 57 runs")
    # status select: "any" + the statuses, with the palette's icon and label
    options = root.locator("select.cl-filter-status option").evaluate_all("els => els.map(e => e.value)")
    assert options == ["", *h.statuses]
    names = root.locator("select.cl-filter-name-select option")
    assert names.evaluate_all("els => els.map(e => e.value)") == ["", "etl", "report"]
    assert wp.errors == []


def test_filters_write_the_filters_trait(widget_page: WidgetPage) -> None:
    h = history()
    seen: list[Json] = []
    h.on_filters(seen.append)
    wp = widget_page
    wp.mount(h, "history")
    root = wp.page.locator("#root")
    root.locator("select.cl-filter-status").select_option("FAILED")
    root.locator("select.cl-filter-since").select_option("24h")
    root.locator("select.cl-filter-name-select").select_option("etl")
    root.locator("input.cl-filter-text").fill("order-2")
    root.locator("input.cl-filter-text").press("Enter")
    saved = wp.saved()
    assert saved == [
        {"filters": {"name": "", "status": "FAILED", "since": "", "text": ""}},
        {"filters": {"name": "", "status": "FAILED", "since": "24h", "text": ""}},
        {"filters": {"name": "etl", "status": "FAILED", "since": "24h", "text": ""}},
        {"filters": {"name": "etl", "status": "FAILED", "since": "24h", "text": "order-2"}},
    ]
    for change in saved:  # the kernel applies each sync message in turn
        h.set_state(change)
    assert h.filters == {"name": "etl", "status": "FAILED", "since": "24h", "text": "order-2"}
    assert seen[-1] == h.filters and len(seen) == 4

    # typing without Enter writes once, after a pause (debounced), and not again on blur
    root.locator("input.cl-filter-text").fill("order-3")
    wp.page.wait_for_function("() => window.harness.log.saved.length === 5")
    root.locator("select.cl-filter-status").focus()
    typed = {"name": "etl", "status": "FAILED", "since": "24h", "text": "order-3"}
    assert wp.saved()[-1] == {"filters": typed}
    assert len(wp.saved()) == 5

    # the owner answers with new rows; a kernel push of filters shows in the controls, unechoed
    wp.push("rows", [ROWS[1]])
    wp.push("total", 1)
    expect(root.locator("tbody tr.cl-row")).to_have_count(1)
    expect(root.locator(".cl-footer")).to_have_text("1 of 1 runs")
    wp.push("filters", {"name": "report", "status": "", "since": "7d", "text": ""})
    expect(root.locator("select.cl-filter-since")).to_have_value("7d")
    expect(root.locator("select.cl-filter-name-select")).to_have_value("report")
    expect(root.locator("input.cl-filter-text")).to_have_value("")
    assert len(wp.saved()) == 5

    root.locator("button.cl-filter-clear").click()
    assert wp.saved()[-1] == {"filters": {"name": "", "status": "", "since": "", "text": ""}}
    wp.push("rows", [])
    expect(root.locator("tbody .cl-empty")).to_have_text("No runs match these filters.")
    assert wp.errors == []


def test_free_text_name_filter_when_no_names(widget_page: WidgetPage) -> None:
    h = history(names=[])
    wp = widget_page
    wp.mount(h, "history")
    name = wp.page.locator("#root input.cl-filter-name-text")
    name.fill("etl")
    name.press("Enter")
    assert wp.saved() == [{"filters": {"name": "etl", "status": "", "since": "", "text": ""}}]
    h.set_state(wp.saved()[0])
    assert h.filters["name"] == "etl"
    # names arrive later: the control becomes a select showing the current value
    wp.push("names", ["etl", "report"])
    wp.push("filters", h.get_state()["filters"])
    expect(wp.page.locator("#root select.cl-filter-name-select")).to_have_value("etl")
    assert wp.errors == []


def test_row_click_writes_selected(widget_page: WidgetPage) -> None:
    h = history()
    wp = widget_page
    wp.mount(h, "history")
    wp.page.locator('#root tr[data-id="wf-3"] td[data-key="workflowType"]').click()
    saved = wp.saved()
    assert saved == [{"selected": "wf-3"}]
    h.set_state(saved[0])
    assert h.selected == "wf-3"
    expect(wp.page.locator('#root tr[data-id="wf-3"]')).to_have_class("cl-row cl-selected")
    wp.page.locator('#root tr[data-id="wf-1"]').focus()
    wp.page.keyboard.press("Enter")
    assert wp.saved()[-1] == {"selected": "wf-1"}
    expect(wp.page.locator("#root tr.cl-selected")).to_have_count(1)
    wp.cleanup()
    assert wp.listeners() == 0
    assert wp.errors == []
