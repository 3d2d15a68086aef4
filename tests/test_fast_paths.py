"""Each shortcut into pyarrow's buffers (docs/fast-paths.md) against its public
fallback: both paths, forced in turn, give the same arrays, bytes and batches."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from wanllm_server.handlers import wire
from wanllm_server.handlers.arrow_ingest import metric_batch_from_arrow

from wanllm_jupyter.core import arrow

RUN_ID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"


def both_paths(mp: pytest.MonkeyPatch, flag: Any, name: str, fn: Callable[[], Any]) -> Any:
    """``(fn(), fn())`` with the shortcut ``flag.name`` on, then off."""
    mp.setattr(flag, name, True)
    fast = fn()
    mp.setattr(flag, name, False)
    return fast, fn()


def test_the_shortcuts_are_on_for_the_verified_pyarrow() -> None:
    """The installed pyarrow is the verified one, so production takes the shortcuts
    (else the tests below would compare the fallback with itself only in name)."""
    lo, hi = arrow.BUFFERS_PYARROW
    assert lo <= tuple(map(int, pa.__version__.split(".")[:2])) < hi
    assert arrow.BUFFERS and wire.KEEP_PIECES


def test_an_unverified_pyarrow_takes_the_public_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    monkeypatch.setattr(pa, "__version__", "99.0.0")
    try:
        assert not importlib.reload(arrow).BUFFERS
    finally:
        monkeypatch.undo()
        importlib.reload(arrow)
    assert arrow.BUFFERS


@pytest.mark.parametrize(
    ("values", "type"),
    [
        (np.arange(5, dtype=np.int64), pa.int64()),
        (np.array([1.5, np.nan, -np.inf, 0.0]), pa.float64()),
        (np.array([-3, 0, 2**31 - 1], dtype=np.int32), pa.int32()),
        (np.array([0, 1_700_000_000_123_456, -1], dtype=np.int64), arrow.TIMESTAMP),
        (np.arange(10, dtype=np.int64)[::3], pa.int64()),  # not contiguous
        (np.empty(0), pa.float64()),
    ],
)
def test_numpy_array_alike(
    monkeypatch: pytest.MonkeyPatch, values: np.ndarray, type: pa.DataType
) -> None:
    fast, public = both_paths(
        monkeypatch, arrow, "BUFFERS", lambda: arrow.numpy_array(values, type)
    )
    assert fast.type == public.type == type and fast.null_count == public.null_count == 0
    np.testing.assert_array_equal(fast.to_numpy(), public.to_numpy())  # NaN equal to NaN


@pytest.mark.parametrize(
    "labels", [["loss", "acc", ""], [], ["ü/ñ", "日本", "a\u2028b", "x" * 300, "'\"\\"]]
)
def test_string_and_dictionary_arrays_alike(
    monkeypatch: pytest.MonkeyPatch, labels: list[str]
) -> None:
    fast, public = both_paths(monkeypatch, arrow, "BUFFERS", lambda: arrow.string_array(labels))
    assert fast.equals(public) and public.to_pylist() == labels
    codes = np.array([i % len(labels) for i in range(7)] if labels else [], np.int64)
    fast, public = both_paths(
        monkeypatch, arrow, "BUFFERS", lambda: arrow.dictionary_array(codes, labels)
    )
    assert fast.type == public.type == arrow.NAME_DICT
    assert fast.equals(public) and public.to_pylist() == [labels[c] for c in codes]


def test_numpy_of_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunked, sliced (an offset into the buffer), unsigned and empty columns."""
    ints = pa.chunked_array([pa.array([1, 2, 3], pa.int64()), pa.array([], pa.int64()),
                             pa.array([4, 5, 6, 7], pa.int64()).slice(1)])  # fmt: skip
    cases: list[tuple[Any, Any]] = [
        (ints, np.int64),
        (pa.array([2**64 - 1, 0], pa.uint64()), np.uint64),
        (pa.array([0.5, float("nan")], pa.float64()).slice(1), np.float64),
        (pa.chunked_array([], pa.int32()), np.int32),
        (pa.array([-1, 7], pa.int8()), np.int8),
    ]
    for column, dtype in cases:
        read = functools.partial(arrow.numpy_of, column, dtype)
        fast, public = both_paths(monkeypatch, arrow, "BUFFERS", read)
        assert fast.dtype == public.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(fast, public)
        np.testing.assert_array_equal(public, np.asarray(column.to_pylist(), dtype))


def test_the_shortcuts_do_not_import_pandas() -> None:
    """Why they exist: the public paths import pandas on first use (not possible while
    the interpreter shuts down); checked in a fresh interpreter."""
    import subprocess

    code = (
        "import sys, numpy as np, pyarrow as pa\n"
        "from wanllm_jupyter.core import arrow\n"
        "a = arrow.dictionary_array(np.zeros(3, np.int64), ['x'])\n"
        "arrow.numpy_of(arrow.numpy_array(np.arange(3), pa.int64()), np.int64)\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


BULK = pa.schema([("metric_name", arrow.NAME_DICT), ("step", pa.int64()),
                  ("time", arrow.TIMESTAMP), ("value", pa.float64())])  # fmt: skip


def _stream_bytes() -> tuple[bytes, list[Any]]:
    """An Arrow stream of two batches (the bulk history form), and its pieces."""
    stream = wire.ArrowStream(BULK)
    parts = stream.header()
    for k in range(2):
        n = 1000 * (k + 1)
        parts += stream.write({
            "metric_name": wire.constant_names(f"m{k}", n),
            "step": np.arange(n),
            "time": wire.timestamps(np.arange(n) * 1000),
            "value": np.linspace(0, 1, n),
        })  # fmt: skip
    parts += stream.close()
    return b"".join(wire.slices(parts, 4096)), parts


def test_arrow_stream_pieces_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    (fast, fast_parts), (public, public_parts) = both_paths(
        monkeypatch, wire, "KEEP_PIECES", _stream_bytes
    )
    assert fast == public
    assert any(isinstance(p, pa.Buffer) for p in fast_parts)  # the column buffers, kept
    assert all(type(p) is bytes for p in public_parts)  # copies
    table = pa.ipc.open_stream(public).read_all()
    assert table.num_rows == 3000 and table["metric_name"].to_pylist()[-1] == "m1"


def _arrow_body(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table, max_chunksize=3)  # several chunks per column
    return sink.getvalue().to_pybytes()


def test_arrow_ingest_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    names = pa.DictionaryArray.from_arrays(
        pa.array([0, 1, 0, 1, 1, 0, 1], pa.uint64()), pa.array(["loss", "acc"])
    )
    table = pa.table({
        "metric_name": names,
        "step": pa.array([0, 0, 1, None, 5, 2**40, 3], pa.uint64()),
        "time": pa.array([1_700_000_000_000 + i for i in range(7)], pa.timestamp("ms")),
        "value": pa.array([0.5, float("nan"), 1, -2, 3e300, 0, -0.0], pa.float64()),
    }).replace_schema_metadata({"run_id": RUN_ID})  # fmt: skip
    body = _arrow_body(table)
    fast, public = both_paths(
        monkeypatch, arrow, "BUFFERS", lambda: metric_batch_from_arrow(body, 100, 1 << 20)
    )
    assert fast.names == public.names == ["loss", "acc"]
    for field in ("name_idx", "steps", "times", "values", "auto_step"):
        np.testing.assert_array_equal(getattr(fast, field), getattr(public, field))
    assert public.steps.tolist() == [0, 0, 1, 0, 5, 2**40, 3]
    assert public.times.tolist()[0] == 1_700_000_000_000_000
