"""The runner: run directory contents, resume after SIGKILL, concurrency, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from persona_lab.core.errors import ConfigError
from persona_lab.core.io import read_jsonl
from persona_lab.eval.runner import RunConfig, Runner

ENV = "persona_lab/EditEmail-v0"


def test_run_directory_contents(tmp_path: Path) -> None:
    cfg = RunConfig(env_id=ENV, agent="no-learning", rounds=12, episodes=2)
    result = Runner(cfg, tmp_path / "run").run()
    out = tmp_path / "run"
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["env_id"] == ENV and "versions" in config and "git_revision" in config
    recs = list(read_jsonl(out / "transitions.jsonl"))
    assert len(recs) == 24
    rec = recs[0]
    for key in ("episode", "round", "prompt", "action", "reward", "feedback", "info", "privileged", "agent"):
        assert key in rec
    assert rec["prompt"][-1]["role"] == "user" and rec["info"]["edited_text"]
    assert "privileged" not in rec["info"]
    summary = json.loads((out / "summary.json").read_text())
    m = summary["metrics"]
    for key in ("episode/cost", "episode/mean_cost", "episode/acceptance_rate", "episode/preference_satisfaction"):
        assert key in m
    assert m["episode/cost"] > 0
    assert summary["throughput"]["rounds_per_s"] > 0 and "usage" in summary
    assert "scripted" in summary["backend_note"] and "--backend hf:" in summary["backend_note"]
    assert result.failed_episodes == []


def test_existing_dir_needs_resume_and_same_config(tmp_path: Path) -> None:
    Runner(RunConfig(env_id=ENV, rounds=3), tmp_path).run()
    with pytest.raises(ConfigError, match="--resume"):
        Runner(RunConfig(env_id=ENV, rounds=3), tmp_path).run()
    with pytest.raises(ConfigError, match="different config"):
        Runner(RunConfig(env_id=ENV, rounds=4), tmp_path).run(resume=True)


def test_unknown_env_and_agent_suggest(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'persona_lab/EditEmail-v0'"):
        Runner(RunConfig(env_id="persona_lab/EditEmial-v0"), tmp_path)
    with pytest.raises(ConfigError, match="did you mean 'oracle'"):
        Runner(RunConfig(env_id=ENV, agent="oracel"), tmp_path)


def test_concurrency_matches_sequential(tmp_path: Path) -> None:
    cfg = RunConfig(env_id=ENV, agent="cipher", rounds=10, episodes=4, env_kwargs={"population": "verifiable"},
                    agent_kwargs={"encoder": "tfidf"})
    Runner(cfg, tmp_path / "seq").run()
    Runner(cfg, tmp_path / "par", concurrency=4).run()

    def key(p: Path) -> list:
        return sorted((r["episode"], r["round"], r["action"], r["reward"]) for r in read_jsonl(p / "transitions.jsonl"))

    assert key(tmp_path / "seq") == key(tmp_path / "par")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "persona_lab.cli.main", *args]


def test_resume_after_sigkill_equals_uninterrupted(tmp_path: Path) -> None:
    rounds = 150
    args = ["run", ENV, "--agent", "cipher", "--agent-arg", "encoder=\"tfidf\"", "--rounds", str(rounds),
            "--population", "verifiable", "--effort", "1", "--seed", "3"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli(*args, "--out", str(killed)), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    path = killed / "transitions.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if path.exists() and sum(1 for _ in path.open()) >= 20:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = sum(1 for _ in path.open())
    assert 0 < partial < rounds, "the run finished before it could be killed; raise rounds"
    subprocess.run(_cli(*args, "--out", str(killed), "--resume"), env=env, check=True, capture_output=True, timeout=300)
    full = tmp_path / "full"
    subprocess.run(_cli(*args, "--out", str(full)), env=env, check=True, capture_output=True, timeout=300)

    def rows(p: Path) -> list:
        return sorted((r["round"], r["action"], r["reward"], r["info"]["edited_text"]) for r in read_jsonl(p / "transitions.jsonl"))

    resumed = rows(killed)
    assert len(resumed) == rounds and [r[0] for r in resumed] == list(range(rounds))
    assert resumed == rows(full)
    s1 = json.loads((killed / "summary.json").read_text())["metrics"]
    s2 = json.loads((full / "summary.json").read_text())["metrics"]
    assert s1 == s2
