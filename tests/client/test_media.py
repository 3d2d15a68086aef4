"""Media through a real server (SQLite): what ``wl.log`` sends with ``wl.Image``,
``wl.Histogram``, ``wl.Table`` and ``wl.watch`` reads back equal through ``wl.Api``;
bad values are warned about and left out while the rest arrives; offline runs carry
media to ``wanllm sync``; a media batch the server refuses is set aside without
holding back what follows."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import wanllm_jupyter as wl
from tests.client.fault_proxy import FaultProxy
from tests.client.test_client_rejected import rejected, sync
from tests.jupyter_process import JupyterServer
from wanllm_jupyter import _send_buffer

RNG = np.random.default_rng(13)


def pixels(seed: int, shape: tuple[int, ...] = (12, 16, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def test_round_trip(online: JupyterServer, api: wl.Api) -> None:
    run = wl.init(project="media", system_metrics=False)
    values = RNG.normal(size=5000)
    frame = pd.DataFrame({"id": [1, 2, 3], "label": ["cat", "dog", None], "p": [0.1, 0.2, 0.3]})
    for step in range(3):
        wl.log(
            {
                "loss": 1.0 / (step + 1),
                "samples": [
                    wl.Image(pixels(step), caption=f"s{step}"),
                    wl.Image(pixels(9, (5, 7))),
                ],
                "dist": wl.Histogram(values + step, num_bins=20),
            }
        )
    wl.log({"preds": wl.Table(dataframe=frame)}, commit=False)  # at step 3, with "acc"
    wl.log({"acc": 0.9})
    wl.log({"preds": wl.Table(columns=["a"], data=[[1], [2]])}, step=10)
    run.finish(quiet=True)
    assert run.report is not None and run.report.sent_media == 8  # (key, step) items
    assert "8 media items" in run.report.describe()

    r = api.run(run.id)
    keys = r.media_keys().set_index("key")
    assert keys.loc["samples", "kind"] == "image" and keys.loc["samples", "steps"] == 3
    assert keys.loc["preds", "last_step"] == 10

    images = r.media("samples")
    assert images[["step", "index"]].values.tolist() == [
        [0, 0],
        [0, 1],
        [1, 0],
        [1, 1],
        [2, 0],
        [2, 1],
    ]
    assert images["caption"].fillna("").tolist() == ["s0", "", "s1", "", "s2", ""]
    for (step, index), image in zip(images[["step", "index"]].values, images["image"], strict=True):
        expected = pixels(step) if index == 0 else pixels(9, (5, 7))
        assert np.array_equal(image.to_numpy(), expected)
    assert len(set(images["digest"][images["index"] == 1])) == 1  # the same PNG, stored once

    hist = r.histograms("dist")
    assert hist["step"].tolist() == [0, 1, 2]
    for step, edges, counts in zip(hist["step"], hist["edges"], hist["counts"], strict=True):
        want_counts, want_edges = np.histogram(values + step, bins=20)
        assert np.array_equal(counts, want_counts) and np.allclose(
            edges, want_edges, rtol=0, atol=0
        )

    pd.testing.assert_frame_equal(r.table("preds", step=3), frame, check_like=False)
    assert r.table("preds")["a"].tolist() == [1, 2]

    history = r.history()
    assert list(history.columns) == ["step", "time", "acc", "loss"]
    assert history["acc"].dropna().index.tolist() == [3]


def test_bad_values_are_left_out_and_the_rest_arrives(online: JupyterServer, api: wl.Api) -> None:
    run = wl.init(project="media", system_metrics=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wl.log(
            {
                "loss": 0.5,
                "good": wl.Image(pixels(1)),
                "five_channels": wl.Image(np.zeros((6, 6, 5), np.uint8)),
                "strings": wl.Image(np.array([["a"]])),
                "nan_hist": wl.Histogram([np.nan, np.nan]),
                "mixed": wl.Table(columns=["x"], data=[[1], ["a"]]),
                "list_with_bad": [wl.Image(pixels(2)), wl.Image(object())],
            }
        )
        run.finish(quiet=True)
    messages = " ".join(str(w.message) for w in caught if issubclass(w.category, wl.WanllmWarning))
    for key in ("five_channels", "strings", "nan_hist", "mixed", "list_with_bad"):
        assert f"'{key}'" in messages
    assert "column 'x' does not hold one type" in messages
    r = api.run(run.id)
    assert r.media_keys()["key"].tolist() == ["good"]
    assert np.array_equal(r.media("good")["image"][0].to_numpy(), pixels(1))
    assert r.history()["loss"].tolist() == [0.5]
    assert run.report is not None and run.report.set_aside_ops == 0


def check_offline_run(r: Any) -> None:
    assert np.array_equal(r.media("img")["image"][0].to_numpy(), pixels(3))
    assert r.histograms("h")["counts"][0].tolist() == [10.0] * 10
    assert r.table("t")["n"].tolist() == [7]
    assert r.media_keys()[["key", "kind", "steps"]].values.tolist() == [
        ["h", "histogram", 1],
        ["img", "image", 1],
        ["t", "table", 1],
    ]


def test_offline_media_reach_the_server_with_sync(
    online: JupyterServer, api: wl.Api, tmp_path: Path
) -> None:
    run = wl.init(project="media", mode="offline", system_metrics=False)
    wl.log({"img": wl.Image(pixels(3)), "h": wl.Histogram(np.arange(100.0), num_bins=10)})
    wl.log({"t": wl.Table(columns=["n"], data=[[7]])})
    run.finish(quiet=True)
    local = wl.Api(offline=True).run(run.id)  # read from the spool, before and after sync
    check_offline_run(local)
    assert sync(online, tmp_path) == 0
    check_offline_run(api.run(run.id))
    synced = wl.Api(offline=True).run(run.id)
    assert synced.media("img")["digest"].tolist() == local.media("img")["digest"].tolist()


def test_a_refused_media_batch_is_set_aside_and_later_points_arrive(
    online: JupyterServer, api: wl.Api, tmp_path: Path
) -> None:
    first = wl.init(project="media", id="kind-clash", system_metrics=False)
    wl.log({"thing": wl.Image(pixels(4))})
    first.finish(quiet=True)
    # a later process logs the key as another kind: only the server knows it, and says 422
    run = wl.init(project="media", id="kind-clash", system_metrics=False)
    with pytest.warns(wl.WanllmWarning, match="rejected a media operation"):
        wl.log({"thing": wl.Histogram([1.0, 2.0])})
        run.finish(quiet=True)
    run = wl.init(project="media", id="kind-clash", system_metrics=False)
    wl.log({"after": 1.0, "img2": wl.Image(pixels(5))})
    run.finish(quiet=True)
    aside = rejected(tmp_path, run.id)
    assert [r["op"] for r in aside] == ["media"] and aside[0]["status"] == 422
    r = api.run(run.id)
    assert r.history()["after"].dropna().tolist() == [1.0]
    assert sorted(r.media_keys()["key"]) == ["img2", "thing"]


def test_watch_logs_gradient_histograms_every_log_freq(online: JupyterServer, api: wl.Api) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    run = wl.init(project="media", system_metrics=False)
    wl.watch(model, log="all", log_freq=2)
    x, y = torch.randn(8, 4), torch.randn(8, 1)
    for _ in range(5):
        loss = torch.nn.functional.mse_loss(model(x), y)
        model.zero_grad()
        loss.backward()
        wl.log({"loss": loss.item()})
    wl.unwatch(model)
    run.finish(quiet=True)
    r = api.run(run.id)
    keys = r.media_keys().set_index("key")
    names = [n for n, _ in model.named_parameters()]
    assert sorted(keys.index) == sorted(
        [f"gradients/{n}" for n in names] + [f"parameters/{n}" for n in names]
    )
    grads = r.histograms("gradients/0.weight")
    assert grads["step"].tolist() == [1, 3]  # the 2nd and 4th backward passes
    assert all(c.sum() == 12 and len(c) == 64 for c in grads["counts"])
    assert r.histograms("parameters/2.bias")["step"].tolist() == [1, 3]


def test_watch_refuses_what_is_not_a_module(online: JupyterServer) -> None:
    wl.init(project="media", system_metrics=False)
    with pytest.raises(wl.UsageError, match=r"torch\.nn\.Module, got dict"):
        wl.watch({"not": "a model"})
    with pytest.raises(wl.UsageError, match="log="):
        wl.watch(torch.nn.Linear(1, 1), log="weights")


def test_queued_images_are_bounded_by_bytes(
    online: JupyterServer, api: wl.Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_send_buffer, "MEDIA_BUFFER_BYTES", 1024 * 1024)
    run = wl.init(project="media", system_metrics=False)
    assert run.sender is not None
    image = np.zeros((128, 128, 4), np.uint8)  # 64 KiB: 16 fit in the budget
    wl.log({"frame": wl.Image(image)})
    run.sender.catch_up()  # the first drain learns the bytes per call
    assert run.sender.buffer.limit == 16
    peak = 0
    for i in range(1, 300):
        image[0, 0, 0] = i % 256
        wl.log({"frame": wl.Image(image)})
        peak = max(peak, len(run.sender.buffer))
    run.finish(quiet=True)
    assert peak <= 2 * 16, peak
    assert api.run(run.id).media_keys()["steps"].tolist() == [300]


def test_media_spooled_while_the_server_fails_arrive_once_it_recovers(
    online: JupyterServer, api: wl.Api
) -> None:
    with FaultProxy(online.url, fault=lambda m, path, body: path.endswith("media/batch")) as proxy:
        conn = wl.Api(proxy.url, online.token).connection
        run = wl.init(project="media", connection=conn, system_metrics=False)
        assert run.sender is not None
        run.sender.retry_for, run.sender.probe_every = 0.3, 0.2
        for step in range(3):
            wl.log({"loss": float(step), "img": wl.Image(pixels(20 + step))})
        deadline = time.monotonic() + 10
        while not run.offline:  # the media batch went to the spool, and all after it
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proxy.fault = None  # the server takes media again: the spool is replayed
        run.finish(quiet=True)
    assert run.report is not None and run.report.spooled_ops == 0, run.report.describe()
    r = api.run(run.id)
    got = r.media("img")
    assert got["step"].tolist() == [0, 1, 2]
    assert all(
        np.array_equal(im.to_numpy(), pixels(20 + s))
        for s, im in zip(got["step"], got["image"], strict=True)
    )
    assert r.history()["loss"].tolist() == [0.0, 1.0, 2.0]
