"""The ``openai:`` backend against a real HTTP server on loopback that injects faults.

Retry waits go through an injected recorder, so no test sleeps for a backoff; the only real waits
are the read timeouts of the timeout tests (a fraction of a second each).
"""

from __future__ import annotations

import logging
import pickle
import random
import socket
import threading
import time
import traceback
from collections.abc import Mapping
from typing import Any

import pytest

from persona_lab.core.errors import BackendError, ConfigError
from persona_lab.models import ChatRequest, GenerationParams, create_backend, open_chat_model
from persona_lab.models.openai_compat import OpenAIChatModel, parse_openai_spec
from persona_lab.models.retry import RetryEvent, RetryPolicy, call_with_retries
from persona_lab.testing.fake_server import FakeOpenAIServer, Fault

SECRET = "sk-personalab-TOPSECRET-7f3a9c1e5b"
FAST = RetryPolicy(max_attempts=4, base_delay_s=0.001, max_delay_s=0.004, jitter="full")


class SleepRecorder:
    def __init__(self) -> None:
        self.calls: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        with self._lock:
            self.calls.append(seconds)


def make_model(server: FakeOpenAIServer, **kw: Any) -> OpenAIChatModel:
    kw.setdefault("retry", FAST)
    kw.setdefault("sleep", SleepRecorder())
    kw.setdefault("read_timeout_s", 5.0)
    return OpenAIChatModel("test-model", server.base_url, **kw)


def ask(model: Any, text: str = "hello there", **params: Any) -> Any:
    (c,) = model.generate([ChatRequest.of(text, **params)])
    return c


# ------------------------------------------------------------------------------------------------
# spec strings and construction


@pytest.mark.parametrize(
    ("rest", "model", "url"),
    [
        ("gpt-4o-mini@https://api.openai.com/v1", "gpt-4o-mini", "https://api.openai.com/v1"),
        (
            "Qwen/Qwen2.5-0.5B-Instruct@http://127.0.0.1:8000/v1",
            "Qwen/Qwen2.5-0.5B-Instruct",
            "http://127.0.0.1:8000/v1",
        ),
        ("llama3.2:1b@http://127.0.0.1:11434/v1", "llama3.2:1b", "http://127.0.0.1:11434/v1"),
        ("team@org/model@http://h:1/v1", "team@org/model", "http://h:1/v1"),
    ],
)
def test_spec_parsing(rest: str, model: str, url: str) -> None:
    assert parse_openai_spec(rest) == (model, url)
    m = create_backend(f"openai:{rest}")
    assert isinstance(m, OpenAIChatModel)
    assert (m.model, m.base_url) == (model, url)
    assert m.spec == f"openai:{model}@{url}"


@pytest.mark.parametrize(
    "spec",
    [
        "openai:",
        "openai:gpt-4o",
        "openai:@http://127.0.0.1:8000/v1",
        "openai:m@127.0.0.1:8000/v1",
        "openai:m@ftp://x/v1",
    ],
)
def test_bad_spec_is_a_config_error_with_an_example(spec: str) -> None:
    with pytest.raises(ConfigError) as info:
        create_backend(spec)
    assert "http://127.0.0.1:8000/v1" in str(info.value) or "e.g." in str(info.value)


def test_credentials_in_base_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(ConfigError) as info:
        create_backend(f"openai:m@http://user:{SECRET}@127.0.0.1:8000/v1")
    assert SECRET not in str(info.value)
    assert "PERSONA_LAB_API_KEY" in str(info.value)


def test_construction_makes_no_network_call(server: FakeOpenAIServer) -> None:
    OpenAIChatModel("m", server.base_url)
    create_backend(server.spec("m"))
    OpenAIChatModel("m", "http://192.0.2.1:9/v1")  # TEST-NET address: would hang if contacted
    assert server.request_count == 0


# ------------------------------------------------------------------------------------------------
# the happy path


def test_happy_path_content_usage_and_latency(server: FakeOpenAIServer) -> None:
    c = ask(make_model(server), "hello there general")
    assert c.text == "hello there general"
    assert c.finish_reason == "stop"
    assert (c.usage.prompt_tokens, c.usage.completion_tokens) == (3, 3)  # the fake server counts words
    assert c.usage.latency_s > 0 and not c.usage.cache_hit


