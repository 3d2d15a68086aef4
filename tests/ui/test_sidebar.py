"""Issue 6 acceptance: the run browser sidebar against a real JupyterLab in headless Chromium."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser import wait_for_launcher, watch_failures

pytestmark = pytest.mark.browser

PROJECT = "vision"
PANEL = "#wanllm-run-browser"
LIVE_SCRIPT = textwrap.dedent(
    """
    import sys
    import wanllm_jupyter as wl

    run = wl.init(project=sys.argv[1], name="live-run", config={"lr": 0.003}, tags=["live"])
    for step in range(60):
        run.log({"loss": 2.0 * 0.95 ** step}, step=step)
    print(run.id, flush=True)
    sys.stdin.readline()
    for step in range(60, 120):
        run.log({"loss": 2.0 * 0.95 ** step}, step=step)
    sys.stdin.readline()
    wl.finish()
    """
)


def create_run(
    lab: Any, name: str, state: str, lr: float, tags: list[str], decay: float
) -> dict[str, Any]:
    """A run made through the REST API, with a `loss` curve, left in `state`."""
    run = lab.api.post_json(
        "wanllm/api/v1/runs",
        {"project": PROJECT, "name": name, "config": {"lr": lr, "optimizer": "adam"}, "tags": tags},
    )
    points = [
        {
            "run_id": run["id"],
            "metric_name": "loss",
            "step": s,
            "value": 2.2 * math.exp(-decay * s) + 0.05 * math.sin(s),
        }
        for s in range(80)
    ]
    lab.api.post_json("wanllm/api/v1/metrics/batch", {"metrics": points})
    if state != "running":
        run = lab.api.patch_json(f"wanllm/api/v1/runs/{run['id']}", {"state": state})
    return run


@pytest.fixture(scope="module")
def runs(lab: Any) -> list[dict[str, Any]]:
    specs = [
        ("resnet50-baseline", "finished", 0.1, ["baseline"], 0.03),
        ("resnet50-lr-3e-2", "finished", 0.03, ["sweep"], 0.05),
        ("resnet50-lr-1e-2", "failed", 0.01, ["sweep"], 0.02),
        ("vit-small-warmup", "crashed", 0.001, ["vit"], 0.04),
        ("vit-small-mixup", "running", 0.0005, ["vit", "mixup"], 0.06),
    ]
    lab.api.post_json("wanllm/api/v1/runs", {"project": "scratch", "name": "elsewhere"})
    return [create_run(lab, *spec) for spec in specs]


def open_panel(lab: Any) -> Any:
    page = lab.page("lab?reset")  # a fresh workspace: the sidebar starts closed
    wait_for_launcher(page)  # else it may take the keyboard focus from the list later
    page.click("[data-id='wanllm-run-browser']")
    page.wait_for_selector(f"{PANEL} .jp-wanllm-status[data-status='live']", timeout=20_000)
    return page


def widen_sidebar(page: Any, by: int = 110) -> None:
    """Drag the left sidebar's split handle (as a user would) so run names fit."""
    box = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + by, y, steps=5)
    page.mouse.up()


def row(page: Any, name: str) -> Any:
    return page.locator(
        f"{PANEL} .jp-wanllm-RunRow", has=page.locator(".jp-wanllm-name", has_text=name)
    )


