"""``persona_lab/Marketplace-v0``: RLHS's marketplace, where the agent is the seller.

Each step is one scenario (see :mod:`persona_lab.simulators.marketplace`): the observation holds the
customer's opening message and the seller's hidden feature table as text; the action is the seller's
one turn; the customer then buys A, B or C or does not buy (D). An episode is ``rounds`` scenarios
drawn from the 2,720 with ``np_random`` and truncates after the last.

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

import pickle
from dataclasses import asdict
from typing import Any

import gymnasium as gym
from gymnasium import spaces

from persona_lab.core.errors import ConfigError
from persona_lab.core.seeding import make_rng, stable_hash
from persona_lab.envs.edit_env import PRIVILEGED
from persona_lab.envs.spaces import text_space
from persona_lab.models.base import ChatModel
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


class MarketplaceEnv(gym.Env[dict[str, Any], str]):
    """The seller's side of RLHS's marketplace.

    Args:
        feedback: reward kind: ``immediate`` (default), ``partial_hindsight``, ``full_hindsight`` or ``utility``.
        rounds: scenarios per episode (one step each).
        user: ``"scripted"`` (default; believes every claim), ``"llm"`` or a Customer.
        backend: ChatModel (or spec string) of the LLM customer.
        population: accepted for the runner's sake; the marketplace has one kind of customer.
        scenario_seed: which seeded set of 2,720 scenarios (the non-required features, the letter order).
        categories: draw scenarios only from these categories (default: all ten).
        render_mode: ``None`` or ``"ansi"``.
    """

    metadata = {"render_modes": ["ansi"]}
    task = "marketplace"
    feedback_keys: tuple[str, ...] = ("customer_reply", "choice", "immediate")

    def __init__(
        self,
        feedback: str = "immediate",
        rounds: int = 1,
        user: str | Customer = "scripted",
        backend: ChatModel | str | None = None,
        population: str | None = None,
        scenario_seed: int = 0,
        categories: tuple[str, ...] | list[str] | None = None,
        render_mode: str | None = None,
    ) -> None:
        del population  # one customer type; accepted because the runner passes it to every env
        if feedback not in FEEDBACK_KINDS:
            raise ConfigError(f"unknown feedback kind {feedback!r}", hint=f"use one of {list(FEEDBACK_KINDS)}")
        if rounds < 1:
            raise ConfigError(f"rounds must be >= 1, got {rounds}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"unknown render_mode {render_mode!r}", hint="use None or 'ansi'")
        self.feedback = feedback
        self.feedback_keys = ("customer_reply", "choice", feedback)
        self.rounds = rounds
        self.scenario_seed = scenario_seed
        self.render_mode = render_mode
        self._user_spec, self._backend = user, backend
        self._customer: Customer | None = None
        self._pool = self._scenario_pool(categories)
        self.observation_space = spaces.Dict({
            "customer": text_space(MAX_CUSTOMER_CHARS),
            "table": text_space(MAX_TABLE_CHARS),
            "round": spaces.Discrete(rounds),
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
        return self._observation(), {PRIVILEGED: {"next": self._order[0].to_dict()}}

    def step(self, action: str) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if not self._order or self._t >= self.rounds:
            raise RuntimeError("call reset() before step() (and again after the episode ends)")
        if not isinstance(action, str):
            raise TypeError(f"the action must be the seller's message (str), got {type(action).__name__}")
        scenario, opening = self._order[self._t], self._openings[self._t]
        reaction = self.customer().react(scenario, opening, action, self.np_random)
        info = self._info(scenario, reaction, action)
        self._t += 1
        truncated = self._t >= self.rounds
        info[PRIVILEGED] = {"round": scenario.to_dict()}
        if not truncated:
            info[PRIVILEGED]["next"] = self._order[self._t].to_dict()
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

    def close(self) -> None:
        self._customer = None

    # --- pairwise feedback -------------------------------------------------------------------
    def compare(self, scenario: Scenario | int | None, turn_a: str, turn_b: str, feedback: str | None = None) -> Comparison:
        """The customer's preference between two seller turns on one scenario.

        Args:
            scenario: a Scenario, a scenario index, or ``None`` for the scenario now being observed.
            turn_a / turn_b: the two seller turns.
            feedback: one kind, or ``None`` for all four.

        Returns:
            a :class:`Comparison`: ``preference[kind]`` is ``"a"``, ``"b"`` or ``"tie"``.
        """
        sc, opening = self._resolve(scenario)
        kinds = FEEDBACK_KINDS if feedback is None else (feedback,)
        rng = make_rng("marketplace-compare", sc.seed, sc.index)
        return compare_turns(self.customer(), sc, opening, turn_a, turn_b, rng, kinds)

    def preference_pair(self, scenario: Scenario | int | None, turn_a: str, turn_b: str, feedback: str) -> dict[str, Any] | None:
        """A DPO pair ``{observation, chosen, rejected, feedback, scenario_id}`` or ``None`` on a tie."""
        sc, opening = self._resolve(scenario)
        pref = self.compare(sc, turn_a, turn_b, feedback).preference[feedback]
        if pref == "tie":
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

    # --- internals ---------------------------------------------------------------------------
    def customer(self) -> Customer:
        """The customer (created lazily; an LLM customer opens its backend here, not in ``__init__``)."""
        if self._customer is None:
            from persona_lab.models import resolve_chat_model

            model = self._backend = resolve_chat_model(self._backend)
            self._customer = make_customer(self._user_spec, model)
        return self._customer

    def _info(self, scenario: Scenario, reaction: CustomerReaction, action: str) -> dict[str, Any]:
        choice = reaction.choice
        return {
            "round": self._t,
            "scenario_id": scenario.id,
            "feedback_kind": self.feedback,
            "customer_reply": reaction.reply,
            "choice": choice,
            "price_paid": 0 if choice == "D" else scenario.option(choice).price,
            "immediate": reaction.value("immediate", scenario),
            "partial_hindsight": reaction.value("partial_hindsight", scenario),
            "full_hindsight": reaction.value("full_hindsight", scenario),
            "utility": true_utility(scenario, choice),
            "ratings": dict(reaction.ratings),
            "false_claims": reaction.false_claims,
            "claims": len(reaction.claims.claims),
            "recommendation": reaction.claims.recommendation,
            "parse_failed": reaction.parse_failed,
            "usage": [asdict(u) for u in reaction.usage],
            "response_hash": stable_hash(action, length=16),
        }

    def _observation(self, t: int | None = None) -> dict[str, Any]:
        t = self._t if t is None else t
        return {"customer": self._openings[t], "table": feature_table(self._order[t]), "round": t}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_customer"] = None  # rebuilt lazily (an LLM customer holds a model client)
        backend = state.get("_backend")
        if backend is not None and not isinstance(backend, str):
            try:
                pickle.dumps(backend)
            except Exception:  # a live client: reopen it from its spec after unpickling
                state["_backend"] = backend.spec
        return state
