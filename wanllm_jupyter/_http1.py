"""One HTTP/1.1 client connection: a plain socket for ``http://``, the standard
library's ``http.client`` for ``https://``.

The plain path is the part of ``http.client`` the tracker needs, without
importing it: a new process's first request otherwise imports ``email`` and
``ssl`` (~13 ms, most of a first point's time with a running service). It sends
one request at a time with ``Content-Length`` and reads an answer framed by
``Content-Length``, chunked transfer coding, or the connection's close. Anything
malformed or cut short raises :class:`ProtocolError` (an ``OSError``), as a
dropped connection does.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import IO, Any

import orjson

MAX_LINE = 65536  # a status or header line
MAX_HEADERS = 100
SMALL_BODY = 1 << 16  # sent in one write with the request head


class ProtocolError(ConnectionError):
    """The server's answer is not HTTP/1.x as expected (or ended early)."""


@dataclass(frozen=True)
class Response:
    """A complete answer: ``headers`` with lower-case names."""

    status: int
    reason: str
    headers: dict[str, str]
    data: bytes
    will_close: bool

    def json(self) -> Any:
        """The decoded JSON body (None when empty)."""
        return orjson.loads(self.data) if self.data else None


def create_connection(
    address: tuple[str, int], timeout: float | None, source_address: Any = None
) -> socket.socket:
    """``socket.create_connection`` with an ASCII host passed as bytes: for a str host
    ``getaddrinfo`` imports the idna codec (~2 ms of a new process's first request)."""
    host, port = address
    target = (host.encode() if host.isascii() else host, port)
    return socket.create_connection(target, timeout, source_address)  # type: ignore[arg-type]


class PlainConnection:
    """A keep-alive HTTP/1.1 connection to ``host:port`` over plain TCP; connects on
    first use. ``sock`` is None while not connected."""

    def __init__(self, host: str, port: int, timeout: float | None) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.sock: socket.socket | None = None
        self._file: IO[bytes] | None = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def exchange(
        self, method: str, target: str, headers: dict[str, str], body: bytes | None
    ) -> Response:
        """Send one request and read its whole answer."""
        head = _head(method, target, self._host_header(), headers, body)
        if self.sock is None or self._file is None:
            self.sock = create_connection((self.host, self.port), self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._file = self.sock.makefile("rb")
        else:
            self.sock.settimeout(self.timeout)
        if body is not None and len(body) > SMALL_BODY:
            self.sock.sendall(head)
            self.sock.sendall(body)
        else:
            self.sock.sendall(head + (body or b""))
        return read_answer(self._file, method)

    def _host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 80 else f"{host}:{self.port}"


def _head(
    method: str, target: str, host: str, headers: dict[str, str], body: bytes | None
) -> bytes:
    fields = {"Host": host, "Accept-Encoding": "identity", **headers}
    if body is not None or method in ("POST", "PUT", "PATCH"):
        fields["Content-Length"] = str(len(body or b""))
    lines = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in fields.items())]
    if any(c in line for line in lines for c in "\r\n\0"):
        raise ValueError("a request line or header contains a line break or NUL")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def read_answer(f: IO[bytes], method: str) -> Response:
    """Read one answer (status line, headers, body) from ``f``."""
    line = _line(f)
    version, _, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or not (code.isdigit() and len(code) == 3):
        raise ProtocolError(f"not an HTTP/1.x status line: {line[:80]!r}")
    status = int(code)
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        field = _line(f)
        if not field:
            break
        name, sep, value = field.partition(":")
        if not sep or not name or name != name.strip():
            raise ProtocolError(f"malformed header line: {field[:80]!r}")
        headers[name.lower()] = value.strip()
    else:
        raise ProtocolError(f"more than {MAX_HEADERS} header lines")
    connection = headers.get("connection", "").lower()
    will_close = connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive")
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        data = b""
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        data = _chunked(f)
    elif "content-length" in headers:
        length = headers["content-length"]
        if not length.isdigit():
            raise ProtocolError(f"bad Content-Length: {length[:40]!r}")
        data = _exactly(f, int(length))
    else:
        data, will_close = f.read(), True
    return Response(status, reason.strip(), headers, data, will_close)


def _line(f: IO[bytes]) -> str:
    raw = f.readline(MAX_LINE + 1)
    if len(raw) > MAX_LINE:
        raise ProtocolError("an answer line is too long")
    if not raw.endswith(b"\n"):
        raise ProtocolError("the connection closed mid-answer")
    return raw.rstrip(b"\r\n").decode("latin-1")


def _exactly(f: IO[bytes], n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ProtocolError(f"the answer ended after {len(data)} of {n} bytes")
    return data


def _chunked(f: IO[bytes]) -> bytes:
    parts: list[bytes] = []
    while True:
        size_text = _line(f).split(";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size: {size_text[:40]!r}") from None
        if size < 0:
            raise ProtocolError(f"bad chunk size: {size_text[:40]!r}")
        if size == 0:
            while _line(f):  # trailer fields, then the blank line
                pass
            return b"".join(parts)
        parts.append(_exactly(f, size))
        if _line(f):
            raise ProtocolError("a chunk is not followed by CRLF")


class TLSConnection:
    """``https://``: ``http.client.HTTPSConnection`` behind the same interface."""

    def __init__(self, host: str, port: int, timeout: float | None) -> None:
        import http.client

        self._conn = http.client.HTTPSConnection(host, port, timeout=timeout)
        self.timeout = timeout

    @property
    def sock(self) -> socket.socket | None:
        sock: socket.socket | None = self._conn.sock
        return sock

    def close(self) -> None:
        self._conn.close()

    def exchange(
        self, method: str, target: str, headers: dict[str, str], body: bytes | None
    ) -> Response:
        import http.client

        self._conn.timeout = self.timeout
        if self._conn.sock is not None:
            self._conn.sock.settimeout(self.timeout)
        try:
            self._conn.request(method, target, body=body, headers=headers)
            raw = self._conn.getresponse()
            data = raw.read()
        except http.client.HTTPException as exc:
            raise ProtocolError(repr(exc)) from exc
        fields = {k.lower(): v for k, v in raw.headers.items()}
        return Response(raw.status, raw.reason, fields, data, raw.will_close)
