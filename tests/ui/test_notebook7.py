"""Issue 10: the quickstart notebook in a real Notebook 7 (``jupyter notebook``) in headless
Chromium. Run All draws the chart live while the logging cell runs, and the run browser opens
from its icon in the notebook toolbar (Notebook 7's side panels have no tab bar)."""

from __future__ import annotations

import shutil
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser import POINT_COUNT_JS

ROOT = Path(__file__).resolve().parents[2]
PANEL = "#wanllm-run-browser"

pytestmark = pytest.mark.browser

IDLE_JS = """
() => { const s = document.querySelector('.jp-NotebookKernelStatus');
        return !!s && !s.className.includes('busy') && !s.className.includes('starting') }
"""
PROMPTS_JS = """
() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent.trim())
"""


def wait_for(page: Any, predicate: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := page.evaluate(predicate):
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate.strip()[:90]}")


def test_quickstart_in_notebook7(notebook7: Any, screenshot: Any) -> None:
    shutil.copy(ROOT / "notebooks" / "quickstart.ipynb", notebook7.root / "quickstart.ipynb")
    page = notebook7.page("notebooks/quickstart.ipynb", viewport=(1280, 3000))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    with suppress(Exception):  # a notebook without this server's kernel metadata asks for one
        page.click(".jp-Dialog button.jp-mod-accept", timeout=10_000)
    page.wait_for_selector(
        "img[title='Python 3 (ipykernel)'], .jp-NotebookKernelLogo", timeout=60_000
    )
    wait_for(page, IDLE_JS, 60)

    # the run browser's icon is in the menu row; the panel starts hidden
    button = page.locator("#wanllm-runs-toggle jp-button, #wanllm-runs-toggle button").first
    expect(button).to_be_visible()
    expect(page.locator(PANEL)).to_be_hidden()

    page.click(".lm-MenuBar-itemLabel:text-is('Run')", timeout=10_000)
    page.click(".lm-Menu-itemLabel:text-is('Run All Cells')", timeout=10_000)

    # the chart grows while the logging cell (input prompt "[*]") still runs
    wait_for(page, "() => document.querySelectorAll('.jp-OutputArea .wl-chart').length > 0", 90)
    first = wait_for(page, f"() => {{ const n = ({POINT_COUNT_JS})(); return n > 5 ? n : 0 }}", 60)
    assert "[*]:" in page.evaluate(PROMPTS_JS), "the logging cell should still be running"
    time.sleep(1.5)
    second = page.evaluate(POINT_COUNT_JS)
    assert second > first, f"the chart did not grow while the cell ran ({first} -> {second})"

    # the icon opens the run browser, which lists the notebook's run live
    button.click()
    page.wait_for_selector(f"{PANEL} .jp-wanllm-status[data-status='live']", timeout=20_000)
    expect(page.locator(PANEL)).to_be_visible()
    row = page.locator(
        f"{PANEL} .jp-wanllm-RunRow", has=page.locator(".jp-wanllm-name", has_text="first-run")
    )
    expect(row).to_have_count(1, timeout=20_000)

    # Run All carries on to the end (the workspace from displaying `run`), every point drawn
    page.wait_for_selector(".wl-title:text-is('System metrics')", timeout=120_000)
    final = wait_for(
        page, f"() => {{ const n = ({POINT_COUNT_JS})(); return n >= 300 ? n : 0 }}", 30
    )
    assert final >= 300
    expect(row).to_have_attribute("data-state", "finished", timeout=20_000)  # live state
    screenshot(page, "notebook7-sidebar")

    # the same icon hides it again
    button.click()
    expect(page.locator(PANEL)).to_be_hidden()
