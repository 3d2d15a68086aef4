"""Notebook widgets: live charts, the run workspace, run comparison, the run table,
and the media panels (images, histograms, tables)."""

from __future__ import annotations

from ._frontends import prepare_frontend
from .chart import MetricChart, chart
from .compare import Comparison, compare
from .histogram_panel import HistogramPanel, distributions
from .image_panel import ImagePanel, images
from .run_table import RunTable
from .run_table import run_table as runs
from .table_panel import TablePanel, table_panel
from .workspace import Workspace, workspace

prepare_frontend()  # before any widget of ours is displayed (Colab's widget manager)

__all__ = [
    "Comparison",
    "HistogramPanel",
    "ImagePanel",
    "MetricChart",
    "RunTable",
    "TablePanel",
    "Workspace",
    "chart",
    "compare",
    "distributions",
    "images",
    "runs",
    "table_panel",
    "workspace",
]
