"""Online RL of a LoRA adapter with TRL's ``GRPOTrainer`` and reward *functions* (no reward model).

RLHS's online arm was PPO on a learned reward model; TRL 1.16 has no PPO, and GRPO with the simulated
customer as the reward function is the closer modern recipe (see :mod:`persona_lab.train.rlhs_rewards`
for the rewards). Data: a prompt-only dataset (``prompt`` plus the columns the rewards read).

Everything else (LoRA on all linear layers, scheduler, logging, the run folder) is the shared
:mod:`persona_lab.train.common` layer, so a GRPO run leaves the same files as an SFT or DPO run.
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
    _is_peft,
    _make_callbacks,
    _quiet_trainer_output,
    check_out_dir,
    finish_run,
    load_base,
    lora_config,
    make_trl_args,
    resolve_bf16,
    resolve_device,
)

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset


@dataclass(frozen=True)
class GRPOTrainConfig(TrainConfig):
    """GRPO settings: the shared ones (:class:`TrainConfig`) plus these."""

    method: ClassVar[str] = "grpo"

    learning_rate: float = field(default=5e-5, metadata={"help": "peak AdamW learning rate"})
    num_generations: int = field(default=4, metadata={"help": "completions sampled per prompt (the GRPO group)"})
    max_completion_length: int = field(default=160, metadata={"help": "tokens per sampled seller turn"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature of the rollouts"})
    beta: float = field(default=0.0, metadata={"help": "KL penalty towards the reference (TRL's default 0: none)"})
    reward_weights: tuple[float, ...] = field(
        default=(), metadata={"help": "weight per reward function (empty: all 1); weight 0 logs without optimising"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_generations < 2:
            raise ConfigError(f"num_generations={self.num_generations}", hint="GRPO needs >= 2 completions per prompt")
        if self.temperature <= 0:
            raise ConfigError(f"temperature={self.temperature}", hint="GRPO samples: use a temperature > 0")

    def trl_args(self) -> dict[str, Any]:
        """Arguments of ``trl.GRPOConfig`` specific to this method."""
        args: dict[str, Any] = {
            "num_generations": self.num_generations,
            "max_completion_length": self.max_completion_length,
            "temperature": self.temperature,
            "beta": self.beta,
            "log_completions": False,
        }
        if self.reward_weights:
            args["reward_weights"] = list(self.reward_weights)
        return args


def make_grpo_trainer(
    config: GRPOTrainConfig,
    *,
    reward_funcs: Sequence[Any],
    dataset: Dataset,
    model: Any = None,
    tokenizer: Any = None,
    on_log: LogFn | None = None,
    progress: bool = False,
    callbacks: Sequence[Any] = (),
) -> PreparedRun:
    """Build the ``GRPOTrainer`` without training.

    Args:
        config: resolved settings.
        reward_funcs: TRL reward callables (e.g. :class:`~persona_lab.train.rlhs_rewards.CustomerReward`).
        dataset: prompt-only data with the columns the rewards read.
        model / tokenizer: an in-memory base model; default: loaded from ``config.base``.
    """
    from trl import GRPOConfig, GRPOTrainer

    if "prompt" not in dataset.column_names or len(dataset) == 0:
        raise ConfigError("GRPO needs a non-empty prompt dataset (a 'prompt' column)",
                          hint="build one with persona_lab.train.rlhs_rewards.grpo_prompt_dataset")
    if config.reward_weights and len(config.reward_weights) != len(reward_funcs):
        raise ConfigError(f"{len(config.reward_weights)} reward weights for {len(reward_funcs)} reward functions")
    device, bf16 = resolve_device(config), resolve_bf16(config)
    if config.max_samples:
        dataset = dataset.select(range(min(config.max_samples, len(dataset))))
    if model is None:
        model, tokenizer = load_base(config, bf16=bf16)
    elif tokenizer is None:
        raise ConfigError("an in-memory model needs its tokenizer too", hint="pass tokenizer=...")
    # GRPO bounds the completion (max_completion_length), not the sequence. One generation batch must
    # hold whole groups: batch_size * grad_accum completions per step.
    args = make_trl_args(GRPOConfig, config, bf16=bf16, device=device, progress=progress,
                         method_args=config.trl_args(), drop=("max_length",))
    history, saver = _make_callbacks(config, on_log)
    trainer = GRPOTrainer(
        model=model, reward_funcs=list(reward_funcs), args=args, train_dataset=dataset, processing_class=tokenizer,
        peft_config=None if _is_peft(model) else lora_config(config), callbacks=[history, saver, *callbacks],
    )
    _quiet_trainer_output(trainer, progress=progress)
    return PreparedRun(config=config, trainer=trainer, device=device, examples=len(dataset), history=history)


def train_grpo(
    config: GRPOTrainConfig,
    *,
    reward_funcs: Sequence[Any],
    dataset: Dataset,
    model: Any = None,
    tokenizer: Any = None,
    on_log: LogFn | None = None,
    progress: bool = False,
    overwrite: bool = False,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Train a LoRA adapter by GRPO and write the run folder (adapter, config, logs, loss curve)."""
    check_out_dir(config, overwrite=overwrite)
    run = make_grpo_trainer(config, reward_funcs=reward_funcs, dataset=dataset, model=model, tokenizer=tokenizer,
                            on_log=on_log, progress=progress, callbacks=callbacks)
    return finish_run(run)
