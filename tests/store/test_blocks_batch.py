"""Contract: tier rows decoded together equal the rows decoded one by one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wanllm_server.store import aggregates as agg
from wanllm_server.store.blocks import TAG_BIG_ENDIAN, decode_partials, encode_partials
from wanllm_server.store.blocks_batch import decode_partials_rows, encode_partials_rows

I64 = np.iinfo(np.int64)
# the shapes of int columns: constant, arithmetic, small/large differences, extremes
SHAPES = ("const", "step", "small", "large", "extremes")


def column(shape: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if shape == "const":
        return np.full(n, rng.integers(-1000, 1000), np.int64)
    if shape == "step":
        return np.arange(n, dtype=np.int64) * int(rng.integers(1, 50)) + int(rng.integers(-99, 99))
    if shape == "small":
        return np.cumsum(rng.integers(-100, 100, n))
    if shape == "large":
        return rng.integers(I64.min // 2, I64.max // 2, n)
    return rng.choice(np.array([I64.min, I64.max, 0, -1], np.int64), n)


def partials(n: int, shapes: list[str], rng: np.random.Generator) -> np.ndarray:
    p = np.zeros(n, agg.PARTIAL_DTYPE)
    ints = iter(shapes)
    for f in agg.PARTIAL_FIELDS:
        if p[f].dtype.kind == "f":
            p[f] = rng.choice(np.array([np.nan, np.inf, -0.0, 1.5]), n) * rng.random(n)
        else:
            p[f] = column(next(ints), n, rng)
    return p


def big_endian(p: np.ndarray) -> bytes:
    """A row as the SQL migration writes it (every column big-endian)."""
    tag = bytes((TAG_BIG_ENDIAN,))
    return b"".join(tag + p[f].astype(p[f].dtype.newbyteorder(">")).tobytes()
                    for f in agg.PARTIAL_FIELDS)  # fmt: skip


INT_FIELDS = sum(agg.PARTIAL_DTYPE[f].kind == "i" for f in agg.PARTIAL_FIELDS)
rows_strategy = st.lists(
    st.tuples(
        st.integers(1, 70),  # partials
        st.lists(st.sampled_from(SHAPES), min_size=INT_FIELDS, max_size=INT_FIELDS),
        st.booleans(),  # migrated (big-endian) row
    ),
    max_size=12,
)


@settings(max_examples=100, deadline=None)
@given(rows_strategy, st.integers(0, 2**32 - 1))
def test_equals_row_by_row(specs: list[tuple[int, list[str], bool]], seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = []
    for n, shapes, migrated in specs:
        p = partials(n, shapes, rng)
        rows.append((big_endian(p) if migrated else encode_partials(p), n))
    one_by_one = agg.concat_partials([decode_partials(d, n) for d, n in rows])
    assert decode_partials_rows(rows).tobytes() == one_by_one.tobytes()


@settings(max_examples=100, deadline=None)
@given(rows_strategy, st.integers(0, 2**32 - 1))
def test_encoded_together_equals_row_by_row(
    specs: list[tuple[int, list[str], bool]], seed: int
) -> None:
    """Every column form and width, rows of one partial included, byte for byte."""
    rng = np.random.default_rng(seed)
    parts = [partials(n, shapes, rng) for n, shapes, _ in specs]
    sizes = np.array([len(p) for p in parts], np.int64)
    together = encode_partials_rows(agg.concat_partials(parts), np.cumsum(sizes) - sizes)
    assert together == [encode_partials(p) for p in parts]


def test_rejects_unknown_tags_and_bad_lengths() -> None:
    data = encode_partials(partials(3, ["step"] * INT_FIELDS, np.random.default_rng(0)))
    with pytest.raises(ValueError, match="unknown column tag 0x42"):
        decode_partials_rows([(b"\x42" + data[1:], 3)])
    with pytest.raises(ValueError, match="longer than its columns"):
        decode_partials_rows([(data + b"\x00", 3)])
    with pytest.raises(ValueError, match="shorter than its columns"):
        decode_partials_rows([(data[:20], 3)])
