"""``WanllmLogger`` in a real Lightning ``Trainer`` (CPU, a tiny regression module)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import wanllm_jupyter as wl
from tests.jupyter_process import JupyterServer
from wanllm_jupyter.integrations import WanllmLogger


class Regression(L.LightningModule):
    """y = 2x + 1 with one linear layer; remembers what it logged, per global step."""

    def __init__(self, lr: float = 0.05, activation: type | None = None) -> None:
        """``activation``: only a hyper-parameter (a class, recorded by its name)."""
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(1, 1)
        self.train_losses: dict[int, float] = {}

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train/loss", loss)
        self.train_losses[self.global_step] = loss.item()
        return loss

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val/loss", torch.nn.functional.mse_loss(self.layer(x), y))

    def test_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("test/loss", torch.nn.functional.mse_loss(self.layer(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams["lr"])


def loader() -> DataLoader[tuple[torch.Tensor, ...]]:
    x = torch.linspace(-1, 1, 16).unsqueeze(1)
    return DataLoader(TensorDataset(x, 2 * x + 1), batch_size=4)  # 4 batches an epoch


def trainer(logger: WanllmLogger, max_steps: int, root: Path) -> L.Trainer:
    return L.Trainer(
        max_steps=max_steps,
        logger=logger,
        log_every_n_steps=1,
        default_root_dir=root,
        accelerator="cpu",
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def test_fit_then_test(online: JupyterServer, api: wl.Api, tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = Regression(activation=torch.nn.Tanh)
    logger = WanllmLogger(project="pl", name="tiny", config={"data": "line"}, tags=["pl"])
    fit = trainer(logger, max_steps=6, root=tmp_path)
    fit.fit(module, loader(), loader())
    run = logger.experiment
    assert (logger.name, logger.version) == ("pl", run.id)
    assert api.run(run.id).state == "finished"

    fit.test(module, loader())  # reopens the run, finishes it again
    assert logger.experiment is not run and logger.version == run.id

    stored = api.run(run.id)
    assert (stored.name, stored.state, stored.tags) == ("tiny", "finished", ["pl"])
    assert stored.config == {"data": "line", "lr": 0.05, "activation": "Tanh"}
    loss = stored.history(["train/loss"], long=True)
    # at the step Lightning gives: the global step the batch was trained at
    assert dict(zip(loss["step"], loss["value"], strict=True)) == module.train_losses
    assert list(module.train_losses) == [0, 1, 2, 3, 4, 5]
    # validated once, at the end of epoch 0 (steps 0-3); max_steps ends epoch 1 early
    assert stored.history(["val/loss"], long=True)["step"].tolist() == [3]
    assert stored.history(["test/loss"], long=True)["step"].tolist() == [6]
    assert stored.history(["epoch"], long=True)["value"].tolist()[:4] == [0.0] * 4


def test_resume_with_version(online: JupyterServer, api: wl.Api, tmp_path: Path) -> None:
    torch.manual_seed(0)
    first = WanllmLogger(project="pl-resume")
    fit = trainer(first, max_steps=4, root=tmp_path)
    fit.fit(Regression(), loader())
    fit.save_checkpoint(tmp_path / "step4.ckpt")

    again = WanllmLogger(project="pl-resume", version=first.version)
    trainer(again, max_steps=6, root=tmp_path).fit(
        Regression(), loader(), ckpt_path=tmp_path / "step4.ckpt"
    )
    assert api.runs("pl-resume")["id"].tolist() == [first.version]
    steps = api.run(first.version).history(["train/loss"], long=True)["step"]
    assert steps.tolist() == [0, 1, 2, 3, 4, 5]


def test_failed_fit_marks_the_run_failed(
    online: JupyterServer, api: wl.Api, tmp_path: Path
) -> None:
    class Broken(Regression):
        def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
            if self.global_step == 2:
                raise RuntimeError("diverged")
            return super().training_step(batch, batch_idx)

    logger = WanllmLogger(project="pl-failed")
    with pytest.raises(RuntimeError, match="diverged"):
        trainer(logger, max_steps=6, root=tmp_path).fit(Broken(), loader())
    run = api.run(logger.version)
    assert run.state == "failed"
    assert run.history(["train/loss"], long=True)["step"].tolist() == [0, 1]
