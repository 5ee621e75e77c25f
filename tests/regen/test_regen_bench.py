"""``bench regen`` end to end on a tiny random model: every stage runs, the table is written, a rerun resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from persona_lab.cli.regen_pipeline import RegenBenchConfig, results_markdown, run_regen_bench
from persona_lab.core.errors import ConfigError
from persona_lab.testing.tiny import save_tiny_model


def test_bench_regen_runs_every_stage_and_resumes(tmp_path: Path) -> None:
    base = save_tiny_model(tmp_path / "tiny")
    cfg = RegenBenchConfig(out=str(tmp_path / "out"), base=str(base), warm_start=False, train_episodes=3,
                           eval_episodes=2, rounds=2, steps=1, batch_size=2, max_length=1024, max_new_tokens=8,
                           candidates=2, controllers=("scripted", "oracle"), device="cpu",
                           arms=("no-learning", "bc", "ilql-regen", "oracle"))
    stages: list[str] = []
    results = run_regen_bench(cfg, cache_dir=str(tmp_path / "cache"), on_stage=stages.append)
    assert set(results["arms"]) == {"no-learning", "bc", "ilql-regen", "oracle"}
    for row in results["arms"].values():
        assert row["n"] == 2 and 0.0 <= row["mean_donation"]["mean"] <= 2.0
    assert results["regenerations"]["scripted"]["parents"] >= 1
    out = Path(cfg.out)
    assert (out / "adapters" / "bc" / "adapter_config.json").is_file()
    assert (out / "adapters" / "ilql-regen" / "ilql_heads.safetensors").is_file()
    assert "| ilql-regen |" in (out / "results.md").read_text()
    ilql_run = json.loads((out / "runs" / "eval-ilql-regen" / "config.json").read_text())["config"]
    assert ilql_run["agent"] == "ilql" and ilql_run["env_kwargs"] == {"population_seed": 1}  # held-out personas

    before = {p: p.stat().st_mtime_ns for p in out.rglob("transitions.jsonl")}
    again = run_regen_bench(cfg, cache_dir=str(tmp_path / "cache"))
    assert again["arms"] == results["arms"]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("transitions.jsonl")} == before  # nothing re-run
    with pytest.raises(ConfigError):
        run_regen_bench(RegenBenchConfig(**{**cfg.__dict__, "rounds": 3}))
    fewer = run_regen_bench(RegenBenchConfig(**{**cfg.__dict__, "arms": ("no-learning", "bc")}),
                            cache_dir=str(tmp_path / "cache"))  # arms may change on a rerun: all cached
    assert fewer["arms"] == {k: results["arms"][k] for k in ("no-learning", "bc")}


def test_table_lists_arms_controllers_and_skips() -> None:
    ci = {"mean": 0.5, "ci_low": 0.1, "ci_high": 0.9, "std": 0.2, "n": 4}
    text = results_markdown({
        "config": {"eval_population": 1, "rounds": 3, "base": "b", "warm_start": True},
        "arms": {"bc": {"n": 4, "donation_rate": ci, "mean_donation": ci, "note": "sft on 9 examples"}},
        "skipped": {"dpo-regen": "no training examples (skipped)"},
        "originals": {"n": 8, "donation_rate": 0.25, "mean_donation": 0.3},
        "regenerations": {"oracle": {"parents": 6, "proposals": 6, "regenerated": 6, "failures": 0, "mean_gain": 0.7}},
    })
    assert "| bc | 50.0% [10.0, 90.0] | $0.50 [0.10, 0.90] | 4 |" in text
    assert "| dpo-regen | – | – | 0 | no training examples (skipped) |" in text
    assert "oracle (upper bound" in text and "+0.700" in text
    with pytest.raises(ConfigError):
        RegenBenchConfig(out="x", arms=("made-up",))


def test_scripted_policy_mode_skips_llm_learners(tmp_path: Path) -> None:
    cfg = RegenBenchConfig(out=str(tmp_path / "out"), base="tiny-random", policy="scripted", train_episodes=3,
                           eval_episodes=2, rounds=2, steps=1, batch_size=2, max_length=1024, candidates=2, head_rank=0,
                           controllers=("scripted",), device="cpu", arms=("no-learning", "bc", "ilql-regen"))
    results = run_regen_bench(cfg, cache_dir=str(tmp_path / "cache"))
    assert set(results["arms"]) == {"no-learning", "ilql-regen"}
    assert results["skipped"] == {"bc": "needs an LLM persuader (policy=llm)"}
    run = json.loads((tmp_path / "out" / "runs" / "eval-ilql-regen" / "config.json").read_text())["config"]
    assert run["backend"] == "scripted" and run["agent"] == "ilql"
    with pytest.raises(ConfigError):
        RegenBenchConfig(out="x", policy="scripted", controllers=("llm",), learn_controller="llm").__class__(
            out="x", policy="nope")
