"""The client's typed operations (``_ops``) through a spool line and back: every
kind comes back as the same kind with the same wire body and points."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

import wanllm_jupyter as wl
from wanllm_jupyter._columns import Columns
from wanllm_jupyter._media_batch import media_batches
from wanllm_jupyter._ops import Create, Media, Metrics, Op, Patch, System, from_wire, wire_body
from wanllm_jupyter._spool import body_json, encode_op


def _metrics() -> Metrics:
    cols = Columns("r")
    cols.add([({"a": float(i), "b": np.nan}, None, True, 1.5 + i) for i in range(5)])
    ((batch, _),) = cols.batches(100)
    return Metrics(batch)


def _media() -> Media:
    pending = [("h", 3, 2.0, [wl.Histogram([1.0, 2.0, 2.0])])]
    (batch,) = media_batches("r", pending, lambda key, message: None, {})
    return Media(batch)


OPS: list[Op] = [
    Create({"project": "p", "id": "r", "tags": None, "created_at": 1.25}),
    _metrics(),
    _media(),
    System({"batch_id": "0" * 32, "metrics": [{"run_id": "r", "metric_type": "cpu", "value": 1}]}),
    Patch("r", {"summary": {"a": 4.0}, "config": {"lr": 0.1}}),
]


def _wire(op: Op) -> Any:
    return orjson.loads(body_json(wire_body(op)))


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.kind)
def test_an_op_comes_back_from_its_spool_line(op: Op) -> None:
    record = orjson.loads(encode_op(op, 7.5))
    assert (record["op"], record["t"]) == (op.kind, 7.5)
    back = from_wire(record["op"], record["body"], record["t"])
    assert type(back) is type(op) and back.points == op.points
    assert _wire(back) == _wire(op) == record["body"]
    if not isinstance(op, Metrics | Media):  # those come back as their JSON form
        assert back == op


def test_points_are_those_of_metrics_batches() -> None:
    assert [op.points for op in OPS] == [0, 10, 0, 0, 0]


def test_an_end_state_patch_without_its_time_ends_when_it_was_spooled() -> None:
    ended = from_wire("patch", {"run_id": "r", "state": "finished"}, 9.0)
    assert ended == Patch("r", {"state": "finished", "finished_at": 9.0})
    stamped = from_wire("patch", {"run_id": "r", "state": "failed", "finished_at": 8.0}, 9.0)
    assert stamped == Patch("r", {"state": "failed", "finished_at": 8.0})
    running = from_wire("patch", {"run_id": "r", "state": "running"}, 9.0)
    assert running == Patch("r", {"state": "running"})
    assert from_wire("patch", {"run_id": "r", "state": "finished"}) == Patch(
        "r", {"state": "finished"}
    )


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown operation kind 'rename'"):
        from_wire("rename", {})
