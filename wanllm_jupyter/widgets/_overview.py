"""The workspace's overview (W&B's Overview tab): when, where and how a run ran,
its config and its summary, drawn as inert HTML from the run record."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ._html import esc
from ._source import epoch_seconds

MAX_ROWS = 40  # per table; the rest is counted, not drawn


def duration_text(seconds: float) -> str:
    """``3h 02m``, ``4m 05s``, ``12.3s``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {s:02d}s"


def _duration(run: Mapping[str, Any]) -> str | None:
    start = epoch_seconds(run.get("created_at"))
    end = epoch_seconds(run.get("finished_at") or run.get("heartbeat_at") or run.get("updated_at"))
    return duration_text(end - start) if start is not None and end is not None else None


def _flat(doc: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in doc.items():
        if isinstance(v, Mapping) and v:
            out += _flat(v, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", v))
    return out


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return v if isinstance(v, str) else json.dumps(v, default=str)


def _table(title: str, rows: list[tuple[str, Any]], empty: str) -> str:
    body = "".join(
        f'<tr><td class="wl-muted">{esc(k)}</td><td>{esc(_value(v))}</td></tr>'
        for k, v in rows[:MAX_ROWS]
    )
    if len(rows) > MAX_ROWS:
        body += f'<tr><td class="wl-muted" colspan="2">… {len(rows) - MAX_ROWS} more</td></tr>'
    if not rows:
        body = f'<tr><td class="wl-muted">{esc(empty)}</td></tr>'
    return (
        f'<div class="wl-overview-part"><b>{esc(title)}</b>'
        f'<table class="wl-overview-table">{body}</table></div>'
    )


def _facts(run: Mapping[str, Any]) -> list[tuple[str, Any]]:
    meta = run.get("metadata") or {}
    git = run.get("git") or {}
    facts: list[tuple[str, Any]] = [("state", run.get("state"))]
    if run.get("exit_code") is not None:
        facts.append(("exit code", run["exit_code"]))
    facts += [("created", run.get("created_at")), ("duration", _duration(run))]
    facts += [("host", run.get("host")), ("python", meta.get("python"))]
    facts.append(("notebook", meta.get("notebook")))
    if meta.get("argv"):
        facts.append(("command", " ".join(map(str, meta["argv"]))))
    if git.get("commit"):
        dirty = " (uncommitted changes)" if git.get("dirty") else ""
        facts.append(("git", f"{git.get('branch') or '?'} @ {str(git['commit'])[:10]}{dirty}"))
    if git.get("remote"):
        facts.append(("remote", git["remote"]))
    return [(k, v) for k, v in facts if v not in (None, "")]


def overview_html(run: Mapping[str, Any]) -> str:
    """Overview, config and summary side by side (they wrap on narrow cells)."""
    summary = {k: v for k, v in (run.get("summary") or {}).items() if not k.startswith("_")}
    return (
        '<details class="wl-overview" open><summary>Overview</summary>'
        '<div class="wl-overview-grid">'
        + _table("Run", _facts(run), "")
        + _table("Config", _flat(run.get("config") or {}), "no config logged")
        + _table("Summary", _flat(summary), "no summary yet")
        + "</div></details>"
    )
