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
