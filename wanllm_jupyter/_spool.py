"""Append-only, fsync'd on-disk queue of operations a run could not send yet.

One file per run: ``<root>/runs/<run_id>/spool.jsonl``, one operation
(:data:`._ops.Op`) a JSON line, in the order they must reach the server::

    {"op": "create", "body": {...POST runs body...}}
    {"op": "metrics", "body": {...columnar batch...}}
    {"op": "media", "body": {...MediaBatch, bytes as base64...}}
    {"op": "system", "body": {...system batch...}}
    {"op": "patch", "body": {"run_id": ..., ...PATCH run body...}, "t": 1764302400.123}

``t`` is when the line was spooled (epoch seconds; absent in older spools).

The writing process holds an exclusive ``flock`` on ``spool.lock`` for as long as it
may append; replaying takes the same lock, so a live run's spool is never replayed
behind its back. Whoever holds the lock removes the file as it lets go (no lock file
outlives its process, unless killed), so a taker checks that the lock it got is
still the file's (else it takes the new one). Replayed operations leave the file:
``wanllm sync`` moves them to ``spool.synced.jsonl`` (kept for offline queries), a
live run drops them. A replay stopped early (a deadline, an error) keeps exactly the
operations not yet delivered, so the next one resumes there. Replays are safe to
repeat anyway: metric and system batches carry idempotency ids. A ``deliver``
callback may return :data:`HOLD` for an op it cannot place yet: the replay goes on,
and the held op leaves the file only once a later op is delivered (the callback has
dealt with it by then; see :mod:`._replay`).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import orjson

from ._ops import Op, from_wire, wire_body
from ._wire import ColumnarBatch

PENDING = "spool.jsonl"
SYNCED = "spool.synced.jsonl"
HOLD = object()  # returned by a replay's ``deliver``: keep this op until a later one is delivered
Deliver = Callable[[Op], Any]


def default_root(dir: str | os.PathLike[str] | None = None) -> Path:
    """``<dir>/wanllm`` (``dir`` defaulting to ``$WANLLM_DIR``), else ``wanllm`` in
    Jupyter's data directory (``~/.local/share/jupyter/wanllm`` on Linux, moved by
    ``$JUPYTER_DATA_DIR``): never the notebook's folder, so every process and
    ``wanllm sync`` find the same spools wherever they run."""
    base = dir or os.environ.get("WANLLM_DIR")
    if base:
        return Path(base).expanduser().resolve() / "wanllm"
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()).expanduser().resolve() / "wanllm"


LOCK = "spool.lock"


def _take_lock(dir: Path, blocking: bool) -> Any:
    """The open, flock'ed lock file of the run in ``dir``; None when not ``blocking``
    and a live process holds it."""
    path = dir / LOCK
    while True:
        lock = open(path, "a")  # noqa: SIM115  # held: the flock
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            lock.close()
            return None
        try:
            current = os.stat(path).st_ino == os.fstat(lock.fileno()).st_ino
        except FileNotFoundError:
            current = False
        if current:
            return lock
        lock.close()  # its holder removed it on letting go: take the new one


def _release_lock(lock: Any, dir: Path) -> None:
    """Remove the lock file (still holding it), then let go."""
    with suppress(FileNotFoundError):
        (dir / LOCK).unlink()
    lock.close()


def body_json(body: Any) -> bytes:
    """An operation's body (:func:`._ops.wire_body`) as JSON bytes (a metrics batch
    in its JSON wire form, a media batch with its PNG and Arrow bytes in base64)."""
    if isinstance(body, ColumnarBatch):
        return body.to_json()
    if isinstance(body, bytes):
        return body
    if hasattr(body, "__struct_fields__"):  # a media batch (msgspec): bytes as base64
        from ._media_batch import encode_json

        return encode_json(body)
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def encode_op(op: Op, t: float | None = None) -> bytes:
    """One spool line for an operation, spooled at ``t`` (epoch seconds) when given."""
    raw = body_json(wire_body(op))
    stamp = b"" if t is None else b',"t":' + orjson.dumps(t)
    return b'{"op":"' + op.kind.encode() + b'","body":' + raw + stamp + b"}\n"


def read_ops(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(kind, body)`` of each line of a spool file as written, in order (a torn
    last line is ignored): for readers of the data (offline queries); a replay
    delivers them as :class:`._ops.Op`."""
    for _, op in _ops_with_offsets(path):
        yield op["op"], op["body"]


def read_timed_ops(path: Path) -> Iterator[tuple[str, dict[str, Any], float | None]]:
    """``(kind, body, t)`` for each operation; ``t`` None when the line has no time."""
    for _, op in _ops_with_offsets(path):
        yield op["op"], op["body"], op.get("t")


