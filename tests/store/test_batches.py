"""Unit tests of write validation (store/batches.py, store/metric_rows.py): every
bad item is named."""

from __future__ import annotations

import math
import random
import uuid

import pytest
from wanllm_server.store import InvalidBatch, ItemError, batches, metric_rows
from wanllm_server.store.batches import metric_batch_from_columns, system_batch_from_rows
from wanllm_server.store.metric_rows import metric_batch_from_rows

from wanllm_jupyter.core import api
from wanllm_jupyter.core.api.check import body_errors, checks, required_names

# fixed, not uuid4(): they are in test ids, which must be the same in every xdist worker
RID = "e524157b-8780-4fdd-bbbc-f44ab89c7fc8"
OTHER_RID = "dbac8a68-8a75-4ae8-aff6-dd855fb6e0d5"


def errors(fn, *args) -> set[tuple[int, str]]:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidBatch) as e:
        fn(*args)
    assert all(isinstance(x, ItemError) and x.reason for x in e.value.errors)
    return {(x.index, x.field) for x in e.value.errors}


def test_rows_valid_forms() -> None:
    b = metric_batch_from_rows(
        [
            {
                "run_id": RID,
                "metric_name": "a",
                "value": 1,
                "step": 3,
                "time": "2026-01-01T00:00:00.000001Z",
            },
            {
                "run_id": RID.upper(),
                "metric_name": "b/c",
                "value": "-Infinity",
                "time": 1.5,
                "metadata": {"k": 1},
            },
            {"run_id": RID, "metric_name": "a", "value": "NaN", "step": -(2**63)},
        ],
        "id-1",
    )
    assert (
        b.batch_id == "id-1"
        and len(b) == 3
        and b.run_ids == [uuid.UUID(RID)]
        and b.names == ["a", "b/c"]
    )
    assert b.name_idx.tolist() == [0, 1, 0] and b.steps.tolist() == [3, 0, -(2**63)]
    assert b.auto_step is not None and b.auto_step.tolist() == [False, True, False]
    assert b.times[:2].tolist() == [1_767_225_600_000_001, 1_500_000]
    assert b.values[1] == -math.inf and math.isnan(b.values[2])
    assert b.metadata == [None, {"k": 1}, None]
    assert len(metric_batch_from_rows([]).batch_id) == 32  # random id: no idempotency


def test_rows_every_bad_item_named() -> None:
    rows = [
        {"run_id": "nope", "metric_name": "", "value": "1.5", "step": 1.0},
        {
            "run_id": RID,
            "metric_name": "x" * 256,
            "value": True,
            "step": 2**63,
            "time": "yesterday",
        },
        {"run_id": RID, "metric_name": "ok", "value": 1, "metadata": [1], "extra": 1},
        {"metric_name": 5},
        "not an object",
        {"run_id": RID, "metric_name": "ok", "value": None, "time": math.inf},
    ]
    assert errors(metric_batch_from_rows, rows) == {
        (0, "run_id"), (0, "metric_name"), (0, "value"), (0, "step"),
        (1, "metric_name"), (1, "value"), (1, "step"), (1, "time"),
        (2, "metadata"), (2, "extra"),
        (3, "run_id"), (3, "value"), (3, "metric_name"),
        (4, ""),
        (5, "value"), (5, "time"),
    }  # fmt: skip
    assert errors(metric_batch_from_rows, {"run_id": RID}) == {(-1, "metrics")}


def test_columnar_fast_path_and_auto_steps() -> None:
    b = metric_batch_from_columns(
        RID, ["a", "b"], [0, 1, 1], [5, None, 7], [1.0, 2, 3.5], [1, 2.5, "Infinity"], "c1"
    )
    assert b.steps.tolist() == [5, 0, 7] and b.auto_step.tolist() == [False, True, False]  # type: ignore[union-attr]
    assert b.times.tolist() == [1_000_000, 2_000_000, 3_500_000] and b.values.tolist() == [
        1.0,
        2.5,
        math.inf,
    ]
    fast = metric_batch_from_columns(RID, ["a"], [0, 0], [1, 2], None, [0.5, 1])
    assert (
        fast.auto_step is None
        and fast.values.tolist() == [0.5, 1.0]
        and fast.times[0] == fast.times[1]
    )


