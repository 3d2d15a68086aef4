"""The local service: find the server of this user's database, or start one.

One standalone service (``wanllm server``) per user and database, found through
its runtime file (:mod:`.core.service`). When none answers, :func:`ensure`
starts one detached from this process (its own session, output to a log file in
the runtime dir) under an ``flock`` so that processes starting at once end up
with one service, and waits until its health endpoint answers. A SQLite database
already owned by another server (e.g. JupyterLab's extension) is used through
that owner instead. :class:`ServiceConnection` restarts the service when it has
gone away (killed, or exited when idle) and retries the request once.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ._http import Connection
from .core import service as core
from .core.errors import ServerError, ServerUnreachable, WanllmError

AUTOSTART_ENV = "WANLLM_AUTOSTART"
START_TIMEOUT = 30.0
PROBE_TIMEOUT = 2.0
RESTART_PAUSE = 2.0  # seconds between restart attempts of one connection
LOG_KEEP_BYTES = 1 << 20  # a longer service log is moved aside when a service starts

_lock = threading.Lock()
_children: list[subprocess.Popen[bytes]] = []


class ServiceError(WanllmError):
    """The local service could not be started (the message says why; see its log)."""


def autostart_enabled(autostart: bool | None = None) -> bool:
    """``autostart`` when given, else ``WANLLM_AUTOSTART`` (on unless ``0``/``false``/``no``)."""
    if autostart is not None:
        return autostart
    return os.environ.get(AUTOSTART_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def probe(
    url: str, token: str, *, owned_elsewhere_only: bool = False, timeout: float = PROBE_TIMEOUT
) -> Connection:
    """A connection to the wanllm server at ``url`` whose health endpoint answers;
    raises ``ServerUnreachable``/``ServerError``/``ValueError``, and ``ServerError``
    when its database is not available (``owned_elsewhere_only``: only when that is
    because another server owns it; a database that is merely down comes back)."""
    conn = Connection(url, token)
    health = conn.health(timeout=timeout)
    if not isinstance(health, dict) or "version" not in health:
        raise ServerError(200, "the health endpoint did not answer as a wanllm server")
    store = health.get("store") or {}
    error = str(store.get("error", "?"))
    if store.get("ok") is False and (core.OWNED_ELSEWHERE in error or not owned_elsewhere_only):
        raise ServerError(503, f"its database is not available: {error}")
    return conn


def token_of_pid(pid: Any, directory: Path) -> str | None:
    """The token of the server with ``pid`` recorded in ``directory`` (a wanllm
    service file or a Jupyter ``jpserver-*.json``)."""
    for path in (
        *directory.glob(f"{core.SERVICE_PREFIX}*.json"),
        *directory.glob("jpserver-*.json"),
    ):
        info = core.read_json(path)
        if info is not None and info.get("pid") == pid:
            return str(info.get("token") or "")
    return None


def find_local(db_url: str, directory: Path | None = None) -> tuple[Connection, str] | None:
    """The live server of ``db_url`` on this machine and how it was found: the owner
    of a SQLite file, else the service's runtime file. Stale records are skipped."""
    directory = directory or core.runtime_dir()
    info = core.read_json(core.service_file(db_url, directory))
    if info and core.pid_alive(info.get("pid")) and info.get("url"):
        try:
            return probe(info["url"], str(info.get("token") or "")), "local service"
        except (WanllmError, ValueError):
            pass  # stale: the pid was reused, or the port answers as something else
    path = core.sqlite_path(db_url)
    owner = core.read_owner(path) if path is not None else None
    if owner and owner.get("url") and core.pid_alive(owner.get("pid")):
        token = token_of_pid(owner.get("pid"), directory)
        if token is not None:
            try:
                return probe(owner["url"], token), f"the server owning {path}"
            except (WanllmError, ValueError):
                pass
    return None


def ensure(db_url: str | None = None, timeout: float = START_TIMEOUT) -> tuple[Connection, str]:
    """The server of ``db_url`` (default: this user's database), started if none
    runs; returns it with how it was found. Raises :class:`ServiceError`."""
    db_url = db_url or core.database_url()
    directory = core.runtime_dir()
    found = find_local(db_url, directory)
    if found is not None:
        return found
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock_path = directory / f"{core.SERVICE_PREFIX}{core.service_key(db_url)}.lock"
    with _lock, open(lock_path, "a") as lock:
        deadline = time.monotonic() + timeout
        while True:  # another process may hold it while it starts the service
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ServiceError(f"timed out waiting for {lock_path}") from None
                time.sleep(0.02)
        found = find_local(db_url, directory)  # started by whoever held the lock
        if found is not None:
            return found
        conn = _start(db_url, directory, deadline)
        return conn, "local service, started now"


def _start(db_url: str, directory: Path, deadline: float) -> Connection:
    """Start the service for ``db_url``; wait until it answers."""
    log_path = directory / f"{core.SERVICE_PREFIX}{core.service_key(db_url)}.log"
    if log_path.exists() and log_path.stat().st_size > LOG_KEEP_BYTES:
        log_path.replace(log_path.with_suffix(".log.1"))  # keep the last one beside
    _reap()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_", "WANLLM_URL"))}
    env["WANLLM_DATABASE_URL"] = db_url
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wanllm_server.standalone", "--allow-root"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=directory,
            env=env,
            start_new_session=True,  # outlives this process and its signals
        )
    _children.append(proc)
    service_path = core.service_file(db_url, directory)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            found = find_local(db_url, directory)  # it lost a race for the database
            if found is not None:
                return found[0]
            raise ServiceError(
                f"the wanllm service exited with status {proc.returncode}; "
                f"see {log_path}:\n{_tail(log_path)}"
            )
        info = core.read_json(service_path)
        if info is not None and info.get("pid") == proc.pid:
            try:
                return probe(info["url"], str(info.get("token") or ""))
            except (WanllmError, ValueError):
                pass
        time.sleep(0.02)
    raise ServiceError(
        f"the wanllm service did not answer within {START_TIMEOUT} s; see {log_path}"
    )


def _reap() -> None:
    """Collect services started here that have exited (no zombies)."""
    _children[:] = [p for p in _children if p.poll() is None]


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


class ServiceConnection(Connection):
    """A connection to the local service that restarts it when it has gone away."""

    def __init__(self, conn: Connection, db_url: str) -> None:
        super().__init__(conn.base_url, conn.token, timeout=conn.timeout)
        self._health = conn._health
        with conn._lock:  # its probe's connection
            self._idle.extend(conn._idle)
            conn._idle.clear()
        self.db_url = db_url
        self._last_restart = -float("inf")

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return super().request(method, path, **kwargs)
        except ServerUnreachable:
            if not self._rediscover():
                raise
        return super().request(method, path, **kwargs)

    def _rediscover(self) -> bool:
        """Point at the database's live server, starting one; False when that failed."""
        now = time.monotonic()
        if now - self._last_restart < RESTART_PAUSE:
            return False
        self._last_restart = now
        try:
            conn, _how = ensure(self.db_url)
        except (WanllmError, OSError):
            return False
        self.base_url, self.token, self._health = conn.base_url, conn.token, None
        self.close()
        return True
