"""One writing server per SQLite file: an exclusive ``flock`` on ``<db>.owner``.

Any server (JupyterLab's extension or the standalone service) takes the lock
before it opens a SQLite store and keeps it until it closes the store; the lock
file holds the owner's ``{"url", "pid", "kind"}`` for the others to name it and
for clients to find it (:mod:`wanllm_jupyter.core.service`). The kernel drops
the lock when the owner dies, so a crashed owner never blocks the next one.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from wanllm_jupyter.core.service import OWNED_ELSEWHERE, owner_file, read_json


class OwnedElsewhere(Exception):
    """Another live server owns the database; ``owner`` is what its lock file says."""

    def __init__(self, db_path: Path, owner: dict[str, Any]) -> None:
        self.owner = owner
        where = owner.get("url") or "an unknown address"
        super().__init__(
            f"sqlite database {db_path} {OWNED_ELSEWHERE} {where} "
            f"(pid {owner.get('pid', '?')}, {owner.get('kind', 'server')}); "
            "a SQLite file has one writing server: use that one, or stop it"
        )


class OwnerLock:
    """The owner lock of one SQLite file, held from :meth:`acquire` to :meth:`release`."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.path = owner_file(db_path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, info: dict[str, Any]) -> None:
        """Take the lock and record ``info``; :class:`OwnedElsewhere` when another holds it."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OwnedElsewhere(self.db_path, read_json(self.path) or {}) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Give the database up (the file stays; an unlocked file names no owner)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.ftruncate(fd, 0)
            os.close(fd)
