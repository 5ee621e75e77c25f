"""Contract checks any persona-lab env must pass (used by the test suite and ``persona-lab check``).

Every check builds the env the way a user does, ``gymnasium.make(env_id)`` with no kwargs, so an env
whose defaults do not satisfy Gymnasium's own checker fails here the moment it is registered.
"""

from __future__ import annotations

import pickle
import warnings
from typing import Any

import gymnasium as gym
from gymnasium.utils.env_checker import check_env

from persona_lab.core.errors import ConfigError
from persona_lab.envs.base import PersonaEnv


def _actions(env: gym.Env, n: int, seed: int) -> list[Any]:
    env.action_space.seed(seed)
    return [env.action_space.sample() for _ in range(n)]


def make_default(env_id: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make(env_id, **kwargs)``, refusing ids that are not registered persona-lab envs."""
    if env_id not in gym.registry:
        import difflib

        close = difflib.get_close_matches(env_id, [k for k in gym.registry if k.startswith("persona_lab/")], n=1)
        raise ConfigError(f"unknown env {env_id!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
                          hint="`persona-lab ls envs` lists them")
    return gym.make(env_id, **kwargs)


def rollout(env_id: str, seed: int, rounds: int = 5, **kwargs: Any) -> list[tuple[Any, float, bool, bool]]:
    """At most ``rounds`` steps with seeded random actions: (obs, reward, terminated, truncated) per step."""
    env = make_default(env_id, **kwargs)
    obs, _ = env.reset(seed=seed)
    out = [(obs, 0.0, False, False)]
    for action in _actions(env, rounds, seed):
        obs, reward, term, trunc, _ = env.step(action)
        out.append((obs, float(reward), term, trunc))
        if term or trunc:
            break
    env.close()
    env.close()  # close() must be safe twice
    return out


def check_registered_env(env_id: str, rounds: int = 5) -> list[str]:
    """Run every contract check on the env made with no kwargs; raises on the first failure, returns
    what passed."""
    passed = []
    env = make_default(env_id)
    if not isinstance(env.unwrapped, PersonaEnv):
        raise AssertionError(f"{env_id}: {type(env.unwrapped).__name__} does not subclass PersonaEnv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env.unwrapped, skip_render_check=True)
    passed.append("gymnasium.utils.env_checker.check_env")
    a, b = rollout(env_id, 123, rounds), rollout(env_id, 123, rounds)
    if repr(a) != repr(b):
        raise AssertionError(f"{env_id}: two rollouts with the same seed differ")
    passed.append(f"same-seed rollouts identical ({len(a) - 1} steps)")
    env.reset(seed=7)
    clone = pickle.loads(pickle.dumps(env))
    act = _actions(env, 1, 7)[0]
    r1 = env.step(act)
    r2 = clone.step(act)
    if repr(r1[:4]) != repr(r2[:4]):
        raise AssertionError(f"{env_id}: a pickled copy steps differently")
    passed.append("pickle round trip steps identically")
    env.close()
    return passed
