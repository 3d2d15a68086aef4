"""wanllm server extension: REST + WebSocket metric service inside Jupyter Server.

The app class is imported lazily so that importing this package (e.g. for the
store or wire types) does not pull in jupyter_server.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import WanllmApp

    return [{"module": "wanllm_server", "app": WanllmApp}]
