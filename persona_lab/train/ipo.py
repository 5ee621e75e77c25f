"""Identity preference optimization (IPO) of a LoRA adapter, through TRL's ``DPOTrainer`` with
``loss_type="ipo"`` (TRL 1.16 implements it; no trainer of our own).

Loss, per pair: ``(h - 1/(2β))²``, averaged over the batch, where ``h`` is the chosen-minus-rejected
difference of log-ratios against the reference. **TRL length-normalizes** these log-ratios: each
completion's summed token log-ratio is divided by its number of completion tokens, i.e.

    h = Σ_t log(π/π_ref)(chosen_t) / |chosen| - Σ_t log(π/π_ref)(rejected_t) / |rejected|

(TRL's comment: confirmed with the IPO authors; the paper's results use this form). The FSPO paper
writes ``h`` with *summed* log-ratios; the two differ by the lengths, so a β tuned for one is not the
β for the other (with per-token averages, ``h`` is of order 0.01-1, hence β around 0.1 here, where the
summed form used β = 0.01). ``tests/train/test_ipo_loss.py`` checks the loss against a hand
computation of the normalized form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from persona_lab.train.common import LogFn, PreparedRun, TrainResult
from persona_lab.train.dpo import DPOTrainConfig, make_dpo_trainer, train_dpo

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Sequence

    from datasets import Dataset


@dataclass(frozen=True)
class IPOTrainConfig(DPOTrainConfig):
    """IPO settings: the DPO ones, with the IPO loss and its own β default."""

    method: ClassVar[str] = "ipo"
    loss_type: ClassVar[str] = "ipo"

    beta: float = field(
        default=0.1,
        metadata={"help": "IPO regularization τ: the loss pulls the per-token log-ratio margin towards 1/(2β)"},
    )


def make_ipo_trainer(
    config: IPOTrainConfig,
    *,
    dataset: Dataset | None = None,
    model: Any = None,
    tokenizer: Any = None,
    on_log: LogFn | None = None,
    progress: bool = False,
    callbacks: Sequence[Any] = (),
) -> PreparedRun:
    """Build the ``DPOTrainer`` (``loss_type="ipo"``) for ``config`` without training."""
    _check(config)
    return make_dpo_trainer(
        config, dataset=dataset, model=model, tokenizer=tokenizer, on_log=on_log, progress=progress, callbacks=callbacks
    )


def _check(config: IPOTrainConfig) -> None:
    if not isinstance(config, IPOTrainConfig):
        raise TypeError(f"IPO needs an IPOTrainConfig, got {type(config).__name__}")


def train_ipo(
    config: IPOTrainConfig,
    *,
    dataset: Dataset | None = None,
    model: Any = None,
    tokenizer: Any = None,
    on_log: LogFn | None = None,
    progress: bool = False,
    overwrite: bool = False,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Train a LoRA adapter with the IPO loss. Args: as :func:`persona_lab.train.dpo.train_dpo`."""
    _check(config)
    return train_dpo(
        config,
        dataset=dataset,
        model=model,
        tokenizer=tokenizer,
        on_log=on_log,
        progress=progress,
        overwrite=overwrite,
        callbacks=callbacks,
    )
