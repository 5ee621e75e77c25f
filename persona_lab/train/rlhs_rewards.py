"""Reward functions for TRL's ``GRPOTrainer`` on the marketplace: the simulated customer as the reward.

Each is a plain callable with TRL's reward-function signature ``(prompts, completions, **columns) ->
list[float]``. It reads the scenario from the dataset columns ``scenario_index`` (and optionally
``scenario_seed``, ``opening``), lets the customer decide on the sampled seller turn, and returns the
feedback of one mode: ``immediate``, ``partial_hindsight`` or ``full_hindsight`` (normalized ratings
in [0, 1]) or ``utility`` (the true utility in [-1, 1], for an oracle arm).

Use in your own TRL script::

    from trl import GRPOConfig, GRPOTrainer
    from persona_lab.train.rlhs_rewards import CustomerReward, grpo_prompt_dataset

    dataset = grpo_prompt_dataset(train_indices, seed=0)      # prompt + scenario_index + opening
    trainer = GRPOTrainer(
        model=model, train_dataset=dataset, processing_class=tokenizer, peft_config=lora,
        reward_funcs=[CustomerReward("partial_hindsight"), CustomerReward("utility")],
        args=GRPOConfig(..., reward_weights=[1.0, 0.0]),      # optimise hindsight, log utility
    )

A reward with weight 0 is computed and logged (``rewards/<name>/mean``) but not optimised, which is
how the gap between the rating being optimised and the true utility stays visible while training.
The reward is deterministic for the scripted customer; an LLM customer (``CustomerReward(mode,
customer=LLMCustomer(model))``) costs up to three calls per sampled turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from persona_lab.core.errors import ConfigError
from persona_lab.core.seeding import make_rng
from persona_lab.simulators.marketplace import FEEDBACK_KINDS, Customer, ScriptedCustomer, get_scenario


def completion_text(completion: Any) -> str:
    """The assistant text of a TRL completion (a string, or a conversational list of messages)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    return str(completion)


class CustomerReward:
    """The customer's feedback of ``mode`` on each sampled seller turn.

    Args:
        mode: ``immediate``, ``partial_hindsight``, ``full_hindsight`` or ``utility``.
        customer: the simulated customer (default: the scripted one).
        seed: seeds the customer's replies (matters only for LLM customers).
    """

    def __init__(self, mode: str, *, customer: Customer | None = None, seed: int = 0) -> None:
        if mode not in FEEDBACK_KINDS:
            raise ConfigError(f"unknown feedback mode {mode!r}", hint=f"use one of {list(FEEDBACK_KINDS)}")
        self.mode = mode
        self.customer = customer if customer is not None else ScriptedCustomer()
        self.seed = seed
        # TRL names a reward by ``__name__`` in its logs (rewards/<name>/mean).
        self.__name__ = "true_utility" if mode == "utility" else f"{mode}_rating"

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], *, scenario_index: Sequence[int],
                 scenario_seed: Sequence[int] | None = None, opening: Sequence[str] | None = None,
                 **_: Any) -> list[float]:
        out = []
        for i, completion in enumerate(completions):
            sc = get_scenario(int(scenario_index[i]), int(scenario_seed[i]) if scenario_seed is not None else 0)
            text = completion_text(completion)
            opening_i = opening[i] if opening is not None else ""
            rng = make_rng("rlhs-reward", self.seed, sc.seed, sc.index, text)
            out.append(float(self.customer.react(sc, opening_i, text, rng).value(self.mode, sc)))
        return out


def grpo_prompt_dataset(scenario_indices: Sequence[int], *, seed: int = 0, scenario_seed: int = 0) -> Any:
    """A prompt-only ``datasets.Dataset`` for GRPO: the seller prompt plus the columns the rewards read."""
    from datasets import Dataset

    from persona_lab.train.rlhs import scenario_opening, seller_observation, seller_prompt

    rows = []
    for i in scenario_indices:
        sc = get_scenario(int(i), scenario_seed)
        opening = scenario_opening(sc, seed)
        rows.append({"prompt": seller_prompt(seller_observation(sc, opening)), "scenario_index": sc.index,
                     "scenario_seed": sc.seed, "opening": opening, "scenario_id": sc.id})
    return Dataset.from_list(rows)
