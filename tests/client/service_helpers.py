"""Fixtures' helpers for the local-service tests: kernels with no Jupyter server
behind them, an isolated runtime dir and database, and cleanup of every service
a test started."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client import KernelClient, KernelManager

from wanllm_jupyter import _discovery, _lifecycle
from wanllm_jupyter.core import service as core

LOGGING_TO = re.compile(r"wanllm: logging to (http://\S+) \((.+)\)")


def logging_to(out: str) -> tuple[str, str]:
    """(url, how) of the client's one line saying where it logs."""
    match = LOGGING_TO.search(out)
    assert match, out
    return match.group(1), match.group(2)


@pytest.fixture
def local(client_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Autostart on, this test's own database and runtime dir (no Jupyter server in
    it); every service started meanwhile is stopped afterwards. Yields the database URL."""
    db_url = f"sqlite:///{client_env}/wanllm.db"
    monkeypatch.setenv("WANLLM_AUTOSTART", "1")
    monkeypatch.setenv("WANLLM_DATABASE_URL", db_url)
    monkeypatch.setenv("WANLLM_IDLE_TIMEOUT", "120")
    monkeypatch.setattr(_discovery, "_announced", set())
    yield db_url
    for run in list(_lifecycle._active):
        run.finish(quiet=True, timeout=5)
    kill_services(client_env / "runtime", db_url)


class Kernel:
    """A python3 kernel started by jupyter_client (as VS Code or Colab do): no
    Jupyter server behind it. ``run`` executes a cell and returns its stdout."""

    def __init__(self, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=dict(env or os.environ), cwd=str(cwd))
        self.kc: KernelClient = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(
        self, code: str, status: str = "ok", timeout: float = 60, data: list[str] | None = None
    ) -> str:
        """Execute one cell; its stdout. The execute reply must have ``status``;
        ``data`` collects the mime types of what the cell displayed."""
        out: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
                out.append(msg["content"]["text"])
            if msg["msg_type"] in ("display_data", "execute_result") and data is not None:
                data.extend(msg["content"]["data"])

        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        assert reply["content"]["status"] == status, (reply["content"], "".join(out))
        return "".join(out)

    def start(self, code: str) -> str:
        """Send a cell without waiting; the message id for :meth:`wait`."""
        return self.kc.execute(code)

    def wait(self, msg_id: str, timeout: float = 60) -> str:
        """The stdout of the cell ``msg_id`` once its reply came (which must be ok)."""
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            msg = self.kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
                out.append(msg["content"]["text"])
            if msg["msg_type"] == "error":
                raise AssertionError("".join(msg["content"]["traceback"]))
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out)

    def shutdown(self) -> None:
        self.kc.stop_channels()
        if self.km.has_kernel:
            self.km.shutdown_kernel(now=True)


def service_pids(runtime: Path, db_url: str) -> set[int]:
    """Pids of live wanllm services recorded for ``db_url`` (runtime file, owner lock)."""
    pids = set()
    info = core.read_json(core.service_file(db_url, runtime))
    if info and core.pid_alive(info.get("pid")):
        pids.add(info["pid"])
    path = core.sqlite_path(db_url)
    owner = core.read_owner(path) if path is not None else None
    if owner and owner.get("kind") == "service" and core.pid_alive(owner.get("pid")):
        pids.add(owner["pid"])
    return pids


def kill_services(runtime: Path, db_url: str) -> None:
    """Stop every service recorded for ``db_url`` (SIGTERM, then SIGKILL)."""
    pids = service_pids(runtime, db_url)
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while any(core.pid_alive(p) and not _zombie(p) for p in pids):
        if time.monotonic() > deadline:
            for pid in pids:
                if core.pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.05)


def wait_dead(pid: int, timeout: float) -> bool:
    """True once ``pid`` has exited (a zombie counts) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not core.pid_alive(pid) or _zombie(pid):
            return True
        time.sleep(0.05)
    return False


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return False
