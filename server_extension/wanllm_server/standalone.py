"""``wanllm server`` / ``jupyter wanllm``: the same extension on its own Jupyter server.

jupyter_server's standalone launch of :class:`~.app.WanllmApp` (no other
extensions, no browser, 127.0.0.1 and a free port unless told otherwise): the
same handlers, store, configuration (traitlets and ``WANLLM_*`` env), token auth,
live fan-out and cache as inside JupyterLab. Once serving, it writes its runtime
file (:func:`wanllm_jupyter.core.service.service_file`: url, token, pid,
database) for clients to find, and removes it on exit. With ``idle_timeout`` > 0
it exits after that many seconds without a request and with no live socket (a
running run heartbeats, so it keeps the service up). Its token opens wanllm's
routes only (:class:`WanllmOnly`): not Jupyter's kernels, terminals or files.
"""

from __future__ import annotations

import atexit
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_server.auth.authorizer import Authorizer

from wanllm_jupyter.core.service import read_json, runtime_dir, service_file, write_private

from .handlers.base import AUTH_RESOURCE

if TYPE_CHECKING:
    from jupyter_server.serverapp import ServerApp

    from .app import WanllmApp

DEFAULT_ARGS = (
    "--ServerApp.ip=127.0.0.1",
    "--ServerApp.port=0",
    "--ServerApp.port_retries=0",
    "--ServerApp.open_browser=False",
    "--ServerApp.authorizer_class=wanllm_server.standalone.WanllmOnly",
    "--WanllmApp.standalone=True",
)


class WanllmOnly(Authorizer):
    """Token holders may use wanllm's routes only: no kernels, terminals or files
    (a shared tracker must not hand out code execution on its host)."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return resource == AUTH_RESOURCE


class ServiceRuntime:
    """The runtime file and the idle exit of a standalone server."""

    def __init__(self, app: WanllmApp) -> None:
        self.app = app
        self.path: Path = service_file(app.database_url, runtime_dir())
        self._idle_check: Any = None

    @property
    def server(self) -> ServerApp:
        server = self.app.serverapp
        if server is None:
            raise RuntimeError("wanllm: the extension is not loaded into a server")
        return server

    def info(self) -> dict[str, Any]:
        server = self.server
        return {
            "url": server.connection_url,
            "token": server.identity_provider.token,
            "pid": os.getpid(),
            "database": self.app._safe_url(),
            "started": time.time(),
            "idle_timeout": self.app.idle_timeout,
        }

    def start(self) -> None:
        """Announce the service and, with an idle timeout, watch for idleness."""
        from tornado.ioloop import PeriodicCallback

        write_private(self.path, self.info())
        atexit.register(self.remove)
        self.app.log.info("wanllm: service for %s at %s", self.app._safe_url(), self.path)
        if self.app.idle_timeout > 0:
            every = min(max(self.app.idle_timeout / 4, 0.2), 30.0)
            self._idle_check = PeriodicCallback(self._check_idle, every * 1000)
            self._idle_check.start()

    def idle_seconds(self) -> float:
        """Seconds since the last request; 0 while a socket or request is open."""
        app = self.app
        if app.live.status().get("subscribers") or app.inflight.busy:
            return 0.0
        last = self.server.web_app.last_activity()
        return time.time() - last.timestamp()

    def _check_idle(self) -> None:
        idle = self.idle_seconds()
        if idle >= self.app.idle_timeout:
            self.app.log.info("wanllm: idle for %.0f s; the service exits", idle)
            self.stop()
            self.server.stop()

    def stop(self) -> None:
        if self._idle_check is not None:
            self._idle_check.stop()
            self._idle_check = None
        self.remove()

    def remove(self) -> None:
        """Remove the runtime file if it is still this process's."""
        info = read_json(self.path)
        if info is not None and info.get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the standalone server (``jupyter-wanllm`` console script, ``wanllm server``)."""
    # jsonschema's optional "iri" format checker (rfc3987-syntax) builds a grammar at
    # import: ~2 s of the service's start. jupyter_events' schemas do not need it.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    from .app import WanllmApp

    WanllmApp.load_other_extensions = False  # this process serves wanllm only
    args = list(sys.argv[1:] if argv is None else argv)
    WanllmApp.launch_instance(argv=[*DEFAULT_ARGS, *args])
    sys.exit(WanllmApp.exit_code)


if __name__ == "__main__":
    main()
