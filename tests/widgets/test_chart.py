"""Chart data logic and widget state against a real Jupyter server with wanllm."""

from __future__ import annotations

import time

import numpy as np
import pytest

from wanllm_jupyter.core import smoothing as sm
from wanllm_jupyter.core.errors import UsageError
from wanllm_jupyter.widgets import chart, compare, workspace
from wanllm_jupyter.widgets._live import (
    MAX_REDRAW_INTERVAL,
    MIN_REDRAW_INTERVAL,
    Redrawer,
    Throttle,
    redraw_interval,
)
from wanllm_jupyter.widgets._marks import faint, nice_ticks
from wanllm_jupyter.widgets._model import ChartModel
from wanllm_jupyter.widgets._source import MetricSource, epoch_seconds

T0 = 1_790_000_000.0


def model(conn, run_ids, metrics, **kw) -> ChartModel:
    m = ChartModel(MetricSource(conn), run_ids, metrics, **kw)
    m.load()
    return m


def test_appends_merge_in_step_order_and_skip_points_already_loaded(conn, logger) -> None:
    run = logger.run("appends")
    logger.log(
        run["id"],
        "loss",
        range(10),
        [float(i) for i in range(10)],
        times=[T0 + i for i in range(10)],
    )
    m = model(conn, [run["id"]], ["loss"], smoothing=0)
    assert m.views()[0].x.tolist() == list(range(10))
    changed = m.append(
        run["id"],
        {
            "loss": {
                "steps": [9, 10, 12, 11],
                "times": [T0 + 9, T0 + 10, T0 + 12, T0 + 11],
                "values": [9.0, 10.0, 12.0, "NaN"],
            }
        },
    )
    assert changed
    v = m.views()[0]
    assert v.steps.tolist() == [
        *range(10),
        10,
        11,
        12,
    ]  # step 9 (already loaded) dropped, 11 sorted in
    assert np.isnan(v.y[11]) and v.nonfinite_kind == ["nan"] and v.nonfinite_x.tolist() == [11]
    assert not m.append(run["id"], {"other": {"steps": [1], "times": [T0 + 20], "values": [1]}})
    assert not m.append("another-run", {"loss": {"steps": [1], "times": [T0 + 20], "values": [1]}})


def test_run_messages_redraw_only_what_the_chart_shows(conn, logger) -> None:
    run = logger.run("msgs")
    m = model(conn, [run["id"]], ["loss"])
    current = dict(m.runs[run["id"]])
    assert not m.set_run({**current, "summary": {"loss": 0.5}})  # a summary update: no redraw
    assert m.set_run({**current, "state": "finished"})
    assert m.running_run_ids() == []
    assert not m.set_run({**current, "id": "another-run", "state": "failed"})


def test_x_axis_modes(conn, logger) -> None:
    run = logger.run("axes")
    logger.log(
        run["id"], "loss", [0, 1, 2, 3], [4.0, 3.0, 2.0, 1.0], times=[T0, T0 + 2, T0 + 4, T0 + 8]
    )
    logger.log(run["id"], "epoch", [0, 2, 3], [0.0, 0.5, 0.75], times=[T0, T0 + 4, T0 + 8])
    start = epoch_seconds(run["created_at"])
    rel = model(conn, [run["id"]], ["loss"], x="relative_time", smoothing=0).views()[0]
    np.testing.assert_allclose(
        rel.x, np.array([T0, T0 + 2, T0 + 4, T0 + 8]) - start, rtol=0, atol=1e-3
    )
    wall = model(conn, [run["id"]], ["loss"], x="wall_time", smoothing=0).views()[0]
    assert wall.x.dtype == np.dtype("datetime64[ms]") and wall.x[1] - wall.x[0] == np.timedelta64(
        2000, "ms"
    )
    by_epoch = model(conn, [run["id"]], ["loss"], x="epoch", smoothing=0).views()[0]
    assert by_epoch.x.tolist() == [0.0, 0.5, 0.75] and by_epoch.y.tolist() == [
        4.0,
        2.0,
        1.0,
    ]  # step 1 has no epoch


