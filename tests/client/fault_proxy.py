"""A tiny HTTP proxy in front of a real server that answers 500 to the requests a test picks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import urllib3

Fault = Callable[[str, str, bytes], bool]  # (method, path, body) -> answer 500?
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class FaultProxy:
    """``FaultProxy(server_url)``; ``url`` is the proxied base URL; ``fault`` may be
    swapped at any time; ``faults`` counts the 500s sent."""

    def __init__(self, server_url: str, fault: Fault | None = None) -> None:
        parts = urlsplit(server_url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.fault = fault
        self.faults = 0
        self._http = urllib3.PoolManager(retries=False, timeout=30.0)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fault = proxy.fault
                if fault is not None and fault(self.command, self.path, body):
                    proxy.faults += 1
                    self._answer(500, {"Content-Type": "application/json"}, b'{"message":"fault"}')
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                resp = proxy._http.request(
                    self.command, proxy.origin + self.path, body=body or None,
                    headers=headers, redirect=False,
                )  # fmt: skip
                kept = {k: v for k, v in resp.headers.items() if k.lower() not in _HOP}
                self._answer(resp.status, kept, resp.data)

            def _answer(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _relay

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}{parts.path}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
