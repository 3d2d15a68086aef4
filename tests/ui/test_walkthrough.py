"""Issue 11 acceptance: a new user's first minutes, walked through once in real JupyterLab
and Chromium. The quickstart and compare-runs notebooks run as shipped, then the sidebar
compares two runs and opens one.

Asserted on the way: ``finish()`` writes nothing to stderr and the cell echoes no report;
the hover read-out shows values; legends sit outside the plot area; the CSV button
downloads in the browser; a metric keeps its colour between the inline chart and the
workspace, and a run between the 9-run chart and a 2-run chart; the run table shows the
varying config and the summary as columns; a double-click in the sidebar opens the run's
workspace; no console error and no failed wanllm request from start to end.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser import (
    LEGEND_COLORS_JS,
    accept_kernel_dialog,
    choose_theme,
    hover_chart,
    run_all,
    set_theme,
    watch_failures,
)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"
PANEL = "#wanllm-run-browser"
STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
DONE = re.compile(r"\[\d+\]:")


def _open_and_run(page: Any, lab: Any, name: str) -> Any:
    """Open notebooks/<name> (copied to the server's root) in a reset workspace, run all;
    its notebook panel."""
    shutil.copy(ROOT / "notebooks" / name, lab.root / f"walkthrough-{name}")
    page.goto(f"{lab.url}lab/tree/walkthrough-{name}?reset&token={lab.token}")
    notebook = page.locator(NOTEBOOK)
    notebook.locator(".jp-Cell").first.wait_for(timeout=60_000)
    accept_kernel_dialog(page)  # a copied notebook may ask which kernel to start
    run_all(page)
    expect(notebook.locator(".jp-CodeCell .jp-InputPrompt").first).to_have_text(
        DONE, timeout=60_000
    )
    return notebook


def _assert_quiet_finish(cell: Any, runs: int) -> None:
    """A finished cell that called ``finish()`` ``runs`` times: nothing on stderr, no echoed
    report, at most one line per run."""
    expect(cell.locator(".jp-InputPrompt")).to_have_text(DONE, timeout=120_000)
    assert cell.locator(STDERR).count() == 0
    assert cell.locator(".jp-OutputArea-executeResult").count() == 0
    text = "\n".join(cell.locator(".jp-OutputArea-output").all_inner_texts()).strip()
    said = [line for line in text.splitlines() if not line.startswith("wanllm: logging to ")]
    assert "SendReport" not in text and len(said) <= runs, text  # (init says where it logs)


def _assert_legend_outside(chart: Any) -> None:
    legend = chart.locator(".wl-legend").first.bounding_box()
    plot = chart.locator(".bqplot .plotarea_background").first.bounding_box()
    assert legend and plot
    apart = (
        legend["y"] + legend["height"] <= plot["y"] + 1
        or legend["y"] >= plot["y"] + plot["height"] - 1
        or legend["x"] + legend["width"] <= plot["x"] + 1
        or legend["x"] >= plot["x"] + plot["width"] - 1
    )
    assert apart, (legend, plot)


def _assert_readout(page: Any, chart: Any, names: set[str]) -> None:
    """Hovering the middle of the plot names every series with a value."""
    rows = hover_chart(page, chart)["rows"]
    assert len(rows) == len(names), rows
    for name in names:
        assert any(r.startswith(name) and re.search(r"\d", r[len(name) :]) for r in rows), rows


def test_first_minutes_walkthrough(lab: Any, tmp_path: Path, screenshot: Any) -> None:
    page = lab.page("lab?reset", viewport=(1400, 1000))
    failures = watch_failures(page)

    # quickstart: live chart, finish(), DataFrame, workspace
    notebook = _open_and_run(page, lab, "quickstart.ipynb")
    cells = notebook.locator(".jp-CodeCell")
    _assert_quiet_finish(cells.nth(3), 1)
    workspace_done = notebook.locator(".wl-title", has_text="System metrics").first
    workspace_done.wait_for(state="attached", timeout=60_000)
    inline = cells.nth(1).locator(".wl-chart").first
    _assert_readout(page, inline, {"loss", "accuracy"})
    _assert_legend_outside(inline)
    workspace = notebook.locator(".wl-chart", has_text="All selected metrics").first
    workspace.locator(".wl-legend-item").first.wait_for(timeout=30_000)
    in_workspace = workspace.evaluate(LEGEND_COLORS_JS)
    for metric, colour in inline.evaluate(LEGEND_COLORS_JS).items():
        assert in_workspace[metric] == colour, (metric, in_workspace)
    with page.expect_download(timeout=30_000) as download:
        inline.locator("button", has_text="CSV").click()
    assert download.value.suggested_filename.endswith(".csv")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert len(saved.read_text().splitlines()) > 300  # a header and every step
    assert notebook.locator(STDERR).count() == 0

    # compare-runs: 9 runs finished in a loop, overlaid, grouped, in the run table
    notebook = _open_and_run(page, lab, "compare-runs.ipynb")
    cells = notebook.locator(".jp-CodeCell")
    _assert_quiet_finish(cells.nth(1), 9)
    table = notebook.locator(".wl-run-table")
    expect(table.locator(".wl-rt-row")).to_have_count(9, timeout=60_000)
    headers = table.locator(".wl-rt-th[data-column]").all_inner_texts()
    assert {"config.lr", "config.seed", "summary.loss"} <= set(headers), headers
    nine = cells.nth(2).locator(".wl-chart").first
    names = {f"lr{lr}-s{seed}" for lr in (0.1, 0.03, 0.01) for seed in range(3)}
    _assert_readout(page, nine, names)
    _assert_legend_outside(nine)
    colours = nine.evaluate(LEGEND_COLORS_JS)
    assert set(colours) == names and len(set(colours.values())) == 9

    # the sidebar: compare two runs (same colours), double-click one to open its workspace
    page.click("[data-id='wanllm-run-browser']")
    page.wait_for_selector(f"{PANEL} .jp-wanllm-status[data-status='live']", timeout=20_000)
    page.locator(f"{PANEL} .jp-wanllm-project").select_option("compare-demo")
    row = lambda name: page.locator(  # noqa: E731
        f"{PANEL} .jp-wanllm-RunRow", has=page.locator(".jp-wanllm-name", has_text=name)
    )
    row("lr0.1-s0").locator(".jp-wanllm-name").click()
    row("lr0.01-s2").locator(".jp-wanllm-name").click(modifiers=["Control"])
    page.locator(f"{PANEL} .jp-wanllm-compare").click()
    two = page.locator(f"{NOTEBOOK} .jp-Cell.jp-mod-active .wl-chart")
    expect(two.locator(".wl-legend-item")).to_have_count(2, timeout=60_000)
    pair = two.evaluate(LEGEND_COLORS_JS)
    assert pair == {name: colours[name] for name in ("lr0.1-s0", "lr0.01-s2")}, pair

    run_id = next(
        r["id"]
        for r in lab.api.get_json("wanllm/api/v1/runs?project=compare-demo")["runs"]
        if r["name"] == "lr0.03-s1"
    )
    row("lr0.03-s1").locator(".jp-wanllm-name").dblclick()
    opened = page.locator(f"{NOTEBOOK} .jp-Cell.jp-mod-active")
    expect(opened.locator(".cm-content")).to_contain_text(run_id, timeout=30_000)
    opened.locator(".wl-chart", has_text=run_id).first.wait_for(state="attached", timeout=60_000)
    assert page.locator(f"{NOTEBOOK} {STDERR}").count() == 0
    assert failures == []

    # the sidebar and the run table in the dark theme, for the README
    try:
        choose_theme(page, "JupyterLab Dark")
        page.wait_for_timeout(500)
        screenshot(page, "sidebar-dark", docs=True)
        table.scroll_into_view_if_needed()
        screenshot(table, "run-table-dark", docs=True)
    finally:
        set_theme(lab.api, "JupyterLab Light")
