"""A real ``jupyter server`` subprocess with the wanllm extension, for tests and benchmarks.

Each instance has its own work dir (root, runtime and config dirs, log), port and
token; the database and Redis are configured the way a deployment does it,
through WANLLM_DATABASE_URL and WANLLM_REDIS_URL. A test can kill the server
(SIGKILL, like a crash) and start it again on the same port and database.
The widgets make blocking HTTP calls, so their server must run in another
process, not in the test's event loop; :meth:`JupyterServer.shared` gives one
per test process.
"""

from __future__ import annotations

import atexit
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
import urllib3

from tests.services import free_port

_OTHER_EXTENSIONS = ("jupyterlab", "jupyter_lsp", "jupyter_server_terminals", "notebook_shim")


class JupyterServer:
    """``start()``, ``kill()`` (SIGKILL), ``terminate()``, ``stop()``, ``restart()``;
    ``url``, ``ws_url``, ``token``, ``headers``; also a context manager."""

    _shared: JupyterServer | None = None

    @classmethod
    def shared(cls) -> JupyterServer:
        """One server per test process (SQLite, all installed extensions), shared by
        every test directory that asks; started on first use, stopped at exit."""
        if cls._shared is None:
            cls._shared = cls(lab=True).start()
            atexit.register(cls._shared.stop)
        return cls._shared

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        database_url: str | None = None,
        redis_url: str | None = None,
        token: str | None = None,
        base_url: str = "/",
        lab: bool = False,
        max_batch_size: int | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 90.0,
    ) -> None:
        """``database_url`` defaults to SQLite in ``workdir`` (a temp dir by default);
        ``lab=False`` loads wanllm alone (faster start), True also JupyterLab and the
        other installed extensions, as a user's server does; ``extra_args`` go to
        ``jupyter server`` (e.g. ``["--ServerApp.log_level=WARN"]``)."""
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="wanllm-jupyter-"))
        self.root = self.workdir / "root"
        self.log_path = self.workdir / "server.log"
        self.database_url = database_url or f"sqlite:///{self.workdir}/wanllm.db"
        self.redis_url, self.lab = redis_url, lab
        self.token = token or secrets.token_hex(16)
        self.base_url, self.max_batch_size = base_url, max_batch_size
        self.extra_args, self.startup_timeout = list(extra_args), startup_timeout
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_url}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.base_url}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def env(self) -> dict[str, str]:
        env = dict(
            os.environ,
            JUPYTER_PLATFORM_DIRS="1",
            JUPYTER_RUNTIME_DIR=str(self.workdir / "runtime"),
            JUPYTER_CONFIG_DIR=str(self.workdir / "config"),
            WANLLM_DATABASE_URL=self.database_url,
            WANLLM_URL=self.url,  # for kernels the server starts
            WANLLM_TOKEN=self.token,
        )
        env.pop("WANLLM_REDIS_URL", None)
        if self.redis_url:
            env["WANLLM_REDIS_URL"] = self.redis_url
        return env

    def args(self) -> list[str]:
        extensions = {"wanllm_server": True}
        if not self.lab:
            extensions.update(dict.fromkeys(_OTHER_EXTENSIONS, False))
        args = [
            sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
            "--ip=127.0.0.1", f"--port={self.port}", "--port-retries=0",
            f"--ServerApp.base_url={self.base_url}", f"--ServerApp.root_dir={self.root}",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.jpserver_extensions={extensions!r}",
        ]  # fmt: skip
        if self.max_batch_size:
            args.append(f"--WanllmApp.max_batch_size={self.max_batch_size}")
        return args + self.extra_args

    def start(self) -> JupyterServer:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.args(), cwd=self.root, env=self.env(), stdout=log, stderr=subprocess.STDOUT
            )
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self) -> None:
        """Until the health endpoint answers 200 with a working store."""
        http = urllib3.PoolManager(retries=False, timeout=2.0)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"jupyter server exited:\n{self.log_tail()}")
            try:
                r = http.request("GET", self.url + "wanllm/api/v1/health", headers=self.headers)
                if r.status == 200 and orjson.loads(r.data)["store"].get("ok", True):
                    return
            except urllib3.exceptions.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(
            f"jupyter server not ready in {self.startup_timeout}s:\n{self.log_tail()}"
        )

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def kill(self) -> None:
        """SIGKILL: the server dies like a crashed process."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

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

    def restart(self) -> None:
        self.kill()
        self.start()

    def __enter__(self) -> JupyterServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
