"""PRELUDE's edit world: an assistant drafts, a user with a hidden preference edits, cost = edit distance.

One episode is one user over ``rounds`` documents. Observation: the document and the round index.
Action: the response text. Reward: minus the edit cost. ``info`` carries the edited text, whether it
was accepted, the cost, which of the user's true preferences the draft satisfied, usage, and — under
the single privileged key :data:`PRIVILEGED` — the true preference and source (for evaluators and the
oracle only; agents must not read it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from gymnasium import spaces

from persona_lab.core.errors import ConfigError
from persona_lab.core.records import TransitionRecord
from persona_lab.envs.base import PersonaEnv
from persona_lab.envs.corpus import SOURCES, Corpus, Document, load_corpus
from persona_lab.envs.spaces import text_space
from persona_lab.models.base import ChatModel
from persona_lab.simulators import catalog
from persona_lab.simulators.audit import audit_fields
from persona_lab.simulators.edit_users import EditingUser, make_editing_user
from persona_lab.simulators.personas import Persona, Population, make_population
from persona_lab.simulators.text import edit_cost

MAX_RESPONSE_CHARS = 20_000


class EditEnv(PersonaEnv[dict[str, Any]]):
    """Base of the edit environments; subclasses fix the task.

    Args:
        user: ``"scripted"`` (default), ``"llm"`` or an :class:`EditingUser`.
        backend: the ChatModel (or spec string) the LLM user talks to; unused by the scripted user.
        population: ``"prelude"`` (default), ``"verifiable"``, a YAML/JSON path or a Population.
        user_index: which persona of the population; ``None`` draws one from the reset seed.
        rounds: documents per episode (T; 200 in the paper, the default).
        corpus: ``"builtin"`` (default), ``"hub"`` or a folder of ``<source>.jsonl`` files.
        effort: scripted user: at most this many violated preferences fixed per round.
        noise: scripted user: probability of an incidental unrelated edit.
        population_k: preferences per source for the ``verifiable`` population.
        population_seed: seed of the ``verifiable`` population.
        render_mode: ``None`` or ``"ansi"``.
    """

    default_rounds = 200
    # The public part of ``info`` that the runner hands to agents (everything else is for evaluators).
    feedback_keys: tuple[str, ...] = ("edited_text", "accepted", "cost")

    def __init__(
        self,
        user: str | EditingUser = "scripted",
        backend: ChatModel | str | None = None,
        population: str | Population = "prelude",
        user_index: int | None = None,
        rounds: int | None = None,
        corpus: str = "builtin",
        effort: int | None = None,
        noise: float = 0.0,
        population_k: int = 3,
        population_seed: int = 0,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(user=user, backend=backend, rounds=rounds, render_mode=render_mode)
        if effort is not None and (isinstance(effort, bool) or not isinstance(effort, int) or effort < 1):
            raise ConfigError(f"effort must be a whole number >= 1 (or None for unlimited), got {effort!r}",
                              hint="e.g. --env-arg effort=1")
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0.0 <= noise <= 1.0:
            raise ConfigError(f"noise must be a probability in [0, 1], got {noise!r}", hint="e.g. --env-arg noise=0.1")
        self.user_index = user_index
        self._effort, self._noise = effort, noise
        self._corpus_spec = corpus
        self.corpus: Corpus = load_corpus(self.task, corpus)
        self.sources = tuple(s for s in SOURCES.get(self.task, ()) if s in self.corpus) or tuple(sorted(self.corpus))
        pop_kwargs = {"k": population_k, "seed": population_seed} if population == "verifiable" else {}
        self.population = make_population(population, **pop_kwargs)
        longest = max(len(d.text) for docs in self.corpus.values() for d in docs)
        doc_chars = [d.text for docs in self.corpus.values() for d in docs]
        self.observation_space = spaces.Dict(
            {"document": text_space(max(longest, 1), doc_chars), "round": spaces.Discrete(self.rounds)}
        )
        self.action_space = text_space(MAX_RESPONSE_CHARS)
        self.persona: Persona | None = None
        self._order: list[Document] = []
        self._t = 0
        self._last: dict[str, Any] | None = None

    # --- Gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        index = self.pick_user_index(options, self.user_index)
        self.persona = self.population.persona(int(index), self.task, self.sources)
        self._order = self._document_order()
        self._t = 0
        self._last = None
        return self._observation(), self.reset_info(self._truth(self._order[0]))

    def step(self, action: str) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self.persona is None or self._t >= self.rounds:
            raise RuntimeError("call reset() before step() (and again after the episode ends)")
        if not isinstance(action, str):
            raise TypeError(f"the action must be the response text (str), got {type(action).__name__}")
        doc = self._order[self._t]
        pref = self.persona.preference_for(doc.source)
        feedback = self.user.react(action, pref, self.np_random)
        cost = 0 if feedback.accepted else edit_cost(action, feedback.edited)
        sat = catalog.satisfied(action, pref.ids)
        t = self._t
        self._t += 1
        truncated = self._t >= self.rounds
        info = self.make_info(
            round=t, doc_id=doc.id, action=action, usage=[asdict(u) for u in feedback.usage],
            truth=self._truth(doc), next_truth=None if truncated else self._truth(self._order[self._t]),
            edited_text=feedback.edited, accepted=feedback.accepted, cost=cost, satisfied=sat,
            preference_satisfaction=(sum(sat.values()) / len(sat)) if sat else 1.0,
            **audit_fields(feedback.calls, verdict=feedback.verdict),
        )
        self._last = {"document": doc, "draft": action, **info}
        obs = self._observation() if not truncated else {"document": doc.text, "round": self.rounds - 1}
        return obs, -float(cost), False, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self._last is None:
            return None
        last = self._last
        return (
            f"round {last['round']} ({last['doc_id']}) cost={last['cost']} accepted={last['accepted']}\n"
            f"--- draft ---\n{last['draft']}\n--- edited ---\n{last['edited_text']}\n"
        )

    # --- contract hooks ----------------------------------------------------------------------
    def make_user(self, kind: str | EditingUser, model: ChatModel | None) -> EditingUser:
        return make_editing_user(kind, model, effort=self._effort, noise=self._noise)

    @classmethod
    def episode_metrics(cls, records: Sequence[TransitionRecord]) -> dict[str, float]:
        """``episode/cost`` is the cumulative edit cost (PRELUDE's objective)."""
        costs = [float(r.info["cost"]) for r in records]
        n = len(records)
        return {
            "episode/cost": float(sum(costs)),
            "episode/mean_cost": sum(costs) / n,
            "episode/acceptance_rate": sum(bool(r.info["accepted"]) for r in records) / n,
            "episode/preference_satisfaction": sum(float(r.info["preference_satisfaction"]) for r in records) / n,
            **preference_accuracy(records),
        }

    # --- internals ---------------------------------------------------------------------------

    def _document_order(self) -> list[Document]:
        """PRELUDE's two-stage shuffle: shuffle each source, take the first N of each (cycling when a
        source has fewer), concatenate, shuffle again."""
        per_source = math.ceil(self.rounds / len(self.sources))
        picked: list[Document] = []
        for source in self.sources:
            docs = self.corpus[source]
            perm = self.np_random.permutation(len(docs))
            picked.extend(docs[int(perm[i % len(docs)])] for i in range(per_source))
        order = [picked[int(i)] for i in self.np_random.permutation(len(picked))]
        return order[: self.rounds]

    def _observation(self) -> dict[str, Any]:
        return {"document": self._order[self._t].text, "round": self._t}

    def _truth(self, doc: Document) -> dict[str, Any]:
        assert self.persona is not None
        pref = self.persona.preference_for(doc.source)
        return {"user_id": self.persona.id, "source": doc.source, "preference": pref.statement, "preference_ids": list(pref.ids)}



def preference_accuracy(records: Sequence[TransitionRecord]) -> dict[str, float]:
    """How well the preference the agent *used* (``step_info["used_preference"]``) names the true one,
    in catalog items recognized in its text: precision, recall, and accuracy (the used item set is
    closer, by Jaccard, to its own source's true set than to any other source's: PRELUDE's rule on the
    catalog). An agent that used no preference scores 0 precision and accuracy."""

    def jaccard(a: set[str], b: set[str]) -> float:
        return 1.0 if not a and not b else len(a & b) / len(a | b)

    truths = {r.privileged.get("source"): set(r.privileged.get("preference_ids", ())) for r in records}
    precision = recall = correct = 0.0
    for r in records:
        used = set(catalog.recognize(str(r.agent.get("used_preference") or "")))
        truth = set(r.privileged.get("preference_ids", ()))
        source = r.privileged.get("source")
        precision += len(used & truth) / len(used) if used else 0.0
        recall += len(used & truth) / len(truth) if truth else 1.0
        own = jaccard(used, truth)
        correct += float(bool(used) and all(own > jaccard(used, t) for s, t in truths.items() if s != source))
    n = max(len(records), 1)
    return {"episode/preference_precision": precision / n, "episode/preference_recall": recall / n,
            "episode/preference_accuracy": correct / n}


class EditSummarizationEnv(EditEnv):
    """Summarize documents from five sources; the user's preference depends on the source."""

    task = "summarization"


class EditEmailEnv(EditEnv):
    """Write emails from notes of four sources; the user's preference depends on the source."""

    task = "email"


