"""Fixtures for the live hub unit tests (no Jupyter server needed)."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture
def hub_log() -> logging.Logger:
    return logging.getLogger("wanllm.test.live")
