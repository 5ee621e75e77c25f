"""Kahneman-Tversky optimization (KTO) of a LoRA adapter with TRL's ``KTOTrainer``.

Data: unpaired ``{"prompt", "completion", "label"}`` rows, ``label`` true for a desirable completion
(:func:`persona_lab.train.dialogues.kto_examples`: the persuader turns of dialogues that earned a
donation are desirable, those of dialogues that did not are undesirable). As with DPO, the reference
is the base model with the adapter disabled. TRL estimates the KL reference point from mismatched
pairs inside each batch, so ``batch_size`` must be at least 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from persona_lab.core.errors import ConfigError
from persona_lab.train.common import (
    LogFn,
    PreparedRun,
    TrainConfig,
    TrainResult,
    check_out_dir,
    finish_run,
    prepare_run,
)

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset


@dataclass(frozen=True)
class KTOTrainConfig(TrainConfig):
    """KTO settings: the shared ones (:class:`TrainConfig`) plus these."""

    method: ClassVar[str] = "kto"

    learning_rate: float = field(default=5e-5, metadata={"help": "peak AdamW learning rate"})
    beta: float = field(default=0.1, metadata={"help": "strength of the pull towards the reference model"})
    desirable_weight: float = field(default=1.0, metadata={"help": "loss weight of desirable examples"})
    undesirable_weight: float = field(default=1.0, metadata={"help": "loss weight of undesirable examples"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beta <= 0:
            raise ConfigError(f"beta={self.beta!r}: must be positive", hint="typical values: 0.01 to 0.5")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size={self.batch_size}: KTO needs at least 2 (its KL estimate pairs examples "
                              "within a batch)", hint="pass --batch-size 2 or more")

    def trl_args(self) -> dict[str, Any]:
        return {"beta": self.beta, "desirable_weight": self.desirable_weight,
                "undesirable_weight": self.undesirable_weight}


def train_kto(config: KTOTrainConfig, *, dataset: Dataset | None = None, model: Any = None, tokenizer: Any = None,
              on_log: LogFn | None = None, progress: bool = False, overwrite: bool = False,
              callbacks: Sequence[Any] = ()) -> TrainResult:
    """Train a LoRA adapter by KTO (args as :func:`persona_lab.train.sft.train_sft`)."""
    from trl import KTOConfig, KTOTrainer

    check_out_dir(config, overwrite=overwrite)
    run: PreparedRun = prepare_run(config, trainer_cls=KTOTrainer, args_cls=KTOConfig, method_args=config.trl_args(),
                                   data_kind="unpaired", dataset=dataset, model=model, tokenizer=tokenizer,
                                   on_log=on_log, progress=progress, callbacks=callbacks)
    return finish_run(run)
