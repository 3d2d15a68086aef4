"""Start a throwaway service for a test, or skip the test saying what is missing.

:mod:`tests.services` raises :class:`~tests.services.ServiceUnavailable` when
PostgreSQL, TimescaleDB or redis-server is not installed; a test that needs the
service then skips with that message (pytest's ``-ra`` prints it) instead of
erroring. ``tests/test_services.py`` alone fails instead: it proves provisioning.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest

from tests.services import ServiceUnavailable

T = TypeVar("T")


def start_or_skip(start: Callable[[], T]) -> T:
    """``start()``, or skip the calling test/fixture with the missing software's name."""
    try:
        return start()
    except ServiceUnavailable as e:
        pytest.skip(f"service unavailable: {e}")
