"""End to end: the ``prefeval`` subcommand on the fake backend writes every output and resumes
without duplicates; ``--validate``; the Python runner with a scripted model (accuracy, agreement)."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import pytest

from persona_lab.cli import prefeval as prefeval_cli
from persona_lab.core.errors import ConfigError
from persona_lab.core.io import read_jsonl
from persona_lab.eval.prefeval.report import rebuild_outputs
from persona_lab.eval.prefeval.runner import PrefEvalConfig, PrefEvalRunner, request_messages
from persona_lab.models.base import ChatRequest
from persona_lab.simulators.prefeval.data import load_filler
from persona_lab.testing import FakeChatModel


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="persona-lab")
    sub = parser.add_subparsers(dest="command")
    prefeval_cli.add_parser(sub)
    args = parser.parse_args(["prefeval", *argv])
    return args.func(args)


def _keys(path: Path) -> list[str]:
    return [r["key"] for r in read_jsonl(path)]


def test_cli_end_to_end_and_resume(tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    base = ["--backend", "fake", "--data", str(tiny_data), "--turns", "0", "3", "--methods", "zero-shot,reminder",
            "--concurrency", "3", "--out", str(out)]
    assert cli(*base, "--limit", "2") == 0
    shown = capsys.readouterr().out
    assert "PrefEval generation" in shown and "classification" in shown
    for name in ("config.json", "items.jsonl", "summary.json", "report.md", "accuracy_vs_context.png"):
        assert (out / name).stat().st_size > 0, name
    first = _keys(out / "items.jsonl")
    # 2 items x 3 forms x 2 turns x 2 methods x 2 tasks, plus the question-only control (2 items x 2 methods x 2 tasks)
    assert len(first) == len(set(first)) == 48 + 8
    summary = json.loads((out / "summary.json").read_text())
    assert summary["generation"]["judging"]["programmatic"] == 12 + 2  # the verifiable item (snacks/0)
    assert summary["generation"]["judging"]["no_judge"] == 12 + 2  # travel/0 has no checks and no --judge
    assert "no LLM judge" in summary["generation"]["judging"]["note"]
    report = (out / "report.md").read_text()
    assert "| zero-shot |" in report and "95%" in report and "Chance: 25.0%" in report

    # rerunning into the same folder needs --resume
    with pytest.raises(ConfigError, match="--resume"):
        cli(*base, "--limit", "2")
    # a torn last line (a killed writer) is repaired, and nothing recorded is run again
    with (out / "items.jsonl").open("a") as fh:
        fh.write('{"key": "torn')
    assert cli(*base, "--limit", "3", "--resume") == 0
    keys = _keys(out / "items.jsonl")
    assert len(keys) == len(set(keys)) == 84 and keys[:56] == first
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["tests_run"] == 28 and summary["run"]["tests_already_recorded"] == 56
    assert cli(*base, "--limit", "3", "--resume") == 0
    assert len(_keys(out / "items.jsonl")) == 84
    # resuming with different answer-changing settings is refused
    with pytest.raises(ConfigError, match="answer_words"):
        cli(*base, "--resume", "--words", "100")


def test_cli_validate(tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("--data", str(tiny_data), "--validate") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "snacks" in out and "travel" in out and "40 turn pairs" in out and "0 error(s)" in out
    (tiny_data / "mcq_options" / "travel.json").write_text("[{", encoding="utf-8")
    assert cli("--data", str(tiny_data), "--validate") == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "travel.json" in out and "invalid JSON" in out and "1 error(s)" in out


def test_cli_requires_backend_and_out(tiny_data: Path) -> None:
    with pytest.raises(ConfigError, match="--backend"):
        cli("--data", str(tiny_data), "--out", "x")
    with pytest.raises(ConfigError, match="--out"):
        cli("--backend", "fake", "--data", str(tiny_data))
    assert cli("--list-methods") == 0


def _answer_model() -> FakeChatModel:
    """Answers follow the preference on odd turn counts only, and pick the right option."""

    def respond(req: ChatRequest) -> str:
        last = req.messages[-1].content
        if len(req.messages) == 2:
            return "Thanks, noted."
        if "(A)" in last:
            for line in last.splitlines():
                if "sunflower" in line.lower() or "herbal" in line.lower() or "coastal" in line.lower():
                    return f"The answer is {line[1]}."
            return "not sure"
        n_filler = (len(req.messages) - 4) // 2  # system, preference, reply, filler..., question
        return ("Pack trail mix with seeds and fruit, plus a granola bar and water for the long hike ahead of you."
                if n_filler % 2 else "Pack a peanut butter sandwich and some peanuts as a snack for the trail today.")

    return FakeChatModel(respond)


def _judge_model() -> FakeChatModel:
    def respond(req: ChatRequest) -> str:
        text = req.messages[-1].content
        if "goes against the user's preference" in text:
            return '{"answer": "yes"}' if "peanut butter" in text.split("The assistant's answer:")[-1] else '{"answer": "no"}'
        if "Does the answer explicitly mention" in text:
            return '{"answer": "no"}'
        return '{"answer": "yes"}'

    return FakeChatModel(respond, name="judge")


def test_runner_accuracy_agreement_and_sft_fields(tiny_data: Path, tmp_path: Path) -> None:
    cfg = PrefEvalConfig(backend="fake", judge="fake:judge", data_dir=str(tiny_data), turns=(0, 1), topics=("snacks",),
                         forms=("explicit",), methods=("zero-shot", "self-critic"), controls=False)
    model = _answer_model()
    runner = PrefEvalRunner(cfg, model, tmp_path / "run", judge_model=_judge_model(), concurrency=2)
    summary = runner.run()
    cells = {(c["method"], c["turns"]): c for c in summary["generation"]["cells"]}
    assert cells[("zero-shot", 1)]["accuracy"] == 1.0 and cells[("zero-shot", 0)]["accuracy"] == 0.0
    assert cells[("zero-shot", 0)]["error_types"]["preference_unaware_violation"] == 2
    assert cells[("zero-shot", 0)]["ci_high"] < 1.0 and cells[("zero-shot", 1)]["ci_low"] > 0.0
    cls = summary["classification"]["cells"]
    assert all(c["accuracy"] == 1.0 for c in cls if c["form"] == "explicit")
    # the programmatic judge of snacks/1 (forbid coffee words) misses the peanut answer the LLM judge flags
    agreement = summary["generation"]["agreement"]
    assert (agreement["n"], agreement["agree"], agreement["rate"]) == (8, 6, 0.75)
    assert summary["generation"]["judging"]["llm"] == 8

    # every record rebuilds into the exact messages sent (the SFT helper depends on this)
    filler = load_filler(tiny_data / "filler.json")
    sent = {tuple((m.role, m.content) for m in r.messages) for r in model.requests}
    for rec in runner.records():
        assert tuple((m["role"], m["content"]) for m in request_messages(rec, filler)) in sent
        assert tuple((m["role"], m["content"]) for m in request_messages(rec, filler, include_steps=False)) in sent
        plain = request_messages(rec, filler, with_method_text=False, include_steps=False)
        assert plain[-1]["content"].startswith(rec["question"])
    crit = next(r for r in runner.records() if r["method"] == "self-critic" and r["task"] == "generation")
    assert len(crit["steps"]) == 4 and crit["usage"]["calls"] == 3
    # the report can be rebuilt from the records alone
    again = rebuild_outputs(tmp_path / "run")
    assert again["generation"]["cells"] == summary["generation"]["cells"]
    assert Counter(r["status"] for r in runner.records()) == Counter({"ok": 12})
