"""Scripted edit world throughput: EditEmail-v0, 200 rounds, no-learning agent.

Usage: python benchmarks/bench_edit_world.py [--rounds 200]
Reports rounds per second and peak memory for one episode in one process, and for 4 episodes with
--concurrency 4 (threads), measured side by side in this one run.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import tracemalloc

from persona_lab.eval.runner import RunConfig, Runner


def _run(episodes: int, concurrency: int, rounds: int) -> float:
    cfg = RunConfig(env_id="persona_lab/EditEmail-v0", agent="no-learning", rounds=rounds, episodes=episodes)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        Runner(cfg, out, concurrency=concurrency, cache=False).run()
        return time.perf_counter() - start


def measure(episodes: int, concurrency: int, rounds: int) -> tuple[float, float]:
    """Rounds/s (best of 3 untraced runs) and peak traced memory (a separate traced run: tracing slows Python)."""
    wall = min(_run(episodes, concurrency, rounds) for _ in range(3))
    tracemalloc.start()
    _run(episodes, concurrency, rounds)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return episodes * rounds / wall, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    _run(1, 1, 20)  # warm-up: imports, corpus load
    rows = [("1 episode, 1 thread", *measure(1, 1, args.rounds)), ("4 episodes, --concurrency 4", *measure(4, 4, args.rounds))]
    print(f"{'setting':32} {'rounds/s':>10} {'peak traced MiB':>16}")
    for name, rps, peak in rows:
        print(f"{name:32} {rps:10.0f} {peak:16.1f}")
    print(f"process max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