def test_order_preserved_with_requests_in_flight_concurrently() -> None:
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}
    rng = random.Random(0)
    delays = [rng.uniform(0.0, 0.03) for _ in range(40)]

    def slow_echo(body: Mapping[str, Any]) -> str:
        text = body["messages"][-1]["content"]
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(delays[int(text.split("-")[1])])  # answers finish out of order
        with lock:
            state["now"] -= 1
        return text.upper()

    with FakeOpenAIServer(slow_echo) as s:
        model = make_model(s, max_concurrency=6)
        out = model.generate([ChatRequest.of(f"q-{i}") for i in range(40)])
    assert [c.text for c in out] == [f"Q-{i}" for i in range(40)]
    assert 1 < state["peak"] <= 6


def test_generate_from_several_threads_each_gets_its_own_answers(server: FakeOpenAIServer) -> None:
    model = make_model(server, max_concurrency=4)
    results: dict[int, list[str]] = {}

    def worker(t: int) -> None:
        out = model.generate([ChatRequest.of(f"t{t}-r{i}") for i in range(10)])
        results[t] = [c.text for c in out]

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results == {t: [f"t{t}-r{i}" for i in range(10)] for t in range(4)}
    assert server.request_count == 40


def test_request_body_carries_model_messages_and_params(server: FakeOpenAIServer) -> None:
    model = make_model(server)
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    params = GenerationParams(max_new_tokens=17, temperature=0.7, top_p=0.9, seed=123, stop=("\n\n", "END"))
    model.generate([ChatRequest.of(messages, params)])
    ask(model, "plain")
    full, plain = (r.body for r in server.requests)
    assert full["model"] == "test-model"
    assert full["messages"] == messages
    assert (full["max_tokens"], full["temperature"], full["top_p"]) == (17, 0.7, 0.9)
    assert full["seed"] == 123 and full["stop"] == ["\n\n", "END"]
    assert full["stream"] is False
    assert "seed" not in plain and "stop" not in plain and plain["temperature"] == 0.0
    assert server.requests[0].path == "/v1/chat/completions"


