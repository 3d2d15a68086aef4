"""Every user string reaches the widgets' HTML escaped (issue 9, item 1), without
a browser: the widget trees built from runs whose names, tags, config, notes,
project, metric names and system-metric types are markup hold no live markup
from them, and the text widgets (titles, bqplot labels) hold the raw strings.
The browser code (js/) has no HTML sink at all."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bqplot as bq
import ipywidgets as W
import pytest

from tests import hostile_names as H
from wanllm_jupyter.widgets import compare, workspace
from wanllm_jupyter.widgets._chart_html import badge
from wanllm_jupyter.widgets._html import esc
from wanllm_jupyter.widgets.chart import chart
from wanllm_jupyter.widgets.system import panel_widget, panels

ROOT = Path(__file__).resolve().parents[2]


def walk(widget: Any) -> Iterator[Any]:
    yield widget
    for child in getattr(widget, "children", ()):
        yield from walk(child)
    if isinstance(widget, bq.Figure):
        yield from (*widget.marks, *widget.axes)


def html_values(root: W.Widget) -> str:
    return "\n".join(w.value for w in walk(root) if isinstance(w, W.HTML))


def texts(root: W.Widget) -> list[str]:
    """Strings drawn as text: labels, tags, axis and legend labels, tooltips' names."""
    out: list[str] = []
    for w in walk(root):
        if isinstance(w, W.Label):
            out.append(w.value)
        elif isinstance(w, W.TagsInput):
            out += [*w.value, *w.allowed_tags]
        elif isinstance(w, bq.Axis):
            out.append(w.label)
        elif isinstance(w, bq.Mark):
            for trait in ("labels", "names"):
                value = getattr(w, trait, None)
                out += [] if value is None else [str(v) for v in value]
    return out


def assert_inert(markup: str) -> None:
    assert "<img" not in markup and "<script" not in markup and "<b>acc" not in markup, markup


@pytest.fixture(scope="module")
def hostile(jupyter_server: Any) -> H.HostileRuns:
    from wanllm_jupyter._http import Connection

    api = Connection(jupyter_server.url, jupyter_server.token)
    return H.seed(api)


def test_esc_escapes_markup_and_quotes() -> None:
    assert esc(H.PWN) == "&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;"
    assert esc("a&b 'q'") == "a&amp;b &#x27;q&#x27;" and esc(3) == "3"
    assert badge(H.PWN, "#fff", title=H.PWN).count("&lt;img") == 2


def test_workspace_draws_every_string_as_text(conn, hostile) -> None:
    ws = workspace(hostile.ids[0], live=False, connection=conn)
    try:
        markup = html_values(ws)
        assert_inert(markup)
        for text in (H.RUN_NAMES[0], H.PROJECT, *H.TAGS, H.SYSTEM_TYPE[len(H.PWN_NODOT) :]):
            assert esc(text) in markup, text
        assert esc(H.NOTES) in markup and esc(H.PWN_NODOT) in markup  # notes; system panel
        drawn = texts(ws)
        for metric in H.METRICS:
            assert metric in drawn and esc(metric) not in drawn  # text widgets: not escaped
    finally:
        ws.close()


def test_chart_title_empty_state_and_legend_are_text(conn, hostile) -> None:
    c = chart(list(hostile.ids), list(H.METRICS), live=False, connection=conn)
    try:
        assert c.title.value == ", ".join(H.METRICS) and isinstance(c.title, W.Label)
        assert any(H.RUN_NAMES[1] in t for t in texts(c))  # legend and tooltip names
        c.set_metrics([f"{H.PWN}never-logged"])
        c._work()
        assert esc(f"{H.PWN}never-logged") in c.empty.value
        assert_inert(html_values(c))
    finally:
        c.close()


def test_compare_groups_by_a_markup_config_key(conn, hostile) -> None:
    cmp = compare(list(hostile.ids), H.METRICS[0], group_by=H.CONFIG_KEY, connection=conn)
    markup = html_values(cmp)
    assert_inert(markup)
    assert esc(H.METRICS[0]) in markup and esc(H.CONFIG_KEY) in markup
    legends = [label for m in cmp.figure.marks for label in (m.labels or [])]
    assert f"{H.CONFIG_KEY}={H.CONFIG_VALUES[0]} (n=1)" in legends


def test_system_panel_legend_escapes_device_and_type() -> None:
    series = [
        {
            "metric_type": H.SYSTEM_TYPE,
            "devices": [H.SYSTEM_DEVICE],
            "times": [1.0],
            "values": [2.0],
        }
    ]
    title = panel_widget(panels(series, 0.0)[0]).children[0]
    assert_inert(title.value)
    assert esc(H.PWN_NODOT) in title.value


HTML_SINKS = re.compile(
    r"\.innerHTML\b|\.outerHTML\b|insertAdjacentHTML|document\.write|createContextualFragment"
    r"|DOMParser|dangerouslySetInnerHTML"
)


def test_browser_code_builds_its_dom_from_text() -> None:
    """The sidebar and the anywidget ESM set ``textContent`` and build elements;
    no string is ever parsed as HTML there."""
    sources = [p for p in (ROOT / "js").rglob("*.ts") if "__tests__" not in p.parts]
    assert len(sources) > 10
    hits = [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
        for p in sources
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if HTML_SINKS.search(line)
    ]
    assert not hits, hits
