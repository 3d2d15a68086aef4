"""``health``: store and Redis status, versions, limits. Never 503: reports "degraded"."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from .. import __version__
from ..store.base import StoreError
from .base import WanllmHandler


class HealthHandler(WanllmHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        app = self.wanllm
        try:
            store: dict[str, Any] = {**await (await self.store()).info(), "ok": True}
        except StoreError as e:
            store = {"ok": False, "error": str(e)}
        live, cache = self.live.status(), self.cache.status()
        redis_ok = live.get("redis_ok", False) and cache.get("ok", True)
        configured = app.redis_url is not None
        ok = store["ok"] and (redis_ok or not configured)
        self.send_json(
            {
                "status": "ok" if ok else "degraded",
                "store": store,
                "redis": {"configured": configured, "ok": bool(redis_ok) if configured else None},
                "live": "redis" if configured and live.get("redis_ok") else "in-process",
                "cache": cache,
                "version": __version__,
                "max_batch_size": app.max_batch_size,
                "max_columnar_batch_size": app.max_columnar_batch_size,
            }
        )
