"""``openapi.json``: the OpenAPI 3 document of this API."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..openapi import document
from .base import WanllmHandler


class OpenApiHandler(WanllmHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.send_json(document(self.base_url))
