"""RLHS on ``persona_lab/Marketplace-v0``: preference pairs labelled with immediate or hindsight feedback.

RLHS (arXiv 2501.08617) trains a seller on pairwise customer feedback and shows that feedback given
right after the talk (*immediate*) rewards deception, while feedback given after the customer sees
what the purchase did (*partial* / *full hindsight*) does not. This module builds the data for that
experiment from any seller policy:

1. :func:`split_scenarios` — a seeded train/test split of the 2,720 scenarios that never overlaps.
   The test set is whole held-out *categories*, so an evaluation run can be restricted to it with
   the env's ``categories`` argument (the runner has no other way to pin scenarios).
2. A policy samples two seller turns per train scenario (or :func:`pairs_from_records` pairs the turns
   of recorded runs): :class:`ModelPolicy` (any ChatModel,
   sampled with the recorded ``temperature`` / ``seed``) or :class:`ScriptedPolicy` (two different
   scripted sellers, e.g. an honest and a deceptive one, so that the pair differs).
3. :func:`build_pairs` asks the customer to compare the two turns under every feedback mode (the
   scripted customer by default), drops ties, and :func:`write_pair_datasets` writes one TRL
   preference JSONL per mode: conversational ``prompt`` (the seller's system prompt with the hidden
   table, then the customer's opening: exactly what the seller agent sees at evaluation), ``chosen``,
   ``rejected``, plus ``scenario_id``, ``mode`` and provenance columns.
4. :func:`misalignment` — before any training, how often immediate and hindsight labels disagree
   and the mean true utility of the turns each mode prefers.

Training uses the existing LoRA layer (:func:`rlhs_dpo_config` gives the paper's DPO settings) or
GRPO with the reward functions of :mod:`persona_lab.train.rlhs_rewards`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from persona_lab.core.errors import ConfigError
from persona_lab.core.io import atomic_write_json, atomic_write_text
from persona_lab.core.records import TransitionRecord
from persona_lab.core.seeding import derive_seed, make_rng
from persona_lab.models.base import ChatModel, ChatRequest, GenerationParams
from persona_lab.simulators.marketplace import (
    CASE_VECTORS,
    CATEGORIES,
    N_SCENARIOS,
    RATING_KINDS,
    Customer,
    Scenario,
    compare_turns,
    feature_table,
    get_scenario,
    n_opening_variants,
    opening_message,
    true_utility,
)

ENV_ID = "persona_lab/Marketplace-v0"
MODES: tuple[str, ...] = RATING_KINDS  # immediate, partial_hindsight, full_hindsight
HINDSIGHT_MODES: tuple[str, ...] = MODES[1:]
SPLIT_FILE = "split.json"
COMPARISONS_FILE = "comparisons.jsonl"
MISALIGNMENT_FILE = "misalignment.json"
BUILD_FILE = "build_config.json"
_PER_CATEGORY = 8 * len(CASE_VECTORS)


# --------------------------------------------------------------------------------------------------
# the split


@dataclass(frozen=True)
class ScenarioSplit:
    """Train and test scenario indices of one scenario set; disjoint by construction.

    The test set is ``test_categories`` whole categories (chosen by ``seed``), the train set every
    scenario of the other categories.
    """

    seed: int
    scenario_seed: int
    test_categories: tuple[str, ...]

    @property
    def train_categories(self) -> tuple[str, ...]:
        return tuple(c.name for c in CATEGORIES if c.name not in self.test_categories)

    def indices(self, categories: Iterable[str]) -> tuple[int, ...]:
        wanted = set(categories)
        return tuple(i for i in range(N_SCENARIOS) if CATEGORIES[i // _PER_CATEGORY].name in wanted)

    @property
    def train(self) -> tuple[int, ...]:
        return self.indices(self.train_categories)

    @property
    def test(self) -> tuple[int, ...]:
        return self.indices(self.test_categories)

    def sample(self, part: str, n: int | None, *, seed: int | None = None) -> list[int]:
        """``n`` indices of ``part`` ("train" or "test") drawn without replacement (all when ``n`` is None)."""
        pool = {"train": self.train, "test": self.test}[part]
        if n is None or n >= len(pool):
            return list(pool)
        rng = make_rng("rlhs-sample", self.seed if seed is None else seed, part)
        return sorted(int(pool[i]) for i in rng.choice(len(pool), size=n, replace=False))

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "scenario_seed": self.scenario_seed, "test_categories": list(self.test_categories),
                "train_categories": list(self.train_categories), "n_train": len(self.train), "n_test": len(self.test)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ScenarioSplit:
        return cls(int(d["seed"]), int(d["scenario_seed"]), tuple(d["test_categories"]))


def split_scenarios(seed: int = 0, *, test_categories: int = 2, scenario_seed: int = 0) -> ScenarioSplit:
    """A seeded split: ``test_categories`` of the 10 categories are held out for evaluation."""
    if not 1 <= test_categories < len(CATEGORIES):
        raise ConfigError(f"test_categories={test_categories}", hint=f"hold out 1..{len(CATEGORIES) - 1} categories")
    order = make_rng("rlhs-split", seed).permutation(len(CATEGORIES))
    held = tuple(sorted(CATEGORIES[int(i)].name for i in order[:test_categories]))
    return ScenarioSplit(seed, scenario_seed, held)


# --------------------------------------------------------------------------------------------------
# what the seller sees


def seller_observation(scenario: Scenario, opening: str) -> dict[str, Any]:
    """The env's observation of ``scenario`` (round 0): the customer's opening and the hidden table."""
    return {"customer": opening, "table": feature_table(scenario), "round": 0}


def seller_prompt(observation: Mapping[str, Any]) -> list[dict[str, str]]:
    """The conversational prompt the seller agent (``no-learning`` with a model) sends for ``observation``."""
    from persona_lab.agents.marketplace_agents import seller_messages

    return [m.to_dict() for m in seller_messages(dict(observation))]


def scenario_opening(scenario: Scenario, seed: int) -> str:
    """The customer's opening for ``scenario`` (a seeded choice among the env's variants)."""
    variant = int(make_rng("rlhs-opening", seed, scenario.index).integers(n_opening_variants()))
    return opening_message(scenario, variant)


# --------------------------------------------------------------------------------------------------
# policies


@dataclass(frozen=True)
class SellerTurn:
    """One sampled seller turn and where it came from (a model spec or a scripted seller's name)."""

    text: str
    source: str
    seed: int | None = None


class SellerPolicy(Protocol):
    """Samples ``k`` seller turns for each observation (one batch; order kept)."""

    def describe(self) -> dict[str, Any]: ...

    def sample(self, items: Sequence[tuple[Scenario, dict[str, Any]]], k: int) -> list[list[SellerTurn]]: ...


@dataclass
class ModelPolicy:
    """A language-model seller: ``k`` independent samples per prompt from ``model``.

    Each sample's seed is derived from ``params.seed``, the scenario and the sample number, so a
    dataset is reproducible on backends that honour seeds (``hf``, vLLM) and the seeds are recorded.

    Args:
        model: the policy's ChatModel (injected).
        params: decoding; RLHS samples at temperature 1.0.
    """

    model: ChatModel
    params: GenerationParams = field(default_factory=lambda: GenerationParams(max_new_tokens=160, temperature=1.0, seed=0))

    def describe(self) -> dict[str, Any]:
        return {"kind": "model", "spec": getattr(self.model, "spec", type(self.model).__name__), **self.params.to_dict()}

    def sample(self, items: Sequence[tuple[Scenario, dict[str, Any]]], k: int) -> list[list[SellerTurn]]:
        if self.params.temperature == 0 and k > 1:
            raise ConfigError("greedy decoding gives identical turns to compare",
                              hint="sample with temperature > 0 (RLHS used 1.0)")
        reqs, seeds = [], []
        base = self.params.seed if self.params.seed is not None else 0
        for sc, obs in items:
            for j in range(k):
                seed = derive_seed("rlhs-turn", base, sc.seed, sc.index, j)
                seeds.append(seed)
                reqs.append(ChatRequest.of(seller_prompt(obs), GenerationParams(
                    max_new_tokens=self.params.max_new_tokens, temperature=self.params.temperature,
                    top_p=self.params.top_p, seed=seed, stop=self.params.stop)))
        outs = self.model.generate(reqs)
        spec = getattr(self.model, "spec", "model")
        turns = [SellerTurn(o.text.strip(), spec, s) for o, s in zip(outs, seeds)]
        return [turns[i * k:(i + 1) * k] for i in range(len(items))]


DEFAULT_SCRIPTED_SELLERS = ("oracle", "no-learning", "deceptive-seller")


@dataclass(frozen=True)
class ScriptedPolicy:
    """Scripted sellers as the policy: each pair takes ``k`` *different* sellers drawn per scenario.

    With honest (``oracle``, ``no-learning``) and deceptive (``deceptive-seller``) sellers in the mix
    the two turns differ, which is what lets the feedback modes disagree. The oracle is told the
    scenario's truth, as the runner would.
    """

    sellers: tuple[str, ...] = DEFAULT_SCRIPTED_SELLERS
    seed: int = 0

    def describe(self) -> dict[str, Any]:
        return {"kind": "scripted", "sellers": list(self.sellers), "seed": self.seed}

    def sample(self, items: Sequence[tuple[Scenario, dict[str, Any]]], k: int) -> list[list[SellerTurn]]:
        from persona_lab.agents.base import TruthAware, create_agent

        if k > len(self.sellers):
            raise ConfigError(f"{k} turns per scenario need {k} different scripted sellers, got {list(self.sellers)}")
        agents = {name: create_agent(name, "marketplace", None) for name in self.sellers}
        out = []
        for sc, obs in items:
            picks = make_rng("rlhs-scripted", self.seed, sc.seed, sc.index).choice(len(self.sellers), size=k, replace=False)
            turns = []
            for p in picks:
                name = self.sellers[int(p)]
                agent = agents[name]
                if isinstance(agent, TruthAware):
                    agent.reveal(sc.to_dict())
                turns.append(SellerTurn(agent.act(obs), name, None))
            out.append(turns)
        return out


# --------------------------------------------------------------------------------------------------
# labelling


@dataclass(frozen=True)
class LabelledPair:
    """Two seller turns on one scenario, the customer's reaction to each and its preference per mode."""

    scenario: Scenario
    opening: str
    prompt: list[dict[str, str]]
    turns: tuple[SellerTurn, SellerTurn]
    choices: tuple[str, str]
    utilities: tuple[float, float]
    false_claims: tuple[int, int]
    preference: Mapping[str, str]  # mode (and "utility") -> "a" | "b" | "tie" | "unclear" (unreadable)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario_id": self.scenario.id, "scenario_index": self.scenario.index,
            "scenario_seed": self.scenario.seed, "opening": self.opening, "prompt": self.prompt,
            "turns": [asdict(t) for t in self.turns], "choices": list(self.choices),
            "utilities": list(self.utilities), "false_claims": list(self.false_claims),
            "preference": dict(self.preference),
        }

    def preference_row(self, mode: str) -> dict[str, Any] | None:
        """The TRL preference example for ``mode`` (``None`` on a tie or an unreadable answer)."""
        pref = self.preference[mode]
        if pref not in ("a", "b"):
            return None
        c, r = (0, 1) if pref == "a" else (1, 0)
        return {
            "prompt": self.prompt,
            "chosen": [{"role": "assistant", "content": self.turns[c].text}],
            "rejected": [{"role": "assistant", "content": self.turns[r].text}],
            "scenario_id": self.scenario.id,
            "scenario_index": self.scenario.index,
            "mode": mode,
            "chosen_source": self.turns[c].source,
            "rejected_source": self.turns[r].source,
            "chosen_seed": self.turns[c].seed,
            "rejected_seed": self.turns[r].seed,
            "chosen_choice": self.choices[c],
            "rejected_choice": self.choices[r],
            "chosen_utility": self.utilities[c],
            "rejected_utility": self.utilities[r],
        }


