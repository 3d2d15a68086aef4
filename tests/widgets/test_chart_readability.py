"""Readable charts (issue 11): one colour per run and per metric in every chart,
a right y axis for a metric of another magnitude, one number format, flat
system panels with distinct ticks, the read-out's points."""

from __future__ import annotations

import numpy as np
import pytest

from wanllm_jupyter.widgets import chart, workspace
from wanllm_jupyter.widgets._format import Y_TICK_FORMAT, padded_range, split_axes
from wanllm_jupyter.widgets._style import PALETTE, ColorRegistry
from wanllm_jupyter.widgets.system import Line, Panel, panel_widget


def test_color_registry_is_first_seen_order_and_stable() -> None:
    reg = ColorRegistry()
    assert reg.colors(["b", "a"]) == {"b": PALETTE[0], "a": PALETTE[1]}
    assert reg.color("a") == PALETTE[1] and reg.color("c") == PALETTE[2]
    for k in range(len(PALETTE)):
        reg.color(f"k{k}")
    assert reg.color("k9") == PALETTE[(3 + 9) % len(PALETTE)]  # wraps past the palette
    assert reg.dash("a") == "solid" and reg.dash("k9") == "dashed"  # ... with another dash


def test_split_axes() -> None:
    assert split_axes(["loss", "acc"], {"loss": 2.3, "acc": 0.9}) == {"loss": "left", "acc": "left"}
    assert split_axes(["loss", "lr"], {"loss": 2.3, "lr": 1e-4}) == {"loss": "left", "lr": "right"}
    assert split_axes(["a", "b"], {"b": 1e6}) == {"a": "left", "b": "left"}  # a has no data yet


def test_padded_range_only_for_flat_series() -> None:
    lo, hi = padded_range([np.array([29.4712, 29.4713, 29.4712])])
    assert lo == pytest.approx(29.4713 * 0.95, rel=1e-3) and hi == pytest.approx(
        29.4713 * 1.05, rel=1e-3
    )
    assert padded_range([np.array([1.0, 2.0])]) is None
    assert padded_range([np.array([np.nan])]) is None


def test_a_run_keeps_its_colour_across_charts(conn, logger) -> None:
    runs = [logger.run(f"c{k}") for k in range(3)]
    for run in runs:
        logger.log(run["id"], "loss", range(5), [1.0, 0.8, 0.6, 0.5, 0.4])
    ids = [r["id"] for r in runs]
    a = chart(ids, "loss", connection=conn, live=False)
    b = chart(ids[::-1][:2], "loss", connection=conn, live=False)  # other order, a subset
    try:
        colors_a = {s.run_id: s.color for s in a.model.series}
        colors_b = {s.run_id: s.color for s in b.model.series}
        assert all(colors_b[r] == colors_a[r] for r in colors_b)
        assert len(set(colors_a.values())) == 3
    finally:
        a.close()
        b.close()


def test_a_metric_keeps_its_colour_in_the_inline_chart_and_the_workspace(conn, logger) -> None:
    run = logger.run("metric-colours")
    logger.log(run["id"], "zeta_loss", range(5), [1.0, 0.8, 0.6, 0.5, 0.4])
    logger.log(run["id"], "alpha_acc", range(5), [0.1, 0.3, 0.5, 0.6, 0.7])
    inline = chart(run["id"], ["zeta_loss", "alpha_acc"], connection=conn, live=False)
    ws = workspace(run["id"], connection=conn, live=False)  # metrics in another (sorted) order
    try:
        inline_colors = {s.metric: s.color for s in inline.model.series}
        for c in ws.charts:
            for s in c.model.series:
                assert s.color == inline_colors[s.metric], (s.metric, c.title.value)
        assert inline_colors["zeta_loss"] != inline_colors["alpha_acc"]
    finally:
        inline.close()
        ws.close()


def test_a_metric_of_another_magnitude_gets_a_right_axis(conn, logger) -> None:
    run = logger.run("two-scales")
    logger.log(run["id"], "loss", range(5), [2.0, 1.5, 1.0, 0.8, 0.7])
    logger.log(run["id"], "lr", range(5), [1e-4, 9e-5, 8e-5, 7e-5, 6e-5])
    c = chart(run["id"], ["loss", "lr"], connection=conn, live=False)
    try:
        y_axes = [a for a in c.figure.axes if a.orientation == "vertical"]
        assert [(a.side, a.label) for a in y_axes] == [("left", "loss"), ("right", "lr")]
        assert all(a.tick_format == Y_TICK_FORMAT for a in y_axes)
        lr_marks = [m for m in c.figure.marks if type(m).__name__ == "Lines" and "lr" in m.labels]
        assert lr_marks and all(m.scales["y"] is y_axes[1].scale for m in lr_marks)
        sides = {s["label"]: s["side"] for s in c.overlay.series}
        assert sides == {"loss": "left", "lr": "right"}
        assert c.figure.display_toolbar is False and c.figure.interaction is None  # wheel scrolls
    finally:
        c.close()


def test_flat_system_panel_has_distinct_ticks() -> None:
    panel = Panel("disk", "GB", [Line("/", np.array([0.0, 1.0, 2.0]), np.array([29.47] * 3))])
    fig = panel_widget(panel).children[1]
    ys = fig.axes[1].scale
    assert ys.min < 29.0 and ys.max > 30.0
    assert fig.axes[1].tick_format == Y_TICK_FORMAT


def test_y_follows_an_x_zoom_and_reset(conn, logger) -> None:
    run = logger.run("zoom-y")
    logger.log(run["id"], "loss", range(100), [10.0 - 0.1 * i for i in range(100)])
    c = chart(run["id"], "loss", connection=conn, live=False, smoothing=0)
    try:
        c.marks.x_scale.min, c.marks.x_scale.max = 50.0, 60.0  # what the overlay's drag zoom sets
        ys = c.marks.y_scale
        assert ys.min == pytest.approx(4.0 - 0.05, abs=1e-6)
        assert ys.max == pytest.approx(5.0 + 0.05, abs=1e-6)
        c.reset_zoom()
        assert ys.min is None and ys.max is None
    finally:
        c.close()
