"""The ``openai:<model>@<base_url>`` backend: any OpenAI-compatible chat-completions server.

vLLM, llama.cpp's ``llama-server``, Ollama and OpenAI all accept ``POST {base_url}/chat/completions``.
This client uses only the standard library (``http.client``), keeps up to ``max_concurrency``
requests in flight on a thread pool, and retries timeouts, connection errors, 408/409/429 and 5xx
through :mod:`persona_lab.models.retry`; other 4xx fail at once with a hint.

The API key is read from ``$PERSONA_LAB_API_KEY`` (else ``$OPENAI_API_KEY``) when a request is
sent. It is never stored in the object's state, repr or pickle, and it is scrubbed from every
message this module logs or raises, including error bodies a server echoes back.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import json
import logging
import os
import random
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from persona_lab.core.errors import BackendError, ConfigError
from persona_lab.models.base import ChatRequest, Completion, Usage
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

    The split is at the last ``@`` that starts an ``http://`` or ``https://`` URL, so model names
    may contain ``@``, ``/`` and ``:`` (``llama3.2:1b``, ``Qwen/Qwen2.5-0.5B-Instruct``).
    """
    cut = max(rest.rfind("@http://"), rest.rfind("@https://"))
    if cut <= 0:
        raise ConfigError(
            f"bad openai backend spec 'openai:{_strip_userinfo(rest)}'",
            hint=f"write openai:<model>@<base_url>, e.g. `{LOCAL_EXAMPLE}` or `{SPEC_EXAMPLE}`",
        )
    model, base_url = rest[:cut].strip(), rest[cut + 1 :].strip()
    if not model:
        raise ConfigError("the openai backend spec has an empty model name", hint=f"e.g. `{LOCAL_EXAMPLE}`")
    return model, base_url


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
# the client


