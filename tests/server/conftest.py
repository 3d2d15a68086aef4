"""pytest-jupyter fixtures for the server extension: a real Jupyter server with
wanllm enabled, auth required, on SQLite (tmp dir) or TimescaleDB."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from tornado.httpclient import HTTPResponse

API = "wanllm/api/v1/"
Api = Callable[..., Awaitable[HTTPResponse]]


@pytest.fixture(params=["sqlite", "timescaledb"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/wanllm.db"
    try:
        make_pg_database = request.getfixturevalue("make_pg_database")
    except pytest.FixtureLookupError:
        pytest.skip("make_pg_database fixture (tests/conftest.py) not available yet")
    return make_pg_database(True, migrated=True)  # migrating is tests/store's job


@pytest.fixture
def wanllm_config() -> dict[str, Any]:
    """Extra ``c.WanllmApp`` settings; override in a test module or via parametrize."""
    return {}


@pytest.fixture
def jp_server_config(database_url: str, wanllm_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "ServerApp": {
            "jpserver_extensions": {"wanllm_server": True},
            "allow_unauthenticated_access": False,
        },
        "WanllmApp": {"database_url": database_url, "redis_url": None, **wanllm_config},
    }


@pytest.fixture
def wanllm_app(jp_serverapp: Any) -> Any:
    """The running WanllmApp instance."""
    return jp_serverapp.web_app.settings["wanllm_app"]


@pytest.fixture
def api(
    jp_serverapp: Any, http_server_client: Any, jp_auth_header: dict[str, str], jp_base_url: str
) -> Api:
    """``await api(method, path, body=, params=, headers=, auth=True)`` → response
    (never raises on error statuses). ``path`` is used raw, relative to the API root."""

    async def call(
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> HTTPResponse:
        url = jp_base_url + API + path
        if params:
            url += "?" + urlencode(params, doseq=True)
        hdrs = {**(jp_auth_header if auth else {}), **(headers or {})}
        if body is not None and not isinstance(body, bytes):
            body = orjson.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        if body is None and method in ("POST", "PATCH", "PUT"):
            body = b""
        return await http_server_client.fetch(
            url,
            method=method,
            body=body,
            headers=hdrs,
            raise_error=False,
            allow_nonstandard_methods=True,
            request_timeout=60,
        )

    return call
