"""When the kernel widgets close (live sockets, redraw tasks, timers and every
child widget with them):

* a widget made by a notebook cell closes when that cell runs again or is deleted;
* a widget a cell showed closes once the cell's own ``clear_output()`` removed it
  and it was not shown again (at the cell's next clear, or when the cell ends).

Why the cell: ipywidgets closes nothing by itself (a widget lives until
``close()``; jupyter-widgets/ipywidgets#3995, #1345). The browser knows when an
output is cleared, but a model may be shown in several outputs, notebooks and
windows, and closing a notebook tab or reloading the page removes its views as
well, so a view count cannot tell "gone" from "not shown right now". The kernel
does know the cell: JupyterLab and Notebook 7 send its id with each
execute request (``metadata.cellId``, with ``deletedCells``: the cells deleted
since), and IPython passes it to ``pre_run_cell``. marimo closes anywidget comms
on cell re-execution and deletion the same way (marimo-team/marimo#8159).
Outputs cleared from the browser's menu keep their widgets until the cell runs
again or the kernel restarts (docs/frontends.md).
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
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


def close_all(widgets: Iterable[Widget]) -> None:
    """Close ``widgets`` and everything they hold (replaced marks, old children...)."""
    for widget in widgets:
        close_tree(widget)
        widget.close()


def _held(widget: Widget) -> Iterator[Widget]:
    for name in widget.keys:
        value = getattr(widget, name, None)
        if isinstance(value, dict):
            value = list(value.values())
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(item, Widget):
                yield item


@dataclass(slots=True)
class _Shown:
    """Where a widget was last displayed."""

    widget: Closable
    execution: str  # the execute request whose output shows it
    seq: int  # the event number of its last display there
    earlier: bool  # shown by an earlier execution too: a clear here does not close it


class CellOwners:
    """Closes the widgets a cell made when the cell runs again or is deleted, and the
    widgets a cell showed once its own ``clear_output()`` removed them."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self._by_cell: dict[str, list[Closable]] = {}
        self._shown: dict[int, _Shown] = {}
        self._seq = 0
        self._clears: list[int] = []  # this execution's last two clear_output events
        self._lock = threading.Lock()
        shell.events.register("pre_run_cell", self._pre_run_cell)
        shell.events.register("post_run_cell", self._post_run_cell)
        register_hook = getattr(shell.display_pub, "register_hook", None)
        if register_hook is not None:  # ipykernel's publisher (hooks of this thread)
            register_hook(self._on_publish)

    def own(self, widget: Closable) -> None:
        """Record ``widget`` as made by the running cell (nothing outside a cell)."""
        cell = _request(self.shell).get("metadata", {}).get("cellId")
        if isinstance(cell, str):
            with self._lock:
                self._by_cell.setdefault(cell, []).append(widget)

    def displayed(self, widget: Closable) -> None:
        """``widget`` is being shown in the running execution's output."""
        execution = _request(self.shell).get("header", {}).get("msg_id")
        if not isinstance(execution, str):
            return
        with self._lock:
            self._seq += 1
            old = self._shown.get(id(widget))
            earlier = old is not None and (old.earlier or old.execution != execution)
            self._shown[id(widget)] = _Shown(widget, execution, self._seq, earlier)

    def _on_publish(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Display publisher hook: note the cell's own ``clear_output()`` calls (not an
        ``Output`` widget's). A second clear closes what the first one removed and was
        not shown again in between."""
        if msg.get("msg_type") == "clear_output" and not _output_widget_capturing(self.shell):
            with self._lock:
                self._seq += 1
                self._clears = [*self._clears[-1:], self._seq]
                first = self._clears[0] if len(self._clears) == 2 else None
            if first is not None:
                self._close(self._shown_before(first))
        return msg

    def _post_run_cell(self, _result: Any) -> None:
        with self._lock:
            last, self._clears = (self._clears[-1] if self._clears else None), []
        if last is not None:
            self._close(self._shown_before(last))

    def _pre_run_cell(self, info: Any) -> None:
        deleted = _request(self.shell).get("metadata", {}).get("deletedCells") or []
        cells = [info.cell_id, *deleted] if isinstance(deleted, list) else [info.cell_id]
        with self._lock:
            self._clears = []
            gone = [w for cell in cells if cell for w in self._by_cell.pop(cell, ())]
            self._shown = {  # forget widgets closed by other means
                k: s for k, s in self._shown.items() if getattr(s.widget, "comm", None) is not None
            }
        self._close(gone)

    def _shown_before(self, seq: int) -> list[Closable]:
        """This execution's widgets last shown before event ``seq`` (and nowhere earlier)."""
        execution = _request(self.shell).get("header", {}).get("msg_id")
        with self._lock:
            return [
                s.widget
                for s in self._shown.values()
                if s.execution == execution and not s.earlier and s.seq < seq
            ]

    def _close(self, widgets: list[Closable]) -> None:
        with self._lock:
            for widget in widgets:
                self._shown.pop(id(widget), None)
                for owned in self._by_cell.values():
                    if widget in owned:
                        owned.remove(widget)
        for widget in widgets:
            try:
                widget.close()
            except Exception:
                log.exception("wanllm: closing a widget failed")


def _output_widget_capturing(shell: Any) -> bool:
    """True while an ipywidgets ``Output`` captures the running execution's output
    (its clear_output clears the Output widget, not the cell)."""
    from ipywidgets import Output

    execution = _request(shell).get("header", {}).get("msg_id")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Widget.widgets: no other index
        widgets = list(Widget.widgets.values())
    return any(isinstance(w, Output) and w.msg_id == execution for w in widgets)


def _request(shell: Any) -> dict[str, Any]:
    """The running execute request (``header.msg_id``, ``metadata.cellId``...), or {}."""
    kernel = getattr(shell, "kernel", None)
    try:
        request = kernel.get_parent("shell") if kernel is not None else None
    except Exception:  # a shell that is not ipykernel's
        return {}
    return request if isinstance(request, dict) else {}


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


class ShownInCells:
    """Mixin for the top-level widgets: records where each is displayed (for the
    ``clear_output()`` rule of :class:`CellOwners`)."""

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        if _owners is not None:
            _owners.displayed(self)  # type: ignore[arg-type]
        return bundle
