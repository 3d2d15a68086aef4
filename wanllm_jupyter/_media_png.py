"""PNG without a third-party library: 8-bit images encoded with numpy and zlib.

Each row is filtered with PNG's ``Up`` filter (the difference to the row above,
computed for the whole image in one numpy operation) and the rows deflated at
:data:`LEVEL`. Runs on the sender thread and imports nothing but the standard
library and numpy, so it is safe while the interpreter exits.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import numpy.typing as npt

SIGNATURE = b"\x89PNG\r\n\x1a\n"
LEVEL = 3  # zlib level: a fast encode, most of the size gain of level 6
_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> grey, grey+alpha, RGB, RGBA


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def encode(pixels: npt.NDArray[np.uint8], level: int = LEVEL) -> bytes:
    """The PNG of a ``uint8`` array of shape (height, width, channels), 1–4 channels."""
    height, width, channels = pixels.shape
    rows = np.ascontiguousarray(pixels).reshape(height, width * channels)
    filtered = np.empty((height, width * channels + 1), dtype=np.uint8)
    filtered[:, 0] = 2  # Up
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # wraps modulo 256, as PNG wants
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPES[channels], 0, 0, 0)
    return (
        SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(filtered.data, level))
        + _chunk(b"IEND", b"")
    )
