"""Bulk history through a real server on both backends: many runs x metrics of
different lengths come back exact and in order (the PostgreSQL backend reads
several series at once and must hand them back in request order)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import wanllm_jupyter as wl
from tests.jupyter_process import JupyterServer


@pytest.mark.parametrize("backend", ["sqlite", "timescaledb"])
def test_many_series_come_back_exact_and_in_order(
    backend: str, make_server: Callable[..., JupyterServer]
) -> None:
    server = make_server(backend)
    api = wl.Api(server.url, server.token)
    logged: dict[tuple[str, str], np.ndarray] = {}
    runs = []
    for r in range(3):
        run = wl.init(project="t-bulk", connection=api.connection, system_metrics=False)
        for j in range(7):  # metric j of run r has 500 * (j + 1) + r points
            n = 500 * (j + 1) + r
            values = np.arange(n) * 10.0 + j + r / 10
            for step in range(n):
                wl.log({f"m{j}": values[step]}, step=step)
            logged[(run.id, f"m{j}")] = values
        wl.finish(quiet=True)
        runs.append(run.id)

    long = api.histories(runs, long=True)
    keys = list(zip(long["run_id"].astype(str), long["metric"].astype(str), strict=True))
    assert list(dict.fromkeys(keys)) == [(rid, f"m{j}") for rid in runs for j in range(7)]
    for (rid, name), values in logged.items():
        sel = (long["run_id"] == rid) & (long["metric"] == name)
        np.testing.assert_array_equal(long.loc[sel, "step"].to_numpy(), np.arange(len(values)))
        np.testing.assert_array_equal(long.loc[sel, "value"].to_numpy(), values)
    wide = api.run(runs[1]).history()
    assert len(wide) == 500 * 7 + 1
    np.testing.assert_array_equal(wide["m6"].to_numpy(), logged[(runs[1], "m6")])
    assert wide["m0"].notna().sum() == 501


def test_offline_history_is_ordered_filtered_and_exact(client_env: object) -> None:
    """Local spools answer like the server: per run (in request order), metrics by
    name, points by step then time, whatever order they were logged in."""
    rng = np.random.default_rng(3)
    logged = []
    runs = []
    for r in range(2):
        run = wl.init(project="t-offline-hist", mode="offline", system_metrics=False)
        steps = rng.permutation(300)  # logged out of order, some steps twice
        steps = np.concatenate([steps, steps[:20]])
        for i, step in enumerate(steps):
            name = ("b", "a/x", "c")[i % 3]
            value = float(i) + r / 10
            wl.log({name: value}, step=int(step))
            logged.append((run.id, name, int(step), i, value))
        wl.finish(quiet=True)
        runs.append(run.id)
    api = wl.Api(offline=True)
    runs = runs[::-1]
    long = api.histories(runs, long=True)
    want = sorted(logged, key=lambda p: (runs.index(p[0]), p[1], p[2], p[3]))
    got = list(zip(long["run_id"].astype(str), long["metric"].astype(str), long["step"],
                   long["value"], strict=True))  # fmt: skip
    assert got == [(rid, n, s, v) for rid, n, s, _, v in want]

    part = api.histories(runs[:1], ["c", "b"], long=True, start_step=10, end_step=99)
    assert set(part["metric"].astype(str)) == {"b", "c"} and set(part["run_id"]) == {runs[0]}
    assert part["step"].between(10, 99).all()
    assert len(part) == sum(
        1 for rid, n, s, _, _ in logged if rid == runs[0] and n in "bc" and 10 <= s <= 99
    )
    names = api.run(runs[0]).metric_names()
    assert names == ["a/x", "b", "c"]
