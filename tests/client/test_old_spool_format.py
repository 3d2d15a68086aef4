"""A spool written before the client's operations were typed replays whole.

``fixtures/spool_tuple_ops.jsonl`` is the ``spool.jsonl`` of an offline run written
by the client of commit 4cea7e9 (operations as ``(kind, body)`` tuples): a create,
a metrics batch (a NaN at step 3), the ``define_metric`` patch, a media batch (an
image and a histogram at step 30), a config patch, a system batch, the summary
patch, the final patch and the environment patch. Only the create's
``python_executable`` and ``argv`` were shortened. Each test gives the run and its
batches new ids (the server ignores a batch id it has seen) and replays it to a real
server (SQLite): by ``wanllm sync``, and by a live run resuming that id.
"""

from __future__ import annotations

import math
import re
import uuid
from pathlib import Path

import pytest

import wanllm_jupyter as wl
from tests.jupyter_process import JupyterServer
from wanllm_jupyter import cli

FIXTURE = Path(__file__).parent / "fixtures" / "spool_tuple_ops.jsonl"
FIXTURE_RUN = "5f0c1e2a-7b3d-4c8e-9a1f-000000000412"
BATCH_ID = re.compile(rb'"batch_id":"[0-9a-f]{32}"')


def _place(root: Path) -> tuple[str, Path]:
    """The fixture as the pending spool of a new run under ``root``: (run id, path)."""
    rid = str(uuid.uuid4())
    spool = root / "wanllm" / "runs" / rid / "spool.jsonl"
    spool.parent.mkdir(parents=True)
    text = FIXTURE.read_bytes().replace(FIXTURE_RUN.encode(), rid.encode())
    spool.write_bytes(BATCH_ID.sub(lambda _: b'"batch_id":"%s"' % uuid.uuid4().hex.encode(), text))
    return rid, spool


def _check_replayed(api: wl.Api, rid: str) -> wl.ApiRun:
    """Everything the fixture holds is on the server."""
    run = api.run(rid)
    assert (run.project, run.name, run.tags) == ("old-spool", "spooled", ["a"])
    assert run.config == {"lr": 0.1, "batch": 32}
    assert run.data["metadata"]["metric_definitions"][0]["name"] == "loss"
    assert "packages" in run.data["metadata"]
    hist = run.history(["loss", "acc/top1", "nan"]).set_index("step").sort_index().loc[:24]
    assert hist.index.tolist() == list(range(25))
    assert hist["loss"].tolist() == pytest.approx([1 / (i + 1) for i in range(25)])
    assert math.isnan(hist["nan"][3]) and hist["nan"][24] == 24.0
    keys = run.media_keys().set_index("key")
    assert keys.loc["img", "kind"] == "image" and keys.loc["img", "last_step"] == 30
    assert run.histograms("h")["step"].tolist() == [30]
    assert run.system_metrics()["cpu_percent"].tolist() == [12.5]
    return run


def test_wanllm_sync_replays_an_old_spool(server: JupyterServer, tmp_path: Path) -> None:
    rid, spool = _place(tmp_path)
    assert cli.main(["--url", server.url, "--token", server.token, "sync"]) == 0
    run = _check_replayed(wl.Api(server.url, server.token), rid)
    assert run.state == "finished" and run.data["exit_code"] == 0
    assert run.summary["loss"] == pytest.approx(0.04)
    assert run.data["finished_at"].startswith("2026-12-04T")
    assert not spool.exists() and (spool.parent / "spool.synced.jsonl").exists()


def test_a_resumed_run_replays_an_old_spool_first(server: JupyterServer, tmp_path: Path) -> None:
    rid, spool = _place(tmp_path)
    api = wl.Api(server.url, server.token)
    run = wl.init("old-spool", id=rid, connection=api.connection, system_metrics=False)
    wl.log({"loss": 0.5}, step=40)
    run.finish(quiet=True)
    assert run.report is not None and run.report.errors == [] and not spool.exists()
    _check_replayed(api, rid)
    assert 40 in api.run(rid).history(["loss"])["step"].tolist()
