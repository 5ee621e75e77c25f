"""Steps per second of Marketplace-v0 and Persuasion-v0 with scripted users (no model anywhere).

    python benchmarks/bench_marketplace_persuasion.py [--steps 3000] [--runner-rounds 200] [--json out.json]

Three numbers per env:

* ``env`` — ``env.step`` alone, with actions computed beforehand (the simulated user's cost: claim
  parsing and ratings for the customer; the state machine for the persuadee);
* ``agent+env`` — a scripted agent acting on every observation, as in a rollout;
* ``runner`` — the same through :class:`persona_lab.eval.runner.Runner`, which also appends one JSONL
  line per step to a run directory.

Plus hindsight regenerations per second (Persuasion: replace one persuader turn and re-simulate).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import persona_lab  # noqa: F401  (registers the envs)
from persona_lab.agents import create_agent
from persona_lab.envs.base import PRIVILEGED
from persona_lab.envs.marketplace_env import MarketplaceEnv
from persona_lab.envs.persuasion_env import PersuasionEnv
from persona_lab.eval.runner import RunConfig, Runner
from persona_lab.simulators.persuasion import ScriptedPersuadee, regenerate


def bench_marketplace_env(steps: int) -> float:
    env = MarketplaceEnv(rounds=steps)
    env.reset(seed=0)
    oracle = create_agent("oracle", "marketplace")
    actions = []
    for scenario in env._order:  # precompute honest turns for the scenarios this episode will show
        oracle.reveal(scenario.to_dict())
        actions.append(oracle.act(env.observation_for(scenario)))
    env.reset(seed=0)
    start = time.perf_counter()
    for a in actions:
        env.step(a)
    return steps / (time.perf_counter() - start)


def bench_marketplace_agent(agent_name: str, steps: int) -> float:
    env = MarketplaceEnv(rounds=steps)
    agent = create_agent(agent_name, "marketplace")
    obs, info = env.reset(seed=1)
    start = time.perf_counter()
    for _ in range(steps):
        if hasattr(agent, "reveal"):
            agent.reveal(info[PRIVILEGED].get("next", {}))
        obs, _, _, _, info = env.step(agent.act(obs))
    return steps / (time.perf_counter() - start)


def _persuasion_episodes(agent_name: str, steps: int, rounds: int = 10) -> tuple[int, float, list[Any]]:
    env = PersuasionEnv(rounds=rounds)
    agent = create_agent(agent_name, "persuasion")
    done, episode, dialogues = 0, 0, []
    start = time.perf_counter()
    while done < steps:
        obs, info = env.reset(seed=episode, options={"user_index": episode})
        while True:
            if hasattr(agent, "reveal"):
                agent.reveal(info[PRIVILEGED].get("next", {}))
            obs, _, term, trunc, info = env.step(agent.act(obs))
            done += 1
            if term or trunc:
                break
        dialogues.append(env.dialogue)
        episode += 1
    return done, time.perf_counter() - start, dialogues


def bench_persuasion_env(steps: int) -> float:
    """env.step alone: replay recorded persuader turns (the no-learning script) against fresh episodes."""
    _, _, dialogues = _persuasion_episodes("no-learning", steps)
    env = PersuasionEnv(rounds=10)
    done, start = 0, time.perf_counter()
    for i, d in enumerate(dialogues):
        env.reset(seed=i, options={"user_index": i})
        for ex in d.exchanges:
            _, _, term, trunc, _ = env.step(ex.agent)
            done += 1
            if term or trunc:
                break
    return done / (time.perf_counter() - start)


def bench_regenerate(n: int) -> float:
    _, _, dialogues = _persuasion_episodes("no-learning", n * 4)
    user = ScriptedPersuadee()
    start, count = time.perf_counter(), 0
    while count < n:
        for d in dialogues:
            regenerate(d, 0, "I remember when my friend volunteered with them. Would you donate?", user, seed=count)
            count += 1
            if count >= n:
                break
    return n / (time.perf_counter() - start)


def bench_runner(env_id: str, agent: str, rounds: int, episodes: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = RunConfig(env_id=env_id, agent=agent, rounds=rounds, episodes=episodes)
        summary = Runner(cfg, Path(tmp) / "run", cache=False).run().summary
    return float(summary["throughput"]["rounds_per_s"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--runner-rounds", type=int, default=200, help="marketplace scenarios per runner episode")
    p.add_argument("--json", default=None, help="also write the numbers to this file")
    args = p.parse_args()
    out: dict[str, float] = {}
    out["marketplace/env_steps_per_s"] = bench_marketplace_env(args.steps)
    for name in ("no-learning", "oracle", "deceptive-seller"):
        out[f"marketplace/{name}+env_steps_per_s"] = bench_marketplace_agent(name, args.steps)
    out["marketplace/runner_oracle_rounds_per_s"] = bench_runner("persona_lab/Marketplace-v0", "oracle",
                                                                 args.runner_rounds, 2)
    out["persuasion/env_steps_per_s"] = bench_persuasion_env(args.steps)
    for name in ("no-learning", "oracle"):
        n, secs, _ = _persuasion_episodes(name, args.steps)
        out[f"persuasion/{name}+env_steps_per_s"] = n / secs
    out["persuasion/runner_oracle_rounds_per_s"] = bench_runner("persona_lab/Persuasion-v0", "oracle", 10,
                                                                max(10, args.runner_rounds // 4))
    out["persuasion/regenerations_per_s"] = bench_regenerate(max(100, args.steps // 10))
    width = max(len(k) for k in out)
    for k, v in out.items():
        print(f"{k:<{width}}  {v:10.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
