"""HTML built from data: every value that reaches an ``ipywidgets.HTML`` from a
run, metric or user (names, tags, config, notes, projects, metric and
system-metric names, file names) goes through :func:`esc`, so it is drawn as
text and never parsed as markup. Widgets that take text (``Label``, bqplot
labels and tooltips, ``Dropdown`` options) get the raw string instead."""

from __future__ import annotations

import html


def esc(value: object) -> str:
    """``value`` as inert HTML text: ``& < > " '`` escaped, so it is safe both
    in element content and inside a quoted attribute."""
    return html.escape(str(value), quote=True)
