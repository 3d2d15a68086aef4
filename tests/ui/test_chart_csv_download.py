"""Issue 11 item 10: the chart's CSV button downloads in the browser, like PNG, and
writes nothing where the kernel runs; ``save_csv`` still writes a file from Python."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.browser import accept_kernel_dialog, write_notebook

pytestmark = pytest.mark.browser


def test_csv_button_downloads_in_the_browser(lab: Any, tmp_path: Path) -> None:
    run = lab.api.post_json("wanllm/api/v1/runs", {"project": "csv-download", "name": "csv-run"})
    points = [
        {"run_id": run["id"], "metric_name": "loss", "step": s, "value": math.exp(-s / 20)}
        for s in range(50)
    ]
    lab.api.post_json("wanllm/api/v1/metrics/batch", {"metrics": points})
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from wanllm_jupyter.widgets import chart\n"
            f"c = chart({run['id']!r}, 'loss', live=False)\nc"
        ),
        nbformat.v4.new_code_cell(
            "import os\nprint(sorted(f for f in os.listdir() if f.endswith('.csv')))"
        ),
    ]
    write_notebook(nb, lab.root / "csv_download.ipynb")
    page = lab.page("lab/tree/csv_download.ipynb?reset", viewport=(1280, 900))
    page.locator(".jp-Notebook").wait_for(timeout=30_000)
    accept_kernel_dialog(page)
    cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")
    cells.first.locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")
    button = page.locator("button", has_text="CSV").first
    button.wait_for(timeout=60_000)
    with page.expect_download(timeout=30_000) as download:
        button.click()
    assert download.value.suggested_filename == "loss.csv"
    saved = tmp_path / "loss.csv"
    download.value.save_as(saved)
    lines = saved.read_text().splitlines()
    assert len(lines) == 51 and "loss" in lines[1], lines[:2]
    cells.nth(1).locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")  # the second cell: nothing written by the kernel
    output = cells.nth(1).locator(".jp-OutputArea-output")
    output.wait_for(timeout=30_000)
    assert output.inner_text().strip() == "[]"