def test_api_key_is_sent_from_env_with_fallback(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = make_model(server)
    ask(model, "a")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fallback-key")
    ask(model, "b")
    monkeypatch.setenv("PERSONA_LAB_API_KEY", SECRET)
    ask(model, "c")
    auth = [r.headers.get("Authorization") for r in server.requests]
    assert auth == [None, "Bearer sk-fallback-key", f"Bearer {SECRET}"]


# ------------------------------------------------------------------------------------------------
# transient faults are retried


@pytest.mark.parametrize(
    "fault",
    [
        Fault.rate_limited(),
        Fault.rate_limited(retry_after=0),
        Fault.http(500),
        Fault.http(503),
        Fault.http(408),
        Fault.truncated_json(),
        Fault.empty_choices(),
        Fault.missing_content(),
        Fault.disconnect(),
    ],
    ids=lambda f: f.kind if f.kind != "status" else f"http{f.status}",
)
def test_transient_fault_is_retried(server: FakeOpenAIServer, fault: Fault) -> None:
    server.inject(fault, fault)
    sleeps = SleepRecorder()
    model = make_model(server, sleep=sleeps)
    assert ask(model, "survived").text == "survived"
    assert server.request_count == 3  # two faults, then the answer
    assert len(sleeps.calls) == 2 and model.retries == 2
    assert [r.fault for r in server.requests] == [fault, fault, None]


def test_timeout_is_retried(server: FakeOpenAIServer) -> None:
    server.inject(Fault.delay(5.0))  # released at once when the server stops
    model = make_model(server, read_timeout_s=0.2)
    assert ask(model, "late").text == "late"
    assert server.request_count == 2


def test_mixed_faults_then_success_count_attempts(
    server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.inject(
        Fault.rate_limited(), Fault.http(500), Fault.delay(5.0), Fault.truncated_json(), Fault.empty_choices()
    )
    model = make_model(
        server, read_timeout_s=0.2, retry=RetryPolicy(max_attempts=6, base_delay_s=0.001, max_delay_s=0.002)
    )
    with caplog.at_level(logging.WARNING, logger="persona_lab.models.openai_compat"):
        assert ask(model, "finally").text == "finally"
    assert server.request_count == 6
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert [r.getMessage().split("attempt ")[1][:3] for r in retries] == ["1/6", "2/6", "3/6", "4/6", "5/6"]


def test_retry_after_is_honoured_and_capped(server: FakeOpenAIServer) -> None:
    server.inject(
        Fault.rate_limited(retry_after=7),
        Fault.rate_limited(retry_after=3600),
        Fault.http(503, retry_after=2),
    )
    sleeps = SleepRecorder()
    policy = RetryPolicy(max_attempts=4, base_delay_s=0.001, max_delay_s=0.002, max_server_delay_s=30.0)
    ask(make_model(server, retry=policy, sleep=sleeps))
    assert sleeps.calls == [7.0, 30.0, 2.0]


# ------------------------------------------------------------------------------------------------
# permanent faults fail with a useful typed error


def test_server_that_keeps_failing_raises_backend_error(server: FakeOpenAIServer) -> None:
    server.set_default_fault(Fault.http(500))
    model = make_model(server, retry=RetryPolicy(max_attempts=3, base_delay_s=0.001, max_delay_s=0.002))
    with pytest.raises(BackendError) as info:
        ask(model)
    msg = str(info.value)
    assert server.request_count == 3
    assert "HTTP 500" in msg and "after 3 attempts" in msg and f"{server.base_url}/chat/completions" in msg
    assert info.value.hint and info.value.retryable
    assert info.value.exit_code == 3


def test_malformed_body_is_retried_a_few_times_then_raised(server: FakeOpenAIServer) -> None:
    server.set_default_fault(Fault.empty_choices())
    model = make_model(
        server,
        retry=RetryPolicy(max_attempts=10, base_delay_s=0.001, max_delay_s=0.002),
        malformed_attempts=3,
    )
    with pytest.raises(BackendError, match="malformed response body: missing or empty 'choices'"):
        ask(model)
    assert server.request_count == 3


def test_timeouts_that_persist_raise_backend_error(server: FakeOpenAIServer) -> None:
    server.set_default_fault(Fault.delay(5.0))
    model = make_model(server, read_timeout_s=0.1, retry=RetryPolicy(max_attempts=2, base_delay_s=0.001))
    with pytest.raises(BackendError, match="timeout") as info:
        ask(model)
    assert "read_timeout_s" in str(info.value)


@pytest.mark.parametrize(
    ("status", "hint"),
    [
        (401, "PERSONA_LAB_API_KEY"),
        (403, "PERSONA_LAB_API_KEY"),
        (404, "ends in /v1"),
        (400, "generation parameters"),
    ],
)
def test_client_errors_fail_fast_with_a_hint(server: FakeOpenAIServer, status: int, hint: str) -> None:
    server.set_default_fault(Fault.http(status))
    with pytest.raises(BackendError) as info:
        ask(make_model(server))
    assert server.request_count == 1  # no retries
    assert f"HTTP {status}" in str(info.value) and "after 1 attempt " in str(info.value)
    assert hint in (info.value.hint or "")
    assert not info.value.retryable


def test_base_url_without_v1_gets_the_404_hint(server: FakeOpenAIServer) -> None:
    model = OpenAIChatModel("m", server.base_url.removesuffix("/v1"), retry=FAST, sleep=SleepRecorder())
    with pytest.raises(BackendError, match="HTTP 404") as info:
        ask(model)
    assert "/v1" in (info.value.hint or "")


def test_no_server_raises_backend_error_naming_the_url() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model = OpenAIChatModel("m", f"http://127.0.0.1:{port}/v1", retry=FAST, sleep=SleepRecorder())
    with pytest.raises(BackendError) as info:
        ask(model)
    assert f"127.0.0.1:{port}" in str(info.value) and "after 4 attempts" in str(info.value)
    assert "is a server running" in (info.value.hint or "")


def test_one_failing_request_fails_the_batch(server: FakeOpenAIServer) -> None:
    server.set_default_fault(Fault.http(401))
    with pytest.raises(BackendError, match="HTTP 401"):
        make_model(server, max_concurrency=2).generate([ChatRequest.of(f"r{i}") for i in range(6)])


# ------------------------------------------------------------------------------------------------
# the API key never leaks


def _leaks(text: str) -> bool:
    return SECRET in text or SECRET[8:24] in text


def test_api_key_never_appears_in_logs_errors_reprs_or_pickles(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PERSONA_LAB_API_KEY", SECRET)
    echo_key = f'{{"error": {{"message": "key {SECRET} is over quota"}}}}'
    server.inject(
        Fault.http(500, body=echo_key),  # servers that echo the key in a retryable error
        Fault.http(429, body=echo_key),
        Fault.truncated_json(),
        Fault.http(401),  # echoes the presented key, like some real servers
    )
    model = make_model(server, retry=RetryPolicy(max_attempts=5, base_delay_s=0.001, max_delay_s=0.002))
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(BackendError) as info:
            model.generate([ChatRequest.of(f"my key is {SECRET}")])  # even inside the prompt
        server.set_default_fault(Fault.http(503, body=echo_key))
        with pytest.raises(BackendError) as info2:
            ask(model)
    for exc in (info.value, info2.value):
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc)), str(exc.hint)]
    texts += [r.getMessage() for r in caplog.records] + [caplog.text]
    texts += [repr(model), str(model.__dict__), model.spec]
    assert any("Incorrect API key provided" in t for t in texts)  # the 401 body did come back
    assert server.requests[0].headers["Authorization"] == f"Bearer {SECRET}"  # and the key was sent
    assert not [t for t in texts if _leaks(t)]
    assert SECRET.encode() not in pickle.dumps(model)


