"""Contract checks any persona-lab env must pass (used by the test suite and ``persona-lab check``)."""

from __future__ import annotations

import pickle
import warnings
from typing import Any

import gymnasium as gym
from gymnasium.utils.env_checker import check_env

from persona_lab.core.errors import ConfigError

CONTRACT_KWARGS: dict[str, dict[str, Any]] = {}  # env id -> kwargs that make it cheap and scripted


def contract_kwargs(env_id: str, rounds: int = 5) -> dict[str, Any]:
    kw = {"rounds": rounds}
    kw.update(CONTRACT_KWARGS.get(env_id, {}))
    return kw


def _actions(env: gym.Env, n: int, seed: int) -> list[Any]:
    env.action_space.seed(seed)
    return [env.action_space.sample() for _ in range(n)]


def rollout(env_id: str, seed: int, rounds: int = 5) -> list[tuple[Any, float, bool, bool]]:
    """A short rollout with seeded random actions: (obs, reward, terminated, truncated) per step."""
    env = gym.make(env_id, **contract_kwargs(env_id, rounds))
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
    """Run every contract check; raises on the first failure, returns what passed."""
    if env_id not in gym.registry:
        import difflib

        close = difflib.get_close_matches(env_id, [k for k in gym.registry if k.startswith("persona_lab/")], n=1)
        raise ConfigError(f"unknown env {env_id!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
                          hint="`persona-lab ls envs` lists them")
    passed = []
    env = gym.make(env_id, **contract_kwargs(env_id, rounds))
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
