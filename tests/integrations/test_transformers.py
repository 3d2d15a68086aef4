"""``WanllmCallback`` in a real ``transformers.Trainer`` (CPU, a tiny GPT-2 built here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

import wanllm_jupyter as wl
from tests.jupyter_process import JupyterServer
from wanllm_jupyter import Run
from wanllm_jupyter.integrations import WanllmCallback


class Tokens(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Fixed random token sequences; the labels are the inputs (language modelling)."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, 16, (n, 8), generator=g)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def make_trainer(
    out: Path, max_steps: int, callback: WanllmCallback, save: bool = False, restore: bool = False
) -> Trainer:
    """A tiny GPT-2 trainer: a log every step, an evaluation every 2 steps, and with
    ``save`` a checkpoint every 2 steps (``restore``: callbacks restored from it)."""
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=16, n_positions=8, n_embd=8, n_layer=1, n_head=2, bos_token_id=0, eos_token_id=0
    )
    model = GPT2LMHeadModel(config)
    args = TrainingArguments(
        output_dir=str(out),
        max_steps=max_steps,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        learning_rate=1e-2,
        logging_steps=1,
        eval_strategy="steps",
        eval_steps=2,
        save_strategy="steps" if save else "no",
        save_steps=2,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        run_name="tiny-gpt2",
        restore_callback_states_from_checkpoint=restore,
    )
    return Trainer(
        model=model,
        args=args,
        train_dataset=Tokens(16, seed=1),
        eval_dataset=Tokens(8, seed=2),
        callbacks=[callback],
    )


# the metrics the Trainer logs with deterministic values (no timings), as wanllm names them
EXACT = {"loss": "train/loss", "grad_norm": "train/grad_norm",
         "learning_rate": "train/learning_rate", "eval_loss": "eval/loss"}  # fmt: skip


def logged(trainer: Trainer) -> pd.DataFrame:
    """The Trainer's own log history of the EXACT metrics: step, metric, value."""
    rows = [
        (entry["step"], name, float(entry[key]))
        for entry in trainer.state.log_history
        for key, name in EXACT.items()
        if key in entry
    ]
    return sort(pd.DataFrame(rows, columns=["step", "metric", "value"]))


def stored(api: wl.Api, run_id: str) -> pd.DataFrame:
    """What the server holds of the EXACT metrics: step, metric, value."""
    df = api.run(run_id).history(list(EXACT.values()), long=True)
    return sort(df[["step", "metric", "value"]].astype({"metric": str}))


def run_of(callback: WanllmCallback) -> Run:
    assert callback.run is not None
    return callback.run


def series(api: wl.Api, run_id: str, metric: str) -> np.ndarray:
    """``[[step, value], ...]`` of one metric."""
    return api.run(run_id).history([metric], long=True)[["step", "value"]].to_numpy()


def sort(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["metric", "step"]).reset_index(drop=True)


def test_trainer_metrics_config_and_summary(
    online: JupyterServer, api: wl.Api, tmp_path: Path
) -> None:
    callback = WanllmCallback(project="hf-trainer", tags=["tiny"])
    trainer = make_trainer(tmp_path / "out", max_steps=4, callback=callback)
    trainer.train()
    assert run_of(callback).finished

    run = api.run(run_of(callback).id)
    assert (run.project, run.name, run.state, run.tags) == (
        "hf-trainer",
        "tiny-gpt2",
        "finished",
        ["tiny"],
    )
    assert run.config["learning_rate"] == 1e-2  # TrainingArguments
    assert run.config["n_embd"] == 8  # the model config
    assert isinstance(trainer.model, GPT2LMHeadModel)
    assert run.config["model/num_parameters"] == trainer.model.num_parameters()
    assert run.summary["train_loss"] == pytest.approx(trainer.state.log_history[-1]["train_loss"])
    assert "train_runtime" in run.summary

    expected = logged(trainer)
    assert sorted(expected.loc[expected.metric == "train/loss", "step"]) == [1, 2, 3, 4]
    assert sorted(expected.loc[expected.metric == "eval/loss", "step"]) == [2, 4]
    pd.testing.assert_frame_equal(stored(api, run.id), expected)
    # once per step, not again with the evaluation at the same step
    assert series(api, run.id, "train/epoch")[:, 0].tolist() == [1, 2, 3, 4]


