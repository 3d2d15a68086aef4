"""The run table widget (issue 5, item 4): Python state, loading from a real server, and the
browser rendering, sorting and selection sync in a JupyterLab notebook."""

from __future__ import annotations

import re
import time
from typing import Any

import nbformat
import pandas as pd
import pytest
from playwright.sync_api import expect

from tests.browser import accept_kernel_dialog, write_notebook
from wanllm_jupyter.core.errors import UsageError
from wanllm_jupyter.widgets.run_table import RunTable, as_row, run_table, runs_frame

PROJECT = "tabular"


def run_dict(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"id{i}",
        "project": PROJECT,
        "name": f"run-{i}",
        "state": "finished",
        "config": {"lr": 10.0**-i, "opt": {"name": "adam"}},
        "summary": {"loss": 1.0 / (i + 1)},
        "tags": ["t"],
        "created_at": f"2026-11-28T04:0{i}:00Z",
        "finished_at": f"2026-11-28T04:0{i}:30Z",
        **extra,
    }


# ------------------------------------------------------------------ widget state
def test_rows_keep_the_table_fields_only() -> None:
    row = as_row({**run_dict(1), "git": {"branch": "main"}, "tags": None})
    assert row["tags"] == [] and "git" not in row and row["config"]["lr"] == 0.1


def test_a_row_without_id_is_rejected() -> None:
    with pytest.raises(UsageError, match=r"a run row needs an 'id', got keys \['name'\]"):
        as_row({"name": "x"})


def test_columns_must_name_config_or_summary_keys() -> None:
    with pytest.raises(
        UsageError, match=r"column 'loss' must be 'config\.<key>' or 'summary\.<key>'"
    ):
        RunTable([], columns=["loss"])
    assert RunTable([], columns=["config.lr"]).columns == ["config.lr"]


def test_update_runs_replaces_in_place_and_puts_new_runs_first() -> None:
    table = RunTable([run_dict(1), run_dict(2)])
    table.update_runs([{**run_dict(2), "state": "crashed"}, run_dict(3)])
    assert [(r["id"], r["state"]) for r in table.rows] == [
        ("id3", "finished"),
        ("id1", "finished"),
        ("id2", "crashed"),
    ]


def test_remove_runs_drops_rows_and_their_selection() -> None:
    table = RunTable([run_dict(1), run_dict(2)], selected_ids=["id1", "id2"])
    table.remove_runs(["id1"])
    assert [r["id"] for r in table.rows] == ["id2"] and table.selected_ids == ["id2"]


def test_selected_is_a_dataframe_of_the_selected_rows() -> None:
    table = RunTable([run_dict(1), run_dict(2), run_dict(3)], selected_ids=["id3", "id1"])
    frame = table.selected
    assert list(frame["id"]) == ["id1", "id3"]
    assert list(frame["config.opt.name"]) == ["adam", "adam"]
    assert list(frame["duration"]) == [30.0, 30.0]
    assert frame["created_at"].dt.tz is not None
    assert table.selected.columns.tolist() == frame.columns.tolist()


def test_empty_selection_gives_an_empty_frame_with_the_base_columns() -> None:
    frame = runs_frame([])
    assert isinstance(frame, pd.DataFrame) and frame.empty
    assert {"id", "name", "state", "created_at", "duration", "tags"} <= set(frame.columns)


def test_refresh_without_a_connection_says_so() -> None:
    with pytest.raises(UsageError, match="no connection to refresh from"):
        RunTable([]).refresh()


# ------------------------------------------------------------------ with a real server
RUN_STATES = [
    ("mlp-small", "finished"),
    ("mlp-wide", "finished"),
    ("mlp-deep", "failed"),
    ("mlp-dropout", "finished"),
    ("mlp-bn", "crashed"),
    ("mlp-huge", "running"),
]


