"""Throwaway PostgreSQL (+ TimescaleDB) clusters and Redis servers for tests.

Every instance lives in its own temporary directory, listens on a free TCP port
on 127.0.0.1 and is completely independent of the machine's system services
(PostgreSQL on 5432, Redis on 6379), so fault-injection tests can crash and
restart them freely.

    with PostgresCluster() as pg:           # initdb + start
        dsn = pg.create_database("runs")    # postgresql://postgres@127.0.0.1:PORT/runs
        pg.stop("immediate")                # simulated crash
        pg.start()                          # crash recovery, same port

    with RedisServer(appendonly=True) as r:
        r.url                               # redis://127.0.0.1:PORT/0
        r.restart()                         # SIGKILL + start on the same port

The PostgreSQL binaries come from ``pg_config --bindir`` (falling back to the
newest ``/usr/lib/postgresql/NN/bin``); override with ``WANLLM_PG_BINDIR``.
Server binaries refuse to run as root, so when the euid is 0 they are run as
the ``postgres`` OS user through ``runuser`` and the temp directory is chowned.

This module deliberately does not import pytest: it is usable from scripts too.
Missing software raises :class:`ServiceUnavailable` whose message says to run
``scripts/provision``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

__all__ = [
    "PostgresCluster",
    "RedisServer",
    "ServiceUnavailable",
    "free_port",
    "pg_bindir",
    "timescaledb_installed",
]

PROVISION_HINT = "run `scripts/provision` (as root) to install it"
HOST = "127.0.0.1"


class ServiceUnavailable(RuntimeError):
    """Required software (PostgreSQL, TimescaleDB, Redis) is not installed."""


def free_port(host: str = HOST) -> int:
    """Return a TCP port on ``host`` that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------- PostgreSQL


def pg_bindir() -> Path:
    """Directory holding ``initdb``/``pg_ctl``/``postgres`` for the installed server."""
    env = os.environ.get("WANLLM_PG_BINDIR")
    if env:
        return Path(env)
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(
            ["pg_config", "--bindir"], check=True, capture_output=True, text=True
        ).stdout.strip()
        # Debian's /usr/bin/pg_config (libpq-dev only) reports /usr/bin: no initdb.
        if out and (Path(out) / "initdb").is_file():
            return Path(out)
    candidates = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").is_file()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else -1,
    )
    if candidates:
        return candidates[-1]
    raise ServiceUnavailable(f"PostgreSQL server binaries (initdb) not found: {PROVISION_HINT}")


def timescaledb_installed(bindir: Path | None = None) -> bool:
    """True if ``timescaledb.control`` exists in that server's extension dir."""
    bindir = bindir or pg_bindir()
    pg_config = bindir / "pg_config"
    sharedir: Path | None = None
    if pg_config.is_file():
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            sharedir = Path(
                subprocess.run(
                    [str(pg_config), "--sharedir"], check=True, capture_output=True, text=True
                ).stdout.strip()
            )
    if sharedir is None:  # Debian layout: /usr/lib/postgresql/NN/bin -> /usr/share/postgresql/NN
        sharedir = Path("/usr/share/postgresql") / bindir.parent.name
    return (sharedir / "extension" / "timescaledb.control").is_file()


