"""The run a framework hook logs to: started on first use, or the user's own run.

A hook never makes the user call ``wl.init``: the first metric starts a run with
the hook's ``init`` arguments. When a run is already current (the user called
``wl.init``) and the hook was given no ``id``, the hook logs into it and leaves
finishing it to the user. A run the hook started is finished by :meth:`finish`
(end of training); logging after that reopens the same run (``resume="allow"``),
so a ``trainer.evaluate()`` or ``trainer.test()`` after training lands beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import _lifecycle
from .._config import as_mapping
from .._run import Run

FrameworkConfig = Callable[[], dict[str, Any]]


class RunHandle:
    """Start, reuse, finish and reopen the run of one hook."""

    def __init__(self, init_kwargs: dict[str, Any], id: str | None = None) -> None:
        self.init_kwargs = init_kwargs
        self.id = id  # the run to start or resume; None: the current run, else a new one
        self.run: Run | None = None
        self.owned = False  # the hook started the run, so the hook finishes it

    def get(self, config: FrameworkConfig | None = None, resume_id: str | None = None) -> Run:
        """The open run, else the user's current run, else a run started now: ``self.id``,
        else ``resume_id`` (a checkpoint's run), else the hook's finished run, else a new
        one. ``config()`` (the framework's, called only when a run is taken up) goes
        under the hook's own ``config``."""
        run = self.run
        if run is not None and not run.finished:
            return run
        if self.id is None:
            current = _lifecycle.current
            if current is not None and not current.finished:
                self.run, self.owned = current, False
                current.config.update(self._config(config))
                return current
        kwargs = {**self.init_kwargs, "config": self._config(config)}
        if self.id is not None:
            kwargs.update(id=self.id, resume=kwargs.get("resume") or "allow")
        elif resume_id is not None:
            kwargs.update(id=resume_id, resume="allow")
        elif run is not None:  # the hook finished it: reopen
            kwargs.update(id=run.id, resume="allow")
        self.run, self.owned = _lifecycle.init(**kwargs), True
        return self.run

    def _config(self, config: FrameworkConfig | None) -> dict[str, Any]:
        framework = config() if config is not None else {}
        return {**framework, **as_mapping(self.init_kwargs.get("config"))}

    def finish(self, exit_code: int | None = None) -> None:
        """Finish the run if the hook started it; a user's run stays open."""
        if self.owned and self.run is not None and not self.run.finished:
            self.run.finish(exit_code)

    def start_over(self) -> None:
        """Finish the hook's run; the next :meth:`get` starts a new one."""
        self.finish()
        self.run, self.owned = None, False
