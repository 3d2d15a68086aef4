"""Where spools live (Jupyter's data directory unless ``WANLLM_DIR`` or ``dir`` says
otherwise, never the working directory) and that no lock file outlives its holder."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from wanllm_jupyter._ops import Patch
from wanllm_jupyter._spool import LOCK, PENDING, Spool, default_root, run_lock


def test_default_root_is_a_data_directory_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WANLLM_DIR", raising=False)
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    assert default_root() == (tmp_path / "data" / "wanllm").resolve()
    monkeypatch.setenv("WANLLM_DIR", str(tmp_path / "mine"))
    assert default_root() == (tmp_path / "mine" / "wanllm").resolve()
    assert default_root(tmp_path / "arg") == (tmp_path / "arg" / "wanllm").resolve()


def test_no_lock_file_outlives_its_holder(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "r1")
    spool.append([Patch("r1", {"config": {"x": 1}})])
    assert (spool.dir / LOCK).exists()
    with run_lock(spool.dir) as locked:
        assert not locked  # a live process holds it
    assert (spool.dir / LOCK).exists()  # ... and a refused taker does not remove it
    spool.close()
    assert sorted(os.listdir(spool.dir)) == [PENDING]  # the ops stay, the lock goes
    with run_lock(spool.dir) as locked:
        assert locked
        assert (spool.dir / LOCK).exists()
    assert not (spool.dir / LOCK).exists()
    empty = Spool(tmp_path, "r2")
    empty.lock()
    empty.close()
    assert os.listdir(empty.dir) == []


def test_a_taker_waiting_on_a_removed_lock_takes_the_new_one(tmp_path: Path) -> None:
    first = Spool(tmp_path, "r")
    first.lock()
    second = Spool(tmp_path, "r")
    waiter = threading.Thread(target=second.lock)  # blocks on the file ``first`` holds
    waiter.start()
    time.sleep(0.2)
    first.close()  # removes that file as it lets go; ``second`` must not keep the orphan
    waiter.join(5)
    assert not waiter.is_alive()
    with run_lock(second.dir) as locked:
        assert not locked  # ``second`` holds the lock everybody takes now
    second.close()
    assert not (second.dir / LOCK).exists()


def test_sync_also_finds_spools_left_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs spooled to ``./wanllm`` before spools moved are still synced by default."""
    from wanllm_jupyter.cli import _sync_roots

    monkeypatch.delenv("WANLLM_DIR", raising=False)
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    data = (tmp_path / "data" / "wanllm").resolve()
    assert _sync_roots(None) == [data]
    (tmp_path / "wanllm" / "runs").mkdir(parents=True)
    assert _sync_roots(None) == [data, (tmp_path / "wanllm").resolve()]
    assert _sync_roots(str(tmp_path / "mine")) == [(tmp_path / "mine" / "wanllm").resolve()]
