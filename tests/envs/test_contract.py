"""The env contract, parametrized over the registries (as Gymnasium does for its envs): a new env,
agent or simulated user is tested here the moment it is registered."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import pytest

import persona_lab  # noqa: F401  (registers the envs)
from persona_lab.agents import AGENTS, create_agent
from persona_lab.core.records import read_records
from persona_lab.envs.base import PRIVILEGED, PersonaEnv
from persona_lab.eval.runner import RunConfig, Runner, env_class
from persona_lab.testing import FakeChatModel

ENV_IDS = sorted(k for k in gym.registry if k.startswith("persona_lab/"))
SHORT = 3  # rounds of a contract episode (or the env's own length when shorter)


def _runner_cases() -> list[tuple[str, str]]:
    cases = []
    for env_id in ENV_IDS:
        task = env_class(env_id).task
        cases += [(env_id, agent) for agent in ("no-learning", "oracle") if AGENTS.supports(agent, task)]
    return cases


def test_every_env_has_a_no_learning_agent() -> None:
    for env_id in ENV_IDS:
        assert AGENTS.supports("no-learning", env_class(env_id).task), env_id


@pytest.mark.parametrize(("env_id", "agent"), _runner_cases())
def test_one_short_episode_through_the_runner(env_id: str, agent: str, tmp_path: Path) -> None:
    cls = env_class(env_id)
    rounds = SHORT if cls.default_rounds > SHORT else None
    result = Runner(RunConfig(env_id=env_id, agent=agent, rounds=rounds), tmp_path, cache=False).run()
    records = read_records(tmp_path)
    assert records and [r.round for r in records] == list(range(len(records)))
    assert len(records) <= (rounds or cls.default_rounds)
    assert all(r.user_id is not None for r in records), "info['privileged']['round'] must carry user_id"
    assert all(r.env_id == env_id and isinstance(r.action, str) for r in records)
    metrics = result.summary["metrics"]
    assert metrics and all(k.startswith("episode/") for k in metrics), metrics
    assert result.summary["rounds"] == (rounds or cls.default_rounds)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_info_has_the_contract_keys(env_id: str) -> None:
    env = gym.make(env_id).unwrapped
    _, info = env.reset(seed=0)
    assert set(info[PRIVILEGED]) == {"next"} and "user_id" in info[PRIVILEGED]["next"]
    env.action_space.seed(0)
    _, _, term, trunc, info = env.step(env.action_space.sample())
    for key in ("round", "doc_id", "usage", "response_hash"):
        assert key in info, (env_id, key)
    assert "user_id" in info[PRIVILEGED]["round"]
    assert ("next" in info[PRIVILEGED]) == (not (term or trunc))
    assert all(k in info for k in env.feedback_keys if k != "donation") or term or trunc


def _agent_cases() -> list[tuple[str, str]]:
    tasks = {env_class(e).task: e for e in ENV_IDS}
    return [(e.name, tasks[e.task]) for e in AGENTS.entries() if e.task in tasks]


@pytest.mark.parametrize(("agent", "env_id"), _agent_cases())
def test_agent_acts_in_the_action_space_and_round_trips(agent: str, env_id: str, tmp_path: Path) -> None:
    env = gym.make(env_id).unwrapped
    obs, info = env.reset(seed=1)
    a = create_agent(agent, env.task, None)
    if hasattr(a, "reveal"):
        a.reveal(info[PRIVILEGED]["next"])
    action = a.act(obs)
    assert isinstance(action, str) and env.action_space.contains(action), action[:200]
    prompt = a.base_prompt(obs)
    assert prompt is None or (prompt and all({"role", "content"} <= set(m) for m in prompt))
    a.save(tmp_path)
    b = create_agent(agent, env.task, None)
    b.load(tmp_path)
    assert b.state() == a.state()


def test_agent_for_another_task_is_refused_with_its_tasks() -> None:
    from persona_lab.core.errors import ConfigError

    with pytest.raises(ConfigError, match="deceptive-seller.*marketplace"):
        create_agent("deceptive-seller", "persuasion")


class CountingModel(FakeChatModel):
    def __init__(self) -> None:
        super().__init__(lambda r: "Yes. I like it. OPTION: A. WILLINGNESS: 0.5. DECISION: none")
        self.calls = 0

    def generate(self, requests):  # noqa: ANN001, ANN201
        self.calls += len(requests)
        return super().generate(requests)


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("kind", ["scripted", "llm"])
def test_simulated_users_are_lazy_and_deterministic(env_id: str, kind: str) -> None:
    """No model call in a constructor; the same seed and actions give the same replies."""

    def run() -> tuple[CountingModel, list]:
        model = CountingModel()
        env = gym.make(env_id, user=kind, backend=model).unwrapped
        user = env.make_user(kind, model if kind == "llm" else None)
        assert model.calls == 0, "a simulated user called its model in its constructor"
        del user
        out = []
        obs, _ = env.reset(seed=5)
        env.action_space.seed(5)
        for _ in range(2):
            obs, reward, term, trunc, info = env.step(env.action_space.sample())
            out.append((obs, reward, {k: info.get(k) for k in env.feedback_keys}))
            if term or trunc:
                break
        return model, out

    (m1, a), (_, b) = run(), run()
    assert repr(a) == repr(b)
    if kind == "llm" and env_class(env_id).task != "prefeval":
        assert m1.calls > 0, "the llm user never called its model"


TOY_SIM = '''
"""A toy world: the user wants answers of exactly one word."""
def react(answer: str) -> tuple[bool, str]:
    ok = len(answer.split()) == 1
    return ok, "thanks" if ok else "one word, please"
'''

TOY_ENV = '''
from gymnasium import spaces
from persona_lab.envs.base import PersonaEnv
from persona_lab.envs.spaces import text_space
from persona_lab.agents.base import AGENTS, BaseAgent
import toy_sim

class ToyEnv(PersonaEnv):
    """One-word answers."""
    task = "toy"
    feedback_keys = ("reply",)
    default_rounds = 4

    def __init__(self, user="scripted", backend=None, rounds=None, render_mode=None):
        super().__init__(user=user, backend=backend, rounds=rounds, render_mode=render_mode)
        self.observation_space = spaces.Dict({"round": spaces.Discrete(self.rounds)})
        self.action_space = text_space(50)
        self._t = 0

    def make_user(self, kind, model):
        return toy_sim

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return {"round": 0}, self.reset_info({"user_id": "u0"})

    def step(self, action):
        ok, reply = self.user.react(action)
        t, self._t = self._t, self._t + 1
        done = self._t >= self.rounds
        info = self.make_info(round=t, doc_id=f"q{t}", action=action, truth={"user_id": "u0"},
                              next_truth=None if done else {"user_id": "u0"}, reply=reply, ok=ok)
        return {"round": min(self._t, self.rounds - 1)}, float(ok), False, done, info

@AGENTS.register("no-learning", "says hi")
class ToyAgent(BaseAgent):
    name = "no-learning"
    tasks = ("toy",)
    def act(self, observation):
        return "hi"
'''


def test_a_toy_env_is_covered_by_one_registration(tmp_path: Path) -> None:
    """One simulators module + one env module + one registration line, and the contract holds."""
    (tmp_path / "toy_sim.py").write_text(TOY_SIM)
    (tmp_path / "toy_env.py").write_text(TOY_ENV)
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(tmp_path)!r})
        import gymnasium, persona_lab, toy_env
        gymnasium.register(id="persona_lab/Toy-v0", entry_point="toy_env:ToyEnv")
        from persona_lab.testing.contracts import check_registered_env
        from persona_lab.eval.runner import RunConfig, Runner
        print(check_registered_env("persona_lab/Toy-v0"))
        r = Runner(RunConfig(env_id="persona_lab/Toy-v0", episodes=2), {str(tmp_path / 'run')!r}, cache=False).run()
        print(r.summary["metrics"])
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "check_env" in out.stdout and "'episode/return': 4.0" in out.stdout


def test_persona_env_validates_the_standard_kwargs() -> None:
    from persona_lab.core.errors import ConfigError

    for bad in ({"rounds": 0}, {"rounds": "3"}, {"user": "robot"}, {"render_mode": "human"}, {"backend": 42}):
        with pytest.raises(ConfigError):
            gym.make("persona_lab/Persuasion-v0", **bad)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_env_classes_subclass_persona_env(env_id: str) -> None:
    cls = env_class(env_id)
    assert issubclass(cls, PersonaEnv) and cls.task and cls.default_rounds >= 1
