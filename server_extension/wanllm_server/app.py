"""The Jupyter server extension app: configuration, store lifecycle, background tasks."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Float, Integer, TraitError, Unicode, default, validate

from wanllm_jupyter.core.heartbeat import HEARTBEAT_INTERVAL, MIN_HEARTBEAT_TIMEOUT
from wanllm_jupyter.core.service import default_database_url, sqlite_path

from . import offload
from .inflight import InFlight
from .offload import DEFAULT_NICE
from .owner import OwnedElsewhere, OwnerLock
from .store import open_store
from .store.base import Retention, Store, StoreError, StoreUnavailable

SHUTDOWN_STEP_SECONDS = 10.0
SHUTDOWN_DRAIN_SECONDS = 30.0
DEFAULT_SWITCH_INTERVAL = 0.001  # s; see gil_switch_interval


class WanllmApp(ExtensionApp):
    """wanllm: metric ingest, query and live fan-out inside Jupyter Server."""

    name = "wanllm_server"
    load_other_extensions = True
    exit_code = 0  # the standalone process's exit status (set when it refuses to start)
    description = (
        "wanllm's server (metric ingest, queries, live fan-out) on its own Jupyter server. "
        "Writes a runtime file clients discover; see docs/service.md."
    )
    exit_code = 0  # the standalone process's exit status (set when it refuses to start)

    database_url = Unicode(
        help="Store URL: sqlite:///path/to.db or postgresql://... "
        "(env WANLLM_DATABASE_URL; default: SQLite in the Jupyter data dir)."
    ).tag(config=True)
    redis_url = Unicode(
        None,
        allow_none=True,
        help="Redis URL for live fan-out and cache across servers (env WANLLM_REDIS_URL); "
        "None = in-process fan-out and in-memory cache.",
    ).tag(config=True)
    max_batch_size = Integer(1000, help="Most points accepted in one batch (else 413).").tag(
        config=True
    )
    max_columnar_batch_size = Integer(
        100_000,
        help="Most points accepted in one compact columnar batch (JSON or Arrow; else 413). "
        "Separate from max_batch_size, which keeps the seed's limit for the row form.",
    ).tag(config=True)
    max_body_size = Integer(
        16 * 1024 * 1024,
        help="Largest accepted request body on the wanllm routes, in bytes (else 413, "
        "answered from Content-Length before the body is read; unauthenticated bodies "
        "are refused (403) unread). Jupyter's own routes are bounded by "
        "ServerApp.max_body_size and ServerApp.max_buffer_size (512 MiB each by default).",
    ).tag(config=True)
    max_arrow_decompressed_size = Integer(
        64 * 1024 * 1024,
        help="Most bytes an Arrow ingest body may decompress to (else 413, refused from "
        "the stream's headers before anything is decompressed).",
    ).tag(config=True)
    max_concurrent_batches = Integer(
        help="Validated ingest batches written to the store at once; more wait their "
        "turn. Bounds the event-loop work of heavy ingest so reads stay fast meanwhile "
        "(lower favours reads, higher small row-form batches; default: twice the number "
        "of CPUs, at least 4)."
    ).tag(config=True)
    max_live_sockets = Integer(
        1000,
        help="Most live WebSockets (wanllm/ws/...) open at once on this server; more are "
        "closed at once with code 1013 (try again later).",
    ).tag(config=True)
    max_live_buffer_bytes = Integer(
        128 * 1024 * 1024,
        help="Byte budget of all live subscribers' queued messages and unfinished socket "
        "writes; past it the slowest sockets get a gap notice and are closed (1013).",
    ).tag(config=True)
    pool_min_size = Integer(5, help="Minimum database connections (PostgreSQL).").tag(config=True)
    pool_max_size = Integer(
        20, help="Maximum database connections (PostgreSQL), half of them for point reads."
    ).tag(config=True)
    metrics_retention_days = Integer(90, help="Days of metrics kept; 0 keeps forever.").tag(
        config=True
    )
    system_metrics_retention_days = Integer(
        30, help="Days of system metrics kept; 0 keeps forever."
    ).tag(config=True)
    heartbeat_timeout = Float(
        300.0,
        help="Seconds without a sign of life (heartbeat or accepted batch) after which a "
        f"running run is marked crashed; at least {MIN_HEARTBEAT_TIMEOUT:g} (twice the "
        "clients' heartbeat interval).",
    ).tag(config=True)
    maintenance_interval = Float(3600.0, help="Seconds between retention passes.").tag(config=True)
    standalone = Bool(
        False,
        help="Run as the standalone service (wanllm server): write the runtime file "
        "clients discover and exit after idle_timeout. Set by `wanllm server`.",
    ).tag(config=True)
    idle_timeout = Float(
        help="Standalone service only: seconds without requests or live sockets after "
        "which it exits; 0 never (env WANLLM_IDLE_TIMEOUT; default 3600)."
    ).tag(config=True)

    gil_switch_interval = Float(
        help="Seconds a busy thread may hold the GIL before a waiting one (the event "
        "loop) gets it: sys.setswitchinterval for the whole server process, whose "
        "Python default is 0.005. Shorter keeps requests answered while workers encode "
        "big answers (env WANLLM_GIL_SWITCH_INTERVAL; default 0.001; 0 leaves Python's).",
    ).tag(config=True)
    offload_nice = Integer(
        help="Niceness added to the threads doing the CPU-heavy part of requests "
        "(decoding, smoothing, encoding), so the event loop gets a busy CPU first; "
        "when other processes load the CPUs it slows those requests (env "
        "WANLLM_OFFLOAD_NICE; default 0: the server's priority).",
    ).tag(config=True)

    @default("database_url")
    def _default_database_url(self) -> str:
        return os.environ.get("WANLLM_DATABASE_URL") or default_database_url()

    @default("idle_timeout")
    def _default_idle_timeout(self) -> float:
        return float(os.environ.get("WANLLM_IDLE_TIMEOUT") or 3600.0)

    @default("gil_switch_interval")
    def _default_gil_switch_interval(self) -> float:
        return float(os.environ.get("WANLLM_GIL_SWITCH_INTERVAL") or DEFAULT_SWITCH_INTERVAL)

    @default("offload_nice")
    def _default_offload_nice(self) -> int:
        return int(os.environ.get("WANLLM_OFFLOAD_NICE") or DEFAULT_NICE)

    @validate("gil_switch_interval")
    def _switch_interval(self, proposal: dict[str, Any]) -> Any:
        if not 0 <= proposal["value"] <= 1:
            raise TraitError(f"gil_switch_interval must be 0..1 s, got {proposal['value']}")
        return proposal["value"]

    @validate("offload_nice")
    def _nice(self, proposal: dict[str, Any]) -> Any:
        if not 0 <= proposal["value"] <= 19:
            raise TraitError(f"offload_nice must be 0..19, got {proposal['value']}")
        return proposal["value"]

    @default("max_concurrent_batches")
    def _default_max_concurrent_batches(self) -> int:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return max(4, 2 * (cpus or 1))

    @default("redis_url")
    def _default_redis_url(self) -> str | None:
        return os.environ.get("WANLLM_REDIS_URL") or None

    @validate(
        "max_batch_size",
        "max_columnar_batch_size",
        "max_body_size",
        "max_arrow_decompressed_size",
        "max_concurrent_batches",
        "pool_min_size",
        "pool_max_size",
        "max_live_sockets",
        "max_live_buffer_bytes",
        "maintenance_interval",
    )
    def _positive(self, proposal: dict[str, Any]) -> Any:
        if proposal["value"] <= 0:
            raise TraitError(f"{proposal['trait'].name} must be > 0, got {proposal['value']}")
        return proposal["value"]

    @validate("heartbeat_timeout")
    def _heartbeat_timeout(self, proposal: dict[str, Any]) -> Any:
        if proposal["value"] < MIN_HEARTBEAT_TIMEOUT:
            raise TraitError(
                f"heartbeat_timeout must be >= {MIN_HEARTBEAT_TIMEOUT:g} s (twice the clients' "
                f"heartbeat interval of {HEARTBEAT_INTERVAL:g} s), got {proposal['value']}"
            )
        return proposal["value"]

    @validate("metrics_retention_days", "system_metrics_retention_days", "idle_timeout")
    def _non_negative(self, proposal: dict[str, Any]) -> Any:
        if proposal["value"] < 0:
            raise TraitError(f"{proposal['trait'].name} must be >= 0, got {proposal['value']}")
        return proposal["value"]

    # ---------------------------------------------------------------- setup
    def initialize_settings(self) -> None:
        from .cache import make_cache
        from .heartbeats import Heartbeats
        from .live import LiveHub

        if self.pool_min_size > self.pool_max_size:
            raise TraitError(
                f"pool_min_size {self.pool_min_size} exceeds pool_max_size {self.pool_max_size}"
            )
        self._store: Store | None = None
        self._owner: OwnerLock | None = None
        self._service: Any = None
        self._store_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self.inflight = InFlight()
        self.ingest_slots = asyncio.Semaphore(self.max_concurrent_batches)
        self.live = LiveHub(
            self.redis_url, log=self.log, budget_bytes=self.max_live_buffer_bytes, store=self.store
        )
        self.cache = make_cache(self.redis_url)
        if self.gil_switch_interval:
            sys.setswitchinterval(self.gil_switch_interval)
        self.offload = offload.install(nice=self.offload_nice)  # CPU-heavy work, off the loop
        self.heartbeats = Heartbeats(self.live)
        self.settings.update(
            wanllm_app=self,
            wanllm_store=self.store,
            wanllm_live=self.live,
            wanllm_cache=self.cache,
        )

    def initialize_handlers(self) -> None:
        from .handlers import default_handlers
        from .ws import ws_handlers

        self.handlers.extend(default_handlers)
        self.handlers.extend(ws_handlers)

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        """Open the store eagerly (a failure is retried lazily on first use). The
        standalone service then announces itself, or exits when another server
        owns its database."""
        try:
            await self.store()
        except StoreError as e:
            if self.standalone and isinstance(e.__cause__, OwnedElsewhere):
                self.log.error("wanllm: not starting: %s", e.__cause__)
                WanllmApp.exit_code = 3
                serverapp.stop()
                return
            self.log.warning("wanllm: store not available at start (%s); will retry", e)
        if self.standalone:
            from .standalone import ServiceRuntime

            self._service = ServiceRuntime(self)
            self._service.start()

    # ---------------------------------------------------------------- store
    async def store(self) -> Store:
        """The opened store; opened (and background work started) on first use."""
        if self._store is not None:
            return self._store
        async with self._store_lock:
            if not self._tasks:
                await self.live.start()
                self._tasks = [
                    asyncio.create_task(self._every(self._crash_interval(), self.detect_crashes)),
                    asyncio.create_task(self._every(self.maintenance_interval, self.maintain)),
                ]
            if self._store is None:
                store = make_store(self)
                try:
                    self._take_ownership()
                    await store.open()
                except OwnedElsewhere as e:
                    raise StoreUnavailable(str(e)) from e
                except OSError as e:
                    self._release_ownership()
                    raise StoreUnavailable(f"cannot open {self._safe_url()}: {e}") from e
                self._store = store
                self.log.info("wanllm: store %s open (%s)", store.backend, self._safe_url())
        return self._store

    def _take_ownership(self) -> None:
        """Become the one writing server of a SQLite database (OwnedElsewhere if not);
        see owner.py. PostgreSQL databases are shared: no owner."""
        path = sqlite_path(self.database_url)
        if path is None:
            return
        if self._owner is None:
            self._owner = OwnerLock(path)
        server = self.serverapp
        self._owner.acquire(
            {
                "url": server.connection_url if server is not None else "",
                "pid": os.getpid(),
                "kind": "service" if self.standalone else "jupyter",
            }
        )

    def _release_ownership(self) -> None:
        if self._owner is not None:
            self._owner.release()

    def _safe_url(self) -> str:
        """The database URL without its password, for logs."""
        scheme, sep, rest = self.database_url.partition("://")
        creds, at, host = rest.rpartition("@")
        return f"{scheme}{sep}{creds.split(':')[0]}:***{at}{host}" if at else self.database_url

    # ---------------------------------------------------------------- background
    def _crash_interval(self) -> float:
        return min(max(self.heartbeat_timeout / 4, 0.05), 60.0)

    async def _every(self, seconds: float, job: Callable[[], Awaitable[Any]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except StoreError as e:
                self.log.warning("wanllm: %s skipped: %s", job.__name__, e)
            except Exception:
                self.log.exception("wanllm: %s failed", job.__name__)

    async def detect_crashes(self, now: float | None = None) -> None:
        """Mark runs silent for ``heartbeat_timeout`` (at ``now``, epoch seconds;
        default: now) crashed and push the change live."""
        if self._store is None:
            return
        cutoff = int(((now or time.time()) - self.heartbeat_timeout) * 1e6)
        for run in await self._store.mark_crashed(cutoff):
            self.log.info("wanllm: run %s marked crashed (no heartbeat)", run.id)
            self.live.publish_run(run)

    async def maintain(self) -> None:
        """Apply retention."""
        if self._store is None:
            return
        retention = Retention(self.metrics_retention_days, self.system_metrics_retention_days)
        removed = await self._store.apply_retention(retention, int(time.time() * 1e6))
        if any(removed.values()):
            self.log.info("wanllm: retention removed %s", removed)

    # ---------------------------------------------------------------- shutdown
    async def stop_extension(self) -> None:
        """Stop accepting, finish in-flight batches, then close store, live hub and cache."""
        if not await self.inflight.drain(SHUTDOWN_DRAIN_SECONDS):
            self.log.warning("wanllm: in-flight batches still running at shutdown")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._service is not None:
            self._service.stop()
        async with self._store_lock:
            if self._store is not None:
                await self._bounded(self._store.close(), "store")
                self._store = None
            self._release_ownership()
        await self._bounded(self.live.stop(), "live hub")
        await self._bounded(self.cache.close(), "cache")
        offload.uninstall(self.offload)

    async def _bounded(self, closing: Awaitable[None], what: str) -> None:
        """Await one shutdown step, but never let it hang the server's exit."""
        try:
            await asyncio.wait_for(closing, SHUTDOWN_STEP_SECONDS)
        except (TimeoutError, asyncio.TimeoutError):
            self.log.warning(
                "wanllm: closing the %s took over %s s; abandoned", what, SHUTDOWN_STEP_SECONDS
            )


def make_store(app: WanllmApp) -> Store:
    """Build (not open) the backend named by ``app.database_url``."""
    url = app.database_url
    if url.startswith(("postgresql://", "postgres://")):
        return open_store(url, min_pool=app.pool_min_size, max_pool=app.pool_max_size)
    try:
        return open_store(url)
    except ValueError as e:
        raise StoreUnavailable(str(e)) from e
