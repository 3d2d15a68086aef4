"""Fixtures for the framework hooks: the logging client's real server, no downloads.

``HF_HUB_OFFLINE`` keeps transformers off the network (every model is built from a
config inside the test); Keras runs on the PyTorch backend.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["KERAS_BACKEND"] = "torch"

# the client tests' server fixtures: one SQLite-backed jupyter server, isolated spools
from tests.client.conftest import api, client_env, online, server  # noqa: F401
