"""Issue 9, item 1 acceptance: every user string is inert wherever it is drawn.

Runs whose project, names, tags, config keys and values, notes, metric names and
system-metric types are ``<img src=x onerror="window.__pwned=1">`` markup
(``tests/hostile_names.py``) are drawn by every notebook widget (workspace with
system panels, chart, grouped compare, run table) and by the JupyterLab sidebar
(list, pickers, dialogs, compare from the selection) in real JupyterLab and
Chromium: ``window.__pwned`` stays undefined, no element carries the markup's
``onerror`` (or ``<b>``), and every string appears literally as text."""

from __future__ import annotations

from typing import Any

import nbformat
import pytest
from playwright.sync_api import expect

from tests import hostile_names as H
from tests.browser import accept_kernel_dialog, write_notebook

pytestmark = pytest.mark.browser

PANEL = "#wanllm-run-browser"
# Everything the page shows as text: rendered text plus SVG text (bqplot axes,
# legends, tooltips) and form controls' values and option labels.
PAGE_TEXT_JS = """
() => [
  document.body.innerText,
  ...[...document.querySelectorAll('svg text')].map(t => t.textContent),
  ...[...document.querySelectorAll('option')].map(o => o.textContent),
  ...[...document.querySelectorAll('input')].map(i => i.value),
  ...[...document.querySelectorAll('[title]')].map(e => e.getAttribute('title')),
].join('\\n')
"""
# Markup that a string would have become had it been parsed as HTML.
INJECTED_JS = """
() => ({
  pwned: typeof window.__pwned,
  onerror: [...document.querySelectorAll('*')].filter(e => e.hasAttribute('onerror')).length,
  images: document.querySelectorAll('img[src="x"]').length,
  bold: [...document.querySelectorAll('b')].filter(b => b.textContent === 'acc').length,
})
"""
CLEAN = {"pwned": "undefined", "onerror": 0, "images": 0, "bold": 0}


@pytest.fixture(scope="module")
def hostile(lab: Any) -> H.HostileRuns:
    return H.seed(lab.api)


def assert_inert_and_literal(page: Any, expected: list[str]) -> None:
    page.wait_for_timeout(500)  # an onerror fires after the image request fails
    assert page.evaluate(INJECTED_JS) == CLEAN
    text = page.evaluate(PAGE_TEXT_JS)
    missing = [s for s in expected if s not in text]
    assert not missing, f"not shown literally: {missing}"


def test_notebook_widgets_draw_markup_names_as_text(
    lab: Any, hostile: H.HostileRuns, screenshot: Any
) -> None:
    ids = list(hostile.ids)
    cells = [
        "from wanllm_jupyter.widgets import chart, compare, runs, workspace\n"
        f"workspace({ids[0]!r}, live=False)",
        f"chart({ids!r}, {list(H.METRICS)!r}, x={H.METRICS[1]!r}, live=False)",
        f"compare({ids!r}, {H.METRICS[0]!r}, group_by={H.CONFIG_KEY!r})",
        f"runs({H.PROJECT!r}, columns=[{'config.' + H.CONFIG_KEY!r}], live=False)",
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    write_notebook(nb, lab.root / "hostile.ipynb")
    page = lab.page("lab/tree/hostile.ipynb?reset", viewport=(1280, 4000))
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=30_000)
    accept_kernel_dialog(page)
    page.locator(".lm-MenuBar-item", has_text="Run").click()
    page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()

    # every widget has drawn: run table rows, system panel, compare legend, chart lines
    page.wait_for_function(
        "document.querySelectorAll('.wl-run-table .wl-rt-row').length === 2", timeout=90_000
    )
    page.locator(".wl-system-panel").first.wait_for(timeout=30_000)
    page.wait_for_function(
        "v => [...document.querySelectorAll('svg text.legendtext')]"
        ".some(t => t.textContent.includes(v))",
        arg=H.CONFIG_VALUES[0],
        timeout=30_000,
    )
    page.wait_for_function(
        "document.querySelectorAll('.jp-OutputArea .wl-chart path.line').length >= 4",
        timeout=30_000,
    )
    page.locator(".wl-run-table .wl-rt-button").click()  # the column picker lists config keys
    page.locator(".wl-run-table .wl-rt-option").first.wait_for(timeout=5_000)
    assert_inert_and_literal(
        page,
        [
            *H.RUN_NAMES,
            H.PROJECT,
            *H.TAGS,
            H.CONFIG_KEY,
            *H.CONFIG_VALUES,
            H.NOTES,
            *H.METRICS,
            H.SYSTEM_TYPE,
            H.SYSTEM_DEVICE,
            f"{H.CONFIG_KEY}={H.CONFIG_VALUES[1]} (n=1)",
        ],
    )
    titles = page.locator(".jp-OutputArea .wl-title").all_inner_texts()
    assert ", ".join(H.METRICS) in titles and H.METRICS[0] in titles and H.SYSTEM_TYPE in titles
    screenshot(page.locator(".jp-Cell").first, "hostile-workspace")