def test_smoothing_local_matches_reference_and_server_smooths_sampled(conn, logger) -> None:
    run = logger.run("smooth")
    y = np.sin(np.arange(3000) / 50) + np.linspace(0, 1, 3000)
    logger.log(run["id"], "loss", range(3000), y.tolist())
    full = model(conn, [run["id"]], ["loss"], smoothing=("tb_ema", 0.6), samples=1000).views()[0]
    assert not full.sampled and full.x.size == 3000
    np.testing.assert_allclose(full.smooth_y, sm.tb_ema(y, 0.6), rtol=1e-12)
    sampled = model(conn, [run["id"]], ["loss"], smoothing=("tb_ema", 0.6), samples=100).views()[0]
    assert sampled.sampled and sampled.total_points == 3000 and sampled.x.size < 3000
    ref = sm.tb_ema(y, 0.6)  # smoothed on full data, then sampled at the M4 steps
    np.testing.assert_allclose(sampled.smooth_y, ref[sampled.smooth_x.astype(int)], rtol=1e-9)
    # M4 keeps the extremes, and the band spans them
    assert sampled.y.max() == pytest.approx(y.max()) and sampled.y.min() == pytest.approx(y.min())
    assert sampled.band_high.max() == pytest.approx(y.max())


def test_zoom_requeries_visible_range_at_full_resolution(conn, logger) -> None:
    run = logger.run("zoom")
    logger.log(run["id"], "loss", range(5000), np.linspace(1, 0, 5000).tolist())
    m = model(conn, [run["id"]], ["loss"], smoothing=0, samples=200)
    assert m.views()[0].sampled
    assert m.requery_range((0, 4999)) is None  # whole range already shown
    lo, hi = m.requery_range((1000, 1100))
    assert lo <= 1000 and hi >= 1100 and hi - lo < 200
    m.load(lo, hi)
    v = m.views()[0]
    assert not v.sampled and v.steps.tolist() == list(range(lo, hi + 1))
    assert m.requery_range((1010, 1050)) is None  # full resolution already
    assert m.requery_range((3000, 3100)) is not None  # panned outside the loaded range
    assert m.requery_range(None) == (None, None)  # reset zoom → everything


def test_ignore_outliers_range(conn, logger) -> None:
    run = logger.run("outliers")
    values = [1.0] * 50 + [2.0] * 49 + [1000.0]
    logger.log(run["id"], "loss", range(100), values)
    m = model(conn, [run["id"]], ["loss"], smoothing=0, ignore_outliers=True)
    lo, hi = m.y_range(m.views())
    assert lo < 1.0 and 2.0 < hi < 10.0
    m.ignore_outliers = False
    assert m.y_range(m.views()) is None


def test_bad_arguments(conn, logger) -> None:
    run = logger.run("bad")
    with pytest.raises(UsageError, match="y_scale"):
        ChartModel(MetricSource(conn), [run["id"]], ["loss"], y_scale="symlog")
    with pytest.raises(UsageError, match="smoothing method"):
        ChartModel(MetricSource(conn), [run["id"]], ["loss"], smoothing=("lowess", 0.5))
    with pytest.raises(UsageError, match="samples"):
        ChartModel(MetricSource(conn), [run["id"]], ["loss"], samples=0)


def test_redraw_interval_grows_with_the_points_drawn() -> None:
    assert redraw_interval(0) == redraw_interval(2_000) == MIN_REDRAW_INTERVAL  # 20 redraws/s
    assert redraw_interval(20_000) == pytest.approx(0.14)
    assert redraw_interval(40_000) == redraw_interval(10**7) == MAX_REDRAW_INTERVAL  # 4 redraws/s


def test_redrawer_paces_by_the_size_of_the_last_draw() -> None:
    sizes = iter([10**6, 100])
    r = Redrawer(lambda: next(sizes))

    def settles_at(interval: float) -> bool:
        deadline = time.monotonic() + 5
        while r._throttle.interval != interval and time.monotonic() < deadline:
            time.sleep(0.01)
        return r._throttle.interval == interval

    try:
        assert r._throttle.interval == MIN_REDRAW_INTERVAL  # the first redraw is not held back
        r.request()
        assert settles_at(MAX_REDRAW_INTERVAL)  # a million points: 4 redraws/s
        r.request()
        assert settles_at(MIN_REDRAW_INTERVAL)  # then a small chart: 20 redraws/s
    finally:
        r.stop()


