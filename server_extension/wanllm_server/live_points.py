"""A run's metric points delivered to its subscribers in live sequence order.

Each committed batch carries its run's live sequence number. Numbers a hub
already delivered are dropped (a replay, or its echo from Redis); a message
covers one unbroken block of numbers, so a subscriber sees every hole
(docs/api.md, "Live message ordering").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np

from .live_subscriber import Subscriber
from .live_wire import Chunk, gap_message, metrics_message, series_fragment


class RunSeq:
    """A run's live sequence numbers as this hub delivered them."""

    __slots__ = ("high", "hole_at")

    def __init__(self) -> None:
        self.high: int | None = None  # the highest number delivered
        self.hole_at = 0  # the latest number delivered with its predecessor missing


def account_to(run_id: str, subs: Iterable[Subscriber], state: RunSeq, seq: int) -> None:
    """The run's batches up to ``seq`` are committed: a gap to its subscribers
    when this hub has not delivered them all (lost with their publisher, or
    published before the subscribers came: they re-query either way)."""
    if state.high is not None and state.high >= seq:
        return
    state.high = seq
    notice = gap_message(
        run_id, f"batches up to {seq} were not delivered live; re-query to catch up", seq
    )
    for sub in subs:
        sub.offer(notice, seq)


def deliver_points(run_id: str, subs: set[Subscriber], state: RunSeq, chunks: list[Chunk]) -> None:
    """Deliver the tick's batches of a run in sequence order, dropping
    numbers already delivered; a message covers one unbroken block of
    numbers, a replay with unknown points becomes a gap."""
    block: list[Chunk] = []
    for chunk in sorted(chunks, key=lambda c: c.seq):
        if state.high is not None and chunk.seq <= state.high:
            continue  # delivered already (a replay, or its echo)
        if block and (chunk.lost or chunk.seq != block[-1].seq + 1):
            _deliver_block(run_id, subs, state, block)
            block = []
        if state.high is not None and chunk.seq > state.high + 1:
            state.hole_at = chunk.seq
        state.high = chunk.seq
        if chunk.lost:
            notice = gap_message(
                run_id, f"batch {chunk.seq} was replayed; re-query to catch up", chunk.seq
            )
            for sub in subs:
                sub.offer(notice, chunk.seq)
        else:
            block.append(chunk)
    if block:
        _deliver_block(run_id, subs, state, block)


def _deliver_block(run_id: str, subs: set[Subscriber], state: RunSeq, block: list[Chunk]) -> None:
    """One metrics message per subscriber for batches ``block`` (consecutive
    numbers), encoded once per (names chosen, first number)."""
    fragments = _merge_fragments(block)
    lo, hi = block[0].seq, block[-1].seq
    chosen_by_filter: dict[Any, tuple[str, ...]] = {}
    encoded: dict[tuple[tuple[str, ...], int], str] = {}
    for sub in list(subs):
        key = sub.filter_key
        chosen = chosen_by_filter.get(key)
        if chosen is None:
            chosen = chosen_by_filter[key] = tuple(n for n in fragments if sub.wants(n))
        if not chosen:
            continue
        # a subscriber that saw every number up to its last one (delivered, or
        # not wanted) gets a message continuing from there, else from ``lo``
        seen = sub.seq
        first = lo if seen is None or state.hole_at > seen or seen >= lo else seen + 1
        message = encoded.get((chosen, first))
        if message is None:
            message = encoded[(chosen, first)] = metrics_message(
                run_id, first, hi, [fragments[n] for n in chosen]
            )
        sub.offer(message, hi)


def _merge_fragments(chunks: list[Chunk]) -> dict[str, bytes]:
    """Per metric name, the JSON fragment of all its points in ``chunks``."""
    parts: dict[str, list[tuple[Any, Any, Any]]] = defaultdict(list)
    for chunk in chunks:
        if len(chunk.names) == 1:
            parts[chunk.names[0]].append((chunk.steps, chunk.times, chunk.values))
            continue
        order = np.argsort(chunk.name_idx, kind="stable")
        idx = chunk.name_idx[order]
        bounds = np.flatnonzero(np.diff(idx)) + 1
        for group in np.split(order, bounds):
            if group.size:
                name = chunk.names[int(chunk.name_idx[group[0]])]
                parts[name].append((chunk.steps[group], chunk.times[group], chunk.values[group]))
    return {
        name: series_fragment(name, *(np.concatenate(col) for col in zip(*series, strict=True)))
        for name, series in parts.items()
    }
