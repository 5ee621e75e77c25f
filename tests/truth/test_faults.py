"""Faults are visible: the run summary counts retries, faults by kind and give-ups of each backend;
--timeout sets the read timeout; a permanent fault stops the run at once and says it is not retryable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from persona_lab.core.errors import BackendError
from persona_lab.eval.runner import RunConfig, Runner
from persona_lab.models.openai_compat import OpenAIChatModel
from persona_lab.models.retry import RetryPolicy
from persona_lab.testing.fake_server import FakeOpenAIServer, Fault

ENV = "persona_lab/EditEmail-v0"


def _runner(server: FakeOpenAIServer, out: Path, **kw: object) -> Runner:
    cfg = RunConfig(env_id=ENV, agent="no-learning", backend=server.spec(), user="scripted", rounds=3, **kw)  # type: ignore[arg-type]
    runner = Runner(cfg, out, cache=False)
    # the backend the runner would open, with instant backoff so the test does not sleep
    runner._backends[server.spec()] = OpenAIChatModel("m", server.base_url, sleep=lambda _s: None,
                                                      retry=RetryPolicy(max_attempts=4))
    return runner


def test_summary_counts_faults_by_kind_and_retries(tmp_path: Path) -> None:
    """Old behaviour: injected faults left usage.errors at 0 and no retry count anywhere."""
    with FakeOpenAIServer() as server:
        server.inject(Fault.rate_limited(retry_after=0), Fault.http(503), Fault.truncated_json())
        spec = server.spec()
        result = _runner(server, tmp_path / "r").run()
    faults = result.summary["faults"][spec]
    assert faults["by_kind"] == {"429": 1, "5xx": 1, "malformed": 1}
    assert faults["retries"] == 3 and faults["give_ups"] == 0 and faults["faults"] == 3
    assert result.failed_episodes == []


def test_give_ups_are_counted_and_the_episode_fails(tmp_path: Path) -> None:
    with FakeOpenAIServer() as server:
        server.set_default_fault(Fault.http(500))
        spec = server.spec()
        result = _runner(server, tmp_path / "r").run()
    faults = result.summary["faults"][spec]
    assert result.failed_episodes == [0] and faults["give_ups"] == 1 and faults["by_kind"] == {"5xx": 4}
    assert result.summary["usage"]["agent"]["errors"] == 1
    assert result.summary["incomplete_episodes"] == [0] and result.summary["episodes"] == 0


def test_permanent_fault_stops_at_once_and_says_not_retryable(tmp_path: Path) -> None:
    with FakeOpenAIServer() as server:
        server.set_default_fault(Fault.http(401))
        runner = _runner(server, tmp_path / "r", episodes=4)
        with pytest.raises(BackendError, match="not retryable") as info:
            runner.run()
        assert server.request_count == 1, "a permanent fault is neither retried nor tried on other episodes"
        spec = server.spec()
    assert "--resume" not in str(info.value.message)
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["faults"][spec]["permanent"] == 1


def test_timeout_flag_sets_the_read_timeout_and_timeouts_are_counted(tmp_path: Path) -> None:
    with FakeOpenAIServer() as server:
        server.inject(Fault.delay(1.5))
        runner = _runner(server, tmp_path / "r")
        runner.timeout_s = 0.3
        from persona_lab.eval.runner import set_read_timeout

        set_read_timeout(runner._backends[server.spec()], runner.timeout_s)
        result = runner.run()
        spec = server.spec()
    assert result.summary["faults"][spec]["by_kind"] == {"timeout": 1}


def test_timeout_flag_reaches_the_backend(tmp_path: Path) -> None:
    runner = Runner(RunConfig(env_id=ENV, backend="openai:m@http://127.0.0.1:9/v1", user="scripted"), tmp_path,
                    timeout_s=7.5)
    assert runner._model("openai:m@http://127.0.0.1:9/v1", "agent").backend.read_timeout_s == 7.5


def test_malformed_budget_is_per_request_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from persona_lab.models.base import ChatRequest

    with FakeOpenAIServer() as server:
        server.inject(*[Fault.truncated_json()] * 3)
        model = OpenAIChatModel("m", server.base_url, sleep=lambda _s: None, malformed_attempts=2,
                                retry=RetryPolicy(max_attempts=5))
        with caplog.at_level(logging.WARNING), pytest.raises(BackendError, match="after 2 attempts"):
            model.generate([ChatRequest.of("hi")])
        (ok,) = model.generate([ChatRequest.of("hi")])  # a new request gets a fresh malformed budget
        assert ok.text and server.request_count == 4  # 2 for the first request; 1 malformed + 1 answer
    assert "malformed reply 1/2" in caplog.text
    snap = model.faults.snapshot()
    assert snap["by_kind"] == {"malformed": 3} and snap["give_ups"] == 1 and snap["retries"] == 2
