"""Colours and styles shared by the widgets: stable per-run colours, state colours."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from ._html import esc

# Tableau 10 (colour-blind friendly, distinct in print and on dark themes)
PALETTE: tuple[str, ...] = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
DASHES: tuple[str, ...] = ("solid", "dashed", "dotted", "dash_dotted")
STATE_COLORS: dict[str, str] = {
    "running": "#1f77b4",
    "finished": "#2ca02c",
    "failed": "#d62728",
    "crashed": "#ff7f0e",
}
MUTED = "#8a8f98"


def stable_colors(keys: Sequence[str]) -> dict[str, str]:
    """A colour per key, preferring the key's hashed palette slot (so a run keeps
    its colour across charts) and probing to the next free slot on collisions."""
    taken: set[int] = set()
    out: dict[str, str] = {}
    for key in keys:
        if key in out:
            continue
        slot = zlib.crc32(key.encode()) % len(PALETTE)
        if len(taken) < len(PALETTE):
            while slot in taken:
                slot = (slot + 1) % len(PALETTE)
        taken.add(slot)
        out[key] = PALETTE[slot]
    return out


def state_badge(state: str) -> str:
    """HTML pill for a run state, coloured like the sidebar."""
    color = STATE_COLORS.get(state, MUTED)
    return (
        f'<span style="background:{color};color:white;border-radius:9px;'
        f'padding:1px 8px;font-size:11px;font-weight:600">{esc(state)}</span>'
    )