def test_columnar_every_bad_item_named() -> None:
    got = errors(
        metric_batch_from_columns, RID,
        ["a", "", "z" * 300], [0, 3, True, 0], [1, 2**63, 1.5, None],
        [0.0, "x", None, math.nan], ["NaN", "1.5", True, 10**400],
    )  # fmt: skip
    assert got == {
        (1, "names"),
        (2, "names"),
        (1, "k"),
        (2, "k"),
        (1, "s"),
        (2, "s"),
        (1, "t"),
        (3, "t"),
        (1, "v"),
        (2, "v"),
        (3, "v"),
    }
    assert errors(metric_batch_from_columns, "bad", ["a"], [0], [0], [0], [0]) == {(-1, "run_id")}
    assert errors(metric_batch_from_columns, RID, ["a"], [0], [0, 0], None, [1, 2]) == {(-1, "k")}
    assert errors(metric_batch_from_columns, RID, "a", [0], [0], None, 5) == {
        (-1, "names"),
        (-1, "v"),
    }


def test_system_rows() -> None:
    b = system_batch_from_rows(
        [{"run_id": RID, "metric_type": "gpu.0.util", "value": 3, "device": "gpu0", "node": "n"}],
        "s",
    )
    assert (b.types, b.devices, b.nodes, b.values.tolist()) == (
        ["gpu.0.util"],
        ["gpu0"],
        ["n"],
        [3.0],
    )
    bad = [
        {"run_id": RID, "metric_type": "", "value": 1, "device": 3, "node": ""},
        {"run_id": RID, "metric_name": "x", "value": 1},
    ]
    assert errors(system_batch_from_rows, bad) == {
        (0, "metric_type"),
        (0, "device"),
        (0, "node"),
        (1, "metric_name"),
        (1, "metric_type"),
    }


# Row-form fast path vs the per-row validator: same batch, or the same errors.
_RIDS = [RID, RID.upper(), OTHER_RID, "{" + RID + "}", "nope", "", 7, None, [RID]]
_NAMES = ["a", "b/c", "a", "", "x" * 255, "x" * 256, 5, None, ["a"], True]
_VALUES = [1, 0.5, -2.5e300, 2**70, 10**400, True, False, None, "NaN", "Infinity",
           "-Infinity", "nan", "1.5", math.nan, math.inf, [1]]  # fmt: skip
_STEPS = [0, 7, -(2**63), 2**63 - 1, 2**63, -(2**63) - 1, None, 1.0, True, "3"]
_TIMES = [1.5, 1_700_000_000.123456, -1.25, 0.5e-6, 1.5e-6, 9.2e12, 9_223_372_036_854.773,
          9.25e12, 1e13, math.nan, math.inf, 17, 2**70, None, True, "2026-01-01T00:00:00Z",
          "2026-01-01T00:00:00", "yesterday", [1]]  # fmt: skip
_METADATA = [None, {}, {"k": 1}, [1], "m", 3]


def _random_row(rng: random.Random, messy: bool) -> object:
    if messy and rng.random() < 0.03:
        return rng.choice(["row", 1, None, [1, 2]])

    def pick(choices: list[object]) -> object:  # mostly valid, now and then anything
        return rng.choice(choices if messy and rng.random() < 0.15 else choices[:3])

    row = {"run_id": pick(_RIDS), "metric_name": pick(_NAMES), "value": pick(_VALUES)}
    for key, choices in (("step", _STEPS), ("time", _TIMES), ("metadata", _METADATA)):
        if rng.random() < 0.7:
            row[key] = pick(choices)
    if messy:
        if rng.random() < 0.05:
            del row[rng.choice(["run_id", "metric_name", "value"])]
        if rng.random() < 0.03:
            row["timestamp"] = 1.0
    return dict(rng.sample(list(row.items()), len(row)))


def _outcome(fn, rows):  # type: ignore[no-untyped-def]
    try:
        b = fn(rows, "same-id")
    except InvalidBatch as e:
        return ("invalid", str(e), e.errors)
    except OverflowError as e:  # epoch seconds rounding to 2**63 µs (a crash either way)
        return ("overflow", str(e))
    arrays = [b.run_idx, b.name_idx, b.steps, b.times, b.values]
    auto = None if b.auto_step is None else b.auto_step.tolist()
    return (b.batch_id, b.run_ids, b.names, [(a.dtype.str, a.tobytes()) for a in arrays],
            b.metadata, auto)  # fmt: skip


