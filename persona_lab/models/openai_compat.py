"""The ``openai:<model>@<base_url>`` backend: any OpenAI-compatible chat-completions server.

vLLM, llama.cpp's ``llama-server``, Ollama and OpenAI all accept ``POST {base_url}/chat/completions``.
This client uses only the standard library (sockets and a minimal HTTP/1.1 exchange), keeps up to ``max_concurrency``
requests in flight per server, and retries timeouts, connection errors, 408/409/429 and 5xx
through :mod:`persona_lab.models.retry`; other 4xx fail at once with a hint.

Several replicas of one model (``openai:<model>@<url1>,<url2>`` or ``@file:<path>``) share the load:
each request goes to the replica with the fewest in flight, and one that keeps failing leaves the
rotation for a while. Token log-probabilities come from ``POST {base_url}/completions`` (``echo`` +
``logprobs``, or vLLM's ``prompt_logprobs``), so a served model can be the scorer of FLR.

Spec options follow a ``?``: ``openai:m@http://h:8000/v1?max_concurrency=32&score_mode=echo``.

The API key is read from ``$PERSONA_LAB_API_KEY`` (else ``$OPENAI_API_KEY``) when a request is
sent. It is never stored in the object's state, repr or pickle, and it is scrubbed from every
message this module logs or raises, including error bodies a server echoes back.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import itertools
import json
import logging
import os
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from persona_lab.core.errors import BackendError, BackendUnavailableError, ConfigError
from persona_lab.core.messages import Message
from persona_lab.models.base import ChatRequest, Completion, ScoreRequest, Usage
from persona_lab.models.registry import register_backend
from persona_lab.models.retry import FaultCounter, RetryEvent, RetryPolicy, call_with_retries
from persona_lab.models.tokens import approx_token_count

log = logging.getLogger(__name__)

API_KEY_ENVS: tuple[str, ...] = ("PERSONA_LAB_API_KEY", "OPENAI_API_KEY")
SPEC_EXAMPLE = "openai:gpt-4o-mini@https://api.openai.com/v1"
LOCAL_EXAMPLE = "openai:Qwen/Qwen2.5-0.5B-Instruct@http://127.0.0.1:8000/v1"
RETRYABLE_STATUS = frozenset({408, 409, 429})
REDACTED = "***"
_MIN_SECRET_LEN = 4  # shorter "keys" (e.g. "x" for a local server) are not secrets and would mangle text
_SNIPPET_CHARS = 300
SCORE_MODES: tuple[str, ...] = ("auto", "echo", "prompt_logprobs")
TEMPLATES: tuple[str, ...] = ("chatml", "llama3", "plain")

T = TypeVar("T")


# ------------------------------------------------------------------------------------------------
# spec parsing


@dataclass(frozen=True)
class _Endpoint:
    scheme: str
    host: str
    port: int
    path: str  # the base path, e.g. "/v1" (no trailing slash)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.path}"

    @property
    def is_loopback(self) -> bool:
        return self.host in ("localhost", "::1") or self.host.startswith("127.")


def parse_base_url(base_url: str) -> _Endpoint:
    """Validate ``base_url`` (``http(s)://host[:port][/path]``, no credentials, no query)."""
    if not isinstance(base_url, str) or not base_url.strip():
        raise ConfigError("empty base_url for the openai backend", hint=f"use e.g. `{LOCAL_EXAMPLE}`")
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"base_url {_strip_userinfo(base_url)!r} is not an http(s) URL",
            hint=f"write it in full, e.g. `{LOCAL_EXAMPLE}`",
        )
    if parts.username or parts.password:
        # Never echo the URL here: the part before '@' may be a password.
        raise ConfigError(
            "base_url must not carry credentials (user:password@host)",
            hint=f"put the key in ${API_KEY_ENVS[0]} and use a plain URL, e.g. `{LOCAL_EXAMPLE}`",
        )
    if parts.query or parts.fragment:
        raise ConfigError(
            f"base_url {base_url!r} must not have a query string or fragment",
            hint="the backend appends /chat/completions to it; pass just the base, e.g. http://127.0.0.1:8000/v1",
        )
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(
            f"base_url {base_url!r} has an invalid port", hint=f"e.g. `{LOCAL_EXAMPLE}`"
        ) from None
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    return _Endpoint(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))


