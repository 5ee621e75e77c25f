"""``persona_lab/Persuasion-v0``: persuade a persuadee with a hidden persona to donate (PersuasionForGood).

The persuadee greets; each step the agent (the persuader) writes one turn and the persuadee replies.
The episode *terminates* when the persuadee decides on its own (typically when asked) or says goodbye,
and is *truncated* when the ``rounds`` budget of persuader turns runs out — the persuadee then decides
on the spot. The reward is 0 until the decision and then the donation in dollars, in [0, 2].

Observation: the dialogue so far as text, the persuadee's last message, the turn index and the turns
left. ``info["privileged"]["round"]`` holds the persona and the hidden state change of the step
(willingness before/after, objections answered, strategies recognized) for analysis;
``info["privileged"]["next"]`` holds the persona and current state for the oracle. The finished
dialogue is :attr:`PersuasionEnv.dialogue`, a value that
:func:`persona_lab.simulators.persuasion.regenerate` can branch from any turn.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

from gymnasium import spaces

from persona_lab.core.errors import ConfigError
from persona_lab.core.records import TransitionRecord
from persona_lab.envs.base import PersonaEnv
from persona_lab.envs.spaces import BASE_CHARSET, text_space
from persona_lab.models.base import ChatModel
from persona_lab.simulators.audit import INFO_KEY as USER_CALLS
from persona_lab.simulators.persuasion import (
    Dialogue,
    Persuadee,
    detect_strategies,
    initial_state,
    make_persuadee,
    persona_for_index,
    play_turn,
    sample_persona,
)

MAX_AGENT_CHARS = 2_000
MAX_USER_CHARS = 1_000
_POPULATIONS = ("default", "builtin")
_CHARSET = frozenset(BASE_CHARSET)


def _clean(text: str, limit: int) -> str:
    """Cut to ``limit`` characters and replace characters outside the text spaces' charset."""
    text = text[:limit]
    if all(c in _CHARSET for c in text):
        return text
    return "".join(c if c in _CHARSET else ("?" if c not in string.whitespace else " ") for c in text)