def _ops_with_offsets(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(offset just past the op's line, op)`` for each operation."""
    end = 0
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                return  # written partially when the process died
            end += len(line)
            yield end, orjson.loads(line)


def _deliver_from(
    path: Path,
    deliver: Deliver,
    stop: Callable[[], bool] | None,
    spans: list[tuple[int, int, Op]] | None = None,
) -> int:
    """Deliver the ops of ``path`` in order until ``stop()`` says so or ``deliver``
    raises; the offset up to which the file is done with: the end of the
    last delivered op (a held op counts once a later one is delivered), or the whole
    file (a torn last line included) when every op was delivered. On an exception
    that offset is stored on it as ``__spool_offset__``. ``spans`` receives
    ``(start, end, op)`` of each op handed to ``deliver``."""
    done, holding, start = 0, False, 0
    try:
        for end, line in _ops_with_offsets(path):
            op = from_wire(line["op"], line["body"], line.get("t"))
            if stop is not None and stop():
                return done
            if spans is not None:
                spans.append((start, end, op))
            start = end
            if deliver(op) is HOLD:
                holding = True
                continue
            done, holding = end, False
    except BaseException as exc:
        exc.__spool_offset__ = done  # type: ignore[attr-defined]
        raise
    return done if holding else path.stat().st_size


def _move_prefix(
    path: Path, offset: int, synced: Path | None, leave_out: Sequence[tuple[int, int]] = ()
) -> bool:
    """Remove the first ``offset`` bytes (delivered ops) of ``path``, appending them
    to ``synced`` when given (but for the byte ranges ``leave_out``, in order);
    True when nothing is left. The remainder is rewritten atomically (temp file +
    rename), so a crash never loses undelivered ops."""
    if offset == 0:
        return path.stat().st_size == 0
    with open(path, "rb") as f:
        head = f.read(offset) if synced is not None else b""
        f.seek(offset)
        rest = f.read()
    if rest:
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            out.write(rest)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    else:
        path.unlink()
    for start, end in reversed(leave_out):
        if end <= len(head):
            head = head[:start] + head[end:]
    if synced is not None and head:
        with open(synced, "ab") as dst:
            dst.write(head)
            dst.flush()
            os.fsync(dst.fileno())
    return not rest


def _trim_torn_line(f: Any) -> None:
    """Cut a partial last line (left by a process that died mid-write) off ``f``."""
    size = pos = f.seek(0, os.SEEK_END)
    with open(f.name, "rb") as r:
        while pos > 0:
            start = max(0, pos - 65536)
            r.seek(start)
            chunk = r.read(pos - start)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                pos = start + nl + 1
                break
            pos = start
    if pos < size:
        f.truncate(pos)


class Spool:
    """The spool of one run, opened for appending by the process that owns the run."""

    def __init__(self, root: Path, run_id: str) -> None:
        self.dir = root / "runs" / run_id
        self.path = self.dir / PENDING
        self._file: Any = None
        self._lock: Any = None

    def _open(self) -> None:
        if self._file is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._lock = _take_lock(self.dir, blocking=True)
            self._file = open(self.path, "ab")  # noqa: SIM115  # kept open while the run lives
            _trim_torn_line(self._file)

    def lock(self) -> None:
        """Take the run's lock (held until :meth:`close`), e.g. before writing beside the spool."""
        self._open()

    def append(self, ops: list[Op]) -> None:
        """Append operations and fsync them (durable when this returns)."""
        if not ops:
            return
        self._open()
        now = time.time()
        self._file.write(b"".join(encode_op(op, now) for op in ops))
        self._file.flush()
        os.fsync(self._file.fileno())

    def has_pending(self) -> bool:
        """True when the file holds operations (e.g. left by an earlier process)."""
        return self.path.exists() and self.path.stat().st_size > 0

    def replay(self, deliver: Deliver, stop: Callable[[], bool] | None = None) -> bool:
        """Deliver the spooled ops in order and drop them from the file; True when
        the spool is now empty.

        Stops before the next op once ``stop()`` is true, and at (and propagating)
        the first exception; either way only the undelivered ops stay.
        """
        if not self.path.exists():
            return True
        self._open()  # hold the lock: nobody else replays or appends meanwhile
        self._file.flush()
        try:
            done = _deliver_from(self.path, deliver, stop)
        except BaseException as exc:
            self._drop(exc.__spool_offset__)  # type: ignore[attr-defined]
            raise
        return self._drop(done)

    def _drop(self, offset: int) -> bool:
        self._file.close()
        empty = _move_prefix(self.path, offset, None)
        self._file = open(self.path, "ab")  # noqa: SIM115  # kept open while the run lives
        return empty

    def close(self) -> None:
        """Release the file and its lock (the file stays when it still holds ops)."""
        if self._file is not None:
            self._file.close()
            if self.path.exists() and self.path.stat().st_size == 0:
                self.path.unlink()
            _release_lock(self._lock, self.dir)
            self._file = self._lock = None


def pending_spools(root: Path) -> list[Path]:
    """Spool files under ``root`` still holding operations, oldest first."""
    files = [p for p in (root / "runs").glob(f"*/{PENDING}") if p.stat().st_size > 0]
    return sorted(files, key=lambda p: p.stat().st_mtime)


@contextmanager
def run_lock(dir: Path) -> Iterator[bool]:
    """Take the lock of the run in ``dir`` if no live process holds it; yields whether it did."""
    lock = _take_lock(dir, blocking=False)
    if lock is None:
        yield False
        return
    try:
        yield True
    finally:
        _release_lock(lock, dir)


def replay_file(
    path: Path, deliver: Deliver, set_aside: Callable[[Op], bool] | None = None
) -> int | None:
    """Replay a spool nobody is writing, moving the ops done with to ``spool.synced.jsonl``
    (also when ``deliver`` raises part-way), but for those ``set_aside`` says
    ``deliver`` set aside instead of delivering; how many ops ``deliver`` took
    without holding them, ``None`` when a live process holds the spool."""
    with run_lock(path.parent) as locked:
        if not locked:
            return None
        n = 0

        def counted(op: Op) -> Any:
            nonlocal n
            result = deliver(op)
            n += result is not HOLD
            return result

        spans: list[tuple[int, int, Op]] = []

        def move(offset: int) -> None:
            aside = [(a, b) for a, b, op in spans if set_aside is not None and set_aside(op)]
            _move_prefix(path, offset, path.parent / SYNCED, aside)

        try:
            done = _deliver_from(path, counted, None, spans)
        except BaseException as exc:
            move(exc.__spool_offset__)  # type: ignore[attr-defined]
            raise
        move(done)
        return n
