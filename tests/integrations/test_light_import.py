"""Importing the client or its integrations package loads no training framework."""

from __future__ import annotations

import subprocess
import sys

import pytest

FRAMEWORKS = (
    "torch",
    "transformers",
    "lightning",
    "pytorch_lightning",
    "keras",
    "tensorflow",
    "jax",
)


@pytest.mark.parametrize("module", ["wanllm_jupyter", "wanllm_jupyter.integrations"])
def test_import_loads_no_framework(module: str) -> None:
    code = f"import sys, {module}\nprint(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
