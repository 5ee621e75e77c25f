"""FSPO: few-shot preference optimization of a LoRA adapter (TRL's ``DPOTrainer``, no loop of our own).

Each training row is an episode of one training user (:func:`persona_lab.simulators.fspo.training_rows`):
N of their preference pairs as shots, a new question, and that user's preferred / dispreferred answer
as chosen / rejected. The objective is DPO or IPO on those rows:

- ``loss="dpo"``: TRL's ``sigmoid`` loss on *summed* completion log-ratios, which is FSPO-DPO exactly.
- ``loss="ipo"``: TRL's IPO divides each completion's summed log-ratio by its token count, so ``h`` is a
  per-token margin while the paper's (summed, β = 0.01) targets a summed margin of 1/(2·0.01) = 50 nats.
  For a completion of T tokens the two agree when β_TRL = 0.01·T; FSPO completions here are about
  40-80 tokens, so the default is **β = 0.5**: a target of 1 nat per token, i.e. ~50 nats summed over
  ~50 tokens, the paper's target. (TRL's usual 0.1 would ask for 5 nats per token, ~300 summed.)

``description=True`` trains the user-description variant (the chosen completion first states the
user's true description; the rejected one the description of the user who would prefer the
dispreferred answer). ``format="chat"`` (default) puts the episode in one user message so a chat
backend (``hf:<base>+<adapter>``) evaluates the very prompt it was trained on; ``format="text"`` is the
paper's raw text without a chat template.

Rows longer than ``max_length`` tokens (prompt + the longer completion) are **dropped before
training**, counted and reported, never truncated: TRL truncates from the right, which would cut the
completion the loss is about.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from persona_lab.core.errors import ConfigError
from persona_lab.train.common import LogFn, TrainResult, check_out_dir, load_base, resolve_bf16
from persona_lab.train.dpo import DPOTrainConfig, train_dpo

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Sequence

log = logging.getLogger(__name__)

LOSSES = ("dpo", "ipo")
FORMATS = ("chat", "text")
#: β per loss when none is given (see the module docstring for IPO's).
DEFAULT_BETA = {"dpo": 0.1, "ipo": 0.5}


@dataclass(frozen=True)
class FSPOTrainConfig(DPOTrainConfig):
    """FSPO settings: the DPO ones plus the episode construction. ``data`` is a folder written by
    ``persona-lab fspo data`` (empty: the default data set, built in memory)."""

    method: ClassVar[str] = "fspo"

    loss: str = field(default="dpo", metadata={"help": "dpo (TRL sigmoid, summed log-ratios) or ipo (TRL ipo, "
                                                       "per-token averaged)", "choices": LOSSES})
    beta: float = field(default=0.0, metadata={"help": "β; 0 picks the loss's default (dpo 0.1, ipo 0.5: "
                                                       "the paper's summed β = 0.01 times ~50 completion tokens)"})
    learning_rate: float = field(default=5e-5, metadata={"help": "peak AdamW learning rate (FSPO with LoRA: 5e-6 to 5e-5)"})
    shots: int = field(default=4, metadata={"help": "preference pairs shown per episode (the paper: 4 or 8)"})
    draws: int = field(default=0, metadata={"help": "episodes per training user; 0: the paper's 2·(shots+1)"})
    description: bool = field(default=False, metadata={"help": "the user-description variant (describe, then answer)"})
    format: str = field(default="chat", metadata={"help": "chat (one user message, chat template) or text (raw)",
                                                  "choices": FORMATS})
    episode_seed: int = field(default=0, metadata={"help": "seed of the episode re-draws"})
    max_length: int = field(default=1024, metadata={
        "help": "tokens per sequence (prompt + completion); longer episodes are dropped before training, not truncated"})

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ConfigError(f"loss={self.loss!r}: choose one of {', '.join(LOSSES)}")
        if self.format not in FORMATS:
            raise ConfigError(f"format={self.format!r}: choose one of {', '.join(FORMATS)}")
        if self.beta == 0.0:
            object.__setattr__(self, "beta", DEFAULT_BETA[self.loss])
        if self.shots < 0 or self.draws < 0:
            raise ConfigError("shots and draws must not be negative", hint="e.g. --shots 4 --draws 0")
        super().__post_init__()

    def trl_args(self) -> dict[str, Any]:
        return {**super().trl_args(), "loss_type": ["sigmoid" if self.loss == "dpo" else "ipo"]}


def fspo_rows(config: FSPOTrainConfig) -> list[dict[str, Any]]:
    """The training episodes of ``config`` (train users, train questions only), shuffled with the
    episode seed so that ``max_samples`` keeps episodes of every user, not the first users' only."""
    from persona_lab.core.seeding import make_rng
    from persona_lab.simulators.fspo import FSPOData, default_data, training_rows

    data = FSPOData.load(config.data) if config.data else default_data()
    rows = training_rows(data, n_shots=config.shots, draws=config.draws or None, description=config.description,
                         conversational=config.format == "chat", seed=config.episode_seed)
    order = make_rng("fspo-train-order", config.episode_seed).permutation(len(rows))
    return [rows[int(i)] for i in order]


