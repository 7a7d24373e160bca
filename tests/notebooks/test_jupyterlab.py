"""The real thing: JupyterLab in headless Chromium runs notebook 01, and the widgets talk to the kernel.

One JupyterLab server per session (recipe: ``../shared/recipes/notebook-and-browser-testing.md`` §5):
open 01_quickstart.ipynb, run all cells, wait for the live view to show the run COMPLETED, click a
node and read the detail panel, press Retry on the failed run and see the kernel-side run complete
(re-running a cell prints its status). Screenshots go to ``build/artifacts/``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import REPO_ROOT
from tests.widgets.harness import launch_chromium

ARTIFACTS = REPO_ROOT / "build" / "artifacts"
NOTEBOOK = "01_quickstart.ipynb"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("jlab")
    shutil.copy(REPO_ROOT / "notebooks" / NOTEBOOK, root / NOTEBOOK)
    settings = root / ".settings" / "@jupyterlab"
    (settings / "apputils-extension").mkdir(parents=True)
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}'
    )
    (settings / "notebook-extension").mkdir()
    (settings / "notebook-extension" / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "CONDUCTOR_SERVER_URL"}  # the notebook embeds its Lab
    env.update(
        JUPYTERLAB_SETTINGS_DIR=str(root / ".settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(root / ".workspaces"),
        JUPYTER_RUNTIME_DIR=str(root / ".runtime"),
        PYTHONPATH=str(REPO_ROOT),
    )
    log = open(root / "server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited:\n{(root / 'server.log').read_text()}")
        try:
            if httpx.get(f"{base}/api/status", params={"token": token}, timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"jupyter lab did not answer:\n{(root / 'server.log').read_text()}")
        time.sleep(0.2)
    yield {"base": base, "token": token, "root": root}
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium() as b:
        yield b


@pytest.fixture
def page(browser: Browser, jupyterlab: dict[str, Any]) -> Iterator[Page]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    ctx.close()
    headers = {"Authorization": f"token {jupyterlab['token']}"}
    for s in httpx.get(f"{jupyterlab['base']}/api/sessions", headers=headers).json():
        httpx.delete(f"{jupyterlab['base']}/api/sessions/{s['id']}", headers=headers)


def cell(page: Page, index: int) -> Any:
    return page.locator(".jp-Notebook .jp-Cell").nth(index)


def code_cell_index(page: Page, needle: str) -> int:
    """The index of the first cell whose source contains ``needle`` (robust to added cells)."""
    index = page.evaluate(
        "(needle) => window.jupyterapp.shell.currentWidget.content.widgets"
        ".findIndex(c => c.model.sharedModel.getSource().includes(needle))",
        needle,
    )
    assert index >= 0, f"no cell contains {needle!r}"
    return int(index)


def test_quickstart_runs_live_and_retries_from_the_button(page: Page, jupyterlab: dict[str, Any]) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{jupyterlab['base']}/lab/tree/{NOTEBOOK}?token={jupyterlab['token']}&reset")
    page.wait_for_function("() => window.jupyterapp?.shell.currentWidget?.sessionContext")
    page.evaluate(
        "async () => { const w = window.jupyterapp.shell.currentWidget;"
        " await w.context.ready; await w.sessionContext.ready; }"
    )
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel?.status === 'idle'"
    )
    ran = page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells').then(r => !!r)")
    assert ran, "run-all reported a failure"
    errors_out = page.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.error']")
    assert errors_out.count() == 0, errors_out.first.text_content()

    # the live view of the first run: every executed task COMPLETED, the untaken branch dimmed
    run_view = cell(page, code_cell_index(page, 'run = lab.start("quickstart_etl"')).locator(".cl-graph")
    expect(run_view.locator(".cl-run-status")).to_have_attribute("data-status", "COMPLETED", timeout=30_000)
    for ref in ("fetch", "transform", "route", "store_large"):
        expect(run_view.locator(f"g.cl-node[data-id='{ref}']")).to_have_attribute("data-status", "COMPLETED")
    expect(run_view.locator("g.cl-node[data-id='store_small']")).to_have_attribute("data-status", "NOT_EXECUTED")
    expect(run_view.locator("g.cl-node[data-id='store_small']")).to_have_class(_has("cl-dimmed"))

    # click a node: the kernel computes the detail, the panel shows it
    run_view.locator("g.cl-node[data-id='transform']").click()
    panel = run_view.locator(".cl-panel")
    expect(panel).to_be_visible()
    expect(panel.locator(".cl-panel-title")).to_have_text("transform")
    expect(panel).to_contain_text('"value": 25')  # the Input tab first
    panel.get_by_role("tab", name="Output").click()
    expect(panel).to_contain_text('"count": 6')
    run_view.screenshot(path=str(ARTIFACTS / "jupyterlab-run-completed.png"))

    # the failed run: press Retry, the kernel calls failed.retry(), the worker succeeds this time
    failed_view = cell(page, code_cell_index(page, "failed = lab.start(")).locator(".cl-graph")
    expect(failed_view.locator(".cl-run-status")).to_have_attribute("data-status", "FAILED")
    expect(failed_view.locator("g.cl-node[data-id='transform']")).to_have_attribute("data-status", "FAILED")
    failed_view.screenshot(path=str(ARTIFACTS / "jupyterlab-run-failed.png"))
    failed_view.locator("button[data-verb='retry']").click()
    expect(failed_view.locator(".cl-run-status")).to_have_attribute("data-status", "COMPLETED", timeout=30_000)
    expect(failed_view.locator("g.cl-node[data-id='transform']")).to_have_attribute("data-status", "COMPLETED")
    failed_view.screenshot(path=str(ARTIFACTS / "jupyterlab-run-retried.png"))

    # the kernel side agrees: re-run the status cell
    status_cell = code_cell_index(page, "failed.refresh().status")
    page.evaluate(
        "(i) => { const nb = window.jupyterapp.shell.currentWidget.content; nb.activeCellIndex = i;"
        " return window.jupyterapp.commands.execute('notebook:run-cell').then(r => !!r); }",
        status_cell,
    )
    expect(cell(page, status_cell).locator(".jp-OutputArea-output")).to_contain_text("COMPLETED")
    page.screenshot(path=str(ARTIFACTS / "jupyterlab-notebook.png"), full_page=True)
    assert not errors, errors


def _has(cls: str) -> Any:
    import re

    return re.compile(rf"(^|\s){re.escape(cls)}(\s|$)")
