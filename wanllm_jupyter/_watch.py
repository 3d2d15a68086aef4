"""``wl.watch(model)``: histograms of a PyTorch model's gradients and parameters.

Gradient hooks (``Tensor.register_hook``) and a forward hook count calls; every
``log_freq``-th call the tensor is binned on its own device (``torch.aminmax`` and
``torch.histc``, launched without waiting for the device) and logged as
``gradients/<name>`` / ``parameters/<name>`` at the run's current step
(``commit=False``, as wandb). The counts come to the CPU on the sender thread.
torch is imported only here, when ``watch`` is called.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import numpy.typing as npt

from ._media import Media, MediaError, _checked_bins
from .core.api.media import HistogramIn
from .core.errors import UsageError

LOGS = ("gradients", "parameters", "all")
_watched: dict[int, list[Any]] = {}  # id(model) -> hook handles


class DeviceHistogram(Media):
    """A histogram binned on the tensor's device; the sender copies its bins back."""

    kind = "histogram"

    def __init__(self, tensor: Any, num_bins: int = 64) -> None:
        import torch

        t = tensor.detach().reshape(-1)
        if t.dtype not in (torch.float32, torch.float64):
            t = t.float()
        self._bins: tuple[Any, ...] | None = None
        self._problem = "an empty tensor has no histogram"
        try:
            if t.numel():
                self._bins = (torch.histc(t, bins=num_bins), *torch.aminmax(t))
        except RuntimeError as exc:  # NaN/Inf: told at log() time, the backward goes on
            self._problem = f"cannot bin the tensor ({exc})"

    def encode(self) -> HistogramIn:
        if self._bins is None:
            raise MediaError(self._problem)
        counts, lo, hi = (x.cpu() for x in self._bins)
        c, e = _checked_bins(counts.numpy(), _edges(float(lo), float(hi), counts.numel()))
        return HistogramIn(edges=e.tolist(), counts=c.tolist())


def _edges(lo: float, hi: float, bins: int) -> npt.NDArray[np.float64]:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise MediaError("the tensor holds NaN or ±Inf")
    if lo == hi:  # torch.histc widens an empty range by 1 on each side
        lo, hi = lo - 1.0, hi + 1.0
    return np.linspace(lo, hi, bins + 1)


def tensor_histogram(
    tensor: Any, num_bins: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``(counts, edges)`` of a tensor's finite values, binned on its device."""
    import torch

    t = tensor.detach().reshape(-1)
    if not t.is_floating_point() or t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    t = t[torch.isfinite(t)]
    if t.numel() == 0:
        raise MediaError("no finite values to bin (empty, or all NaN/±Inf)")
    lo, hi = (float(x) for x in torch.aminmax(t))
    edges = _edges(lo, hi, num_bins)
    counts = torch.histc(t, bins=num_bins, min=float(edges[0]), max=float(edges[-1]))
    return _checked_bins(counts.cpu().numpy(), edges)


def watch(
    models: Any,
    criterion: Any = None,
    log: str | None = "gradients",
    log_freq: int = 100,
    idx: int | None = None,
    log_graph: bool = False,
) -> None:
    """Log histograms of ``models``' gradients (``log="gradients"``), parameters
    (``"parameters"``) or both (``"all"``) every ``log_freq`` backward/forward
    passes, into the current run. ``criterion``, ``idx``, ``log_graph``: wandb's,
    accepted and ignored."""
    from . import _lifecycle

    run = _lifecycle.current
    if run is None:
        raise UsageError("wanllm: call wanllm_jupyter.init() before watch()")
    if log not in (*LOGS, None):
        raise UsageError(f"watch(log=) must be one of {LOGS} or None, got {log!r}")
    if isinstance(log_freq, bool) or not isinstance(log_freq, int) or log_freq < 1:
        raise UsageError(f"watch(log_freq=) must be a positive integer, got {log_freq!r}")
    module_list = _as_list(models)
    torch = sys.modules.get("torch")
    for i, model in enumerate(module_list):
        if torch is None or not isinstance(model, torch.nn.Module):
            raise UsageError(
                f"watch() needs a torch.nn.Module, got {type(model).__name__} (models[{i}])"
            )
    for i, model in enumerate(module_list):
        prefix = f"graph_{i}/" if len(module_list) > 1 else ""
        unwatch(model)
        handles = _watched.setdefault(id(model), [])
        if log in ("gradients", "all"):
            for name, param in model.named_parameters():
                if param.requires_grad:
                    key = f"gradients/{prefix}{name}"
                    handles.append(param.register_hook(_grad_hook(run, key, log_freq)))
        if log in ("parameters", "all"):
            handles.append(model.register_forward_hook(_param_hook(run, model, prefix, log_freq)))


def unwatch(models: Any = None) -> None:
    """Remove the hooks ``watch`` put on ``models`` (every watched model when None)."""
    keys = list(_watched) if models is None else [id(m) for m in _as_list(models)]
    for key in keys:
        for handle in _watched.pop(key, ()):
            handle.remove()


def _as_list(models: Any) -> list[Any]:
    return list(models) if isinstance(models, (list, tuple)) else [models]


def _grad_hook(run: Any, key: str, every: int) -> Any:
    calls = [0]

    def hook(grad: Any) -> None:
        calls[0] += 1
        if calls[0] % every == 0 and not run.finished:
            run.log({key: DeviceHistogram(grad)}, commit=False)

    return hook


def _param_hook(run: Any, model: Any, prefix: str, every: int) -> Any:
    calls = [0]

    def hook(module: Any, args: Any, output: Any) -> None:
        calls[0] += 1
        if calls[0] % every == 0 and not run.finished:
            run.log(
                {
                    f"parameters/{prefix}{name}": DeviceHistogram(p)
                    for name, p in model.named_parameters()
                },
                commit=False,
            )

    return hook
