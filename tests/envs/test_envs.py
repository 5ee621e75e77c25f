"""Contract tests over every registered persona_lab/* env (a new env is tested once registered)."""

from __future__ import annotations

import gymnasium as gym
import pytest

import persona_lab  # noqa: F401  (registers the envs)
from persona_lab.testing.contracts import check_registered_env, rollout

ENV_IDS = sorted(k for k in gym.registry if k.startswith("persona_lab/"))


def test_registry_is_not_empty() -> None:
    assert "persona_lab/EditSummarization-v0" in ENV_IDS and "persona_lab/EditEmail-v0" in ENV_IDS


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_env_contract(env_id: str) -> None:
    passed = check_registered_env(env_id, rounds=4)
    assert len(passed) == 3


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_different_seeds_differ(env_id: str) -> None:
    assert repr(rollout(env_id, 1, 4)) != repr(rollout(env_id, 2, 4))


def test_prefeval_env_programmatic_judge_sees_the_question() -> None:
    """An answer that shares no word with the question is unhelpful in the env as in `persona-lab prefeval`."""
    env = gym.make("persona_lab/PrefEval-v0")
    env.reset(seed=0)
    off_topic = ("The weather on distant mountains changes quickly and hikers should always carry extra "
                 "layers, water and a map when they walk long trails in autumn.")
    _, reward, _, _, info = env.step(off_topic)
    assert info["verdict"]["detail"]["ignores_question"] is True
    assert "unhelpful" in info["verdict"]["errors"]
    assert reward == 0.0