def test_sidebar_draws_markup_names_as_text(
    lab: Any, hostile: H.HostileRuns, screenshot: Any
) -> None:
    page = lab.page("lab?reset")
    page.click("[data-id='wanllm-run-browser']")
    page.wait_for_selector(f"{PANEL} .jp-wanllm-status[data-status='live']", timeout=20_000)
    page.locator(f"{PANEL} .jp-wanllm-project").select_option(value=H.PROJECT)
    rows = page.locator(f"{PANEL} .jp-wanllm-RunRow")
    expect(rows).to_have_count(2, timeout=10_000)
    page.locator(f"{PANEL} .jp-wanllm-metric").select_option(value=H.METRICS[0])
    expect(page.locator(f"{PANEL} .jp-wanllm-spark path")).to_have_count(2, timeout=10_000)
    expect(page.locator(f"{PANEL} .jp-wanllm-name")).to_have_text(
        list(reversed(H.RUN_NAMES))  # newest first
    )
    project = page.locator(f"{PANEL} .jp-wanllm-project option:checked")
    assert project.inner_text() == f"{H.PROJECT} (2)"
    assert_inert_and_literal(page, [*H.RUN_NAMES, H.PROJECT, *H.TAGS, *H.METRICS])

    # dialogs put run names in their titles
    first = rows.filter(has=page.locator(".jp-wanllm-name", has_text=H.RUN_NAMES[0]))
    first.locator(".jp-wanllm-name").click(button="right")
    page.locator(".lm-Menu-item", has_text="Delete").click()
    expect(page.locator(".jp-Dialog-header")).to_have_text(f"Delete run “{H.RUN_NAMES[0]}”?")
    assert page.evaluate(INJECTED_JS) == CLEAN
    page.keyboard.press("Escape")
    expect(page.locator(".jp-Dialog")).to_have_count(0)
    page.locator(f"{PANEL} .jp-wanllm-tags").click()
    expect(page.locator(".jp-Dialog-header")).to_have_text(f"Tags of {H.RUN_NAMES[0]}")
    assert page.locator(".jp-Dialog input").input_value() == ", ".join(H.TAGS)
    assert page.evaluate(INJECTED_JS) == CLEAN
    page.keyboard.press("Escape")
    expect(page.locator(".jp-Dialog")).to_have_count(0)
    screenshot(page.locator(PANEL), "hostile-sidebar")

    # compare the two runs from the sidebar: the inserted cell runs and draws a chart
    page.locator(f"{PANEL} .jp-wanllm-name", has_text=H.RUN_NAMES[1]).click(modifiers=["Control"])
    expect(page.locator(f"{PANEL} .jp-wanllm-selcount")).to_have_text("2 selected")
    page.locator(f"{PANEL} .jp-wanllm-compare").click()
    accept_kernel_dialog(page)
    title = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea .wl-title")
    expect(title).to_have_text(H.METRICS[0], timeout=90_000)
    page.wait_for_function(
        "document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) "
        ".wl-chart path.line').length >= 2",
        timeout=30_000,
    )
    assert_inert_and_literal(page, [*H.RUN_NAMES, H.METRICS[0]])
