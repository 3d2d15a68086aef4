"""When the kernel widgets close: a widget made by a notebook cell belongs to that
cell and is closed (live sockets, redraw tasks, timers and every child widget)
when the cell runs again or is deleted.

Why the cell: ipywidgets closes nothing by itself (a widget lives until
``close()``; jupyter-widgets/ipywidgets#3995, #1345). The browser knows when an
output is cleared, but a model may be shown in several outputs, notebooks and
windows, and closing a notebook tab or reloading the page removes its views as
well, so a view count cannot tell "gone" from "not shown right now". The kernel
does know the cell: JupyterLab, Notebook 7 and VS Code send its id with each
execute request (``metadata.cellId``, with ``deletedCells``: the cells deleted
since), and IPython passes it to ``pre_run_cell``. marimo closes anywidget comms
on cell re-execution and deletion the same way (marimo-team/marimo#8159).
Outputs cleared in the browser while the cell is not re-run keep their widgets
until the cell re-runs or the kernel restarts (docs/frontends.md).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any, Protocol, TypeVar

from ipywidgets import Widget

log = logging.getLogger(__name__)
W = TypeVar("W", bound=Widget)


class Closable(Protocol):
    def close(self) -> None: ...


def close_tree(root: Widget) -> None:
    """Close ``root``'s descendants (children, marks, scales, axes, layouts...): every
    widget its synced traits hold, transitively; ``root`` itself is left to its caller."""
    seen, stack = {id(root)}, list(_held(root))
    while stack:
        widget = stack.pop()
        if id(widget) in seen:
            continue
        seen.add(id(widget))
        stack.extend(_held(widget))
        widget.close()


def _held(widget: Widget) -> Iterator[Widget]:
    for name in widget.keys:
        value = getattr(widget, name, None)
        if isinstance(value, dict):
            value = list(value.values())
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(item, Widget):
                yield item


class CellOwners:
    """The widgets each cell made; closes them when the cell runs again or is deleted."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self._by_cell: dict[str, list[Closable]] = {}
        self._lock = threading.Lock()
        shell.events.register("pre_run_cell", self._pre_run_cell)

    def own(self, widget: Closable) -> None:
        """Record ``widget`` as made by the running cell (nothing outside a cell)."""
        cell = _request_metadata(self.shell).get("cellId")
        if isinstance(cell, str):
            with self._lock:
                self._by_cell.setdefault(cell, []).append(widget)

    def count(self) -> int:
        with self._lock:
            return sum(map(len, self._by_cell.values()))

    def _pre_run_cell(self, info: Any) -> None:
        deleted = _request_metadata(self.shell).get("deletedCells") or []
        cells = [info.cell_id, *deleted] if isinstance(deleted, list) else [info.cell_id]
        with self._lock:
            gone = [w for cell in cells if cell for w in self._by_cell.pop(cell, ())]
        for widget in gone:
            try:
                widget.close()
            except Exception:
                log.exception("wanllm: closing a widget of a re-run cell failed")


def _request_metadata(shell: Any) -> dict[str, Any]:
    """The running execute request's metadata (``cellId``, ``deletedCells``), or {}."""
    kernel = getattr(shell, "kernel", None)
    try:
        metadata = kernel.get_parent("shell").get("metadata") if kernel is not None else None
    except Exception:  # a shell that is not ipykernel's
        return {}
    return metadata if isinstance(metadata, dict) else {}


_owners: CellOwners | None = None
_owners_lock = threading.Lock()


def owned_by_cell(widget: W) -> W:
    """``widget``, closed when the cell that made it runs again or is deleted
    (in an IPython kernel; elsewhere nothing changes)."""
    global _owners
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return widget
    with _owners_lock:
        if _owners is None or _owners.shell is not shell:
            _owners = CellOwners(shell)
    _owners.own(widget)
    return widget
