"""Fixtures for the logging client: real ``jupyter server`` subprocesses with wanllm."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import wanllm_jupyter as wl
from tests.client.jupyter_process import JupyterServerProcess
from wanllm_jupyter import _discovery, _lifecycle


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServerProcess]:
    """One SQLite-backed server shared by the tests that do not stop it."""
    proc = JupyterServerProcess(tmp_path_factory.mktemp("jupyter")).start()
    yield proc
    proc.stop()


@pytest.fixture
def make_server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Callable[..., JupyterServerProcess]]:
    """Factory for a private server (``backend="sqlite"|"timescaledb"``, ``max_batch_size``)."""
    started: list[JupyterServerProcess] = []

    def make(backend: str = "sqlite", **kwargs: object) -> JupyterServerProcess:
        url = None
        if backend == "timescaledb":
            try:
                make_pg_database = request.getfixturevalue("make_pg_database")
            except pytest.FixtureLookupError:
                pytest.skip("make_pg_database fixture (tests/conftest.py) not available")
            url = make_pg_database(True)
        proc = JupyterServerProcess(tmp_path_factory.mktemp("jupyter"), database_url=url, **kwargs)  # type: ignore[arg-type]
        started.append(proc)
        return proc.start()

    yield make
    for proc in started:
        proc.stop()


@pytest.fixture(autouse=True)
def client_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Isolate each test: spools under tmp_path, no discovered servers, no current run."""
    monkeypatch.setenv("WANLLM_DIR", str(tmp_path))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    for var in ("WANLLM_URL", "WANLLM_TOKEN", "WANLLM_MODE", "JPY_PARENT_PID", "JPY_SESSION_NAME"):
        monkeypatch.delenv(var, raising=False)
    _discovery.logout()
    yield tmp_path
    for run in list(_lifecycle._active):
        run.finish(quiet=True, timeout=5)
    _discovery.logout()


@pytest.fixture
def online(server: JupyterServerProcess, monkeypatch: pytest.MonkeyPatch) -> JupyterServerProcess:
    """Point discovery at the shared server through WANLLM_URL/WANLLM_TOKEN."""
    monkeypatch.setenv("WANLLM_URL", server.url)
    monkeypatch.setenv("WANLLM_TOKEN", server.token)
    return server


@pytest.fixture
def api(online: JupyterServerProcess) -> wl.Api:
    return wl.Api(online.url, online.token)
