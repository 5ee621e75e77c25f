"""FSPO's few-shot personalization env: N of a user's preference pairs, then a new question.

One episode is one verifiable synthetic user (:mod:`persona_lab.simulators.fspo`) of a chosen split
(``train``, ``heldout`` or ``interpolated``) over ``rounds`` of their *eval* questions (questions no
training episode uses). Each round the observation is the episode prompt in the paper's raw-text
format (N shots re-drawn from the user's train-question pairs with the env's RNG, then ``# Task`` and
the question) and the question alone; the action is the answer. An answer written in the
description variant (``## User Description`` ... ``## Preferred Response`` ...) is judged on the part
after the last ``## Preferred Response`` header.

Reward: the share of the user's preference checkers the answer satisfies (judge-free). ``info``
carries each checker's result, the count, the packaged base answer's count for reference, and under
``privileged`` the user's description and preference ids (for evaluators and the oracle only).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from gymnasium import spaces

from persona_lab.core.errors import ConfigError
from persona_lab.core.records import TransitionRecord
from persona_lab.envs.base import PersonaEnv
from persona_lab.envs.edit_env import MAX_RESPONSE_CHARS
from persona_lab.envs.spaces import text_space
from persona_lab.models.base import ChatModel
from persona_lab.simulators import fspo as F

TASK = "fewshot"


@lru_cache(maxsize=4)
def _load(data: str | None, seed: int, answer_sentences: int) -> F.FSPOData:
    if data:
        return F.FSPOData.load(data)
    return F.default_data(seed, answer_sentences)


_CHARSETS: dict[str, str] = {}


def _charset(data: F.FSPOData) -> str:
    """Every character the data's texts use (cached per data set)."""
    key = data.fingerprint()
    if key not in _CHARSETS:
        chars: set[str] = set(F.TASK_INSTRUCTION + F.DESCRIPTION_INSTRUCTION)
        for p in data.pairs:
            chars.update(p.question, p.preferred, p.dispreferred)
        _CHARSETS[key] = "".join(sorted(chars))
    return _CHARSETS[key]


