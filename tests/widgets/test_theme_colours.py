"""Dark theme (issue 11, item 13): the widgets' HTML and CSS take text, border,
background, grid and legend colours from JupyterLab's theme variables; a literal
colour appears only as a ``var(--jp-…, fallback)``, in the palette, or on a
coloured badge (white text on a fixed colour reads the same in both themes)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = [
    "wanllm_jupyter/widgets/chart.py",
    "wanllm_jupyter/widgets/compare.py",
    "wanllm_jupyter/widgets/workspace.py",
    "wanllm_jupyter/widgets/system.py",
    "js/widgets/chart_overlay.css",
    "js/widgets/run_table.css",
    "js/style/index.css",
]
# a CSS property (or bqplot style key) set to a literal colour
LITERAL = re.compile(
    r"(?:color|background|border(?:-[a-z]+)?|fill|stroke|grid_color)\s*[:=]\s*['\"]?"
    r"(#[0-9a-fA-F]{3,8}\b|white\b|black\b|rgba?\((?!0,\s*0,\s*0,\s*0\)))"
)
BADGE_TEXT = "color: white"  # the .wl-badge pill: white on a fixed state colour


@pytest.mark.parametrize("path", FILES)
def test_no_literal_colours_outside_theme_variables(path: str) -> None:
    text = (ROOT / path).read_text()
    bad = [m.group(0) for m in LITERAL.finditer(text) if m.group(0) != BADGE_TEXT]
    assert not bad, f"{path}: literal colours {bad}"
