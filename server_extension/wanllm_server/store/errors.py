"""The errors of the storage contract (:mod:`.base`): what a store raises, and why."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class StoreError(Exception):
    """Root of every error the storage layer raises."""


class RunNotFound(StoreError):
    """The run id names no run."""

    def __init__(self, run_id: uuid.UUID | str) -> None:
        super().__init__(f"run {run_id} not found")
        self.run_id = str(run_id)


class MetricNotFound(StoreError):
    """The run has no metric of that name."""

    def __init__(self, run_id: uuid.UUID | str, name: str) -> None:
        super().__init__(f"run {run_id} has no metric {name!r}")
        self.run_id, self.name = str(run_id), name


class MediaNotFound(MetricNotFound):
    """The run has no media of that kind under the key (or not at that step)."""

    def __init__(self, run_id: uuid.UUID | str, key: str, what: str = "media") -> None:
        StoreError.__init__(self, f"run {run_id} has no {what} {key!r}")
        self.run_id, self.name = str(run_id), key


@dataclass(frozen=True, slots=True)
class ItemError:
    """One bad item of a batch: its index, the field at fault, and why."""

    index: int
    field: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class InvalidBatch(StoreError):
    """A batch failed validation; nothing of it was written."""

    def __init__(self, errors: Sequence[ItemError], message: str | None = None) -> None:
        self.errors = list(errors)
        super().__init__(message or f"{len(self.errors)} invalid item(s) in batch")


class InvalidQuery(StoreError):
    """A query argument is out of range or malformed (bad filter, cursor...)."""


class StoreUnavailable(StoreError):
    """The database cannot be reached; the operation did not happen."""
