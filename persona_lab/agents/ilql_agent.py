"""``ilql``: a persuader that re-ranks candidate turns by a trained ILQL value model (best-of-N).

Each turn it samples N candidate turns from the behaviour policy (the injected ChatModel: the base
model or a BC adapter, prompted like the other LLM persuaders; without a model, the generic pitch plus
random mixes of the world's public strategy lines, objection answers and the request) and says the
one with the largest ``β · Σ_t (Q̄(h_t)[a_t] − V(h_t))`` over its tokens (:class:`persona_lab.train.ilql.ILQLScorer`). The dialogue it scores is kept as
explicit per-episode memory (its own turns and the persuadee replies from the observations).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from persona_lab.agents.base import AGENTS
from persona_lab.agents.persuasion_agents import (
    ASK,
    STRATEGY_LINES,
    TASK,
    NoLearningPersuader,
    PersuaderAgent,
    persuader_messages,
)
from persona_lab.core.errors import ConfigError
from persona_lab.core.seeding import derive_seed, stable_hash
from persona_lab.models.base import ChatModel, ChatRequest, GenerationParams
from persona_lab.simulators.persuasion_vocab import OBJECTIONS


class TurnScorer(Protocol):
    """Scores candidate next persuader turns after the dialogue so far (``{"role", "text"}`` turns)."""

    def score(self, turns: Sequence[Mapping[str, str]], candidates: Sequence[str]) -> list[float]: ...


# Loaders of trained value models by kind; ``persona_lab.train.ilql`` registers "ilql" when imported
# (agents never import train: the dependency points the other way).
SCORER_LOADERS: dict[str, Callable[[str], TurnScorer]] = {}


@AGENTS.register("ilql", "persuasion only: best-of-N turns of the behaviour policy, ranked by a trained ILQL value model")
class ILQLPersuader(PersuaderAgent):
    """Best-of-N re-ranking by an ILQL advantage.

    Args:
        task: ``persuasion``.
        model: the behaviour policy (a ChatModel), or ``None`` for scripted candidates.
        value_model: an ILQL output folder (``persona-lab train ilql --out``), loaded on first use. Without
            one (nor ``scorer``) the agent is the behaviour policy alone (one of its N samples, drawn at
            random with the candidates' seed: the no-value control), and its step info says
            ``"value_model": null``.
        scorer: an in-memory :class:`TurnScorer` instead of ``value_model``.
        candidates: N, the candidate turns per step.
        temperature: sampling temperature of the behaviour policy's candidates.
        seed: seeds the candidates (with the dialogue so far), so a rerun samples the same ones.
        max_new_tokens: budget of each candidate.
    """

    name = "ilql"

    def __init__(self, task: str = TASK, model: ChatModel | None = None, *, value_model: str | None = None,
                 scorer: TurnScorer | None = None, candidates: int = 4, temperature: float = 0.8, seed: int = 0,
                 max_new_tokens: int | None = None) -> None:
        super().__init__(task, model, max_new_tokens=max_new_tokens)
        if candidates < 1:
            raise ConfigError(f"candidates={candidates}: must be at least 1", hint="N of best-of-N, e.g. 4")
        self._scorer, self._value_model = scorer, value_model
        self.n, self.temperature, self.seed = candidates, temperature, seed
        self._turns: list[dict[str, str]] = []

    @property
    def scorer(self) -> TurnScorer | None:
        if self._scorer is None and self._value_model:
            if "ilql" not in SCORER_LOADERS:
                raise ConfigError("no ILQL value-model loader is registered",
                                  hint="import persona_lab.train (the CLI does) before running the ilql agent")
            self._scorer = SCORER_LOADERS["ilql"](str(self._value_model))
        return self._scorer

    def act(self, observation: dict[str, Any]) -> str:
        if int(observation.get("turn", 0)) == 0:
            self._turns = []
        self._turns.append({"role": "persuadee", "text": str(observation.get("user", ""))})
        scorer = self.scorer
        options = list(dict.fromkeys(self.candidates(observation)))
        if scorer is None:  # the behaviour policy alone: one of its samples, drawn with the candidates' seed
            key = derive_seed(self.seed, "pick", stable_hash(observation.get("dialogue", "")))
            options = [options[int(np.random.default_rng(key).integers(len(options)))]]
        scores = scorer.score(self._turns, options) if scorer is not None and len(options) > 1 else [0.0] * len(options)
        best = int(np.argmax(scores))
        self.step_info = {"candidates": len(options), "scores": [round(float(s), 4) for s in scores], "chosen": best,
                          "value_model": self._value_model or (type(scorer).__name__ if scorer else None)}
        self._turns.append({"role": "persuader", "text": options[best]})
        return options[best]

    def candidates(self, observation: dict[str, Any]) -> list[str]:
        """N turns from the behaviour policy (seeded by the dialogue so far)."""
        key = derive_seed(self.seed, stable_hash(observation.get("dialogue", "")))
        if self.model is None:
            rng = np.random.default_rng(key)
            lines = list(STRATEGY_LINES.values()) + [o.counter for o in OBJECTIONS.values()]
            out = [NoLearningPersuader.scripted(self, observation)]  # type: ignore[arg-type]
            while len(out) < self.n:
                picked = [lines[int(i)] for i in rng.choice(len(lines), size=int(rng.integers(1, 3)), replace=False)]
                out.append(" ".join(picked + ([ASK] if rng.random() < 0.4 else [])))
            return out
        messages = persuader_messages(observation)
        requests = [ChatRequest.of(messages, GenerationParams(max_new_tokens=self.params.max_new_tokens,
                                                              temperature=self.temperature,
                                                              seed=derive_seed(key, i)))
                    for i in range(self.n)]
        texts = [c.text.strip() for c in self.model.generate(requests)]
        return [t for t in texts if t] or [NoLearningPersuader.scripted(self, observation)]  # type: ignore[arg-type]
