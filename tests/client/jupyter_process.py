"""A real ``jupyter server`` subprocess with the wanllm extension, for client tests.

Each instance has its own root/runtime dirs, port and token, so a test can kill
it (SIGKILL, like a crash) and start it again on the same port and database.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson
import urllib3

# Runs the server; stands in an empty wanllm_server.ws until the live engineer's module lands.
LAUNCHER = """
import importlib.util, sys, types
if importlib.util.find_spec("wanllm_server.ws") is None:
    ws = types.ModuleType("wanllm_server.ws"); ws.ws_handlers = []
    sys.modules["wanllm_server.ws"] = ws
from jupyter_server.serverapp import ServerApp
ServerApp.launch_instance()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class JupyterServerProcess:
    """``start()``, ``kill()`` (SIGKILL), ``stop()`` (SIGTERM), ``restart()``; ``url``, ``token``."""

    def __init__(
        self,
        workdir: Path,
        database_url: str | None = None,
        token: str = "test-token",
        base_url: str = "/jp/",
        max_batch_size: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.root = workdir / "root"
        self.runtime_dir = workdir / "runtime"
        self.database_url = database_url or f"sqlite:///{workdir}/wanllm.db"
        self.token, self.base_url = token, base_url
        self.max_batch_size = max_batch_size
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_url}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "JUPYTER_RUNTIME_DIR": str(self.runtime_dir),
            "JUPYTER_PLATFORM_DIRS": "1",
            "JUPYTER_CONFIG_DIR": str(self.workdir / "config"),
        }

    def start(self, timeout: float = 60.0) -> JupyterServerProcess:
        self.root.mkdir(parents=True, exist_ok=True)
        args = [
            sys.executable,
            "-c",
            LAUNCHER,
            "--no-browser",
            "--allow-root",
            f"--port={self.port}",
            "--ip=127.0.0.1",
            "--port-retries=0",
            f"--ServerApp.base_url={self.base_url}",
            f"--ServerApp.root_dir={self.root}",
            f"--IdentityProvider.token={self.token}",
            "--ServerApp.jpserver_extensions={'wanllm_server': True, 'jupyterlab': False, "
            "'jupyter_lsp': False, 'notebook_shim': False, 'jupyter_server_terminals': False}",
            f"--WanllmApp.database_url={self.database_url}",
        ]
        if self.max_batch_size:
            args.append(f"--WanllmApp.max_batch_size={self.max_batch_size}")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            args, env=self.env(), stdout=log, stderr=subprocess.STDOUT, cwd=self.root
        )
        log.close()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        http = urllib3.PoolManager(retries=False, timeout=2.0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"jupyter server exited: {self.log_path.read_text()[-3000:]}")
            try:
                r = http.request(
                    "GET",
                    self.url + "wanllm/api/v1/health",
                    headers={"Authorization": f"token {self.token}"},
                )
                if r.status == 200 and orjson.loads(r.data)["store"].get("ok", True):
                    return
            except urllib3.exceptions.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"jupyter server not ready: {self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: the server dies like a crashed process."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()
