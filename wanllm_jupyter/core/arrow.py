"""Arrow wire types, and arrays built from / read as numpy buffers (client and server).

``pa.array`` and ``to_numpy`` import pandas on their first call (~0.5 s, and
impossible while the interpreter shuts down, when the client's last batch may
be sent) and copy; the shortcuts here build and read the same arrays zero-copy
from their buffers, laid out as the Arrow columnar format states (validity
bitmap, then offsets or data). They are used with the pyarrow versions in
:data:`BUFFERS_PYARROW` (:data:`BUFFERS`); any other takes the public
``pa.array`` / ``to_numpy`` (docs/fast-paths.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

NAME_DICT = pa.dictionary(pa.int32(), pa.string())
TIMESTAMP = pa.timestamp("us", tz="UTC")
# system metrics as the server answers them in Arrow, and offline runs rebuild them
_SYSTEM_FIELDS: dict[str, pa.DataType] = {
    "metric_type": pa.string(),
    "time": TIMESTAMP,
    "value": pa.float64(),
    "device": pa.string(),
    "node": pa.string(),
}
SYSTEM_SCHEMA = pa.schema(_SYSTEM_FIELDS)


# pyarrow versions the buffer shortcuts are used with (verified: 26.0)
BUFFERS_PYARROW = ((15, 0), (27, 0))
_VERSION = tuple(int(part) for part in pa.__version__.split(".")[:2])  # X.Y.Z[.devN]
BUFFERS = BUFFERS_PYARROW[0] <= _VERSION < BUFFERS_PYARROW[1]


def _buffer(values: np.ndarray) -> pa.Buffer:
    """A contiguous array's memory as an Arrow buffer, zero-copy."""
    # numpy's stubs declare no __buffer__ before Python 3.12; ndarray exports one
    return pa.py_buffer(values)  # type: ignore[arg-type]


def numpy_array(values: np.ndarray, type: pa.DataType) -> pa.Array[Any]:
    """A fixed-width numpy array (no nulls) as an Arrow array of ``type``, zero-copy."""
    values = np.ascontiguousarray(values)
    if not BUFFERS:
        return pa.array(values, type=type)
    return pa.Array.from_buffers(type, len(values), [None, _buffer(values)])


def string_array(labels: list[str]) -> pa.Array[Any]:
    """Python strings as an Arrow ``string`` array."""
    if not BUFFERS:
        return pa.array(labels, type=pa.string())
    data = [label.encode() for label in labels]
    offsets = np.zeros(len(data) + 1, np.int32)
    np.cumsum([len(d) for d in data], out=offsets[1:])
    return pa.Array.from_buffers(
        pa.string(), len(data), [None, _buffer(offsets), pa.py_buffer(b"".join(data))]
    )


def dictionary_array(codes: np.ndarray, labels: list[str]) -> pa.DictionaryArray[Any, Any]:
    """``labels[codes[i]]`` as a ``dictionary<int32, string>`` array (codes must be valid)."""
    indices = np.ascontiguousarray(codes, dtype=np.int32)
    if not BUFFERS:
        return pa.DictionaryArray.from_arrays(
            pa.array(indices, type=pa.int32()), string_array(labels)
        )
    return pa.DictionaryArray.from_buffers(
        NAME_DICT, len(indices), [None, _buffer(indices)], string_array(labels)
    )


def numpy_of(column: pa.ChunkedArray[Any] | pa.Array[Any], dtype: npt.DTypeLike) -> np.ndarray:
    """A fixed-width column without nulls as one numpy array of ``dtype`` (the
    column's own width and kind), read straight from its data buffers."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    if not BUFFERS:
        parts = [np.asarray(c.to_numpy(zero_copy_only=False), dtype) for c in chunks if len(c)]
    else:
        width = np.dtype(dtype).itemsize
        parts = [np.frombuffer(_data(c), dtype, len(c), c.offset * width) for c in chunks if len(c)]
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.empty(0, dtype)


def _data(chunk: pa.Array[Any]) -> memoryview:
    """The data buffer of a fixed-width array (buffer 0 is its validity bitmap), zero-copy."""
    buf = chunk.buffers()[1]
    if buf is None:
        raise TypeError(f"a {chunk.type} array has no data buffer")
    return memoryview(buf)
