"""Readable output: ids are never cut at 80 columns, third-party progress bars are silenced unless
--verbose, and a run whose env uses a model (FLR scorer) does not claim "no language model"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

from persona_lab.cli.main import QUIET_ENV, main


@pytest.mark.parametrize("what", ["envs", "agents", "preferences", "backends"])
def test_ls_keeps_every_id_whole_at_80_columns(what: str, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Old behaviour: `persona_lab/EditSummarization…` and `summariz…` cut with an ellipsis."""
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["ls", what]) == 0
    out = capsys.readouterr().out
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    if what == "envs":
        for env_id in (k for k in gym.registry if k.startswith("persona_lab/")):
            assert env_id in out.split(), env_id
    if what == "agents":
        from persona_lab.agents import AGENTS

        words = set(out.replace(",", " ").split())
        assert set(AGENTS.names()) <= words


def test_third_party_progress_bars_are_silenced_unless_verbose() -> None:
    """A fresh process, as a user runs it: the quiet settings are made before any model library loads."""
    code = ("import sys; from persona_lab.cli.main import main; main(sys.argv[1:]); from tqdm import tqdm; "
            "[None for _ in tqdm(range(3), desc='Loading weights')]")
    env = {k: v for k, v in os.environ.items() if k not in QUIET_ENV}
    quiet = subprocess.run([sys.executable, "-c", code, "ls", "populations"], env=env, capture_output=True, text=True)
    loud = subprocess.run([sys.executable, "-c", code, "--verbose", "ls", "populations"], env=env,
                          capture_output=True, text=True)
    assert quiet.returncode == loud.returncode == 0, quiet.stderr + loud.stderr
    assert "Loading weights" not in quiet.stderr
    assert "Loading weights" in loud.stderr


def test_flr_run_says_it_uses_a_model(tmp_path: Path) -> None:
    from persona_lab.eval.runner import RunConfig, Runner

    cfg = RunConfig(env_id="persona_lab/FollowUp-v0", env_kwargs={"reward_mode": "flr", "scorer": "hf:smollm2-135m"})
    note = Runner(cfg, tmp_path).summarize(wall_s=1.0, rounds_executed=0, failed=[])["backend_note"]
    assert "no language model" not in note and "scorer hf:smollm2-135m" in note
