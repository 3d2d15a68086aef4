"""A real ``jupyter server`` subprocess with wanllm enabled (SQLite in a temp dir).

Used by the widget and notebook tests: the widgets make blocking HTTP calls,
so the server must run in another process, not in the test's event loop.
"""

from __future__ import annotations

import atexit
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import urllib3

# Until the live engineer's ``wanllm_server.ws`` lands, serve without WebSockets.
_LAUNCH = """
import importlib.util, sys, types
if importlib.util.find_spec("wanllm_server.ws") is None:
    m = types.ModuleType("wanllm_server.ws"); m.ws_handlers = []; sys.modules["wanllm_server.ws"] = m
from jupyter_server.serverapp import main
sys.exit(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class JupyterServer:
    """``with JupyterServer() as srv: srv.url, srv.token``; or :meth:`shared`."""

    _shared: JupyterServer | None = None

    @classmethod
    def shared(cls) -> JupyterServer:
        """One server per test process, shared by every test directory that asks
        (started on first use, stopped at exit)."""
        if cls._shared is None:
            cls._shared = cls().start()
            atexit.register(cls._shared.stop)
        return cls._shared

    def __init__(self, *, app: str = "server", startup_timeout: float = 90.0) -> None:
        self.app, self.startup_timeout = app, startup_timeout
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.dir = Path(tempfile.mkdtemp(prefix="wanllm-jupyter-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        env = dict(os.environ, JUPYTER_PLATFORM_DIRS="1",
                   JUPYTER_RUNTIME_DIR=str(self.dir / "runtime"), WANLLM_URL=self.url,
                   WANLLM_TOKEN=self.token)
        return env

    def start(self) -> JupyterServer:
        launcher = [sys.executable, "-c", _LAUNCH] if self.app == "server" else [
            sys.executable, "-m", "jupyterlab"]
        args = [
            "--no-browser", "--allow-root", f"--port={self.port}", "--ip=127.0.0.1",
            f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.dir}",
            "--ServerApp.jpserver_extensions={'wanllm_server': True}",
            f"--WanllmApp.database_url=sqlite:///{self.dir}/wanllm.db",
        ]
        self.log = open(self.dir / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([*launcher, *args], cwd=self.dir, env=self.env(),
                                     stdout=self.log, stderr=subprocess.STDOUT)
        http = urllib3.PoolManager(retries=False, timeout=2.0)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter server exited: {(self.dir / 'server.log').read_text()[-3000:]}")
            try:
                r = http.request("GET", self.url + "wanllm/api/v1/health",
                                 headers={"Authorization": f"token {self.token}"})
                if r.status == 200:
                    return self
            except urllib3.exceptions.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"jupyter server did not answer within {self.startup_timeout}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()

    def __enter__(self) -> JupyterServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
