"""Turn logged dicts into metric points (runs on the sender thread, never in ``log()``).

Each logged item is ``(data, step, commit, time)``. Nested dicts flatten with
``/``; bool, int, float, numpy and torch scalars (anything with a one-element
``.item()``) and other real numbers become float64; NaN/±Inf are kept. Any
other value is skipped with one :class:`WanllmWarning` per key, and so is a key
that can never be a metric name (not a string; empty, too long, or holding NUL
or a lone surrogate: :mod:`.core.limits`), checked when the name is first seen.

Media values (``wl.Image`` or a list of them, ``wl.Histogram``, ``wl.Table``) are
kept with their resolved step for :mod:`._media_batch`, which encodes them.

Steps follow wandb: without ``step`` a point takes the run's current step and
``commit=True`` then advances it; with ``step`` the point takes that step and the
current step moves to ``step + 1`` (``commit=True``) or ``step`` (``commit=False``)
unless it is already further (older steps are stored as logged, never dropped).
"""

from __future__ import annotations

import numbers
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from ._wire import ColumnarBatch
from .core.limits import MAX_METRIC_NAME_LENGTH, text_problem

Item = tuple[Any, Any, bool, float]


class WanllmWarning(UserWarning):
    """A logged value was skipped or converted (one warning per key)."""


class Columns:
    """Growing columns of points; ``take(n)`` cuts the oldest ``n`` into a wire batch."""

    def __init__(
        self,
        run_id: str,
        on_point: Callable[[str, float, int], None] | None = None,
        step: int = 0,
    ) -> None:
        self.run_id = run_id
        self.step = step
        self.on_point = on_point
        self._index: dict[str, int] = {}
        self._names: list[str] = []
        self._k: list[int] = []
        self._s: list[int] = []
        self._t: list[float] = []
        self._v: list[float] = []
        self._warned: set[str] = set()
        self.skipped = 0
        self._media_names: set[str] = set()
        self.media: list[tuple[str, int, float, list[Any]]] = []  # (key, step, time, values)
        self.media_bytes = 0  # what ``media`` holds, for the memory budget

    def __len__(self) -> int:
        return len(self._v)

    # ------------------------------------------------------------- ingest
    def add(self, items: Iterable[Item]) -> None:
        """Convert logged items into points, in order."""
        for data, step, commit, t in items:
            at: int | None
            if step is None:
                at = self.step
                if commit:
                    self.step += 1
            else:
                at = self._check_step(step)
                if at is None:
                    continue
                self.step = max(self.step, at + 1 if commit else at)
            if not isinstance(data, Mapping):
                self.warn("<log>", f"log() needs a dict, got {type(data).__name__}; skipped")
                continue
            self._add_dict(data, "", at, t)

    def _add_dict(self, data: Mapping[Any, Any], prefix: str, at: int, t: float) -> None:
        index, on_point = self._index, self.on_point
        for key, val in data.items():
            if type(key) is not str:
                if not isinstance(key, str):
                    self.warn(
                        repr(key)[:40],
                        f"metric names must be strings, got a {type(key).__name__}; skipped",
                    )
                    continue
                key = str(key)
            name = prefix + key
            tv = type(val)
            v: float | None
            if tv is float or tv is int:
                v = float(val)
            elif isinstance(val, Mapping):
                self._add_dict(val, name + "/", at, t)
                continue
            elif getattr(val, "_wanllm_media", False) or (
                tv is list and val and getattr(val[0], "_wanllm_media", False)
            ):
                self._add_media(name, val, at, t)
                continue
            else:
                v = self._convert(name, val)
                if v is None:
                    continue
            k = index.get(name)
            if k is None:
                k = self._new_name(name)
                if k is None:
                    continue
            self._k.append(k)
            self._s.append(at)
            self._t.append(t)
            self._v.append(v)
            if on_point is not None:
                on_point(name, v, at)

    def _add_media(self, name: str, val: Any, at: int, t: float) -> None:
        """Keep a media value (``wl.Image``, a list of them, ``wl.Histogram``,
        ``wl.Table``) for :mod:`._media_batch`, which encodes it outside the lock."""
        if name not in self._media_names:
            problem = text_problem(name, MAX_METRIC_NAME_LENGTH)
            if problem is not None:
                self.warn(name[:40], f"not a valid media key ({problem}); skipped")
                return
            self._media_names.add(name)
        values = val if type(val) is list else [val]
        self.media.append((name, at, t, values))
        self.media_bytes += sum(getattr(v, "nbytes", 0) for v in values)

    def _convert(self, name: str, val: Any) -> float | None:
        if isinstance(val, (bool, np.bool_)):
            return float(val)
        if isinstance(val, numbers.Real):  # numpy floats/ints, Decimal-free reals, Fraction
            return float(val)
        item = getattr(val, "item", None)
        numel = getattr(val, "numel", None)  # torch
        one = numel() if callable(numel) else getattr(val, "size", None)  # numpy
        if callable(item) and one == 1:
            try:
                out = item()
            except Exception:
                out = None
            if isinstance(out, (bool, numbers.Real)):
                return float(out)
        if isinstance(val, numbers.Number):
            self.warn(name, f"{type(val).__name__} value (complex?) is not a real number; skipped")
        else:
            self.warn(name, f"{type(val).__name__} is not a number; skipped")
        return None

    def _new_name(self, name: str) -> int | None:
        problem = text_problem(name, MAX_METRIC_NAME_LENGTH)
        if problem is not None:
            self.warn(name[:40], f"not a valid metric name ({problem}); skipped")
            return None
        k = self._index[name] = len(self._names)
        self._names.append(name)
        return k

    def _check_step(self, step: Any) -> int | None:
        if isinstance(step, (int, np.integer)) and not isinstance(step, (bool, np.bool_)):
            return int(step)
        if isinstance(step, (float, np.floating)) and float(step).is_integer():
            return int(step)
        self.warn("<step>", f"step must be an integer, got {step!r}; the log() call was skipped")
        return None

    def take_media(self) -> list[tuple[str, int, float, list[Any]]]:
        """The media logged so far (oldest first), leaving none."""
        media, self.media, self.media_bytes = self.media, [], 0
        return media

    def warn(self, key: str, message: str) -> None:
        self.skipped += 1
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(f"wanllm: {key!r}: {message} (warned once per key)", WanllmWarning, 2)

    # ------------------------------------------------------------- cut
    def batches(self, max_points: int) -> Iterator[tuple[ColumnarBatch, int]]:
        """Take every point so far; yield ``(columnar batch, count)`` per batch of
        at most ``max_points``, oldest first (encoded by the transport or spool)."""
        if not self._v:
            return
        k = np.array(self._k, dtype=np.int64)
        s = np.array(self._s, dtype=np.int64)
        t = np.array(self._t, dtype=np.float64)
        v = np.array(self._v, dtype=np.float64)
        self._k, self._s, self._t, self._v = [], [], [], []
        names = self._names
        for a in range(0, v.shape[0], max_points):
            b = a + max_points
            used, local_k = np.unique(k[a:b], return_inverse=True)
            batch = ColumnarBatch(
                uuid.uuid4().hex,
                self.run_id,
                [names[i] for i in used.tolist()],
                local_k,
                s[a:b],
                t[a:b],
                v[a:b],
            )
            yield batch, len(batch)
