"""``wanllm sync`` of a spool written before ``finish()`` stamped its end time
(``finished_at`` absent from the patch, the line's spool time ``t`` present):
the run ends when it was spooled, not when it is synced. Real server (SQLite)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from pathlib import Path

import orjson

import wanllm_jupyter as wl
from tests.jupyter_process import JupyterServer
from wanllm_jupyter import cli


def test_sync_of_an_old_spool_keeps_the_finish_time(server: JupyterServer, tmp_path: Path) -> None:
    api = wl.Api(server.url, server.token)
    rid = str(uuid.uuid4())
    spool = tmp_path / "wanllm" / "runs" / rid / "spool.jsonl"
    spool.parent.mkdir(parents=True)
    lines = [{"op": "create", "body": {"project": "t-old-spool", "name": "old", "id": rid}}]
    spool.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    assert cli.main(["--url", server.url, "--token", server.token, "sync"]) == 0
    assert api.run(rid).data["state"] == "running"
    time.sleep(0.3)
    ended = time.time()  # the server went away; finish() spooled its patch (old format)
    old_patch = {"run_id": rid, "state": "finished", "exit_code": 0}
    spool.write_bytes(orjson.dumps({"op": "patch", "body": old_patch, "t": ended}) + b"\n")
    time.sleep(1.0)
    synced = time.time()
    assert cli.main(["--url", server.url, "--token", server.token, "sync"]) == 0
    data = api.run(rid).data
    finished = datetime.fromisoformat(data["finished_at"]).timestamp()
    assert data["state"] == "finished"
    assert abs(finished - ended) < 0.001 < synced - finished
