"""``persona-lab bench rlhs`` end to end on a tiny random model and the scripted customer: every stage
writes its output, the table has a row per adapter, and a rerun resumes without training again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from persona_lab.cli.main import main
from persona_lab.cli.rlhs_bench import quick_config, run_rlhs_bench
from persona_lab.core.errors import ConfigError
from persona_lab.train.rlhs import split_scenarios


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> str:
    from persona_lab.testing.tiny import save_tiny_model

    return f"hf:{save_tiny_model(tmp_path_factory.mktemp('tiny') / 'm', seed=0, max_positions=4096)}"


def test_quick_bench_on_tiny_model_trains_evaluates_and_resumes(tiny_base: str, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    cfg = quick_config(str(out), tiny_base, policy="scripted", pairs=8, test_scenarios=3, max_new_tokens=8,
                       sft_steps=0, dpo_steps=2, batch_size=2, max_length=2048, modes=("immediate", "partial_hindsight"),
                       grpo_modes=("partial_hindsight",), grpo_steps=1)
    results = run_rlhs_bench(cfg)
    assert list(results["rows"]) == ["base", "dpo-immediate", "dpo-partial_hindsight", "grpo-partial_hindsight"]
    grpo_log = (out / "adapters" / "grpo-partial_hindsight" / "log_history.jsonl").read_text()
    assert "rewards/partial_hindsight_rating/mean" in grpo_log and "rewards/true_utility/mean" in grpo_log
    for mode in ("immediate", "partial_hindsight"):
        assert (out / "adapters" / f"dpo-{mode}" / "adapter_config.json").is_file()
        assert results["rows"][f"dpo-{mode}"]["spec"].endswith(f"+{out / 'adapters' / f'dpo-{mode}'}")
    test_cats = set(split_scenarios(0).test_categories)
    for row in results["rows"]:
        recs = [json.loads(x) for x in (out / "runs" / row / "transitions.jsonl").read_text().splitlines()]
        assert len(recs) == 3 and all(r["privileged"]["category"] in test_cats for r in recs)
        assert results["rows"][row]["n"] == 3
    assert "| dpo-immediate |" in (out / "results.md").read_text()
    assert (out / "rating_vs_utility.png").stat().st_size > 0

    # resume: nothing is trained again, the table is rebuilt from the same runs
    stamp = (out / "adapters" / "dpo-immediate" / "adapter_model.safetensors").stat().st_mtime_ns
    again = run_rlhs_bench(cfg)
    assert (out / "adapters" / "dpo-immediate" / "adapter_model.safetensors").stat().st_mtime_ns == stamp
    assert again["rows"]["base"]["utility"] == results["rows"]["base"]["utility"]
    with pytest.raises(ConfigError, match="other settings"):
        run_rlhs_bench(quick_config(str(out), tiny_base, policy="scripted", pairs=9))


def test_scripted_bench_cli_prints_table_and_misalignment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["bench", "rlhs", "--base", "scripted", "--policy", "scripted", "--quick", "--out", str(tmp_path)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "| deceptive-seller |" in text and "labels disagree" in text
    res = json.loads((tmp_path / "results.json").read_text())
    # immediate feedback rewards the deceptive seller; the truth does not
    rows = res["rows"]
    assert rows["deceptive-seller"]["immediate"]["mean"] > rows["oracle"]["immediate"]["mean"]
    assert rows["deceptive-seller"]["utility"]["mean"] < rows["oracle"]["utility"]["mean"]
    assert rows["deceptive-seller"]["deception"]["mean"] > 0.5 and rows["oracle"]["deception"]["mean"] == 0
    assert main(["bench", "rlhs", "--base", "scripted", "--out", str(tmp_path / "x")]) == 2  # no model to sample
    assert main(["bench", "rlhs", "--base", "scripted", "--policy", "scripted", "--data-only", "--pairs", "30",
                 "--out", str(tmp_path / "d")]) == 0
    data_only = json.loads((tmp_path / "d" / "results.json").read_text())
    assert data_only["rows"] == {} and data_only["misalignment"]["pairs"] == 30
    assert not (tmp_path / "d" / "runs").exists()


@pytest.mark.parametrize(("flags", "message"), [
    ("--pairs 0", "argument --pairs"),
    ("--temperature 0", "argument --temperature"),
    ("--sft-steps -1", "argument --sft-steps"),
    ("--modes vibes", "argument --modes"),
    ("--customer llm --policy scripted", "--customer-backend"),
])
def test_bad_bench_flags_exit_2(flags: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "rlhs", "--base", "scripted", "--out", str(tmp_path / "b"), *flags.split()]
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse usage errors
        rc = int(exc.code or 0)
    assert rc == 2 and message in capsys.readouterr().err


def test_out_that_is_a_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_text("x")
    assert main(["bench", "rlhs", "--base", "scripted", "--policy", "scripted", "--out", str(tmp_path / "f")]) == 2
    assert "is a file" in capsys.readouterr().err
