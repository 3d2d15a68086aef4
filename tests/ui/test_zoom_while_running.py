"""Issue 10: a zoom is served while a cell runs (JupyterLab >= 4.4 / Notebook 7, ipykernel >= 7).

JupyterLab sends widget comm messages to a kernel subshell, so the chart's zoom handler runs
on the subshell's thread while the main shell executes a cell. Here a cell logs and watches its
own chart's model: the test drags across the (M4-sampled) chart in Chromium, and the running cell
itself reports that the zoomed range was re-queried at full resolution, so the zoom was served
while the cell ran however slow the machine is.
"""

from __future__ import annotations

import json
import re
import time
from contextlib import suppress
from typing import Any

import pytest

pytestmark = pytest.mark.browser

SETUP = """\
import time
import wanllm_jupyter as wl
run = wl.init(project="zoom-live", name="zoom-run")
for s in range(3000):
    run.log({"loss": 1.0 - s / 3000 + 0.05 * (s % 7)}, step=s)
time.sleep(2)  # the sender delivers the points: the chart loads them M4-sampled"""
CHART = """\
c = run.chart("loss", samples=100, smoothing=0)
c"""
LOOP = """\
before, served, t0 = c.model.loaded_range, None, time.monotonic()
print("LOOP-STARTED", flush=True)
for i in range(1200):  # logs for up to 120 s; ends 3 s after the zoom is served
    run.log({"loss": 0.5}, step=3000 + i)
    if served is None and c.model.loaded_range != before:
        served, served_at = time.monotonic() - t0, i
        view = c.model.views()[0]
        print(f"ZOOM-SERVED range={c.model.loaded_range} sampled={view.sampled}", flush=True)
    if served is not None and i >= served_at + 30:
        break
    time.sleep(0.1)
print("LOOP-DONE", served, flush=True)"""
PROMPTS_JS = """
() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent.trim())
"""


def wait_idle(page: Any, timeout: float = 60.0) -> None:
    """The kernel is idle: JupyterLab's execution indicator, or Notebook 7's kernel status."""
    page.wait_for_function(
        """() => {
          const lab = document.querySelector('.jp-Notebook-ExecutionIndicator');
          if (lab) return lab.dataset.status === 'idle';
          const nb = document.querySelector('.jp-NotebookKernelStatus');
          return !!nb && !/busy|starting/.test(nb.className);
        }""",
        timeout=timeout * 1000,
    )


def notebook(*sources: str) -> str:
    cells = [
        {"cell_type": "code", "metadata": {}, "source": s, "outputs": [], "execution_count": None}
        for s in sources
    ]
    meta = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    return json.dumps({"cells": cells, "metadata": meta, "nbformat": 4, "nbformat_minor": 5})


def output_text(page: Any) -> str:
    return page.evaluate("() => document.querySelector('.jp-Notebook').innerText")


def wait_text(page: Any, pattern: str, timeout: float) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := re.search(pattern, output_text(page)):
            return found
        time.sleep(0.1)
    raise AssertionError(f"no {pattern!r} within {timeout}s:\n{output_text(page)[-2000:]}")


@pytest.mark.parametrize("app", ["lab", "notebook7"])
def test_zoom_is_served_while_a_cell_runs(app: str, request: pytest.FixtureRequest) -> None:
    jupyter = request.getfixturevalue(app)
    (jupyter.root / "zoom.ipynb").write_text(notebook(SETUP, CHART, LOOP))
    path = "lab/tree/zoom.ipynb?reset" if app == "lab" else "notebooks/zoom.ipynb"
    page = jupyter.page(path, viewport=(1200, 1400))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    with suppress(Exception):
        page.click(".jp-Dialog button.jp-mod-accept", timeout=5_000)
    wait_idle(page)
    page.click(".lm-MenuBar-itemLabel:text-is('Run')", timeout=10_000)
    page.click(".lm-Menu-itemLabel:text-is('Run All Cells')", timeout=10_000)

    wait_text(page, "LOOP-STARTED", 90)
    fig = page.locator(".jp-OutputArea-output .wl-chart .bqplot").first
    page.wait_for_selector(".wl-chart path.line", timeout=30_000)
    assert "[*]:" in page.evaluate(PROMPTS_JS), "the logging cell should be running"

    # drag across a tenth of the plot: the browser zooms, the kernel should re-query
    plot = fig.locator(".plotarea_background").bounding_box()
    y = plot["y"] + plot["height"] / 2
    page.mouse.move(plot["x"] + plot["width"] * 0.3, y)
    page.mouse.down()
    page.mouse.move(plot["x"] + plot["width"] * 0.4, y, steps=5)
    page.mouse.up()

    served = wait_text(page, r"ZOOM-SERVED range=\((\d+), (\d+)\) sampled=(\w+)", 60)
    lo, hi = int(served[1]), int(served[2])
    assert 600 <= lo < hi <= 1500, (lo, hi)  # about 30-40 % of 0..3000+
    assert served[3] == "False"  # full resolution
    wait_text(page, r"LOOP-DONE [\d.]+", 30)  # the cell went on logging after the zoom
