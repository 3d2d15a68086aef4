"""Issue 11 (items 3, 12–15) in real JupyterLab and Chromium: charts readable at
800 px (file browser open) and 1920 px, in the light and the dark theme.

A notebook draws a 9-run chart, a single-run chart of two metrics of different
magnitude, a chart of a metric without points yet, and a workspace. Asserted:
no figure is clipped by its output area, legend and axis text contrast ≥ 4.5:1
against what is behind it, the legend sits outside the plot area, hovering
shows every run's value at the cursor, a run (and a metric) has one colour in
every chart, the wheel scrolls the page, dragging zooms, no 404 reaches the
browser. Screenshots go to ``docs/``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from typing import Any

import nbformat
import pytest

from tests.browser import (
    LEGEND_COLORS_JS,
    accept_kernel_dialog,
    hover_chart,
    run_all,
    set_theme,
    write_notebook,
)
from wanllm_jupyter._http import API

pytestmark = pytest.mark.browser

RUNS = 9
STEPS = 300
# WCAG contrast of every visible text element matching a selector against the
# first opaque background behind it (alpha blended).
CONTRAST_JS = """
(sel) => {
  const parse = c => {
    const m = (c || '').match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const lum = ({r, g, b}) => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const bgOf = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0.5) return c;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  const out = [];
  for (const el of document.querySelectorAll(sel)) {
    const r = el.getBoundingClientRect();
    const cs = getComputedStyle(el);
    if (!r.width || !el.textContent.trim() || cs.visibility === 'hidden') continue;
    const bg = bgOf(el.parentElement);
    let fg = parse(el instanceof SVGElement ? cs.fill : cs.color);
    if (!fg) continue;
    const a = fg.a * Number(cs.opacity || 1);
    fg = {r: fg.r * a + bg.r * (1 - a), g: fg.g * a + bg.g * (1 - a), b: fg.b * a + bg.b * (1 - a)};
    const [l1, l2] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    out.push([el.textContent.trim().slice(0, 30), (l1 + 0.05) / (l2 + 0.05)]);
  }
  return out;
}
"""
# Figures whose plot area, tick labels or axis labels reach past their output area
# (cut off), or whose plot area is too narrow to read.
CLIPPED_JS = """
() => [...document.querySelectorAll('.jp-OutputArea-output .bqplot')].flatMap(fig => {
  if (!fig.getBoundingClientRect().width) return [];
  const out = fig.closest('.jp-OutputArea-output').getBoundingClientRect();
  const plot = fig.querySelector('.plotarea_background');
  const p = plot ? plot.getBoundingClientRect() : {width: 0};
  const parts = [plot, ...fig.querySelectorAll('.axis .tick text, .axislabel')].filter(Boolean);
  const cut = parts.filter(e => {
    const r = e.getBoundingClientRect();
    return r.width && (r.right > out.right + 1 || r.left < out.left - 1);
  });
  return cut.length || p.width < 60 ? [[cut.map(e => e.textContent).join(' '), p.width]] : [];
})
"""


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


def _system_rows(run_id: str, t0: float) -> list[dict[str, Any]]:
    """60 s of system metrics: CPU, a flat disk-used line, loopback network (sent = recv)."""
    rows = []
    for i in range(30):
        t = _iso(t0 + 2 * i)
        for metric, value, device in [
            ("cpu.percent", 40 + 20 * math.sin(i / 4), None),
            ("memory.percent", 52.0 + i * 0.1, None),
            ("disk.used_gb", 29.47, "/"),
            ("network.sent_mb", 0.4 * i, None),
            ("network.recv_mb", 0.4 * i, None),
        ]:
            row = {"run_id": run_id, "metric_type": metric, "value": value, "time": t}
            if device:
                row["device"] = device
            rows.append(row)
    return rows


def _seed(api: Any) -> dict[str, Any]:
    project = "readability"
    ids = []
    t0 = time.time() + 1  # after the runs are created: times since the start are >= 0
    for k in range(RUNS):
        run = api.post_json(API + "runs", {"project": project, "name": f"lr-{k}", "config": {}})
        rows = [
            {
                "run_id": run["id"],
                "metric_name": "loss",
                "step": s,
                "value": 2.5 * math.exp(-s / (60 + 15 * k)) + 0.05 * k,
                "time": _iso(t0 + s * 0.2),
            }
            for s in range(STEPS)
        ]
        rows += [
            {
                "run_id": run["id"],
                "metric_name": "lr",
                "step": s,
                "value": 3e-4 * (1 - s / STEPS),
                "time": _iso(t0 + s * 0.2),
            }
            for s in range(0, STEPS, 5)
        ]
        api.post_json(API + "metrics/batch", {"metrics": rows})
        if k == 0:
            api.post_json(API + "metrics/system/batch", {"metrics": _system_rows(run["id"], t0)})
        api.patch_json(f"{API}runs/{run['id']}", {"state": "finished"})
        ids.append(run["id"])
    empty = api.post_json(API + "runs", {"project": project, "name": "no-points-yet"})
    return {"ids": ids, "empty": empty["id"]}


@pytest.fixture(scope="module")
def seeded(lab: Any) -> dict[str, Any]:
    return _seed(lab.api)


@pytest.fixture
def theme(lab: Any) -> Iterator[Any]:
    """``theme(name)`` sets JupyterLab's theme through the settings API (restored after)."""
    yield lambda name: set_theme(lab.api, name)
    set_theme(lab.api, "JupyterLab Light")


