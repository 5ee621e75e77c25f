"""Config resolution: defaults < YAML < flags, with precise errors; help text on every field."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from persona_lab.core.errors import ConfigError
from persona_lab.train import METHODS, DPOTrainConfig, IPOTrainConfig, SFTTrainConfig, resolve_config
from persona_lab.train.common import lora_config


@pytest.mark.parametrize("cls", [SFTTrainConfig, DPOTrainConfig, IPOTrainConfig])
def test_every_field_has_help(cls: type) -> None:
    for f in dataclasses.fields(cls):
        assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help text"
    assert cls.__dataclass_params__.frozen


def test_defaults_then_yaml_then_flags(tmp_path: Path) -> None:
    yaml_file = tmp_path / "dpo.yaml"
    yaml_file.write_text("method: dpo\nbeta: 0.3\nlora_r: 16\nlearning_rate: 5e-5\nwarmup: 1\ntarget_modules: [q_proj, v_proj]\n")
    config = resolve_config(DPOTrainConfig, yaml_file, {"lora_r": 4, "seed": None, "bf16": "false"})
    assert config.beta == 0.3  # YAML over the default
    assert config.lora_r == 4  # the flag over YAML
    assert config.seed == 0  # an unset flag keeps the default
    assert config.learning_rate == 5e-5  # PyYAML reads 5e-5 as a string; it is converted
    assert config.warmup == 1.0 and isinstance(config.warmup, float)
    assert config.target_modules == "q_proj,v_proj"
    assert lora_config(config).target_modules == {"q_proj", "v_proj"}
    assert lora_config(DPOTrainConfig()).target_modules == "all-linear"
    assert config.to_dict()["method"] == "dpo"


def test_method_defaults_differ() -> None:
    assert SFTTrainConfig().learning_rate == 2e-4
    assert DPOTrainConfig().learning_rate == 5e-5
    assert IPOTrainConfig().trl_args()["loss_type"] == ["ipo"]
    assert DPOTrainConfig().trl_args()["loss_type"] == ["sigmoid"]
    assert set(METHODS) == {"sft", "dpo", "ipo", "kto", "ilql", "fspo"}


@pytest.mark.parametrize(
    ("yaml_text", "overrides", "message"),
    [
        ("lora_rank: 8\n", {}, "did you mean 'lora_r'"),
        ("method: sft\n", {}, "is for method 'sft', not 'dpo'"),
        ("- a\n- b\n", {}, "mapping"),
        ("beta: [1\n", {}, "not valid YAML"),
        ("", {"lora_r": "eight"}, "should be an integer"),
        ("", {"beta": -1.0}, "beta=-1.0: must be positive"),
        ("", {"lora_r": 0}, "lora_r=0: must be at least 1"),
        ("", {"bf16": "maybe"}, "choose one of auto, true, false"),
        ("", {"max_steps": 0}, "max_steps"),
        ("", {"lora_dropout": 1.5}, r"\[0, 1\)"),
    ],
)
def test_bad_settings_are_config_errors(yaml_text: str, overrides: dict, message: str, tmp_path: Path) -> None:
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message):
        resolve_config(DPOTrainConfig, yaml_file, overrides)


def test_missing_yaml_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_config(SFTTrainConfig, tmp_path / "none.yaml")
