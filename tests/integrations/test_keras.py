"""``WanllmMetricsLogger`` in a real Keras 3 ``fit`` (PyTorch backend, CPU)."""

from __future__ import annotations

from typing import Any

import keras  # type: ignore[import-untyped]
import numpy as np
import pytest

import wanllm_jupyter as wl
from tests.jupyter_process import JupyterServer
from wanllm_jupyter.integrations import WanllmMetricsLogger

X = np.linspace(-1, 1, 16, dtype="float32").reshape(-1, 1)
Y = 2 * X + 1


class BatchLogs(keras.callbacks.Callback):
    """What Keras handed the callbacks after each batch."""

    def __init__(self) -> None:
        super().__init__()
        self.losses: list[float] = []

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.losses.append((logs or {})["loss"])


def model() -> keras.Model:
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, name="out")], name="line")
    net.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
    return net


def series(api: wl.Api, run_id: str, metric: str) -> list[list[float]]:
    return api.run(run_id).history([metric], long=True)[["step", "value"]].values.tolist()


def test_fit_logs_epochs_batches_and_config(online: JupyterServer, api: wl.Api) -> None:
    net, batches = model(), BatchLogs()
    callback = WanllmMetricsLogger(log_freq=2, project="keras", config={"data": "line"})
    history = net.fit(
        X, Y, batch_size=4, epochs=2, validation_data=(X, Y), callbacks=[callback, batches]
    ).history
    assert callback.run is not None
    run_id = callback.run.id

    run = api.run(run_id)
    assert run.state == "finished"
    assert run.config["data"] == "line" and run.config["epochs"] == 2
    assert run.config["steps_per_epoch"] == 4 and run.config["model"]["name"] == "line"
    assert run.config["optimizer"]["learning_rate"] == pytest.approx(0.05)
    # 4 batches an epoch: epoch metrics at optimizer steps 4 and 8, batches every 2nd step
    for name in ("loss", "mae", "val_loss", "val_mae"):
        assert series(api, run_id, f"epoch/{name}") == [
            [4, history[name][0]],
            [8, history[name][1]],
        ]
    assert series(api, run_id, "epoch/epoch") == [[4, 0], [8, 1]]
    assert series(api, run_id, "batch/loss") == [
        [step, batches.losses[step - 1]] for step in (2, 4, 6, 8)
    ]
    assert [v for _, v in series(api, run_id, "batch/learning_rate")] == pytest.approx([0.05] * 4)


def test_a_second_fit_goes_on_at_the_optimizer_step(online: JupyterServer, api: wl.Api) -> None:
    net = model()
    first = WanllmMetricsLogger(project="keras-more")
    net.fit(X, Y, batch_size=4, epochs=1, callbacks=[first], verbose=0)
    assert first.run is not None
    more = WanllmMetricsLogger(project="keras-more", id=first.run.id)
    net.fit(X, Y, batch_size=4, epochs=2, initial_epoch=1, callbacks=[more], verbose=0)

    assert api.runs("keras-more")["id"].tolist() == [first.run.id]
    assert [step for step, _ in series(api, first.run.id, "epoch/loss")] == [4, 8]
    assert [v for _, v in series(api, first.run.id, "epoch/epoch")] == [0, 1]


def test_log_freq_is_checked() -> None:
    with pytest.raises(ValueError, match="log_freq"):
        WanllmMetricsLogger(log_freq=0)
