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
