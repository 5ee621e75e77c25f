"""FSPO-DPO and FSPO-IPO steps on a tiny random model: every LoRA weight moves in two steps (B first, as
it starts at zero, then A); over-long episodes are
dropped (never truncated); the CLI trains from a saved data folder."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import TrainerCallback

from persona_lab.core.errors import ConfigError
from persona_lab.simulators import fspo as F
from persona_lab.train.fspo import DEFAULT_BETA, FSPOTrainConfig, filter_by_length, row_tokens, train_fspo

TINY_DATA = F.FSPODataConfig(train_users=12, heldout_users=1, interpolated_users=1, train_pairs_per_user=3,
                             eval_pairs_per_user=1, answer_sentences=1, seed=0)


class Snapshot(TrainerCallback):
    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        self.lora = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    data = F.build_fspo_data(TINY_DATA)
    return F.training_rows(data, n_shots=1, draws=2)


@pytest.mark.parametrize("loss", ["dpo", "ipo"])
def test_a_step_changes_every_lora_weight(loss: str, rows: list[dict[str, Any]], tmp_path: Path) -> None:
    from persona_lab.testing.tiny import tiny_chat_model

    model, tok = tiny_chat_model(seed=0)
    config = FSPOTrainConfig(out=str(tmp_path / loss), loss=loss, max_steps=2, batch_size=2, learning_rate=1e-2,
                             max_length=2048, shots=1)
    assert config.beta == DEFAULT_BETA[loss]
    snap = Snapshot()
    result = train_fspo(config, model=model, tokenizer=tok, rows=rows[:4], callbacks=[snap])
    assert result.steps == 2 and math.isfinite(result.losses[0][1])
    if loss == "ipo":  # the adapter starts at zero: h = 0, loss = (1/(2β))²
        assert result.losses[0][1] == pytest.approx((1 / (2 * config.beta)) ** 2)
    else:
        assert result.losses[0][1] == pytest.approx(math.log(2), rel=1e-5)
    trained = dict(result.model.named_parameters())
    assert snap.lora and [n for n, before in snap.lora.items() if torch.equal(before, trained[n])] == []
    summary = json.loads((Path(config.out) / "summary.json").read_text())
    assert summary["loss"] == loss and summary["dropped_over_length"] == 0 and summary["episodes"] == 4


def test_trl_loss_type_follows_the_loss() -> None:
    assert FSPOTrainConfig(loss="dpo").trl_args()["loss_type"] == ["sigmoid"]
    assert FSPOTrainConfig(loss="ipo").trl_args()["loss_type"] == ["ipo"]
    assert FSPOTrainConfig(loss="ipo", beta=0.2).beta == 0.2
    with pytest.raises(ConfigError, match="loss"):
        FSPOTrainConfig(loss="kto")


def test_over_long_episodes_are_dropped_not_truncated(rows: list[dict[str, Any]], tmp_path: Path) -> None:
    from persona_lab.testing.tiny import tiny_chat_model, tiny_tokenizer

    tok = tiny_tokenizer()
    lengths = sorted(row_tokens(r, tok) for r in rows)
    cut = lengths[len(lengths) // 2]
    kept, dropped = filter_by_length(rows, tok, cut)
    assert dropped == sum(n > cut for n in lengths) > 0 and len(kept) + dropped == len(rows)
    assert all(row_tokens(r, tok) <= cut for r in kept)
    model, tok = tiny_chat_model(seed=0)
    with pytest.raises(ConfigError, match="longer than max_length"):
        train_fspo(FSPOTrainConfig(out=str(tmp_path / "x"), max_steps=1, max_length=lengths[0] - 1),
                   model=model, tokenizer=tok, rows=rows)


def test_cli_trains_from_a_saved_data_folder(tiny_folder: Path, tmp_path: Path) -> None:
    from persona_lab.cli.main import main

    data_dir = tmp_path / "data"
    assert main(["fspo", "data", "--out", str(data_dir), "--train-users", "12", "--heldout-users", "1",
                 "--interpolated-users", "1", "--train-pairs-per-user", "3", "--eval-pairs-per-user", "1",
                 "--answer-sentences", "1"]) == 0
    out = tmp_path / "adapter"
    rc = main(["train", "fspo", "--base", str(tiny_folder), "--data", str(data_dir), "--out", str(out),
               "--loss", "ipo", "--description", "--shots", "1", "--draws", "1", "--max-steps", "1",
               "--batch-size", "2", "--max-length", "4096", "--quiet"])
    assert rc == 0 and (out / "adapter_config.json").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["description"] is True and summary["beta"] == DEFAULT_BETA["ipo"]
