"""The ``openai:`` backend beyond one server: log-probabilities over HTTP, replicas, server extras.

Everything runs against :class:`FakeOpenAIServer` on loopback; its tokenizer and "language model"
(:func:`fake_tokens`, :func:`fake_logprob`) let the tests compute the exact score a client must report.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from persona_lab.core.errors import BackendUnavailableError, ConfigError
from persona_lab.core.messages import Message
from persona_lab.models import ChatRequest, GenerationParams, ScoreRequest, create_backend, open_chat_model
from persona_lab.models.openai_compat import OpenAIChatModel, render_chat
from persona_lab.models.retry import RetryPolicy
from persona_lab.testing.fake_server import FakeOpenAIServer, Fault, fake_logprob, fake_tokens

FAST = RetryPolicy(max_attempts=4, base_delay_s=0.001, max_delay_s=0.002)
CONV = (Message("user", "tell me about tea"), Message("assistant", "green tea is mild and grassy"))


def expected_score(messages: tuple[Message, ...], continuation: str, template: str = "chatml") -> float:
    """What the fake server's model gives the continuation's content tokens (computed here, not by the client)."""
    text, spans = render_chat((*messages, Message("user", continuation)), template)
    begin, end = spans[-1]
    values = [fake_logprob(text[:off], tok) for i, (off, tok) in enumerate(fake_tokens(text))
              if i > 0 and off < end and off + len(tok) > begin]
    return sum(values) / len(values)


# ------------------------------------------------------------------------------------------------
# log-probabilities over HTTP


@pytest.mark.parametrize("mode", ["echo", "prompt_logprobs"])
@pytest.mark.parametrize("template", ["chatml", "plain", "llama3"])
def test_score_matches_the_servers_token_logprobs(server: FakeOpenAIServer, mode: str, template: str) -> None:
    model = OpenAIChatModel("m", server.base_url, score_mode=mode, template=template, retry=FAST)
    texts = ["thanks, that helped with tea", "that is wrong", "why green?"]
    got = model.score([ScoreRequest(CONV, Message("user", t)) for t in texts])
    want = [expected_score(CONV, t, template) for t in texts]
    assert got == pytest.approx(want, abs=1e-9)
    assert len(set(got)) == 3  # the texts score differently
    bodies = [r.body for r in server.requests]
    assert sorted(b["prompt"] for b in bodies) == sorted(render_chat((*CONV, Message("user", t)), template)[0]
                                                        for t in texts)
    assert all(("echo" in b) == (mode == "echo") and ("prompt_logprobs" in b) == (mode == "prompt_logprobs")
               for b in bodies)


def test_score_depends_on_the_context(server: FakeOpenAIServer) -> None:
    model = OpenAIChatModel("m", server.base_url, retry=FAST)
    follow = Message("user", "more about green tea please")
    with_tea, without = model.score([ScoreRequest(CONV, follow),
                                     ScoreRequest((Message("user", "hi"), Message("assistant", "hello")), follow)])
    assert with_tea > without


def test_auto_mode_falls_back_to_prompt_logprobs_and_remembers() -> None:
    with FakeOpenAIServer(logprob_modes=("prompt_logprobs",)) as s:
        model = OpenAIChatModel("m", s.base_url, retry=FAST)
        req = ScoreRequest(CONV, Message("user", "why so?"))
        assert model.score([req]) == pytest.approx([expected_score(CONV, "why so?")])
        n = s.request_count
        assert n == 2  # echo refused (400), then prompt_logprobs
        model.score([req])
        assert s.request_count == n + 1  # the working mode is kept


def test_a_server_without_prompt_logprobs_says_so_with_a_hint() -> None:
    with FakeOpenAIServer(logprob_modes=(), ignore_unknown_fields=True) as s:
        model = OpenAIChatModel("m", s.base_url, retry=FAST)
        with pytest.raises(BackendUnavailableError) as info:
            model.score([ScoreRequest(CONV, Message("user", "ok"))])
        assert "log-probabilities" in str(info.value) and "hf:" in str(info.value)


def test_score_retries_server_errors(server: FakeOpenAIServer) -> None:
    server.inject(Fault.http(503), Fault.truncated_json())
    model = OpenAIChatModel("m", server.base_url, score_mode="echo", retry=FAST, sleep=lambda s: None)
    assert model.score([ScoreRequest(CONV, Message("user", "ok then"))]) == pytest.approx(
        [expected_score(CONV, "ok then")])
    assert model.retries == 2


def test_flr_runs_against_the_fake_server(server: FakeOpenAIServer, tmp_path: Path) -> None:
    """`persona-lab run persona_lab/FollowUp-v0 --env-arg reward_mode=flr --env-arg scorer=openai:...`."""
    from persona_lab.cli.main import main

    out = tmp_path / "run"
    spec = f"{server.spec('m')}?score_mode=echo&max_concurrency=16"
    rc = main(["run", "persona_lab/FollowUp-v0", "--rounds", "2", "--episodes", "1", "--out", str(out),
               "--env-arg", "reward_mode=flr", "--env-arg", f"scorer={spec}", "--no-cache"])
    assert rc == 0
    rows = [json.loads(line) for p in sorted(out.rglob("*.jsonl")) for line in p.read_text().splitlines()
            if '"flr"' in line]
    rewards = [r["reward"] for r in rows if "reward" in r]
    flrs = [r["info"]["flr"] for r in rows if "info" in r and "flr" in r["info"]]
    assert flrs and rewards == pytest.approx(flrs)
    assert all(isinstance(x, float) and x != 0.0 for x in flrs)
    assert server.request_count >= 120 * len(flrs)  # 120 follow-ups scored per answer
    assert all(r.path.endswith("/completions") and "echo" in r.body for r in server.requests)


# ------------------------------------------------------------------------------------------------
# replicas


def test_spec_with_replicas_and_options_round_trips(tmp_path: Path) -> None:
    m = create_backend("openai:org/m@http://127.0.0.1:1/v1,http://127.0.0.1:2/v1?max_concurrency=3&cooldown_s=5")
    assert isinstance(m, OpenAIChatModel)
    assert m.base_url == "http://127.0.0.1:1/v1,http://127.0.0.1:2/v1" and m.max_concurrency == 3
    assert create_backend(m.spec).spec == m.spec
    urls = tmp_path / "replicas.txt"
    urls.write_text("# vLLM servers\nhttp://10.0.0.1:8000/v1\n\nhttp://10.0.0.2:8000/v1\n")
    assert create_backend(f"openai:m@file:{urls}").base_url == "http://10.0.0.1:8000/v1,http://10.0.0.2:8000/v1"
    for bad in ("openai:m@http://a/v1?nope=1", "openai:m@http://a/v1,http://a/v1", "openai:m@http://a/v1?score_mode=x"):
        with pytest.raises(ConfigError):
            create_backend(bad)


def test_requests_spread_least_in_flight_with_a_per_replica_cap() -> None:
    slow = FakeOpenAIServer(default_fault=Fault.delay(0.15), name="a")
    fast = FakeOpenAIServer(name="b")
    with slow, fast:
        model = OpenAIChatModel("m", [slow.base_url, fast.base_url], max_concurrency=2, retry=FAST)
        peak = {"a": 0, "b": 0}
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                for r in model.replica_stats():
                    key = "a" if r["url"] == slow.base_url else "b"
                    peak[key] = max(peak[key], r["in_flight"])
                time.sleep(0.002)

        t = threading.Thread(target=watch)
        t.start()
        out = model.generate([ChatRequest.of(f"q{i}") for i in range(12)])
        stop.set()
        t.join()
        assert [c.text for c in out] == [f"q{i}" for i in range(12)]
        stats = {r["url"]: r for r in model.replica_stats()}
        assert stats[slow.base_url]["requests"] + stats[fast.base_url]["requests"] == 12
        assert stats[fast.base_url]["requests"] > stats[slow.base_url]["requests"]  # the slow one keeps its slots busy
        assert stats[slow.base_url]["requests"] >= 1
        assert max(peak.values()) <= 2  # the per-replica cap
        assert stats[fast.base_url]["prompt_tokens"] > 0


def test_a_failing_replica_leaves_the_rotation_and_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    bad = FakeOpenAIServer(default_fault=Fault.http(500))
    good = FakeOpenAIServer()
    with bad, good:
        model = OpenAIChatModel("m", [bad.base_url, good.base_url], max_concurrency=1, fail_threshold=2,
                                cooldown_s=60, retry=RetryPolicy(max_attempts=6, base_delay_s=0.0),
                                sleep=lambda s: None)
        texts = [model.generate([ChatRequest.of(f"x{i}")])[0].text for i in range(10)]
        assert texts == [f"x{i}" for i in range(10)]
        assert bad.request_count == 2  # two failures, then out of rotation
        stats = {r["url"]: r for r in model.replica_stats()}
        assert stats[bad.base_url]["in_rotation"] is False and stats[bad.base_url]["times_taken_out"] == 1
        assert stats[bad.base_url]["failures"] == 2 and stats[good.base_url]["requests"] == 10
        assert any("out of rotation" in r.getMessage() for r in caplog.records)


def test_cache_key_does_not_depend_on_the_replica(tmp_path: Path) -> None:
    a, b = FakeOpenAIServer(), FakeOpenAIServer()
    with a, b:
        both = open_chat_model(f"openai:m@{a.base_url},{b.base_url}", cache_dir=tmp_path)
        reqs = [ChatRequest.of(f"hello {i}") for i in range(6)]
        first = both.generate(reqs)
        assert a.request_count + b.request_count == 6
        swapped = open_chat_model(f"openai:m@{b.base_url},{a.base_url}", cache_dir=tmp_path)
        again = swapped.generate(reqs)
        assert [c.text for c in again] == [c.text for c in first]
        assert all(c.usage.cache_hit for c in again) and a.request_count + b.request_count == 6
        assert both.backend_stats()["replicas"][0]["url"] == a.base_url


# ------------------------------------------------------------------------------------------------
# server extras


def test_extra_body_from_spec_and_params_reaches_the_server_and_the_cache_key(
        server: FakeOpenAIServer, tmp_path: Path) -> None:
    spec = server.spec("m") + '?extra_body={"repetition_penalty":1.1}'
    chat = open_chat_model(spec, cache_dir=tmp_path)
    guided = GenerationParams(extra_body={"guided_choice": ["yes", "no"]})
    chat.generate([ChatRequest.of("a"), ChatRequest.of("a", guided)])
    bodies = [r.body for r in server.requests]
    assert all(b["repetition_penalty"] == 1.1 for b in bodies)
    assert sorted(str(b.get("guided_choice")) for b in bodies) == ["None", "['yes', 'no']"]  # both sent
    plain = open_chat_model(server.spec("m"), cache_dir=tmp_path)
    plain.generate([ChatRequest.of("a")])
    assert server.request_count == 3  # the spec's extras are part of the key too
    with pytest.raises(ConfigError):
        OpenAIChatModel("m", server.base_url, extra_body={"messages": []})


def test_one_request_runs_on_the_calling_thread(server: FakeOpenAIServer) -> None:
    model = OpenAIChatModel("m", server.base_url)
    model.generate([ChatRequest.of("solo")])
    assert model._executor is None  # no pool was needed
    model.generate([ChatRequest.of("a"), ChatRequest.of("b")])
    assert model._executor is not None
    model.close()


def _params_hash_is_stable(p: Any) -> bool:
    return hash(p) == hash(GenerationParams(extra_body=dict(p.extra_body or {})))


def test_generation_params_with_extras_hash_and_compare() -> None:
    p = GenerationParams(extra_body={"b": 1, "a": [1, 2]})
    assert _params_hash_is_stable(p) and p == GenerationParams(extra_body={"a": [1, 2], "b": 1})
    assert p != GenerationParams() and "extra_body" not in GenerationParams().to_dict()


def test_run_summary_reports_usage_per_replica(tmp_path: Path) -> None:
    from persona_lab.eval.runner import RunConfig, Runner

    a, b = FakeOpenAIServer(), FakeOpenAIServer()
    with a, b:
        spec = f"openai:m@{a.base_url},{b.base_url}"
        cfg = RunConfig(env_id="persona_lab/EditEmail-v0", agent="no-learning", backend=spec, user="scripted",
                        rounds=3, episodes=2)
        summary = Runner(cfg, tmp_path / "run", cache=False, concurrency=2).run().summary
        replicas = summary["backends"][spec]["replicas"]
        assert [r["url"] for r in replicas] == [a.base_url, b.base_url]
        assert sum(r["requests"] for r in replicas) == a.request_count + b.request_count > 0
        assert all(r["in_rotation"] and r["times_taken_out"] == 0 for r in replicas)