@pytest.mark.parametrize("messy", [False, True])
def test_rows_fast_path_matches_per_row_validation(
    messy: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in (batches, metric_rows):
        monkeypatch.setattr(module, "now_us", lambda: 1_234_567)
    rng = random.Random(messy)
    fast_accepted = 0
    for trial in range(3000):
        size = rng.choice([0, 1, 2, 5, 30])
        rows = [_random_row(rng, messy) for _ in range(size)]
        if trial % 7 == 0 and rows and isinstance(rows[0], dict):  # one shape, as clients send
            rows = [{**rows[0], "value": rng.random()} for _ in rows]
        got = _outcome(metric_batch_from_rows, rows)
        assert got == _outcome(metric_rows.checked_metric_rows, rows), rows
        fast_accepted += metric_rows.plain_metric_rows(rows, "same-id") is not None
    assert fast_accepted > 300  # the comparison exercised the fast path, not just the fallback


_FIELD_CHOICES = {"run_id": _RIDS, "metric_name": _NAMES, "value": _VALUES, "step": _STEPS,
                  "time": _TIMES, "metadata": _METADATA}  # fmt: skip


@pytest.mark.parametrize(
    ("field", "choice"), [(f, c) for f, choices in _FIELD_CHOICES.items() for c in choices]
)
def test_rows_fast_path_one_odd_item(
    field: str, choice: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uniform rows (the fast path's case) with one item of ``field`` replaced."""
    for module in (batches, metric_rows):
        monkeypatch.setattr(module, "now_us", lambda: 1_234_567)
    row = {"run_id": RID, "metric_name": "m", "step": 1, "value": 0.5, "time": 2.5}
    rows = [{**row, "step": i} for i in range(4)]
    rows[2][field] = choice
    assert _outcome(metric_batch_from_rows, rows) == _outcome(metric_rows.checked_metric_rows, rows)


BAD_ROWS = [
    {"run_id": "x", "metric_name": "a", "value": 1},
    {"run_id": RID, "metric_name": "", "value": 1},
    {"run_id": RID, "metric_name": "a\x00", "value": "high"},
    {"run_id": RID, "metric_name": "a", "value": 1, "step": 2**63},
    {"run_id": RID, "metric_name": "a", "value": 1, "step": 1.5},
    {"run_id": RID, "metric_name": "a", "value": True, "time": "yesterday"},
    {"run_id": RID, "metric_name": "a", "value": 1, "time": 1e13, "metadata": []},
    {"run_id": RID, "metric_name": "a", "value": 1, "metadata": {"": 1}},
    {"run_id": 5, "metric_name": 5, "value": "1", "colour": 1},
    {"metric_name": "a" * 256},
]


@pytest.mark.parametrize("row", BAD_ROWS)
def test_row_reasons_are_the_models(row: dict[str, object]) -> None:
    """Each refused row field carries the reason the request model gives."""
    with pytest.raises(InvalidBatch) as e:
        metric_batch_from_rows([row])
    got = {(x.field, x.reason) for x in e.value.errors}
    model = {(x["field"], x["reason"]) for x in body_errors(row, api.MetricRow)}
    missing = {(k, "required") for k in required_names(api.MetricRow) if k not in row}
    assert got == model | missing and got


def test_columnar_reasons_are_the_models() -> None:
    """Items of the columnar form carry the reasons of ColumnarBatch's item types;
    only k past len(names) is the validator's own (a cross-field rule)."""
    cols = checks(api.ColumnarBatch)
    names, k, s, t, v = (
        ["a", "b\x00"],
        [0, -1, 2],
        [1.5, None, 2**63],
        [1e13, "x", None],
        [True, 1, "NaN"],
    )
    with pytest.raises(InvalidBatch) as e:
        metric_batch_from_columns(RID, names, k, s, t, v)
    got = {(x.index, x.field, x.reason) for x in e.value.errors}
    want = {
        (i, field, cols[field].items.reason(x))  # type: ignore[union-attr]
        for field, items in {"names": names, "k": k, "s": s, "t": t, "v": v}.items()
        for i, x in enumerate(items)
        if x is not None and cols[field].items.reason(x)  # type: ignore[union-attr]
    }
    assert got == want | {(2, "k", "not an index into names (0..1)")}