class FewShotPreferenceEnv(PersonaEnv[dict[str, Any]]):
    """Few-shot personalization with verifiable users (FSPO).

    Args:
        user: ``"scripted"`` (the checkers), ``"llm"`` (the checkers give the reward; an LLM judge told
            the user's description adds its yes/no verdict to ``info["llm_verdict"]``, for agreement
            studies), or an object with ``judge(answer, preference_ids, description, question)``.
        backend: the LLM judge's ChatModel (or spec), for ``user="llm"``.
        rounds: questions per episode (default 4; at most the user's eval pairs, then they repeat).
        split: which users: ``heldout`` (default), ``interpolated`` or ``train``.
        shots: preference pairs shown before each question (the paper: 4 or 8).
        description: ask for the user description first (the description variant's instruction).
        data: a folder written by ``persona-lab fspo data``; ``None`` builds the default data in memory.
        data_seed: seed of the default data (ignored with ``data``).
        answer_sentences: the default data's base answers cut to N sentences (0: whole; short CPU runs).
        user_index: which user of the split; ``None`` draws one from the reset seed.
    """

    task = TASK
    feedback_keys: tuple[str, ...] = ()  # the user's verdict is the reward; no public text feedback
    default_rounds = 4

    def __init__(
        self,
        user: Any = "scripted",
        backend: Any = None,
        rounds: int | None = None,
        split: str = "heldout",
        shots: int = 4,
        description: bool = False,
        data: str | None = None,
        data_seed: int = 0,
        answer_sentences: int = 0,
        user_index: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(user=user, backend=backend, rounds=rounds, render_mode=render_mode)
        if split not in F.SPLITS:
            raise ConfigError(f"unknown split {split!r}", hint=f"use one of {F.SPLITS}")
        if shots < 0:
            raise ConfigError(f"shots must be >= 0, got {shots}")
        self.split, self.shots, self.description = split, shots, description
        self.user_index = user_index
        self._data_spec = (data, data_seed, answer_sentences)
        self.data = _load(*self._data_spec)
        self.users = self.data.users_in(split)
        if not self.users:
            raise ConfigError(f"the FSPO data has no {split} users", hint="build data with some users of that split")
        self._by_user = self.data.pairs_by_user
        too_few = [u.id for u in self.users if len(self._by_user[u.id]["train"]) < shots]
        if too_few:
            raise ConfigError(f"users {too_few[:3]} have fewer than {shots} train-question pairs for the shots",
                              hint="use fewer shots or more train_pairs_per_user")
        charset = _charset(self.data)
        longest_pair = max(len(p.question) + len(p.preferred) + len(p.dispreferred) + 80 for p in self.data.pairs)
        longest_q = max(len(p.question) for p in self.data.pairs)
        self.observation_space = spaces.Dict({
            "prompt": text_space(len(F.DESCRIPTION_INSTRUCTION) + 64 + longest_q + shots * longest_pair, charset),
            "question": text_space(longest_q, charset),
        })
        self.action_space = text_space(MAX_RESPONSE_CHARS, charset)
        self.persona: F.FSPOUser | None = None
        self._queries: list[F.PreferencePair] = []
        self._episode: F.Episode | None = None
        self._t = 0
        self._done = True
        self._last: dict[str, Any] | None = None

    # --- Gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        index = self.pick_user_index(options, self.user_index, len(self.users))
        self.persona = self.users[int(index) % len(self.users)]
        evals = self._by_user[self.persona.id]["eval"]
        order = [evals[int(i)] for i in self.np_random.permutation(len(evals))]
        self._queries = [order[t % len(order)] for t in range(self.rounds)]
        self._t, self._done, self._last = 0, False, None
        self._draw()
        return self._observation(), self.reset_info(self._truth())

    def step(self, action: str) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self.persona is None or self._done or self._episode is None:
            raise RuntimeError("call reset() before step() (and again after the episode ends)")
        if not isinstance(action, str):
            raise TypeError(f"the action must be the answer text (str), got {type(action).__name__}")
        persona, query = self.persona, self._episode.query
        answer = F.answer_from_completion(action)
        verdict = self.user.judge(answer, persona.preference_ids, persona.description, query.question)
        base = F.find_question(query.question)
        base_checks = F.CheckerUser().judge(base.answer, persona.preference_ids) if base is not None else None
        truth = self._truth()
        shots = [s.question_id for s in self._episode.shots]
        t = self._t
        self._t += 1
        truncated = self._t >= self.rounds
        self._done = truncated
        if not truncated:
            self._draw()
        info = self.make_info(
            round=t, doc_id=query.question_id, action=action, usage=verdict.usage, truth=truth,
            next_truth=None if truncated else self._truth(),
            question=query.question, checks=dict(verdict.checks), satisfied=verdict.satisfied,
            preference_satisfaction=verdict.share, llm_verdict=verdict.llm,
            base_satisfied=None if base_checks is None else base_checks.satisfied, shot_questions=shots,
            split=self.split,
        )
        self._last = {"answer": answer, **info}
        return self._observation(), float(verdict.share), False, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self._last is None:
            return None
        last = self._last
        marks = " ".join(f"{'+' if ok else '-'}{pid}" for pid, ok in last["checks"].items())
        return f"round {last['round']} ({last['doc_id']}): {marks}\n--- answer ---\n{last['answer']}\n"

    def make_user(self, kind: Any, model: ChatModel | None) -> Any:
        if not isinstance(kind, str):
            return kind
        return F.LLMJudgeUser(model) if kind == "llm" else F.CheckerUser()

    @classmethod
    def episode_metrics(cls, records: Sequence[TransitionRecord]) -> dict[str, float]:
        """Mean checker share, the share of answers meeting every preference, wins over the packaged
        base answer (more checkers satisfied = 1, tie = 0.5), and, with an LLM judge, its yes-rate
        and agreement with the checkers (all satisfied)."""
        infos = [r.info for r in records]
        if not infos:
            return {}
        n = len(infos)
        wins = [1.0 if i["satisfied"] > i["base_satisfied"] else 0.5 if i["satisfied"] == i["base_satisfied"] else 0.0
                for i in infos if i.get("base_satisfied") is not None]
        out = {
            "episode/preference_satisfaction": sum(i["preference_satisfaction"] for i in infos) / n,
            "episode/all_satisfied_rate": sum(i["preference_satisfaction"] == 1.0 for i in infos) / n,
        }
        if wins:
            out["episode/win_rate_vs_base_answer"] = sum(wins) / len(wins)
        judged = [i for i in infos if i.get("llm_verdict") is not None]
        if judged:
            out["episode/llm_yes_rate"] = sum(bool(i["llm_verdict"]) for i in judged) / len(judged)
            out["episode/llm_checker_agreement"] = sum(
                bool(i["llm_verdict"]) == (i["preference_satisfaction"] == 1.0) for i in judged) / len(judged)
        return out

    # --- internals ---------------------------------------------------------------------------
    def _draw(self) -> None:
        assert self.persona is not None
        shots_pool = self._by_user[self.persona.id]["train"]
        query = self._queries[self._t]
        (self._episode,) = F.draw_episodes(shots_pool, self.shots, self.np_random, queries=[query])

    def _observation(self) -> dict[str, Any]:
        assert self._episode is not None
        q = self._episode.query.question
        return {"prompt": F.episode_text(self._episode.shots, q, description=self.description), "question": q}

    def _truth(self) -> dict[str, Any]:
        assert self.persona is not None and self._episode is not None
        u = self.persona
        return {
            "user_id": u.id,
            "preference": u.description,
            "preference_ids": list(u.preference_ids),
            "split": u.split,
            "question_id": self._episode.query.question_id,
        }

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("data", None)  # large and rebuilt from its spec (cached per process)
        state.pop("_by_user", None)
        state.pop("users", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.data = _load(*self._data_spec)
        self.users = self.data.users_in(self.split)
        self._by_user = self.data.pairs_by_user
