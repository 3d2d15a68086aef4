"""Replaying a spool so that no operation can block the ones behind it.

An operation the server rejects for good (a 4xx other than 408/429) is set aside
(:mod:`._rejected`) and the replay goes on. An operation answered with a 5xx is
retried on later replays; once it has failed ``fault_limit`` replays in a row it
is held and the next operation is tried: if that one gets through, the held one
is tried once more and, failing again, set aside. When the next one fails too,
the server is failing everything (an outage, not this operation): nothing is set
aside and both stay spooled. Unreachable servers and local failures stop the
replay, keeping everything.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import _rejected
from ._ops import Op
from ._spool import HOLD, Spool, replay_file
from ._transport import is_rejection, is_server_fault

FAULT_LIMIT = 3  # replays in a row an op may fail with 5xx before it may be set aside

OnSent = Callable[[Op, Any], None]  # (op, server's answer)
OnSetAside = Callable[[Op, "int | None", str], None]  # (op, status, message)


class Replayer:
    """The ``deliver`` callback of a spool replay; keeps its 5xx count across replays."""

    def __init__(
        self,
        deliver: Callable[[Op], Any],
        dir: Path,
        *,
        fault_limit: int = FAULT_LIMIT,
        on_sent: OnSent | None = None,
        on_set_aside: OnSetAside | None = None,
    ) -> None:
        self._send, self.dir, self.fault_limit = deliver, dir, fault_limit
        self.on_sent, self.on_set_aside = on_sent, on_set_aside
        self.faults = 0  # replays in a row the first undelivered op failed with 5xx
        self.sent = self.set_aside = 0
        self._aside: set[int] = set()  # ids of the ops set aside by the current replay
        self._held: Op | None = None  # waiting for a later op

    def replay(self, spool: Spool, stop: Callable[[], bool] | None = None) -> bool:
        """Replay a live run's spool (see :meth:`Spool.replay`); True when it is empty."""
        self._held, self._aside = None, set()
        return spool.replay(self, stop)

    def replay_file(self, path: Path) -> int | None:
        """Replay a spool nobody is writing (see :func:`._spool.replay_file`); the ops
        set aside are left out of ``spool.synced.jsonl`` (what the server has)."""
        self._held, self._aside = None, set()
        try:
            return replay_file(path, self, lambda op: id(op) in self._aside)
        finally:
            self._aside = set()

    def __call__(self, op: Op) -> Any:
        try:
            result = self._send(op)
        except Exception as exc:
            if is_rejection(exc):
                self._set_aside(op, exc)
                self._answered()
                return None
            if is_server_fault(exc) and self._held is None:
                self.faults += 1
                if self.faults >= self.fault_limit:
                    self._held = op
                    return HOLD
            raise
        self._sent(op, result)
        self._answered()
        return None

    def _answered(self) -> None:
        """The server handled an op: it works, so a held op fails on its own account."""
        held, self._held = self._held, None
        self.faults = 0
        if held is None:
            return
        try:
            result = self._send(held)
        except Exception as again:
            if not (is_rejection(again) or is_server_fault(again)):
                raise  # unreachable now: the held op stays spooled
            tries = self.fault_limit + 1
            note = f" (failed {tries} times while later operations were accepted)"
            self._set_aside(held, again, "" if is_rejection(again) else note)
        else:
            self._sent(held, result)

    def _sent(self, op: Op, result: Any) -> None:
        self.sent += 1
        if self.on_sent is not None:
            self.on_sent(op, result)

    def _set_aside(self, op: Op, exc: Exception, note: str = "") -> None:
        status, message = _rejected.reason_of(exc)
        _rejected.append(self.dir, op, status, message + note)
        self._aside.add(id(op))
        self.set_aside += 1
        if self.on_set_aside is not None:
            self.on_set_aside(op, status, message + note)
