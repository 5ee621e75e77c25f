"""The README's code examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _example(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"<!-- example: {name} -->\s*```python\n(.*?)```", text, re.S)
    assert match, f"README example {name!r} not found"
    return match.group(1)


def test_custom_agent_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from persona_lab.agents import AGENTS
    from persona_lab.agents.base import create_agent

    monkeypatch.chdir(tmp_path)
    code = _example("custom-agent")
    try:
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
        cost = float(capsys.readouterr().out.strip().splitlines()[-1])
        assert (tmp_path / "runs" / "copy-last-style" / "summary.json").exists()
        assert create_agent("copy-last-style", "email").name == "copy-last-style"
    finally:
        AGENTS.remove("copy-last-style")
    from persona_lab.eval.runner import RunConfig, Runner

    base = Runner(RunConfig(env_id="persona_lab/EditEmail-v0", agent="no-learning", rounds=30), tmp_path / "b").run()
    assert cost < base.summary["metrics"]["episode/cost"]
