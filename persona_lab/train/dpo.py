"""Direct preference optimization of a LoRA adapter with TRL's ``DPOTrainer``.

Data: ``{"prompt", "chosen", "rejected"}`` (conversational or plain strings). From an edit-world run,
:func:`persona_lab.train.data.preference_pairs_from_edit_run` makes the user's edit the chosen answer
and the agent's draft the rejected one.

With LoRA there is no separate reference model: TRL computes the reference log-probabilities with the
adapter disabled (the base model), or, when training continues from an adapter (``--base
<base>+<adapter>``), with a frozen copy of the starting adapter.

Loss (TRL's ``sigmoid``): ``-log σ(β · h)``, with ``h`` the chosen-minus-rejected difference of the
completions' *summed* token log-ratios ``log π(y|x) - log π_ref(y|x)``.
"""

from __future__ import annotations

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
    from collections.abc import Sequence

    from datasets import Dataset


@dataclass(frozen=True)
class DPOTrainConfig(TrainConfig):
    """DPO settings: the shared ones (:class:`TrainConfig`) plus these."""

    method: ClassVar[str] = "dpo"
    loss_type: ClassVar[str] = "sigmoid"

    learning_rate: float = field(default=5e-5, metadata={"help": "peak AdamW learning rate (RLHS used 5e-5 with LoRA)"})
    beta: float = field(
        default=0.1,
        metadata={"help": "strength of the pull towards the reference model (higher: stay closer to it)"},
    )
    precompute_ref_log_probs: bool = field(
        default=False,
        metadata={"help": "compute the reference log-probs once before training (saves a forward pass per step)"},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beta <= 0:
            raise ConfigError(f"beta={self.beta!r}: must be positive", hint="typical values: 0.01 to 0.5")

    def trl_args(self) -> dict[str, Any]:
        """Arguments of ``trl.DPOConfig`` specific to this method."""
        return {
            "beta": self.beta,
            "loss_type": [self.loss_type],
            "precompute_ref_log_probs": self.precompute_ref_log_probs,
        }


def make_dpo_trainer(
    config: DPOTrainConfig,
    *,
    dataset: Dataset | None = None,
    model: Any = None,
    tokenizer: Any = None,
    on_log: LogFn | None = None,
    progress: bool = False,
    callbacks: Sequence[Any] = (),
) -> PreparedRun:
    """Build the ``DPOTrainer`` for ``config`` (DPO or IPO) without training."""
    from trl import DPOConfig, DPOTrainer

    return prepare_run(
        config,
        trainer_cls=DPOTrainer,
        args_cls=DPOConfig,
        method_args=config.trl_args(),
        data_kind="preference",
        dataset=dataset,
        model=model,
        tokenizer=tokenizer,
        on_log=on_log,
        progress=progress,
        callbacks=callbacks,
    )


def train_dpo(
    config: DPOTrainConfig,
    *,
    dataset: Dataset | None = None,
    model: Any = None,
    tokenizer: Any = None,
    on_log: LogFn | None = None,
    progress: bool = False,
    overwrite: bool = False,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Train a LoRA adapter by DPO (or IPO, for an :class:`~persona_lab.train.ipo.IPOTrainConfig`).

    Args: as :func:`persona_lab.train.sft.train_sft`; ``dataset`` holds preference pairs.
    """
    check_out_dir(config, overwrite=overwrite)
    run = make_dpo_trainer(
        config, dataset=dataset, model=model, tokenizer=tokenizer, on_log=on_log, progress=progress, callbacks=callbacks
    )
    return finish_run(run)
