"""Arrow wire types and arrays straight from numpy buffers (client and server).

``pa.array`` imports pandas on its first call (~0.5 s, and impossible while the
interpreter shuts down, when the client's last batch may be sent) and copies;
these build the same arrays zero-copy from buffers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
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


def _buffer(values: np.ndarray) -> pa.Buffer:
    """A contiguous array's memory as an Arrow buffer, zero-copy."""
    # numpy's stubs declare no __buffer__ before Python 3.12; ndarray exports one
    return pa.py_buffer(values)  # type: ignore[arg-type]


def numpy_array(values: np.ndarray, type: pa.DataType) -> pa.Array[Any]:
    """A fixed-width numpy array (no nulls) as an Arrow array of ``type``, zero-copy."""
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(type, len(values), [None, _buffer(values)])


def string_array(labels: list[str]) -> pa.Array[Any]:
    """Python strings as an Arrow ``string`` array."""
    data = [label.encode() for label in labels]
    offsets = np.zeros(len(data) + 1, np.int32)
    np.cumsum([len(d) for d in data], out=offsets[1:])
    return pa.Array.from_buffers(
        pa.string(), len(data), [None, _buffer(offsets), pa.py_buffer(b"".join(data))]
    )


def dictionary_array(codes: np.ndarray, labels: list[str]) -> pa.DictionaryArray[Any, Any]:
    """``labels[codes[i]]`` as a ``dictionary<int32, string>`` array (codes must be valid)."""
    indices = np.ascontiguousarray(codes, dtype=np.int32)
    return pa.DictionaryArray.from_buffers(
        NAME_DICT, len(indices), [None, _buffer(indices)], string_array(labels)
    )
