"""Helpers shared by the UI tests and browser benchmarks: Debian's headless Chromium as they
launch it, and page probes."""

from __future__ import annotations

import json
import os
import time
from contextlib import suppress
from typing import Any

CHROMIUM = os.environ.get("WANLLM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# Points in the longest drawn line of the first chart (a d3 path: one M/L per point).
POINT_COUNT_JS = """
() => {
  const chart = document.querySelector('.jp-OutputArea .wl-chart');
  if (!chart) return -1;
  const counts = [...chart.querySelectorAll('path.line')]
    .map(p => ((p.getAttribute('d') || '').match(/[ML]/g) || []).length);
  return counts.length ? Math.max(...counts) : 0;
}
"""

# Resolves after two animation frames: Lumino delivers posted messages (activate-request,
# update-request) on the next frame, so whatever was posted before has run by then.
TWO_FRAMES_JS = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"


def wait_for_launcher(page: Any) -> None:
    """Wait until a ``lab?reset`` page has opened and activated its launcher.

    JupyterLab opens the launcher only after its file browser restored (a network round
    trip) and then activates it, which moves keyboard focus into it: a test that pressed
    keys elsewhere before that would lose them to the launcher."""
    page.wait_for_selector("#jp-main-dock-panel .jp-Launcher", timeout=30_000)
    page.evaluate(TWO_FRAMES_JS)


# Legend entry -> its line colour, of the chart element passed in.
LEGEND_COLORS_JS = """
(chart) => Object.fromEntries([...chart.querySelectorAll('.wl-legend-item')].map(i => [
  i.textContent, getComputedStyle(i.querySelector('.wl-legend-line')).borderTopColor]))
"""


def watch_failures(page: Any) -> list[str]:
    """From now on, collect the page's console errors and its failed (>= 400) wanllm requests."""
    failures: list[str] = []
    page.on(
        "console",
        lambda m: failures.append(f"console: {m.text}") if m.type == "error" else None,
    )
    page.on(
        "response",
        lambda r: (
            failures.append(f"{r.status} {r.request.method} {r.url}")
            if r.status >= 400 and "wanllm" in r.url
            else None
        ),
    )
    return failures


def write_notebook(nb: Any, path: Any) -> None:
    """Write ``nb`` to ``path`` with the python3 kernel named, so Lab can start it."""
    import nbformat

    spec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["kernelspec"] = spec
    nbformat.write(nb, path)


def accept_kernel_dialog(page: Any, timeout: float = 5_000) -> None:
    """Accept the kernel choice a notebook may ask for when it opens (if it asks)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with suppress(PlaywrightTimeout):
        page.locator(".jp-Dialog .jp-mod-accept").click(timeout=timeout)


def run_all(page: Any, timeout: float = 60.0) -> None:
    """Run every cell of the active notebook through JupyterLab's Run menu.

    The menu item stays disabled until the notebook's kernel session is ready (a menu
    computes it when it opens): the menu is reopened until the item is enabled."""
    item = page.locator(".lm-Menu-item[data-command='runmenu:run-all']")
    deadline = time.monotonic() + timeout
    while True:
        page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        item.wait_for()
        if "lm-mod-disabled" not in (item.get_attribute("class") or ""):
            item.click()
            return
        page.keyboard.press("Escape")
        if time.monotonic() > deadline:
            raise AssertionError("Run > Run All Cells stayed disabled")
        page.wait_for_timeout(250)


def hover_chart(page: Any, chart: Any, fraction: float = 0.5) -> dict[str, Any]:
    """Move the mouse over a chart's plot area at ``fraction`` of its width; its read-out's
    header and rows, and the plot area's box."""
    chart.scroll_into_view_if_needed()
    box = chart.locator(".bqplot .plotarea_background").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * fraction, box["y"] + box["height"] * 0.5)
    page.wait_for_timeout(100)
    return {
        "rows": chart.locator(".wl-readout-row").all_inner_texts(),
        "head": chart.locator(".wl-readout-head").inner_text(),
        "box": box,
    }


THEMES = "lab/api/settings/@jupyterlab/apputils-extension:themes"


def set_theme(api: Any, name: str) -> None:
    """Save JupyterLab's theme through the settings API (pages loaded afterwards use it)."""
    api.request("PUT", THEMES, body=json.dumps({"raw": json.dumps({"theme": name})}).encode())


def choose_theme(page: Any, name: str) -> None:
    """Switch the open page's theme as a user does, from Settings > Theme (also saved)."""
    page.locator(".lm-MenuBar-item", has_text="Settings").click()
    page.locator(".lm-Menu-item:has(.lm-Menu-itemLabel:text-is('Theme'))").hover()
    page.locator(".lm-Menu-item[data-command='apputils:change-theme']", has_text=name).first.click()
    light = "false" if "Dark" in name else "true"
    page.wait_for_function("v => document.body.dataset.jpThemeLight === v", arg=light)