def _as_postgres_prefix() -> list[str]:
    """Command prefix that drops root to the ``postgres`` user (empty if not root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise ServiceUnavailable(
            f"running as root but no `postgres` OS user: {PROVISION_HINT}"
        ) from exc
    return ["runuser", "-u", "postgres", "--"]


def _pg_ctl_stop(prefix: Sequence[str], pg_ctl: Path, datadir: Path, mode: str) -> None:
    """Stop a server if it is running; used by methods and by the GC finalizer."""
    if not (datadir / "postmaster.pid").exists():
        return
    subprocess.run(
        [*prefix, str(pg_ctl), "-D", str(datadir), "-m", mode, "-w", "-t", "60", "stop"],
        capture_output=True,
        text=True,
        check=False,
    )


def _finalize_pg(prefix: Sequence[str], pg_ctl: Path, datadir: Path, root: Path) -> None:
    _pg_ctl_stop(prefix, pg_ctl, datadir, "immediate")
    shutil.rmtree(root, ignore_errors=True)


def _run_initdb(bindir: Path, prefix: Sequence[str], datadir: Path) -> None:
    r = subprocess.run(
        [
            *prefix, str(bindir / "initdb"),
            "-D", str(datadir),
            "-U", "postgres",
            "-A", "trust",
            "-E", "UTF8",
            "--no-locale",
            "--no-instructions",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )  # fmt: skip
    if r.returncode != 0:
        raise RuntimeError(f"initdb failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")


_TEMPLATES: dict[str, Path] = {}
_TEMPLATE_LOCK = threading.Lock()


def _template_datadir(bindir: Path, prefix: Sequence[str]) -> Path:
    """A pristine initdb'd data dir, made once per process and copied for each cluster.

    initdb costs 2-4 s on these machines; ``cp -a`` of its result costs ~0.1 s.
    Removed at interpreter exit.
    """
    with _TEMPLATE_LOCK:
        cached = _TEMPLATES.get(str(bindir))
        if cached is not None and (cached / "PG_VERSION").is_file():
            return cached
        root = Path(tempfile.mkdtemp(prefix="wanllm-pg-template-"))
        atexit.register(shutil.rmtree, root, True)
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        datadir = root / "data"
        _run_initdb(bindir, prefix, datadir)
        _TEMPLATES[str(bindir)] = datadir
        return datadir


StopMode = Literal["smart", "fast", "immediate"]


class PostgresCluster:
    """A throwaway PostgreSQL cluster (initdb in a temp dir) on 127.0.0.1:<free port>.

    Authentication is ``trust`` for everything; the superuser is ``postgres``.
    Durability settings stay at their safe defaults (``fsync=on``,
    ``synchronous_commit=on``, ``full_page_writes=on``) because fault tests rely
    on committed data surviving :meth:`stop` with ``mode="immediate"`` (a crash).

    Args:
        timescaledb: preload TimescaleDB (``shared_preload_libraries``); raises
            :class:`ServiceUnavailable` if it is not installed.
        port: TCP port; default is a free one picked by the OS.
        settings: extra ``postgresql.conf`` settings (override the defaults here).
        base_dir: parent of the temp directory (default: the system temp dir).
        bindir: PostgreSQL bin directory (default: :func:`pg_bindir`).
        use_template: copy a per-process initdb template instead of running
            initdb for every cluster (much faster; same result).

    When running as root, ``base_dir`` must be traversable by the ``postgres``
    OS user (the default temp dir is).
    """

    def __init__(
        self,
        *,
        timescaledb: bool = True,
        port: int | None = None,
        settings: Mapping[str, str | int | float | bool] | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        bindir: str | os.PathLike[str] | None = None,
        use_template: bool = True,
    ) -> None:
        self.bindir = Path(bindir) if bindir else pg_bindir()
        for tool in ("initdb", "pg_ctl", "postgres", "pg_isready", "psql"):
            if not (self.bindir / tool).is_file():
                raise ServiceUnavailable(f"{self.bindir / tool} not found: {PROVISION_HINT}")
        if timescaledb and not timescaledb_installed(self.bindir):
            raise ServiceUnavailable(
                f"TimescaleDB is not installed for the PostgreSQL in {self.bindir}: "
                + PROVISION_HINT
            )
        self.timescaledb = timescaledb
        self.port = port if port is not None else free_port()
        self._fixed_port = port is not None
        self._extra_settings = dict(settings or {})
        self._prefix = _as_postgres_prefix()
        self._use_template = use_template
        self.root = Path(tempfile.mkdtemp(prefix="wanllm-pg-", dir=base_dir))
        self.datadir = self.root / "data"
        self.logfile = self.root / "server.log"
        self._initialized = False
        self._finalizer = weakref.finalize(
            self, _finalize_pg, list(self._prefix), self._bin("pg_ctl"), self.datadir, self.root
        )

    # -- helpers -------------------------------------------------------------------
    def _bin(self, name: str) -> Path:
        return self.bindir / name

    def _run_server_tool(
        self, *args: str, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._prefix, *args], capture_output=True, text=True, check=False, timeout=timeout
        )

    def _settings(self) -> dict[str, str | int | float | bool]:
        s: dict[str, str | int | float | bool] = {
            "listen_addresses": HOST,
            "port": self.port,
            "unix_socket_directories": str(self.root),
            "max_connections": 200,
            "max_worker_processes": 32,
            "fsync": True,
            "synchronous_commit": True,
            "full_page_writes": True,
            "timezone": "UTC",
            "log_timezone": "UTC",
            "log_min_messages": "warning",
            "log_line_prefix": "%m [%p] ",
        }
        if self.timescaledb:
            s["shared_preload_libraries"] = "timescaledb"
            s["timescaledb.telemetry_level"] = "off"
            s["timescaledb.max_background_workers"] = 16
        s.update(self._extra_settings)
        return s

    def _write_config(self) -> None:
        def fmt(v: str | int | float | bool) -> str:
            if isinstance(v, bool):
                return "on" if v else "off"
            if isinstance(v, (int, float)):
                return str(v)
            return "'" + str(v).replace("'", "''") + "'"

        conf = "".join(f"{k} = {fmt(v)}\n" for k, v in self._settings().items())
        path = self.datadir / "wanllm_test.conf"
        path.write_text("# written by tests/services.py\n" + conf)
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")

    def _initdb(self) -> None:
        if os.geteuid() == 0:
            os.chmod(self.root, 0o700)
            shutil.chown(self.root, "postgres", "postgres")
        if self._use_template:
            template = _template_datadir(self.bindir, self._prefix)
            r = subprocess.run(
                ["cp", "-a", str(template), str(self.datadir)],
                capture_output=True,
                text=True,
                check=False,
            )
            if r.returncode != 0:
                raise RuntimeError(f"copying the initdb template failed:\n{r.stderr}")
        else:
            _run_initdb(self.bindir, self._prefix, self.datadir)
        with (self.datadir / "postgresql.conf").open("a") as f:
            f.write("\ninclude 'wanllm_test.conf'\n")
        self._initialized = True

    # -- public API ------------------------------------------------------------------
    @property
    def dsn(self) -> str:
        """DSN of the ``postgres`` database: ``postgresql://postgres@127.0.0.1:PORT/postgres``."""
        return self.dsn_for("postgres")

    def dsn_for(self, dbname: str) -> str:
        """DSN of database ``dbname`` on this cluster."""
        return f"postgresql://postgres@{HOST}:{self.port}/{dbname}"

    @property
    def running(self) -> bool:
        """True if the postmaster of this cluster is alive."""
        if not self._initialized:
            return False
        r = self._run_server_tool(str(self._bin("pg_ctl")), "-D", str(self.datadir), "status")
        return r.returncode == 0

    def start(self, timeout: float = 60) -> PostgresCluster:
        """initdb (first time only), start the server and wait until it accepts connections.

        If the port was picked automatically and got taken in the meantime by
        someone else, a new free port is tried (only before the first start).
        """
        if not self._initialized:
            self._initdb()
        elif self.running:
            return self
        attempts = 1 if (self._fixed_port or self.logfile.exists()) else 3
        for attempt in range(attempts):
            self._write_config()
            if os.geteuid() == 0 and not self.logfile.exists():
                self.logfile.touch()
                shutil.chown(self.logfile, "postgres", "postgres")
            r = self._run_server_tool(
                str(self._bin("pg_ctl")),
                "-D", str(self.datadir),
                "-l", str(self.logfile),
                "-w", "-t", str(int(timeout)),
                "start",
                timeout=timeout + 30,
            )  # fmt: skip
            if r.returncode == 0:
                break
            log = _tail(self.logfile)
            if attempt + 1 < attempts and "could not bind" in log and not _port_is_free(self.port):
                self.port = free_port()
                continue
            raise RuntimeError(
                f"PostgreSQL failed to start on port {self.port}:\n{r.stdout}\n{r.stderr}\n"
                f"--- {self.logfile} ---\n{log}"
            )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            r = subprocess.run(
                [
                    str(self._bin("pg_isready")),
                    "-q",
                    "-h",
                    HOST,
                    "-p",
                    str(self.port),
                    "-U",
                    "postgres",
                ],
                capture_output=True,
                check=False,
            )
            if r.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"PostgreSQL on port {self.port} not ready after {timeout}s:\n"
                    + _tail(self.logfile)
                )
            time.sleep(0.05)

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the server. ``mode="immediate"`` simulates a crash (no checkpoint,
        recovery from WAL on the next start); ``"fast"`` is a clean shutdown."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"bad stop mode {mode!r}")
        if not self._initialized:
            return
        _pg_ctl_stop(self._prefix, self._bin("pg_ctl"), self.datadir, mode)
        if self.running:
            raise RuntimeError(
                f"PostgreSQL on port {self.port} did not stop:\n{_tail(self.logfile)}"
            )

    def restart(self, mode: StopMode = "fast") -> PostgresCluster:
        """Stop (cleanly by default) and start again on the same port."""
        self.stop(mode)
        return self.start()

    def psql(self, sql: str, dbname: str = "postgres", timeout: float = 60) -> str:
        """Run SQL through the ``psql`` CLI (unaligned, tuples only) and return stdout.

        Raises ``subprocess.CalledProcessError`` (with stderr) on any SQL error.
        """
        r = subprocess.run(
            [
                str(self._bin("psql")), "-X", "-q", "-A", "-t",
                "-v", "ON_ERROR_STOP=1",
                "-d", self.dsn_for(dbname),
                "-c", sql,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )  # fmt: skip
        if r.returncode != 0:
            raise subprocess.CalledProcessError(r.returncode, r.args, r.stdout, r.stderr)
        return r.stdout.strip()

    def create_database(self, name: str) -> str:
        """``CREATE DATABASE name`` and return its DSN."""
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$-]{0,62}", name):
            raise ValueError(f"unsupported database name {name!r}")
        self.psql(f'CREATE DATABASE "{name}"')
        return self.dsn_for(name)

    def destroy(self) -> None:
        """Stop the server (immediately) and delete its directory. Idempotent."""
        self._finalizer()
        self._initialized = False

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def __repr__(self) -> str:
        return f"PostgresCluster(port={self.port}, root={str(self.root)!r})"