def _strip_userinfo(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url.split("@")[-1]
    host_part, slash, path = rest.partition("/")
    return f"{scheme}://{host_part.rpartition('@')[2]}{slash}{path}"


def parse_openai_spec(rest: str) -> tuple[str, str]:
    """Split ``<model>@<base_url>`` (the part after ``openai:``) into model and base_url.

    The split is at the last ``@`` that starts an ``http://`` or ``https://`` URL (or ``file:``, a
    file of replica URLs), so model names may contain ``@``, ``/`` and ``:`` (``llama3.2:1b``,
    ``Qwen/Qwen2.5-0.5B-Instruct``). Several replicas come back comma-separated; options after
    ``?`` are dropped here (see :func:`parse_openai_spec_options`).
    """
    model, base_url, _ = parse_openai_spec_options(rest)
    return model, base_url


def parse_openai_spec_options(rest: str) -> tuple[str, str, dict[str, str]]:
    """``<model>@<url>[,<url>...][?k=v&...]`` -> (model, comma-separated base URLs, options)."""
    rest, _, query = rest.partition("?")
    options: dict[str, str] = {}
    for item in filter(None, query.split("&")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"bad openai backend option {item!r}", hint="write ?key=value&key=value")
        options[key.strip()] = value.strip()
    cut = max(rest.rfind("@http://"), rest.rfind("@https://"), rest.rfind("@file:"))
    if cut <= 0:
        raise ConfigError(
            f"bad openai backend spec 'openai:{_strip_userinfo(rest)}'",
            hint=f"write openai:<model>@<base_url>, e.g. `{LOCAL_EXAMPLE}` or `{SPEC_EXAMPLE}`",
        )
    model, base_url = rest[:cut].strip(), rest[cut + 1 :].strip()
    if not model:
        raise ConfigError("the openai backend spec has an empty model name", hint=f"e.g. `{LOCAL_EXAMPLE}`")
    if base_url.startswith("file:"):
        base_url = _read_url_file(base_url.removeprefix("file:"))
    return model, base_url, options


# ------------------------------------------------------------------------------------------------
# secrets


class _Secret:
    """A string that never shows itself in a repr, a log line or a pickle."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("an API key is not picklable; it is read from the environment instead")


def _env_api_key() -> str | None:
    for name in API_KEY_ENVS:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def _scrub(text: str, secrets: Sequence[str | None]) -> str:
    for s in secrets:
        if s and len(s) >= _MIN_SECRET_LEN:
            text = text.replace(s, REDACTED)
    return text


# ------------------------------------------------------------------------------------------------
# one attempt's failure


class _AttemptError(Exception):
    """Why one HTTP attempt failed (message already scrubbed)."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        status: int | None = None,
        retryable: bool,
        retry_after_s: float | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind  # "http", "timeout", "connection", "malformed"
        self.message = message
        self.status = status
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.hint = hint


def _parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date in the future."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_snippet(raw: bytes) -> str:
    """The server's error message (OpenAI's ``{"error": {"message": ...}}`` shape), else raw text."""
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        err = obj.get("error", obj.get("detail", obj.get("message")))
        if isinstance(err, dict):
            err = err.get("message", err)
        if err is not None:
            text = err if isinstance(err, str) else json.dumps(err)
    text = " ".join(text.split())
    return text[:_SNIPPET_CHARS] + ("..." if len(text) > _SNIPPET_CHARS else "")


# ------------------------------------------------------------------------------------------------
# the HTTP/1.1 exchange


_MAX_LINE = 65536
_MAX_HEADERS = 100


class _Conn:
    """One keep-alive HTTP/1.1 connection that sends a POST in one write and reads the answer.

    ``http.client`` costs more per request than the rest of this backend together on a fast server:
    it parses every response's headers with the ``email`` package, opens a new file object per
    response and sends headers and body in separate writes. A chat-completions exchange needs none
    of that, so this reads the status line, the headers into a dict (lower-case names) and the body
    (``Content-Length``, chunked, or until the server closes) from one buffered reader per
    connection. Failures raise what ``http.client`` raises (``RemoteDisconnected``,
    ``IncompleteRead``, ``BadStatusLine``), timeouts ``TimeoutError``.
    """

    __slots__ = ("rfile", "sock")

    def __init__(self, ep: _Endpoint, connect_timeout_s: float, read_timeout_s: float) -> None:
        sock = socket.create_connection((ep.host, ep.port), timeout=connect_timeout_s)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if ep.scheme == "https":
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=ep.host)
            sock.settimeout(read_timeout_s)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.rfile = sock.makefile("rb")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.rfile.close()
        with contextlib.suppress(OSError):
            self.sock.close()

    def exchange(self, request: bytes) -> tuple[int, dict[str, str], bytes, bool]:
        """Send ``request`` (head and body) and return (status, headers, body, server closes)."""
        self.sock.sendall(request)
        rfile = self.rfile
        while True:
            line = rfile.readline(_MAX_LINE + 1)
            if not line:
                raise http.client.RemoteDisconnected("Remote end closed connection without response")
            version, _, rest = line.partition(b" ")
            if not version.startswith(b"HTTP/") or len(line) > _MAX_LINE:
                raise http.client.BadStatusLine(repr(line[:100]))
            try:
                status = int(rest[:3])
            except ValueError:
                raise http.client.BadStatusLine(repr(line[:100])) from None
            headers: dict[str, str] = {}
            for _ in range(_MAX_HEADERS + 1):
                h = rfile.readline(_MAX_LINE + 1)
                if h in (b"\r\n", b"\n", b""):
                    break
                if len(h) > _MAX_LINE:
                    raise http.client.LineTooLong("header line")
                name, _, value = h.partition(b":")
                headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
            else:
                raise http.client.HTTPException(f"more than {_MAX_HEADERS} response headers")
            if not 100 <= status < 200:  # 1xx (e.g. 100 Continue) comes before the real answer
                break
        conn_hdr = headers.get("connection", "").lower()
        will_close = "close" in conn_hdr or (version == b"HTTP/1.0" and "keep-alive" not in conn_hdr)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked()
        elif "content-length" in headers:
            try:
                n = int(headers["content-length"])
            except ValueError:
                raise http.client.HTTPException(f"bad Content-Length {headers['content-length']!r}") from None
            body = rfile.read(n)
            if len(body) < n:
                raise http.client.IncompleteRead(body, n - len(body))
        elif status in (204, 304):
            body = b""
        else:  # no length: the body runs until the server closes the connection
            body, will_close = rfile.read(), True
        return status, headers, body, will_close

    def _read_chunked(self) -> bytes:
        rfile, parts = self.rfile, []
        while True:
            line = rfile.readline(_MAX_LINE + 1)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise http.client.IncompleteRead(b"".join(parts)) from None
            if size == 0:
                while rfile.readline(_MAX_LINE + 1) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            chunk = rfile.read(size)
            if len(chunk) < size:
                raise http.client.IncompleteRead(b"".join(parts) + chunk, size - len(chunk))
            parts.append(chunk)
            rfile.readline(_MAX_LINE + 1)  # the CRLF after the chunk


