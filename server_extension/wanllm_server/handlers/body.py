"""Request bodies held to ``max_body_size`` before they are buffered.

Tornado reads a whole body into memory before a handler runs, so our handlers
stream theirs (``@web.stream_request_body``): once the headers are in, the
request is authenticated and authorised and its declared ``Content-Length``
checked, and only then is a byte of body read, into a buffer with a hard cap
(which also bounds chunked bodies, whose length is not declared). A refused
request is answered at once and its connection closed unread.
"""

from __future__ import annotations

from tornado.httputil import HTTPHeaders


def declared_length(headers: HTTPHeaders) -> int | None:
    """The body's declared length (repeated equal values read as one, as tornado
    does); None when chunked, absent or malformed (tornado answers 400 to those)."""
    values = {v.strip() for v in headers.get("Content-Length", "").split(",")}
    if len(values) != 1:
        return None
    try:
        return int(values.pop())
    except ValueError:
        return None


class BodyTooLarge(Exception):
    """A body past ``max_body_size`` (answered 413 with this message)."""

    def __init__(self, limit: int, size: int | None = None) -> None:
        if size is None:  # still arriving: only known to be past the limit
            super().__init__(f"request body exceeds max_body_size {limit}")
        else:
            super().__init__(f"request body of {size} bytes exceeds max_body_size {limit}")


class BodyBuffer:
    """The received body; :class:`BodyTooLarge` for the chunk that takes it past ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()

    def add(self, chunk: bytes) -> None:
        if len(self.data) + len(chunk) > self.limit:
            raise BodyTooLarge(self.limit)
        self.data += chunk