def test_lists_runs_live_states_and_compares(
    lab: Any, runs: list[dict[str, Any]], screenshot: Any
) -> None:
    page = open_panel(lab)
    widen_sidebar(page)
    # the most recently active project is shown; every run the test made is listed
    expect(page.locator(f"{PANEL} .jp-wanllm-project")).to_have_value(PROJECT)
    for run in runs:
        badge = row(page, run["name"]).locator(".wl-state-badge")
        expect(badge).to_have_text(run["state"], timeout=10_000)
    expect(page.locator(f"{PANEL} .jp-wanllm-count")).to_have_text(f"{len(runs)} runs")
    # latest value + sparkline of the chosen metric
    expect(page.locator(f"{PANEL} .jp-wanllm-metric")).to_have_value("loss")
    spark = row(page, "resnet50-baseline").locator(".jp-wanllm-spark path")
    spark.wait_for(timeout=10_000)
    assert spark.get_attribute("d").startswith("M")

    # search with AND/OR narrows the list
    search = page.locator(f"{PANEL} .jp-wanllm-search")
    search.fill("tag:sweep config.lr>=0.02 OR state:crashed")
    page.wait_for_function(
        "document.querySelectorAll('#wanllm-run-browser .jp-wanllm-RunRow').length === 2",
        timeout=5_000,
    )
    assert sorted(page.locator(f"{PANEL} .jp-wanllm-name").all_inner_texts()) == [
        "resnet50-lr-3e-2",
        "vit-small-warmup",
    ]
    search.fill("config.lr<null")
    error = page.locator(f"{PANEL} .jp-wanllm-search-error")
    expect(error).to_contain_text("null is only allowed with = or !=")
    search.fill("")

    # a run logged by another process appears as running and turns finished, no reload
    proc = subprocess.Popen(
        [sys.executable, "-c", LIVE_SCRIPT, PROJECT],
        env=lab.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        live_id = proc.stdout.readline().strip()
        assert live_id, "the logging subprocess printed no run id"
        live_badge = row(page, "live-run").locator(".wl-state-badge[data-state='running']")
        live_badge.wait_for(timeout=15_000)
        value = row(page, "live-run").locator(".jp-wanllm-value")
        expect(value).to_have_text("0.09699", timeout=15_000)
        proc.stdin.write("\n")  # log 60 more points: pushed over the metrics socket
        proc.stdin.flush()
        expect(value).to_have_text("0.004468", timeout=15_000)  # rows re-render: no element handles
        expect(live_badge).to_be_visible()
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    row(page, "live-run").locator(".wl-state-badge[data-state='finished']").wait_for(timeout=15_000)
    expect(page.locator(f"{PANEL} .jp-wanllm-count")).to_have_text(f"{len(runs) + 1} runs")

    # multi-select two runs and compare: a notebook opens with the expected cell
    row(page, "resnet50-baseline").locator(".jp-wanllm-name").click()
    row(page, "resnet50-lr-3e-2").locator(".jp-wanllm-name").click(modifiers=["Control"])
    expect(page.locator(f"{PANEL} .jp-wanllm-selcount")).to_have_text("2 selected")
    page.locator(f"{PANEL} .jp-wanllm-compare").click()
    ids = {r["name"]: r["id"] for r in runs}
    expected = (
        "import wanllm_jupyter as wl\n"
        f'wl.compare(["{ids["resnet50-lr-3e-2"]}", "{ids["resnet50-baseline"]}"], "loss")'
    )
    cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell.jp-mod-active .cm-content")
    cell.wait_for(timeout=30_000)
    page.wait_for_function(
        "(expected) => [...document.querySelectorAll('.jp-Cell.jp-mod-active .cm-line')]"
        ".map(l => l.textContent).join('\\n') === expected",
        arg=expected,
        timeout=10_000,
    )
    prompt = page.locator(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell.jp-mod-active .jp-InputPrompt"
    )
    expect(prompt).to_have_text(re.compile(r"\[\d+\]"), timeout=60_000)  # the compare cell ran
    page.wait_for_timeout(1000)
    screenshot(page, "sidebar", docs=True)


def test_keyboard_moves_extends_and_clears_the_selection(
    lab: Any, runs: list[dict[str, Any]]
) -> None:
    page = open_panel(lab)
    at = lambda i: page.locator(f"{PANEL} .jp-wanllm-RunRow[data-index='{i}']")  # noqa: E731
    selected = page.locator(f"{PANEL} .jp-wanllm-RunRow[aria-selected='true']")
    at(0).locator(".jp-wanllm-name").click()
    expect(at(0)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowDown")
    expect(at(1)).to_have_attribute("aria-selected", "true")
    expect(selected).to_have_count(1)
    page.keyboard.press("Shift+ArrowDown")
    expect(page.locator(f"{PANEL} .jp-wanllm-selcount")).to_have_text("2 selected")
    expect(at(2)).to_have_class(re.compile("jp-mod-focused"))
    page.keyboard.press("Space")
    expect(selected).to_have_count(1)
    page.keyboard.press("Control+a")
    expect(selected).to_have_count(page.locator(f"{PANEL} .jp-wanllm-RunRow").count())
    assert selected.count() >= len(runs)
    page.keyboard.press("Escape")
    expect(selected).to_have_count(0)
    page.keyboard.press("End")
    last = page.locator(f"{PANEL} .jp-wanllm-RunRow").count() - 1  # all fit: none virtualised away
    expect(at(last)).to_have_attribute("aria-selected", "true")
    name = at(last).locator(".jp-wanllm-name").inner_text()
    page.keyboard.press("Delete")  # asks first; Escape keeps the run
    expect(page.locator(".jp-Dialog-header")).to_have_text(f"Delete run “{name}”?")
    page.keyboard.press("Escape")
    expect(page.locator(".jp-Dialog")).to_have_count(0)
    expect(at(last).locator(".jp-wanllm-name")).to_have_text(name)


def test_deletion_elsewhere_is_live_and_server_errors_are_shown(
    lab: Any, runs: list[dict[str, Any]]
) -> None:
    page = open_panel(lab)
    gone = row(page, "resnet50-lr-1e-2")
    gone.wait_for(timeout=10_000)
    count = page.locator(f"{PANEL} .jp-wanllm-RunRow").count()
    lab.api.delete(f"wanllm/api/v1/runs/{runs[2]['id']}")  # behind the panel's back
    expect(gone).to_have_count(0, timeout=10_000)  # the runs socket said so
    expect(page.locator(f"{PANEL} .jp-wanllm-RunRow")).to_have_count(count - 1)

    target = row(page, "resnet50-baseline")
    target.locator(".jp-wanllm-name").click(button="right")
    page.locator(".lm-Menu-item", has_text="Rename").click()
    page.locator(".jp-Dialog input").fill("x" * 300)
    page.locator(".jp-Dialog .jp-mod-accept").click()
    error = page.locator(f"{PANEL} .jp-wanllm-error-text")
    error.wait_for(timeout=10_000)
    assert re.match(rf"PATCH runs/{runs[0]['id']} failed: 4\d\d", error.inner_text()), (
        error.inner_text()
    )
    assert "longer than 255 characters (300)" in error.inner_text()


def test_first_minutes_details(lab: Any, runs: list[dict[str, Any]], screenshot: Any) -> None:
    """Issue 11 item 1: double-click opens the workspace; the hover buttons leave the
    value and sparkline visible; the project name fits; "1 run"; live project counts;
    runs without points of the metric show an empty cell, not a 404 (item 12)."""
    page = open_panel(lab)  # the default sidebar width
    failures = watch_failures(page)
    project = page.locator(f"{PANEL} .jp-wanllm-project")
    expect(project).to_have_value(PROJECT)
    fits = project.evaluate(
        """el => {
            const cs = getComputedStyle(el);
            const ctx = document.createElement('canvas').getContext('2d');
            ctx.font = `${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
            const text = ctx.measureText(el.options[el.selectedIndex].text).width;
            const room = el.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
            return [text, room];
        }"""
    )
    assert fits[0] + 14 <= fits[1], fits  # the name and count, plus the arrow

    base = row(page, "resnet50-baseline")
    base.locator(".jp-wanllm-spark path").wait_for(timeout=10_000)
    base.hover()
    actions = base.locator(".jp-wanllm-actions")
    expect(actions).to_be_visible()
    a, m = actions.bounding_box(), base.locator(".jp-wanllm-metric-cell").bounding_box()
    assert a and m and (a["x"] >= m["x"] + m["width"] or a["x"] + a["width"] <= m["x"]), (a, m)
    expect(base.locator(".jp-wanllm-value")).to_be_visible()

    # live run counts in the project dropdown, for this project and another one
    scratch = page.locator(f"{PANEL} .jp-wanllm-project option[value='scratch']")
    before = int(re.search(r"\((\d+)\)", scratch.inner_text()).group(1))
    lab.api.post_json("wanllm/api/v1/runs", {"project": "scratch", "name": "elsewhere-2"})
    expect(scratch).to_have_text(f"scratch ({before + 1})", timeout=10_000)
    mine = page.locator(f"{PANEL} .jp-wanllm-project option[value='{PROJECT}']")
    count = int(re.search(r"\((\d+)\)", mine.inner_text()).group(1))
    lab.api.post_json("wanllm/api/v1/runs", {"project": PROJECT, "name": "count-me"})
    expect(mine).to_have_text(f"{PROJECT} ({count + 1})", timeout=10_000)

    # "1 run", singular
    lab.api.post_json("wanllm/api/v1/runs", {"project": "solo", "name": "only-one"})
    solo = page.locator(f"{PANEL} .jp-wanllm-project option[value='solo']")
    solo.wait_for(state="attached", timeout=10_000)
    project.select_option("solo")
    expect(page.locator(f"{PANEL} .jp-wanllm-count")).to_have_text("1 run")
    project.select_option(PROJECT)
    expect(page.locator(f"{PANEL} .jp-wanllm-count")).to_have_text(f"{count + 1} runs")
    row(page, "resnet50-lr-3e-2").locator(".jp-wanllm-spark path").wait_for(timeout=10_000)
    empty = row(page, "count-me").locator(".jp-wanllm-value.jp-mod-empty")  # no loss logged
    expect(empty).to_have_attribute("title", "No loss points yet")

    # double-click a run: its workspace opens (a notebook cell showing it)
    row(page, "resnet50-lr-3e-2").locator(".jp-wanllm-name").dblclick()
    run_id = {r["name"]: r["id"] for r in runs}["resnet50-lr-3e-2"]
    page.wait_for_function(
        "(id) => [...document.querySelectorAll('.jp-Cell.jp-mod-active .cm-line')]"
        ".some(l => l.textContent.includes(id))",
        arg=run_id,
        timeout=30_000,
    )
    assert failures == []


def test_settings_reach_the_panel(lab: Any, runs: list[dict[str, Any]]) -> None:
    """schema/run-browser.json through JupyterLab's setting registry: the row height."""
    url = "lab/api/settings/wanllm-jupyter:run-browser"
    schema = lab.api.get_json(url)["schema"]["properties"]
    assert {"rowHeight", "socketLimit", "refreshInterval", "kernelName"} <= set(schema)
    lab.api.request("PUT", url, body=json.dumps({"raw": '{"rowHeight": 66}'}).encode())
    try:
        page = open_panel(lab)
        page.locator(f"{PANEL} .jp-wanllm-project").select_option(PROJECT)
        first = page.locator(f"{PANEL} .jp-wanllm-RunRow[data-index='1']")
        expect(first).to_have_attribute("style", re.compile(r"top: 66px; height: 66px"))
    finally:
        lab.api.request("PUT", url, body=json.dumps({"raw": "{}"}).encode())
