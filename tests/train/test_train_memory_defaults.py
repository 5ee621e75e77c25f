"""The settings that keep LoRA training's memory near a plain TRL script's: activation checkpointing
on by default, bf16 where the device computes it natively; and the side-by-side benchmark's pieces."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pytest

from persona_lab.train import common
from persona_lab.train.dpo import DPOTrainConfig
from persona_lab.train.sft import SFTTrainConfig

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_lora_vs_trl.py"


@pytest.mark.parametrize("cls", [DPOTrainConfig, SFTTrainConfig])
def test_activation_checkpointing_is_on_by_default_and_reaches_trl(cls: type, tmp_path: Path) -> None:
    config = cls(base="x", data="y", out=str(tmp_path))
    assert config.gradient_checkpointing is True
    args = common.trl_common_args(config, bf16=False, device="cpu", progress=False)
    assert args["activation_checkpointing"] is True
    off = cls(base="x", data="y", out=str(tmp_path), gradient_checkpointing=False)
    assert common.trl_common_args(off, bf16=False, device="cpu", progress=False)["activation_checkpointing"] is False


@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "choice", "expected"),
    [
        (True, False, "auto", True),
        (False, True, "auto", True),
        (False, False, "auto", False),
        (True, True, "false", False),
        (False, False, "true", True),
    ],
)
def test_bf16_auto_on_cpu_follows_native_bf16(
    monkeypatch: pytest.MonkeyPatch, avx512_bf16: bool, amx: bool, choice: str, expected: bool
) -> None:
    import torch

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    config = DPOTrainConfig(base="x", data="y", device="cpu", bf16=choice)
    assert common.resolve_bf16(config) is expected


def test_bf16_auto_stays_off_when_the_probe_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    def broken() -> bool:
        raise RuntimeError("no cpuinfo")

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", broken, raising=False)
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    assert common.cpu_has_native_bf16() is False


def test_bench_data_and_plain_trl_script_on_a_tiny_model(tiny_folder: Path, tmp_path: Path) -> None:
    bench = runpy.run_path(str(BENCH), run_name="bench_lora_vs_trl")
    data = bench["write_data"](tmp_path / "data", n=4, doc_chars=60)
    rows = [json.loads(line) for line in data["dpo"].read_text().splitlines()]
    assert len(rows) == 4 and len({r["prompt"][0]["content"] for r in rows}) == 4
    assert all(r["chosen"] != r["rejected"] for r in rows)
    record: dict[str, Any] = bench["trl_script"]("sft", str(tiny_folder), str(data["sft"]), str(tmp_path / "out"),
                                                  steps=1, batch=2, max_length=512)
    assert record["steps"] == 1 and record["train_tokens"] > 0 and record["tokens_per_s"] > 0
    assert "activation ckpt True" in record["settings"]  # TRL's own default, which persona-lab now matches