class _SharedRandom:
    """Backoff jitter drawn from one generator under a lock (``random.Random`` is not documented as
    thread-safe); costs nothing until a retry actually happens."""

    def __init__(self, rng: random.Random, lock: threading.Lock) -> None:
        self._rng, self._lock = rng, lock

    def uniform(self, a: float, b: float) -> float:
        with self._lock:
            return self._rng.uniform(a, b)


# ------------------------------------------------------------------------------------------------
# replicas


class _Replica:
    """One server of a replica set: its address, what it has in flight, and what it has served."""

    __slots__ = (
        "completion_tokens", "consecutive_failures", "down_until", "endpoint", "failures", "in_flight",
        "index", "prompt_tokens", "requests", "seconds", "taken_out",
    )

    def __init__(self, index: int, endpoint: _Endpoint) -> None:
        self.index = index
        self.endpoint = endpoint
        self.in_flight = 0
        self.requests = 0  # successful exchanges
        self.failures = 0  # attempts that failed at the transport or with a 5xx/429/malformed body
        self.consecutive_failures = 0
        self.down_until = 0.0  # time.monotonic() before which the replica is out of rotation
        self.taken_out = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.seconds = 0.0


class _ReplicaSet:
    """Least-in-flight choice over replicas, with a per-replica cap and a cool-down for failing ones.

    A replica that fails ``fail_threshold`` attempts in a row leaves the rotation for ``cooldown_s``
    seconds; when every replica is out, the one that comes back first is used rather than stalling.
    """

    def __init__(self, endpoints: Sequence[_Endpoint], cap: int, fail_threshold: int, cooldown_s: float,
                 spec: str) -> None:
        self.replicas = [_Replica(i, e) for i, e in enumerate(endpoints)]
        self.cap = cap
        self.fail_threshold = fail_threshold
        self.cooldown_s = cooldown_s
        self._spec = spec
        self._cond = threading.Condition(threading.Lock())
        self._turn = 0  # rotates the tie-break so equal replicas share the load

    def acquire(self) -> _Replica:
        reps = self.replicas
        with self._cond:
            while True:
                if len(reps) == 1:
                    best = reps[0] if reps[0].in_flight < self.cap else None
                else:
                    best = self._pick(time.monotonic())
                if best is not None:
                    best.in_flight += 1
                    return best
                self._cond.wait()

    def _pick(self, now: float) -> _Replica | None:
        reps = self.replicas
        live = [r for r in reps if r.down_until <= now]
        if not live:  # all out of rotation: try the one due back first rather than fail or stall
            live = [min(reps, key=lambda r: r.down_until)]
        n = len(reps)
        self._turn = (self._turn + 1) % n
        best = None
        for k in range(n):
            r = reps[(self._turn + k) % n]
            if r in live and r.in_flight < self.cap and (best is None or r.in_flight < best.in_flight):
                best = r
        return best

    def release(self, rep: _Replica, *, failed: bool, tokens: tuple[int, int] = (0, 0),
                seconds: float = 0.0) -> None:
        with self._cond:
            rep.in_flight -= 1
            if failed:
                rep.failures += 1
                rep.consecutive_failures += 1
                now = time.monotonic()
                if (len(self.replicas) > 1 and rep.consecutive_failures >= self.fail_threshold
                        and rep.down_until <= now):
                    rep.down_until = now + self.cooldown_s
                    rep.taken_out += 1
                    rep.consecutive_failures = 0
                    log.warning("%s: replica %s failed %d times in a row; out of rotation for %.0fs",
                                self._spec, rep.endpoint.url, self.fail_threshold, self.cooldown_s)
            else:
                rep.requests += 1
                rep.consecutive_failures = 0
                rep.prompt_tokens += tokens[0]
                rep.completion_tokens += tokens[1]
                rep.seconds += seconds
            self._cond.notify()

    def stats(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        with self._cond:
            return [
                {
                    "url": r.endpoint.url,
                    "requests": r.requests,
                    "failures": r.failures,
                    "prompt_tokens": r.prompt_tokens,
                    "completion_tokens": r.completion_tokens,
                    "seconds": round(r.seconds, 6),
                    "in_flight": r.in_flight,
                    "times_taken_out": r.taken_out,
                    "in_rotation": r.down_until <= now,
                }
                for r in self.replicas
            ]


# ------------------------------------------------------------------------------------------------
# prompt rendering for scoring (the completions endpoint takes text, not messages)


def render_chat(messages: Sequence[Message], template: str) -> tuple[str, list[tuple[int, int]]]:
    """Render ``messages`` as one prompt text; also return each message's content span in it.

    ``chatml`` (Qwen, SmolLM2, many others), ``llama3`` and ``plain`` (``role: content`` lines, the
    transcript the ``hf`` backend uses for a base model) are known. The server must use the same
    template for the score to mean what a chat request would see.
    """
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    if template == "llama3":
        parts.append("<|begin_of_text|>")
        pos = len(parts[0])
    for m in messages:
        if template == "chatml":
            head, tail = f"<|im_start|>{m.role}\n", "<|im_end|>\n"
        elif template == "llama3":
            head, tail = f"<|start_header_id|>{m.role}<|end_header_id|>\n\n", "<|eot_id|>"
        elif template == "plain":
            head, tail = f"{m.role}: ", "\n\n"
        else:
            raise ConfigError(f"unknown chat template {template!r} for scoring", hint=f"use one of {TEMPLATES}")
        spans.append((pos + len(head), pos + len(head) + len(m.content)))
        parts += [head, m.content, tail]
        pos += len(head) + len(m.content) + len(tail)
    return "".join(parts), spans


def _mean_in_span(offsets: Sequence[int], tokens: Sequence[str], logprobs: Sequence[Any],
                  span: tuple[int, int]) -> float | None:
    begin, end = span
    keep = [float(lp) for off, tok, lp in zip(offsets, tokens, logprobs)
            if lp is not None and off < end and off + max(len(tok), 1) > begin]
    return sum(keep) / len(keep) if keep else None


# ------------------------------------------------------------------------------------------------
# the client


class OpenAIChatModel:
    """A :class:`~persona_lab.models.base.ChatModel` (and :class:`~persona_lab.models.base.Scorer`)
    for one OpenAI-compatible server or a set of replicas serving the same model.

    Construction only validates arguments: no connection, no network call. The object is
    thread-safe and picklable (connections and the thread pool are rebuilt lazily after unpickling).

    Args:
        model: the model name the server knows (``vllm serve <model>``, ``ollama pull <model>``).
        base_url: the API base, usually ending in ``/v1``, e.g. ``http://127.0.0.1:8000/v1``; several
            replicas as a list or a comma-separated string. Requests go to the replica with the
            fewest in flight.
        api_key: the key, for code that holds it already; it is not pickled. ``None`` reads
            ``$PERSONA_LAB_API_KEY`` then ``$OPENAI_API_KEY`` at request time (local servers
            usually need none).
        connect_timeout_s: seconds to open a TCP (and TLS) connection.
        read_timeout_s: seconds to wait for the response once the request is sent (generation
            time counts here, so keep it generous for long outputs).
        max_concurrency: requests kept in flight at once on each replica, across all calling threads.
        retry: attempts and backoff for transient failures (a retry may go to another replica).
        malformed_attempts: attempts after which a malformed 200 body (broken JSON, no choices,
            no content) is given up on, even if ``retry`` allows more.
        fail_threshold: failed attempts in a row that take a replica out of rotation.
        cooldown_s: how long a failing replica stays out of rotation.
        score_mode: how :meth:`score` asks for prompt log-probabilities: ``"echo"`` (completions with
            ``echo`` + ``logprobs``; OpenAI-style, vLLM), ``"prompt_logprobs"`` (vLLM's extra field)
            or ``"auto"`` (echo first, then prompt_logprobs; the first that works is kept).
        template: the chat template :meth:`score` renders prompts with (see :func:`render_chat`).
        extra_body: server-specific fields merged into every chat request body (vLLM's
            ``guided_json``, ``repetition_penalty``, ``response_format``...); part of the cache key.
        rng: jitter source for the backoff (a fresh ``random.Random()`` by default).
        sleep: how to wait between retries; tests pass a recorder so they run instantly. Not
            pickled (an unpickled copy uses ``time.sleep``).
    """

    def __init__(
        self,
        model: str,
        base_url: str | Sequence[str],
        *,
        api_key: str | None = None,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 300.0,
        max_concurrency: int = 8,
        retry: RetryPolicy | None = None,
        malformed_attempts: int = 3,
        fail_threshold: int = 3,
        cooldown_s: float = 30.0,
        score_mode: str = "auto",
        template: str = "chatml",
        extra_body: Mapping[str, Any] | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ConfigError("the openai backend needs a model name", hint=f"e.g. `{LOCAL_EXAMPLE}`")
        if max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if connect_timeout_s <= 0 or read_timeout_s <= 0:
            raise ConfigError(f"timeouts must be > 0, got connect={connect_timeout_s}, read={read_timeout_s}")
        if malformed_attempts < 1:
            raise ConfigError(f"malformed_attempts must be >= 1, got {malformed_attempts}")
        if fail_threshold < 1 or cooldown_s < 0:
            raise ConfigError(f"fail_threshold must be >= 1 and cooldown_s >= 0, got {fail_threshold}, {cooldown_s}")
        if score_mode not in SCORE_MODES:
            raise ConfigError(f"unknown score_mode {score_mode!r}", hint=f"use one of {SCORE_MODES}")
        if template not in TEMPLATES:
            raise ConfigError(f"unknown template {template!r}", hint=f"use one of {TEMPLATES}")
        self.model = model.strip()
        urls = [u for u in (base_url.split(",") if isinstance(base_url, str) else base_url)]
        if not urls:
            raise ConfigError("the openai backend needs at least one base_url", hint=f"e.g. `{LOCAL_EXAMPLE}`")
        self._endpoints = tuple(parse_base_url(u) for u in urls)
        if len({e.url for e in self._endpoints}) != len(self._endpoints):
            raise ConfigError(f"a replica is listed twice in {base_url!r}", hint="list each server once")
        self._endpoint = self._endpoints[0]
        self.base_url = ",".join(e.url for e in self._endpoints)
        self.connect_timeout_s = float(connect_timeout_s)
        self.read_timeout_s = float(read_timeout_s)
        self.max_concurrency = int(max_concurrency)
        self.retry = retry if retry is not None else RetryPolicy()
        self.malformed_attempts = int(malformed_attempts)
        self.fail_threshold = int(fail_threshold)
        self.cooldown_s = float(cooldown_s)
        self.score_mode = score_mode
        self.template = template
        self.extra_body = _check_extra_body(extra_body)
        self.options: dict[str, str] = {}  # the spec options this object was built from (for `spec`)
        self._rng = rng if rng is not None else random.Random()
        self._secret = _Secret(api_key) if api_key else None
        self._sleep = sleep
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self._executor: ThreadPoolExecutor | None = None
        self._heads: dict[tuple[int, str], bytes] = {}
        self._warned_plaintext = False
        self._resolved_score_mode: str | None = None if self.score_mode == "auto" else self.score_mode
        self._shared_rng = _SharedRandom(self._rng, threading.Lock())
        self._replicas = _ReplicaSet(self._endpoints, self.max_concurrency, self.fail_threshold, self.cooldown_s,
                                     self.spec)
        self.retries = 0  # retries made so far (all requests, all threads)
        self.faults = FaultCounter()  # failed attempts by kind, retries, give-ups: read by run summaries

    # -- identity -------------------------------------------------------------------------------
    @property
    def spec(self) -> str:
        opts = "&".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"openai:{self.model}@{self.base_url}" + (f"?{opts}" if opts else "")

    @property
    def cache_spec(self) -> str:
        """The backend's part of the response-cache key: the model and what changes its answers,
        never which replica answered (a set of replicas shares one key, whatever its members)."""
        where = self.base_url if len(self._endpoints) == 1 else "replicas"
        extra = f"#{json.dumps(self.extra_body, sort_keys=True)}" if self.extra_body else ""
        return f"openai:{self.model}@{where}{extra}"

    @property
    def url(self) -> str:
        """The chat-completions URL of the first replica (never carries credentials)."""
        return f"{self._endpoint.url}/chat/completions"

    def replica_stats(self) -> list[dict[str, Any]]:
        """Per-replica usage: requests served, failures, tokens, seconds, whether it is in rotation
        and how often it was taken out. For ``summary.json``."""
        return self._replicas.stats()

    def __repr__(self) -> str:
        return (
            f"OpenAIChatModel(model={self.model!r}, base_url={self.base_url!r}, "
            f"max_concurrency={self.max_concurrency}, read_timeout_s={self.read_timeout_s})"
        )

    # -- pickling: configuration only -----------------------------------------------------------
    _STATE = (
        "model", "_endpoints", "_endpoint", "base_url", "connect_timeout_s", "read_timeout_s", "max_concurrency",
        "retry", "malformed_attempts", "fail_threshold", "cooldown_s", "score_mode", "template", "extra_body",
        "options",
    )

    def __getstate__(self) -> dict[str, Any]:
        return {k: self.__dict__[k] for k in self._STATE}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._rng = random.Random()
        self._sleep = time.sleep
        self._secret = None
        self._init_runtime()

    # -- public API -----------------------------------------------------------------------------
    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """Complete every request (up to ``max_concurrency`` per replica in flight); results keep the
        input order. One request runs on the calling thread (no pool hop); a batch runs its first
        request there and the rest on the pool.

        Raises:
            BackendError: a request failed permanently or after its last retry; requests of this
                batch that had not started are cancelled.
        """
        return self._map(self._complete, list(requests))

    def score(self, requests: Sequence[ScoreRequest]) -> list[float]:
        """Mean per-token log-probability of each continuation's content given the chat before it,
        from the server's prompt log-probabilities (the prompt is rendered with ``template``; only
        the tokens overlapping the continuation's content count)."""
        return self._map(self._score_one, list(requests))

    def close(self) -> None:
        """Stop the worker threads (they close their connections). Safe to call twice."""
        with self._lock:
            pool, self._executor = self._executor, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        self._drop_connection()

    def __enter__(self) -> OpenAIChatModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------
    def _map(self, fn: Callable[[Any], T], items: list[Any]) -> list[T]:
        """``fn`` over ``items`` with up to the replicas' capacity in flight. The caller's thread is
        one lane and each pool thread another; a lane takes the next item when its last is done,
        so a batch costs one pool task per lane rather than one per item (a batch at concurrency 1
        runs on the caller alone). After a failure no lane starts another item."""
        n = len(items)
        if n == 0:
            return []
        if n == 1:
            return [fn(items[0])]
        out: list[Any] = [None] * n
        taken = itertools.count()
        errors: list[BaseException] = []

        def lane() -> None:
            while not errors:
                i = next(taken)  # itertools.count is atomic under the GIL
                if i >= n:
                    return
                try:
                    out[i] = fn(items[i])
                except BaseException as exc:
                    errors.append(exc)
                    raise

        lanes = min(n, self.max_concurrency * len(self._endpoints))
        pool = self._pool() if lanes > 1 else None
        futures = [pool.submit(lane) for _ in range(lanes - 1)] if pool is not None else []
        lane()  # raises at once if this lane's request fails
        wait(futures, return_when=FIRST_EXCEPTION)  # all done, or one failed: the others stop after theirs
        if errors:
            raise errors[0]
        return out

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.max_concurrency * len(self._endpoints), thread_name_prefix="persona-lab-openai"
                )
            return self._executor

    def _api_key(self) -> str | None:
        return self._secret.reveal() if self._secret is not None else _env_api_key()

    def _secrets(self) -> list[str | None]:
        return [
            self._secret.reveal() if self._secret is not None else None,
            *map(os.environ.get, API_KEY_ENVS),
        ]

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        p = request.params
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [m.to_dict() for m in request.messages],
            "max_tokens": p.max_new_tokens,
            "temperature": p.temperature,
            "top_p": p.top_p,
            "stream": False,
        }
        if p.seed is not None:
            body["seed"] = p.seed
        if p.stop:
            body["stop"] = list(p.stop)
        if self.extra_body:
            body.update(self.extra_body)
        extra = getattr(p, "extra_body", None)
        if extra:
            body.update(extra)
        return body

    def _complete(self, request: ChatRequest) -> Completion:
        payload = json.dumps(self._body(request), ensure_ascii=False).encode("utf-8")
        start = time.perf_counter()
        completion = self._call("/chat/completions", payload, lambda raw: self._parse(raw, request))
        latency = time.perf_counter() - start
        u = completion.usage
        return Completion(
            completion.text, Usage(u.prompt_tokens, u.completion_tokens, latency), completion.finish_reason
        )

    def _call(self, route: str, payload: bytes, parse: Callable[[bytes], T]) -> T:
        """POST ``payload`` to ``route`` on a replica, with retries (each attempt picks a replica).

        The first attempt runs here, outside the retry machinery (closures, the retry loop), which
        most requests never need; its failure is handed to :meth:`_call_with_retries` as attempt 1,
        so fault counting, the malformed-reply budget and the retry log see it as before."""
        try:
            return self._attempt_on_replica(route, payload, parse)
        except _AttemptError as exc:
            return self._call_with_retries(route, payload, parse, exc)

    def _attempt_on_replica(self, route: str, payload: bytes, parse: Callable[[bytes], T]) -> T:
        """One attempt on the replica the set picks, released with its outcome, seconds and tokens."""
        replicas = self._replicas
        rep = replicas.acquire()
        t0 = time.perf_counter()
        try:
            result = self._attempt(rep, route, payload, parse)
        except _AttemptError as exc:
            replicas.release(rep, failed=exc.retryable)
            raise
        except BaseException:
            replicas.release(rep, failed=True)
            raise
        u = getattr(result, "usage", None)
        replicas.release(rep, failed=False, seconds=time.perf_counter() - t0,
                         tokens=(u.prompt_tokens, u.completion_tokens) if isinstance(u, Usage) else (0, 0))
        return result

    def _call_with_retries(self, route: str, payload: bytes, parse: Callable[[bytes], T],
                           first_error: _AttemptError) -> T:
        attempts = 0
        malformed = 0
        pending: _AttemptError | None = first_error

        def attempt() -> T:
            nonlocal attempts, pending
            attempts += 1
            if pending is not None:  # attempt 1 already ran in _call
                exc, pending = pending, None
                raise exc
            return self._attempt_on_replica(route, payload, parse)

        def is_retryable(exc: BaseException) -> bool:
            nonlocal malformed
            if not isinstance(exc, _AttemptError) or not exc.retryable:
                return False
            if exc.kind == "malformed":
                malformed += 1
                return malformed < self.malformed_attempts
            return True

        def on_retry(event: RetryEvent) -> None:
            with self._lock:
                self.retries += 1
            # malformed replies have their own, smaller per-request budget: log it with the attempt
            budget = f"; malformed reply {malformed}/{self.malformed_attempts}" if malformed and \
                getattr(event.error, "kind", "") == "malformed" else ""
            log.warning(
                "%s: attempt %d/%d failed (%s)%s; retrying in %.2fs",
                self.spec,
                event.attempt,
                event.max_attempts,
                self._scrubbed(str(event.error)),
                budget,
                event.delay_s,
            )

        try:
            return call_with_retries(
                attempt,
                self.retry,
                is_retryable=is_retryable,
                on_retry=on_retry,
                retry_after=lambda e: getattr(e, "retry_after_s", None),
                sleep=self._sleep,
                rng=self._rng_for_call(),
                faults=self.faults,
            )
        except _AttemptError as exc:
            raise self._final_error(exc, attempts, route) from None

    def _rng_for_call(self) -> random.Random:
        return self._shared_rng  # type: ignore[return-value]

    def _final_error(self, exc: _AttemptError, attempts: int, route: str = "/chat/completions") -> BackendError:
        if exc.kind == "http" and exc.status is not None:
            what = f"HTTP {exc.status}"
        else:
            what = exc.kind
        tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
        where = self._endpoint.url if len(self._endpoints) == 1 else f"[{self.base_url}]"
        message = f"{self.spec}: POST {where}{route} failed {tries} ({what}): {exc.message}"
        hint = exc.hint
        if hint is None and exc.retryable:
            hint = (
                "the server kept failing; check that it is up and not overloaded, lower the concurrency, "
                "or retry later (RetryPolicy.max_attempts raises the retry budget)"
            )
        secrets = self._secrets()
        log.debug("%s", _scrub(message, secrets))
        err = BackendError(
            _scrub(message, secrets), hint=_scrub(hint, secrets) if hint else None, retryable=exc.retryable
        )
        err.status = exc.status  # type: ignore[attr-defined]
        return err

    def _scrubbed(self, text: str) -> str:
        return _scrub(text, self._secrets())

    # One persistent connection per calling thread and replica: keep-alive matters for HTTPS (a TLS
    # handshake per request costs more than a short completion).
    def _connection(self, rep: _Replica) -> tuple[_Conn, bool]:
        try:
            conns = self._local.conns
        except AttributeError:
            conns = self._local.conns = {}
        conn = conns.get(rep.index)
        if conn is not None:
            return conn, True
        conn = _Conn(rep.endpoint, self.connect_timeout_s, self.read_timeout_s)
        conns[rep.index] = conn
        return conn, False

    def _drop_connection(self, rep: _Replica | None = None) -> None:
        conns = getattr(self._local, "conns", None) or {}
        for index in list(conns) if rep is None else [rep.index]:
            conn = conns.pop(index, None)
            if conn is not None:
                conn.close()

    def _head(self, rep: _Replica, route: str) -> bytes:
        """The fixed part of a POST to ``route`` on ``rep`` (request line and headers), built once."""
        head = self._heads.get((rep.index, route))
        if head is None:
            ep = rep.endpoint
            host = f"[{ep.host}]" if ":" in ep.host else ep.host
            if ep.port != (443 if ep.scheme == "https" else 80):
                host = f"{host}:{ep.port}"
            head = (
                f"POST {ep.path}{route} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                "Accept: application/json\r\nUser-Agent: persona-lab\r\n"
            ).encode("idna" if not host.isascii() else "ascii")
            self._heads[(rep.index, route)] = head
        return head

    def _auth(self, ep: _Endpoint) -> bytes:
        """The Authorization header line, read from the key now (the environment may change)."""
        key = self._api_key()
        if not key:
            return b""
        if ep.scheme == "http" and not ep.is_loopback and not self._warned_plaintext:
            self._warned_plaintext = True
            log.warning("%s: sending the API key over unencrypted http to %s", self.spec, ep.host)
        if "\r" in key or "\n" in key or not key.isascii():
            raise ConfigError(f"the API key in ${API_KEY_ENVS[0]} (or ${API_KEY_ENVS[1]}) has a line break "
                              "or a non-ASCII character", hint="set it to the key alone")
        return b"Authorization: Bearer " + key.encode("ascii") + b"\r\n"

    def _send(self, rep: _Replica, route: str, payload: bytes) -> tuple[int, dict[str, str], bytes]:
        """One HTTP exchange. A reused keep-alive connection that the server has closed is retried
        once at once on a fresh connection (that is not a failed attempt)."""
        request = b"".join((self._head(rep, route), self._auth(rep.endpoint),
                            b"Content-Length: %d\r\n\r\n" % len(payload), payload))
        for _ in range(2):
            conn, reused = self._connection(rep)
            try:
                status, headers, raw, will_close = conn.exchange(request)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self._drop_connection(rep)
                if reused:
                    continue
                raise
            except BaseException:
                self._drop_connection(rep)
                raise
            if will_close:
                self._drop_connection(rep)
            return status, headers, raw
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, rep: _Replica, route: str, payload: bytes, parse: Callable[[bytes], T]) -> T:
        try:
            status, headers, raw = self._send(rep, route, payload)
        except TimeoutError as exc:
            raise _AttemptError(
                "timeout",
                f"no response within the timeout (connect {self.connect_timeout_s:g}s, read {self.read_timeout_s:g}s)",
                retryable=True,
                hint="the server may be overloaded or the output long: raise read_timeout_s or lower the concurrency",
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            detail = self._scrubbed(f"{type(exc).__name__}: {exc}")
            raise _AttemptError(
                "connection",
                f"could not reach the server at {rep.endpoint.url} ({detail})",
                retryable=True,
                hint=(
                    f"is a server running at {rep.endpoint.url}? e.g. `vllm serve {self.model} --port 8000` "
                    "(then base_url http://127.0.0.1:8000/v1), or `ollama serve` (http://127.0.0.1:11434/v1)"
                ),
            ) from exc
        if 200 <= status < 300:
            return parse(raw)
        raise self._http_error(status, headers, raw)

    def _http_error(self, status: int, headers: Mapping[str, str], raw: bytes) -> _AttemptError:
        detail = self._scrubbed(_error_snippet(raw)) or "(empty body)"
        message = f"server said: {detail}"
        if status == 429:
            return _AttemptError(
                "http",
                message,
                status=status,
                retryable=True,
                retry_after_s=_parse_retry_after(headers.get("retry-after")),
                hint="rate limited: lower the concurrency (max_concurrency) or retry later",
            )
        if status >= 500 or status in RETRYABLE_STATUS:
            return _AttemptError(
                "http",
                message,
                status=status,
                retryable=True,
                retry_after_s=_parse_retry_after(headers.get("retry-after")),
                hint="the server kept failing; check its logs (out of memory? model still loading?)",
            )
        if status in (401, 403):
            hint = (
                f"set {API_KEY_ENVS[0]} (or {API_KEY_ENVS[1]}) to a valid API key for {self.base_url}"
                if status == 401
                else f"the key in {API_KEY_ENVS[0]} is not allowed to use model {self.model!r}"
            )
        elif status == 404:
            hint = (
                f"check the model name {self.model!r} and base_url {self.base_url!r} (it usually ends in /v1)"
            )
        elif status == 400 or status == 422:
            hint = "the server rejected the request: check the generation parameters (max_new_tokens may exceed the context window)"
        elif status == 413:
            hint = "the prompt is too large for this server"
        else:
            hint = "this is not a transient error; fix the request or the server configuration"
        return _AttemptError("http", message, status=status, retryable=False, hint=hint)

    def _malformed(self, raw: bytes, why: str) -> _AttemptError:
        snippet = self._scrubbed(" ".join(raw[:120].decode("utf-8", errors="replace").split()))
        return _AttemptError(
            "malformed",
            f"malformed response body: {why} (body starts: {snippet!r})",
            retryable=True,
            hint=f"is {self.base_url} an OpenAI-compatible /v1 endpoint? check the server's logs",
        )

    def _json_choice(self, raw: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            obj = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            raise self._malformed(raw, "not valid JSON (truncated?)") from None
        if not isinstance(obj, dict):
            raise self._malformed(raw, "not a JSON object")
        choices = obj.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise self._malformed(raw, "missing or empty 'choices'")
        return obj, choices[0]

    def _parse(self, raw: bytes, request: ChatRequest) -> Completion:
        obj, first = self._json_choice(raw)
        message = first.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str):
            raise self._malformed(raw, "the first choice has no message.content")
        finish = first.get("finish_reason") or "stop"
        usage = obj.get("usage") if isinstance(obj.get("usage"), dict) else {}
        prompt_tokens = usage.get("prompt_tokens")
        completion_tokens = usage.get("completion_tokens")
        if not isinstance(prompt_tokens, int):
            prompt_tokens = approx_token_count(request.messages)
        if not isinstance(completion_tokens, int):
            completion_tokens = max(1, (len(content) + 3) // 4) if content else 0
        return Completion(content, Usage(prompt_tokens, completion_tokens, 0.0), str(finish))

    # -- scoring ------------------------------------------------------------------------------------
    def _score_one(self, request: ScoreRequest) -> float:
        if not request.continuation.content:
            raise ValueError("cannot score an empty continuation")
        text, spans = render_chat((*request.messages, request.continuation), self.template)
        span = spans[-1]
        mode = self._resolved_score_mode
        if mode is not None:
            return self._score_with(mode, text, span)
        failures = []
        for candidate in ("echo", "prompt_logprobs"):
            try:
                value = self._score_with(candidate, text, span)
            except _NoLogprobs as exc:
                failures.append(f"{candidate}: {exc}")
                continue
            except BackendError as exc:
                if getattr(exc, "status", None) in (400, 404, 422, 501):
                    failures.append(f"{candidate}: {exc.message}")
                    continue
                raise
            with self._lock:
                self._resolved_score_mode = candidate
            return value
        raise BackendUnavailableError(
            f"{self.spec} returned no prompt log-probabilities ({'; '.join(failures)})",
            hint="serve the model with vLLM (it supports both `echo`+`logprobs` and `prompt_logprobs` on "
            "/v1/completions), or score with a local model, e.g. `scorer=hf:smollm2-135m`",
        )

    def _score_with(self, mode: str, text: str, span: tuple[int, int]) -> float:
        body: dict[str, Any] = {"model": self.model, "prompt": text, "max_tokens": 1, "temperature": 0.0}
        if mode == "echo":
            body.update(echo=True, logprobs=0)
            parse = self._parse_echo
        else:
            body.update(prompt_logprobs=0)
            parse = self._parse_prompt_logprobs
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        value = self._call("/completions", payload, lambda raw: parse(raw, text, span))
        if isinstance(value, _NoLogprobs):
            raise value
        return value

    def _parse_echo(self, raw: bytes, text: str, span: tuple[int, int]) -> float | _NoLogprobs:
        _, first = self._json_choice(raw)
        lp = first.get("logprobs")
        if not isinstance(lp, dict) or not isinstance(lp.get("tokens"), list):
            return _NoLogprobs("the answer has no logprobs.tokens")
        tokens, values = lp["tokens"], lp.get("token_logprobs") or []
        offsets = lp.get("text_offset")
        if not isinstance(offsets, list) or len(offsets) != len(tokens):
            offsets = list(itertools.accumulate((len(t) for t in tokens), initial=0))[:-1]
        if not offsets or offsets[-1] < span[0]:
            return _NoLogprobs("the log-probabilities do not cover the prompt (echo ignored?)")
        mean = _mean_in_span(offsets, tokens, values, span)
        return mean if mean is not None else _NoLogprobs("no scored token overlaps the continuation")

    def _parse_prompt_logprobs(self, raw: bytes, text: str, span: tuple[int, int]) -> float | _NoLogprobs:
        _, first = self._json_choice(raw)
        entries = first.get("prompt_logprobs")
        if not isinstance(entries, list) or not entries:
            return _NoLogprobs("the answer has no prompt_logprobs")
        # Each entry (after the first, None) maps token id -> {logprob, decoded_token}; with
        # prompt_logprobs=0 it holds the prompt's own token only. Offsets are counted back from the
        # end of the text, so a BOS token the server adds shifts nothing.
        tokens: list[str] = []
        values: list[float | None] = []
        for e in entries:
            info = next(iter(e.values()), None) if isinstance(e, dict) and e else None
            if isinstance(info, dict):
                tokens.append(str(info.get("decoded_token") or ""))
                values.append(info.get("logprob"))
            else:
                tokens.append("")
                values.append(None)
        end = len(text)
        offsets = [0] * len(tokens)
        for i in range(len(tokens) - 1, -1, -1):
            end -= len(tokens[i])
            offsets[i] = end
        mean = _mean_in_span(offsets, tokens, values, span)
        return mean if mean is not None else _NoLogprobs("no scored token overlaps the continuation")


class _NoLogprobs(Exception):
    """A 200 answer without the prompt log-probabilities asked for (the server ignored the field)."""


def _check_extra_body(extra: Mapping[str, Any] | None) -> dict[str, Any]:
    if not extra:
        return {}
    if not isinstance(extra, Mapping):
        raise ConfigError(f"extra_body must be a JSON object, got {extra!r}",
                          hint='e.g. extra_body={"repetition_penalty": 1.1}')
    reserved = {"model", "messages", "stream"} & set(extra)
    if reserved:
        raise ConfigError(f"extra_body may not set {sorted(reserved)}", hint="these fields belong to the backend")
    try:
        json.dumps(extra)
    except (TypeError, ValueError):
        raise ConfigError(f"extra_body is not JSON-serialisable: {extra!r}") from None
    return dict(extra)


def _read_url_file(path: str) -> str:
    try:
        lines = Path(path).expanduser().read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the replica list {path!r}: {exc}",
                          hint="one base URL per line, e.g. http://10.0.0.1:8000/v1") from None
    urls = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    if not urls:
        raise ConfigError(f"the replica list {path!r} names no URL", hint="one base URL per line")
    return ",".join(urls)


def _options_to_kwargs(options: Mapping[str, str]) -> dict[str, Any]:
    kinds: dict[str, Callable[[str], Any]] = {
        "max_concurrency": int, "fail_threshold": int, "cooldown_s": float, "read_timeout_s": float,
        "connect_timeout_s": float, "score_mode": str, "template": str, "extra_body": json.loads,
    }
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key not in kinds:
            raise ConfigError(f"unknown openai backend option {key!r}", hint=f"known: {sorted(kinds)}")
        try:
            out[key] = kinds[key](value)
        except ValueError:
            raise ConfigError(f"bad value for openai backend option {key}: {value!r}") from None
    return out


@register_backend(
    "openai",
    SPEC_EXAMPLE,
    "any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, OpenAI): openai:<model>@<base_url>; "
    "replicas as <url1>,<url2> or file:<path>; options after ?, e.g. ?max_concurrency=16&score_mode=echo; "
    "API key from $PERSONA_LAB_API_KEY or $OPENAI_API_KEY",
)
def _openai_backend(rest: str) -> OpenAIChatModel:
    model, base_url, options = parse_openai_spec_options(rest)
    m = OpenAIChatModel(model, base_url, **_options_to_kwargs(options))
    m.options = dict(options)
    return m