class OpenAIChatModel:
    """A :class:`~persona_lab.models.base.ChatModel` for an OpenAI-compatible server.

    Construction only validates arguments: no connection, no network call. The object is
    thread-safe and picklable (connections and the thread pool are rebuilt lazily after unpickling).

    Args:
        model: the model name the server knows (``vllm serve <model>``, ``ollama pull <model>``).
        base_url: the API base, usually ending in ``/v1``, e.g. ``http://127.0.0.1:8000/v1``.
        api_key: the key, for code that holds it already; it is not pickled. ``None`` reads
            ``$PERSONA_LAB_API_KEY`` then ``$OPENAI_API_KEY`` at request time (local servers
            usually need none).
        connect_timeout_s: seconds to open a TCP (and TLS) connection.
        read_timeout_s: seconds to wait for the response once the request is sent (generation
            time counts here, so keep it generous for long outputs).
        max_concurrency: requests kept in flight at once, across all calling threads.
        retry: attempts and backoff for transient failures.
        malformed_attempts: attempts after which a malformed 200 body (broken JSON, no choices,
            no content) is given up on, even if ``retry`` allows more.
        rng: jitter source for the backoff (a fresh ``random.Random()`` by default).
        sleep: how to wait between retries; tests pass a recorder so they run instantly. Not
            pickled (an unpickled copy uses ``time.sleep``).
    """

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        api_key: str | None = None,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 300.0,
        max_concurrency: int = 8,
        retry: RetryPolicy | None = None,
        malformed_attempts: int = 3,
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
        self.model = model.strip()
        self._endpoint = parse_base_url(base_url)
        self.base_url = self._endpoint.url
        self.connect_timeout_s = float(connect_timeout_s)
        self.read_timeout_s = float(read_timeout_s)
        self.max_concurrency = int(max_concurrency)
        self.retry = retry if retry is not None else RetryPolicy()
        self.malformed_attempts = int(malformed_attempts)
        self._rng = rng if rng is not None else random.Random()
        self._secret = _Secret(api_key) if api_key else None
        self._sleep = sleep
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self._executor: ThreadPoolExecutor | None = None
        self._warned_plaintext = False
        self.retries = 0  # retries made so far (all requests, all threads)
        self.faults = FaultCounter()  # failed attempts by kind, retries, give-ups: read by run summaries

    # -- identity -------------------------------------------------------------------------------
    @property
    def spec(self) -> str:
        return f"openai:{self.model}@{self.base_url}"

    @property
    def url(self) -> str:
        """The chat-completions URL (never carries credentials)."""
        return f"{self.base_url}/chat/completions"

    def __repr__(self) -> str:
        return (
            f"OpenAIChatModel(model={self.model!r}, base_url={self.base_url!r}, "
            f"max_concurrency={self.max_concurrency}, read_timeout_s={self.read_timeout_s})"
        )

    # -- pickling: configuration only -----------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        keep = (
            "model",
            "_endpoint",
            "base_url",
            "connect_timeout_s",
            "read_timeout_s",
            "max_concurrency",
            "retry",
            "malformed_attempts",
        )
        return {k: self.__dict__[k] for k in keep}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._rng = random.Random()
        self._sleep = time.sleep
        self._secret = None
        self._init_runtime()

    # -- public API -----------------------------------------------------------------------------
    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """Complete every request (up to ``max_concurrency`` in flight); results keep the input order.

        Raises:
            BackendError: a request failed permanently or after its last retry; requests of this
                batch that had not started are cancelled.
        """
        requests = list(requests)
        if not requests:
            return []
        pool = self._pool()
        futures: list[Future[Completion]] = [pool.submit(self._complete, r) for r in requests]
        out: list[Completion] = []
        try:
            for f in futures:
                out.append(f.result())
        except BaseException:
            for f in futures:
                f.cancel()
            raise
        return out

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
    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.max_concurrency, thread_name_prefix="persona-lab-openai"
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
        return body

    def _complete(self, request: ChatRequest) -> Completion:
        payload = json.dumps(self._body(request), ensure_ascii=False).encode("utf-8")
        attempts = 0
        malformed = 0

        def attempt() -> Completion:
            nonlocal attempts
            attempts += 1
            return self._attempt(payload, request)

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

        start = time.perf_counter()
        try:
            completion = call_with_retries(
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
            raise self._final_error(exc, attempts) from None
        latency = time.perf_counter() - start
        u = completion.usage
        return Completion(
            completion.text, Usage(u.prompt_tokens, u.completion_tokens, latency), completion.finish_reason
        )

    def _rng_for_call(self) -> random.Random:
        # random.Random is not documented as thread-safe: draw a per-call seed under the lock.
        with self._lock:
            return random.Random(self._rng.getrandbits(64))

    def _final_error(self, exc: _AttemptError, attempts: int) -> BackendError:
        if exc.kind == "http" and exc.status is not None:
            what = f"HTTP {exc.status}"
        else:
            what = exc.kind
        tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
        message = f"{self.spec}: POST {self.url} failed {tries} ({what}): {exc.message}"
        hint = exc.hint
        if hint is None and exc.retryable:
            hint = (
                "the server kept failing; check that it is up and not overloaded, lower the concurrency, "
                "or retry later (RetryPolicy.max_attempts raises the retry budget)"
            )
        secrets = self._secrets()
        log.debug("%s", _scrub(message, secrets))
        return BackendError(
            _scrub(message, secrets), hint=_scrub(hint, secrets) if hint else None, retryable=exc.retryable
        )

    def _scrubbed(self, text: str) -> str:
        return _scrub(text, self._secrets())

    # One persistent connection per worker thread: keep-alive matters for HTTPS (a TLS handshake
    # per request costs more than a short completion).
    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn, True
        ep = self._endpoint
        if ep.scheme == "https":
            conn = http.client.HTTPSConnection(
                ep.host, ep.port, timeout=self.connect_timeout_s, context=ssl.create_default_context()
            )
        else:
            conn = http.client.HTTPConnection(ep.host, ep.port, timeout=self.connect_timeout_s)
        conn.connect()
        if conn.sock is not None:
            conn.sock.settimeout(self.read_timeout_s)
        self._local.conn = conn
        return conn, False

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()

    def _headers(self) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "persona-lab",
        }
        key = self._api_key()
        if key:
            if (
                self._endpoint.scheme == "http"
                and not self._endpoint.is_loopback
                and not self._warned_plaintext
            ):
                self._warned_plaintext = True
                log.warning(
                    "%s: sending the API key over unencrypted http to %s", self.spec, self._endpoint.host
                )
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _send(self, payload: bytes) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One HTTP exchange. A reused keep-alive connection that the server has closed is retried
        once at once on a fresh connection (that is not a failed attempt)."""
        path = f"{self._endpoint.path}/chat/completions"
        for _ in range(2):
            conn, reused = self._connection()
            try:
                conn.request("POST", path, body=payload, headers=self._headers())
                resp = conn.getresponse()
                raw = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self._drop_connection()
                if reused:
                    continue
                raise
            except BaseException:
                self._drop_connection()
                raise
            if resp.will_close:
                self._drop_connection()
            return resp.status, resp.msg, raw
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, payload: bytes, request: ChatRequest) -> Completion:
        try:
            status, headers, raw = self._send(payload)
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
                f"could not reach the server ({detail})",
                retryable=True,
                hint=(
                    f"is a server running at {self.base_url}? e.g. `vllm serve {self.model} --port 8000` "
                    "(then base_url http://127.0.0.1:8000/v1), or `ollama serve` (http://127.0.0.1:11434/v1)"
                ),
            ) from exc
        if 200 <= status < 300:
            return self._parse(raw, request)
        raise self._http_error(status, headers, raw)

    def _http_error(self, status: int, headers: http.client.HTTPMessage, raw: bytes) -> _AttemptError:
        detail = self._scrubbed(_error_snippet(raw)) or "(empty body)"
        message = f"server said: {detail}"
        if status == 429:
            return _AttemptError(
                "http",
                message,
                status=status,
                retryable=True,
                retry_after_s=_parse_retry_after(headers.get("Retry-After")),
                hint="rate limited: lower the concurrency (max_concurrency) or retry later",
            )
        if status >= 500 or status in RETRYABLE_STATUS:
            return _AttemptError(
                "http",
                message,
                status=status,
                retryable=True,
                retry_after_s=_parse_retry_after(headers.get("Retry-After")),
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

    def _parse(self, raw: bytes, request: ChatRequest) -> Completion:
        def malformed(why: str) -> _AttemptError:
            snippet = self._scrubbed(" ".join(raw[:120].decode("utf-8", errors="replace").split()))
            return _AttemptError(
                "malformed",
                f"malformed response body: {why} (body starts: {snippet!r})",
                retryable=True,
                hint=f"is {self.base_url} an OpenAI-compatible /v1 endpoint? check the server's logs",
            )

        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise malformed("not valid JSON (truncated?)") from None
        if not isinstance(obj, dict):
            raise malformed("not a JSON object")
        choices = obj.get("choices")
        if not isinstance(choices, list) or not choices:
            raise malformed("missing or empty 'choices'")
        first = choices[0]
        message = first.get("message") if isinstance(first, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str):
            raise malformed("the first choice has no message.content")
        finish = first.get("finish_reason") or "stop"
        usage = obj.get("usage") if isinstance(obj.get("usage"), dict) else {}
        prompt_tokens = usage.get("prompt_tokens")
        completion_tokens = usage.get("completion_tokens")
        if not isinstance(prompt_tokens, int):
            prompt_tokens = approx_token_count(request.messages)
        if not isinstance(completion_tokens, int):
            completion_tokens = max(1, (len(content) + 3) // 4) if content else 0
        return Completion(content, Usage(prompt_tokens, completion_tokens, 0.0), str(finish))


@register_backend(
    "openai",
    SPEC_EXAMPLE,
    "any OpenAI-compatible chat-completions server (vLLM, llama.cpp server, Ollama, OpenAI): "
    "openai:<model>@<base_url>; API key from $PERSONA_LAB_API_KEY or $OPENAI_API_KEY",
)
def _openai_backend(rest: str) -> OpenAIChatModel:
    model, base_url = parse_openai_spec(rest)
    return OpenAIChatModel(model, base_url)
