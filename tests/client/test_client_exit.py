"""Scripts that end without ``finish()`` (at once after logging): every point reaches
the server and the run's final state follows how the script ended."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import wanllm_jupyter as wl
from tests.client.client_helpers import exact_points
from tests.jupyter_process import JupyterServer

SCRIPT = """
import sys
import wanllm_jupyter as wl
run = wl.init(project="t-exit", system_metrics=False)
print(run.id, flush=True)
for i in range(1000):
    wl.log({"a": i})
"""


@pytest.mark.parametrize(
    ("ending", "returncode", "state", "exit_code"),
    [
        ("", 0, "finished", 0),
        ("raise ValueError('boom')", 1, "failed", 1),
        ("raise KeyboardInterrupt", -2, "failed", 130),
        ("sys.exit(3)", 3, "failed", 3),
        ("sys.exit(0)", 0, "finished", 0),
        ("sys.exit('bad input')", 1, "failed", 1),
        ("exit(4)", 4, "failed", 4),
        ("quit()", 0, "finished", 0),
        ("raise SystemExit(0)", 0, "finished", 0),
        ("try:\n    sys.exit(5)\nexcept SystemExit:\n    pass", 0, "finished", 0),
        pytest.param(
            "raise SystemExit(6)",
            6,
            "failed",
            6,
            marks=pytest.mark.skipif(
                sys.version_info < (3, 12), reason="needs sys.monitoring (Python 3.12)"
            ),
        ),
    ],
)
def test_unfinished_run_ends_with_the_process(
    ending: str,
    returncode: int,
    state: str,
    exit_code: int,
    online: JupyterServer,
    api: wl.Api,
    tmp_path: Path,
) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT + ending + "\n")
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=os.environ
    )
    assert out.returncode in (returncode, 128 - returncode), out.stderr
    rid = next(line for line in out.stdout.splitlines() if len(line) == 36)  # print(run.id)
    r = api.run(rid)
    assert (r.state, r.data["exit_code"]) == (state, exit_code)
    exact_points(api, rid, ["a"], 1000)
