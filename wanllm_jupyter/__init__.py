"""wanllm-jupyter: a Jupyter-native experiment tracker, shaped like wandb.

    import wanllm_jupyter as wl          # or: import wanllm_jupyter as wandb
    run = wl.init(project="mnist", config={"lr": 1e-3})
    for step in range(1000):
        wl.log({"loss": loss})
    wl.finish()
    wl.Api().run(run.id).history()      # a pandas DataFrame

Importing this package is light: pandas, pyarrow, ipywidgets and bqplot load
only when the query API or a widget is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._columns import WanllmWarning
from ._config import Config
from ._discovery import login
from ._lifecycle import define_metric, finish, init, log
from ._run import Run
from ._summary import Summary
from .core.errors import (
    Conflict,
    NotFound,
    ServerError,
    ServerUnreachable,
    UsageError,
    WanllmError,
)

if TYPE_CHECKING:
    from ._media import Histogram, Image
    from ._media_table import Table
    from .api import Api

__version__ = "0.1.0"
__all__ = [
    "Api",
    "Config",
    "Conflict",
    "Histogram",
    "Image",
    "NotFound",
    "Run",
    "ServerError",
    "ServerUnreachable",
    "Summary",
    "Table",
    "UsageError",
    "WanllmError",
    "WanllmWarning",
    "chart",
    "compare",
    "config",
    "define_metric",
    "distributions",
    "finish",
    "images",
    "init",
    "log",
    "login",
    "run",
    "runs",
    "summary",
    "table_panel",
    "unwatch",
    "watch",
    "workspace",
]

_MEDIA = ("Image", "Histogram", "Table")


def __getattr__(name: str) -> Any:
    """``wl.run``, ``wl.config``, ``wl.summary`` follow the current run; ``wl.Api`` and
    the media types (``wl.Image``, ``wl.Histogram``, ``wl.Table``) load lazily."""
    from . import _lifecycle

    if name == "run":
        return _lifecycle.current
    if name == "config":
        return _lifecycle.config()
    if name == "summary":
        run = _lifecycle.current
        return run.summary if run is not None else Summary()
    if name == "Api":
        from .api import Api

        return Api
    if name in _MEDIA:  # the batch module too: the sender needs it once media are logged
        from . import _media, _media_batch, _media_table  # noqa: F401

        return getattr(_media_table if name == "Table" else _media, name)
    raise AttributeError(f"module 'wanllm_jupyter' has no attribute {name!r}")


def chart(*args: Any, **kwargs: Any) -> Any:
    """Live chart widget (``wanllm_jupyter.widgets.chart``)."""
    from .widgets import chart as _chart

    return _chart(*args, **kwargs)


def workspace(*args: Any, **kwargs: Any) -> Any:
    """Workspace widget of a run (``wanllm_jupyter.widgets.workspace``)."""
    from .widgets import workspace as _workspace

    return _workspace(*args, **kwargs)


def compare(*args: Any, **kwargs: Any) -> Any:
    """Run comparison widget (``wanllm_jupyter.widgets.compare``)."""
    from .widgets import compare as _compare

    return _compare(*args, **kwargs)


def runs(*args: Any, **kwargs: Any) -> Any:
    """Run table widget (``wanllm_jupyter.widgets.runs``)."""
    from .widgets import runs as _runs

    return _runs(*args, **kwargs)


def watch(*args: Any, **kwargs: Any) -> None:
    """Histograms of a PyTorch model's gradients/parameters (``wanllm_jupyter._watch.watch``)."""
    from . import _media_batch  # noqa: F401
    from ._watch import watch as _watch

    _watch(*args, **kwargs)


def unwatch(*args: Any, **kwargs: Any) -> None:
    """Remove ``watch``'s hooks (``wanllm_jupyter._watch.unwatch``)."""
    from ._watch import unwatch as _unwatch

    _unwatch(*args, **kwargs)


def images(*args: Any, **kwargs: Any) -> Any:
    """Image panel of a key across runs (``wanllm_jupyter.widgets.images``)."""
    from .widgets import images as _images

    return _images(*args, **kwargs)


def distributions(*args: Any, **kwargs: Any) -> Any:
    """Histogram panel of a key over steps (``wanllm_jupyter.widgets.distributions``)."""
    from .widgets import distributions as _distributions

    return _distributions(*args, **kwargs)


def table_panel(*args: Any, **kwargs: Any) -> Any:
    """Table panel of a logged ``wl.Table`` (``wanllm_jupyter.widgets.table_panel``)."""
    from .widgets import table_panel as _table_panel

    return _table_panel(*args, **kwargs)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where JupyterLab finds the prebuilt sidebar extension."""
    return [{"src": "labextension", "dest": "wanllm-jupyter"}]
