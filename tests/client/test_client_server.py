"""The client against a real Jupyter server running the wanllm extension."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import wanllm_jupyter as wl
from tests.client.client_helpers import exact_points
from tests.jupyter_process import JupyterServer
from tests.services import free_port
from wanllm_jupyter import _discovery, cli
from wanllm_jupyter._lifecycle import run_uuid


# --------------------------------------------------------------------- logging
def test_log_config_summary_reach_the_server(api: wl.Api) -> None:
    with wl.init(
        project="t-basic",
        config={"lr": 0.1, "opt": {"name": "adam"}},
        tags=["a"],
        notes="hello",
        system_metrics=False,
    ) as run:
        wl.define_metric("val/*", summary="max")
        wl.define_metric("loss", summary="min")
        for i in range(100):
            wl.log({"loss": 10 - i % 10, "val": {"acc": i % 7}, "nan": math.nan})
        wl.config.batch = 32
        wl.config.opt.beta = 0.9
        wl.config.update({"epochs": 3})
        wl.summary["best"] = 0.5
        assert wl.run is run and wl.summary["loss"] == 1
    assert wl.run is None
    r = api.run(run.id)
    assert r.state == "finished" and r.tags == ["a"] and r.notes == "hello"
    assert r.config == {"lr": 0.1, "opt": {"name": "adam", "beta": 0.9}, "batch": 32, "epochs": 3}
    assert r.summary["loss"] == 1 and r.summary["val/acc"] == 6 and r.summary["best"] == 0.5
    assert r.summary["nan"] == "NaN"
    h = r.history()
    assert list(h.columns) == ["step", "time", "loss", "nan", "val/acc"]
    assert len(h) == 100 and h["nan"].isna().all() and h["loss"].iloc[:3].tolist() == [10, 9, 8]
    row = api.runs("t-basic").iloc[0]
    assert row["config.opt.name"] == "adam" and row["summary.val/acc"] == 6


def test_exception_in_context_marks_failed(api: wl.Api) -> None:
    with pytest.raises(ZeroDivisionError), wl.init(project="t-fail", system_metrics=False) as run:
        wl.log({"x": 1})
        1 / 0  # noqa: B018
    assert api.run(run.id).data["state"] == "failed"
    assert api.run(run.id).data["exit_code"] == 1


def test_reinit_finishes_previous_run_and_same_id_returns_it(api: wl.Api) -> None:
    first = wl.init(project="t-reinit", system_metrics=False)
    wl.log({"a": 1})
    assert wl.init(project="t-reinit", id=first.id, system_metrics=False) is first
    second = wl.init(project="t-reinit", system_metrics=False)
    assert first.finished and wl.run is second
    assert api.run(first.id).state == "finished"
    wl.finish()


def test_resume_continues_steps_and_rejects_never(api: wl.Api) -> None:
    run = wl.init(project="t-resume", id="my-run-id", system_metrics=False)
    for i in range(5):
        wl.log({"a": i})
    wl.finish()
    again = wl.init(project="t-resume", id="my-run-id", resume="must", system_metrics=False)
    assert again.id == run.id
    wl.log({"a": 5})
    wl.finish()
    exact_points(api, run.id, ["a"], 6)
    with pytest.raises(wl.Conflict):
        wl.init(project="t-resume", id="my-run-id", resume="never", system_metrics=False)
    with pytest.raises(wl.NotFound):
        wl.init(project="t-resume", id="never-seen", resume="must", system_metrics=False)


def test_keyboard_interrupt_loses_nothing(api: wl.Api) -> None:
    run = wl.init(project="t-kbd", system_metrics=False)
    with pytest.raises(KeyboardInterrupt):
        for i in range(10_000):
            wl.log({"a": i})
            if i == 4_999:
                raise KeyboardInterrupt
    for i in range(5_000, 10_000):  # the next cell goes on
        wl.log({"a": i})
    wl.finish()
    exact_points(api, run.id, ["a"], 10_000)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(wl.UsageError, match="mode"):
        wl.init(mode="sometimes")
    with pytest.raises(wl.UsageError, match=r"tags\[1\]"):
        wl.init(tags=["a", 2], mode="disabled")
    with pytest.raises(wl.UsageError, match="resume"):
        wl.init(resume="maybe")
    with pytest.raises(wl.UsageError, match="summary"):
        wl.init(mode="disabled").define_metric("x", summary="median")


def test_disabled_mode_records_nothing(tmp_path: Path) -> None:
    run = wl.init(mode="disabled")
    wl.log({"a": 1})
    assert wl.finish() is None and run.finished
    assert not (tmp_path / "wanllm").exists()


def test_system_metrics_are_recorded(api: wl.Api) -> None:
    run = wl.init(project="t-sys", system_sample_every=0.1, system_report_every=0.3)
    time.sleep(1.0)
    wl.finish()
    df = api.run(run.id).system_metrics()
    for col in (
        "cpu.process_percent",
        "memory.process_rss_mb",
        "memory.percent",
        "disk.percent",
        "network.sent_mb",
    ):
        assert col in df.columns
    assert len(df) >= 2 and (df["memory.process_rss_mb"] > 1).all()


# --------------------------------------------------------------------- queries
def test_history_forms(api: wl.Api) -> None:
    run = wl.init(project="t-hist", system_metrics=False)
    for i in range(2000):
        if i % 100 == 99:
            wl.log({"val": i}, commit=False)  # joins the step the next log() commits
        wl.log({"loss": 1 / (i + 1), "epoch": i // 100})
    wl.finish()
    r = api.run(run.id)
    full = r.history()
    assert len(full) == 2000 and full.attrs["sampled"] is False
    assert full["val"].notna().sum() == 20
    s = r.history(["loss"], samples=50)
    assert s.attrs["sampled"] is True and s.attrs["total_points"] == {"loss": 2000}
    assert len(s) < 2000 and s["loss"].max() == 1.0 and s["loss"].min() == 1 / 2000
    by_epoch = r.history(["epoch", "loss"], x="epoch")
    assert by_epoch.columns[0] == "epoch" and by_epoch["epoch"].is_monotonic_increasing
    long = r.history(long=True)
    assert set(long.columns) == {"metric", "step", "time", "value"} and len(long) == 4020
    rows = list(r.scan_history(["loss"], page_size=300))
    assert [row["_step"] for row in rows] == list(range(2000))
    both = api.histories([run.id, run.id], ["loss"])
    assert len(both) == 2000 and both["run_id"].iloc[0] == run.id


def test_runs_filters_and_order(api: wl.Api) -> None:
    ids = []
    for lr in (0.1, 0.01, 0.001):
        with wl.init(project="t-runs", config={"lr": lr}, system_metrics=False) as run:
            wl.log({"loss": lr * 10})
        ids.append(run.id)
    df = api.runs("t-runs", filters=["config.lr>=0.01"], order="summary.loss")
    assert df["id"].tolist() == [ids[1], ids[0]]
    assert api.runs("t-runs", filters={"config.lr": 0.001})["id"].tolist() == [ids[2]]
    # the sidebar's language is the API's (issue 11 item 6)
    assert len(api.runs("t-runs", filters="state:finished")) == 3
    finished_or_big = api.runs("t-runs", filters="config.lr>=0.1 OR state:running")
    assert finished_or_big["id"].tolist() == [ids[0]]
    projects = api.projects()
    assert projects.set_index("name").loc["t-runs", "run_count"] == 3


# --------------------------------------------------------------------- offline → sync
def test_offline_then_sync_is_exact(
    server: JupyterServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("WANLLM_URL", f"http://127.0.0.1:{free_port()}/")  # nothing listens
    run = wl.init(project="t-offline", config={"lr": 1}, system_metrics=False)
    assert run.offline
    for i in range(5000):
        wl.log({"a": i, "b": {"c": -i}})
    wl.summary["note"] = 1
    wl.finish()
    report = run.report
    assert report is not None and report.spooled_points == 10_000
    local = wl.Api(offline=True)  # the same pandas API on local data
    assert local.runs()["id"].tolist() == [run.id]
    assert local.run(run.id).history().shape == (5000, 4)
    argv = ["--url", server.url, "--token", server.token, "--dir", str(tmp_path), "sync"]
    assert cli.main(argv) == 0
    assert "synced" in capsys.readouterr().out
    remote = wl.Api(server.url, server.token)
    exact_points(remote, run.id, ["a", "b/c"], 5000)
    r = remote.run(run.id)
    assert r.state == "finished" and r.config == {"lr": 1} and r.summary["note"] == 1
    assert cli.main(argv) == 0  # nothing left: a second sync is a no-op
    assert "nothing to sync" in capsys.readouterr().out
    assert wl.Api(offline=True).run(run.id).history().shape == (5000, 4)  # kept locally


def test_next_online_init_syncs_earlier_offline_runs(
    server: JupyterServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    off = wl.init(project="t-later", mode="offline", system_metrics=False)
    wl.log({"a": 1})
    wl.finish(quiet=True)
    monkeypatch.setenv("WANLLM_URL", server.url)
    monkeypatch.setenv("WANLLM_TOKEN", server.token)
    wl.init(project="t-later", system_metrics=False)
    api = wl.Api()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if api.run(off.id).state == "finished":
                break
        except wl.NotFound:
            pass
        time.sleep(0.1)
    exact_points(api, off.id, ["a"], 1)
    wl.finish()


# --------------------------------------------------------------------- discovery
def test_discovery_prefers_the_kernels_parent_server(
    server: JupyterServer, client_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = client_env / "runtime"
    rt.mkdir()
    base = {
        "hostname": "127.0.0.1",
        "port": server.port,
        "secure": False,
        "sock": "",
        "base_url": server.base_url,
        "root_dir": "/",
        "password": False,
        "version": "2",
    }
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    (rt / "jpserver-1.json").write_text(
        json.dumps({**base, "url": "http://127.0.0.1:9/", "token": "x", "pid": dead.pid})
    )  # stale
    (rt / "jpserver-2.json").write_text(
        json.dumps({**base, "url": "http://127.0.0.1:9/other/", "token": "x", "pid": os.getppid()})
    )
    (rt / "jpserver-3.json").write_text(
        json.dumps({**base, "url": server.url, "token": server.token, "pid": os.getpid()})
    )
    (rt / "jpserver-4.json").write_text("{half written")
    monkeypatch.setenv("JPY_PARENT_PID", str(os.getpid()))
    found = list(_discovery.jupyter_servers(rt))
    assert (found[0].url, found[0].token) == (server.url, server.token) and len(found) == 2
    conn = _discovery.find_connection()
    assert conn is not None and conn.base_url == server.url
    monkeypatch.setenv("JPY_SESSION_NAME", "/nb/train.ipynb")
    run = wl.init(project="t-disc", system_metrics=False)
    assert run.connection is not None and run.connection.base_url == server.url
    wl.finish()
    assert wl.Api().run(run.id).data["metadata"]["notebook"] == "/nb/train.ipynb"


def test_no_server_anywhere_means_offline(tmp_path: Path) -> None:
    assert _discovery.find_connection() is None
    run = wl.init(project="t-none", system_metrics=False)
    assert run.offline and run.connection is None
    wl.finish(quiet=True)


# --------------------------------------------------------------------- wandb script, CLI
WANDB_SCRIPT = """
import argparse, math, random
import wanllm_jupyter as wandb

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.01)
parser.add_argument("--epochs", type=int, default=3)
args = parser.parse_args([])

