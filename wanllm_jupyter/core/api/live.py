"""WebSocket messages of ``wanllm/ws/metrics/{run_id}`` and ``wanllm/ws/runs``
(docs/api.md, "WebSocket"): each a struct tagged by its ``type`` field."""

from __future__ import annotations

from typing import Literal

from msgspec import Struct

from .fields import MetricName, UuidText, WireNumber
from .runs import Run


class ClientMessage(Struct, tag_field="type", forbid_unknown_fields=True):
    """A client → server message."""


class Subscribe(ClientMessage, tag="subscribe"):
    """Receive only these metrics from now on (empty or absent = all)."""

    metrics: list[MetricName] | None = None


class Unsubscribe(ClientMessage, tag="unsubscribe"):
    metrics: list[MetricName] | None = None


class ServerMessage(Struct, tag_field="type", forbid_unknown_fields=True):
    """A server → client message."""


class LivePoints(Struct, forbid_unknown_fields=True):
    """New points of one metric (``times`` in epoch seconds)."""

    steps: list[int]
    times: list[float]
    values: list[WireNumber]


class MetricsMessage(ServerMessage, tag="metrics"):
    """Points of the batches ``seq[0]..seq[1]`` of the run (live sequence numbers)."""

    run_id: UuidText
    seq: tuple[int, int]
    points: dict[str, LivePoints]


class RunMessage(ServerMessage, tag="run"):
    """The run's state or metadata changed."""

    run: Run


class MediaMessage(ServerMessage, tag="media"):
    """New media of the run: ``key`` (of ``kind``) got ``step``; read it over REST."""

    run_id: UuidText
    key: MetricName
    kind: Literal["image", "histogram", "table"]
    step: int


class RunDeletedMessage(ServerMessage, tag="run_deleted"):
    run_id: UuidText


class GapMessage(ServerMessage, tag="gap"):
    """Updates were lost for this subscriber: re-query the REST API. ``run_id`` is
    null on ``wanllm/ws/runs``; ``seq``, when present, is the last number it covers."""

    run_id: UuidText | None
    reason: str
    seq: int | None = None


class ErrorMessage(ServerMessage, tag="error"):
    """A malformed client message (the socket stays open)."""

    message: str


ClientMessages = Subscribe | Unsubscribe
ServerMessages = (
    MetricsMessage | RunMessage | MediaMessage | RunDeletedMessage | GapMessage | ErrorMessage
)
