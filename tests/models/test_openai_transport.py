"""The ``openai`` backend's own HTTP/1.1 exchange on response framings a real server may use, and
how a batch is spread over lanes (the caller's thread first)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from persona_lab.core.errors import BackendError, ConfigError
from persona_lab.models import ChatRequest
from persona_lab.models.openai_compat import OpenAIChatModel
from persona_lab.models.retry import RetryPolicy
from persona_lab.testing.fake_server import FakeOpenAIServer, Fault

ONE = RetryPolicy(max_attempts=1)


def _answer(text: str) -> bytes:
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 5, "completion_tokens": 2}}).encode()


class CannedServer:
    """Answers each request with the next of ``replies`` (raw bytes) and closes the connection after
    a reply that says so (``Connection: close``, HTTP/1.0, no length). Records the raw requests."""

    def __init__(self, replies: list[bytes]) -> None:
        self.replies = list(replies)
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.replies:
            conn, _ = self.sock.accept()
            with conn:
                buf = b""
                while self.replies:
                    while b"\r\n\r\n" not in buf:
                        data = conn.recv(65536)
                        if not data:
                            break
                        buf += data
                    if b"\r\n\r\n" not in buf:
                        break
                    head, _, rest = buf.partition(b"\r\n\r\n")
                    n = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    while len(rest) < n:
                        rest += conn.recv(65536)
                    self.requests.append(head + b"\r\n\r\n" + rest[:n])
                    buf = rest[n:]
                    reply = self.replies.pop(0)
                    conn.sendall(reply)
                    head = reply.split(b"\r\n\r\n")[-2 if b" 100 " in reply else 0]
                    if b"Connection: close" in head or head.startswith(b"HTTP/1.0") or b"Length" not in head:
                        break

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def canned() -> Iterator[type[CannedServer]]:
    made: list[CannedServer] = []

    def make(replies: list[bytes]) -> CannedServer:
        s = CannedServer(replies)
        made.append(s)
        return s

    yield make  # type: ignore[misc]
    for s in made:
        s.close()


def _chunked(body: bytes) -> bytes:
    half = len(body) // 2
    return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
            + b"%x;ext=1\r\n" % half + body[:half] + b"\r\n" + b"%x\r\n" % (len(body) - half) + body[half:]
            + b"\r\n0\r\nX-Trailer: 1\r\n\r\n")


def _sized(body: bytes, extra: bytes = b"", version: bytes = b"HTTP/1.1") -> bytes:
    return version + b" 200 OK\r\nContent-Length: %d\r\n" % len(body) + extra + b"\r\n" + body


def test_framings_keep_alive_chunked_continue_and_close(canned: type[CannedServer]) -> None:
    s = canned([
        _sized(_answer("one")),
        _chunked(_answer("two")),
        b"HTTP/1.1 100 Continue\r\n\r\n" + _sized(_answer("three")),
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + _answer("four"),  # no length: until close
    ])
    model = OpenAIChatModel("m", f"http://127.0.0.1:{s.port}/v1", retry=ONE)
    texts = [model.generate([ChatRequest.of(f"q{i}")])[0].text for i in range(4)]
    assert texts == ["one", "two", "three", "four"]
    first = s.requests[0]
    assert first.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{s.port}\r\n".encode() in first
    assert json.loads(first.split(b"\r\n\r\n", 1)[1])["messages"][0]["content"] == "q0"


def test_server_that_closes_after_each_answer(canned: type[CannedServer]) -> None:
    """``Connection: close`` and HTTP/1.0 answers: the next request opens a new connection."""
    s = canned([_sized(_answer("a"), b"Connection: close\r\n"), _sized(_answer("b"), version=b"HTTP/1.0"),
                _sized(_answer("c"))])
    model = OpenAIChatModel("m", f"http://127.0.0.1:{s.port}/v1", retry=ONE)
    assert [model.generate([ChatRequest.of("x")])[0].text for _ in range(3)] == ["a", "b", "c"]


def test_short_body_is_a_connection_fault_not_an_answer(canned: type[CannedServer]) -> None:
    s = canned([b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\nConnection: close\r\n\r\n" + _answer("cut")])
    model = OpenAIChatModel("m", f"http://127.0.0.1:{s.port}/v1", retry=ONE)
    with pytest.raises(BackendError, match="IncompleteRead"):
        model.generate([ChatRequest.of("x")])
    assert model.faults.snapshot()["by_kind"] == {"connection": 1}


def test_retry_after_header_is_read_whatever_its_case(canned: type[CannedServer]) -> None:
    waits: list[float] = []
    busy = b'{"error": {"message": "busy"}}'
    s = canned([b"HTTP/1.1 429 Too Many\r\nretry-AFTER: 7\r\nContent-Length: %d\r\n\r\n" % len(busy) + busy,
                _sized(_answer("ok"))])
    model = OpenAIChatModel("m", f"http://127.0.0.1:{s.port}/v1", sleep=waits.append,
                            retry=RetryPolicy(max_attempts=2, base_delay_s=0.0, jitter="none"))
    assert model.generate([ChatRequest.of("x")])[0].text == "ok"
    assert waits == [7.0]
    assert model.faults.snapshot() == {"faults": 1, "by_kind": {"429": 1}, "retries": 1, "give_ups": 0,
                                       "permanent": 0}


def test_api_key_with_a_line_break_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("PERSONA_LAB_API_KEY", "sk-abcdef\r\nX-Injected: 1")
        model = OpenAIChatModel("m", server.base_url, retry=ONE)
        with pytest.raises(ConfigError, match="line break"):
            model.generate([ChatRequest.of("x")])
        assert server.request_count == 0


def test_a_batch_at_concurrency_one_runs_on_the_callers_thread_in_order() -> None:
    with FakeOpenAIServer() as server:
        model = OpenAIChatModel("m", server.base_url, max_concurrency=1, retry=ONE)
        out = model.generate([ChatRequest.of(f"say {i}") for i in range(5)])
        assert model._executor is None, "no pool for a batch that has one lane"
        assert [r.body["messages"][0]["content"] for r in server.requests] == [f"say {i}" for i in range(5)]
        model2 = OpenAIChatModel("m", server.base_url, max_concurrency=3, retry=ONE)
        out2 = model2.generate([ChatRequest.of(f"say {i}") for i in range(7)])
        assert [c.text for c in out2] == [f"say {i}" for i in range(7)]  # the fake server echoes
        assert [c.text for c in out] == [f"say {i}" for i in range(5)]
        model2.close()


def test_a_failing_request_stops_the_other_lanes() -> None:
    with FakeOpenAIServer() as server:
        server.inject(Fault.http(401))
        model = OpenAIChatModel("m", server.base_url, max_concurrency=1, retry=ONE)
        with pytest.raises(BackendError, match="HTTP 401"):
            model.generate([ChatRequest.of(f"r{i}") for i in range(6)])
        assert server.request_count == 1, "no request starts after the batch failed"
