"""A new process's first points need nothing slow: ``init()`` and the first batches
use the standard library's HTTP client and columnar JSON (no urllib3, no pyarrow),
and the run's package versions follow in a patch once the points are out. Large
batches cut as the process exits lose nothing (sent as JSON when pyarrow was not
imported yet: nothing is imported for the first time at exit)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import wanllm_jupyter as wl
from tests.client.client_helpers import exact_points
from tests.jupyter_process import JupyterServer

FIRST_POINTS = """
import json, sys
import wanllm_jupyter as wl
run = wl.init(project="t-first", system_metrics=False)
for i in range(50):
    wl.log({"a": i})
wl.finish(quiet=True)
print(json.dumps({"id": run.id, "modules": sorted(m for m in ("urllib3", "pyarrow")
                                                    if m in sys.modules)}))
"""

LARGE_AT_EXIT = """
import json, sys
import wanllm_jupyter as wl
run = wl.init(project="t-first", system_metrics=False)
print(json.dumps({"id": run.id}), flush=True)
for i in range(20000):
    wl.log({"a": i, "b": -i})
sys.exit(0)  # no finish(): the large batches go out as the interpreter exits
"""


def run_script(tmp_path: Path, source: str) -> dict[str, object]:
    script = tmp_path / "train.py"
    script.write_text(source)
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=os.environ
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    return json.loads(next(line for line in out.stdout.splitlines() if line.startswith("{")))


def test_first_points_need_neither_urllib3_nor_pyarrow(
    online: JupyterServer, api: wl.Api, tmp_path: Path
) -> None:
    out = run_script(tmp_path, FIRST_POINTS)
    assert out["modules"] == []
    exact_points(api, str(out["id"]), ["a"], 50)
    meta = api.run(str(out["id"])).data["metadata"]
    assert meta["packages"]["numpy"] and meta["platform"] and meta["pid"]


def test_large_batches_at_exit_lose_nothing(
    online: JupyterServer, api: wl.Api, tmp_path: Path
) -> None:
    out = run_script(tmp_path, LARGE_AT_EXIT)
    run = api.run(str(out["id"]))
    assert run.state == "finished"
    exact_points(api, run.id, ["a", "b"], 20000)
