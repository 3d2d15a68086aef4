"""Lightning: :class:`WanllmLogger`, a ``lightning.pytorch`` logger.

    from wanllm_jupyter.integrations.lightning import WanllmLogger
    trainer = L.Trainer(logger=WanllmLogger(project="mnist", config={"data": "v2"}))

Shaped like Lightning's ``WandbLogger``: ``self.log(...)`` values arrive at the
step Lightning gives (its count of optimizer steps), ``save_hyperparameters()``
lands in the run config, ``name`` is the project and ``version`` the run id.
``WanllmLogger(version=run_id)`` with ``trainer.fit(..., ckpt_path=...)`` resumes
that run where the checkpoint left off.
"""

from __future__ import annotations

import os
from argparse import Namespace
from collections.abc import Mapping
from typing import Any

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.fabric.utilities.logger import (
    _add_prefix,
    _convert_params,
    _sanitize_callable_params,
)
from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.utilities import rank_zero_only

from .._run import Run
from ._handle import RunHandle


class WanllmLogger(Logger):
    """Log a Lightning ``Trainer`` to wanllm.

    ``project`` defaults to ``$WANLLM_PROJECT``, else ``"lightning_logs"``; ``version``
    (or ``id``) names the run to log into or resume; ``offline=True`` is
    ``mode="offline"``; ``prefix`` goes before every metric name; ``save_dir`` is
    where Lightning puts checkpoints (default: the Trainer's ``default_root_dir``);
    ``experiment`` an already started :class:`~wanllm_jupyter.Run`. Other keywords
    (``config``, ``tags``, ``notes``, ``group``, …) go to :func:`wanllm_jupyter.init`.

    With a run already current (``wl.init`` called before) and no ``version``, the
    logger logs into it and leaves it open; a run the logger started is finished by
    ``finalize`` (``failed`` when training raised) and reopened by a later
    ``trainer.test()``/``validate()`` on the same logger.
    """

    LOGGER_JOIN_CHAR = "-"

    def __init__(
        self,
        name: str | None = None,
        save_dir: str | os.PathLike[str] | None = None,
        version: str | None = None,
        offline: bool = False,
        id: str | None = None,
        project: str | None = None,
        prefix: str = "",
        experiment: Run | None = None,
        **init_kwargs: Any,
    ) -> None:
        super().__init__()
        self._project = project or os.environ.get("WANLLM_PROJECT") or "lightning_logs"
        if offline:
            init_kwargs["mode"] = "offline"
        self._handle = RunHandle(
            {**init_kwargs, "project": self._project, "name": name}, version or id
        )
        if experiment is not None:
            self._handle.run = experiment
        self._save_dir = os.fspath(save_dir) if save_dir is not None else None
        self._prefix = prefix

    @property
    @rank_zero_experiment
    def experiment(self) -> Run:
        """The run, started on first use (after ``finalize`` the finished run: only
        logging reopens it)."""
        return self._handle.run or self._handle.get()

    @property
    def name(self) -> str:
        """The project (as ``WandbLogger.name``); the run's own name is ``experiment.name``."""
        return self._project

    @property
    def version(self) -> str | None:
        """The run id (None until the run exists, unless given)."""
        run = self._handle.run
        return run.id if run is not None else self._handle.id

    @property
    def save_dir(self) -> str | None:
        return self._save_dir

    @rank_zero_only
    def log_hyperparams(
        self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any
    ) -> None:
        """``params`` into the run config (callables as their names)."""
        self._handle.get().config.update(_sanitize_callable_params(_convert_params(params)))

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self._handle.get().log(
            dict(_add_prefix(metrics, self._prefix, self.LOGGER_JOIN_CHAR)), step
        )

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """End of ``fit``/``test``/…: finish the run the logger started."""
        self._handle.finish(exit_code=1 if status == "failed" else None)
