"""Arrow wire types and arrays straight from numpy buffers (client and server).

``pa.array`` imports pandas on its first call (~0.5 s, and impossible while the
interpreter shuts down, when the client's last batch may be sent) and copies;
these build the same arrays zero-copy from buffers.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

NAME_DICT = pa.dictionary(pa.int32(), pa.string())
TIMESTAMP = pa.timestamp("us", tz="UTC")
# system metrics as the server answers them in Arrow, and offline runs rebuild them
SYSTEM_SCHEMA = pa.schema(
    [
        ("metric_type", pa.string()),
        ("time", TIMESTAMP),
        ("value", pa.float64()),
        ("device", pa.string()),
        ("node", pa.string()),
    ]
)


def numpy_array(values: np.ndarray, type: pa.DataType) -> pa.Array:
    """A fixed-width numpy array (no nulls) as an Arrow array of ``type``, zero-copy."""
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(type, len(values), [None, pa.py_buffer(values)])


def string_array(labels: list[str]) -> pa.Array:
    """Python strings as an Arrow ``string`` array."""
    data = [label.encode() for label in labels]
    offsets = np.zeros(len(data) + 1, np.int32)
    np.cumsum([len(d) for d in data], out=offsets[1:])
    return pa.Array.from_buffers(
        pa.string(), len(data), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))]
    )


def dictionary_array(codes: np.ndarray, labels: list[str]) -> pa.DictionaryArray:
    """``labels[codes[i]]`` as a ``dictionary<int32, string>`` array (codes must be valid)."""
    indices = np.ascontiguousarray(codes, dtype=np.int32)
    return pa.DictionaryArray.from_buffers(
        NAME_DICT, len(indices), [None, pa.py_buffer(indices)], string_array(labels)
    )