class PersuasionEnv(PersonaEnv[dict[str, Any]]):
    """The persuader's side of a donation dialogue.

    Args:
        rounds: persuader turns at most (default 10; P4G dialogues have about 10).
        user: ``"scripted"`` (default), ``"llm"`` or a Persuadee.
        backend: ChatModel (or spec string) of the LLM persuadee.
        population: ``"default"`` (the built-in persona generator).
        population_seed: which population; persona ``i`` of it is drawn by ``reset(options={"user_index": i})``.
        noise: scripted persuadee: per-turn noise on the willingness.
        render_mode: ``None`` or ``"ansi"``.
    """

    task = "persuasion"
    feedback_keys: tuple[str, ...] = ("user_reply", "decided", "donation")
    default_rounds = 10

    def __init__(
        self,
        rounds: int | None = None,
        user: str | Persuadee = "scripted",
        backend: ChatModel | str | None = None,
        population: str = "default",
        population_seed: int = 0,
        noise: float = 0.02,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(user=user, backend=backend, rounds=rounds, render_mode=render_mode)
        if population not in _POPULATIONS:
            raise ConfigError(f"unknown persuadee population {population!r}",
                              hint="Persuasion-v0 has one built-in population: 'default'")
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0.0 <= noise <= 1.0:
            raise ConfigError(f"noise must be in [0, 1], got {noise!r}", hint="e.g. --env-arg noise=0.05")
        self.population_seed = population_seed
        self._noise = noise
        rounds = self.rounds
        turn_chars = MAX_AGENT_CHARS + MAX_USER_CHARS + 32
        self.observation_space = spaces.Dict({
            "dialogue": text_space(MAX_USER_CHARS + 16 + rounds * turn_chars),
            "user": text_space(MAX_USER_CHARS),
            "turn": spaces.Discrete(rounds + 1),
            "turns_left": spaces.Discrete(rounds + 1),
        })
        self.action_space = text_space(MAX_AGENT_CHARS)
        self.dialogue: Dialogue | None = None

    # --- Gymnasium API -----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """A new persuadee: ``options["user_index"]`` picks persona i of the population, else one is drawn."""
        super().reset(seed=seed)
        options = options or {}
        index = options.get("user_index")
        if index is None:
            persona = sample_persona(self.np_random, f"persuadee-drawn-{int(self.np_random.integers(2**31 - 1))}")
        else:
            persona = persona_for_index(int(index), self.population_seed)
        opening = _clean(self.user.greet(persona, self.np_random), MAX_USER_CHARS)
        self.dialogue = Dialogue(persona, opening, initial_state(persona), (), self.rounds)
        return self._observation(), self.reset_info(self._truth())

    def step(self, action: str) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        d = self.dialogue
        if d is None or d.finished or len(d.exchanges) >= self.rounds:
            raise RuntimeError("call reset() before step() (and again after the episode ends)")
        if not isinstance(action, str):
            raise TypeError(f"the action must be the persuader's message (str), got {type(action).__name__}")
        text = _clean(action, MAX_AGENT_CHARS)
        seed = int(self.np_random.integers(2**63 - 1))
        ex = play_turn(self.user, d, text, seed)
        ex = type(ex)(ex.agent, _clean(ex.user, MAX_USER_CHARS), ex.state, ex.seed, ex.trace)
        before = d.state
        self.dialogue = d = Dialogue(d.persona, d.opening, d.start, (*d.exchanges, ex), d.budget)
        forced = bool(ex.trace.get("forced_decision"))
        terminated = ex.state.decided and not forced
        truncated = forced or (not terminated and len(d.exchanges) >= self.rounds)
        donation = ex.state.donation if ex.state.decided else None
        t = len(d.exchanges) - 1
        truth = {
            "user_id": d.persona.id,
            "persona": d.persona.to_dict(),
            "willingness_before": before.willingness,
            "willingness_after": ex.state.willingness,
            "delta": round(ex.state.willingness - before.willingness, 4),
            "answered": list(ex.trace.get("answered", [])),
            "strategies": list(ex.trace.get("strategies", [])),
            "asked": bool(ex.trace.get("asked", False)),
            "open_objections": list(ex.state.open_objections),
            "state": ex.state.to_dict(),
            "seed": seed,
        }
        info = self.make_info(
            round=t, doc_id=f"{d.persona.id}/turn-{t}", action=action, usage=list(ex.trace.get("usage", [])),
            truth=truth, next_truth=None if (terminated or truncated) else self._truth(),
            turn=t,
            user_reply=ex.user,
            decided=ex.state.decided,
            donation=donation,
            outcome=("goodbye" if ex.state.ended else "budget" if forced else "decided") if ex.state.decided else "open",
            strategies=list(detect_strategies(text)),
            parse_failed=bool(ex.trace.get("parse_failed", False)),
            user_calls=list(ex.trace.get(USER_CALLS, [])),
        )
        reward = float(donation) if donation is not None else 0.0
        return self._observation(), reward, terminated, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self.dialogue is None:
            return None
        d = self.dialogue
        tail = f"\n[donation ${d.donation:.2f}]" if d.finished and d.donation is not None else ""
        return d.render() + tail + "\n"

    # --- contract hooks ----------------------------------------------------------------------
    def make_user(self, kind: str | Persuadee, model: ChatModel | None) -> Persuadee:
        return make_persuadee(kind, model, noise=self._noise)

    def persuadee(self) -> Persuadee:
        """The persuadee simulator (the simulated user; an LLM one opens its backend on first use)."""
        return self.user

    @classmethod
    def episode_metrics(cls, records: Sequence[TransitionRecord]) -> dict[str, float]:
        """One persuadee: ``donation`` in dollars (its mean over episodes is the mean donation),
        ``donation_rate`` (1 when more than $0), ``turns`` used, ``early_decision`` (decided before the
        budget ran out), ``goodbye`` (left without being asked), ``parse_failure_rate`` (LLM persuadee turns
        whose hidden lines could not be read) and, from the privileged trace, ``final_willingness`` and
        ``willingness_gain`` (final minus initial hidden willingness)."""
        last = records[-1]
        donation = last.info.get("donation")
        donation = float(donation) if donation is not None else 0.0
        out = {
            "episode/donation": donation,
            "episode/donation_rate": float(donation > 0),
            "episode/turns": float(len(records)),
            "episode/early_decision": float(last.info.get("outcome") in ("decided", "goodbye")),
            "episode/goodbye": float(last.info.get("outcome") == "goodbye"),
            "episode/parse_failure_rate": sum(bool(r.info.get("parse_failed")) for r in records) / len(records),
        }
        first, final = records[0].privileged, last.privileged
        if "willingness_after" in final and "willingness_before" in first:
            out["episode/final_willingness"] = float(final["willingness_after"])
            out["episode/willingness_gain"] = float(final["willingness_after"]) - float(first["willingness_before"])
        return out

    # --- internals ---------------------------------------------------------------------------

    def _observation(self) -> dict[str, Any]:
        d = self.dialogue
        assert d is not None
        last = d.exchanges[-1].user if d.exchanges else d.opening
        t = len(d.exchanges)
        return {"dialogue": d.render(), "user": last, "turn": t, "turns_left": self.rounds - t}

    def _truth(self) -> dict[str, Any]:
        d = self.dialogue
        assert d is not None
        return {"user_id": d.persona.id, "persona": d.persona.to_dict(), "description": d.persona.describe(),
                "state": d.state.to_dict()}
