"""``Run``: one experiment being logged from this process."""

from __future__ import annotations

import operator
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._columns import Columns, WanllmWarning
from ._config import Config
from ._exit_hooks import exit_code_of
from ._heartbeat import Heartbeat
from ._http import Connection
from ._loop_start import start_soon
from ._ops import Op, Patch, RunChange, System
from ._send_buffer import BUFFER_POINTS
from ._send_report import SendReport
from ._sender import Sender
from ._spool import Spool
from ._summary import MetricDefinition, Summary
from .core.errors import UsageError
from .core.heartbeat import HEARTBEAT_INTERVAL
from .core.limits import INT32_MAX, INT32_MIN, int_problem

if TYPE_CHECKING:
    from ._system import SystemMonitor
    from ._transport import Transport
    from .core.api.fields import RunState

_time = time.time
FINISH_TIMEOUT = 30.0


class Run:
    """A run: ``log()``, ``config``, ``summary``, ``define_metric()``, ``finish()``.

    Also a context manager (an exception marks it ``failed``), and displays its
    live workspace when it is the last expression of a notebook cell.
    """

    def __init__(
        self,
        *,
        id: str,
        project: str,
        name: str | None,
        config: dict[str, Any],
        summary: dict[str, Any],
        tags: list[str],
        notes: str,
        dir: str,
        mode: str,
        connection: Connection | None,
        transport: Transport | None,
        spool: Spool | None,
        step: int = 0,
        max_batch: int = 1000,
        heartbeat_every: float = HEARTBEAT_INTERVAL,
        summary_every: float = 10.0,
        on_finish: Callable[[Run], None] | None = None,
        first_ops: list[Op] | None = None,
        deferred_ops: Callable[[], list[Op]] | None = None,
        definitions: list[dict[str, Any]] | None = None,
        buffer_points: int = BUFFER_POINTS,
    ) -> None:
        self.id, self.project, self._name = id, project, name
        self.tags, self.notes, self.dir, self.mode = tags, notes, dir, mode
        self.connection = connection
        self._on_finish = on_finish
        self._finished = False  # finish() started: log() is closed
        self._done = False  # finish() completed
        self._final_queued = False  # the final summary/state patches are queued
        self._finish_lock = threading.Lock()
        self.report: SendReport | None = None
        self._monitor: SystemMonitor | None = None
        self._heartbeat: Heartbeat | None = None
        self.sender: Sender | None = None
        self.summary = Summary()
        self.summary._values.update(summary)
        for d in definitions or ():  # a resumed run's define_metric rules
            self.summary.define(d["name"], d.get("summary"), d.get("step_metric"))
        if mode == "disabled" or spool is None:
            self.config = Config(config)
            self._append: Callable[[Any], None] = lambda item: None
            return
        self.config = Config(config, on_change=self._config_changed)
        columns = Columns(id, on_point=self.summary.observe, step=step)
        self.sender = Sender(
            columns,
            spool,
            transport,
            max_batch=max_batch,
            periodic=self._summary_ops,
            periodic_every=summary_every,
            first=first_ops,
            deferred=deferred_ops,
            buffer_points=buffer_points,
        )
        self.summary._before_read = self.sender.catch_up
        self._append = self.sender.buffer.append
        self.sender.start()
        if transport is not None and heartbeat_every > 0:
            self._heartbeat = Heartbeat(id, transport, self.sender, heartbeat_every)
            start_soon(self._heartbeat.start)

    # ------------------------------------------------------------- logging
    def log(self, data: dict[str, Any], step: int | None = None, commit: bool = True) -> None:
        """Record ``data`` (metric name → number, nested dicts allowed; or media:
        ``wl.Image`` or a list of them, ``wl.Histogram``, ``wl.Table``) at ``step``.

        Only appends to an in-memory buffer; conversion, validation (one warning
        per bad key, never an exception) and sending happen on a background thread.
        Waits while the run holds ``buffer_points`` points not yet delivered
        (back-pressure: docs/client-memory.md).
        """
        try:
            self._append((data.copy(), step, commit, _time()))
        except AttributeError:  # not a dict: the sender thread warns about it
            self._append((data, step, commit, _time()))

    def define_metric(
        self, name: str, step_metric: str | None = None, summary: str | None = None, **_: Any
    ) -> MetricDefinition:
        """How ``name`` (a glob like ``"val/*"``) is summarised (``"min"``, ``"max"``,
        ``"mean"``, ``"last"``, ``"first"``, ``"none"``) and which metric is its x-axis.

        The rules are stored on the run as ``metadata["metric_definitions"]``, for
        widgets and ``Api`` in other processes."""
        d = self.summary.define(name, summary, step_metric)
        if self.sender is not None and not self._finished:
            self.sender.ops.append(Patch(self.id, {"metadata": metadata_of(self.summary)}))
        return d

    @property
    def step(self) -> int:
        """The step the next ``log()`` without ``step=`` gets."""
        if self.sender is None:
            return 0
        self.sender.catch_up()
        return self.sender.columns.step

    @property
    def name(self) -> str:
        return self._name or self.id[:8]

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def offline(self) -> bool:
        """True when data is going to the local spool instead of the server."""
        return self.sender is not None and not self.sender.online

    # ------------------------------------------------------------- sync helpers
    def _config_changed(self, delta: dict[str, Any]) -> None:
        if self.sender is not None and not self._finished:
            self.sender.ops.append(Patch(self.id, {"config": delta}))

    def _summary_ops(self) -> list[Op]:
        changes = self.summary.take_changes()
        return [Patch(self.id, {"summary": changes})] if changes else []

    def attach_monitor(self, monitor: SystemMonitor) -> None:
        """Start ``monitor``; its batches are delivered by this run's sender."""
        self._monitor = monitor
        start_soon(monitor.start)

    def _emit_system(self, body: dict[str, Any]) -> None:
        if self.sender is not None:
            self.sender.ops.append(System(body))

    # ------------------------------------------------------------- finish
    def finish(
        self,
        exit_code: int | None = None,
        quiet: bool = False,
        timeout: float = FINISH_TIMEOUT,
        *,
        spool_first: bool = False,
        crashed: bool = False,
    ) -> None:
        """Flush everything (waiting at most ``timeout`` s; what cannot reach the server
        by then is spooled to disk) and mark the run finished (``exit_code`` 0/None)
        or failed. What was sent and what is still pending is kept in :attr:`report`.

        Says one line on stdout when all went well (none with ``quiet``), and on
        stderr what is left to do (spooled, unsent or set-aside data) otherwise.

        ``spool_first``: make everything durable on disk before sending (for a
        process that may be killed at the deadline). ``crashed``: the run was left
        open when its kernel went away; it ends ``crashed`` with no exit code
        (docs/end-states.md). Thread-safe; when interrupted
        (Ctrl-C) it can be called again to complete."""
        with self._finish_lock:
            if self._done:
                return
            self._finished = True
            if self._heartbeat is not None:
                self._heartbeat.stop()
            if self._monitor is not None:
                self._monitor.stop()
            exit_code = storable_exit_code(exit_code)
            state: RunState = "crashed" if crashed else "finished" if not exit_code else "failed"
            # the end time travels with the patch: a spooled one synced later keeps it
            final: RunChange = {"state": state, "finished_at": time.time()}
            if not crashed:
                final["exit_code"] = exit_code or 0
            if self.sender is not None:
                sender = self.sender
                if not self._final_queued:
                    self._append = self._closed
                    sender.catch_up()
                    sender.ops.extend(self._summary_ops())
                    sender.ops.append(Patch(self.id, final))
                    self._final_queued = True
                self.report = sender.close(timeout, spool_first)
                _say_finished(self.name, state, self.report, quiet)
            self._done = True
        if self._on_finish is not None:
            self._on_finish(self)

    def _closed(self, item: Any) -> None:
        self._append = lambda item: None
        warnings.warn(f"wanllm: run {self.name} is finished; log() ignored", WanllmWarning, 3)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: Any, tb: Any) -> None:
        self.finish(exit_code=exit_code_of(exc_type))

    # ------------------------------------------------------------- notebook
    def chart(self, *metrics: str, **kwargs: Any) -> Any:
        """A live chart of ``metrics`` of this run (see ``wanllm_jupyter.widgets.chart``)."""
        from .widgets import chart

        return chart([self], list(metrics), **kwargs)

    def images(self, key: str, **kwargs: Any) -> Any:
        """A live panel of the images logged under ``key`` (``wanllm_jupyter.widgets.images``)."""
        from .widgets import images

        return images([self], key, **kwargs)

    def distributions(self, key: str, **kwargs: Any) -> Any:
        """A live heatmap of the histograms logged under ``key`` over steps
        (``wanllm_jupyter.widgets.distributions``)."""
        from .widgets import distributions

        return distributions([self], key, **kwargs)

    def table_panel(self, key: str, **kwargs: Any) -> Any:
        """A live table panel of ``key`` (``wanllm_jupyter.widgets.table_panel``)."""
        from .widgets import table_panel

        return table_panel(self, key, **kwargs)

    def _ipython_display_(self) -> None:
        """The run's workspace; never an error (a cell's last expression must not
        fail Run All): with no server its local data, else this repr."""
        from IPython.display import display

        try:
            from .widgets import workspace

            widget = workspace(self)
        except Exception as exc:
            print(f"{self!r}\n(no workspace: {type(exc).__name__}: {exc})")
            return
        display(widget)

    def __repr__(self) -> str:
        state = "finished" if self._finished else ("offline" if self.offline else self.mode)
        return f"<wanllm Run {self.name!r} id={self.id} project={self.project!r} ({state})>"


