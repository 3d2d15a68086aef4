"""Media announcements on the live feed: the ``media`` WebSocket message
(:class:`wanllm_jupyter.core.api.MediaMessage`) and its Redis payload, a header
line alone on the run's channel (metric payloads carry arrays after theirs)::

    {"o": origin, "r": run_id, "m": [[key, kind, step], ...]}\\n
"""

from __future__ import annotations

from typing import Any

import orjson

MediaItems = list[tuple[str, str, int]]  # (key, kind, step)


def encode_media(origin: str, run_id: str, items: MediaItems) -> bytes:
    return orjson.dumps({"o": origin, "r": run_id, "m": items}) + b"\n"


def decode_media(payload: bytes) -> MediaItems | None:
    """The items of a media payload; None for any other payload."""
    if not payload.endswith(b"\n") or payload.find(b"\n") != len(payload) - 1:
        return None
    try:
        header: Any = orjson.loads(payload)
        return [(str(k), str(kind), int(step)) for k, kind, step in header["m"]]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def media_message(run_id: str, key: str, kind: str, step: int) -> str:
    body = {"type": "media", "run_id": run_id, "key": key, "kind": kind, "step": step}
    return orjson.dumps(body).decode()
