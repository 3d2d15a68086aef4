"""Media rules the client and the server apply alike (docs/api.md, "Media")."""

from __future__ import annotations

import numpy as np

from . import limits as L


def histogram_problem(edges: np.ndarray, counts: np.ndarray) -> tuple[str, str] | None:
    """(field, reason) when ``edges``/``counts`` (float64 arrays) cannot be stored as
    a histogram, else None: 1..MAX_HISTOGRAM_BINS bins, one more edge than counts,
    edges finite and strictly increasing, counts finite and >= 0."""
    if not 1 <= counts.size <= L.MAX_HISTOGRAM_BINS:
        return "histogram.counts", f"must hold 1..{L.MAX_HISTOGRAM_BINS} numbers ({counts.size})"
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