# --------------------------------------------------------------------------- Redis


def _finalize_redis(proc_box: list[subprocess.Popen[bytes] | None], root: Path) -> None:
    proc = proc_box[0]
    if proc is not None and proc.poll() is None:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
    proc_box[0] = None
    shutil.rmtree(root, ignore_errors=True)


def _redis_ping(port: int, timeout: float = 1.0) -> bytes | None:
    """Send an inline PING; return the first reply line or None if unreachable."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).split(b"\r\n", 1)[0]
    except OSError:
        return None


class RedisServer:
    """A throwaway ``redis-server`` on 127.0.0.1:<free port>, data dir in a temp dir.

    Persistence is off by default (``--save "" --appendonly no``); with
    ``appendonly=True`` the AOF is enabled (fsync on every write) so every
    acknowledged write survives :meth:`stop` (a SIGKILL) + :meth:`start`.

    Args:
        appendonly: enable the append-only file.
        port: TCP port; default is a free one picked by the OS.
        extra_args: more ``redis-server`` command-line options, e.g. ``["--maxmemory", "50mb"]``.
        base_dir: parent of the temp directory.
        executable: path or name of ``redis-server``.
    """

    def __init__(
        self,
        *,
        appendonly: bool = False,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        base_dir: str | os.PathLike[str] | None = None,
        executable: str = "redis-server",
    ) -> None:
        exe = shutil.which(executable)
        if exe is None:
            raise ServiceUnavailable(f"`{executable}` not found: {PROVISION_HINT}")
        self.executable = exe
        self.appendonly = appendonly
        self.port = port if port is not None else free_port()
        self.extra_args = list(extra_args)
        self.root = Path(tempfile.mkdtemp(prefix="wanllm-redis-", dir=base_dir))
        self.logfile = self.root / "redis.log"
        self._proc_box: list[subprocess.Popen[bytes] | None] = [None]
        self._finalizer = weakref.finalize(self, _finalize_redis, self._proc_box, self.root)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``"""
        return f"redis://{HOST}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        proc = self._proc_box[0]
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def start(self, timeout: float = 30) -> RedisServer:
        """Start the server (same port as before) and wait until it answers PING."""
        if self.running:
            return self
        cmd = [
            self.executable,
            "--bind", HOST,
            "--port", str(self.port),
            "--dir", str(self.root),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            # fsync before each reply: with the default "everysec" a write can be
            # postponed while a slow fsync runs, and a SIGKILL then loses it.
            "--appendfsync", "always",
            "--daemonize", "no",
            "--logfile", str(self.logfile),
            *self.extra_args,
        ]  # fmt: skip
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._proc_box[0] = proc
        deadline = time.monotonic() + timeout
        while True:
            reply = _redis_ping(self.port)
            if reply == b"+PONG":
                return self
            if proc.poll() is not None:
                self._proc_box[0] = None
                raise RuntimeError(
                    f"redis-server exited with {proc.returncode} on port {self.port}:\n"
                    f"{_tail(self.logfile)}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(
                    f"redis-server on port {self.port} not ready:\n{_tail(self.logfile)}"
                )
            time.sleep(0.02)  # also covers "-LOADING" while the AOF is replayed

    def stop(self, sig: int = signal.SIGKILL) -> None:
        """Kill the server (SIGKILL by default: a crash; pass SIGTERM for a clean stop)."""
        proc = self._proc_box[0]
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self._proc_box[0] = None

    def restart(self) -> RedisServer:
        """Kill and start again on the same port."""
        self.stop()
        return self.start()

    def destroy(self) -> None:
        """Kill the server and delete its directory. Idempotent."""
        self._finalizer()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def __repr__(self) -> str:
        return f"RedisServer(port={self.port}, root={str(self.root)!r})"
