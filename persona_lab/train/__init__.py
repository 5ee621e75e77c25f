"""LoRA training (SFT, DPO, IPO, KTO through TRL + peft; ILQL, our own loop) on data built from persona-lab runs.

Importing this package is cheap: torch, transformers, peft and trl load when training starts.
"""

from persona_lab.train.common import PreparedRun, TrainConfig, TrainResult, finish_run, resolve_config
from persona_lab.train.data import (
    load_jsonl_dataset,
    load_training_data,
    preference_pairs_from_edit_run,
    save_dataset,
    sft_from_edit_run,
    sft_from_prefeval_run,
)
from persona_lab.train.dpo import DPOTrainConfig, make_dpo_trainer, train_dpo
from persona_lab.train.fspo import FSPOTrainConfig, train_fspo
from persona_lab.train.ilql import ILQLConfig, train_ilql
from persona_lab.train.ipo import IPOTrainConfig, make_ipo_trainer, train_ipo
from persona_lab.train.kto import KTOTrainConfig, train_kto
from persona_lab.train.sft import SFTTrainConfig, make_sft_trainer, train_sft

METHODS = {
    "sft": (SFTTrainConfig, train_sft),
    "dpo": (DPOTrainConfig, train_dpo),
    "ipo": (IPOTrainConfig, train_ipo),
    "kto": (KTOTrainConfig, train_kto),
    "ilql": (ILQLConfig, train_ilql),
    "fspo": (FSPOTrainConfig, train_fspo),
}

__all__ = [
    "METHODS",
    "PreparedRun",
    "DPOTrainConfig",
    "ILQLConfig",
    "FSPOTrainConfig",
    "IPOTrainConfig",
    "KTOTrainConfig",
    "SFTTrainConfig",
    "TrainConfig",
    "TrainResult",
    "finish_run",
    "load_jsonl_dataset",
    "load_training_data",
    "make_dpo_trainer",
    "make_ipo_trainer",
    "make_sft_trainer",
    "preference_pairs_from_edit_run",
    "resolve_config",
    "save_dataset",
    "sft_from_edit_run",
    "sft_from_prefeval_run",
    "train_dpo",
    "train_ilql",
    "train_fspo",
    "train_ipo",
    "train_kto",
    "train_sft",
]