def test_throttle_allows_four_per_second() -> None:
    now = [100.0]
    t = Throttle(0.25, clock=lambda: now[0])
    assert t.delay() == 0  # first event after a pause is immediate
    t.mark()
    now[0] += 0.1
    assert t.delay() == pytest.approx(0.15)
    now[0] += 0.2
    assert t.delay() == 0


def test_chart_widget_marks_and_live_updates(conn, logger) -> None:
    run = logger.run("live")
    logger.log(run["id"], "loss", range(20), [1.0 / (i + 1) for i in range(20)])
    c = chart(run["id"], "loss", connection=conn, smoothing=0.5)
    try:
        raw = c.figure.marks[1]
        assert len(raw.x) == 1 and len(raw.x[0]) == 20
        assert raw.colors == [c.model.series[0].color + "40"] and raw.opacities == [1.0]  # faint
        assert "live" in c.status.value
        logger.log(run["id"], "loss", [20, 21, 22], [0.1, float("inf"), 0.05])
        deadline = time.monotonic() + 10
        while len(c.figure.marks[1].x[0]) < 23 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(c.figure.marks[1].x[0]) == 23
        assert list(c.marks.bad["+inf"].x) == [21]
        logger.finish(run["id"])
        deadline = time.monotonic() + 10
        while "finished" not in c.status.value and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "finished" in c.status.value
    finally:
        c.close()


def test_series_share_a_few_multi_line_marks(conn, logger) -> None:
    """Every series of a dash style is one line of the same raw and smoothed marks;
    sampled series get a filled min-max polygon (lows forwards, highs backwards) in
    one band mark; the legend is HTML and the read-out's points go to the overlay."""
    runs = [logger.run(f"r{k}") for k in range(3)]
    for k, run in enumerate(runs):
        n = 5000 if k == 0 else 10 + k  # run 0 is M4-sampled (samples=100)
        logger.log(run["id"], "loss", range(n), (np.arange(n) % 7 + k).tolist())
        logger.log(run["id"], "acc", range(n), (np.arange(n) % 5 / 10).tolist())
    c = chart([r["id"] for r in runs], ["loss", "acc"], connection=conn, samples=100, live=False)
    try:
        lines = [m for m in c.figure.marks if type(m).__name__ == "Lines"]
        band, *layers = lines
        assert len(layers) == 4  # raw and smoothed, for each of the two dash styles (metrics)
        assert [m.line_style for m in layers] == ["solid", "dashed", "solid", "dashed"]
        raw_solid, _, smooth_solid, smooth_dashed = layers
        views = {v.key: v for v in c.model.views()}
        loss = [views[(r["id"], "loss")] for r in runs]
        assert raw_solid.labels == [v.label for v in loss] == [f"r{k} · loss" for k in range(3)]
        assert raw_solid.colors == [v.color + "40" for v in loss]
        assert len(set(raw_solid.colors)) == 3
        assert [len(x) for x in raw_solid.x] == [v.x.size for v in loss] == [loss[0].x.size, 11, 12]
        np.testing.assert_array_equal(raw_solid.y[2], loss[2].y)
        assert raw_solid.opacities == [1.0] * 3
        assert not any(m.display_legend for m in c.figure.marks)  # legend: HTML above the plot
        assert all(f"r{k} · loss" in c.legend.value for k in range(3))
        assert smooth_dashed.labels[0] == "r0 · acc"
        np.testing.assert_array_equal(smooth_solid.y[1], loss[1].smooth_y)
        # one band polygon per sampled series, closed
        assert len(band.x) == 2 and band.fill == "inside" and band.close_path
        b = views[(runs[0]["id"], "loss")]
        np.testing.assert_array_equal(band.y[0], np.concatenate([b.band_low, b.band_high[::-1]]))
        readout = {s["label"]: s for s in c.overlay.series}
        assert readout["r1 · loss"]["x"] == list(range(11)) and readout["r1 · loss"]["y"][3] == 4
        assert (
            len(readout["r1 · loss"]["sx"]) == 11 and readout["r0 · loss"]["color"] == loss[0].color
        )
        c.smoothing.value = 0.0  # raw lines opaque, no smoothed lines
        c._work()
        assert raw_solid.colors == [v.color for v in loss]
        assert smooth_solid.x.size == 0
        c.x_axis.value = "wall_time"  # the same marks rebuilt on a date scale
        c._work()
        assert raw_solid.comm is None and band.scales["x"].comm is None  # the old ones closed
        raw = [m for m in c.figure.marks if type(m).__name__ == "Lines"][1]
        assert type(raw.scales["x"]).__name__ == "DateScale"
        assert raw.x[1].dtype == np.dtype("datetime64[ms]") and len(raw.x) == 3
    finally:
        c.close()


