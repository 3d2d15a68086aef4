"""Find the wanllm server to talk to, and say once where that is.

Order (the first that answers its health endpoint as a wanllm server with a
working database wins):

1. explicit: :func:`login` (``wl.login(url, token)``), then ``WANLLM_URL`` /
   ``WANLLM_TOKEN``;
2. the kernel's own parent Jupyter server: the ``jpserver-*.json`` of the
   Jupyter runtime dir whose ``pid`` is ``JPY_PARENT_PID`` or this process's
   parent, or whose kernels include this kernel (its connection file's id);
3. a Jupyter server whose root dir contains the working directory (the
   deepest root first);
4. the local service of this user's database (``WANLLM_DATABASE_URL``, default
   SQLite in the Jupyter data dir): the server owning that SQLite file, else the
   standalone service's runtime file, else a service started now
   (:mod:`._service`; off with ``WANLLM_AUTOSTART=0`` or ``autostart=False``).

Unrelated servers are never picked. A candidate that does not answer, rejects
the token, or is not a wanllm server is skipped with a one-line message; the
chosen server is announced once per process on one line of stdout.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _service
from ._http import Connection
from .core import service as core
from .core.errors import ServerError, WanllmError

_login: tuple[str, str] | None = None
_announced: set[str] = set()  # URLs announced and lines said (once per process)
PROBE_TIMEOUT = _service.PROBE_TIMEOUT


@dataclass(frozen=True)
class Candidate:
    """A server to try: its base URL, token, and how it was found."""

    url: str
    token: str
    how: str


def login(url: str, token: str = "") -> Connection:
    """Use the server at ``url`` (its base URL) with ``token`` from now on; return it.

    Raises :class:`~wanllm_jupyter.core.errors.ServerUnreachable` or ``ServerError`` when
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


def candidates(runtime_dir: Path | None = None) -> Iterator[Candidate]:
    """The servers to try before the local service, best first."""
    if _login is not None:
        yield Candidate(*_login, "wl.login")
    env_url = os.environ.get("WANLLM_URL")
    if env_url:
        yield Candidate(env_url, os.environ.get("WANLLM_TOKEN", ""), "WANLLM_URL")
    yield from jupyter_servers(runtime_dir)


def jupyter_servers(runtime_dir: Path | None = None) -> Iterator[Candidate]:
    """The kernel's parent Jupyter server, then those whose root contains the cwd."""
    directory = Path(runtime_dir) if runtime_dir is not None else core.runtime_dir()
    infos = [i for i in _read_infos(directory) if core.pid_alive(i.get("pid"))]
    services = {
        (core.read_json(p) or {}).get("pid") for p in directory.glob(f"{core.SERVICE_PREFIX}*.json")
    }
    infos = [i for i in infos if i.get("pid") not in services and i.get("url")]
    infos = [i for i in infos if not i.get("sock")]  # unix sockets: not reachable over TCP
    parent = _parent(infos)
    if parent is not None:
        yield _candidate(parent, "the kernel's parent Jupyter server")
    cwd = Path.cwd().resolve()
    roots = []
    for info in infos:
        root = info.get("root_dir") or info.get("notebook_dir")
        if info is parent or not root:
            continue
        try:
            root_path = Path(root).expanduser().resolve()
        except OSError:
            continue
        if cwd == root_path or root_path in cwd.parents:
            roots.append((len(root_path.parts), info))
    for _, info in sorted(roots, key=lambda r: -r[0]):
        yield _candidate(
            info, f"the Jupyter server whose root {info.get('root_dir')} holds the cwd"
        )


def find_connection(autostart: bool | None = None, *, quiet: bool = False) -> Connection | None:
    """The server to log to (see the module doc), or ``None`` when there is none.

    ``autostart``: start the local service when none runs (default ``WANLLM_AUTOSTART``)."""
    for cand in candidates():
        try:
            conn = _service.probe(cand.url, cand.token, owned_elsewhere_only=True)
        except (WanllmError, ValueError) as exc:
            _say(f"wanllm: skipped {cand.url} ({cand.how}): {_reason(exc)}", quiet)
            continue
        _announce(conn, cand.how, quiet)
        return conn
    db_url, start = core.database_url(), _service.autostart_enabled(autostart)
    try:
        found = _service.ensure(db_url) if start else _service.find_local(db_url)
    except (WanllmError, OSError) as exc:
        _say(f"wanllm: no server: the local service could not start: {exc}", quiet)
        return None
    if found is None:
        return None
    conn, how = found
    if start and how.startswith("local service"):
        conn = _service.ServiceConnection(conn, db_url)
    _announce(conn, how, quiet)
    return conn


def _announce(conn: Connection, how: str, quiet: bool) -> None:
    if conn.base_url not in _announced:
        _announced.add(conn.base_url)
        _say(f"wanllm: logging to {conn.base_url} ({how})", quiet)


def _say(line: str, quiet: bool) -> None:
    """Print ``line`` on stdout, once per process."""
    if not quiet and line not in _announced:
        _announced.add(line)
        print(line, file=sys.stdout, flush=True)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ServerError) and exc.status in (401, 403):
        return f"the token was rejected ({exc.status})"
    if isinstance(exc, ServerError) and exc.status == 404:
        return "no wanllm extension there (404)"
    text = getattr(exc, "message", None) or str(exc)
    return str(text).splitlines()[0] if text else type(exc).__name__


def _candidate(info: dict[str, Any], how: str) -> Candidate:
    token = info.get("token") or os.environ.get("JUPYTERHUB_API_TOKEN", "")
    return Candidate(str(info["url"]), str(token), how)


def _parent(infos: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The entry of the server that started this kernel, if it is listed."""
    declared = os.environ.get("JPY_PARENT_PID", "")
    for pid in (int(declared) if declared.isdigit() else None, os.getppid()):
        for info in infos:
            if pid is not None and info.get("pid") == pid:
                return info
    kernel_id = _kernel_id()
    if kernel_id is None:
        return None
    for info in infos:
        if kernel_id in _kernel_ids(info):
            return info
    return None


def _kernel_id() -> str | None:
    """This kernel's id, from its connection file name (``kernel-<id>.json``)."""
    if "ipykernel" not in sys.modules:
        return None
    try:
        from ipykernel.connect import get_connection_file

        name = Path(get_connection_file()).name
    except Exception:
        return None
    return (
        name.removeprefix("kernel-").removesuffix(".json") if name.startswith("kernel-") else None
    )


def _kernel_ids(info: dict[str, Any]) -> set[str]:
    """The ids of the kernels a Jupyter server runs (empty when it does not say)."""
    try:
        conn = Connection(str(info["url"]), str(info.get("token") or ""), timeout=PROBE_TIMEOUT)
        return {k.get("id") for k in conn.get_json("api/kernels") or []}
    except (WanllmError, ValueError, AttributeError):
        return set()


def _read_infos(runtime_dir: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(runtime_dir.glob("jpserver-*.json")):
        info = core.read_json(path)
        if info is not None:
            yield info
