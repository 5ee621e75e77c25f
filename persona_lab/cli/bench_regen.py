"""``persona-lab bench regen``: collect → regenerate in hindsight → train BC/DPO/KTO/ILQL → evaluate."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markdown import Markdown

from persona_lab.cli.common import add_cache_args


def add_regen_parser(bsub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from persona_lab.cli.regen_pipeline import ARMS, CONTROLLERS

    q = bsub.add_parser("regen", help="hindsight regenerations + BC, DPO, KTO and ILQL on Persuasion-v0 (held-out CIs)")
    q.add_argument("--out", default="results/regen", help="results folder (default results/regen); rerun to resume")
    q.add_argument("--quick", action="store_true", help="the reduced size (12 dialogues, 10 held-out per arm, 6 steps per learner)")
    q.add_argument("--base", default="smollm2-135m", help="base model: packaged name, folder or hub id")
    q.add_argument("--policy", default=None, choices=["llm", "scripted"],
                   help="llm (default): the base model persuades; scripted: scripted persuaders, ILQL re-ranks "
                        "scripted candidates, BC/DPO/KTO skipped (pair with --base tiny-random for a CPU minute)")
    q.add_argument("--head-rank", type=int, default=None, help="ILQL Q-head rank (0: full vocabulary heads)")
    q.add_argument("--ilql-lr", type=float, default=None, help="ILQL learning rate (default 5e-5)")
    q.add_argument("--candidates", type=int, default=None, help="ILQL best-of-N")
    q.add_argument("--no-warm-start", action="store_true", help="skip the SFT warm start on scripted persuader turns")
    q.add_argument("--train-episodes", type=int, default=None, help="collected dialogues")
    q.add_argument("--eval-episodes", type=int, default=None, help="held-out persuadees per arm")
    q.add_argument("--rounds", type=int, default=None, help="persuader turns per dialogue")
    q.add_argument("--steps", type=int, default=None, help="optimizer steps per learner")
    q.add_argument("--batch-size", type=int, default=None, help="batch size per learner")
    q.add_argument("--max-length", type=int, default=None, help="token budget per training sequence")
    q.add_argument("--controllers", nargs="+", default=None, choices=CONTROLLERS, help="hindsight controllers")
    q.add_argument("--arms", nargs="+", default=None, choices=ARMS, help="table rows (default: all)")
    q.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="training device")
    add_cache_args(q)
    q.set_defaults(func=run_regen)
    return q


def run_regen(args: argparse.Namespace) -> int:
    from persona_lab.cli.regen_pipeline import RegenBenchConfig, quick, run_regen_bench

    overrides = {k: v for k, v in {
        "base": args.base, "warm_start": not args.no_warm_start, "train_episodes": args.train_episodes,
        "eval_episodes": args.eval_episodes, "rounds": args.rounds, "steps": args.steps, "batch_size": args.batch_size, "max_length": args.max_length, "policy": args.policy, "head_rank": args.head_rank,
        "candidates": args.candidates, "ilql_learning_rate": args.ilql_lr, "device": args.device,
        "controllers": tuple(args.controllers) if args.controllers else None,
        "arms": tuple(args.arms) if args.arms else None}.items() if v is not None}
    cfg = quick(args.out, **overrides) if args.quick else RegenBenchConfig(out=args.out, **overrides)
    err = Console(stderr=True, highlight=False)
    run_regen_bench(cfg, cache=not args.no_cache, cache_dir=args.cache_dir,
                    on_stage=lambda m: err.print(f"[bold]bench regen[/bold] {m}"))
    Console().print(Markdown((Path(args.out) / "results.md").read_text()))
    print(f"results: {args.out}/results.json, results.md; dialogues in {args.out}/data/dialogues.jsonl")
    return 0
