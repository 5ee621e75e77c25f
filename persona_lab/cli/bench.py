"""``persona-lab bench prelude``: the PRELUDE table (agents × tasks × seeds) in one command."""

from __future__ import annotations

import argparse
import shlex
import threading
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from persona_lab.cli.common import (
    add_cache_args,
    add_timeout_arg,
    check_cache_args,
    check_out_dir,
    positive_int,
    probability,
)
from persona_lab.cli.run import add_executor_args, apply_executor_args, stop_on_signals

QUICK_ROUNDS = 40


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("bench", help="benchmarks: `bench prelude` compares every PRELUDE agent; `bench rlhs` trains on hindsight feedback")
    bsub = p.add_subparsers(dest="bench", metavar="<benchmark>", required=True)
    q = bsub.add_parser("prelude", help="every agent × both edit tasks × seeds, with 95%% CIs, a table and plots")
    q.add_argument("--out", default="results/prelude", help="results folder (default results/prelude)")
    q.add_argument("--backend", default="scripted", help="model backend (default: scripted)")
    q.add_argument("--user", choices=["scripted", "llm"], default=None,
                   help="simulated user kind (default: llm when --backend is a model, else scripted)")
    q.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default 0 1 2)")
    q.add_argument("--rounds", type=positive_int, default=200, help="rounds per run (default 200)")
    q.add_argument("--tasks", nargs="+", default=["summarization", "email"], choices=["summarization", "email"])
    q.add_argument("--agents", nargs="+", default=None,
                   help="subset of rows: no-learning oracle explore-exploit continual icl-edit-5 cipher-1 cipher-5 fspo-3")
    q.add_argument("--encoder", default="minilm", help="retrieval encoder of CIPHER and ICL-edit: minilm or tfidf")
    q.add_argument("--population", default="prelude", help="prelude, verifiable, or a persona file")
    q.add_argument("--effort", type=positive_int, default=None, help="scripted user: violated preferences fixed per round")
    q.add_argument("--noise", type=probability, default=0.0, help="scripted user: incidental edit probability in [0, 1]")
    q.add_argument("--concurrency", type=positive_int, default=2, help="runs in parallel (default 2)")
    q.add_argument("--quick", action="store_true", help=f"a reduced run: {QUICK_ROUNDS} rounds (under a minute)")
    add_executor_args(q)
    add_timeout_arg(q)
    add_cache_args(q)
    q.set_defaults(func=run_prelude)
    from persona_lab.cli.bench_regen import add_regen_parser

    add_regen_parser(bsub)

    from persona_lab.cli import rlhs_bench

    rlhs_bench.add_parser(bsub)

    from persona_lab.cli.fspo import add_bench_parser

    add_bench_parser(bsub)
    return p


def run_prelude(args: argparse.Namespace) -> int:
    from persona_lab.core.errors import ConfigError
    from persona_lab.eval.bench import BenchConfig, default_agents, run_bench

    check_out_dir(args.out)
    check_cache_args(args)
    executor = apply_executor_args(args)
    variants = default_agents(args.encoder)
    if args.agents:
        known = {v.label: v for v in variants}
        unknown = [a for a in args.agents if a not in known]
        if unknown:
            raise ConfigError(f"unknown bench agents {unknown}", hint=f"choose from {list(known)}")
        variants = [known[a] for a in args.agents]
    env_kwargs: dict[str, object] = {}
    if args.effort is not None:
        env_kwargs["effort"] = args.effort
    if args.noise:
        env_kwargs["noise"] = args.noise
    rounds = QUICK_ROUNDS if args.quick else args.rounds
    cfg = BenchConfig(out=args.out, tasks=tuple(args.tasks), agents=tuple(variants), seeds=tuple(args.seeds),
                      rounds=rounds, backend=args.backend, user=args.user, population=args.population,
                      env_kwargs=env_kwargs)
    total = len(cfg.tasks) * len(cfg.agents) * len(cfg.seeds) * rounds
    err = Console(stderr=True)
    stop = threading.Event()
    with stop_on_signals(stop.set, err), Progress(
            TextColumn("[bold]bench prelude"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err, transient=True) as progress:
        bar = progress.add_task("rounds", total=total)
        results = run_bench(cfg, concurrency=args.concurrency, cache=not args.no_cache, cache_dir=args.cache_dir,
                            timeout_s=args.timeout, on_round=lambda: progress.advance(bar), stop_event=stop,
                            executor=executor)
    if results is None:
        again = "persona-lab " + shlex.join(args.argv) if getattr(args, "argv", None) else "the same command"
        err.print(f"interrupted: finished runs are kept under {args.out}/runs/ and reused; continue with:\n  {again}",
                  highlight=False, soft_wrap=True)
        return 130
    console = Console()
    print((Path(args.out) / "results.md").read_text(encoding="utf-8"))  # plain text: cells wrap, never cut
    console.print(f"results: {args.out}/results.json, results.md, cumulative_cost_<task>.png; runs under {args.out}/runs/")
    from persona_lab.models.registry import is_scripted

    llm_user = args.user == "llm" or (args.user is None and not is_scripted(args.backend))
    if llm_user:  # the edit users are LLM users: say how far they can be trusted
        from persona_lab.eval.bench import TASK_ENVS
        from persona_lab.eval.calibrate import calibration_note

        for task in cfg.tasks:
            console.print(calibration_note(TASK_ENVS[task], args.backend, args.cache_dir), highlight=False, soft_wrap=True)
    return 0
