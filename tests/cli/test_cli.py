"""The persona-lab CLI: help, listings, errors without tracebacks, run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from persona_lab.cli.main import main


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("ls", "run", "check", "chat"):
        assert cmd in out


@pytest.mark.parametrize("what", ["backends", "envs", "agents", "populations", "preferences"])
def test_ls(what: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ls", what]) == 0
    assert capsys.readouterr().out.strip()


def test_unknown_command_suggests(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["rnu"])
    assert exit_info.value.code == 2
    assert "did you mean 'run'" in capsys.readouterr().err


def test_unknown_backend_exit_2_no_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "--backend", "fkae", "hi"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'fake'" in err and "Traceback" not in err


def test_chat_fake_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "--backend", "fake", "hello"]) == 0
    out = capsys.readouterr().out
    assert "ok" in out and "prompt_tokens=" in out and "cache_hit=False" in out


def test_run_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["run", "persona_lab/EditSummarization-v0", "--agent", "oracle", "--rounds", "5", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "episode/cost" in text and "scripted" in text
    assert json.loads((out / "summary.json").read_text())["metrics"]["episode/cost"] == 0
    assert main(["check", "persona_lab/EditEmail-v0"]) == 0
    assert main(["run", "persona_lab/Nope-v0", "--out", str(tmp_path / "x")]) == 2
