"""Learn how this process ends, so unfinished runs end ``finished`` or ``failed``.

:func:`install` (once per process) arranges for ``on_exit(exit_code, timeout)``:

* at interpreter exit (``atexit``), with exit code 1 after an uncaught exception
  (130 for ``KeyboardInterrupt``), the code of the ``SystemExit`` that ended the
  script (``sys.exit()``, builtin ``exit()``/``quit()``, ``raise SystemExit``), else
  0, and ``kernel_shutdown=False``;
* in a Jupyter kernel, as soon as the kernel is asked to shut down or restart
  (before it replies), with exit code 0 and ``kernel_shutdown=True``:
  jupyter_client sends SIGTERM 2.5 s after its shutdown request (SIGKILL at 5 s),
  so runs must be flushed within :data:`KERNEL_SHUTDOWN_TIMEOUT`, and durably
  (spooled to disk first) in case the kernel is killed meanwhile.

How a script ended is seen, on Python ≥ 3.12, as the exception unwinding its
``__main__`` module frame (``sys.monitoring``: exact, whatever raised it and even
if an earlier ``SystemExit`` was caught). Older Pythons offer no such event:
there ``sys.exit``, ``exit`` and ``quit`` are wrapped to note their code, a module
frame that ran to its end means 0 whatever was noted (a caught ``SystemExit``),
and the code of a bare ``raise SystemExit(n)`` cannot be known (0 is assumed).

In IPython an exception in a cell is shown and the session goes on, so it does
not fail the run (``wl.finish(exit_code=1)`` or ``with wl.init(...)`` does).
"""

from __future__ import annotations

import atexit
import builtins
import opcode
import sys
from collections.abc import Callable
from types import CodeType, FrameType, TracebackType
from typing import Any

KERNEL_SHUTDOWN_TIMEOUT = 1.5
OnExit = Callable[[int, bool], None]

_installed = False
_exit_code = 0
_main_frame: FrameType | None = None  # watched by its last instruction (Python < 3.12)
_RETURNS = frozenset(opcode.opmap.get(op, -1) for op in ("RETURN_VALUE", "RETURN_CONST"))


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
    atexit.register(lambda: on_exit(_final_exit_code(), False))
    _hook_excepthook()
    shell = _ipython_shell()
    if shell is None:  # in IPython, SystemExit in a cell does not end the session
        _watch_script_end()
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


def _ended_by(exc: BaseException) -> None:
    global _exit_code
    if isinstance(exc, SystemExit):
        _exit_code = _system_exit_code(exc.code)
    else:
        _exit_code = exit_code_of(type(exc))


def _main_module_frame() -> FrameType | None:
    """The ``__main__`` module's top-level frame, when it is running."""
    main = sys.modules.get("__main__")
    frame, found = sys._getframe(), None
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals is vars(main):
            found = frame
        frame = frame.f_back  # type: ignore[assignment]
    return found


def _watch_script_end() -> None:
    global _main_frame
    main = _main_module_frame()
    if main is not None and _watch_main_unwind(main.f_code):
        return
    _main_frame = main
    _hook_sys_exit()
    _hook_builtin_exit()


def _watch_main_unwind(code: CodeType) -> bool:
    """Note the exception leaving the frame running ``code`` (Python ≥ 3.12,
    ``sys.monitoring``); False when that cannot be done here."""
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is None:
        return False
    tool = next((t for t in (4, 3) if monitoring.get_tool(t) is None), None)
    if tool is None:
        return False
    monitoring.use_tool_id(tool, "wanllm")

    def unwind(unwound: CodeType, offset: int, exc: BaseException) -> None:
        if unwound is code:
            _ended_by(exc)

    monitoring.register_callback(tool, monitoring.events.PY_UNWIND, unwind)
    monitoring.set_events(tool, monitoring.events.PY_UNWIND)
    return True


def _final_exit_code() -> int:
    """The noted exit code, or 0 when the watched module frame ran to its end
    (its last instruction a return, not the raise or call that ended it)."""
    frame = _main_frame
    if frame is not None and frame.f_code.co_code[frame.f_lasti] in _RETURNS:
        return 0
    return _exit_code


def _hook_sys_exit() -> None:
    previous = sys.exit

    def exit(code: Any = None) -> None:
        global _exit_code
        _exit_code = _system_exit_code(code)
        previous(code)

    sys.exit = exit  # type: ignore[assignment]


class _NotingQuitter:
    """builtin ``exit``/``quit`` (site's Quitter), noting the code it exits with."""

    def __init__(self, quitter: Callable[..., Any]) -> None:
        self._quitter = quitter

    def __repr__(self) -> str:
        return repr(self._quitter)

    def __call__(self, code: Any = None) -> None:
        global _exit_code
        _exit_code = _system_exit_code(code)
        self._quitter(code)


def _hook_builtin_exit() -> None:
    for name in ("exit", "quit"):
        quitter = getattr(builtins, name, None)
        if quitter is not None:
            setattr(builtins, name, _NotingQuitter(quitter))


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
