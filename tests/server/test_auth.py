"""Jupyter auth on every wanllm route: nothing is reachable without a token."""

from __future__ import annotations

import re

import pytest
from jupyter_server.utils import JupyterServerAuthWarning

from tests.server.server_helpers import body, wanllm_routes

METHODS = ("get", "post", "put", "patch", "delete")
SAMPLE_GROUPS = {  # route group → a sample path value
    r"\((\?P<\w+>)?\[\^/\]\+\)": "00000000-0000-4000-8000-000000000000",
    r"\((\?P<\w+>)?\.\+\)": "train/loss",
    r"\(\.\+\?\)": "samples/a",  # {key}
    r"\(\[\^/\]\*\)": "0" * 64,  # {digest}
}


@pytest.fixture
def backend() -> str:
    return "sqlite"  # auth does not depend on the store


def sample_path(pattern: str) -> str:
    path = pattern.rstrip("$")
    for group, sample in SAMPLE_GROUPS.items():
        path = re.sub(group, sample, path)
    return path.replace("\\.", ".")


async def test_every_route_is_403_without_token(jp_serverapp, http_server_client):
    routes = wanllm_routes(jp_serverapp)
    assert len(routes) >= 15, routes
    checked = 0
    for pattern, handler in routes:
        path = sample_path(pattern)
        assert re.fullmatch(pattern, path), (pattern, path)
        for method in METHODS:
            if getattr(handler, method) is getattr(handler.__mro__[-2], method, None):
                continue  # not implemented by this handler (tornado's default)
            for headers in ({}, {"Authorization": "token wrong"}):
                resp = await http_server_client.fetch(
                    path,
                    method=method.upper(),
                    headers=headers,
                    raise_error=False,
                    body=b"{}" if method in ("post", "put", "patch") else None,
                    allow_nonstandard_methods=True,
                )
                assert resp.code == 403, (method, path, headers, resp.code)
                checked += 1
    assert checked >= 2 * 17


async def test_403_body_is_json_error(api):
    resp = await api("GET", "health", auth=False)
    assert resp.code == 403 and body(resp) == {"message": "Forbidden", "errors": []}


def test_no_auth_warning_for_wanllm_handlers(recwarn, jp_serverapp):
    auth_warnings = [
        str(w.message) for w in recwarn if issubclass(w.category, JupyterServerAuthWarning)
    ]
    assert not [m for m in auth_warnings if "wanllm" in m.lower()], auth_warnings
    for pattern, handler in wanllm_routes(jp_serverapp):
        assert jp_serverapp.web_app._check_handler_auth(pattern, handler) == [], pattern
