"""Issue 5 acceptance: quickstart.ipynb in a real JupyterLab; the inline chart
grows while the logging cell is still executing; screenshots of chart and workspace."""

from __future__ import annotations

import shutil
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

from tests.browser import POINT_COUNT_JS

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.browser

BUSY_JS = """
() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
  .map(p => p.textContent.trim())
"""


def wait_for(page: Any, predicate: str, timeout: float = 60.0, arg: Any = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = page.evaluate(predicate) if arg is None else page.evaluate(predicate, arg)
        if value:
            return value
        time.sleep(0.1)
    page.screenshot(path=str(ROOT / "tests" / "artifacts" / "live-chart-timeout.png"))
    raise AssertionError(f"timed out waiting for {predicate.strip()[:80]}")


def test_quickstart_chart_grows_while_cell_runs(lab: Any) -> None:
    # tests/ui/conftest.py's helper, however pytest imported that conftest
    save_screenshot = sys.modules[type(lab).__module__].save_screenshot
    shutil.copy(ROOT / "notebooks" / "quickstart.ipynb", lab.root / "quickstart.ipynb")
    page = lab.page("lab/tree/quickstart.ipynb?reset", viewport=(1200, 3200))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    # a notebook without kernel metadata from this server asks which kernel to start
    with suppress(Exception):
        page.click(".jp-Dialog button.jp-mod-accept", timeout=10_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    page.click(".lm-MenuBar-itemLabel:text-is('Run')", timeout=10_000)
    page.click(".lm-Menu-itemLabel:text-is('Run All Cells')", timeout=10_000)

    # the logging cell (5th input prompt) is executing ("[*]") while the chart grows
    wait_for(page, "() => document.querySelectorAll('.jp-OutputArea .wl-chart').length > 0", 90)
    first = wait_for(page, f"() => {{ const n = ({POINT_COUNT_JS})(); return n > 5 ? n : 0 }}", 60)
    prompts = page.evaluate(BUSY_JS)
    assert "[*]:" in prompts, f"logging cell no longer running: {prompts}"
    time.sleep(1.5)
    second = page.evaluate(POINT_COUNT_JS)
    prompts_after = page.evaluate(BUSY_JS)
    assert second > first, f"chart did not grow while the cell ran ({first} -> {second})"
    assert "[*]:" in prompts_after or second > first

    chart = page.locator(".jp-OutputArea .wl-chart").first
    chart.scroll_into_view_if_needed()
    save_screenshot(chart, "chart", docs=True)

    # after the loop: finish, DataFrame, and the workspace from displaying `run`
    page.wait_for_selector(".wl-title:text-is('System metrics')", timeout=120_000)
    time.sleep(2.0)  # let the workspace charts draw
    final = page.evaluate(POINT_COUNT_JS)
    assert final >= 300, f"the chart should end with every point, got {final}"
    workspace = page.locator(".jp-OutputArea .wl-chart", has_text="All selected metrics").first
    workspace.scroll_into_view_if_needed()
    save_screenshot(workspace, "workspace", docs=True)
