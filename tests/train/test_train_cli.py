"""`persona-lab train {sft,dpo,ipo,data}` end to end on a tiny model folder and a small edit run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import persona_lab.cli.main as cli_main


@pytest.fixture(autouse=True)
def _train_command(monkeypatch: pytest.MonkeyPatch) -> None:
    # Until the lead registers it in cli/main.py, add the subcommand module for these tests.
    if "persona_lab.cli.train" not in cli_main.COMMAND_MODULES:
        monkeypatch.setattr(cli_main, "COMMAND_MODULES", [*cli_main.COMMAND_MODULES, "persona_lab.cli.train"])


def test_train_dpo_from_edit_run_with_yaml_and_flags(
    tiny_folder: Path, make_edit_run: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = make_edit_run(n_edited=4, n_accepted=2)
    yaml_file = tmp_path / "dpo.yaml"
    yaml_file.write_text("lora_r: 4\nlora_alpha: 8\nbeta: 0.2\nmax_steps: 10\n")
    out = tmp_path / "adapter"
    rc = cli_main.main([
        "train", "dpo", "--config", str(yaml_file), "--base", str(tiny_folder), "--data", str(run),
        "--out", str(out), "--max-steps", "2", "--batch-size", "2", "--lr", "1e-2",
    ])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "step 1/2  loss 0.6931" in captured.err and "step 2/2" in captured.err
    assert "trained dpo LoRA: 2 steps on 4 examples" in captured.out
    for word in ("tokens/s", "peak memory", "loss curve", f"hf:{tiny_folder}+{out}"):
        assert word in captured.out
    record = json.loads((out / "train_config.json").read_text())["config"]
    assert (record["lora_r"], record["beta"], record["max_steps"], record["learning_rate"]) == (4, 0.2, 2, 1e-2)
    assert (out / "loss_curve.png").stat().st_size > 1000

    # a second run into the same folder needs --overwrite
    rc = cli_main.main(["train", "dpo", "--base", str(tiny_folder), "--data", str(run), "--out", str(out),
                        "--max-steps", "1"])
    assert rc == 2 and "--overwrite" in capsys.readouterr().err


def test_train_sft_json_summary_and_data_export(
    tiny_folder: Path, make_edit_run: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = make_edit_run(n_edited=3, n_accepted=2)
    parquet = tmp_path / "sft.parquet"
    assert cli_main.main(["train", "data", str(run), "--kind", "sft", "--out", str(parquet)]) == 0
    assert "5 sft examples (prompt_completion/conversational" in capsys.readouterr().out
    rc = cli_main.main(["train", "sft", "--base", f"hf:{tiny_folder}", "--data", str(parquet),
                        "--out", str(tmp_path / "sft"), "--max-steps", "1", "--quiet", "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["method"] == "sft" and summary["steps"] == 1 and summary["examples"] == 5
    assert "step 1/" not in captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "ipo", "--data", "x", "--out", "y"], "no --base given"),
        (["train", "ipo", "--base", "b", "--data", "/no/such/run", "--out", "{tmp}/o"], "not found"),
        (["train", "data", "/no/such/run", "--kind", "sft", "--out", "{tmp}/d"], "not found"),
        (["train", "sft", "--config", "/no/such.yaml"], "does not exist"),
    ],
)
def test_user_errors_exit_2(argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli_main.main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert rc == 2
    assert message in capsys.readouterr().err


def test_help_lists_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli_main.main(["train", "ipo", "--help"])
    text = capsys.readouterr().out
    for flag in ("--lora-r", "--lora-alpha", "--lora-dropout", "--target-modules", "--beta", "--lr",
                 "--gradient-checkpointing", "--bf16", "--max-steps", "--seed", "--config"):
        assert flag in text
