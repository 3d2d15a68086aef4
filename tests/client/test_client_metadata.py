"""Run metadata: a resume merges it (server, both backends), and offline runs rebuilt
from their spools follow the server's merge rules and record their times."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pandas as pd

import wanllm_jupyter as wl
from tests.jupyter_process import JupyterServer
from wanllm_jupyter._http import API


def test_resume_merges_metadata_like_an_update(any_server: JupyterServer) -> None:
    conn = wl.Api(any_server.url, any_server.token).connection
    rid = str(uuid.uuid4())
    body = {"project": "t-meta", "id": rid, "metadata": {"python": "3.11", "pid": 1}}
    first = conn.post_json(API + "runs", {**body, "resume": "never"})
    conn.patch_json(f"{API}runs/{first['id']}", {"metadata": {"notebook": "a.ipynb"}})
    again = conn.post_json(
        API + "runs", {**body, "metadata": {"pid": 2, "host_note": "x"}, "resume": "must"}
    )
    assert again["resumed"] and again["id"] == first["id"]
    merged = {"python": "3.11", "pid": 2, "notebook": "a.ipynb", "host_note": "x"}
    assert again["metadata"] == merged
    stored = conn.get_json(f"{API}runs/{first['id']}")
    assert stored["metadata"] == again["metadata"]


def test_offline_run_merges_patches_and_records_times(client_env: Path) -> None:
    before = pd.Timestamp.now(tz="UTC").floor("us")
    run = wl.init(
        project="t-offline-meta", config={"lr": 1}, tags=["a"], mode="offline",
        system_metrics=False,
    )  # fmt: skip
    wl.define_metric("val/*", summary="max")  # a metadata patch
    wl.config.update({"batch": 32})
    wl.log({"val": {"acc": 0.5}})
    wl.summary["best"] = 1
    wl.finish(quiet=True)
    after = pd.Timestamp.now(tz="UTC")

    r = wl.Api(offline=True).run(run.id)
    meta = r.data["metadata"]
    assert meta["python"] and meta["argv"]  # the create's metadata is kept...
    assert meta["metric_definitions"] == [{"name": "val/*", "summary": "max", "step_metric": None}]
    assert r.config == {"lr": 1, "batch": 32} and r.tags == ["a"]
    assert r.summary["best"] == 1 and r.summary["val/acc"] == 0.5
    assert r.state == "finished" and r.data["exit_code"] == 0
    row = wl.Api(offline=True).runs("t-offline-meta").iloc[0]
    assert before <= row["created_at"] <= row["finished_at"] <= after
    assert row["created_at"] <= row["updated_at"] <= after

    # an offline resume merges config and metadata; the run keeps its creation time
    time.sleep(0.01)
    wl.init(id=run.id, resume="allow", mode="offline", config={"epochs": 3}, system_metrics=False)
    wl.finish(quiet=True)
    again = wl.Api(offline=True).run(run.id)
    assert again.state == "finished"
    assert again.config == {"lr": 1, "batch": 32, "epochs": 3}
    assert again.data["metadata"]["metric_definitions"] == meta["metric_definitions"]
    assert again.data["created_at"] == r.data["created_at"]
    assert again.data["finished_at"] > r.data["finished_at"]
    assert again.tags == ["a"]  # not given on resume: kept


def test_resume_keeps_tags_and_notes_unless_given(online: JupyterServer) -> None:
    run = wl.init(project="t-resume-tags", tags=["a", "b"], notes="first", system_metrics=False)
    wl.finish(quiet=True)
    wl.init(id=run.id, resume="allow", project="t-resume-tags", system_metrics=False)
    wl.finish(quiet=True)
    kept = wl.Api().run(run.id)
    assert kept.tags == ["a", "b"] and kept.data["notes"] == "first"

    wl.init(id=run.id, resume="must", project="t-resume-tags", tags=["c"], notes="",
            system_metrics=False)  # fmt: skip
    wl.finish(quiet=True)
    replaced = wl.Api().run(run.id)
    assert replaced.tags == ["c"] and replaced.data["notes"] == ""