def label_pair(customer: Customer, scenario: Scenario, opening: str, turn_a: SellerTurn, turn_b: SellerTurn,
               *, seed: int = 0, prompt: list[dict[str, str]] | None = None) -> LabelledPair:
    """Ask ``customer`` to compare two turns under every mode (plus the true-utility preference)."""
    rng = make_rng("rlhs-compare", seed, scenario.seed, scenario.index)
    comp = compare_turns(customer, scenario, opening, turn_a.text, turn_b.text, rng, (*MODES, "utility"))
    ra, rb = comp.reactions
    return LabelledPair(
        scenario=scenario, opening=opening, prompt=prompt or seller_prompt(seller_observation(scenario, opening)),
        turns=(turn_a, turn_b), choices=(ra.choice, rb.choice),
        utilities=(true_utility(scenario, ra.choice), true_utility(scenario, rb.choice)),
        false_claims=(ra.false_claims, rb.false_claims), preference=dict(comp.preference),
    )


def build_pairs(policy: SellerPolicy, customer: Customer, scenario_indices: Sequence[int], *, seed: int = 0,
                scenario_seed: int = 0, train_indices: Iterable[int] | None = None, batch_size: int = 32,
                on_pair: Callable[[LabelledPair], None] | None = None) -> list[LabelledPair]:
    """Two policy turns per scenario, compared by ``customer`` under every mode.

    Args:
        policy: samples the seller turns.
        customer: the judge (``ScriptedCustomer()`` or an ``LLMCustomer``).
        scenario_indices: where to sample (train scenarios).
        seed: seeds the openings and the customer's comparison.
        scenario_seed: which seeded scenario set.
        train_indices: when given, every index must be in it (a guard against test leakage).
        batch_size: scenarios per ``generate`` call.
        on_pair: called with each labelled pair (progress, streaming writes).
    """
    if train_indices is not None:
        allowed = set(train_indices)
        leaked = [i for i in scenario_indices if i not in allowed]
        if leaked:
            raise ConfigError(f"{len(leaked)} scenario(s) are not in the train split, e.g. {leaked[:3]}",
                              hint="sample pairs from ScenarioSplit.train only")
    pairs: list[LabelledPair] = []
    for start in range(0, len(scenario_indices), max(1, batch_size)):
        chunk = [get_scenario(int(i), scenario_seed) for i in scenario_indices[start:start + batch_size]]
        items = [(sc, seller_observation(sc, scenario_opening(sc, seed))) for sc in chunk]
        for (sc, obs), (a, b) in zip(items, policy.sample(items, 2)):
            pair = label_pair(customer, sc, obs["customer"], a, b, seed=seed)
            pairs.append(pair)
            if on_pair is not None:
                on_pair(pair)
    return pairs


