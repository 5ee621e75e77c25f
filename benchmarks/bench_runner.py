"""The runner vs the raw ``reset``/``step`` loop a user would write, in one process, interleaved.

    python benchmarks/bench_runner.py [--env persona_lab/EditEmail-v0] [--rounds 200] [--reps 7] [--process-reps 5] [--parts]

Both drive the same scripted env (scripted user) with the same scripted agent (``no-learning``) for
``--rounds`` rounds in one episode:

- ``raw loop``: ``gymnasium.make(env).unwrapped``, the agent from the registry, then ``reset`` and
  ``act``/``step``/``update`` until the episode ends; nothing written;
- ``runner``: ``Runner(RunConfig(...), <fresh folder>, cache=False).run()``, which also writes
  ``config.json``, one typed ``TransitionRecord`` per round, and ``summary.json`` (metrics, usage).

The order alternates each rep; printed are the medians of rounds/s, of CPU ms per run, and of the
paired ratio runner / raw (same rep), for the whole ``run()`` call and for its episode phase (the
``throughput.rounds_per_s`` the runner reports: the rounds and their records, without the folder
setup before and the summary after), with the load average. ``--profile`` prints where the runner's
extra time goes (cProfile of one runner run, sorted by own time).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable

import gymnasium as gym

import persona_lab.envs  # noqa: F401  (registers the envs)
from persona_lab.agents.base import Transition, create_agent
from persona_lab.core.seeding import derive_seed
from persona_lab.eval.runner import RunConfig, Runner


def raw_loop(env_id: str, rounds: int) -> int:
    env = gym.make(env_id, user="scripted", backend=None, rounds=rounds).unwrapped
    agent = create_agent("no-learning", env.task, None)
    obs, _ = env.reset(seed=derive_seed(0, 0), options={"user_index": 0})  # the runner's episode 0 of seed 0
    done = 0
    for _ in range(rounds):
        action = agent.act(obs)
        next_obs, reward, terminated, truncated, info = env.step(action)
        agent.update(Transition(obs, action, float(reward), {k: info[k] for k in env.feedback_keys if k in info}))
        obs = next_obs
        done += 1
        if terminated or truncated:
            break
    env.close()
    return done


PHASE: list[float] = []  # the runner's own rounds/s of its episode phase (summary.json throughput)


def runner(env_id: str, rounds: int, tmp: str) -> int:
    out = tempfile.mkdtemp(dir=tmp)
    res = Runner(RunConfig(env_id=env_id, agent="no-learning", rounds=rounds), out, cache=False).run()
    PHASE.append(float(res.summary["throughput"]["rounds_per_s"]))
    return int(res.summary["throughput"]["rounds_executed"])


_RAW_SCRIPT = """
import sys, gymnasium as gym, persona_lab.envs
from persona_lab.agents.base import Transition, create_agent
from persona_lab.core.seeding import derive_seed
env = gym.make(sys.argv[1], user="scripted", backend=None, rounds=int(sys.argv[2])).unwrapped
agent = create_agent("no-learning", env.task, None)
obs, _ = env.reset(seed=derive_seed(0, 0), options={"user_index": 0})
for _ in range(int(sys.argv[2])):
    action = agent.act(obs)
    nxt, reward, term, trunc, info = env.step(action)
    agent.update(Transition(obs, action, float(reward), {k: info[k] for k in env.feedback_keys if k in info}))
    obs = nxt
    if term or trunc:
        break
