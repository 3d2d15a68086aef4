"""System metrics from t = 0 (issue 11, item 5): the first sample is reported
about one second after the start, then one mean per report window."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from wanllm_jupyter._system import FIRST_SAMPLE_AFTER, SystemMonitor


def test_first_sample_within_a_second_then_the_configured_window() -> None:
    batches: list[tuple[float, dict[str, Any]]] = []
    got = threading.Event()

    def emit(batch: dict[str, Any]) -> None:
        batches.append((time.monotonic(), batch))
        got.set()

    monitor = SystemMonitor("run-1", emit, sample_every=0.5, report_every=3.0)
    start = time.monotonic()
    monitor.start()
    try:
        assert got.wait(FIRST_SAMPLE_AFTER + 1.0), "no system batch within ~1 s of the start"
        first_at = batches[0][0] - start
        assert first_at < FIRST_SAMPLE_AFTER + 0.5
        types = {row["metric_type"] for row in batches[0][1]["metrics"]}
        assert {"cpu.percent", "memory.percent"} <= types
        time.sleep(2.0)
        assert len(batches) == 1  # the next batch waits for the 3 s window
    finally:
        monitor.stop()
    assert len(batches) == 2  # stop() reports the partial window


def test_a_script_ending_without_finish_reports_its_last_window_quietly(tmp_path: Path) -> None:
    """At interpreter exit the run is finished from ``atexit``: the last system sample
    still runs on the I/O loop's helper (not refused as after a ThreadPoolExecutor's
    shutdown) and nothing is reported as failed."""
    script = (
        "import time, wanllm_jupyter as wl\n"
        f"wl.init(mode='offline', dir={str(tmp_path)!r}).log({{'a': 1}})\n"
        f"time.sleep({FIRST_SAMPLE_AFTER} + 0.5)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0 and "failed" not in done.stderr, done.stderr
    (spool,) = tmp_path.glob("wanllm/runs/*/spool.jsonl")
    ops = [json.loads(line)["op"] for line in spool.read_text().splitlines()]
    assert ops.count("system") == 2, ops  # the first window, then the one closed at exit
