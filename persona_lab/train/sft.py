"""Supervised fine-tuning of a LoRA adapter with TRL's ``SFTTrainer``.

Data: ``{"prompt", "completion"}`` conversations (the loss covers the completion only), or
``{"messages"}`` / ``{"text"}`` (the loss covers the whole sequence). Built from runs by
:mod:`persona_lab.train.data`: the user's edited texts of an edit-world run, or the
preference-following answers of a PrefEval run.

Example::

    config = resolve_config(SFTTrainConfig, "sft.yaml", {"base": "smollm2-135m", "data": "runs/edit1"})
    result = train_sft(config)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

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
class SFTTrainConfig(TrainConfig):
    """SFT settings: the shared ones (:class:`TrainConfig`) plus these."""

    method: ClassVar[str] = "sft"

    learning_rate: float = field(default=2e-4, metadata={"help": "peak AdamW learning rate (LoRA SFT: ~1e-4 to 3e-4)"})
    completion_only_loss: bool = field(
        default=True,
        metadata={"help": "prompt/completion data: train on the completion tokens only (off: the whole sequence)"},
    )
    packing: bool = field(
        default=False,
        metadata={"help": "pack several examples into each max_length row (best-fit; needs a flash-attention "
                          "kernel on GPU to keep examples apart)"},
    )
    padding_free: bool = field(
        default=False,
        metadata={"help": "flatten each batch into one unpadded sequence (needs flash attention)"},
    )
    prefeval_recipe: str = field(
        default="followed",
        metadata={"help": "PrefEval run as --data: 'followed' (answers judged preference-following, method text "
                          "removed) or 'paper' (the paper's recipe: every reminder answer at 0 filler, 10 filler pairs "
                          "from the filler file's last conversations, evaluation topics held out)"},
    )

    def trl_args(self) -> dict[str, Any]:
        """Arguments of ``trl.SFTConfig`` specific to this method."""
        return {
            "completion_only_loss": self.completion_only_loss,
            "packing": self.packing,
            "padding_free": self.padding_free,
        }


def make_sft_trainer(
    config: SFTTrainConfig,
    *,
    dataset: Dataset | None = None,
    model: Any = None,
    tokenizer: Any = None,
    on_log: LogFn | None = None,
    progress: bool = False,
    callbacks: Sequence[Any] = (),
) -> PreparedRun:
    """Build the ``SFTTrainer`` for ``config`` without training (``.trainer`` is the TRL object)."""
    from trl import SFTConfig, SFTTrainer

    return prepare_run(
        config,
        trainer_cls=SFTTrainer,
        args_cls=SFTConfig,
        method_args=config.trl_args(),
        data_kind="sft",
        dataset=dataset,
        model=model,
        tokenizer=tokenizer,
        on_log=on_log,
        progress=progress,
        callbacks=callbacks,
    )


def train_sft(
    config: SFTTrainConfig,
    *,
    dataset: Dataset | None = None,
    model: Any = None,
    tokenizer: Any = None,
    on_log: LogFn | None = None,
    progress: bool = False,
    overwrite: bool = False,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Train a LoRA adapter by SFT and save it (with its config and logs) to ``config.out``.

    Args:
        config: resolved settings.
        dataset: SFT data in TRL's format; default: built from ``config.data``.
        model / tokenizer: an in-memory base model; default: loaded from ``config.base``.
        on_log: receives each log record (step, loss, learning rate, ...).
        progress: show a progress bar.
        overwrite: allow replacing an adapter already in ``config.out``.
        callbacks: extra ``transformers.TrainerCallback`` objects.
    """
    check_out_dir(config, overwrite=overwrite)
    run = make_sft_trainer(
        config, dataset=dataset, model=model, tokenizer=tokenizer, on_log=on_log, progress=progress, callbacks=callbacks
    )
    return finish_run(run)
