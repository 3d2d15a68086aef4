"""Honest discovery: the kernel's parent Jupyter server before any other, a server
whose root holds the working directory, never an unrelated one; stale runtime
files and rejected tokens skipped with a message; one owner per SQLite file."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import urllib3
from jupyter_client import BlockingKernelClient

from tests.client.service_helpers import local, logging_to, service_pids
from tests.jupyter_process import JupyterServer
from wanllm_jupyter import _discovery, _service
from wanllm_jupyter.core import service as core

pytestmark = pytest.mark.slow
__all__ = ["local"]  # a fixture


class SharedRuntimeServer(JupyterServer):
    """A Jupyter server recording itself in a runtime dir shared with the test (as
    a user's servers do), without WANLLM_URL for its kernels."""

    def __init__(self, workdir: Path, runtime: Path, **kwargs: object) -> None:
        super().__init__(workdir, **kwargs)  # type: ignore[arg-type]
        self.runtime = runtime

    def env(self) -> dict[str, str]:
        env = super().env()
        env["JUPYTER_RUNTIME_DIR"] = str(self.runtime)
        for var in ("WANLLM_URL", "WANLLM_TOKEN"):
            env.pop(var, None)
        return env


class StartedAnyway(SharedRuntimeServer):
    """Ready once health answers, even when its database is not available."""

    def wait_ready(self) -> None:
        http = urllib3.PoolManager(retries=False, timeout=2.0)
        for _ in range(900):
            try:
                r = http.request("GET", self.url + "wanllm/api/v1/health", headers=self.headers)
                if r.status == 200:
                    return
            except urllib3.exceptions.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(self.log_tail())


def health_of(server: JupyterServer) -> dict[str, Any]:
    r = urllib3.request("GET", server.url + "wanllm/api/v1/health", headers=server.headers)
    return json.loads(r.data)


@pytest.fixture
def runtime(client_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(_discovery, "_announced", set())
    return client_env / "runtime"


@pytest.fixture
def two_servers(
    tmp_path_factory: pytest.TempPathFactory, runtime: Path
) -> Iterator[list[JupyterServer]]:
    servers = [
        SharedRuntimeServer(tmp_path_factory.mktemp("a"), runtime).start(),
        SharedRuntimeServer(tmp_path_factory.mktemp("b"), runtime).start(),
    ]
    yield servers
    for s in servers:
        s.stop()


IN_KERNEL = """
import os
os.chdir({other_root!r})  # a rule by working directory would pick the other server
import wanllm_jupyter as wl
run = wl.init(project="parent", system_metrics=False)
print("CONN", run.connection.base_url)
wl.finish()
"""


def test_the_kernels_parent_server_is_preferred(two_servers: list[JupyterServer]) -> None:
    other, parent = two_servers
    http = urllib3.PoolManager()
    r = http.request("POST", parent.url + "api/kernels", headers=parent.headers, body=b"{}")
    assert r.status == 201, r.data
    kernel_id = orjson.loads(r.data)["id"]
    kc = BlockingKernelClient(connection_file=str(parent.runtime / f"kernel-{kernel_id}.json"))
    kc.load_connection_file()
    # No heartbeat channel: a client without its kernel manager takes a heartbeat
    # missed for 1 s (time_to_dead) as a dead kernel, which a kernel still starting
    # on a loaded machine does ("Kernel died before replying to kernel_info"); the
    # kernel_info wait and the execute below have their own timeouts.
    kc.start_channels(hb=False)
    try:
        kc.wait_for_ready(timeout=60)
        out: list[str] = []
        reply = kc.execute_interactive(
            IN_KERNEL.format(other_root=str(other.root)),
            timeout=60,
            output_hook=lambda m: out.append(m["content"].get("text", "")),
        )
        assert reply["content"]["status"] == "ok", (reply["content"], out)
    finally:
        kc.stop_channels()
        http.request("DELETE", f"{parent.url}api/kernels/{kernel_id}", headers=parent.headers)
    text = "".join(out)
    assert logging_to(text) == (parent.url, "the kernel's parent Jupyter server")
    assert f"CONN {parent.url}" in text


def test_a_server_whose_root_holds_the_cwd_else_none(
    two_servers: list[JupyterServer],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a, b = two_servers
    (b.root / "project").mkdir()
    monkeypatch.chdir(b.root / "project")
    conn = _discovery.find_connection()
    assert conn is not None and conn.base_url == b.url
    assert logging_to(capsys.readouterr().out)[1].startswith("the Jupyter server whose root")
    monkeypatch.chdir(a.workdir)  # holds a's root, is not inside it: unrelated to both
    assert _discovery.find_connection(autostart=False) is None


def test_rejected_token_is_said_and_the_next_candidate_used(
    two_servers: list[JupyterServer],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a, b = two_servers
    monkeypatch.setenv("WANLLM_URL", a.url)
    monkeypatch.setenv("WANLLM_TOKEN", "not-the-token")
    monkeypatch.chdir(b.root)
    conn = _discovery.find_connection()
    assert conn is not None and conn.base_url == b.url
    out = capsys.readouterr().out
    assert f"wanllm: skipped {a.url} (WANLLM_URL): the token was rejected (403)" in out


class NotWanllm(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def foreign_port() -> Iterator[int]:
    """A port answering HTTP as something that is not wanllm."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotWanllm)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()


def test_stale_runtime_files_are_never_used(
    runtime: Path, local: str, foreign_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    path = core.service_file(local, runtime)
    core.write_private(path, {"url": "http://127.0.0.1:9/", "token": "t", "pid": 2**22 + 1})
    assert _service.find_local(local) is None  # dead pid
    reused = {"url": f"http://127.0.0.1:{foreign_port}/", "token": "t", "pid": os.getpid()}
    core.write_private(path, reused)
    assert _service.find_local(local) is None  # live pid, port answering as something else
    conn = _discovery.find_connection()  # so a service is started, and replaces the file
    assert conn is not None and str(foreign_port) not in conn.base_url
    assert logging_to(capsys.readouterr().out)[1] == "local service, started now"
    assert core.read_json(path)["url"] == conn.base_url  # type: ignore[index]
    for route in ("api/kernels", "api/contents", "api/sessions"):  # wanllm's routes only
        r = urllib3.request("GET", conn.base_url + route, headers=conn.headers())
        assert r.status == 403, (route, r.status)


def test_one_owner_per_sqlite_file(
    tmp_path_factory: pytest.TempPathFactory, runtime: Path, local: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # A Jupyter server owns the file: a standalone service for it refuses to start,
    # naming the owner, and clients use the owner.
    db = core.sqlite_path(local)
    owner = SharedRuntimeServer(tmp_path_factory.mktemp("owner"), runtime, database_url=local)
    with owner:
        expected = {"url": owner.url, "pid": owner.proc.pid, "kind": "jupyter"}  # type: ignore[union-attr]
        assert core.read_owner(db) == expected
        refused = subprocess.run(
            [sys.executable, "-m", "wanllm_server.standalone", "--allow-root"],
            env=dict(os.environ, WANLLM_DATABASE_URL=local), capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert refused.returncode == 3, refused.stderr[-2000:]
        assert f"{core.OWNED_ELSEWHERE} {owner.url}" in refused.stderr
        conn, how = _service.ensure(local)
        assert (conn.base_url, how) == (owner.url, f"the server owning {db}")
    # The service owns it: a Jupyter server started on it does not write it (its
    # health says who does); discovery skips it for the owner; when the service
    # exits, the Jupyter server takes the file over.
    conn, how = _service.ensure(local)
    assert how == "local service, started now"
    (service_pid,) = service_pids(runtime, local)
    second = StartedAnyway(tmp_path_factory.mktemp("second"), runtime, database_url=local)
    with second:
        health = health_of(second)
        assert health["store"]["ok"] is False and conn.base_url in health["store"]["error"]
        monkeypatch.setenv("WANLLM_URL", second.url)
        monkeypatch.setenv("WANLLM_TOKEN", second.token)
        found = _discovery.find_connection()
        assert found is not None and found.base_url == conn.base_url
        skipped = f"wanllm: skipped {second.url} (WANLLM_URL): its database is not available"
        assert skipped in capsys.readouterr().out
        os.kill(service_pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while not (health := health_of(second))["store"]["ok"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert health["store"]["ok"], health
        assert core.read_owner(db)["url"] == second.url  # type: ignore[index]