def test_explicit_api_key_is_used_but_not_pickled_or_shown(server: FakeOpenAIServer) -> None:
    model = make_model(server, api_key=SECRET)
    ask(model)
    assert server.requests[0].headers["Authorization"] == f"Bearer {SECRET}"
    assert SECRET not in repr(model) and SECRET not in str(vars(model))
    blob = pickle.dumps(model)
    assert SECRET.encode() not in blob
    clone = pickle.loads(blob)
    ask(clone, "again")
    assert "Authorization" not in server.requests[1].headers  # the copy reads the (empty) environment


# ------------------------------------------------------------------------------------------------
# pickling, cache


def test_pickle_round_trip_after_use(server: FakeOpenAIServer) -> None:
    model = make_model(server, max_concurrency=3)
    model.generate([ChatRequest.of(f"x{i}") for i in range(5)])  # pool and connections exist now
    clone = pickle.loads(pickle.dumps(model))
    assert clone.spec == model.spec and clone.max_concurrency == 3
    assert [c.text for c in clone.generate([ChatRequest.of("y0"), ChatRequest.of("y1")])] == ["y0", "y1"]
    model.close()
    model.close()


def test_second_identical_call_through_the_cache_makes_no_request(
    server: FakeOpenAIServer, tmp_path: Any
) -> None:
    chat = open_chat_model(server.spec("m"), cache_dir=tmp_path)
    reqs = [ChatRequest.of("cached one"), ChatRequest.of("cached two", seed=3)]
    first = chat.generate(reqs)
    assert server.request_count == 2 and not any(c.usage.cache_hit for c in first)
    again = open_chat_model(server.spec("m"), cache_dir=tmp_path).generate(reqs)
    assert server.request_count == 2
    assert [c.text for c in again] == ["cached one", "cached two"]
    assert all(c.usage.cache_hit for c in again)
    chat.generate([ChatRequest.of("cached one", seed=4)])  # a changed parameter misses
    assert server.request_count == 3


# ------------------------------------------------------------------------------------------------
# the fake server itself


def test_fake_server_serves_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        FakeOpenAIServer(host="0.0.0.0")


