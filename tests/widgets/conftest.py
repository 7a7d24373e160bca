"""Browser fixtures for the widget ESM tests (see ``tests/widgets/harness.py``).

``harness_url`` (session): the harness page server. ``chromium`` (session): one headless Debian
Chromium. ``widget_page``: a fresh browser context + page with the harness loaded; every test
must end with no page errors (checked again at teardown).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.widgets.harness import CHROMIUM, WidgetPage, launch_chromium, serve_harness

pytest.importorskip("anywidget")


@pytest.fixture(scope="session")
def harness_url() -> Iterator[str]:
    with serve_harness() as url:
        yield url


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    import os

    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is not installed (make chromium)")
    with launch_chromium() as browser:
        yield browser


@pytest.fixture
def widget_page(chromium: Browser, harness_url: str) -> Iterator[WidgetPage]:
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        wp = WidgetPage(page, harness_url)
        yield wp
        assert wp.errors == [], f"page errors: {wp.errors}"
    finally:
        context.close()
