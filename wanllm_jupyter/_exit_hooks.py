"""Learn how this process ends, so unfinished runs end ``finished`` or ``failed``.

:func:`install` (once per process) arranges for ``on_exit(exit_code, timeout)``:

* at interpreter exit (``atexit``), with exit code 1 after an uncaught exception
  (130 for ``KeyboardInterrupt``), the code given to ``sys.exit()``, else 0,
  and ``kernel_shutdown=False``;
* in a Jupyter kernel, as soon as the kernel is asked to shut down or restart
  (before it replies), with exit code 0 and ``kernel_shutdown=True``:
  jupyter_client sends SIGTERM 2.5 s after its shutdown request (SIGKILL at 5 s),
  so runs must be flushed within :data:`KERNEL_SHUTDOWN_TIMEOUT`, and durably
  (spooled to disk first) in case the kernel is killed meanwhile.

In IPython an exception in a cell is shown and the session goes on, so it does
not fail the run (``wl.finish(exit_code=1)`` or ``with wl.init(...)`` does).
"""

from __future__ import annotations

import atexit
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any

KERNEL_SHUTDOWN_TIMEOUT = 1.5
OnExit = Callable[[int, bool], None]

_installed = False
_exit_code = 0


def exit_code_of(exc_type: type[BaseException] | None) -> int:
    """The exit code a run gets when ``exc_type`` ended it (0: none)."""
    if exc_type is None:
        return 0
    return 130 if issubclass(exc_type, KeyboardInterrupt) else 1


def _system_exit_code(code: Any) -> int:
    """What the process exits with after ``sys.exit(code)``."""
    if code is None:
        return 0
    return int(code) if isinstance(code, int) else 1


def install(on_exit: OnExit) -> None:
    """Call ``on_exit`` when the process or its Jupyter kernel ends (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    atexit.register(lambda: on_exit(_exit_code, False))
    _hook_excepthook()
    shell = _ipython_shell()
    if shell is None:
        _hook_sys_exit()  # in IPython, sys.exit() in a cell does not end the session
    kernel = getattr(shell, "kernel", None)
    if kernel is not None:
        _hook_kernel_shutdown(kernel, on_exit)


def _hook_excepthook() -> None:
    previous = sys.excepthook

    def excepthook(
        exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        global _exit_code
        _exit_code = exit_code_of(exc_type)
        previous(exc_type, exc, tb)

    sys.excepthook = excepthook


def _hook_sys_exit() -> None:
    previous = sys.exit

    def exit(code: Any = None) -> None:
        global _exit_code
        _exit_code = _system_exit_code(code)
        previous(code)

    sys.exit = exit  # type: ignore[assignment]


def _ipython_shell() -> Any:
    """The running IPython shell, without importing IPython when nothing has."""
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None


def _hook_kernel_shutdown(kernel: Any, on_exit: OnExit) -> None:
    """Finish runs when ipykernel handles a shutdown (or restart) request."""
    previous = kernel.do_shutdown

    def do_shutdown(restart: bool) -> Any:
        try:
            on_exit(0, True)
        except Exception as exc:  # the kernel must shut down regardless
            print(f"wanllm: finishing runs at kernel shutdown failed: {exc!r}", file=sys.stderr)
        return previous(restart)

    kernel.do_shutdown = do_shutdown
