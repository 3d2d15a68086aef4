"""Unit tests: logged dicts → points (flattening, conversion, steps, warnings)."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import orjson
import pytest

from wanllm_jupyter._columns import Columns, WanllmWarning
from wanllm_jupyter._wire import decode_columnar


def points(cols: Columns) -> list[tuple[str, int, float]]:
    out = []
    for body, _ in cols.batches(1000):
        b = decode_columnar(orjson.loads(body.to_json()))
        out += [(b.names[k], int(s), float(v)) for k, s, v in zip(b.k, b.s, b.v, strict=True)]
    return out


def test_flatten_and_convert() -> None:
    cols = Columns("r")
    cols.add(
        [
            (
                {
                    "a": 1,
                    "b": {"c": np.float32(0.5), "d": {"e": np.int64(3)}},
                    "t": np.array(2.0),
                    "flag": True,
                    "frac": Fraction(1, 4),
                },
                None,
                True,
                1.0,
            )
        ]
    )
    assert sorted(points(cols)) == [
        ("a", 0, 1.0),
        ("b/c", 0, 0.5),
        ("b/d/e", 0, 3.0),
        ("flag", 0, 1.0),
        ("frac", 0, 0.25),
        ("t", 0, 2.0),
    ]


def test_nonfinite_values_kept() -> None:
    cols = Columns("r")
    cols.add([({"n": math.nan, "p": math.inf, "m": -np.inf}, None, True, 1.0)])
    body = next(cols.batches(10))[0].to_json()
    assert b'"NaN"' in body and b'"Infinity"' in body and b'"-Infinity"' in body
    b = decode_columnar(orjson.loads(body))
    assert math.isnan(b.v[0]) and b.v[1] == math.inf and b.v[2] == -math.inf


def test_unsupported_values_warn_once_per_key() -> None:
    cols = Columns("r")
    with pytest.warns(WanllmWarning) as rec:
        cols.add([({"img": "x", "lst": [1, 2], "ok": 1.0}, None, True, 1.0)] * 3)
    assert sorted(str(w.message).split("'")[1] for w in rec) == ["img", "lst"]
    assert [p[0] for p in points(cols)] == ["ok"] * 3
    assert cols.skipped == 6


def test_not_a_dict_and_bad_step_warn_not_raise() -> None:
    cols = Columns("r")
    with pytest.warns(WanllmWarning, match="needs a dict"):
        cols.add([([1, 2], None, True, 1.0)])
    with pytest.warns(WanllmWarning, match="step must be an integer"):
        cols.add([({"a": 1}, "seven", True, 1.0)])
    assert points(cols) == []


def test_decimal_is_skipped_with_a_warning() -> None:
    cols = Columns("r")
    with pytest.warns(WanllmWarning, match="'d'"):  # Decimal is not a numbers.Real
        cols.add([({"d": Decimal("1.5")}, None, True, 1.0)])
    assert points(cols) == []


def test_step_semantics_follow_wandb() -> None:
    cols = Columns("r")
    cols.add(
        [
            ({"a": 1}, None, True, 0.0),  # step 0, next 1
            ({"b": 1}, None, False, 0.0),  # step 1, no commit
            ({"c": 1}, None, True, 0.0),  # step 1, next 2
            ({"d": 1}, 10, True, 0.0),  # step 10, next 11
            ({"e": 1}, 5, True, 0.0),  # older step kept as logged; next stays 11
            ({"f": 1}, None, True, 0.0),  # step 11
        ]
    )
    assert [(n, s) for n, s, _ in points(cols)] == [
        ("a", 0),
        ("b", 1),
        ("c", 1),
        ("d", 10),
        ("e", 5),
        ("f", 11),
    ]
    assert cols.step == 12


def test_batches_are_cut_at_max_points_with_local_names() -> None:
    cols = Columns("r")
    cols.add([({"a": i, "b": i}, None, True, 0.0) for i in range(5)])
    bodies = list(cols.batches(3))
    assert [n for _, n in bodies] == [3, 3, 3, 1]
    batches = [decode_columnar(orjson.loads(b.to_json())) for b, _ in bodies]
    assert len({b.batch_id for b in batches}) == 4
    assert batches[-1].names == ["b"] and batches[-1].k.tolist() == [0]


def test_torch_scalars() -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed here")
    cols = Columns("r")
    cols.add([({"t": torch.tensor(1.5), "i": torch.tensor(2)}, None, True, 0.0)])
    assert sorted(points(cols)) == [("i", 0, 2.0), ("t", 0, 1.5)]
