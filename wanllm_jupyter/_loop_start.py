"""Start a run's tasks on the kernel's I/O loop (:mod:`._io_loop`) without making
``init()`` wait for the loop: the first start imports asyncio (about 20 ms, three
times that on a busy machine), so while the loop module is not imported yet the
starts run on a short-lived thread (``wanllm-loop-start``), in order."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

_pending: list[Callable[[], None]] = []
_lock = threading.Lock()


def start_soon(start: Callable[[], None]) -> None:
    """Call ``start`` now when the loop's module is loaded, else on the starter thread."""
    with _lock:
        if _pending or "wanllm_jupyter._io_loop" not in sys.modules:
            _pending.append(start)
            if len(_pending) == 1:
                threading.Thread(
                    target=_start_pending, name="wanllm-loop-start", daemon=True
                ).start()
            return
    start()


def _start_pending() -> None:
    while True:
        with _lock:
            if not _pending:
                return
            start = _pending[0]
        try:
            start()
        finally:
            with _lock:
                _pending.pop(0)
