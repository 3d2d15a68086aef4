"""A Jupyter Authorizer that allows reading only (for a server started by a test
with ``--ServerApp.authorizer_class=tests.server.read_only_authorizer.ReadOnly``)."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.authorizer import Authorizer


class ReadOnly(Authorizer):
    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return action == "read"
