"""Hugging Face ``transformers``: :class:`WanllmCallback` for the ``Trainer``.

    from wanllm_jupyter.integrations.transformers import WanllmCallback
    trainer = Trainer(model, args, ..., callbacks=[WanllmCallback(project="sst2")])

Shaped like ``transformers``' own ``WandbCallback``: metrics at the Trainer's
``global_step``, renamed as wandb does (``eval_loss`` → ``eval/loss``,
``test_*`` → ``test/*``, the rest under ``train/``); the end-of-training totals
(``train_runtime``, ``train_loss``, …) go to the summary; the run config is the
model config, then ``TrainingArguments``, then the callback's ``config``.

The run id is saved in each checkpoint's ``trainer_state.json``, so
``trainer.train(resume_from_checkpoint=...)`` goes on logging into the same run.
"""

from __future__ import annotations

import json
import os
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from .._run import Run
from ._handle import RunHandle

# logged once at the end of training; wandb keeps them in the summary, not the history
SUMMARY_KEYS = frozenset(
    (
        "train_runtime",
        "train_samples_per_second",
        "train_steps_per_second",
        "train_loss",
        "total_flos",
    )
)


def rewrite_logs(logs: dict[str, Any]) -> dict[str, Any]:
    """The Trainer's log keys as wandb names them: ``eval_x`` → ``eval/x``,
    ``test_x`` → ``test/x``, anything else ``x`` → ``train/x``."""
    out = {}
    for key, value in logs.items():
        for prefix in ("eval", "test"):
            if key.startswith(prefix + "_"):
                out[f"{prefix}/{key[len(prefix) + 1 :]}"] = value
                break
        else:
            out["train/" + key] = value
    return out


def trainer_config(args: Any, model: Any) -> dict[str, Any]:
    """The run config wandb records: the model config, then ``TrainingArguments``
    (winning on shared keys), then ``model/num_parameters``."""
    config: dict[str, Any] = {}
    model_config = getattr(model, "config", None)
    if model_config is not None:
        config.update(model_config if isinstance(model_config, dict) else model_config.to_dict())
    config.update(args.to_dict())
    num_parameters = getattr(model, "num_parameters", None)
    if callable(num_parameters):
        config["model/num_parameters"] = num_parameters()
    return config


class WanllmCallback(TrainerCallback, ExportableState):
    """Log a ``transformers.Trainer`` to wanllm.

    ``project`` defaults to ``$WANLLM_PROJECT``, else ``TrainingArguments.project``
    ("huggingface"); ``name`` to ``TrainingArguments.run_name``. ``id`` logs into
    (or resumes) that run. Other keywords (``tags``, ``notes``, ``group``, ``mode``,
    …) go to :func:`wanllm_jupyter.init`. With a run already current (``wl.init``
    called before) and no ``id``, the callback logs into it and does not finish it;
    otherwise it starts a run at ``on_train_begin`` and finishes it at
    ``on_train_end``; a later ``evaluate()``/``predict()`` reopens it.
    """

    def __init__(
        self,
        project: str | None = None,
        name: str | None = None,
        config: dict[str, Any] | None = None,
        id: str | None = None,
        **init_kwargs: Any,
    ) -> None:
        self._args = {"project": project, "name": name, "config": config, "id": id, **init_kwargs}
        self._handle = RunHandle(
            {**init_kwargs, "project": project, "name": name, "config": config}, id
        )
        self._training = False
        self._trained = False  # train() ran with this callback: the next one starts a new run
        self._epoch_step: int | None = None  # the step train/epoch was last logged at
        # the run (and its project) of the checkpoint being resumed, set by the Trainer
        # when it restores callback states (restore_callback_states_from_checkpoint=True)
        self.resume_run_id: str | None = None
        self.resume_project: str | None = None

    @property
    def run(self) -> Run | None:
        """The run being logged to (None before the first event)."""
        return self._handle.run

    def state(self) -> dict[str, Any]:
        """Saved in each checkpoint's ``trainer_state.json`` (``ExportableState``)."""
        run = self._handle.run
        if run is not None:
            self.resume_run_id, self.resume_project = run.id, run.project
        return {
            "args": {k: v for k, v in self._args.items() if _is_json(v)},
            "attributes": {
                "resume_run_id": self.resume_run_id,
                "resume_project": self.resume_project,
            },
        }

    # ------------------------------------------------------------- Trainer events
    def on_train_begin(
        self, args: Any, state: Any, control: Any, model: Any = None, **_: Any
    ) -> None:
        if not state.is_world_process_zero:
            return
        if state.global_step == 0 and self._trained:  # another training from scratch
            self._handle.start_over()  # (a hyper-parameter trial, say): a new run
        self._training = self._trained = True
        self._run(args, state, model)

    def on_train_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        self._training = False
        self._handle.finish()

    def on_log(
        self,
        args: Any,
        state: Any,
        control: Any,
        model: Any = None,
        logs: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        run = self._run(args, state, model)
        metrics = {}
        for key, value in logs.items():
            if key in SUMMARY_KEYS:
                run.summary[key] = value
            elif key != "epoch" or self._epoch_step != state.global_step:
                metrics[key] = value
        if "epoch" in metrics:  # eval logs repeat the epoch of the train log at their step
            self._epoch_step = state.global_step
        self._log(run, rewrite_logs(metrics), state.global_step)

    def on_predict(
        self, args: Any, state: Any, control: Any, metrics: dict[str, Any], **_: Any
    ) -> None:
        if state.is_world_process_zero and metrics:
            run = self._run(args, state, None)
            self._log(run, rewrite_logs(metrics), state.global_step)

    # ------------------------------------------------------------- helpers
    def _run(self, args: Any, state: Any, model: Any) -> Run:
        saved = self._checkpoint(state)
        kwargs = self._handle.init_kwargs
        kwargs["project"] = (
            self._args["project"]
            or saved.get("resume_project")  # a resumed run stays in its project
            or os.environ.get("WANLLM_PROJECT")
            or getattr(args, "project", None)
        )
        kwargs["name"] = self._args["name"] or getattr(args, "run_name", None)
        resume_id = saved.get("resume_run_id")
        return self._handle.get(
            lambda: trainer_config(args, model), resume_id if isinstance(resume_id, str) else None
        )

    def _log(self, run: Run, metrics: dict[str, Any], step: int) -> None:
        if metrics:
            run.log(metrics, step=step)
        if not self._training:  # evaluate()/predict() outside train(): done
            self._handle.finish()

    def _checkpoint(self, state: Any) -> dict[str, Any]:
        """What the checkpoint this training resumed from saved of this callback
        (``resume_run_id``, ``resume_project``); empty for a training from scratch."""
        if state.global_step == 0:
            return {}
        if self.resume_run_id is not None:  # restored by the Trainer, or this run's own
            return {"resume_run_id": self.resume_run_id, "resume_project": self.resume_project}
        saved = (state.stateful_callbacks or {}).get(type(self).__name__)
        if isinstance(saved, list):  # several callbacks of this class: the first's
            saved = saved[0] if saved else None
        attributes = saved.get("attributes") if isinstance(saved, dict) else None
        return attributes if isinstance(attributes, dict) else {}


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
