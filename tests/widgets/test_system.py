"""System-metrics small multiples: grouping by metric group and unit, labels, legend."""

from __future__ import annotations

import numpy as np

from wanllm_jupyter.widgets.system import LEGEND_ENTRIES, panel_widget, panels, split_name

T0 = 1_790_000_000.0


def series(metric_type: str, device: str | None = None, n: int = 3) -> dict:
    return {
        "metric_type": metric_type,
        "times": [T0 + 5 + i for i in range(n)],
        "values": [float(i) for i in range(n)],
        "devices": [device] * n,
        "nodes": [None] * n,
    }


def test_split_name_units_and_labels() -> None:
    assert split_name("cpu.percent") == ("cpu", "%", "total")
    assert split_name("cpu.core.3.percent") == ("cpu", "%", "core 3")
    assert split_name("memory.process_rss_mb") == ("memory", "MB", "process rss")
    assert split_name("disk.used_gb") == ("disk", "GB", "used")
    assert split_name("gpu.1.util_percent") == ("gpu", "%", "gpu 1 util")
    assert split_name("custom.temperature") == ("custom", "", "temperature")


def test_panels_group_order_devices_and_relative_time() -> None:
    out = panels(
        [
            series("network.sent_mb"),
            series("memory.used_mb"),
            series("cpu.core.0.percent", "cpu0"),
            series("memory.percent"),
            series("cpu.percent"),
            series("disk.percent", "/"),
            series("disk.used_gb", "/"),
            series("gpu.0.util_percent", "gpu0"),
            series("zzz.other"),
        ],
        run_start=T0,
    )
    assert [p.title for p in out] == [
        "CPU (%)",
        "Memory (%)",
        "Memory (MB)",
        "Disk (%)",
        "Disk (GB)",
        "Network (MB)",
        "GPU (%)",
        "zzz",
    ]
    cpu = out[0]
    assert [line.label for line in cpu.lines] == ["total", "core 0"]  # total first; no "[cpu0]"
    assert [line.label for line in out[3].lines] == ["/"]
    assert [line.label for line in out[4].lines] == ["used [/]"]
    np.testing.assert_allclose(cpu.lines[0].times, [5.0, 6.0, 7.0])


def test_panel_widget_legend_is_html_and_bounded() -> None:
    many = panels([series(f"cpu.core.{i}.percent", f"cpu{i}") for i in range(12)], run_start=T0)[0]
    box = panel_widget(many)
    title, fig = box.children
    assert "CPU (%)" in title.value and f"+{12 - LEGEND_ENTRIES} more" in title.value
    assert len(fig.marks) == 12 and not any(m.display_legend for m in fig.marks)
    assert fig.marks[0].scales["y"].min == 0.0


def test_a_short_run_shows_its_few_samples_as_dots_from_time_zero() -> None:
    short = panels([series("cpu.percent", n=1), series("cpu.core.0.percent", "cpu0", n=30)], T0)[0]
    fig = panel_widget(short).children[1]
    one, many = fig.marks
    assert one.marker == "circle" and many.marker is None  # one sample: no line to draw
    assert one.scales["x"].min == 0.0
    assert list(fig.axes[0].tick_values) == [0, 10, 20, 30]