print(sorted({m.split(".")[0] for m in sys.modules} & {"torch", "scipy", "transformers"}))
"""


def whole_process(env_id: str, rounds: int, reps: int, tmp: str) -> None:
    """``persona-lab run`` in a fresh process vs a raw script in a fresh process: CPU s (user+sys of
    the child), max RSS, and whether torch, scipy or transformers were imported."""
    import resource
    import subprocess
    import sys

    def child(argv: list[str]) -> tuple[float, float, str]:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip().splitlines()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return cpu, after.ru_maxrss / 1024, out[-1] if out else ""

    runs: dict[str, list[tuple[float, float, str]]] = {"raw script": [], "persona-lab run": []}
    for rep in range(reps):
        for name in (list(runs) if rep % 2 == 0 else list(runs)[::-1]):
            if name == "raw script":
                runs[name].append(child([sys.executable, "-c", _RAW_SCRIPT, env_id, str(rounds)]))
            else:
                code = ("import sys; from persona_lab.cli.main import main; rc = main(sys.argv[1:]); "
                        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'scipy', 'transformers'})); "
                        "sys.exit(rc)")
                runs[name].append(child([sys.executable, "-c", code, "run", env_id, "--rounds", str(rounds),
                                         "--no-cache", "--out", tempfile.mkdtemp(dir=tmp) + "/run"]))
    print("whole process (fresh interpreter each):")
    for name, v in runs.items():
        print(f"  {name:<16} CPU {statistics.median(c for c, _, _ in v):.2f} s (median of {reps}); heavy modules "
              f"imported: {v[-1][2]}")
    ratio = statistics.median(a[0] / b[0] for a, b in zip(runs["persona-lab run"], runs["raw script"]))
    print(f"  persona-lab run / raw script CPU: median {ratio:.2f} (max RSS of any child so far "
          f"{max(m for v in runs.values() for _, m, _ in v):.0f} MiB); load average {os.getloadavg()[0]:.1f}")


def parts(env_id: str, rounds: int, reps: int, tmp: str) -> None:
    """CPU per run of the runner's parts (each method timed with ``time.thread_time`` around it; the
    runner runs one episode on the calling thread), beside the raw loop's CPU."""
    import persona_lab.core.records as records
    import persona_lab.eval.runner as R

    acc: dict[str, list[float]] = {}
    saved: list[tuple[object, str, object]] = []

    def wrap(obj: object, name: str, key: str) -> None:
        fn = getattr(obj, name)
        saved.append((obj, name, fn))

        def timed_call(*a: object, **k: object) -> object:
            c = time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                acc.setdefault(key, []).append((time.thread_time() - c) * 1e3)

        setattr(obj, name, timed_call)

    for name in ("run", "_prepare_dir", "_run_episode", "summarize", "_record"):
        wrap(R.Runner, name, f"Runner.{name}")
    wrap(R, "fidelity_counters", "  summary: fidelity_counters")
    wrap(R, "stable_hash", "  per round: action hash")
    wrap(records.TransitionRecord, "json_line", "  per round: TransitionRecord.json_line")
    raw: list[float] = []
    try:
        for _ in range(reps):
            runner(env_id, rounds, tmp)
            c = time.thread_time()
            raw_loop(env_id, rounds)
            raw.append((time.thread_time() - c) * 1e3)
    finally:
        for obj, name, fn in saved:
            setattr(obj, name, fn)
    print(f"CPU ms per run (median of {reps}): raw loop {statistics.median(raw):.2f}")
    for key, v in acc.items():
        per = len(v) // reps
        print(f"  {key:<40}{statistics.median(v) * per:8.2f}  ({per} calls)")
    print(f"  load average {os.getloadavg()[0]:.1f}")


def timed(fn: Callable[[], int]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    n = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return n / wall, cpu * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", default="persona_lab/EditEmail-v0")
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--parts", action="store_true", help="also print the CPU of the runner's parts")
    ap.add_argument("--process-reps", type=int, default=0,
                    help="also compare whole processes (persona-lab run vs a raw script), this many reps")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        impls: dict[str, Callable[[], int]] = {
            "raw loop": lambda: raw_loop(args.env, args.rounds),
            "runner": lambda: runner(args.env, args.rounds, tmp),
        }
        for fn in impls.values():  # warm-up: imports, corpus loads
            fn()
        print(f"{args.env}, {args.rounds} rounds, {args.reps} reps; load average at start {os.getloadavg()[0]:.1f}")
        res: dict[str, list[tuple[float, float]]] = {k: [] for k in impls}
        for rep in range(args.reps):
            for name in (list(impls) if rep % 2 == 0 else list(impls)[::-1]):
                res[name].append(timed(impls[name]))
        print(f"{'impl':<10}{'rounds/s':>10}{'CPU ms/run':>12}")
        for name, v in res.items():
            print(f"{name:<10}{statistics.median(r for r, _ in v):>10.0f}{statistics.median(c for _, c in v):>12.1f}")
        ratios = [a[0] / b[0] for a, b in zip(res["runner"], res["raw loop"])]
        print(f"runner / raw loop rounds/s, whole run() (folder, config.json, records, summary.json): median "
              f"{statistics.median(ratios):.2f} (reps: {' '.join(f'{r:.2f}' for r in ratios)})")
        phase = PHASE[-args.reps:]
        ratios = [a / b[0] for a, b in zip(phase, res["raw loop"])]
        print(f"runner / raw loop rounds/s, episode phase (the runner's own throughput.rounds_per_s: rounds "
              f"and their records, without the folder setup and the summary): median {statistics.median(ratios):.2f} "
              f"(reps: {' '.join(f'{r:.2f}' for r in ratios)}); load average {os.getloadavg()[0]:.1f}")
        if args.parts:
            parts(args.env, args.rounds, args.reps, tmp)
        if args.process_reps:
            whole_process(args.env, args.rounds, args.process_reps, tmp)
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            impls["runner"]()
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
