"""``Connection`` (a keep-alive pool of :mod:`wanllm_jupyter._http1` connections):
connections are reused, one the server closed is replaced before it carries a
request, threads share the pool, and errors keep their meaning. The plain HTTP/1.1
path reads every framing a server may use (Content-Length, chunked with extensions
and trailers, to the close, none for 204), and a malformed or cut answer is a
``ServerUnreachable`` whose connection is never reused."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator

import orjson
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


@pytest.fixture
def scripted() -> Iterator[tuple[str, list[bytes], list[bytes]]]:
    """A server answering each request on one connection with the next raw answer
    of the list (an empty one: close the connection after the previous answer);
    the requests it received land in the second list."""
    answers: list[bytes] = []
    received: list[bytes] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def serve() -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            with sock:
                data = b""
                while answers:
                    while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
                        data += chunk
                    if b"\r\n\r\n" not in data:
                        break  # the client closed this connection
                    head, _, data = data.partition(b"\r\n\r\n")
                    length = [
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ]
                    while len(data) < sum(length):
                        data += sock.recv(65536)
                    received.append(head + b"\r\n\r\n" + data[: sum(length)])
                    data = data[sum(length) :]
                    sock.sendall(answers.pop(0))
                    if answers and not answers[0]:  # b"": close after that answer
                        answers.pop(0)
                        break

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/base/", answers, received
    listener.close()


def test_every_framing_of_an_answer_is_read(
    scripted: tuple[str, list[bytes], list[bytes]],
) -> None:
    url, answers, received = scripted
    answers += [
        b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nX-A: 1\r\n\r\n[1,2,3,4]",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;ext=1\r\n[1,\r\nA\r\n2,3,4,5,6]\r\n0\r\nTrailer: x\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.0 200 OK\r\n\r\n[7]",  # no length: the body ends with the connection
    ]
    conn = Connection(url, "tok")
    assert conn.get_json("a", q="x y") == [1, 2, 3, 4]
    assert conn.post_json("b", {"k": [1] * 30_000}) == [1, 2, 3, 4, 5, 6]  # a large body
    conn.delete("c")
    assert conn.get_json("d") == [7]
    assert not conn._idle  # HTTP/1.0 without keep-alive: closed, not pooled
    heads = [r.split(b"\r\n\r\n", 1)[0].split(b"\r\n") for r in received]
    assert [h[0] for h in heads] == [
        b"GET /base/a?q=x+y HTTP/1.1",
        b"POST /base/b HTTP/1.1",
        b"DELETE /base/c HTTP/1.1",
        b"GET /base/d HTTP/1.1",
    ]
    assert all(b"Authorization: token tok" in h for h in heads)
    assert orjson.loads(received[1].split(b"\r\n\r\n", 1)[1]) == {"k": [1] * 30_000}


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/2 200 OK\r\n\r\n",
        b"200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbroken header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n[1]",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1]XX0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1]",
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X: 1\r\n" * 101 + b"\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Le",
    ],
    ids=lambda answer: answer[:40].decode(errors="replace"),
)
def test_a_malformed_or_cut_answer_is_unreachable_and_not_reused(
    scripted: tuple[str, list[bytes], list[bytes]], answer: bytes
) -> None:
    url, answers, _ = scripted
    answers += [answer, b"", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"]
    conn = Connection(url, timeout=5)
    with pytest.raises(ServerUnreachable):
        conn.get_json("x")
    assert not conn._idle
    assert conn.get_json("y") == {}  # a new connection (the bad one was closed)


def test_line_breaks_in_a_header_are_refused_before_sending(
    scripted: tuple[str, list[bytes], list[bytes]],
) -> None:
    url, _, received = scripted
    with pytest.raises(ValueError, match="line break"):
        Connection(url, "tok\r\nX-Injected: 1").get_json("x")
    assert not received
