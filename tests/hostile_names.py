"""Runs whose every user string is markup (issue 9, item 1): the widget unit test
and the browser test seed them through the REST API and check that each string
is drawn as text, literally, and never runs script.

Each string carries ``<img src=x onerror=...>``: parsed as HTML it would set
``window.__pwned``. Config keys and system-metric types use a dot-free variant
(a dot nests config keys and splits a metric type into group and label)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from wanllm_jupyter._http import API, Connection

PWN = '<img src=x onerror="window.__pwned=1">'
PWN_NODOT = '<img src=x onerror="__pwned=1">'

PROJECT = f"{PWN}proj"
RUN_NAMES = (f"{PWN}run-a", f"{PWN}run-b & 'q'")
TAGS = (f"{PWN}tag", "a&b<i>")
CONFIG_KEY = f"{PWN_NODOT}key"
CONFIG_VALUES = (f"{PWN}value-a", f"{PWN}value-b")
NOTES = f"{PWN}notes\n<script>window.__pwned=2</script>"
METRICS = (f"{PWN}loss", "<b>acc</b>&amp;")
SYSTEM_TYPE = f"{PWN_NODOT}sys"
SYSTEM_DEVICE = f"{PWN}dev"


@dataclass(frozen=True)
class HostileRuns:
    """The seeded runs' ids (``ids[0]`` has notes and system metrics)."""

    ids: tuple[str, ...]


def seed(api: Connection) -> HostileRuns:
    """Two finished runs of :data:`PROJECT`, each logging both :data:`METRICS`;
    the first also logs :data:`SYSTEM_TYPE` samples."""
    ids = []
    for i, (name, value) in enumerate(zip(RUN_NAMES, CONFIG_VALUES, strict=True)):
        body: dict[str, Any] = {
            "project": PROJECT,
            "name": name,
            "tags": list(TAGS),
            "config": {CONFIG_KEY: value, "lr": 0.1 * (i + 1)},
        }
        if i == 0:
            body["notes"] = NOTES
        run = api.post_json(API + "runs", body)
        points = [
            {"run_id": run["id"], "metric_name": m, "step": s, "value": (k + 1) / (s + 1 + i)}
            for k, m in enumerate(METRICS)
            for s in range(20)
        ]
        api.post_json(API + "metrics/batch", {"metrics": points})
        if i == 0:
            now = time.time()
            samples = [
                {
                    "run_id": run["id"],
                    "metric_type": SYSTEM_TYPE,
                    "value": 10.0 + s,
                    "time": now + s,
                    "device": SYSTEM_DEVICE,
                }
                for s in range(5)
            ]
            api.post_json(API + "metrics/system/batch", {"metrics": samples})
        api.patch_json(
            f"{API}runs/{run['id']}", {"state": "finished", "summary": {METRICS[0]: 0.5}}
        )
        ids.append(run["id"])
    return HostileRuns(tuple(ids))