@pytest.fixture(scope="module")
def table_runs(lab: Any) -> list[dict[str, Any]]:
    runs = []
    for i, (name, state) in enumerate(RUN_STATES):
        run = lab.api.post_json(
            "wanllm/api/v1/runs",
            {
                "project": PROJECT,
                "name": name,
                "config": {"lr": 0.1 / (i + 1), "width": 64 * (i + 1), "seed": 0},
                "tags": ["mlp", "sweep"] if i % 2 else ["mlp"],
                # started a while ago (as a synced offline run would): real durations
                "created_at": time.time() - 37.5 * (len(RUN_STATES) - i),
            },
        )
        body: dict[str, Any] = {
            "summary": {
                "loss": round(0.9 - 0.13 * ((i * 7) % 6), 3),
                "acc": round(0.5 + 0.07 * i, 3),
            }
        }
        if state != "running":
            body["state"] = state
        runs.append(lab.api.patch_json(f"wanllm/api/v1/runs/{run['id']}", body))
    return runs


def test_run_table_loads_a_project_from_the_server(
    lab: Any, table_runs: list[dict[str, Any]]
) -> None:
    table = run_table(PROJECT, columns=["summary.loss"], connection=lab.api, live=False)
    assert sorted(r["name"] for r in table.rows) == sorted(r["name"] for r in table_runs)
    lab.api.patch_json(f"wanllm/api/v1/runs/{table_runs[-1]['id']}", {"summary": {"note": 1}})
    table.refresh()
    assert {r["id"]: r for r in table.rows}[table_runs[-1]["id"]]["summary"]["note"] == 1


