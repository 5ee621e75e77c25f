"""A real OpenAI-compatible HTTP server on loopback that injects faults on cue, for client tests.

Mocking ``http.client`` would test our assumptions about HTTP rather than HTTP; this server speaks
real HTTP/1.1 (keep-alive included) on ``127.0.0.1`` with an ephemeral port, so a client's timeouts,
connection handling, status codes and body parsing are exercised for real, in milliseconds.

Faults are consumed one per request from a queue, then ``default_fault`` (if any) applies to every
later request, else the request is answered normally by ``responder``::

    with FakeOpenAIServer(faults=[Fault.rate_limited(retry_after=0), Fault.http(500)]) as server:
        model = OpenAIChatModel("m", server.base_url)
        ...  # the third request succeeds; server.requests holds all three

``POST {prefix}/completions`` answers with token log-probabilities in the two shapes real servers use:
``echo`` + ``logprobs`` (OpenAI's legacy completions, vLLM) and vLLM's ``prompt_logprobs``. Its
"tokenizer" is :func:`fake_tokens` and its language model :func:`fake_logprob`, so a test can compute
the exact score a client should report.
"""

from __future__ import annotations

import json
import re
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

FaultKind = Literal["status", "delay", "truncated", "empty_choices", "missing_content", "disconnect"]

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
MAX_BODY_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Fault:
    """One misbehaviour of the server, applied to one request (or to all, as the default fault)."""

    kind: FaultKind
    status: int = 500
    retry_after: str | None = None
    delay_s: float = 0.0
    body: str | None = None

    @classmethod
    def http(cls, status: int, *, retry_after: float | str | None = None, body: str | None = None) -> Fault:
        """An error status with an OpenAI-style error body (401 echoes the presented key, as some
        real servers do, so that clients must scrub it)."""
        return cls(
            "status", status=status, retry_after=None if retry_after is None else str(retry_after), body=body
        )

    @classmethod
    def rate_limited(cls, retry_after: float | str | None = None) -> Fault:
        """HTTP 429, optionally with a ``Retry-After`` header (seconds or an HTTP date)."""
        return cls.http(429, retry_after=retry_after)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Answer normally, but only after ``seconds`` (longer than the client's read timeout)."""
        return cls("delay", delay_s=seconds)

    @classmethod
    def truncated_json(cls) -> Fault:
        """HTTP 200 whose body is a valid answer cut in half (well-formed HTTP, broken JSON)."""
        return cls("truncated")

    @classmethod
    def empty_choices(cls) -> Fault:
        """HTTP 200 with ``"choices": []``."""
        return cls("empty_choices")

    @classmethod
    def missing_content(cls) -> Fault:
        """HTTP 200 whose first choice has no ``message.content``."""
        return cls("missing_content")

    @classmethod
    def disconnect(cls) -> Fault:
        """Close the connection without sending a response."""
        return cls("disconnect")


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server received it."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: Any  # the parsed JSON body, or None when it did not parse
    raw: bytes
    fault: Fault | None
    received: float = field(default_factory=time.monotonic)


def echo_last_user(body: Mapping[str, Any]) -> str:
    """The default responder: the content of the last user message."""
    for m in reversed(body.get("messages") or []):
        if isinstance(m, Mapping) and m.get("role") == "user":
            return str(m.get("content", ""))
    return ""


def _word_count(text: str) -> int:
    return len(text.split())


LOGPROB_MODES: tuple[str, ...] = ("echo", "prompt_logprobs")
_TOKEN = re.compile(r"\s*\S+|\s+")


def fake_tokens(text: str) -> list[tuple[int, str]]:
    """The fake server's tokenizer: each word with the whitespace before it, as (offset, token)."""
    return [(m.start(), m.group()) for m in _TOKEN.finditer(text)]


def fake_logprob(prefix: str, token: str) -> float:
    """The fake server's "language model": a word seen earlier in the prompt is likelier (so a score
    depends on the context, as FLR needs), else a fixed value per word in [-6, -2)."""
    word = token.strip().lower()
    if word and word in prefix.lower():
        return -0.5
    return -2.0 - (zlib.crc32(word.encode("utf-8")) % 400) / 100.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: FakeOpenAIServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is an expected event here, not a server bug.
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; avoid 40 ms delayed-ACK stalls
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence the per-request stderr lines of the stdlib server."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        owner = self.server.owner
        if self.path.rstrip("/") == f"{owner.prefix}/models":
            self._send_json(200, {"object": "list", "data": [{"id": owner.model_id, "object": "model"}]})
        else:
            self._send_json(404, _error_body(f"no route for GET {self.path}", "not_found"))

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._send_json(413, _error_body("request body too large", "too_large"))
            return
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = None
        route = self.path.split("?", 1)[0].rstrip("/")
        completions = route == f"{owner.prefix}/completions"
        routed = completions or route == f"{owner.prefix}/chat/completions"
        fault = owner._next_fault() if routed else None
        owner._record(RecordedRequest("POST", self.path, dict(self.headers.items()), body, raw, fault))
        if not routed:
            self._send_json(404, _error_body(f"no route for POST {self.path}", "not_found"))
            return
        if not isinstance(body, dict):
            self._send_json(400, _error_body("request body is not a JSON object", "invalid_request_error"))
            return
        if (
            owner.require_key is not None
            and self.headers.get("Authorization") != f"Bearer {owner.require_key}"
        ):
            self._send_json(401, _error_body("missing or wrong API key", "invalid_api_key"))
            return
        if completions:
            if fault is None:
                self._completions(body)
            else:
                self._apply(fault, body)
            return
        if fault is None:
            self._send_json(200, owner._answer(body))
            return
        self._apply(fault, body)

    def _completions(self, body: dict[str, Any]) -> None:
        owner = self.server.owner
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            self._send_json(400, _error_body("prompt must be a string", "invalid_request_error"))
            return
        if body.get("echo") and "echo" not in owner.logprob_modes:
            self._send_json(400, _error_body("echo is not supported", "invalid_request_error"))
            return
        if "prompt_logprobs" in body and "prompt_logprobs" not in owner.logprob_modes:
            if owner.ignore_unknown_fields:
                body = {k: v for k, v in body.items() if k != "prompt_logprobs"}
            else:
                self._send_json(400, _error_body("unknown field prompt_logprobs", "invalid_request_error"))
                return
        self._send_json(200, owner._complete_text(body))

    def _apply(self, fault: Fault, body: dict[str, Any]) -> None:
        owner = self.server.owner
        answer = owner._complete_text if "prompt" in body else owner._answer
        if fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            if fault.body is not None:
                self._send_raw(fault.status, fault.body.encode("utf-8"), headers)
                return
            if fault.status == 401:
                presented = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                err = _error_body(f"Incorrect API key provided: {presented}", "invalid_api_key")
            elif fault.status == 404:
                err = _error_body(f"The model `{body.get('model')}` does not exist", "model_not_found")
            else:
                err = _error_body(f"injected HTTP {fault.status}", "server_error")
            self._send_json(fault.status, err, headers)
        elif fault.kind == "delay":
            owner._stop.wait(fault.delay_s)
            self._send_json(200, answer(body))
        elif fault.kind == "truncated":
            blob = json.dumps(answer(body)).encode("utf-8")
            self._send_raw(200, blob[: len(blob) // 2])
        elif fault.kind == "empty_choices":
            reply = answer(body)
            reply["choices"] = []
            self._send_json(200, reply)
        elif fault.kind == "missing_content":
            reply = answer(body)
            reply["choices"][0].pop("message", None)
            reply["choices"][0].pop("text", None)
            self._send_json(200, reply)
        elif fault.kind == "disconnect":
            self.close_connection = True
        else:  # pragma: no cover - Fault.kind is a closed set
            raise ValueError(f"unknown fault kind {fault.kind!r}")

    def _send_json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send_raw(status, json.dumps(obj).encode("utf-8"), headers)

    def _send_raw(self, status: int, blob: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(blob)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(blob)
        self.wfile.flush()


def _error_body(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": code, "code": code}}


class FakeOpenAIServer:
    """An OpenAI-compatible ``POST {prefix}/chat/completions`` server on loopback, with injected faults.

    Args:
        responder: ``(request_body) -> reply text``; echoes the last user message by default.
        faults: faults for the next requests, one each, in order.
        default_fault: applied to every request once ``faults`` is used up (e.g. ``Fault.http(500)``
            for a server that never recovers); ``None`` answers normally.
        host: a loopback address; anything else is refused.
        prefix: the path the routes live under (``/v1`` like vLLM and OpenAI).
        require_key: when set, requests must carry ``Authorization: Bearer <require_key>``.
        model_id: the model ``GET {prefix}/models`` lists.
        logprob_modes: which prompt log-probability requests ``/completions`` honours (``"echo"``,
            ``"prompt_logprobs"``); others get HTTP 400, or are ignored with ``ignore_unknown_fields``.
        ignore_unknown_fields: answer a ``prompt_logprobs`` request as if the field were absent (as
            servers that drop unknown fields do).
        name: a label for this server (its replies say it; replica tests tell servers apart by it).
    """

    def __init__(
        self,
        responder: Callable[[Mapping[str, Any]], str] | None = None,
        *,
        faults: Iterable[Fault] = (),
        default_fault: Fault | None = None,
        host: str = "127.0.0.1",
        prefix: str = "/v1",
        require_key: str | None = None,
        model_id: str = "fake-model",
        logprob_modes: Iterable[str] = LOGPROB_MODES,
        ignore_unknown_fields: bool = False,
        name: str = "fake",
    ) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"FakeOpenAIServer only serves loopback, not {host!r}; use 127.0.0.1")
        self.responder = responder or echo_last_user
        self.host = host
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.require_key = require_key
        self.model_id = model_id
        self.logprob_modes = tuple(logprob_modes)
        self.ignore_unknown_fields = ignore_unknown_fields
        self.name = name
        self._lock = threading.Lock()
        self._faults: deque[Fault] = deque(faults)
        self._default_fault = default_fault
        self._requests: list[RecordedRequest] = []
        self._counter = 0
        self._stop = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> FakeOpenAIServer:
        if self._httpd is not None:
            return self
        self._stop.clear()
        httpd = _Server((self.host, 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="FakeOpenAIServer", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; waiting handlers (delay faults) are released. Safe to call twice."""
        self._stop.set()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses ------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FakeOpenAIServer is not running; use it as a context manager or call start()")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.prefix}"

    def spec(self, model: str = "m") -> str:
        """The persona-lab backend spec pointing at this server."""
        return f"openai:{model}@{self.base_url}"

    # -- scripting and inspection ---------------------------------------------------------------
    def inject(self, *faults: Fault) -> None:
        """Queue faults for the next requests."""
        with self._lock:
            self._faults.extend(faults)

    def set_default_fault(self, fault: Fault | None) -> None:
        with self._lock:
            self._default_fault = fault

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (a copy), in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    def clear(self) -> None:
        """Forget recorded requests and queued faults."""
        with self._lock:
            self._requests.clear()
            self._faults.clear()

    # -- used by the handler --------------------------------------------------------------------
    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else self._default_fault

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _answer(self, body: Mapping[str, Any]) -> dict[str, Any]:
        text = self.responder(body)
        with self._lock:
            self._counter += 1
            n = self._counter
        prompt_tokens = sum(_word_count(str(m.get("content", ""))) for m in body.get("messages") or [])
        completion_tokens = _word_count(text)
        return {
            "id": f"chatcmpl-fake-{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", self.model_id),
            "system_fingerprint": self.name,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def _complete_text(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A ``text_completion`` with one generated token and, as asked, prompt log-probabilities."""
        prompt = str(body.get("prompt", ""))
        generated = " ok"
        echo = bool(body.get("echo"))
        text = prompt + generated if echo else generated
        choice: dict[str, Any] = {"index": 0, "text": text, "finish_reason": "length"}
        prompt_tokens = fake_tokens(prompt)
        if body.get("logprobs") is not None:
            toks = (prompt_tokens if echo else []) + [(len(prompt), generated)]
            values: list[float | None] = [
                None if i == 0 and echo else fake_logprob(text[:off], tok) for i, (off, tok) in enumerate(toks)
            ]
            choice["logprobs"] = {
                "tokens": [t for _, t in toks],
                "token_logprobs": values,
                "text_offset": [off for off, _ in toks],
                "top_logprobs": [None if v is None else {t: v} for (_, t), v in zip(toks, values)],
            }
        if body.get("prompt_logprobs") is not None:
            choice["prompt_logprobs"] = [
                None if i == 0 else {str(zlib.crc32(tok.encode("utf-8")) % 50000): {
                    "logprob": fake_logprob(prompt[:off], tok), "rank": 1, "decoded_token": tok}}
                for i, (off, tok) in enumerate(prompt_tokens)
            ]
        with self._lock:
            self._counter += 1
            n = self._counter
        return {
            "id": f"cmpl-fake-{n}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": body.get("model", self.model_id),
            "choices": [choice],
            "usage": {"prompt_tokens": len(prompt_tokens), "completion_tokens": 1,
                      "total_tokens": len(prompt_tokens) + 1},
        }