def test_fake_server_stops_promptly_with_a_delayed_request_pending() -> None:
    s = FakeOpenAIServer(faults=[Fault.delay(60.0)]).start()
    model = OpenAIChatModel("m", s.base_url, read_timeout_s=0.1, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(BackendError):
        ask(model)
    s.stop()
    s.stop()
    with pytest.raises(RuntimeError, match="not running"):
        _ = s.port


# ------------------------------------------------------------------------------------------------
# retry.py


class Flaky(Exception):
    pass


def test_call_with_retries_retries_then_succeeds() -> None:
    calls, waits, events = [], [], []

    def fn() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise Flaky("not yet")
        return "done"

    out = call_with_retries(
        fn,
        RetryPolicy(max_attempts=5, base_delay_s=1.0, max_delay_s=10.0, jitter="none"),
        is_retryable=lambda e: isinstance(e, Flaky),
        on_retry=events.append,
        sleep=waits.append,
    )
    assert out == "done" and len(calls) == 3
    assert waits == [1.0, 2.0]
    assert [(e.attempt, e.max_attempts) for e in events] == [(1, 5), (2, 5)]
    assert all(isinstance(e, RetryEvent) for e in events)


def test_call_with_retries_reraises_permanent_and_exhausted_errors() -> None:
    waits: list[float] = []
    calls: list[int] = []

    def permanent() -> None:
        calls.append(1)
        raise ValueError("bad input")

    with pytest.raises(ValueError):
        call_with_retries(
            permanent, RetryPolicy(), is_retryable=lambda e: isinstance(e, Flaky), sleep=waits.append
        )
    assert len(calls) == 1 and waits == []

    def always() -> None:
        calls.append(1)
        raise Flaky("down")

    calls.clear()
    with pytest.raises(Flaky):
        call_with_retries(
            always,
            RetryPolicy(max_attempts=4, base_delay_s=0.5),
            is_retryable=lambda e: True,
            sleep=waits.append,
        )
    assert len(calls) == 4 and len(waits) == 3


@pytest.mark.parametrize("jitter", ["full", "decorrelated", "none"])
def test_backoff_stays_in_bounds_and_is_reproducible(jitter: str) -> None:
    policy = RetryPolicy(max_attempts=10, base_delay_s=0.1, max_delay_s=2.0, jitter=jitter)  # type: ignore[arg-type]

    def delays(seed: int) -> list[float]:
        rng, prev, out = random.Random(seed), policy.base_delay_s, []
        for retry in range(1, 10):
            prev = policy.backoff_s(retry, prev, rng)
            out.append(prev)
        return out

    d = delays(1)
    assert d == delays(1)
    assert all(0.0 <= x <= policy.max_delay_s for x in d)
    if jitter == "none":
        assert d[:4] == [0.1, 0.2, 0.4, 0.8] and d[-1] == 2.0
    if jitter == "decorrelated":
        assert all(x >= policy.base_delay_s for x in d)


def test_retry_after_capped_and_never_below_backoff() -> None:
    waits: list[float] = []
    hints = iter([100.0, None, 0.0])

    def fn() -> None:
        raise Flaky()

    with pytest.raises(Flaky):
        call_with_retries(
            fn,
            RetryPolicy(
                max_attempts=4, base_delay_s=1.0, max_delay_s=8.0, jitter="none", max_server_delay_s=5.0
            ),
            is_retryable=lambda e: True,
            retry_after=lambda e: next(hints),
            sleep=waits.append,
        )
    assert waits == [5.0, 2.0, 4.0]


def test_retry_does_not_touch_the_global_rng() -> None:
    state = random.getstate()
    with pytest.raises(Flaky):
        call_with_retries(
            lambda: (_ for _ in ()).throw(Flaky()),
            RetryPolicy(max_attempts=3),
            is_retryable=lambda e: True,
            sleep=lambda s: None,
        )
    assert random.getstate() == state


@pytest.mark.parametrize(
    "kwargs", [{"max_attempts": 0}, {"base_delay_s": -1}, {"max_delay_s": -0.5}, {"jitter": "sometimes"}]
)
def test_retry_policy_validates(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(**kwargs)
