"""Start a run's tasks on the kernel's I/O loop (:mod:`._io_loop`) without making
``init()`` wait for the loop. While the loop's module is not imported yet (the
first start imports asyncio: about 20 ms, three times that on a busy machine),
the starts run in order on a short-lived thread (``wanllm-loop-start``),
:data:`~._sender.DEFER_FOR` seconds after ``init()`` and not once the
interpreter is exiting: a first import that runs ``exec`` (asyncio's do) while a
script ends on ``KeyboardInterrupt`` would turn its exit status 130 into 1 (see
:func:`._transport.exiting`). Heartbeats and sampling wait for seconds anyway."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

from ._sender import DEFER_FOR
from ._transport import exiting

_pending: list[Callable[[], None]] = []
_lock = threading.Lock()


def start_soon(start: Callable[[], None]) -> None:
    """Call ``start`` now when the loop's module is loaded, else on the starter thread."""
    with _lock:
        if _pending or "wanllm_jupyter._io_loop" not in sys.modules:
            _pending.append(start)
            if len(_pending) == 1:
                starter = threading.Thread(target=_start_pending, name="wanllm-loop-start")
                starter.daemon = True
                starter.start()
            return
    start()


def _start_pending() -> None:
    time.sleep(DEFER_FOR)
    while True:
        with _lock:
            if not _pending:
                return
            start = _pending[0]
        try:
            if not exiting():
                start()
        finally:
            with _lock:
                _pending.pop(0)