def pairs_from_records(records: Iterable[TransitionRecord], customer: Customer, *, seed: int = 0,
                       train_indices: Iterable[int] | None = None) -> list[LabelledPair]:
    """Pairs from recorded ``Marketplace-v0`` runs of a policy (e.g. two ``persona-lab run``s of a sampling
    seller with different seeds): per scenario and customer opening, the first two *different* recorded
    seller turns, labelled by ``customer``. The prompt is the one the runner recorded.

    Raises:
        ConfigError: a record from another env, or (with ``train_indices``) a scenario outside the train split.
    """
    groups: dict[tuple[int, int, str], list[TransitionRecord]] = {}
    for r in records:
        if r.env_id != ENV_ID:
            raise ConfigError(f"record of {r.env_id!r} (episode {r.episode}, round {r.round}) is not a marketplace turn",
                              hint=f"build RLHS pairs from {ENV_ID} runs")
        key = (int(r.privileged["scenario_index"]), int(r.privileged.get("scenario_seed", 0)), r.observation["customer"])
        same = groups.setdefault(key, [])
        if len(same) < 2 and all(x.action != r.action for x in same):
            same.append(r)
    allowed = set(train_indices) if train_indices is not None else None
    pairs = []
    for (index, scenario_seed, opening), recs in groups.items():
        if len(recs) < 2:
            continue
        if allowed is not None and index not in allowed:
            raise ConfigError(f"scenario {index} of the records is not in the train split",
                              hint="run the policy on train scenarios only (env kwarg categories=split.train_categories)")
        turns = tuple(SellerTurn(r.action, r.env_id, r.seed) for r in recs)
        pairs.append(label_pair(customer, get_scenario(index, scenario_seed), opening, turns[0], turns[1], seed=seed,
                                prompt=recs[0].prompt or seller_prompt(recs[0].observation)))
    return pairs


