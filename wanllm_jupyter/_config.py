"""``run.config``: hyper-parameters with attribute and item access, synced to the run."""

from __future__ import annotations

import argparse
import dataclasses
import enum
import math
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

import numpy as np

from ._columns import WanllmWarning
from ._wire import encode_float

OnChange = Callable[[dict[str, Any]], None]


def as_mapping(obj: Any) -> Mapping[str, Any]:
    """A dict-like view of ``obj``: a mapping, argparse.Namespace, dataclass or plain object."""
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        return obj
    if isinstance(obj, argparse.Namespace):
        return vars(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if hasattr(obj, "__dict__"):
        return {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    raise TypeError(f"config must be a dict, Namespace or dataclass, got {type(obj).__name__}")


def jsonable(value: Any, key: str = "") -> Any:
    """``value`` as plain JSON data (numpy/Path/enum/tuple/set converted; NaN as wire string)."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else encode_float(value)
    if isinstance(value, Config):
        return value.as_dict()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v, key) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist(), key)
    if isinstance(value, np.generic):
        return jsonable(value.item(), key)
    if isinstance(value, enum.Enum):
        return jsonable(value.value, key)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    warnings.warn(
        f"wanllm: config {key!r}: {type(value).__name__} is not JSON data; stored as its str()",
        WanllmWarning,
        3,
    )
    return str(value)


class Config(MutableMapping[str, Any]):
    """Run configuration. ``config.lr``, ``config["lr"]``, ``config.update({...})``;
    nested dicts come back as nested ``Config`` objects whose changes sync too."""

    def __init__(self, data: Any = None, on_change: OnChange | None = None) -> None:
        object.__setattr__(self, "_data", {})
        object.__setattr__(self, "_on_change", None)
        self.update(data)
        object.__setattr__(self, "_on_change", on_change)

    # mapping protocol
    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        key = str(key)
        if isinstance(value, Mapping) and not isinstance(value, Config):
            value = Config(value, on_change=self._child_changed(key))
        elif isinstance(value, Config):
            value = Config(value.as_dict(), on_change=self._child_changed(key))
        else:
            value = jsonable(value, key)
        self._data[key] = value
        self._changed({key: jsonable(value, key)})

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self._changed({key: None})

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    # attribute access
    def __getattr__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(f"config has no key {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(f"config has no key {name!r}") from None

    def update(self, data: Any = None, allow_val_change: bool = True, **kwargs: Any) -> None:  # type: ignore[override]
        """Set many keys (a dict, argparse.Namespace, dataclass, or keywords) in one sync."""
        items = {**as_mapping(data), **kwargs}
        on_change = self._on_change
        object.__setattr__(self, "_on_change", None)
        try:
            for k, v in items.items():
                self[k] = v
        finally:
            object.__setattr__(self, "_on_change", on_change)
        if items:
            self._changed({str(k): jsonable(self._data[str(k)], str(k)) for k in items})

    def setdefaults(self, data: Any) -> None:
        """Set the keys of ``data`` that are not set yet."""
        self.update({k: v for k, v in as_mapping(data).items() if k not in self._data})

    def as_dict(self) -> dict[str, Any]:
        """A plain, JSON-ready copy."""
        return {k: (v.as_dict() if isinstance(v, Config) else v) for k, v in self._data.items()}

    def __repr__(self) -> str:
        return f"Config({self.as_dict()!r})"

    def _changed(self, delta: dict[str, Any]) -> None:
        if self._on_change is not None:
            self._on_change(delta)

    def _child_changed(self, key: str) -> OnChange:
        return lambda _delta: self._changed({key: self._data[key].as_dict()})
