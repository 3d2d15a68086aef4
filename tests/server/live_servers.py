"""Real ``jupyter server`` subprocesses sharing one database and one Redis
(the scale-out set-up: e.g. JupyterHub single-user servers), configured the
way a deployment is: through WANLLM_DATABASE_URL and WANLLM_REDIS_URL."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import urllib3

from tests.services import free_port

BASE_URL = "/user/wanllm/"  # not "/": every URL must honour base_url


class LiveServer:
    """``LiveServer(database_url, redis_url).start()``; ``.stop()`` when done."""

    def __init__(self, database_url: str, redis_url: str | None, *, lab: bool = False,
                 startup_timeout: float = 90.0) -> None:
        """``lab=False`` loads wanllm alone (faster start); True also JupyterLab
        and the other installed extensions, as a user's server does."""
        self.database_url, self.redis_url, self.lab = database_url, redis_url, lab
        self.startup_timeout = startup_timeout
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.http_url = f"http://127.0.0.1:{self.port}{BASE_URL}"
        self.ws_url = f"ws://127.0.0.1:{self.port}{BASE_URL}"
        self.dir = Path(tempfile.mkdtemp(prefix="wanllm-live-server-"))
        self.logfile = self.dir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def start(self) -> LiveServer:
        env = dict(os.environ, JUPYTER_PLATFORM_DIRS="1", WANLLM_DATABASE_URL=self.database_url,
                   JUPYTER_CONFIG_DIR=str(self.dir / "config"),
                   JUPYTER_RUNTIME_DIR=str(self.dir / "runtime"))
        env.pop("WANLLM_REDIS_URL", None)
        if self.redis_url:
            env["WANLLM_REDIS_URL"] = self.redis_url
        args = [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
                "--ip=127.0.0.1", f"--port={self.port}", f"--ServerApp.base_url={BASE_URL}",
                f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.dir}",
                "--ServerApp.jpserver_extensions={'wanllm_server': True}"]
        if not self.lab:
            others = ("jupyterlab", "jupyter_lsp", "jupyter_server_terminals", "notebook_shim")
            args[-1] = "--ServerApp.jpserver_extensions=" + repr(
                {"wanllm_server": True, **dict.fromkeys(others, False)})
        with open(self.logfile, "wb") as log:
            self.proc = subprocess.Popen(args, cwd=self.dir, env=env, stdout=log,
                                         stderr=subprocess.STDOUT)
        http = urllib3.PoolManager(retries=False, timeout=2.0)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter server exited:\n{self.log_tail()}")
            try:
                r = http.request("GET", self.http_url + "wanllm/api/v1/health",
                                 headers=self.headers)
                if r.status == 200:
                    return self
            except urllib3.exceptions.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"jupyter server not ready in {self.startup_timeout}s:\n"
                           f"{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        return self.logfile.read_text(errors="replace")[-chars:]

    def terminate(self) -> None:
        """Ask the server to shut down (gracefully); :meth:`stop` waits for it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
