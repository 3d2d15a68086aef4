"""Fixtures for the logging client: real ``jupyter server`` subprocesses with wanllm."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import wanllm_jupyter as wl
from tests.jupyter_process import JupyterServer
from wanllm_jupyter import _discovery, _lifecycle

BASE_URL = "/jp/"  # not "/": every URL must honour base_url


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """One SQLite-backed server shared by the tests that do not stop it."""
    proc = JupyterServer(tmp_path_factory.mktemp("jupyter"), base_url=BASE_URL).start()
    yield proc
    proc.stop()


@pytest.fixture
def make_server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Callable[..., JupyterServer]]:
    """Factory for a private server (``backend="sqlite"|"timescaledb"``, ``max_batch_size``)."""
    started: list[JupyterServer] = []

    def make(backend: str = "sqlite", **kwargs: object) -> JupyterServer:
        url = None
        if backend == "timescaledb":
            try:
                make_pg_database = request.getfixturevalue("make_pg_database")
            except pytest.FixtureLookupError:
                pytest.skip("make_pg_database fixture (tests/conftest.py) not available")
            url = make_pg_database(True, migrated=True)
        proc = JupyterServer(
            tmp_path_factory.mktemp("jupyter"),
            database_url=url,
            base_url=BASE_URL,
            **kwargs,  # type: ignore[arg-type]
        )
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
def online(server: JupyterServer, monkeypatch: pytest.MonkeyPatch) -> JupyterServer:
    """Point discovery at the shared server through WANLLM_URL/WANLLM_TOKEN."""
    monkeypatch.setenv("WANLLM_URL", server.url)
    monkeypatch.setenv("WANLLM_TOKEN", server.token)
    return server


@pytest.fixture
def api(online: JupyterServer) -> wl.Api:
    return wl.Api(online.url, online.token)


@pytest.fixture(params=["sqlite", "timescaledb"])
def any_server(
    request: pytest.FixtureRequest, make_server: Callable[..., JupyterServer]
) -> JupyterServer:
    """The shared SQLite server, or a private one on a fresh TimescaleDB database."""
    if request.param == "sqlite":
        return request.getfixturevalue("server")
    return make_server("timescaledb")
