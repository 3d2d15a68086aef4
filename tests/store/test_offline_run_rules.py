"""Online and offline runs follow one set of rules (wanllm_jupyter.core.run_rules):
the same create / resume / patch sequence, applied by every store and by the
offline mode's spool replay, leaves the same run."""

from __future__ import annotations

import time
import uuid
from typing import Any

from wanllm_server.store import Store
from wanllm_server.store.base import RunCreate, RunUpdate

from wanllm_jupyter import _offline_runs as offline

COMPARED = (
    "project",
    "name",
    "state",
    "config",
    "summary",
    "tags",
    "notes",
    "metadata",
    "exit_code",
)
OPS: list[tuple[str, dict[str, Any]]] = [
    ("create", {"project": "p", "name": "n", "config": {"a": 1}, "tags": ["x", "x", "y"]}),
    ("patch", {"config": {"b": 2}, "summary": {"s": 1}, "add_tags": ["z"], "remove_tags": ["x"]}),
    ("patch", {"state": "crashed"}),
    ("patch", {"heartbeat": True}),  # alive after all: running again
    ("patch", {"state": "finished", "exit_code": 0, "notes": "done"}),
    ("create", {"config": {"a": 3}, "metadata": {"m": 1}, "tags": ["w"]}),  # a resume
    ("patch", {"state": "failed", "exit_code": 2, "tags": ["v", "v"], "add_tags": ["u"]}),
    ("patch", {"add_tags": [f"t{i}" for i in range(200)]}),  # past MAX_TAGS: refused
]


async def test_offline_replay_matches_every_store(store: Store) -> None:
    rid = uuid.uuid4()
    record: dict[str, Any] = {}
    t = time.time()
    for i, (kind, body) in enumerate(OPS):
        if kind == "create" and not record:
            await store.create_run(RunCreate(id=rid, **body))
            record = offline.created(str(rid), body, t + i)
        elif kind == "create":
            await store.create_run(RunCreate(id=rid, project="p", **body))
            offline.resume(record, body, t + i)
        else:
            try:
                await store.update_run(rid, RunUpdate(**body))
            except Exception as e:  # the store refuses the update past the tag limit
                assert "more than" in str(e)
            offline.patch(record, body, t + i)
    online = await store.get_run(rid)
    assert {k: getattr(online, k) for k in COMPARED} == {k: record[k] for k in COMPARED}
    assert record["state"] == "failed" and record["tags"] == ["v", "u"]
    assert record["config"] == {"a": 3, "b": 2} and record["summary"] == {"s": 1}
    assert (online.finished_at is None) == (record["finished_at"] is None) is False
    shown = offline.wire(record)
    assert shown["finished_at"].endswith("Z") and shown["created_at"] <= shown["finished_at"]
