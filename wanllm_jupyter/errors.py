"""TEMPORARY: moved to :mod:`wanllm_jupyter.core.errors`. Kept only until the
files other helpers are editing (uncommitted) land with their updated imports;
then deleted."""

from .core.errors import Conflict, NotFound, ServerError, ServerUnreachable, UsageError, WanllmError

__all__ = ["Conflict", "NotFound", "ServerError", "ServerUnreachable", "UsageError", "WanllmError"]
