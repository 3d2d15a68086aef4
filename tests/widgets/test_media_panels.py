"""The media panels against a real server: media logged with ``wl.log`` (``wl.Image``,
``wl.Histogram``, ``wl.Table``) are drawn by the image, histogram and table panels,
live while the run logs; every caption, key and cell is inert; empty states and
errors are drawn, never raised."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image as PILImage

import wanllm_jupyter as wl
from tests.hostile_names import PWN
from tests.jupyter_process import JupyterServer
from wanllm_jupyter._http import Connection
from wanllm_jupyter.widgets import (
    HistogramPanel,
    ImagePanel,
    TablePanel,
    distributions,
    images,
    table_panel,
)
from wanllm_jupyter.widgets._hist_grid import heat

ESCAPED = "&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;"


@pytest.fixture
def online(jupyter_server: JupyterServer, monkeypatch: pytest.MonkeyPatch) -> JupyterServer:
    monkeypatch.setenv("WANLLM_URL", jupyter_server.url)
    monkeypatch.setenv("WANLLM_TOKEN", jupyter_server.token)
    return jupyter_server


@pytest.fixture
def closing() -> Iterator[list[Any]]:
    panels: list[Any] = []
    yield panels
    for panel in panels:
        panel.close()


def pixels(seed: int, shape: tuple[int, ...] = (8, 10, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def decoded(png: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(png)))


def until(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def tiles(panel: ImagePanel, column: int) -> list[Any]:
    return list(panel.grid.children[column].children[1].children)


def test_image_panel_steps_captions_and_runs_side_by_side(
    online: JupyterServer, conn: Connection, closing: list[Any]
) -> None:
    a = wl.init(project="media-panels", name=f"{PWN}a", system_metrics=False)
    for step in range(3):
        caption = PWN if step == 2 else f"c{step}"
        a.log(
            {"samples": [wl.Image(pixels(step), caption=caption), wl.Image(pixels(9))]}, step=step
        )
    a.finish(quiet=True)
    b = wl.init(project="media-panels", name="b", system_metrics=False)
    b.log({"samples": wl.Image(pixels(5, (4, 4)))}, step=0)
    b.finish(quiet=True)

    panel = images([a, b], "samples", connection=conn, live=False)
    closing.append(panel)
    assert isinstance(panel, ImagePanel)
    assert list(panel.slider.options) == [0, 1, 2] and panel.step == 2  # the latest
    first, second = tiles(panel, 0), tiles(panel, 1)
    assert [decoded(t.children[0].value).tolist() for t in first] == [
        pixels(2).tolist(),
        pixels(9).tolist(),
    ]
    assert ESCAPED in first[0].children[1].value and PWN not in first[0].children[1].value
    assert ESCAPED in panel.grid.children[0].children[0].value  # the run name, inert
    assert "no image at this step" in second[0].value
    assert first[0].children[0].layout.width == "90px"  # 10 px wide: an integer zoom, ×9

    panel.slider.value = 0  # the user's step: run b's image shows
    until(lambda: len(tiles(panel, 1)) == 1 and hasattr(tiles(panel, 1)[0], "children"))
    assert decoded(tiles(panel, 1)[0].children[0].value).tolist() == pixels(5, (4, 4)).tolist()

    panel.mode.value = "latest"  # each run's latest images, captioned with their steps
    until(lambda: "step 2" in tiles(panel, 0)[-1].children[1].value)
    assert len(tiles(panel, 0)) == 6 and "step 0" in tiles(panel, 0)[0].children[1].value


def test_image_panel_is_live_and_follows_the_latest_step(
    online: JupyterServer, conn: Connection, closing: list[Any]
) -> None:
    run = wl.init(project="media-panels", system_metrics=False)
    try:
        panel = images(run, "live", connection=conn)
        closing.append(panel)
        assert isinstance(panel, ImagePanel)
        assert "No images logged under <b>live</b> yet" in panel.message.value
        run.log({"live": wl.Image(pixels(1))}, step=1)
        until(lambda: panel.step == 1 and panel.message.value == "")
        run.log({"live": wl.Image(pixels(2))}, step=2)
        until(lambda: panel.step == 2)  # followed
        panel.slider.value = 1  # moved by the user: stays there
        run.log({"live": wl.Image(pixels(3))}, step=3)
        until(lambda: list(panel.slider.options) == [1, 2, 3])
        assert panel.step == 1
        panel.slider.value = 3  # back at the end: follows again
        run.log({"live": wl.Image(pixels(4))}, step=4)
        until(lambda: panel.step == 4)
    finally:
        run.finish(quiet=True)


def test_histogram_panel_rebins_and_picks_a_step(
    online: JupyterServer, conn: Connection, closing: list[Any]
) -> None:
    run = wl.init(project="media-panels", system_metrics=False)
    values = np.random.default_rng(0).normal(size=2000)
    for step in range(5):
        run.log({"w": wl.Histogram(values * (1 + step), num_bins=16)}, step=step * 10)
    run.finish(quiet=True)

    panel = distributions(run, "w", connection=conn, live=False)
    closing.append(panel)
    assert isinstance(panel, HistogramPanel)
    view = panel.views[run.id]
    assert [h.step for h in view.hists] == [0, 10, 20, 30, 40]
    color = np.asarray(view.heat.color)
    assert color.shape == (64, 5)  # edges differ across steps: one common grid
    assert np.allclose(color.sum(axis=0), 1.0)
    counts, _ = np.histogram(values * 5, bins=16)
    assert np.asarray(view.bars.y)[:-1].tolist() == counts.tolist()  # the latest step
    view._on_click(view.heat, {"event": "element_click", "data": {"click_x": 12.0}})
    assert view.slider.value == 10  # the nearest logged step
    counts, _ = np.histogram(values * 2, bins=16)
    assert np.asarray(view.bars.y)[:-1].tolist() == counts.tolist()
    assert np.asarray(view.marker.x).tolist() == [10.0, 10.0]


def test_table_panel_steps_selection_and_inert_cells(
    online: JupyterServer, conn: Connection, closing: list[Any]
) -> None:
    run = wl.init(project="media-panels", system_metrics=False)
    first = pd.DataFrame({"label": ["cat", PWN], "p": [0.25, float("nan")]})
    later = pd.DataFrame({"label": ["a", "b", "c"], "p": [0.5, 0.75, 1.0]})
    run.log({"preds": wl.Table(dataframe=first)}, step=0)
    run.log({"preds": wl.Table(dataframe=later)}, step=5)
    run.finish(quiet=True)

    panel = table_panel(run, "preds", connection=conn, live=False)
    closing.append(panel)
    assert isinstance(panel, TablePanel)
    assert panel.step == 5 and panel.table.columns == ["label", "p"]
    assert [r["cells"] for r in panel.table.rows] == [["a", 0.5], ["b", 0.75], ["c", 1.0]]
    assert [label for label, _ in panel.picker.options] == ["step 0 · 2 rows", "step 5 · 3 rows"]
    panel.table.selected_ids = ["2", "0"]
    pd.testing.assert_frame_equal(panel.selected, later.iloc[[0, 2]])

    panel.picker.value = 0  # the earlier table; the selection named the old rows
    until(lambda: panel.step == 0)
    assert panel.table.selected_ids == []
    assert panel.table.rows[1]["cells"] == [PWN, None]  # text for the browser's textContent
    panel.table.selected_ids = ["1"]
    pd.testing.assert_frame_equal(panel.selected, first.iloc[[1]])


def test_empty_states_and_errors_are_drawn_not_raised(
    online: JupyterServer, conn: Connection, logger: Any, closing: list[Any]
) -> None:
    run = logger.run("empty")
    for make in (images, distributions, table_panel):
        panel = make(run["id"], PWN, connection=conn, live=False)
        closing.append(panel)
        text = panel.message.value
        assert "No " in text and "logged under" in text, text
        assert ESCAPED in text and PWN not in text
    ghost = images("00000000-0000-0000-0000-000000000000", "x", connection=conn)
    closing.append(ghost)
    assert "NotFound" in ghost.message.value or "404" in ghost.message.value


def test_heat_of_histograms_with_changing_edges_keeps_each_steps_total() -> None:
    from wanllm_jupyter.core.api.media import HistogramStep

    hists = [
        HistogramStep(step=0, time=0.0, edges=[0.0, 1.0, 2.0], counts=[3.0, 1.0]),
        HistogramStep(step=5, time=0.0, edges=[-2.0, 0.0, 4.0], counts=[2.0, 2.0]),
        HistogramStep(step=9, time=0.0, edges=[0.0, 1.0], counts=[0.0]),
    ]
    grid = heat(hists, bins=6)
    assert grid is not None and grid.edges.tolist() == [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0]
    assert grid.share[:, 0].tolist() == [0.0, 0.0, 0.75, 0.25, 0.0, 0.0]
    assert grid.share[:, 1].tolist() == [0.25, 0.25, 0.125, 0.125, 0.125, 0.125]
    assert grid.share[:, 2].tolist() == [0.0] * 6  # no values at that step
    same = heat([hists[0], HistogramStep(step=1, time=0.0, edges=[0.0, 1.0, 2.0], counts=[1, 1])])
    assert same is not None and same.edges.tolist() == [0.0, 1.0, 2.0]  # kept as logged


def test_workspace_shows_a_section_per_media_key_and_new_keys_live(
    online: JupyterServer, conn: Connection, closing: list[Any]
) -> None:
    from wanllm_jupyter.widgets import workspace

    run = wl.init(project="media-panels", system_metrics=False)
    try:
        run.log({"loss": 1.0, "img": wl.Image(pixels(1)), PWN: wl.Histogram([1.0, 2.0, 3.0])})
        run.log({"t": wl.Table(columns=["a"], data=[[1]])})
        until(lambda: len(wl.Api().run(run.id).media_keys()) == 3)
        ws = workspace(run, connection=conn)
        closing.append(ws)
        sections = ws.media.sections
        assert [type(s.children[0].children[0]).__name__ for s in sections.values()] == [
            "ImagePanel",
            "HistogramPanel",
            "TablePanel",
        ]  # open (few keys), in kind order
        assert sections[PWN].get_title(0).startswith(PWN)  # a text title: inert as it is
        run.log({f"more{i}": wl.Image(pixels(i)) for i in range(3)})
        until(lambda: len(ws.media.sections) == 6)  # announced on the socket
        assert all(s.selected_index is None for k, s in sections.items() if k.startswith("more"))
        more = sections["more0"]
        assert more.children[0].children == ()  # built when opened
        more.selected_index = 0
        assert isinstance(more.children[0].children[0], ImagePanel)
    finally:
        run.finish(quiet=True)


def test_entry_points_on_runs_and_the_api(
    online: JupyterServer, conn: Connection, closing: list[Any]
) -> None:
    run = wl.init(project="media-panels", system_metrics=False)
    run.log(
        {
            "img": wl.Image(pixels(1)),
            "h": wl.Histogram([1.0, 2.0]),
            "t": wl.Table(columns=["a"], data=[[1]]),
        }
    )
    run.finish(quiet=True)
    api_run = wl.Api().run(run.id)
    made = [run.images("img"), api_run.distributions("h"), wl.table_panel(api_run, "t")]
    closing.extend(made)
    assert [type(p).__name__ for p in made] == ["ImagePanel", "HistogramPanel", "TablePanel"]
    assert all(p.message.value == "" for p in made)


def test_png_cache_keeps_the_most_recently_used_within_its_budget() -> None:
    from wanllm_jupyter._media_source import PngCache

    cache = PngCache(budget=10)
    cache.put("a", b"1234")
    cache.put("b", b"1234")
    assert cache.get("a") == b"1234"  # now the most recent
    cache.put("c", b"1234")  # 12 bytes > 10: the least recent ("b") goes
    assert (cache.get("b"), len(cache), cache.size) == (None, 2, 8)
    cache.put("huge", b"x" * 11)  # larger than the budget: not kept, nothing dropped
    assert cache.get("huge") is None and len(cache) == 2