def _notebook(lab: Any, seeded: dict[str, Any], name: str) -> None:
    ids = seeded["ids"]
    cells = [
        "from wanllm_jupyter.widgets import chart, workspace\n"
        f"chart({ids!r}, 'loss', live=False, title='9 runs')",
        f"chart({ids[:3][::-1]!r}, 'loss', live=False, title='3 runs')",
        f"chart({ids[0]!r}, ['loss', 'lr'], live=False, title='loss and lr')",
        f"chart({seeded['empty']!r}, 'loss', live=False, title='before the first point')",
        f"workspace({ids[0]!r}, live=False)",
        "from wanllm_jupyter.widgets import runs\nruns('readability', live=False)",
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    write_notebook(nb, lab.root / name)


def _open_and_run(lab: Any, name: str, width: int) -> tuple[Any, list[str]]:
    page = lab.page(f"lab/tree/{name}?reset", viewport=(width, 1000))
    problems: list[str] = []
    page.on(
        "response",
        lambda r: (
            problems.append(f"{r.status} {r.url}")
            if r.status == 404 and "wanllm" in r.url
            else None
        ),
    )
    page.on(
        "console",
        lambda m: problems.append(m.text) if m.type == "error" and "404" in m.text else None,
    )
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=30_000)
    accept_kernel_dialog(page)
    run_all(page)
    page.wait_for_selector(".wl-system-panel", timeout=90_000)
    page.wait_for_function(
        "document.querySelectorAll('.jp-OutputArea .wl-chart path.line').length >= 8",
        timeout=30_000,
    )
    page.wait_for_timeout(1500)  # the overlays attach and the last redraws land
    return page, problems


def _check_readable(page: Any) -> None:
    assert page.evaluate(CLIPPED_JS) == []
    texts = page.evaluate(
        CONTRAST_JS,
        ".jp-OutputArea .wl-legend-item, .jp-OutputArea .bqplot .axis .tick text, "
        ".jp-OutputArea .bqplot .axislabel, .jp-OutputArea .wl-empty, .jp-OutputArea .wl-title, "
        ".jp-OutputArea .wl-system-panel div > span",
    )
    assert len(texts) > 40
    low = [(t, round(c, 2)) for t, c in texts if c < 4.5]
    assert not low, f"text below 4.5:1 contrast: {low[:10]}"


