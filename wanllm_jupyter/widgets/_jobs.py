"""What a chart's redraw does next: requests from the toolbar, the live socket,
zoom and timers, merged until the redraw takes them (one typed value instead of
strings such as ``"zoom:lo,hi"``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Job(Enum):
    DRAW = "draw"  # push the model's data into the marks
    REBUILD = "rebuild"  # new scales, axes and marks first
    RELOAD = "reload"  # re-query the loaded range first


@dataclass(frozen=True, slots=True)
class Zoom:
    """Re-query steps ``lo..hi`` at full resolution; both None: everything."""

    lo: int | None = None
    hi: int | None = None


@dataclass(slots=True)
class Pending:
    """The requests since the last redraw (the latest zoom wins)."""

    jobs: set[Job] = field(default_factory=set)
    zoom: Zoom | None = None

    def add(self, request: Job | Zoom) -> None:
        if isinstance(request, Zoom):
            self.zoom = request
        else:
            self.jobs.add(request)
