"""What notebook front ends need from the widgets.

* Colab renders only its built-in widgets until its custom widget manager is switched on; bqplot
  and the anywidget panels (their ESM is inline in the widget state) need it.
* JupyterLab >= 4.4 sends widget messages to a kernel subshell, so a chart's zoom is handled
  while a cell runs, unless ipykernel sends them back to the main shell (see
  :func:`follow_frontend_subshell`).
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

from .._columns import WanllmWarning

_prepared = False


def in_colab() -> bool:
    """True inside a Google Colab kernel."""
    return "google.colab" in sys.modules


def prepare_frontend() -> bool:
    """Once per kernel: in Colab, enable its custom widget manager. True when enabled now."""
    global _prepared
    if _prepared or not in_colab():
        return False
    _prepared = True
    try:
        from google.colab import output  # type: ignore[import-not-found]

        output.enable_custom_widget_manager()
    except Exception as exc:  # a Colab without it: the widgets show as text, data is safe
        warnings.warn(
            f"wanllm: could not enable Colab's custom widget manager ({exc!r}); "
            "charts may not render",
            WanllmWarning,
            2,
        )
        return False
    return True


def follow_frontend_subshell(widget: Any) -> None:
    """Let the front end choose the kernel subshell for ``widget``'s incoming messages.

    JupyterLab >= 4.4 sends widget messages to a kernel subshell, so they are handled while a
    cell runs. ipykernel 7 overrides that choice with the subshell that last *sent* on the comm
    (``BaseComm._reply_subshell_for``, for kernel code awaiting a reply): for a widget made in a
    cell that is the main shell, so a zoom would wait for the running cell to end. ``widget``
    never awaits replies, so the subshell the message names is kept. No-op elsewhere.
    """
    comm = getattr(widget, "comm", None)
    if comm is not None and hasattr(comm, "_reply_subshell_for"):
        comm._reply_subshell_for = _keep_requested_subshell


def _keep_requested_subshell(_data: Any, requested: str | None) -> str | None:
    return requested
