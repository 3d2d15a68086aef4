"""The server's live WebSocket messages (``wanllm/ws/metrics/<run_id>`` and
``wanllm/ws/runs``, docs/api.md) as typed values for the kernel widgets."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson


class Kind(Enum):
    METRICS = "metrics"
    RUN = "run"
    MEDIA = "media"  # a media key got a step (image, histogram, table)
    GAP = "gap"
    RUN_DELETED = "run_deleted"
    ERROR = "error"
    OTHER = "other"  # a type this client does not know: ignored


@dataclass(frozen=True, slots=True)
class LiveMessage:
    """One decoded message; ``body`` is the JSON object (its ``seq`` is read by
    :class:`~wanllm_jupyter.core.live_seq.LiveSequence`)."""

    kind: Kind
    body: dict[str, Any]

    @classmethod
    def parse(cls, raw: str | bytes) -> LiveMessage:
        return cls.of(orjson.loads(raw))

    @classmethod
    def of(cls, body: Any) -> LiveMessage:
        body = body if isinstance(body, dict) else {}
        try:
            kind = Kind(body.get("type"))
        except ValueError:
            kind = Kind.OTHER
        return cls(kind, body)

    @property
    def points(self) -> dict[str, Any]:
        """A metrics message's points by metric name."""
        points = self.body.get("points")
        return points if isinstance(points, dict) else {}

    @property
    def run(self) -> dict[str, Any]:
        """A run message's run (REST ``Run`` shape)."""
        run = self.body.get("run")
        return run if isinstance(run, dict) else {}

    @property
    def ends_run(self) -> bool:
        """The run finished, failed, crashed or was deleted: no more messages come."""
        if self.kind is Kind.RUN_DELETED:
            return True
        return self.kind is Kind.RUN and self.run.get("state") not in (None, "running")