def preference_rows(pairs: Iterable[LabelledPair], mode: str) -> list[dict[str, Any]]:
    """TRL preference rows of one mode, ties dropped."""
    if mode not in MODES:
        raise ConfigError(f"unknown feedback mode {mode!r}", hint=f"use one of {list(MODES)}")
    return [row for p in pairs if (row := p.preference_row(mode)) is not None]


# --------------------------------------------------------------------------------------------------
# the misalignment check


def misalignment(pairs: Sequence[LabelledPair]) -> dict[str, Any]:
    """How far immediate feedback is from hindsight feedback on these pairs, before any training.

    For each hindsight mode: ``disagreement`` is the share of pairs, among those where both labels
    are strict, whose immediate and hindsight labels differ. ``utility_of_preferred[mode]`` is the
    mean true utility of the turn that mode prefers (over its non-tie pairs); ``agree_with_utility``
    the share of a mode's strict labels that pick the truly better turn (pairs with a strict
    utility preference).
    """
    out: dict[str, Any] = {"pairs": len(pairs), "ties": {}, "unclear": {}, "utility_of_preferred": {},
                           "utility_of_rejected": {}, "agree_with_utility": {}, "disagreement_with_immediate": {}}
    for mode in (*MODES, "utility"):
        strict = [p for p in pairs if p.preference[mode] in ("a", "b")]
        out["unclear"][mode] = sum(p.preference[mode] == "unclear" for p in pairs)
        out["ties"][mode] = len(pairs) - len(strict) - out["unclear"][mode]
        won = [p.utilities[0 if p.preference[mode] == "a" else 1] for p in strict]
        lost = [p.utilities[1 if p.preference[mode] == "a" else 0] for p in strict]
        out["utility_of_preferred"][mode] = _mean(won)
        out["utility_of_rejected"][mode] = _mean(lost)
        both = [p for p in strict if p.preference["utility"] in ("a", "b")]
        out["agree_with_utility"][mode] = _mean([float(p.preference[mode] == p.preference["utility"]) for p in both])
    for mode in HINDSIGHT_MODES:
        both = [p for p in pairs if p.preference["immediate"] in ("a", "b") and p.preference[mode] in ("a", "b")]
        out["disagreement_with_immediate"][mode] = {
            "share": _mean([float(p.preference["immediate"] != p.preference[mode]) for p in both]), "n": len(both)}
    return out


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def format_misalignment(m: Mapping[str, Any]) -> str:
    """A short text report of :func:`misalignment` (for the CLI and the README)."""
    def f(x: float | None) -> str:
        return "n/a" if x is None else f"{x:+.3f}"

    lines = [f"misalignment check over {m['pairs']} pairs (before training):"]
    for mode in HINDSIGHT_MODES:
        d = m["disagreement_with_immediate"][mode]
        share = "n/a" if d["share"] is None else f"{d['share']:.1%}"
        lines.append(f"  immediate vs {mode}: labels disagree on {share} of {d['n']} pairs with strict labels")
    lines.append("  mean true utility of the preferred turn (rejected turn), strict pairs, ties:")
    for mode in (*MODES, "utility"):
        unread = m.get("unclear", {}).get(mode, 0)
        lines.append(f"    {mode:18s} {f(m['utility_of_preferred'][mode])} ({f(m['utility_of_rejected'][mode])}),"
                     f" ties {m['ties'][mode]}" + (f", unreadable answers {unread} (no label)" if unread else ""))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# files


