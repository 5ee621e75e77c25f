"""SFT, DPO and IPO on a tiny random model: a few steps each; the loss is logged, every LoRA
parameter moves and no base parameter does; the adapter saves, reloads and changes greedy output."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import TrainerCallback

from persona_lab.train import METHODS

PROMPT = [{"role": "user", "content": "Write note 3."}]


class Snapshot(TrainerCallback):
    """Copies of the LoRA and base parameters as training starts (after peft wrapped the model)."""

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        params = dict(model.named_parameters())
        self.lora = {n: p.detach().clone() for n, p in params.items() if "lora_" in n}
        self.base = {n: p.detach().clone() for n, p in params.items() if "lora_" not in n}


def greedy(model: Any, tok: Any, messages: list[dict[str, str]], n: int = 16) -> list[int]:
    text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    enc = tok(text, return_tensors="pt", add_special_tokens=False)
    model.eval()
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id)
    return out[0, enc["input_ids"].shape[1]:].tolist()


@pytest.mark.parametrize("method", ["sft", "dpo", "ipo"])
def test_method_trains_only_lora_and_adapter_reloads(
    method: str, tiny: tuple[Any, Any], pref_dataset: Any, sft_dataset: Any, tmp_path: Path
) -> None:
    from peft import PeftModel

    from persona_lab.testing.tiny import tiny_chat_model

    model, tok = tiny
    config_cls, train = METHODS[method]
    # Also exercise bf16 autocast (SFT) and activation checkpointing (IPO) on the way.
    config = config_cls(out=str(tmp_path / "out"), max_steps=3, batch_size=2, learning_rate=2e-2, seed=1,
                        bf16="true" if method == "sft" else "false", gradient_checkpointing=method == "ipo")
    snap, logs = Snapshot(), []
    data = sft_dataset if method == "sft" else pref_dataset
    result = train(config, dataset=data, model=model, tokenizer=tok, on_log=logs.append, callbacks=[snap])

    # the loss is logged at every step, and is a number
    assert result.steps == 3
    assert [s for s, _ in result.losses] == [1, 2, 3]
    assert all(math.isfinite(v) for _, v in result.losses)
    assert [r["step"] for r in logs if "loss" in r] == [1, 2, 3]
    if method == "ipo":  # the adapter starts at zero: h = 0, loss = (0 - 1/(2β))² exactly
        assert result.losses[0][1] == pytest.approx((1 / (2 * config.beta)) ** 2)
    if method == "dpo":
        assert result.losses[0][1] == pytest.approx(math.log(2), rel=1e-5)

    # every LoRA parameter changed, no base parameter did
    trained = dict(result.model.named_parameters())
    assert len(snap.lora) == 2 * 7 * 2  # A and B, 7 linear layers per block, 2 blocks ("all-linear")
    unchanged = [n for n, before in snap.lora.items() if torch.equal(before, trained[n])]
    assert unchanged == []
    changed = [n for n, before in snap.base.items() if not torch.equal(before, trained[n])]
    assert changed == []
    assert all(not p.requires_grad for n, p in trained.items() if "lora_" not in n)

    # the run folder
    out = Path(config.out)
    for name in ("adapter_config.json", "adapter_model.safetensors", "train_config.json", "summary.json",
                 "log_history.jsonl", "loss_curve.png"):
        assert (out / name).is_file(), name
    record = json.loads((out / "train_config.json").read_text())
    assert record["config"]["method"] == method and record["config"]["learning_rate"] == 2e-2
    assert record["versions"]["trl"]
    if method != "sft":
        assert record["trl_args"]["loss_type"] == [{"dpo": "sigmoid", "ipo": "ipo"}[method]]
    assert record["trl_args"]["bf16"] is (method == "sft")
    assert record["trl_args"]["activation_checkpointing"] is (method == "ipo")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["train_tokens"] > 0 and summary["tokens_per_s"] > 0

    # the adapter changes greedy output; reloaded on a fresh base it gives the same output
    peft_model = result.model
    with peft_model.disable_adapter():
        base_out = greedy(peft_model, tok, PROMPT)
    tuned_out = greedy(peft_model, tok, PROMPT)
    assert tuned_out != base_out
    fresh, _ = tiny_chat_model(seed=0)
    assert greedy(fresh, tok, PROMPT) == base_out
    reloaded = PeftModel.from_pretrained(fresh, str(out))
    assert greedy(reloaded, tok, PROMPT) == tuned_out


def test_hf_backend_loads_trained_adapter(tiny_folder: Path, make_edit_run: Any, tmp_path: Path) -> None:
    """Train from a model folder on an edit-world run, then evaluate through `hf:<base>+<adapter>`."""
    from persona_lab.models import ChatRequest, GenerationParams, open_chat_model
    from persona_lab.train import DPOTrainConfig, train_dpo

    run = make_edit_run(n_edited=6, n_accepted=2)
    config = DPOTrainConfig(base=str(tiny_folder), data=str(run), out=str(tmp_path / "dpo"), max_steps=3,
                            batch_size=2, learning_rate=2e-2)
    result = train_dpo(config)
    assert result.examples == 6 and result.steps == 3

    prompt = [{"role": "user", "content": "Write an email about item 1."}]
    texts = {}
    for name, spec in (("base", f"hf:{tiny_folder}"), ("tuned", f"hf:{tiny_folder}+{config.out}")):
        model = open_chat_model(spec, cache=False)
        (completion,) = model.generate([ChatRequest.of(prompt, GenerationParams(max_new_tokens=16))])
        texts[name] = completion.text
    assert texts["tuned"] != texts["base"]

    # continuing from the adapter: `<base>+<adapter>` trains that adapter further (reference = its start)
    more = DPOTrainConfig(base=f"hf:{tiny_folder}+{config.out}", data=str(run), out=str(tmp_path / "dpo2"),
                          max_steps=1, batch_size=2, learning_rate=2e-2)
    again = train_dpo(more)
    assert again.steps == 1 and again.losses[0][1] == pytest.approx(math.log(2), rel=1e-5)
    from safetensors.torch import load_file

    first = load_file(str(Path(config.out) / "adapter_model.safetensors"))
    second = load_file(str(Path(more.out) / "adapter_model.safetensors"))
    assert first.keys() == second.keys()
    assert any(not torch.equal(first[k], second[k]) for k in first)


def test_same_seed_same_adapter_and_checkpoints_carry_config(sft_dataset: Any, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from persona_lab.testing.tiny import tiny_chat_model
    from persona_lab.train import SFTTrainConfig, train_sft

    weights = []
    for name, seed, save_steps in (("a", 3, 1), ("b", 3, 0), ("c", 4, 0)):
        model, tok = tiny_chat_model(seed=0)
        config = SFTTrainConfig(out=str(tmp_path / name), max_steps=2, batch_size=2, seed=seed, save_steps=save_steps)
        train_sft(config, dataset=sft_dataset, model=model, tokenizer=tok)
        weights.append(load_file(str(Path(config.out) / "adapter_model.safetensors")))
    a, b, c = weights
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    for step in (1, 2):
        record = json.loads((tmp_path / "a" / f"checkpoint-{step}" / "train_config.json").read_text())
        assert record["config"]["seed"] == 3 and record["config"]["method"] == "sft"


def test_refuses_to_overwrite_an_adapter(tiny: tuple[Any, Any], sft_dataset: Any, tmp_path: Path) -> None:
    from persona_lab.core.errors import ConfigError
    from persona_lab.train import SFTTrainConfig, train_sft

    (tmp_path / "adapter_config.json").write_text("{}")
    model, tok = tiny
    with pytest.raises(ConfigError, match="already holds an adapter"):
        train_sft(SFTTrainConfig(out=str(tmp_path), max_steps=1), dataset=sft_dataset, model=model, tokenizer=tok)
