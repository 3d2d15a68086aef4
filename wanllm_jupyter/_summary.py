"""``run.summary``: one value per metric (last by default) and ``define_metric`` rules."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

from ._config import jsonable
from .core.errors import UsageError

SUMMARIES = ("last", "first", "min", "max", "mean", "none")


@dataclass(frozen=True, slots=True)
class MetricDefinition:
    """What ``define_metric`` said about the metrics matching ``name`` (a glob)."""

    name: str
    summary: str = "last"
    step_metric: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "summary": self.summary, "step_metric": self.step_metric}


class Summary(MutableMapping[str, Any]):
    """Summary values. Logged points update it on the sender thread; reading
    first lets that thread catch up (``before_read``) so it reflects every ``log()``."""

    def __init__(self, before_read: Callable[[], None] | None = None) -> None:
        self._values: dict[str, Any] = {}
        self._means: dict[str, tuple[float, int]] = {}
        self._rules: dict[str, str] = {}  # metric -> resolved summary kind
        self.definitions: list[MetricDefinition] = []
        self._dirty: set[str] = set()
        self._before_read = before_read

    # ------------------------------------------------------------- rules
    def define(self, name: str, summary: str | None, step_metric: str | None) -> MetricDefinition:
        """Record a ``define_metric`` rule (later rules win over earlier ones)."""
        if not isinstance(name, str) or not name:
            raise UsageError(f"define_metric: name must be a non-empty string, got {name!r}")
        kind = summary or "last"
        if kind not in SUMMARIES:
            raise UsageError(
                f"define_metric({name!r}): summary must be one of {SUMMARIES}, got {summary!r}"
            )
        if step_metric is not None and (not isinstance(step_metric, str) or not step_metric):
            raise UsageError(
                f"define_metric({name!r}): step_metric must be a metric name, got {step_metric!r}"
            )
        d = MetricDefinition(name, kind, step_metric)
        self.definitions.append(d)
        self._rules.clear()
        return d

    def rule(self, metric: str) -> str:
        kind = self._rules.get(metric)
        if kind is None:
            kind = "last"
            for d in self.definitions:
                if d.name == metric or fnmatch.fnmatchcase(metric, d.name):
                    kind = d.summary
            self._rules[metric] = kind
        return kind

    def step_metric(self, metric: str) -> str | None:
        """The x-axis metric ``define_metric`` gave ``metric`` (None: the step)."""
        out = None
        for d in self.definitions:
            if d.step_metric and (d.name == metric or fnmatch.fnmatchcase(metric, d.name)):
                out = d.step_metric
        return out

    # ------------------------------------------------------------- updates (sender thread)
    def observe(self, metric: str, value: float, step: int) -> None:
        """Fold one logged point into the summary."""
        kind = self._rules.get(metric) or self.rule(metric)
        if kind == "last":
            self._values[metric] = value
        elif kind == "none":
            return
        elif kind == "first":
            if metric in self._values:
                return
            self._values[metric] = value
        elif math.isnan(value):
            return
        elif kind == "min":
            old = self._values.get(metric)
            if old is not None and old <= value:
                return
            self._values[metric] = value
        elif kind == "max":
            old = self._values.get(metric)
            if old is not None and old >= value:
                return
            self._values[metric] = value
        else:  # mean
            s, n = self._means.get(metric, (0.0, 0))
            s, n = s + value, n + 1
            self._means[metric] = (s, n)
            self._values[metric] = s / n
        self._dirty.add(metric)

    def take_changes(self) -> dict[str, Any]:
        """JSON-ready values changed since the last call (NaN/Inf as wire strings)."""
        dirty, self._dirty = self._dirty, set()
        return {k: jsonable(self._values[k], k) for k in dirty if k in self._values}

    # ------------------------------------------------------------- mapping (user thread)
    def _catch_up(self) -> None:
        if self._before_read is not None:
            self._before_read()

    def __getitem__(self, key: str) -> Any:
        self._catch_up()
        return self._values[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._values[str(key)] = value
        self._dirty.add(str(key))

    def __delitem__(self, key: str) -> None:
        del self._values[key]

    def __iter__(self) -> Iterator[str]:
        self._catch_up()
        return iter(list(self._values))

    def __len__(self) -> int:
        self._catch_up()
        return len(self._values)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"summary has no key {name!r}") from None

    def as_dict(self) -> dict[str, Any]:
        self._catch_up()
        return dict(self._values)

    def __repr__(self) -> str:
        return f"Summary({self.as_dict()!r})"
