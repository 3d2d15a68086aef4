"""The workspace overview: run facts, config and summary from a real server's run
record, every value inert, long tables cut with a count."""

from __future__ import annotations

from typing import Any

from wanllm_jupyter._http import API
from wanllm_jupyter.widgets import workspace
from wanllm_jupyter.widgets._overview import MAX_ROWS, duration_text, overview_html

HOSTILE = '<img src=x onerror="window.__pwned=1">'


def test_overview_shows_facts_config_and_summary(conn: Any, logger: Any) -> None:
    run = logger.run(
        "ov",
        config={"lr": 0.001, "model": {"layers": 4, "act": HOSTILE}},
        git={"branch": "main", "commit": "0123456789abcdef", "dirty": True},
        host="gpu-07",
        metadata={"python": "3.11.7", "argv": ["train.py", "--lr", "0.001"]},
        notes="first try",
    )
    conn.patch_json(f"{API}runs/{run['id']}", {"summary": {"best_loss": 0.125}})
    ws = workspace(run["id"], connection=conn, live=False)
    try:
        html = ws.header.value
        for text in ("lr", "0.001", "model.layers", "best_loss", "0.125", "gpu-07", "3.11.7",
                     "train.py --lr 0.001", "main @ 0123456789 (uncommitted changes)"):  # fmt: skip
            assert text in html, text
        assert ">duration<" in html  # created → last heartbeat of a running run
        assert HOSTILE not in html and "&lt;img src=x onerror=&quot;" in html
    finally:
        ws.close()


def test_overview_of_an_empty_run_says_so_and_cuts_long_tables() -> None:
    empty = overview_html({"id": "r", "state": "running", "config": {}, "summary": {}})
    assert "no config logged" in empty and "no summary yet" in empty
    big = overview_html({"config": {f"k{i}": i for i in range(MAX_ROWS + 5)}})
    assert f"k{MAX_ROWS - 1}" in big and f"k{MAX_ROWS}<" not in big and "… 5 more" in big


def test_duration_text() -> None:
    assert [duration_text(s) for s in (3.21, 245, 10_920)] == ["3.2s", "4m 05s", "3h 02m"]