@pytest.mark.browser
def test_run_table_renders_sorts_and_syncs_selection(
    lab: Any, table_runs: list[dict[str, Any]], screenshot: Any
) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import wanllm_jupyter as wl\n"
            "from wanllm_jupyter.widgets.run_table import run_table\n"
            f"table = run_table({PROJECT!r}, "
            "columns=['config.lr', 'config.width', 'summary.loss', 'summary.acc'])\n"
            "table"
        ),
        nbformat.v4.new_code_cell("print(sorted(table.selected['name']))"),
    ]
    write_notebook(nb, lab.root / "run_table.ipynb")
    page = lab.page(
        "lab/tree/run_table.ipynb?reset", viewport=(1280, 720)
    )  # reset: only this notebook
    page.locator(".jp-Notebook").wait_for(timeout=30_000)
    page.locator(
        ".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current"
    ).click()  # room for the table
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=30_000)
    accept_kernel_dialog(page)
    page.locator(".lm-MenuBar-item", has_text="Run").click()
    page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()
    names = page.locator(".wl-run-table .wl-rt-name")
    page.wait_for_function(
        "n => document.querySelectorAll('.wl-run-table .wl-rt-row').length === n",
        arg=len(table_runs),
        timeout=60_000,
    )
    by_created = [r["name"] for r in reversed(table_runs)]
    assert names.all_inner_texts() == by_created  # newest first

    loss = page.locator(".wl-run-table .wl-rt-th[data-column='summary.loss']")
    loss.click()
    by_loss = [
        r["name"] for r in sorted(table_runs, key=lambda r: (r["summary"]["loss"], r["created_at"]))
    ]
    assert names.all_inner_texts() == by_loss
    assert loss.get_attribute("aria-sort") == "ascending"
    loss.click()
    assert loss.get_attribute("aria-sort") == "descending"
    assert names.all_inner_texts()[0] == by_loss[-1]

    page.locator(".wl-run-table .wl-rt-filter").fill("tag:sweep OR state:failed")
    page.wait_for_function("document.querySelectorAll('.wl-run-table .wl-rt-row').length === 4")
    assert sorted(names.all_inner_texts()) == sorted(
        r["name"] for r in table_runs if "sweep" in r["tags"] or r["state"] == "failed"
    )

    page.locator(".wl-run-table .wl-rt-name", has_text="mlp-wide").click()
    page.locator(".wl-run-table .wl-rt-name", has_text="mlp-deep").click(modifiers=["Control"])
    cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")
    cells.nth(1).locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")
    output = cells.nth(1).locator(".jp-OutputArea-output")
    output.wait_for(timeout=30_000)
    assert output.inner_text().strip() == "['mlp-deep', 'mlp-wide']"
    page.locator(".wl-run-table .wl-rt-filter").fill("")
    page.wait_for_function(
        "n => document.querySelectorAll('.wl-run-table .wl-rt-row').length === n",
        arg=len(table_runs),
    )

    # keyboard: arrows move the selection, Shift extends it, Escape clears it
    row = lambda i: page.locator(f".wl-run-table .wl-rt-row[data-index='{i}']")  # noqa: E731
    selected = page.locator(".wl-run-table .wl-rt-row[aria-selected='true']")
    row(0).locator(".wl-rt-name").click()
    page.keyboard.press("ArrowDown")
    expect(row(1)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Shift+ArrowDown")
    expect(selected).to_have_count(2)
    page.keyboard.press("Escape")
    expect(selected).to_have_count(0)
    row(1).locator(".wl-rt-name").click()
    row(2).locator(".wl-rt-name").click(modifiers=["Control"])
    screenshot(cells.first, "run-table-sorted")


def test_query_selects_like_the_filter_box() -> None:
    table = RunTable([run_dict(1), run_dict(2, tags=["best"])], query="tag:best OR name:run-1")
    assert sorted(table.shown["name"]) == ["run-1", "run-2"]
    table.query = "-tag:best"
    assert list(table.shown["name"]) == ["run-1"]
    with pytest.raises(UsageError, match="'OR' needs a term after it"):
        table.query = "tag:x OR"


@pytest.mark.browser
def test_run_table_shows_what_matters_by_default(
    lab: Any, table_runs: list[dict[str, Any]], screenshot: Any
) -> None:
    """Issue 11 item 4: varying config keys and key metrics as columns, a whole
    checkbox column, created with seconds, real durations; ``query`` fills the filter."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from wanllm_jupyter.widgets.run_table import run_table\n"
            f"table = run_table({PROJECT!r}, query='tag:mlp')\n"
            "table"
        )
    ]
    write_notebook(nb, lab.root / "run_table_defaults.ipynb")
    page = lab.page("lab/tree/run_table_defaults.ipynb?reset", viewport=(1280, 720))
    page.locator(".jp-Notebook").wait_for(timeout=30_000)
    page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").click()
    accept_kernel_dialog(page)
    page.locator(".lm-MenuBar-item", has_text="Run").click()
    page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()
    page.wait_for_function(
        "n => document.querySelectorAll('.wl-run-table .wl-rt-row').length === n",
        arg=len(table_runs),
        timeout=60_000,
    )
    headers = page.locator(".wl-run-table .wl-rt-th[data-column]").all_inner_texts()
    assert headers[:7] == [
        "name", "state", "created", "duration", "tags", "config.lr", "config.width",
    ]  # fmt: skip  # config.seed is the same everywhere: not shown
    assert {"summary.acc", "summary.loss"} <= set(headers[7:]) <= {
        "summary.acc", "summary.loss", "summary.note",  # note: set by an earlier test
    }  # fmt: skip
    assert page.locator(".wl-run-table .wl-rt-filter").input_value() == "tag:mlp"
    for created in page.locator(".wl-run-table .wl-rt-created").all_inner_texts():
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", created), created
    clipped = page.evaluate(
        "[...document.querySelectorAll('.wl-run-table .wl-rt-td, .wl-run-table .wl-rt-th')]"
        ".filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.textContent)"
    )
    assert clipped == [], clipped  # no value or header cut off
    durations = dict(
        zip(
            page.locator(".wl-run-table .wl-rt-name").all_inner_texts(),
            page.locator(".wl-run-table .wl-rt-duration").all_inner_texts(),
            strict=True,
        )
    )
    assert durations["mlp-small"].startswith(("3m 4", "3m 5")), durations  # 225 s and a bit
    assert "0s" not in durations.values() and "0.0s" not in durations.values()
    # the checkbox sits whole inside its column
    box = page.locator(".wl-run-table .wl-rt-row .wl-rt-check").first.bounding_box()
    cell = page.locator(".wl-run-table .wl-rt-row .wl-rt-check-cell").first.bounding_box()
    assert box and cell and box["width"] >= 12
    assert cell["x"] <= box["x"] and box["x"] + box["width"] <= cell["x"] + cell["width"]
    screenshot(page.locator(".wl-run-table").first, "run-table", docs=True)
