"""FollowUp-v0 speed: env steps per second with scripted users, and FLR scoring throughput.

    python benchmarks/bench_followup.py                          # steps/s + FLR on hf:smollm2-135m
    python benchmarks/bench_followup.py --skip-flr               # steps/s only
    python benchmarks/bench_followup.py --scorer tiny            # FLR on a random tiny model built in code
    python benchmarks/bench_followup.py --answers 8 --dtype bfloat16 --max-batch-size 32

Steps/s: the scripted user and scripted agents (no model), ``rounds=8``, resetting when an episode
ends. FLR: answers per second, each answer scored against all 120 follow-ups; "per follow-up" makes
one ``score`` call per follow-up (no batching across follow-ups), "per answer" one call of 120
requests per answer, "all answers" one call for every answer at once (the backend splits it into
batches of ``--max-batch-size``). The first use of ``hf:smollm2-135m`` converts its GGUF (minutes).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import gymnasium as gym

import persona_lab  # noqa: F401  (registers the envs)
from persona_lab.agents import create_agent
from persona_lab.core.messages import Message
from persona_lab.envs.base import PRIVILEGED
from persona_lab.simulators.followup_flr import flr_batch, flr_requests


def steps_per_second(agent_name: str, steps: int, population: str) -> tuple[float, float]:
    env = gym.make("persona_lab/FollowUp-v0", rounds=8, population=population)
    agent = create_agent(agent_name, "followup")
    obs, info = env.reset(seed=0)
    positive, episode = 0, 0
    start = time.perf_counter()
    for _ in range(steps):
        if hasattr(agent, "reveal"):
            agent.reveal(info[PRIVILEGED]["next"])
        obs, reward, term, trunc, info = env.step(agent.act(obs))
        positive += reward > 0
        if term or trunc:
            episode += 1
            obs, info = env.reset(seed=episode)
    return steps / (time.perf_counter() - start), positive / steps


def sample_conversations(n: int) -> list[list[Message]]:
    """(user message, answer) pairs from scripted episodes: half oracle, half no-learning answers."""
    out: list[list[Message]] = []
    for k in range(n):
        env = gym.make("persona_lab/FollowUp-v0", rounds=1, user_index=k)
        agent = create_agent("oracle" if k % 2 == 0 else "no-learning", "followup")
        obs, info = env.reset(seed=k)
        if hasattr(agent, "reveal"):
            agent.reveal(info[PRIVILEGED]["next"])
        out.append([Message("user", obs["message"]), Message("assistant", agent.act(obs))])
    return out


def open_scorer(name: str, dtype: str, max_batch_size: int):
    from persona_lab.models.hf import HFChatModel

    if name == "tiny":
        from persona_lab.testing.tiny import save_tiny_model

        name = str(save_tiny_model(Path(tempfile.mkdtemp()) / "tiny", hidden_size=256, num_layers=4))
    scorer = HFChatModel(name.removeprefix("hf:"), dtype=dtype, max_batch_size=max_batch_size)
    start = time.perf_counter()
    scorer.load()
    print(f"loaded {scorer.spec} in {time.perf_counter() - start:.1f}s (dtype {dtype}, max_batch_size {max_batch_size})")
    return scorer


def flr_throughput(scorer, answers: int) -> None:
    convs = sample_conversations(answers)
    scorer.score(flr_requests(convs[0])[:1])  # warm up
    rows = []
    start = time.perf_counter()
    for req in flr_requests(convs[0]):
        scorer.score([req])
    rows.append(("per follow-up (120 calls / answer)", 1, time.perf_counter() - start))
    start = time.perf_counter()
    results = [flr_batch(scorer, [c])[0] for c in convs]
    rows.append(("per answer (1 call / answer)", answers, time.perf_counter() - start))
    start = time.perf_counter()
    batched = flr_batch(scorer, convs)
    rows.append((f"all answers (1 call / {answers} answers)", answers, time.perf_counter() - start))
    tokens = sum(len(c[-1].content) + len(c[0].content) for c in convs) / answers
    print(f"\nFLR throughput, {answers} answers x 120 follow-ups (mean user+answer length {tokens:.0f} chars)")
    print(f"{'mode':<40} {'answers':>7} {'seconds':>8} {'answers/s':>10} {'follow-ups/s':>13}")
    for label, n, seconds in rows:
        print(f"{label:<40} {n:>7} {seconds:>8.2f} {n / seconds:>10.3f} {120 * n / seconds:>13.1f}")
    drift = max(abs(a.flr - b.flr) for a, b in zip(results, batched, strict=True))
    print(f"max |FLR(per answer) - FLR(all answers)| = {drift:.2e}")
    oracle = [r.flr for r in batched[0::2]]
    plain = [r.flr for r in batched[1::2]]
    print(f"mean FLR: oracle answers {sum(oracle) / len(oracle):+.4f}, no-learning answers {sum(plain) / len(plain):+.4f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=5000, help="env steps per agent")
    p.add_argument("--population", default="verifiable")
    p.add_argument("--skip-flr", action="store_true")
    p.add_argument("--scorer", default="smollm2-135m", help="hf model (packaged name or folder) or 'tiny'")
    p.add_argument("--answers", type=int, default=2, help="answers scored per FLR mode (even: oracle, no-learning)")
    p.add_argument("--dtype", default="auto", help="auto (float32 on CPU), bfloat16, ...")
    p.add_argument("--max-batch-size", type=int, default=16)
    args = p.parse_args()

    print(f"FollowUp-v0 with the scripted user, rounds=8, population={args.population}")
    print(f"{'agent':<12} {'steps':>6} {'steps/s':>9} {'positive':>9}")
    for agent in ("no-learning", "oracle"):
        sps, pos = steps_per_second(agent, args.steps, args.population)
        print(f"{agent:<12} {args.steps:>6} {sps:>9.0f} {pos:>9.2f}")
    if not args.skip_flr:
        flr_throughput(open_scorer(args.scorer, args.dtype, args.max_batch_size), args.answers)


if __name__ == "__main__":
    main()
