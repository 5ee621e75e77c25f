"""``PersonaEnv``: everything the runner relies on from an environment, stated once.

Gymnasium's ``Env`` fixes ``reset``/``step``/``render``/``close``. A persona-lab env adds a small,
explicit contract so one runner can drive every world, and a new world needs no edits elsewhere:

* class attributes ``task`` (which agents can act in it), ``feedback_keys`` (the public part of
  ``info`` that agents may learn from) and ``default_rounds`` (the episode length when the run does
  not ask for one);
* the standard constructor kwargs ``user``, ``backend``, ``rounds`` and ``render_mode``, validated
  here once, so the runner passes only these (plus the user's ``--env-arg`` values);
* a simulated user built lazily from the :meth:`PersonaEnv.make_user` hook on first use (never in
  the constructor, so ``make`` is cheap and a pickled env reopens its model on demand);
* :meth:`PersonaEnv.make_info`, the one writer of ``info``: ``round``, ``doc_id``, ``usage``,
  ``response_hash`` and ``privileged = {"round": truth of this round (with "user_id"), "next":
  truth the oracle needs for the next action}``;
* :meth:`PersonaEnv.episode_metrics`, per-episode metrics from the run records, with namespaced keys
  (``episode/cost``, ``episode/donation``, ...).
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import gymnasium as gym

from persona_lab.core.errors import ConfigError
from persona_lab.core.records import TransitionRecord
from persona_lab.core.seeding import stable_hash
from persona_lab.models.base import ChatModel

PRIVILEGED = "privileged"
USER_KINDS = ("scripted", "llm")

ObsT = TypeVar("ObsT")


class PersonaEnv(gym.Env[ObsT, str], Generic[ObsT]):
    """Base of every persona-lab environment (see the module docstring for the contract).

    Args:
        user: ``"scripted"`` (default), ``"llm"`` (talks to ``backend``) or a ready user object.
        backend: the ChatModel (or a spec string, opened lazily with the response cache) of the LLM user.
        rounds: agent turns per episode; ``None`` takes the env's ``default_rounds``.
        render_mode: ``None`` or ``"ansi"``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"]}
    task: ClassVar[str] = ""
    feedback_keys: tuple[str, ...] = ()
    default_rounds: ClassVar[int] = 1
    # Constructor kwargs that take a model (e.g. FLR's ``scorer``, PrefEval's ``judge``): the runner
    # opens spec strings given there itself, with the response cache and a usage meter of their own.
    model_kwargs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, user: Any = "scripted", backend: ChatModel | str | None = None,
                 rounds: int | None = None, render_mode: str | None = None) -> None:
        name = type(self).__name__
        if rounds is None:
            rounds = self.default_rounds
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            raise ConfigError(f"{name}: rounds must be a whole number >= 1, got {rounds!r}",
                              hint=f"omit it for the default ({self.default_rounds})")
        if isinstance(user, str) and user not in USER_KINDS:
            raise ConfigError(f"{name}: unknown user kind {user!r}", hint=f"use one of {list(USER_KINDS)}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"{name}: unknown render_mode {render_mode!r}",
                              hint=f"use None or one of {self.metadata['render_modes']}")
        if backend is not None and not isinstance(backend, str) and not hasattr(backend, "generate"):
            raise ConfigError(f"{name}: backend must be a ChatModel or a spec string, got {type(backend).__name__}",
                              hint="e.g. backend='hf:smollm2-135m'")
        self.rounds = rounds
        self.render_mode = render_mode
        self._user_spec = user
        self._backend = backend
        self._user: Any = None

    # --- the simulated user ---------------------------------------------------------------------
    def make_user(self, kind: Any, model: ChatModel | None) -> Any:
        """Build this world's simulated user of ``kind`` (``"scripted"``, ``"llm"`` or an object)."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_user(kind, model)")

    @property
    def user(self) -> Any:
        """The simulated user, built on first use (an LLM user opens its backend here)."""
        if self._user is None:
            from persona_lab.models import resolve_chat_model

            needs_model = self._user_spec == "llm"
            model = self._backend = resolve_chat_model(self._backend) if needs_model else self._backend
            self._user = self.make_user(self._user_spec, model)
        return self._user

    @property
    def backend(self) -> ChatModel | str | None:
        """The LLM user's model (or its spec until first use)."""
        return self._backend

    def close(self) -> None:
        """Drop the simulated user (safe to call twice)."""
        self._user = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without live models: the user is rebuilt lazily, a live client reopens from its spec."""
        state = self.__dict__.copy()
        state["_user"] = None
        backend = state.get("_backend")
        if backend is not None and not isinstance(backend, str):
            try:
                pickle.dumps(backend)
            except Exception:
                state["_backend"] = backend.spec
        return state

    def pick_user_index(self, options: Mapping[str, Any] | None, default: int | None, n: int = 2**31 - 1) -> int:
        """Which user an episode simulates: ``options["user_index"]`` (the runner's episode number),
        else the env's fixed ``default``, else one drawn from ``np_random`` in ``[0, n)``."""
        index = (options or {}).get("user_index", default)
        return int(self.np_random.integers(0, n)) if index is None else int(index)

    # --- info -----------------------------------------------------------------------------------
    @staticmethod
    def make_info(*, round: int, doc_id: str | None, action: str | None, usage: Sequence[Mapping[str, Any]] = (),
                  truth: Mapping[str, Any] | None = None, next_truth: Mapping[str, Any] | None = None,
                  **fields: Any) -> dict[str, Any]:
        """The ``info`` of one step, in the one shape every reader expects.

        Args:
            round: the agent turn this step answered.
            doc_id: what the turn was about (document, question, scenario id).
            action: the agent's text (hashed into ``response_hash``).
            usage: the simulated user's model usage for this step.
            truth: privileged ground truth of this round; must carry ``user_id``.
            next_truth: privileged truth for the next action (the oracle's input); ``None`` at the end.
            fields: the world's own public and evaluator fields.
        """
        info: dict[str, Any] = {"round": round, "doc_id": doc_id, **fields, "usage": [dict(u) for u in usage]}
        if action is not None:
            info["response_hash"] = stable_hash(action, length=16)
        privileged: dict[str, Any] = {"round": dict(truth or {})}
        if next_truth is not None:
            privileged["next"] = dict(next_truth)
        info[PRIVILEGED] = privileged
        return info

    @staticmethod
    def reset_info(next_truth: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
        """The ``info`` of ``reset``: the truth the oracle needs for the first action."""
        return {**fields, PRIVILEGED: {"next": dict(next_truth)}}

    # --- metrics ----------------------------------------------------------------------------------
    @classmethod
    def episode_metrics(cls, records: Sequence[TransitionRecord]) -> dict[str, float]:
        """Metrics of one finished episode from its records (sorted by round). Override per world;
        keys are namespaced ``episode/...``. The default: the return and the mean reward."""
        rewards = [float(r.reward) for r in records]
        return {"episode/return": sum(rewards), "episode/mean_reward": sum(rewards) / len(rewards),
                "episode/rounds": float(len(records))}