def metadata_of(summary: Summary) -> dict[str, Any]:
    """The run metadata recording ``summary``'s ``define_metric`` rules."""
    return {"metric_definitions": [d.as_dict() for d in summary.definitions]}


def check_str_list(arg: str, value: Any) -> list[str]:
    """``value`` as a list of strings, or a UsageError naming ``arg``."""
    if value is None:
        return []
    if isinstance(value, str):
        raise UsageError(f"{arg} must be a list of strings, got the string {value!r}")
    out = list(value)
    for i, v in enumerate(out):
        if not isinstance(v, str):
            raise UsageError(f"{arg}[{i}] must be a string, got {type(v).__name__} {v!r}")
    return out


def storable_exit_code(exit_code: Any) -> int | None:
    """``exit_code`` as the server stores it (an int32); anything else (say
    ``sys.exit(2**40)``) becomes 1 with a warning, so the final state is never refused."""
    if exit_code is None:
        return None
    try:
        code = int(operator.index(exit_code))  # bool and numpy integers too
    except TypeError:
        code = None
    if code is not None and int_problem(code, INT32_MIN, INT32_MAX) is None:
        return code
    warnings.warn(
        f"wanllm: exit code {exit_code!r:.40} is not an int32; 1 is recorded", WanllmWarning, 3
    )
    return 1


def _say_finished(name: str, state: str, report: SendReport, quiet: bool) -> None:
    """One quiet stdout line when everything reached the server; what is left to do
    (spooled, unsent, set aside) on stderr even with ``quiet``."""
    clean = not (
        report.spooled_points or report.spooled_ops or report.unsent_items
        or report.unsent_points or report.set_aside_ops
    )  # fmt: skip
    if not clean:
        print(f"wanllm: run {name} {state}: {report.describe()}", file=sys.stderr)
    elif not quiet:
        print(f"wanllm: run {name} {state} ({report.sent_points} points{report.media_part()} sent)")
