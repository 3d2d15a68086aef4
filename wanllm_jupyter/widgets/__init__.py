"""Notebook widgets: live charts, the run workspace, run comparison, the run table."""

from __future__ import annotations

from ._frontends import prepare_frontend
from .chart import MetricChart, chart
from .compare import Comparison, compare
from .run_table import RunTable
from .run_table import run_table as runs
from .workspace import Workspace, workspace

prepare_frontend()  # before any widget of ours is displayed (Colab's widget manager)

__all__ = [
    "Comparison",
    "MetricChart",
    "RunTable",
    "Workspace",
    "chart",
    "compare",
    "runs",
    "workspace",
]
