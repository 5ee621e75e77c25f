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

import pickle
import string
from typing import Any

import gymnasium as gym
from gymnasium import spaces

from persona_lab.core.errors import ConfigError
from persona_lab.core.seeding import stable_hash
from persona_lab.envs.edit_env import PRIVILEGED
from persona_lab.envs.spaces import BASE_CHARSET, text_space
from persona_lab.models.base import ChatModel
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
_POPULATIONS = ("default", "prelude", "builtin")
_CHARSET = frozenset(BASE_CHARSET)


def _clean(text: str, limit: int) -> str:
    """Cut to ``limit`` characters and replace characters outside the text spaces' charset."""
    text = text[:limit]
    if all(c in _CHARSET for c in text):
        return text
    return "".join(c if c in _CHARSET else ("?" if c not in string.whitespace else " ") for c in text)


class PersuasionEnv(gym.Env[dict[str, Any], str]):
    """The persuader's side of a donation dialogue.

    Args:
        rounds: persuader turns at most (P4G dialogues have about 10).
        user: ``"scripted"`` (default), ``"llm"`` or a Persuadee.
        backend: ChatModel (or spec string) of the LLM persuadee.
        population: ``"default"`` (the built-in persona generator; the runner's ``"prelude"`` default is
            read the same way).
        population_seed: which population; persona ``i`` of it is drawn by ``reset(options={"user_index": i})``.
        noise: scripted persuadee: per-turn noise on the willingness.
        render_mode: ``None`` or ``"ansi"``.
    """

    metadata = {"render_modes": ["ansi"]}
    task = "persuasion"
    feedback_keys: tuple[str, ...] = ("user_reply", "decided", "donation")

    def __init__(
        self,
        rounds: int = 10,
        user: str | Persuadee = "scripted",
        backend: ChatModel | str | None = None,
        population: str = "default",
        population_seed: int = 0,
        noise: float = 0.02,
        render_mode: str | None = None,
    ) -> None:
        if rounds < 1:
            raise ConfigError(f"rounds must be >= 1, got {rounds}")
        if population not in _POPULATIONS:
            raise ConfigError(f"unknown persuadee population {population!r}",
                              hint="Persuasion-v0 has one built-in population: 'default'")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"unknown render_mode {render_mode!r}", hint="use None or 'ansi'")
        self.rounds = rounds
        self.population_seed = population_seed
        self.render_mode = render_mode
        self._user_spec, self._backend, self._noise = user, backend, noise
        self._user: Persuadee | None = None
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
        opening = _clean(self.persuadee().greet(persona, self.np_random), MAX_USER_CHARS)
        self.dialogue = Dialogue(persona, opening, initial_state(persona), (), self.rounds)
        return self._observation(), {PRIVILEGED: {"next": self._truth()}}

    def step(self, action: str) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        d = self.dialogue
        if d is None or d.finished or len(d.exchanges) >= self.rounds:
            raise RuntimeError("call reset() before step() (and again after the episode ends)")
        if not isinstance(action, str):
            raise TypeError(f"the action must be the persuader's message (str), got {type(action).__name__}")
        text = _clean(action, MAX_AGENT_CHARS)
        seed = int(self.np_random.integers(2**63 - 1))
        ex = play_turn(self.persuadee(), d, text, seed)
        ex = type(ex)(ex.agent, _clean(ex.user, MAX_USER_CHARS), ex.state, ex.seed, ex.trace)
        before = d.state
        self.dialogue = d = Dialogue(d.persona, d.opening, d.start, (*d.exchanges, ex), d.budget)
        forced = bool(ex.trace.get("forced_decision"))
        terminated = ex.state.decided and not forced
        truncated = forced or (not terminated and len(d.exchanges) >= self.rounds)
        donation = ex.state.donation if ex.state.decided else None
        info: dict[str, Any] = {
            "turn": len(d.exchanges) - 1,
            "user_reply": ex.user,
            "decided": ex.state.decided,
            "donation": donation,
            "outcome": ("goodbye" if ex.state.ended else "budget" if forced else "decided") if ex.state.decided else "open",
            "strategies": list(detect_strategies(text)),
            "usage": list(ex.trace.get("usage", [])),
            "parse_failed": bool(ex.trace.get("parse_failed", False)),
            "response_hash": stable_hash(action, length=16),
        }
        info[PRIVILEGED] = {"round": {
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
        }}
        if not (terminated or truncated):
            info[PRIVILEGED]["next"] = self._truth()
        reward = float(donation) if donation is not None else 0.0
        return self._observation(), reward, terminated, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self.dialogue is None:
            return None
        d = self.dialogue
        tail = f"\n[donation ${d.donation:.2f}]" if d.finished and d.donation is not None else ""
        return d.render() + tail + "\n"

    def close(self) -> None:
        self._user = None

    # --- internals ---------------------------------------------------------------------------
    def persuadee(self) -> Persuadee:
        """The persuadee simulator (created lazily; an LLM one opens its backend here)."""
        if self._user is None:
            from persona_lab.models import resolve_chat_model

            model = self._backend = resolve_chat_model(self._backend)
            self._user = make_persuadee(self._user_spec, model, noise=self._noise)
        return self._user

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

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_user"] = None  # rebuilt lazily (an LLM persuadee holds a model client)
        backend = state.get("_backend")
        if backend is not None and not isinstance(backend, str):
            try:
                pickle.dumps(backend)
            except Exception:
                state["_backend"] = backend.spec
        return state
