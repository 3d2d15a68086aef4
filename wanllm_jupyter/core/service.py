"""Where a wanllm server says where it is: the rules the server and the client share.

- The default database: SQLite in the Jupyter data dir (``WANLLM_DATABASE_URL``
  overrides it).
- A standalone service announces itself with a runtime file
  ``wanllm-service-<key>.json`` in the Jupyter runtime dir (``url``, ``token``,
  ``pid``, ``database``; mode 0600), one per database (``key`` hashes its URL).
- A SQLite database has one owning server: the server holding an exclusive
  ``flock`` on ``<db>.owner``, which holds the owner's ``{"url", "pid", "kind"}``.
  PostgreSQL databases have no owner: any number of servers share them.

Only the standard library and ``jupyter_core`` are used.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Any

SERVICE_PREFIX = "wanllm-service-"
OWNED_ELSEWHERE = "is owned by the wanllm server at"  # in the refusal every client sees


def default_database_url() -> str:
    """The embedded SQLite file in the Jupyter data dir."""
    from jupyter_core.paths import jupyter_data_dir

    return f"sqlite:///{jupyter_data_dir()}/wanllm/wanllm.db"


def database_url() -> str:
    """``WANLLM_DATABASE_URL``, else the default SQLite file."""
    return os.environ.get("WANLLM_DATABASE_URL") or default_database_url()


def runtime_dir() -> Path:
    """The Jupyter runtime dir: ``JUPYTER_RUNTIME_DIR`` when set (jupyter_core's own
    first rule, read here without importing it: ~5 ms of a new process's first
    ``init()``), else ``jupyter_core.paths.jupyter_runtime_dir()``."""
    if os.environ.get("JUPYTER_RUNTIME_DIR"):
        return Path(os.environ["JUPYTER_RUNTIME_DIR"])
    from jupyter_core.paths import jupyter_runtime_dir

    return Path(jupyter_runtime_dir())


def service_key(db_url: str) -> str:
    """A short stable key of a database URL (file names carry it, not the URL)."""
    return hashlib.sha256(db_url.encode()).hexdigest()[:16]


def service_file(db_url: str, directory: Path | None = None) -> Path:
    """The runtime file of the standalone service for ``db_url``."""
    return (directory or runtime_dir()) / f"{SERVICE_PREFIX}{service_key(db_url)}.json"


def sqlite_path(db_url: str) -> Path | None:
    """The file of a SQLite URL (``sqlite:///abs`` or a plain path); None for PostgreSQL."""
    if db_url.startswith(("postgresql://", "postgres://")):
        return None
    path = db_url.removeprefix("sqlite://")
    return Path("/" + path.lstrip("/") if path.startswith("/") else path)


def owner_file(db_path: Path) -> Path:
    """The lock file naming the server that owns the SQLite file ``db_path``."""
    return db_path.with_name(db_path.name + ".owner")


def write_private(path: Path, info: dict[str, Any]) -> None:
    """Write ``info`` as JSON to ``path`` atomically, readable by this user only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(info, f)
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when missing, half-written or not an object."""
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def read_owner(db_path: Path) -> dict[str, Any] | None:
    """The owner of the SQLite file ``db_path`` while a server holds its lock, else None."""
    path = owner_file(db_path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:  # held: an owner is alive
            return read_json(path) or {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def pid_alive(pid: Any) -> bool:
    """True when ``pid`` names a live process (of any user)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