run = wandb.init(project="wandb-compat", config=args, name="typical", tags=["baseline"],
                 entity="me", reinit=True)
config = wandb.config
config.update({"batch_size": 64})
wandb.define_metric("val/loss", summary="min")
best = math.inf
for epoch in range(config.epochs):
    for batch in range(100):
        loss = 1.0 / (1 + epoch * 100 + batch) + random.random() * 1e-3
        wandb.log({"train/loss": loss, "lr": config.lr})
    val = 1.0 / (epoch + 1)
    wandb.log({"val/loss": val, "epoch": epoch})
    best = min(best, val)
wandb.run.summary["best_val"] = best
wandb.finish()
print(run.id)
"""


def test_typical_wandb_script_runs_unchanged(
    online: JupyterServer, api: wl.Api, tmp_path: Path
) -> None:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(WANDB_SCRIPT))
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "error::UserWarning"},
    )
    assert out.returncode == 0, out.stderr
    r = api.run(out.stdout.strip().splitlines()[-1])
    assert r.name == "typical" and r.state == "finished" and r.tags == ["baseline"]
    assert r.config == {"lr": 0.01, "epochs": 3, "batch_size": 64}
    assert r.summary["val/loss"] == pytest.approx(1 / 3) and r.summary["best_val"] == 1 / 3
    h = r.history()
    assert len(h) == 303 and h["train/loss"].notna().sum() == 300


def test_cli_runs_and_export(
    api: wl.Api, online: JupyterServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pandas as pd

    with wl.init(project="t-cli", system_metrics=False) as run:
        for i in range(1000):
            wl.log({"a": i, "b": -i})
    assert cli.main(["runs", "--project", "t-cli"]) == 0
    assert run.id in capsys.readouterr().out
    # the sidebar's query language (issue 11 item 6)
    assert cli.main(["runs", "state:finished OR tag:none", "--project", "t-cli"]) == 0
    assert run.id in capsys.readouterr().out
    assert cli.main(["runs", "state:running", "--project", "t-cli"]) == 0
    assert capsys.readouterr().out.startswith("no runs")
    assert cli.main(["runs", "tag:x OR", "--project", "t-cli"]) == 1
    assert "'OR' needs a term after it" in capsys.readouterr().err
    for suffix in ("parquet", "csv"):
        out = tmp_path / f"h.{suffix}"
        assert cli.main(["export", run.id, "-o", str(out), "-q"]) == 0
        df = pd.read_parquet(out) if suffix == "parquet" else pd.read_csv(out)
        assert len(df) == 2000 and set(df["metric_name"]) == {"a", "b"}


def test_errors_name_the_id_as_typed_and_export_refuses_unknown_formats(
    api: wl.Api, online: JupyterServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11 items 7 and 8."""
    with pytest.raises(wl.NotFound) as e:
        api.run("does-not-exist")
    assert str(e.value).startswith("run 'does-not-exist' not found")
    assert str(e.value).endswith(f"(stored as {run_uuid('does-not-exist')})")
    with pytest.raises(wl.NotFound, match=r"^run 'nope-too' not found"):
        api.histories(["nope-too"])
    out = tmp_path / "x.csv"
    assert cli.main(["export", "nonexistent-id", "-o", str(out), "-q"]) == 1
    assert capsys.readouterr().err.startswith("wanllm export: run 'nonexistent-id' not found")
    assert not out.exists()
    with wl.init(project="t-cli-formats", system_metrics=False) as run:
        wl.log({"a": 1})
    for name in ("out.xlsx", "out"):
        assert cli.main(["export", run.id, "-o", str(tmp_path / name), "-q"]) == 1
        err = capsys.readouterr().err
        assert "unknown format" in err and "--format csv|parquet" in err, err
        assert not (tmp_path / name).exists()
    assert cli.main(["export", run.id, "-o", str(tmp_path / "out.txt"), "--format", "csv"]) == 0
    assert (tmp_path / "out.txt").read_text().startswith('"run_id"')