def test_other_metrics_relabel_the_axis_and_keep_one_mark_pair(conn, logger) -> None:
    run = logger.run("relabel")
    logger.log(run["id"], "loss", range(5), [1.0, 0.8, 0.6, 0.5, 0.4])
    logger.log(run["id"], "acc", range(5), [0.1, 0.3, 0.5, 0.6, 0.7])
    c = chart(run["id"], "loss", connection=conn, live=False)
    try:
        c.set_metrics(["loss", "acc"])
        c._work()
        raw = c.figure.marks[1]
        assert c.figure.axes[1].label == "loss, acc" and raw.labels == ["loss", "acc"]
        assert [len(x) for x in raw.x] == [5, 5]
    finally:
        c.close()


def test_series_without_points_are_left_out_of_the_marks(conn, logger) -> None:
    """bqplot cannot draw a line without points: an empty series is no line at all."""
    run = logger.run("empty")
    c = chart(run["id"], ["loss"], connection=conn, live=False)
    try:
        assert all(m.x.size == 0 for m in c.figure.marks)
        assert "first point of loss" in c.empty.value and c.empty.layout.display is None
    finally:
        c.close()


def test_workspace_empty_state_and_metric_charts(conn, logger) -> None:
    run = logger.run("ws", git={"branch": "main"}, tags=["baseline"])
    ws = workspace(run["id"], connection=conn, live=False)
    assert "wl.log" in ws.body.children[0].value and "main" in ws.header.value
    logger.log(run["id"], "loss", range(5), [1.0, 0.8, 0.6, 0.5, 0.4])
    logger.log(run["id"], "acc", range(5), [0.1, 0.3, 0.5, 0.6, 0.7])
    ws.refresh()
    assert sorted(ws.selector.value) == ["acc", "loss"]
    assert len(ws.charts) == 4  # main, one per metric, wall time
    main, *singles, _wall = ws.charts
    colors = {s.metric: s.color for s in main.model.series}
    for single in singles:  # small multiples: a metric keeps its colour, no controls, round ticks
        assert single.model.series[0].color == colors[single.model.metrics[0]]
        assert single.controls.layout.display == "none"
        assert list(single.figure.axes[0].tick_values) == [0, 1, 2, 3, 4]
    ws.close()


def test_faint_raw_line_colours() -> None:
    assert faint("#4e79a7") == ("#4e79a740", 1.0)  # 25 % alpha in the colour
    assert faint("steelblue") == ("steelblue", 0.25)  # no alpha to add: line opacity


def test_nice_ticks() -> None:
    assert nice_ticks(-5, 304).tolist() == [0, 100, 200, 300]
    assert nice_ticks(0.1, 0.97).tolist() == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert nice_ticks(3, 3).tolist() == [3]


def test_compare_groups_by_config(conn, logger) -> None:
    project = "cmp-project"
    ids = []
    for lr, offset in [(0.1, 0.0), (0.1, 2.0), (0.01, 10.0)]:
        run = logger.run(f"lr{lr}-{offset}", project=project, config={"opt": {"lr": lr}})
        logger.log(run["id"], "loss", range(3), [offset + 1, offset + 2, offset + 3])
        ids.append(run["id"])
    cmp = compare(ids, "loss", group_by="opt.lr", band="std", connection=conn)
    df = cmp.to_dataframe()
    g = df[df.group == "opt.lr=0.1"]
    assert g.line.tolist() == [2.0, 3.0, 4.0] and g.n.tolist() == [2, 2, 2]
    np.testing.assert_allclose(g.upper - g.line, np.sqrt(2))
    assert df[df.group == "opt.lr=0.01"].n.tolist() == [1, 1, 1]
    old = cmp.figure.marks[0]
    cmp.agg.value = "median"  # redrawn with new marks; the old ones are closed
    assert old.comm is None and cmp.figure.marks[0].comm is not None
    cmp.close()
    assert cmp.figure.marks[0].comm is None and cmp.agg.comm is None