def row_tokens(row: dict[str, Any], tokenizer: Any) -> int:
    """Tokens of the prompt plus the longer completion, as the trainer will see them."""
    lengths = []
    for key in ("chosen", "rejected"):
        if isinstance(row["prompt"], list):
            ids = tokenizer.apply_chat_template(row["prompt"] + row[key], tokenize=True)
            ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
            lengths.append(len(ids))
        else:
            lengths.append(len(tokenizer(row["prompt"] + row[key], add_special_tokens=False)["input_ids"]) + 1)
    return max(lengths)


def filter_by_length(rows: Sequence[dict[str, Any]], tokenizer: Any, max_length: int) -> tuple[list[dict[str, Any]], int]:
    """Rows that fit in ``max_length`` tokens, and how many were dropped."""
    kept = [r for r in rows if row_tokens(r, tokenizer) <= max_length]
    return kept, len(rows) - len(kept)


def train_fspo(
    config: FSPOTrainConfig,
    *,
    model: Any = None,
    tokenizer: Any = None,
    rows: Sequence[dict[str, Any]] | None = None,
    on_log: LogFn | None = None,
    progress: bool = False,
    overwrite: bool = False,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Build the FSPO episodes, drop over-long ones, and train the adapter by DPO or IPO.

    Args: as :func:`persona_lab.train.dpo.train_dpo`; ``rows`` replaces the episodes built from
    ``config.data`` (tests). The number of dropped episodes is logged and written to ``summary.json``.
    """
    from datasets import Dataset

    from persona_lab.core.io import atomic_write_json
    from persona_lab.train.common import SUMMARY_FILE

    check_out_dir(config, overwrite=overwrite)
    if model is None:
        model, tokenizer = load_base(config, bf16=resolve_bf16(config))
    elif tokenizer is None:
        raise ConfigError("an in-memory model needs its tokenizer too", hint="pass tokenizer=...")
    all_rows = list(rows) if rows is not None else fspo_rows(config)
    kept, dropped = filter_by_length(all_rows, tokenizer, config.max_length)
    if dropped:
        log.warning("fspo: dropped %d of %d episodes longer than max_length=%d tokens", dropped, len(all_rows),
                    config.max_length)
    if not kept:
        raise ConfigError(f"all {len(all_rows)} FSPO episodes are longer than max_length={config.max_length} tokens",
                          hint="raise --max-length, use fewer --shots, or build data with --answer-sentences 2")
    dataset = Dataset.from_list(kept)
    result = train_dpo(config, dataset=dataset, model=model, tokenizer=tokenizer, on_log=on_log, progress=progress,
                       overwrite=overwrite, callbacks=callbacks)
    if result.main_process:
        summary = {**result.summary(), "examples_trained_on": result.examples, "episodes": len(all_rows),
                   "dropped_over_length": dropped,
                   "loss": config.loss, "beta": config.beta, "shots": config.shots, "description": config.description}
        atomic_write_json(result.out_dir / SUMMARY_FILE, summary)
    return result