# --------------------------------------------------------------------- define_metric, metadata


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_metric_definitions_are_stored_and_survive_a_resume(
    any_server: JupyterServer,
) -> None:
    conn = wl.login(any_server.url, any_server.token)
    api = wl.Api(connection=conn)
    run = wl.init(project="t-defs", id=f"defs-{time.time_ns()}", system_metrics=False)
    wl.define_metric("epoch")
    wl.define_metric("val/*", summary="max", step_metric="epoch")
    expected = [
        {"name": "epoch", "summary": "last", "step_metric": None},
        {"name": "val/*", "summary": "max", "step_metric": "epoch"},
    ]

    def stored() -> dict[str, Any]:
        return api.run(run.id).data["metadata"]

    wait_for(lambda: stored().get("metric_definitions") == expected)  # while running
    assert stored()["python"]  # merged into the metadata, not replacing it
    wl.log({"val": {"acc": 0.9}, "epoch": 0})
    wl.finish()
    again = wl.init(project="t-defs", id=run.id, resume="must", system_metrics=False)
    wl.log({"val": {"acc": 0.5}, "epoch": 1})  # max: the summary keeps 0.9
    wl.finish()
    assert again.summary["val/acc"] == 0.9
    assert api.run(run.id).summary["val/acc"] == 0.9
    assert stored()["metric_definitions"] == expected
    with pytest.raises(wl.ServerError) as err:
        conn.patch_json(f"wanllm/api/v1/runs/{run.id}", {"metadata": ["not", "an", "object"]})
    assert err.value.status == 422
    assert err.value.errors == [{"index": 0, "field": "metadata", "reason": "must be an object"}]


