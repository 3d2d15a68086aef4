"""Fixtures for the live hub unit tests (no Jupyter server needed)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.services import RedisServer


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of this test's own, so a test can stop and restart it."""
    server = RedisServer().start()
    yield server
    server.destroy()


@pytest.fixture
def hub_log() -> logging.Logger:
    return logging.getLogger("wanllm.test.live")