def test_evaluations_around_training_share_its_run(
    online: JupyterServer, api: wl.Api, tmp_path: Path
) -> None:
    callback = WanllmCallback(project="hf-evaluate")
    trainer = make_trainer(tmp_path / "out", max_steps=2, callback=callback)
    trainer.evaluate()  # a baseline: starts the run, at step 0
    run_id = run_of(callback).id
    trainer.train()  # eval/loss at step 2 too
    metrics: dict[str, Any] = trainer.evaluate(metric_key_prefix="test")
    assert run_of(callback).id == run_id and run_of(callback).finished

    assert api.runs("hf-evaluate")["id"].tolist() == [run_id]
    assert series(api, run_id, "eval/loss")[:, 0].tolist() == [0, 2]
    assert series(api, run_id, "test/loss").tolist() == [[2, metrics["test_loss"]]]
    assert api.run(run_id).state == "finished"


def test_training_again_from_scratch_starts_a_new_run(
    online: JupyterServer, api: wl.Api, tmp_path: Path
) -> None:
    callback = WanllmCallback(project="hf-again")
    make_trainer(tmp_path / "a", max_steps=1, callback=callback).train()
    first = run_of(callback).id
    make_trainer(tmp_path / "b", max_steps=1, callback=callback).train()
    assert run_of(callback).id != first
    assert sorted(api.runs("hf-again")["id"]) == sorted([first, run_of(callback).id])


@pytest.mark.parametrize("restore", [False, True], ids=["state-read", "callback-restored"])
def test_resume_from_checkpoint_continues_the_run(
    online: JupyterServer, api: wl.Api, tmp_path: Path, restore: bool
) -> None:
    """The run id travels in trainer_state.json; with restore_callback_states_from_checkpoint
    the Trainer rebuilds the callback from it (its arguments too) instead."""
    out = tmp_path / "out"
    project = f"hf-resume-{restore}"
    first = WanllmCallback(project=project)
    make_trainer(out, max_steps=4, callback=first, save=True).train()
    run_id = run_of(first).id

    # a new process would build a new callback
    second = make_trainer(out, 6, WanllmCallback(), save=True, restore=restore)
    second.train(resume_from_checkpoint=str(out / "checkpoint-4"))
    (callback,) = [c for c in second.callback_handler.callbacks if isinstance(c, WanllmCallback)]
    assert (run_of(callback).id, run_of(callback).project) == (run_id, project)

    stored = api.run(run_id)
    assert api.runs(project)["id"].tolist() == [run_id]
    assert (stored.project, stored.state) == (project, "finished")
    loss = series(api, run_id, "train/loss")
    assert loss[:, 0].tolist() == [1, 2, 3, 4, 5, 6]
    resumed = [e["loss"] for e in second.state.log_history if "loss" in e and e["step"] > 4]
    assert loss[4:, 1].tolist() == resumed


def test_logs_into_the_users_run_and_leaves_it_open(
    online: JupyterServer, api: wl.Api, tmp_path: Path
) -> None:
    run = wl.init(project="hf-own", config={"dataset": "tokens"})
    callback = WanllmCallback()
    make_trainer(tmp_path / "out", max_steps=2, callback=callback).train()
    assert callback.run is run and not run.finished
    run.log({"after": 1.0}, step=3)
    run.finish()

    stored_run = api.run(run.id)
    assert stored_run.config["dataset"] == "tokens" and stored_run.config["max_steps"] == 2
    assert {"train/loss", "eval/loss", "after"} <= set(stored_run.metric_names())