# --------------------------------------------------------------------- offline filters
OFFLINE_QUERIES: list[dict[str, Any]] = [
    {"filters": ["config.lr>=0.01"], "order": "summary.loss"},
    {"filters": {"config.opt": "adam"}, "order": "-config.lr"},
    {"filters": ["config.opt~AD", "summary.loss<0.5"], "order": "config.lr"},
    {"filters": ["tags~best"], "order": "name"},
    {"filters": ["config.missing=null"], "order": "-summary.loss"},
    {"filters": ["config.lr!=0.1"], "order": "config.lr", "limit": 1},
    {"search": "RUN-1", "order": "name"},
    {"filters": ["state=finished", "config.lr>0"], "order": "-name", "state": "finished"},
    # the sidebar's query language (docs/filters.md)
    {"filters": "state:finished tag:best OR config.opt=sgd", "order": "name"},
    {"filters": "-tag:best run", "order": "name"},
]


def test_sync_keeps_every_recorded_time(
    server: JupyterServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11 item 9: a run logged offline keeps when it started and ended."""
    from datetime import datetime

    monkeypatch.setenv("WANLLM_DIR", str(tmp_path / "offline"))
    before = time.time()
    with wl.init(project="t-sync-times", mode="offline", system_metrics=False) as run:
        wl.log({"a": 1})
        time.sleep(0.5)
    ended = time.time()
    time.sleep(1.0)
    synced = time.time()
    assert cli.main(["--url", server.url, "--token", server.token, "sync"]) == 0
    data = wl.Api(server.url, server.token).run(run.id).data
    created, finished = (
        datetime.fromisoformat(data[k]).timestamp() for k in ("created_at", "finished_at")
    )
    assert before <= created < before + 0.5 and created + 0.5 <= finished <= ended < synced
    assert (data["state"], data["exit_code"]) == ("finished", 0)
    offline = wl.Api(offline=True).run(run.id).data  # the offline view agrees (to 10 ms)
    assert abs(datetime.fromisoformat(offline["created_at"]).timestamp() - created) < 0.01


def test_offline_runs_take_the_same_filters_as_online(
    server: JupyterServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANLLM_DIR", str(tmp_path / "offline"))
    for i, (lr, opt, loss) in enumerate(
        [(0.1, "adam", 0.3), (0.01, "sgd", 0.6), (0.001, "adam", 0.2)]
    ):
        tags = ["best"] if loss < 0.25 else []
        with wl.init(
            project="t-offline-filters",
            name=f"run-{i}",
            config={"lr": lr, "opt": opt},
            tags=tags,
            mode="offline",
            system_metrics=False,
        ):
            wl.log({"loss": loss})
    offline = wl.Api(offline=True)
    assert cli.main(["--url", server.url, "--token", server.token, "sync"]) == 0
    online = wl.Api(server.url, server.token)
    for q in OFFLINE_QUERIES:
        want = online.runs("t-offline-filters", **q)["name"].tolist()
        assert offline.runs("t-offline-filters", **q)["name"].tolist() == want, q
        assert want, q  # every query selects something
    with pytest.raises(wl.UsageError, match="unknown field 'nope'"):
        offline.runs(filters=["nope=1"])
    with pytest.raises(wl.UsageError, match="expected <field><op><value>"):
        offline.runs(filters=["config.lr!0"])
