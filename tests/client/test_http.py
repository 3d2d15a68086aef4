"""``Connection`` (the standard library's ``http.client`` with a keep-alive pool):
connections are reused, one the server closed is replaced before it carries a
request, threads share the pool, and errors keep their meaning."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator

import pytest

from tests.jupyter_process import JupyterServer
from wanllm_jupyter._http import API, Connection
from wanllm_jupyter.core.errors import NotFound, ServerError, ServerUnreachable


def test_requests_reuse_one_connection(server: JupyterServer) -> None:
    conn = Connection(server.url, server.token)
    conn.health(refresh=True)
    (first,) = [c for _, c in conn._idle]
    for _ in range(20):
        assert conn.get_json(API + "projects") is not None
    (last,) = [c for _, c in conn._idle]
    assert last is first and last.sock is not None


def test_threads_share_a_bounded_pool(server: JupyterServer) -> None:
    conn = Connection(server.url, server.token, maxsize=2)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(25):
                assert conn.health(refresh=True)["version"]
        except BaseException as exc:  # handed to the test
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert 1 <= len(conn._idle) <= 2


@pytest.fixture
def closing_server() -> Iterator[tuple[str, list[int]]]:
    """An HTTP/1.1 server that answers one request per connection with a keep-alive
    response, then closes the connection (as a server restarting or timing out idle
    connections does); the list counts the connections accepted."""
    accepted: list[int] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def serve() -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            with sock:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                body = b'{"ok": true}'
                sock.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/", accepted
    listener.close()


def test_a_connection_the_server_closed_is_replaced(
    closing_server: tuple[str, list[int]],
) -> None:
    url, accepted = closing_server
    conn = Connection(url)
    for i in range(5):
        assert conn.get_json("anything") == {"ok": True}
        assert len(accepted) == i + 1
        (idle,) = [c.sock for _, c in conn._idle]
        assert idle is not None
        readable, _, _ = select.select([idle], [], [], 5.0)  # the server's close arrived
        assert readable  # so the next request must not go out on this connection


def test_errors_keep_their_meaning(server: JupyterServer) -> None:
    conn = Connection(server.url, server.token)
    with pytest.raises(NotFound) as missing:
        conn.get_json(API + "runs/00000000-0000-0000-0000-00000000beef")
    assert missing.value.status == 404 and missing.value.message
    with pytest.raises(ServerError) as refused:
        Connection(server.url, "wrong-token").get_json(API + "projects")
    assert refused.value.status in (401, 403)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(ServerUnreachable):
        Connection(f"http://127.0.0.1:{port}/", timeout=2).get_json(API + "health")
