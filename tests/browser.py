"""Debian's headless Chromium as the UI tests and browser benchmarks launch it."""

from __future__ import annotations

import os

CHROMIUM = os.environ.get("WANLLM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# Points in the longest drawn line of the first chart (a d3 path: one M/L per point).
POINT_COUNT_JS = """
() => {
  const chart = document.querySelector('.jp-OutputArea .wl-chart');
  if (!chart) return -1;
  const counts = [...chart.querySelectorAll('path.line')]
    .map(p => ((p.getAttribute('d') || '').match(/[ML]/g) || []).length);
  return counts.length ? Math.max(...counts) : 0;
}
"""
