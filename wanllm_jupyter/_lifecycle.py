"""``init``/``log``/``finish``: the module-level, wandb-shaped run lifecycle.

One run is current at a time (``wl.run``). Calling ``init()`` again (a
re-executed notebook cell) finishes the current run first, unless ``id=`` names
it, in which case it is returned unchanged (same object, steps go on).
Unfinished runs are finished when the process ends: ``failed`` after an
uncaught exception or ``sys.exit(n != 0)``, else ``finished``; a Jupyter
kernel's runs are flushed and finished when it shuts down or restarts
(see :mod:`._exit_hooks`).
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from . import _discovery, _exit_hooks
from ._config import Config, as_mapping
from ._http import API, Connection
from ._metadata import environment_metadata, git_info, hostname, run_metadata
from ._ops import Create, CreateBody, Patch
from ._run import FINISH_TIMEOUT, Run, check_str_list
from ._send_buffer import BUFFER_POINTS
from ._spool import Spool, default_root
from ._summary import MetricDefinition
from ._sync import sync_in_background
from ._transport import HttpTransport
from .core import limits
from .core.errors import NotFound, ServerUnreachable, UsageError

MODES = ("online", "offline", "disabled")
BUFFER_ENV = "WANLLM_BUFFER_POINTS"
RESUMES = ("allow", "must", "never")
_ID_NAMESPACE = uuid.UUID("8f0b6e4e-3c1e-4d47-9b57-3f5a8b2e7a10")

current: Run | None = None
_active: list[Run] = []
_preinit_config = Config()


def run_uuid(id: str | uuid.UUID | None) -> str:
    """A run id as a UUID string: a UUID as is, any other string mapped stably (uuid5)."""
    if id is None:
        return str(uuid.uuid4())
    if isinstance(id, uuid.UUID):
        return str(id)
    if not isinstance(id, str) or not id:
        raise UsageError(f"id must be a non-empty string or UUID, got {id!r}")
    try:
        return str(uuid.UUID(id))
    except ValueError:
        return str(uuid.uuid5(_ID_NAMESPACE, id))


def init(
    project: str | None = None,
    name: str | None = None,
    config: Any = None,
    tags: list[str] | tuple[str, ...] | None = None,
    notes: str | None = None,
    id: str | None = None,
    resume: str | bool | None = None,
    dir: str | os.PathLike[str] | None = None,
    mode: str | None = None,
    *,
    group: str | None = None,
    job_type: str | None = None,
    system_metrics: bool = True,
    system_sample_every: float = 2.0,
    system_report_every: float = 10.0,
    connection: Connection | None = None,
    autostart: bool | None = None,
    buffer_points: int | None = None,
    entity: str | None = None,  # wandb compatibility: accepted, ignored
    reinit: Any = None,  # wandb compatibility: re-init always finishes the previous run
    save_code: Any = None,  # wandb compatibility: accepted, ignored
    settings: Any = None,  # wandb compatibility: accepted, ignored
    anonymous: Any = None,  # wandb compatibility: accepted, ignored
) -> Run:
    """Start (or resume) a run and make it ``wl.run``.

    ``mode``: ``"online"`` (default, or ``$WANLLM_MODE``) talks to the server found by
    discovery and falls back to offline when none answers; ``"offline"`` keeps the data
    under ``dir`` for ``wanllm sync``; ``"disabled"`` records nothing.
    ``resume``: ``"allow"`` (resume ``id`` when it exists), ``"must"``, ``"never"``.
    ``autostart``: start the local wanllm service when no server is found (default
    ``$WANLLM_AUTOSTART``, on); False logs offline instead.
    ``buffer_points``: how many points logged and not yet delivered this run keeps
    in memory before ``log()`` waits for the sender (default ``$WANLLM_BUFFER_POINTS``,
    30,000: docs/client-memory.md).
    """
    global current
    mode = mode or os.environ.get("WANLLM_MODE") or "online"
    if mode not in MODES:
        raise UsageError(f"mode must be one of {MODES}, got {mode!r}")
    if resume is True:
        resume = "allow"
    elif resume is False:
        resume = None
    if resume is not None and resume not in RESUMES:
        raise UsageError(f"resume must be one of {RESUMES}, got {resume!r}")
    if resume == "must" and id is None:
        raise UsageError('resume="must" needs the id of the run to resume')
    project = project or os.environ.get("WANLLM_PROJECT") or "default"
    for arg, val in (("project", project), ("name", name), ("notes", notes)):
        if val is not None and not isinstance(val, str):
            raise UsageError(f"{arg} must be a string, got {type(val).__name__} {val!r}")
    tag_list = check_str_list("tags", tags)
    try:
        cfg = Config({**_preinit_config.as_dict(), **dict(as_mapping(config))}).as_dict()
    except TypeError as exc:
        raise UsageError(str(exc)) from None
    name = name or None  # an empty name means none: one is generated
    check_limits(project, name, tag_list, cfg, notes, {"group": group, "job_type": job_type})
    run_id = run_uuid(id)
    budget = buffer_budget(buffer_points)

    if current is not None and not current.finished:
        if current.id == run_id:
            return current
        current.finish()

    root = default_root(dir)
    meta = run_metadata()
    if group:
        meta["group"] = group
    if job_type:
        meta["job_type"] = job_type
    started = time.time()
    create: CreateBody = {
        "project": project,
        "name": name,
        "id": run_id,
        "config": cfg,
        # not given: None, so a resume keeps the run's stored tags and notes
        "tags": tag_list if tags is not None else None,
        "notes": notes,
        "git": git_info(),
        "host": hostname(),
        "metadata": meta,
    }
    common: dict[str, Any] = dict(
        project=project, tags=tag_list, notes=notes or "", dir=str(root), mode=mode
    )
    if mode == "disabled":
        run = Run(
            id=run_id,
            name=name,
            config=cfg,
            summary={},
            connection=None,
            transport=None,
            spool=None,
            **common,
        )
        return _make_current(run)

    conn = connection
    if conn is None and mode == "online":
        conn = _discovery.find_connection(autostart)
    spool = Spool(root, run_id)
    transport = HttpTransport(conn) if conn is not None else None
    server_run: dict[str, Any] | None = None
    step = 0
    definitions = None
    if conn is not None and id is not None and resume != "never":
        definitions = _stored_definitions(conn, run_id)
        if definitions:  # the stored define_metric rules go on applying (and in the spool)
            create["metadata"]["metric_definitions"] = definitions
    if conn is not None:
        try:
            server_run = conn.post_json(
                API + "runs", {**create, "resume": resume or ("allow" if id else "never")}
            )
        except ServerUnreachable:
            if resume == "must":
                raise
        if server_run is not None and server_run.get("resumed"):
            step = _next_step(conn, run_id)
    elif resume == "must" and not spool.dir.exists():
        raise UsageError(f'resume="must": no server reachable and no local run {run_id} in {root}')

    run = Run(
        id=run_id,
        name=(server_run or {}).get("name") or name,
        config={**((server_run or {}).get("config") or {}), **cfg},
        summary=(server_run or {}).get("summary") or {},
        connection=conn,
        transport=transport,
        spool=spool,
        step=step,
        max_batch=_max_batch(conn),
        **common,
        # No server (offline) or it failed mid-create: the create goes first, with
        # the time the run started (a later `wanllm sync` keeps it).
        first_ops=[Create({**create, "created_at": started})] if server_run is None else None,
        deferred_ops=lambda: [Patch(run_id, {"metadata": environment_metadata()})],
        definitions=definitions,
        buffer_points=budget,
    )
    if conn is not None:  # runs spooled by earlier offline sessions reach the server now
        sync_in_background(root, conn, exclude={run_id})
    if system_metrics:
        from ._system import SystemMonitor

        run.attach_monitor(
            SystemMonitor(
                run_id,
                run._emit_system,
                sample_every=system_sample_every,
                report_every=system_report_every,
                node=create["host"],
            )
        )
    return _make_current(run)


def buffer_budget(buffer_points: int | None) -> int:
    """``buffer_points``, else ``$WANLLM_BUFFER_POINTS``, else the default; a
    UsageError unless it is a positive integer."""
    value: Any = buffer_points
    if value is None:
        value = os.environ.get(BUFFER_ENV) or BUFFER_POINTS
        try:
            value = int(value)
        except ValueError:
            raise UsageError(f"{BUFFER_ENV} must be a positive integer, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"buffer_points must be a positive integer, got {value!r}")
    return value


def check_limits(
    project: str,
    name: str | None,
    tags: list[str],
    config: dict[str, Any],
    notes: str | None,
    metadata: dict[str, Any],
) -> None:
    """A UsageError (a ValueError) naming the first argument the server could never
    store (:mod:`.core.limits`), before anything is sent."""
    _check_text("project", project, limits.MAX_PROJECT_LENGTH)
    _check_text("name", name, limits.MAX_RUN_NAME_LENGTH)
    _check_text("notes", notes, limits.MAX_NOTES_LENGTH, allow_empty=True)
    if len(tags) > limits.MAX_TAGS:
        raise UsageError(f"tags: at most {limits.MAX_TAGS} tags, got {len(tags)}")
    for i, tag in enumerate(tags):
        _check_text(f"tags[{i}]", tag, limits.MAX_TAG_LENGTH)
    for arg, document in (("config", config), ("metadata", metadata)):
        problem = limits.json_problem(document)
        if problem is not None:
            raise UsageError(f"{arg}: {problem}")


def _check_text(arg: str, value: str | None, max_length: int, *, allow_empty: bool = False) -> None:
    if value is not None:
        problem = limits.text_problem(value, max_length, allow_empty=allow_empty)
        if problem is not None:
            raise UsageError(f"{arg}: {problem}: {value!r:.80}")


def _max_batch(conn: Connection | None) -> int:
    if conn is None:
        return 1000
    try:
        return conn.max_columnar_batch_size  # the sender only sends columnar batches
    except Exception:
        return 1000


def _stored_definitions(conn: Connection, run_id: str) -> list[dict[str, Any]] | None:
    """The ``define_metric`` rules stored on run ``run_id`` (None: no such run or no answer)."""
    try:
        run = conn.get_json(f"{API}runs/{run_id}")
    except (NotFound, ServerUnreachable):
        return None
    return (run.get("metadata") or {}).get("metric_definitions")


def _next_step(conn: Connection, run_id: str) -> int:
    try:
        names = conn.get_json(f"{API}runs/{run_id}/metric-names").get("metrics", [])
    except NotFound:
        return 0
    return max((int(m["last_step"]) + 1 for m in names), default=0)


def _make_current(run: Run) -> Run:
    global current
    current = run
    run._on_finish = _forget
    _active.append(run)
    _preinit_config.clear()
    _exit_hooks.install(_finish_all)
    return run


def _forget(run: Run) -> None:
    global current
    if run in _active:
        _active.remove(run)
    if current is run:
        current = None


def _finish_all(exit_code: int, kernel_shutdown: bool) -> None:
    """When the process or its kernel ends: flush what is still running. A run its
    kernel leaves open (shutdown or restart without ``finish()``) ends ``crashed``
    as in W&B; a script's runs end as the script did (docs/end-states.md)."""
    for run in list(_active):
        if kernel_shutdown:
            run.finish(timeout=_exit_hooks.KERNEL_SHUTDOWN_TIMEOUT, spool_first=True, crashed=True)
        else:
            run.finish(exit_code)


# ------------------------------------------------------------------ module-level API
def log(data: dict[str, Any], step: int | None = None, commit: bool = True) -> None:
    """``wl.run.log(...)`` of the current run (see :meth:`Run.log`)."""
    run = current
    if run is None:
        raise UsageError("wanllm: call wanllm_jupyter.init() before log()")
    run.log(data, step, commit)


def finish(
    exit_code: int | None = None, quiet: bool = False, timeout: float = FINISH_TIMEOUT
) -> None:
    """Finish the current run (no-op when there is none); see :meth:`Run.finish`
    (its ``run.report`` tells what was sent)."""
    run = current
    if run is not None:
        run.finish(exit_code, quiet, timeout)


def define_metric(
    name: str, step_metric: str | None = None, summary: str | None = None, **kwargs: Any
) -> MetricDefinition:
    """``define_metric`` on the current run."""
    if current is None:
        raise UsageError("wanllm: call wanllm_jupyter.init() before define_metric()")
    return current.define_metric(name, step_metric=step_metric, summary=summary, **kwargs)


def config() -> Config:
    """The current run's config; before ``init`` a staging config merged into the next run."""
    return current.config if current is not None else _preinit_config
