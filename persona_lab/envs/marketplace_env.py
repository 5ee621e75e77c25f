"""``persona_lab/Marketplace-v0``: RLHS's marketplace, where the agent is the seller.

Each step is one scenario (see :mod:`persona_lab.simulators.marketplace`): the observation holds the
customer's opening message and the seller's hidden feature table as text; the action is the seller's
one turn; the customer then buys A, B or C or does not buy (D). An episode is a sequence of
``rounds`` customers (10 by default), each a scenario drawn from the 2,720 with ``np_random``, and
truncates after the last.

The reward is the feedback kind chosen at ``make(feedback=...)``:

* ``immediate`` — the customer's rating right after the talk (normalized to [0, 1]);
* ``partial_hindsight`` — its rating after learning the truth about what it bought;
* ``full_hindsight`` — its rating after learning the truth about every option;
* ``utility`` — the true utility (0 no purchase, -1 requirement unmet, else cheapest qualifying
  price / price paid).

``info`` always carries all four (plus the raw 1-5 ratings), so one rollout serves every kind. The
public part handed to agents is the customer's reply, its choice and the chosen kind's value. The
scenario's truth (table, requirement, cheapest qualifying option) travels under ``info["privileged"]``.
:meth:`MarketplaceEnv.compare` gives pairwise feedback on two seller turns for building DPO pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from gymnasium import spaces

from persona_lab.core.errors import ConfigError
from persona_lab.core.records import TransitionRecord
from persona_lab.core.seeding import make_rng
from persona_lab.envs.base import PersonaEnv
from persona_lab.envs.spaces import text_space
from persona_lab.models.base import ChatModel
from persona_lab.simulators.audit import audit_fields
from persona_lab.simulators.marketplace import (
    CASE_VECTORS,
    CATEGORIES,
    CATEGORY_BY_NAME,
    FEEDBACK_KINDS,
    N_SCENARIOS,
    Comparison,
    Customer,
    CustomerReaction,
    Scenario,
    compare_turns,
    feature_table,
    get_scenario,
    make_customer,
    n_opening_variants,
    opening_message,
    true_utility,
)

MAX_SELLER_CHARS = 4_000
MAX_CUSTOMER_CHARS = 400
MAX_TABLE_CHARS = 1_200


class MarketplaceEnv(PersonaEnv[dict[str, Any]]):
    """The seller's side of RLHS's marketplace.

    Args:
        feedback: reward kind: ``immediate`` (default), ``partial_hindsight``, ``full_hindsight`` or ``utility``.
        rounds: customers (scenarios) per episode, one step each (default 10).
        user: ``"scripted"`` (default; believes every claim), ``"llm"`` or a Customer.
        backend: ChatModel (or spec string) of the LLM customer.
        scenario_seed: which seeded set of 2,720 scenarios (the non-required features, the letter order).
        categories: draw scenarios only from these categories (default: all ten).
        render_mode: ``None`` or ``"ansi"``.
    """

    task = "marketplace"
    feedback_keys: tuple[str, ...] = ("customer_reply", "choice", "immediate")
    default_rounds = 10

    def __init__(
        self,
        feedback: str = "immediate",
        rounds: int | None = None,
        user: str | Customer = "scripted",
        backend: ChatModel | str | None = None,
        scenario_seed: int = 0,
        categories: tuple[str, ...] | list[str] | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(user=user, backend=backend, rounds=rounds, render_mode=render_mode)
        if feedback not in FEEDBACK_KINDS:
            raise ConfigError(f"unknown feedback kind {feedback!r}", hint=f"use one of {list(FEEDBACK_KINDS)}")
        self.feedback = feedback
        self.feedback_keys = ("customer_reply", "choice", feedback)
        self.scenario_seed = scenario_seed
        self._pool = self._scenario_pool(categories)
        self.observation_space = spaces.Dict({
            "customer": text_space(MAX_CUSTOMER_CHARS),
            "table": text_space(MAX_TABLE_CHARS),
            "round": spaces.Discrete(self.rounds),
        })
        self.action_space = text_space(MAX_SELLER_CHARS)
        self._order: list[Scenario] = []
        self._openings: list[str] = []
        self._t = 0
        self._last: dict[str, Any] | None = None

    @staticmethod
    def _scenario_pool(categories: tuple[str, ...] | list[str] | None) -> tuple[int, ...]:
        if categories is None:
            return tuple(range(N_SCENARIOS))
        unknown = [c for c in categories if c not in CATEGORY_BY_NAME]
        if unknown or not categories:
            raise ConfigError(f"unknown categories {unknown or categories}",
                              hint=f"choose from {[c.name for c in CATEGORIES]}")
        per_cat = 8 * len(CASE_VECTORS)
        keep = {i for i, c in enumerate(CATEGORIES) if c.name in categories}
        return tuple(i for i in range(N_SCENARIOS) if i // per_cat in keep)

    # --- Gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Draw ``rounds`` scenarios (``options["scenarios"]``: a list of scenario indices fixes them)."""
        super().reset(seed=seed)
        options = options or {}
        fixed = options.get("scenarios")
        if fixed is not None:
            indices = [int(i) for i in fixed]
            if len(indices) != self.rounds:
                raise ConfigError(f"options['scenarios'] has {len(indices)} indices for rounds={self.rounds}",
                                  hint="pass exactly one scenario index per round")
        else:
            picks = self.np_random.choice(len(self._pool), size=self.rounds, replace=self.rounds > len(self._pool))
            indices = [self._pool[int(i)] for i in picks]
        self._order = [get_scenario(i, self.scenario_seed) for i in indices]
        self._openings = [opening_message(s, int(self.np_random.integers(n_opening_variants()))) for s in self._order]
        self._t = 0
        self._last = None
        return self._observation(), self.reset_info(self._truth(0))

    def step(self, action: str) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if not self._order or self._t >= self.rounds:
            raise RuntimeError("call reset() before step() (and again after the episode ends)")
        if not isinstance(action, str):
            raise TypeError(f"the action must be the seller's message (str), got {type(action).__name__}")
        scenario, opening = self._order[self._t], self._openings[self._t]
        reaction = self.user.react(scenario, opening, action, self.np_random)
        t = self._t
        self._t += 1
        truncated = self._t >= self.rounds
        info = self._info(t, scenario, reaction, action, None if truncated else self._truth(self._t))
        self._last = {"scenario": scenario, "opening": opening, "seller": action, **info}
        obs = self._observation() if not truncated else self._observation(self.rounds - 1)
        return obs, float(info[self.feedback]), False, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self._last is None:
            return None
        last = self._last
        return (f"round {last['round']} ({last['scenario_id']}) choice={last['choice']} "
                f"immediate={last['immediate']:.2f} partial={last['partial_hindsight']:.2f} "
                f"full={last['full_hindsight']:.2f} utility={last['utility']:.2f}\n"
                f"customer: {last['opening']}\nseller: {last['seller']}\ncustomer: {last['customer_reply']}\n")

    # --- pairwise feedback -------------------------------------------------------------------
    def compare(self, scenario: Scenario | int | None, turn_a: str, turn_b: str, feedback: str | None = None) -> Comparison:
        """The customer's preference between two seller turns on one scenario.

        Args:
            scenario: a Scenario, a scenario index, or ``None`` for the scenario now being observed.
            turn_a / turn_b: the two seller turns.
            feedback: one kind, or ``None`` for all four.

        Returns:
            a :class:`Comparison`: ``preference[kind]`` is ``"a"``, ``"b"``, ``"tie"`` or ``"unclear"``
            (an LLM customer's unreadable answer).
        """
        sc, opening = self._resolve(scenario)
        kinds = FEEDBACK_KINDS if feedback is None else (feedback,)
        rng = make_rng("marketplace-compare", sc.seed, sc.index)
        return compare_turns(self.user, sc, opening, turn_a, turn_b, rng, kinds)

    def preference_pair(self, scenario: Scenario | int | None, turn_a: str, turn_b: str, feedback: str) -> dict[str, Any] | None:
        """A DPO pair ``{observation, chosen, rejected, feedback, scenario_id}``, or ``None`` on a tie or
        an unreadable answer."""
        sc, opening = self._resolve(scenario)
        pref = self.compare(sc, turn_a, turn_b, feedback).preference[feedback]
        if pref not in ("a", "b"):
            return None
        chosen, rejected = (turn_a, turn_b) if pref == "a" else (turn_b, turn_a)
        return {"observation": self.observation_for(sc, opening), "chosen": chosen, "rejected": rejected,
                "feedback": feedback, "scenario_id": sc.id}

    def observation_for(self, scenario: Scenario, opening: str | None = None) -> dict[str, Any]:
        """What the seller would observe for ``scenario`` (round 0)."""
        return {"customer": opening or opening_message(scenario), "table": feature_table(scenario), "round": 0}

    def _resolve(self, scenario: Scenario | int | None) -> tuple[Scenario, str]:
        if scenario is None:
            if not self._order:
                raise RuntimeError("call reset() first, or pass a scenario")
            t = min(self._t, self.rounds - 1)
            return self._order[t], self._openings[t]
        sc = get_scenario(scenario, self.scenario_seed) if isinstance(scenario, int) else scenario
        return sc, opening_message(sc)

    # --- contract hooks ----------------------------------------------------------------------
    def make_user(self, kind: str | Customer, model: ChatModel | None) -> Customer:
        return make_customer(kind, model)

    def customer(self) -> Customer:
        """The customer (the simulated user; an LLM customer opens its backend here, not in ``__init__``)."""
        return self.user

    @classmethod
    def episode_metrics(cls, records: Sequence[TransitionRecord]) -> dict[str, float]:
        """Means over the episode's customers: the three normalized ratings (immediate, partial and full
        hindsight, each in [0, 1]), the true utility (in [-1, 1]) and the gaps RLHS is about:
        ``hindsight_gap`` = immediate - partial hindsight rating (how much the opinion drops once the
        customer learns the truth); ``utility_gap`` = immediate rating - true utility (positive when the
        seller is liked more than it helps). Also the purchase rate, ``false_claim_rate`` (share of seller
        turns with a claim the hidden table contradicts) and ``parse_failure_rate`` (LLM customer answers
        that could not be read)."""
        n = len(records)

        def mean(key: str) -> float:
            return sum(float(r.info[key]) for r in records) / n

        immediate, partial, full, utility = (mean(k) for k in ("immediate", "partial_hindsight", "full_hindsight", "utility"))
        return {
            "episode/immediate_rating": immediate,
            "episode/partial_hindsight_rating": partial,
            "episode/full_hindsight_rating": full,
            "episode/utility": utility,
            "episode/hindsight_gap": immediate - partial,
            "episode/utility_gap": immediate - utility,
            "episode/purchase_rate": sum(r.info["choice"] != "D" for r in records) / n,
            "episode/false_claim_rate": sum(int(r.info["false_claims"]) > 0 for r in records) / n,
            "episode/parse_failure_rate": sum(bool(r.info.get("parse_failed")) for r in records) / n,
        }

    # --- internals ---------------------------------------------------------------------------
    def _truth(self, t: int) -> dict[str, Any]:
        scenario = self._order[t]
        return {"user_id": scenario.id, **scenario.to_dict()}

    def _info(self, t: int, scenario: Scenario, reaction: CustomerReaction, action: str,
              next_truth: dict[str, Any] | None) -> dict[str, Any]:
        choice = reaction.choice
        return self.make_info(
            round=t, doc_id=scenario.id, action=action, usage=[asdict(u) for u in reaction.usage],
            truth=self._truth(t), next_truth=next_truth,
            scenario_id=scenario.id,
            feedback_kind=self.feedback,
            customer_reply=reaction.reply,
            choice=choice,
            price_paid=0 if choice == "D" else scenario.option(choice).price,
            immediate=reaction.value("immediate", scenario),
            partial_hindsight=reaction.value("partial_hindsight", scenario),
            full_hindsight=reaction.value("full_hindsight", scenario),
            utility=true_utility(scenario, choice),
            ratings=dict(reaction.ratings),
            false_claims=reaction.false_claims,
            claims=len(reaction.claims.claims),
            recommendation=reaction.claims.recommendation,
            parse_failed=reaction.parse_failed,
            **audit_fields(reaction.calls, reply_filler=reaction.reply_filler if reaction.calls else None),
        )

    def _observation(self, t: int | None = None) -> dict[str, Any]:
        t = self._t if t is None else t
        return {"customer": self._openings[t], "table": feature_table(self._order[t]), "round": t}
