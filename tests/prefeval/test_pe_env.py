"""``persona_lab/PrefEval-v0``: Gymnasium's checker, same-seed determinism, pickling, rewards."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.error import ResetNeeded
from gymnasium.utils.env_checker import check_env

from persona_lab.core.errors import ConfigError
from persona_lab.envs.base import PRIVILEGED
from persona_lab.envs.prefeval_env import PrefEvalEnv
from persona_lab.testing import FakeChatModel

ENV_ID = "persona_lab/PrefEval-v0"
GOOD = "For a long hike, pack sunflower-seed trail mix, dried fruit and a granola bar; they are light and keep you going."


def test_check_env(tiny_data: Path) -> None:
    env = PrefEvalEnv(data_dir=tiny_data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env, skip_render_check=True)
    assert [it.item_id for it in env.items] == ["snacks/0", "snacks/1"]  # programmatic judge: verifiable items only


def _rollout(env: PrefEvalEnv, seed: int) -> tuple:
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    step = env.step(env.action_space.sample())
    return obs, info["item_id"], info["form"], info["turns"], step[1:4]


def test_same_seed_same_episode_and_seeds_vary(tiny_data: Path) -> None:
    a, b = PrefEvalEnv(data_dir=tiny_data), PrefEvalEnv(data_dir=tiny_data)
    assert _rollout(a, 5) == _rollout(b, 5)
    picks = {_rollout(a, s)[1:4] for s in range(30)}
    assert len(picks) > 6


def test_observation_reward_and_info(tiny_data: Path) -> None:
    env = PrefEvalEnv(data_dir=tiny_data, forms=("explicit",), turns=4, render_mode="ansi")
    obs, info = env.reset(seed=0, options={"item_id": "snacks/0"})
    assert env.observation_space.contains(obs)
    assert obs.startswith("[system]\nYou are a helpful assistant.\n\n[user]\nI am allergic to peanuts")
    assert obs.count("[user]\nfiller") == 4 and obs.endswith("Please answer in no more than 300 words.")
    assert [m["role"] for m in info["messages"]][:3] == ["system", "user", "assistant"] and info["paper_turns"] == 6
    assert "peanut" in info[PRIVILEGED]["next"]["verifiable"]["forbid"]
    obs2, reward, terminated, truncated, info2 = env.step(GOOD)
    assert (reward, terminated, truncated) == (1.0, True, False) and obs2 == obs
    assert info2["verdict"]["judge"] == "programmatic" and info2["judge_status"] == "judged"
    assert env.render().endswith(GOOD)
    with pytest.raises(ResetNeeded):
        env.step(GOOD)
    env.reset(seed=0, options={"item_id": "snacks/0"})
    assert env.step("Bring a peanut butter sandwich and some salted peanuts for a quick snack on the trail.")[1] == 0.0
    env.close()
    env.close()


def test_pickle_round_trip_steps_identically(tiny_data: Path) -> None:
    env = PrefEvalEnv(data_dir=tiny_data)
    env.reset(seed=11)
    clone = pickle.loads(pickle.dumps(env))
    assert env.step(GOOD)[:4] == clone.step(GOOD)[:4]
    assert pickle.loads(pickle.dumps(env)).reset(seed=3)[0] == env.reset(seed=3)[0]


def test_llm_judge_at_make(tiny_data: Path) -> None:
    judge = FakeChatModel(lambda r: '{"answer": "no"}' if "goes against" in r.messages[-1].content else '{"answer": "yes"}')
    env = PrefEvalEnv(judge=judge, data_dir=tiny_data, forms=("implicit-persona",), turns=(0,))
    assert len(env.items) == 3  # every item, verifiable or not
    env.reset(seed=1)
    _, reward, *_, info = env.step("Since you avoid that, here is a plan: walk the coast path and visit the gardens.")
    assert reward == 1.0 and info["verdict"]["judge"] == "llm" and judge.calls == 2
    clone = pickle.loads(pickle.dumps(env))  # the judge model is re-opened lazily from its spec
    assert clone._judge_model is None and clone._args["judge"] == "fake:fake"


def test_needs_judgeable_items(tiny_data: Path, tmp_path: Path, make_dataset) -> None:
    root = make_dataset(tmp_path / "plain", {"travel": []})
    (root / "filler.json").write_bytes((tiny_data / "filler.json").read_bytes())
    with pytest.raises(ConfigError, match="verifiable"):
        PrefEvalEnv(data_dir=root)
    with pytest.raises(ConfigError, match="turns"):
        PrefEvalEnv(data_dir=tiny_data, turns=(100,))


@pytest.mark.skipif(ENV_ID not in gym.registry, reason=f"{ENV_ID} is not registered yet")
def test_registered_make(tiny_data: Path) -> None:
    env = gym.make(ENV_ID, data_dir=str(tiny_data))
    obs, info = env.reset(seed=2)
    assert isinstance(obs, str) and info["item_id"].startswith("snacks/")
