"""What a notebook front end needs before the first widget is displayed.

Colab renders only its built-in widgets until its custom widget manager is switched on; bqplot
and the anywidget panels (their ESM is inline in the widget state) need it. Other front ends
(JupyterLab, Notebook 7, VS Code) need nothing.
"""

from __future__ import annotations

import sys
import warnings

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
