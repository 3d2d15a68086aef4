"""Fixtures for the live hub unit tests (no Jupyter server needed)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    from services import RedisServer
except ModuleNotFoundError:  # tests/ is put on sys.path by tests/conftest.py once it exists
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from services import RedisServer


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of this test's own, so a test can stop and restart it."""
    server = RedisServer().start()
    yield server
    server.destroy()


@pytest.fixture
def hub_log() -> logging.Logger:
    return logging.getLogger("wanllm.test.live")
