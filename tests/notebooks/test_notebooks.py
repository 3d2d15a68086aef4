"""Execute the shipped notebooks end-to-end with nbclient against a real server:
``WANLLM_URL``/``WANLLM_TOKEN`` when set, else a Jupyter server started here."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.jupyter_process import JupyterServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    if os.environ.get("WANLLM_URL"):
        return {
            "WANLLM_URL": os.environ["WANLLM_URL"],
            "WANLLM_TOKEN": os.environ.get("WANLLM_TOKEN", ""),
        }
    server = JupyterServer.shared()  # the widget tests' server
    return {"WANLLM_URL": server.url, "WANLLM_TOKEN": server.token}


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["quickstart.ipynb", "compare-runs.ipynb", "media-and-frameworks.ipynb"]
)
def test_notebook_executes(
    name: str, server_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in server_env.items():
        monkeypatch.setenv(key, value)  # the kernel inherits them: discovery finds the server
    monkeypatch.setenv("WANLLM_DIR", str(tmp_path))
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "outputs committed"
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors
    # issue 11 item 2: finish() says one quiet stdout line, nothing pink, no echoed repr
    stderr = [
        o.text
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "stream" and o.name == "stderr"
    ]
    assert not stderr, stderr
    finishing = [c for c in nb.cells if c.cell_type == "code" and "wl.finish()" in c.source]
    assert all(o.output_type != "execute_result" for c in finishing for o in c.outputs)
    widgets = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert widgets, "no widget was displayed"
