"""Fixtures for widget tests: one real Jupyter server (subprocess) per session,
and helpers that create runs and log points over its REST API."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from tests.jupyter_process import JupyterServer
from wanllm_jupyter._http import API, Connection


@pytest.fixture(scope="session")
def jupyter_server() -> JupyterServer:
    return JupyterServer.shared()  # the notebook tests use the same server


@pytest.fixture
def conn(jupyter_server: JupyterServer) -> Connection:
    return Connection(jupyter_server.url, jupyter_server.token)


class Logger:
    """Creates runs and writes points through the REST API (row form)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def run(
        self, name: str = "run", *, project: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        body = {"project": project or f"widgets-{uuid.uuid4().hex[:6]}", "name": name, **fields}
        return self.conn.post_json(API + "runs", body)

    def log(
        self,
        run_id: str,
        name: str,
        steps: Sequence[int],
        values: Sequence[float],
        times: Sequence[float] | None = None,
    ) -> None:
        rows = []
        for i, (s, v) in enumerate(zip(steps, values, strict=True)):
            row: dict[str, Any] = {
                "run_id": run_id,
                "metric_name": name,
                "step": int(s),
                "value": v
                if v == v and abs(v) != float("inf")
                else ("NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")),
            }
            if times is not None:
                row["time"] = (
                    time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(times[i]))
                    + f".{int(times[i] % 1 * 1e6):06d}Z"
                )
            rows.append(row)
        for i in range(0, len(rows), 1000):
            self.conn.post_json(API + "metrics/batch", {"metrics": rows[i : i + 1000]})

    def finish(self, run_id: str) -> None:
        self.conn.patch_json(f"{API}runs/{run_id}", {"state": "finished"})


@pytest.fixture
def logger(conn: Connection) -> Logger:
    return Logger(conn)
