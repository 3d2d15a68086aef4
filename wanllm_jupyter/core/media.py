"""Media rules the client and the server apply alike (docs/api.md, "Media")."""

from __future__ import annotations

import sys

import msgspec
import numpy as np
from msgspec import inspect

from .api.media import HistogramIn


def length_limits(model: type[msgspec.Struct], name: str) -> tuple[int, int]:
    """(min, max) length of a model's list, text or bytes field as its ``Meta``
    states it (``sys.maxsize`` when it states no maximum)."""
    info = inspect.type_info(model)
    assert isinstance(info, inspect.StructType)
    field = next(f for f in info.fields if f.encode_name == name)
    tp = field.type
    while isinstance(tp, inspect.Metadata | inspect.UnionType):
        tp = tp.type if isinstance(tp, inspect.Metadata) else tp.types[0]
    assert isinstance(tp, inspect.ListType | inspect.StrType | inspect.BytesType), tp
    return tp.min_length or 0, sys.maxsize if tp.max_length is None else tp.max_length


MIN_BINS, MAX_BINS = length_limits(HistogramIn, "counts")


def histogram_problem(edges: np.ndarray, counts: np.ndarray) -> tuple[str, str] | None:
    """(field, reason) when ``edges``/``counts`` (float64 arrays) cannot be stored as
    a histogram, else None: as many bins as ``HistogramIn.counts`` allows, one more
    edge than counts, edges finite and strictly increasing, counts finite and >= 0."""
    if not MIN_BINS <= counts.size <= MAX_BINS:
        return "histogram.counts", f"must hold {MIN_BINS}..{MAX_BINS} numbers ({counts.size})"
    if edges.size != counts.size + 1:
        return "histogram.edges", f"{edges.size} edges for {counts.size} counts (want counts + 1)"
    if not np.isfinite(edges).all():
        return "histogram.edges", "must be finite numbers"
    if not (np.diff(edges) > 0).all():
        return "histogram.edges", "must be strictly increasing"
    if not np.isfinite(counts).all():
        return "histogram.counts", "must be finite numbers"
    if (counts < 0).any():
        return "histogram.counts", "must be >= 0"
    return None