@pytest.mark.parametrize(
    ("theme_name", "width"),
    [("JupyterLab Light", 1920), ("JupyterLab Light", 800), ("JupyterLab Dark", 1280)],
)
def test_charts_are_readable(
    lab: Any, seeded: dict[str, Any], theme: Any, theme_name: str, width: int
) -> None:
    save_screenshot = sys.modules[type(lab).__module__].save_screenshot
    theme(theme_name)
    dark = "Dark" in theme_name
    name = f"readability-{width}-{'dark' if dark else 'light'}.ipynb"
    _notebook(lab, seeded, name)
    page, problems = _open_and_run(lab, name, width)
    if width == 800:  # the file browser is open beside the notebook
        assert page.locator("#filebrowser").is_visible()
    assert page.evaluate("document.body.dataset.jpThemeLight") == ("false" if dark else "true")

    _check_readable(page)

    # hover read-out: every run's value at the cursor's x, named, in the 9-run chart
    charts = page.locator(".jp-OutputArea-output .wl-chart")
    hover = hover_chart(page, charts.nth(0))
    assert hover["head"].startswith("step ") and hover["head"].endswith("smoothed (raw)")
    assert len(hover["rows"]) == RUNS
    assert all(row.startswith("lr-") and any(ch.isdigit() for ch in row) for row in hover["rows"])
    legend = page.locator(".jp-OutputArea-output .wl-chart").nth(0).locator(".wl-legend")
    lbox = legend.bounding_box()
    assert lbox["y"] + lbox["height"] <= hover["box"]["y"] + 1  # the legend is above the plot
    tag = "dark" if dark else "light"
    if width != 800:
        save_screenshot(page.locator(".jp-Cell").nth(0), f"chart-hover-{tag}", docs=True)

    # a run has the same colour in the 9-run and the 3-run chart
    nine = charts.nth(0).evaluate(LEGEND_COLORS_JS)
    three = charts.nth(1).evaluate(LEGEND_COLORS_JS)
    assert len(nine) == RUNS and len(three) == 3
    assert all(three[run] == nine[run] for run in three)

    # loss and lr differ by orders of magnitude: lr on a right axis; the read-out names both
    hover = hover_chart(page, charts.nth(2), 0.3)
    assert len(hover["rows"]) == 2
    assert any("loss" in r for r in hover["rows"]) and any("lr" in r for r in hover["rows"])
    right = (
        page.locator(".jp-OutputArea-output .wl-chart").nth(2).locator(".axislabel", has_text="lr")
    )
    assert right.count() == 1

    # the empty state instead of a chart, and no 404 in the browser
    empty = page.locator(".jp-OutputArea-output .wl-chart").nth(3).locator(".wl-empty")
    assert "first point" in empty.inner_text() or "No data" in empty.inner_text()
    assert problems == []
    server_404 = [
        line
        for line in lab.log.read_text().splitlines()
        if " 404 " in line and seeded["empty"] in line
    ]
    assert server_404 == []

    # the wheel over a chart scrolls the notebook
    scroller = ".jp-WindowedPanel-outer"
    fig = page.locator(".jp-OutputArea-output .wl-chart .bqplot").nth(1)
    fig.scroll_into_view_if_needed()
    before = page.evaluate(f"document.querySelector('{scroller}').scrollTop")
    box = fig.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, 300)
    page.wait_for_timeout(300)
    assert page.evaluate(f"document.querySelector('{scroller}').scrollTop") > before

    # dragging across the 9-run chart zooms into that x range; double-click resets
    fig = page.locator(".jp-OutputArea-output .wl-chart .bqplot").nth(0)
    fig.scroll_into_view_if_needed()
    plot = fig.locator(".plotarea_background").bounding_box()
    y = plot["y"] + plot["height"] / 2
    ticks = (
        "f => [...f.querySelector('g.axis').querySelectorAll('.tick text')].map(t => t.textContent)"
    )
    first_ticks = fig.evaluate(ticks)
    page.mouse.move(plot["x"] + plot["width"] * 0.2, y)
    page.mouse.down()
    page.mouse.move(plot["x"] + plot["width"] * 0.4, y, steps=5)
    page.mouse.up()
    page.wait_for_timeout(500)
    zoomed = fig.evaluate(ticks)
    assert zoomed != first_ticks and float(zoomed[0]) > float(first_ticks[0])
    page.mouse.dblclick(plot["x"] + plot["width"] * 0.5, y)
    page.wait_for_timeout(500)
    assert fig.evaluate(ticks) == first_ticks

    if width != 800:
        page.set_viewport_size({"width": width, "height": 2600})  # the whole workspace
        page.wait_for_timeout(500)
        workspace = page.locator(".jp-Cell").nth(4)
        workspace.scroll_into_view_if_needed()
        save_screenshot(workspace, f"workspace-{tag}", docs=True)
        if not dark:
            save_screenshot(page.locator(".jp-Cell").nth(0), "compare-9-runs", docs=True)
    else:
        save_screenshot(page, "readability-800")
        # the run table scrolls sideways here; its header's background spans every column
        table = page.locator(".wl-run-table .wl-rt-viewport").first
        table.scroll_into_view_if_needed()
        widths = table.evaluate(
            "v => [v.scrollWidth, v.clientWidth, "
            "v.querySelector('.wl-rt-header').getBoundingClientRect().width]"
        )
        assert widths[0] > widths[1], f"the table should overflow at 800 px: {widths}"
        assert widths[2] >= widths[0] - 1, f"header narrower than the columns: {widths}"
