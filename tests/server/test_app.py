"""The extension app: configuration, install/enable, lifecycle, crash detection, telemetry."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from jupyter_core.paths import jupyter_config_path, jupyter_data_dir
from jupyter_server.extension.config import ExtensionConfigManager
from jupyter_server.extension.manager import ExtensionPackage
from traitlets import TraitError
from traitlets.config import Config
from wanllm_server import _jupyter_server_extension_points
from wanllm_server.app import WanllmApp

from tests.server.server_helpers import body, create_run, post_points


def test_extension_point_and_defaults(monkeypatch):
    assert _jupyter_server_extension_points() == [{"module": "wanllm_server", "app": WanllmApp}]
    monkeypatch.delenv("WANLLM_DATABASE_URL", raising=False)
    monkeypatch.delenv("WANLLM_REDIS_URL", raising=False)
    app = WanllmApp()
    assert app.database_url == f"sqlite:///{jupyter_data_dir()}/wanllm/wanllm.db"
    assert app.redis_url is None
    assert (app.max_batch_size, app.pool_min_size, app.pool_max_size) == (1000, 5, 20)
    assert (app.metrics_retention_days, app.system_metrics_retention_days) == (90, 30)
    assert app.max_concurrent_batches >= 4
    with pytest.raises(TraitError, match="max_concurrent_batches must be > 0, got 0"):
        WanllmApp(max_concurrent_batches=0)


def test_env_fallbacks_and_config_precedence(monkeypatch):
    monkeypatch.setenv("WANLLM_DATABASE_URL", "postgresql://u:secret@db/x")
    monkeypatch.setenv("WANLLM_REDIS_URL", "redis://cache:6379/0")
    app = WanllmApp()
    assert (app.database_url, app.redis_url) == (
        "postgresql://u:secret@db/x",
        "redis://cache:6379/0",
    )
    assert app._safe_url() == "postgresql://u:***@db/x"
    c = Config()
    c.WanllmApp.database_url = "sqlite:////tmp/x.db"
    c.WanllmApp.max_batch_size = 50
    app = WanllmApp(config=c)
    assert (app.database_url, app.max_batch_size) == ("sqlite:////tmp/x.db", 50)
    with pytest.raises(TraitError, match="max_batch_size must be > 0, got 0"):
        WanllmApp(max_batch_size=0)


def test_enabled_on_install():
    """The shipped jupyter-config JSON enables the extension and it validates OK
    (what ``jupyter server extension list`` checks, without its slow full import)."""
    config = ExtensionConfigManager(read_config_path=jupyter_config_path())
    assert config.enabled("wanllm_server")
    package = ExtensionPackage(name="wanllm_server")
    assert package.validate()


async def test_eager_start_hook_opens_the_store(jp_serverapp, wanllm_app):
    assert wanllm_app._store is None  # pytest-jupyter never runs the start hook...
    await jp_serverapp.extension_manager.start_all_extensions()
    assert wanllm_app._store is not None  # ...a real server start does, eagerly


async def test_crash_detection_marks_silent_runs_crashed(api, wanllm_app, monkeypatch):
    changes = []
    monkeypatch.setattr(wanllm_app.live, "publish_run", changes.append)
    silent_run = await create_run(api)
    silent = silent_run["id"]
    silent_at = datetime.fromisoformat(silent_run["heartbeat_at"]).timestamp()
    alive = (await create_run(api))["id"]
    logging = (await create_run(api))["id"]
    await asyncio.sleep(0.6)
    assert (await api("POST", f"runs/{alive}/heartbeat")).code == 204
    await post_points(api, logging, {"m": [(0, 1.0)]})  # a batch is a heartbeat too
    await wanllm_app.detect_crashes(now=silent_at + 0.3 + wanllm_app.heartbeat_timeout)
    assert body(await api("GET", f"runs/{silent}"))["state"] == "crashed"
    assert body(await api("GET", f"runs/{alive}"))["state"] == "running"
    assert body(await api("GET", f"runs/{logging}"))["state"] == "running"
    assert [str(r.id) for r in changes if r.state == "crashed"] == [silent]


async def test_shutdown_finishes_in_flight_batches(api, wanllm_app):
    rid = (await create_run(api))["id"]
    store = await wanllm_app.store()
    real_write = store.write_metrics
    started = asyncio.Event()

    async def slow_write(batch):
        started.set()
        await asyncio.sleep(0.3)
        return await real_write(batch)

    store.write_metrics = slow_write
    ingest = asyncio.ensure_future(post_points(api, rid, {"m": [(0, 1.0)]}))
    await started.wait()
    await wanllm_app.stop_extension()  # waits for the batch before closing the store
    assert (await ingest)["written"] == 1
    assert wanllm_app._store is None
    resp = await api(
        "POST", "metrics/batch", body={"metrics": [{"run_id": rid, "metric_name": "m", "value": 1}]}
    )
    assert resp.code == 503 and resp.headers["Retry-After"] == "5"
    assert body(resp)["message"] == "server is shutting down"
    media = {
        "run_id": rid,
        "items": [{"key": "h", "step": 0, "histogram": {"edges": [0, 1], "counts": [1]}}],
    }
    resp = await api("POST", "media/batch", body=media)
    assert resp.code == 503 and resp.headers["Retry-After"] == "5"


@pytest.mark.parametrize("wanllm_config", [{"max_concurrent_batches": 2}])
async def test_ingest_concurrency_is_bounded(api, wanllm_app):
    rid = (await create_run(api))["id"]
    store = await wanllm_app.store()
    real_write = store.write_metrics
    writing, most = 0, 0

    async def slow_write(batch):
        nonlocal writing, most
        writing += 1
        most = max(most, writing)
        try:
            await asyncio.sleep(0.05)
            return await real_write(batch)
        finally:
            writing -= 1

    store.write_metrics = slow_write
    posts = [post_points(api, rid, {"m": [(step, 1.0)]}) for step in range(6)]
    assert [r["written"] for r in await asyncio.gather(*posts)] == [1] * 6
    assert most == 2  # six batches posted at once, two written at a time


async def test_prometheus_metrics_served(api, http_server_client, jp_base_url, jp_auth_header):
    rid = (await create_run(api))["id"]
    await post_points(api, rid, {"m": [(i, 1.0) for i in range(3)]})
    await api("GET", f"runs/{rid}/metrics/m/latest")
    await api("POST", "metrics/batch", body=b"{", headers={"Content-Type": "application/json"})
    resp = await http_server_client.fetch(jp_base_url + "metrics", headers=jp_auth_header)
    text = resp.body.decode()
    for needle in (
        'wanllm_points_ingested_total{kind="metrics"}',
        'wanllm_batches_rejected_total{kind="metrics",reason="malformed"}',
        'wanllm_ingest_seconds_count{kind="metrics"}',
        'wanllm_query_seconds_count{endpoint="latest"}',
        "wanllm_websocket_clients",
        "wanllm_fanout_lag_seconds_bucket",
    ):
        assert needle in text, needle
