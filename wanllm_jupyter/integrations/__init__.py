"""Framework hooks: log a training loop you do not write yourself.

    from wanllm_jupyter.integrations.transformers import WanllmCallback      # HF Trainer
    from wanllm_jupyter.integrations.lightning import WanllmLogger           # Lightning
    from wanllm_jupyter.integrations.keras import WanllmMetricsLogger        # Keras 3

The three names are also attributes of this package. Each loads its framework
only when first used: importing this package imports none of them.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "WanllmCallback": "transformers",
    "WanllmLogger": "lightning",
    "WanllmMetricsLogger": "keras",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
