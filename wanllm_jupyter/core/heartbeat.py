"""How often a run says it is alive, and how long a server may wait before calling it crashed.

The client POSTs ``runs/{id}/heartbeat`` every :data:`HEARTBEAT_INTERVAL`
seconds while it is online; every accepted ingest batch counts as a heartbeat
too (the server records one at most every :data:`HEARTBEAT_INTERVAL` seconds
per run). A server's ``heartbeat_timeout`` may not be shorter than
:data:`MIN_HEARTBEAT_TIMEOUT`, so one late or lost heartbeat never marks a
live run crashed.
"""

from __future__ import annotations

HEARTBEAT_INTERVAL = 5.0  # seconds between a client's heartbeats
MIN_HEARTBEAT_TIMEOUT = 2 * HEARTBEAT_INTERVAL  # the shortest timeout a server accepts
