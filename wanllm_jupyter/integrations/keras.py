"""Keras 3: :class:`WanllmMetricsLogger`, a callback for ``model.fit``.

    from wanllm_jupyter.integrations.keras import WanllmMetricsLogger
    model.fit(x, y, epochs=10, callbacks=[WanllmMetricsLogger(project="mnist", log_freq=50)])

Shaped like wandb's ``WandbMetricsLogger``: epoch metrics as ``epoch/<name>``
(``epoch/val_loss``, …) with ``epoch/epoch`` and ``epoch/learning_rate``; with
``log_freq="batch"`` or every ``log_freq`` batches, batch metrics as
``batch/<name>``. The step is the optimizer's step count (``optimizer.iterations``
at the start of ``fit`` plus the batches trained since), so a second ``fit`` of
the same (or a reloaded) model goes on where the first stopped. Any backend.
"""

from __future__ import annotations

import contextlib
from typing import Any

import keras  # type: ignore[import-untyped]

from .._run import Run
from ._handle import RunHandle


class WanllmMetricsLogger(keras.callbacks.Callback):
    """Log ``model.fit`` to wanllm.

    ``log_freq``: ``"epoch"`` (default: epoch metrics only), ``"batch"`` (every
    batch too) or an int N (every N batches too). The run config gets the model's
    ``get_config()`` under ``model``, the optimizer's under ``optimizer``, and
    ``epochs``/``steps_per_epoch``; then the callback's ``config``. ``project``,
    ``name``, ``id`` and other keywords go to :func:`wanllm_jupyter.init`. With a run
    already current and no ``id``, the callback logs into it and leaves it open;
    otherwise it starts a run when training starts and finishes it at the end.
    """

    def __init__(
        self,
        log_freq: str | int = "epoch",
        project: str | None = None,
        name: str | None = None,
        config: dict[str, Any] | None = None,
        id: str | None = None,
        **init_kwargs: Any,
    ) -> None:
        super().__init__()
        if log_freq == "batch":
            log_freq = 1
        if log_freq != "epoch" and not (isinstance(log_freq, int) and log_freq > 0):
            raise ValueError(f'log_freq must be "epoch", "batch" or an int > 0, got {log_freq!r}')
        self.log_freq = log_freq
        self._every = log_freq if isinstance(log_freq, int) else 0  # batches; 0: none
        self._handle = RunHandle(
            {**init_kwargs, "project": project, "name": name, "config": config}, id
        )
        self.step = 0  # optimizer steps so far

    @property
    def run(self) -> Run | None:
        """The run being logged to (None before training starts)."""
        return self._handle.run

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.step = _to_int(getattr(self.model.optimizer, "iterations", 0))
        self._handle.get(self._config)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.step += 1
        if self._every and self.step % self._every == 0:
            self._log("batch", logs or {}, {})

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._log("epoch", logs or {}, {"epoch": epoch})

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._handle.finish()

    def _log(self, prefix: str, logs: dict[str, Any], extra: dict[str, Any]) -> None:
        metrics = {**logs, **extra}
        learning_rate = getattr(self.model.optimizer, "learning_rate", None)
        if learning_rate is not None:
            metrics["learning_rate"] = float(keras.ops.convert_to_numpy(learning_rate))
        data = {f"{prefix}/{key}": value for key, value in metrics.items()}
        self._handle.get(self._config).log(data, step=self.step)

    def _config(self) -> dict[str, Any]:
        config: dict[str, Any] = {}
        with contextlib.suppress(NotImplementedError):  # a subclassed model's
            config["model"] = self.model.get_config()  # may have no config
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            config["optimizer"] = optimizer.get_config()
        config["epochs"] = self.params.get("epochs")
        config["steps_per_epoch"] = self.params.get("steps")
        return config


def _to_int(value: Any) -> int:
    return int(keras.ops.convert_to_numpy(value))