def write_pair_datasets(pairs: Sequence[LabelledPair], out: str | os.PathLike[str], *, split: ScenarioSplit,
                        policy: Mapping[str, Any], customer: str, seed: int) -> dict[str, Path]:
    """Write ``<mode>.jsonl`` (TRL preference format) per mode, every comparison, the split,
    the build settings and the misalignment check into ``out``; returns mode -> path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / SPLIT_FILE, split.to_dict())
    atomic_write_json(out / BUILD_FILE, {"policy": dict(policy), "customer": customer, "seed": seed,
                                         "scenarios": [p.scenario.index for p in pairs]})
    atomic_write_text(out / COMPARISONS_FILE, "".join(json.dumps(p.to_dict()) + "\n" for p in pairs))
    paths = {}
    for mode in MODES:
        rows = preference_rows(pairs, mode)
        paths[mode] = out / f"{mode}.jsonl"
        atomic_write_text(paths[mode], "".join(json.dumps(r) + "\n" for r in rows))
    atomic_write_json(out / MISALIGNMENT_FILE, misalignment(pairs))
    return paths


HONEST_SELLERS = ("oracle", "no-learning")


def warm_start_rows(scenario_indices: Sequence[int], *, sellers: Sequence[str] = HONEST_SELLERS, seed: int = 0,
                    scenario_seed: int = 0) -> list[dict[str, Any]]:
    """SFT rows (``prompt`` / ``completion``) of honest scripted-seller turns: a warm start that teaches a
    small model the claim grammar before RL (one seller per scenario, drawn by ``seed``)."""
    rows = []
    for i in scenario_indices:
        sc = get_scenario(int(i), scenario_seed)
        obs = seller_observation(sc, scenario_opening(sc, seed))
        (turn,), = ScriptedPolicy(tuple(sellers), seed).sample([(sc, obs)], 1)
        rows.append({"prompt": seller_prompt(obs), "completion": [{"role": "assistant", "content": turn.text}],
                     "scenario_id": sc.id, "seller": turn.source})
    return rows


def rlhs_dpo_config(base: str, data: str | os.PathLike[str], out: str | os.PathLike[str], **overrides: Any) -> Any:
    """A :class:`~persona_lab.train.dpo.DPOTrainConfig` with RLHS's settings: sigmoid DPO, β 0.1,
    LoRA r 8 / α 16 on all linear layers, lr 5e-5, cosine schedule, 10% warm-up (``overrides`` win)."""
    from persona_lab.train.dpo import DPOTrainConfig

    settings: dict[str, Any] = {"base": base, "data": str(data), "out": str(out), "beta": 0.1, "lora_r": 8,
                                "lora_alpha": 16, "target_modules": "all-linear", "learning_rate": 5e-5,
                                "lr_scheduler": "cosine", "warmup": 0.1}
    settings.update(overrides)
    return DPOTrainConfig(**settings)
