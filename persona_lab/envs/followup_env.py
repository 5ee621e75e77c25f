"""Multi-turn assistance with follow-up feedback: the user's next turn is the feedback.

One episode is one user (a :class:`~persona_lab.simulators.followup.FollowUpPersona`: catalog
preferences about how answers are written, a topic, and a goal of N satisfactory answers). The user
asks; the agent answers; the user writes a follow-up (a reaction, then the next question or the same
one again) that becomes the next turn. The episode *terminates* when the goal is met and is
*truncated* when ``rounds`` answers have been given.

Observation: ``{"conversation": text of every turn so far under [user]/[assistant] headers,
"message": the latest user message, "turn": index}``. Action: the answer text.

Rewards (``reward_mode``):
- ``"followup"`` (default): +1 when the user's follow-up is positive, -1 when negative.
- ``"flr"``: follow-up likelihood as reward (:mod:`persona_lab.simulators.followup_flr`) under ``scorer``.

``info`` carries the follow-up, its class, the dimension it is about, the judge-free checks of the
answer, which preferences it satisfied, goal progress, FLR when a scorer is set, usage, and under
:data:`~persona_lab.envs.base.PRIVILEGED` the persona (for evaluators and the oracle only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from gymnasium import spaces

from persona_lab.core.errors import ConfigError
from persona_lab.core.messages import Message
from persona_lab.core.records import TransitionRecord
from persona_lab.envs.base import PersonaEnv
from persona_lab.envs.edit_env import MAX_RESPONSE_CHARS
from persona_lab.envs.spaces import text_space
from persona_lab.models.base import ChatModel
from persona_lab.simulators.audit import audit_fields
from persona_lab.simulators.followup import (
    MAX_USER_CHARS,
    POSITIVE,
    TOPICS,
    FollowUpPersona,
    FollowUpState,
    FollowUpUser,
    assess,
    followup_list,
    make_followup_persona,
    make_followup_user,
    opening_message,
    render_conversation,
)
from persona_lab.simulators.personas import Population

REWARD_MODES = ("followup", "flr")
_HEADER_CHARS = 32  # "[assistant]\n" and the blank lines between turns, with room to spare


class FollowUpEnv(PersonaEnv[dict[str, Any]]):
    """Multi-turn assistance; the user's follow-up is the feedback.

    Args:
        user: ``"scripted"`` (default), ``"llm"`` or a :class:`FollowUpUser`.
        backend: the ChatModel (or spec) the LLM user talks to; unused by the scripted user.
        population: ``"verifiable"`` (default), ``"prelude"``, a YAML/JSON path or a Population
            (see :func:`~persona_lab.simulators.followup.make_followup_persona`).
        user_index: which persona; ``None`` draws one from the reset seed.
        rounds: answers per episode (the turn budget; default 8).
        reward_mode: ``"followup"`` or ``"flr"``.
        scorer: ChatModel with ``score`` or spec (``hf:<model>`` or ``openai:<model>@<url>``) for FLR; needed by ``"flr"``, and
            when given in ``"followup"`` mode FLR is still computed and reported in ``info``.
        flr_context: messages before each follow-up that FLR conditions on (the last user message
            and the answer by default; ``None`` keeps the whole conversation).
        goal_answers: satisfactory answers that end an episode (``None``: 2-4, drawn per user).
        restate: scripted user: restate the violated preference after a preference failure.
        classify: LLM user: ``"self"`` (it labels its own follow-up) or ``"prompt"`` (separate call).
        population_k: preferences per user for the ``verifiable`` population.
        population_seed: seed of the ``verifiable`` population.
        render_mode: ``None`` or ``"ansi"``.
    """

    task = "followup"
    feedback_keys: tuple[str, ...] = ("followup", "followup_class")
    default_rounds = 8
    model_kwargs = ("scorer",)

    def __init__(
        self,
        user: str | FollowUpUser = "scripted",
        backend: ChatModel | str | None = None,
        population: str | Population = "verifiable",
        user_index: int | None = None,
        rounds: int | None = None,
        reward_mode: str = "followup",
        scorer: Any = None,
        flr_context: int | None = 2,
        goal_answers: int | None = None,
        restate: bool = False,
        classify: str = "self",
        population_k: int = 2,
        population_seed: int = 0,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(user=user, backend=backend, rounds=rounds, render_mode=render_mode)
        if reward_mode not in REWARD_MODES:
            raise ConfigError(f"unknown reward_mode {reward_mode!r}", hint=f"use one of {REWARD_MODES}")
        if reward_mode == "flr" and scorer is None:
            raise ConfigError("reward_mode='flr' needs a scorer",
                              hint="pass scorer=hf:<model> or openai:<model>@<url> (e.g. --env-arg scorer=hf:smollm2-135m)")
        if flr_context is not None and flr_context < 2:
            raise ConfigError(f"flr_context must be >= 2 or None, got {flr_context}",
                              hint="FLR needs at least the user's message and the answer")
        if classify not in ("self", "prompt"):
            raise ConfigError(f"unknown classify mode {classify!r}", hint="use 'self' or 'prompt'")
        self.user_index = user_index
        self.reward_mode, self.flr_context = reward_mode, flr_context
        self.goal_answers = goal_answers
        self._scorer = scorer
        self._restate, self._classify = restate, classify
        self._population = population
        self._population_k, self._population_seed = population_k, population_seed
        rounds = self.rounds
        fixed = [text for _, _, text in followup_list()] + [q.text for t in TOPICS for q in t.questions]
        turn_chars = MAX_RESPONSE_CHARS + MAX_USER_CHARS + 2 * _HEADER_CHARS
        self.observation_space = spaces.Dict({
            "conversation": text_space(MAX_USER_CHARS + _HEADER_CHARS + rounds * turn_chars, fixed),
            "message": text_space(MAX_USER_CHARS, fixed),
            "turn": spaces.Discrete(rounds),
        })
        self.action_space = text_space(MAX_RESPONSE_CHARS)
        self.persona: FollowUpPersona | None = None
        self.state = FollowUpState()
        self.messages: list[Message] = []
        self._t = 0
        self._done = True
        self._last: dict[str, Any] | None = None

    # --- Gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        index = self.pick_user_index(options, self.user_index)
        self.persona = make_followup_persona(
            self._population, int(index), goal_answers=self.goal_answers,
            population_k=self._population_k, population_seed=self._population_seed,
        )
        self.state = FollowUpState()
        self.messages = [Message("user", opening_message(self.persona))]
        self._t, self._done, self._last = 0, False, None
        return self._observation(), self.reset_info(self._truth())

    def step(self, action: str) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self.persona is None or self._done:
            raise RuntimeError("call reset() before step() (and again after the episode ends)")
        if not isinstance(action, str):
            raise TypeError(f"the action must be the answer text (str), got {type(action).__name__}")
        persona, before = self.persona, self.state
        question = persona.question(before.answered)
        truth = self._truth()
        conversation = (*self.messages, Message("assistant", action))
        result = assess(action, question, persona.preference.ids)
        reply, self.state = self.user.respond(persona, before, conversation, self.np_random)
        extra: dict[str, Any] = {}
        if self._scorer is not None:
            flr = self._flr(conversation)
            extra.update(flr=flr.flr, flr_by_dimension=flr.by_dimension)
        reward = extra["flr"] if self.reward_mode == "flr" else (1.0 if reply.label == POSITIVE else -1.0)
        self.messages = [*conversation, Message("user", reply.text)]
        t = self._t
        self._t += 1
        terminated = bool(reply.goal_met)
        truncated = not terminated and self._t >= self.rounds
        self._done = terminated or truncated
        info = self.make_info(
            round=t, doc_id=question.id, action=action, usage=[asdict(u) for u in reply.usage],
            truth=truth, next_truth=None if self._done else self._truth(),
            turn=t,
            question=question.text,
            followup=reply.text,
            utterance=reply.utterance,
            followup_class=reply.label,
            dimension=reply.dimension,
            classified_by=reply.classified_by,
            satisfactory=reply.satisfactory,
            checks=dict(result.checks),
            satisfied=dict(result.satisfied),
            preference_satisfaction=(sum(result.satisfied.values()) / len(result.satisfied)) if result.satisfied else 1.0,
            goal_progress=self.state.answered,
            goal_answers=persona.goal_answers,
            goal_met=reply.goal_met,
            **extra,
            **audit_fields(reply.calls),
        )
        self._last = {"answer": action, **info}
        return self._observation(), float(reward), terminated, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self._last is None:
            return None
        last = self._last
        return (f"turn {last['turn']} ({last['doc_id']}) {last['followup_class']} ({last['dimension']})\n"
                f"--- answer ---\n{last['answer']}\n--- follow-up ---\n{last['followup']}\n")

    # --- contract hooks ----------------------------------------------------------------------
    def make_user(self, kind: str | FollowUpUser, model: ChatModel | None) -> FollowUpUser:
        return make_followup_user(kind, model, restate=self._restate, classify=self._classify)

    @classmethod
    def episode_metrics(cls, records: Sequence[TransitionRecord]) -> dict[str, float]:
        """One user's episode: ``positivity_rate`` (share of positive follow-ups), ``mean_reward`` (+-1,
        or FLR in ``flr`` mode), ``mean_flr`` (where computed), ``goal_rate`` (1 when the goal was met),
        ``turns_to_goal`` (when met), ``preference_satisfaction`` (mean share of the user's catalog
        preferences met) and ``content_pass_rate`` (answers passing the four content checks)."""
        n = len(records)
        infos = [r.info for r in records]
        out = {
            "episode/positivity_rate": sum(i["followup_class"] == "positive" for i in infos) / n,
            "episode/mean_reward": sum(float(r.reward) for r in records) / n,
            "episode/goal_rate": float(any(i.get("goal_met") for i in infos)),
            "episode/preference_satisfaction": sum(i["preference_satisfaction"] for i in infos) / n,
            "episode/content_pass_rate": sum(
                all(i["checks"][d] for d in ("understanding", "relevance", "correctness", "informativeness"))
                for i in infos
            ) / n,
        }
        flrs = [float(i["flr"]) for i in infos if i.get("flr") is not None]
        if flrs:
            out["episode/mean_flr"] = sum(flrs) / len(flrs)
        met = [k for k, i in enumerate(infos) if i.get("goal_met")]
        if met:
            out["episode/turns_to_goal"] = float(met[0] + 1)
        return out

    # --- internals ---------------------------------------------------------------------------

    def _flr(self, conversation: tuple[Message, ...]) -> Any:
        from persona_lab.simulators.followup_flr import (  # light: core, models, lists
            as_scorer,
            follow_up_likelihood_reward,
        )

        scorer = as_scorer(self._scorer)  # a spec string opens once per process, not once per env
        context = conversation if self.flr_context is None else conversation[-self.flr_context :]
        return follow_up_likelihood_reward(scorer, context)

    def _observation(self) -> dict[str, Any]:
        return {
            "conversation": render_conversation(self.messages),
            "message": self.messages[-1].content,
            "turn": min(self._t, self.rounds - 1),
        }

    def _truth(self) -> dict[str, Any]:
        assert self.persona is not None
        p = self.persona
        return {
            "user_id": p.id,
            "preference": p.preference.statement,
            "preference_ids": list(p.preference.ids),
            "question": p.question(self.state.answered).text,
            "goal_answers": p.goal_answers,
            "answered": self.state.answered,
            "persona": p.to_dict(),
        }
