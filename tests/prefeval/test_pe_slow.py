"""A real run on the packaged small LLM (slow: loads SmolLM2-135M on CPU)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from persona_lab.cli import prefeval as prefeval_cli
from persona_lab.core.io import read_jsonl


@pytest.mark.slow
def test_hf_smollm2_run(tiny_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from persona_lab.models.packaged import PACKAGED  # noqa: F401  (the hf backend's packaged models)

    parser = argparse.ArgumentParser()
    prefeval_cli.add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "run"
    args = parser.parse_args(
        ["prefeval", "--backend", "hf:smollm2-135m", "--data", str(tiny_data), "--limit", "2", "--turns", "0", "3",
         "--forms", "explicit", "implicit-choice", "--max-new-tokens", "48", "--reply-max-new-tokens", "32",
         "--concurrency", "4", "--out", str(out)]
    )
    assert args.func(args) == 0
    recs = list(read_jsonl(out / "items.jsonl"))
    assert all(r["status"] == "ok" for r in recs)
    assert sum(r["form"] != "question-only" for r in recs) == 2 * 2 * 2 * 2
    assert sum(r["form"] == "question-only" for r in recs) == 2 * 2  # the no-context control: items x tasks
    assert all(r["context_window"] and r["context_window"] >= 2048 for r in recs)
    gen = [r for r in recs if r["task"] == "generation"]
    assert all(isinstance(r["response"], str) and r["usage"]["completion_tokens"] > 0 for r in gen)
    by_turns = {}
    for r in gen:
        if r["form"] == "question-only":
            continue
        by_turns.setdefault((r["item_id"], r["form"]), {})[r["turns"]] = r["prompt_tokens"]
    assert all(v[3] > v[0] for v in by_turns.values())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["usage"]["backend"]["completion_tokens"] > 0
    assert (out / "accuracy_vs_context.png").stat().st_size > 0
