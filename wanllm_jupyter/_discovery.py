"""Find the wanllm server to talk to.

Resolution order: :func:`login` (``wl.login(url, token)``) → the
``WANLLM_URL``/``WANLLM_TOKEN`` environment variables → inside a Jupyter kernel,
the ``jpserver-*.json`` files of ``jupyter_runtime_dir()`` (the entry whose
``pid`` equals ``JPY_PARENT_PID`` first, then any other live server). Each
candidate is probed with ``GET wanllm/api/v1/health``; none answering → ``None``
(the client then works offline). Only ``jupyter_core`` and ``json`` are used for
the scan, so importing this stays cheap.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._http import Connection
from .errors import WanllmError

_login: tuple[str, str] | None = None
PROBE_TIMEOUT = 2.0


def login(url: str, token: str = "") -> Connection:
    """Use the server at ``url`` (its base URL) with ``token`` from now on; return it.

    Raises :class:`~wanllm_jupyter.errors.ServerUnreachable` or ``ServerError`` when
    the server does not answer its health endpoint.
    """
    conn = Connection(url, token)
    conn.health(refresh=True, timeout=PROBE_TIMEOUT)
    global _login
    _login = (conn.base_url, token)
    return conn


def logout() -> None:
    """Forget the server given to :func:`login`."""
    global _login
    _login = None


def candidates() -> Iterator[tuple[str, str]]:
    """``(base_url, token)`` pairs to try, best first."""
    if _login is not None:
        yield _login
    env_url = os.environ.get("WANLLM_URL")
    if env_url:
        yield env_url, os.environ.get("WANLLM_TOKEN", "")
    yield from jupyter_servers()


def jupyter_servers(runtime_dir: str | os.PathLike[str] | None = None) -> Iterator[tuple[str, str]]:
    """``(url, token)`` of the live Jupyter servers recorded in ``runtime_dir``,
    the kernel's parent server (``JPY_PARENT_PID``) first."""
    if runtime_dir is None:
        from jupyter_core.paths import jupyter_runtime_dir

        runtime_dir = jupyter_runtime_dir()
    infos = [info for info in _read_infos(Path(runtime_dir)) if _pid_alive(info.get("pid"))]
    parent = os.environ.get("JPY_PARENT_PID", "")
    infos.sort(key=lambda i: str(i.get("pid")) != parent)
    for info in infos:
        url = info.get("url")
        if not url or info.get("sock"):
            continue  # unix-socket servers are not reachable over TCP
        token = info.get("token") or os.environ.get("JUPYTERHUB_API_TOKEN", "")
        yield url, token


def find_connection() -> Connection | None:
    """The first candidate server whose wanllm extension answers, or ``None``."""
    for url, token in candidates():
        try:
            conn = Connection(url, token)
            conn.health(timeout=PROBE_TIMEOUT)
        except (WanllmError, ValueError):
            continue
        return conn
    return None


def _read_infos(runtime_dir: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(runtime_dir.glob("jpserver-*.json")):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # half-written or unreadable
        if isinstance(info, dict):
            yield info


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
