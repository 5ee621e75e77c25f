"""``persona-lab run <env-id>``: one agent in one environment, recorded to a resumable run directory."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from persona_lab.cli.common import add_cache_args


def parse_kv(items: list[str] | None) -> dict[str, object]:
    """``["k=1", "name=x"]`` -> ``{"k": 1, "name": "x"}`` (values parsed as JSON when they parse)."""
    from persona_lab.core.errors import ConfigError

    out: dict[str, object] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"expected key=value, got {item!r}", hint="e.g. --agent-arg k=5 --env-arg noise=0.1")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default="scripted", help="model backend of the agent and LLM users (default: scripted)")
    p.add_argument("--user", choices=["scripted", "llm"], default=None,
                   help="simulated user kind (default: llm when --backend is a model, else scripted)")
    p.add_argument("--user-backend", default=None, help="a different backend for the LLM user")
    # World-specific shortcuts: each is the same as --env-arg NAME=VALUE and is refused (exit 2) by an
    # env that takes no such argument.
    p.add_argument("--population", default=None, help="edit/follow-up worlds: prelude, verifiable, or a YAML/JSON persona file")
    p.add_argument("--effort", type=int, default=None, help="edit worlds, scripted user: fix at most m violated preferences per round")
    p.add_argument("--noise", type=float, default=None, help="scripted user: probability of an incidental edit (edit worlds) or willingness noise (persuasion)")
    p.add_argument("--corpus", default=None, help="edit worlds: builtin, hub, or a folder of <source>.jsonl files")
    p.add_argument("--env-arg", action="append", metavar="K=V",
                   help="world-specific gymnasium.make kwarg (repeatable; `persona-lab ls envs` names each env's)")
    p.add_argument("--agent-arg", action="append", metavar="K=V", help="extra agent kwarg, e.g. k=5 (repeatable)")
    add_cache_args(p)


def env_kwargs_from(args: argparse.Namespace) -> dict[str, object]:
    """``--env-arg`` values plus the world-specific shortcut flags that were given."""
    kw: dict[str, object] = {name: getattr(args, name) for name in ("population", "effort", "noise", "corpus")
                             if getattr(args, name, None) is not None}
    kw.update(parse_kv(args.env_arg))
    return kw


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("run", help="run an agent in an environment into a resumable run directory")
    p.add_argument("env_id", help="environment id (`persona-lab ls envs`)")
    p.add_argument("--agent", default="no-learning", help="agent name (`persona-lab ls agents`)")
    p.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    p.add_argument("--rounds", type=int, default=None, help="agent turns per episode (default: the env's own length)")
    p.add_argument("--episodes", type=int, default=1, help="episodes, one user each (default 1)")
    p.add_argument("--concurrency", type=int, default=1, help="episodes run in parallel threads")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue a killed run in --out")
    add_run_args(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from persona_lab.eval.runner import RunConfig, Runner

    config = RunConfig(
        env_id=args.env_id, agent=args.agent, backend=args.backend, user=args.user, user_backend=args.user_backend,
        seed=args.seed, rounds=args.rounds, episodes=args.episodes,
        env_kwargs=env_kwargs_from(args), agent_kwargs=parse_kv(args.agent_arg),
    )
    console = Console(stderr=True)
    runner = Runner(config, args.out, concurrency=args.concurrency, cache=not args.no_cache, cache_dir=args.cache_dir)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task(f"{args.env_id} / {args.agent}", total=runner.rounds * args.episodes)
        runner.on_round = lambda: progress.advance(task)
        result = runner.run(resume=args.resume)
    print_summary(result.summary, Console())
    if result.failed_episodes:
        console.print(f"[red]episodes {result.failed_episodes} failed (see {args.out}/errors.jsonl); "
                      "rerun with --resume to retry them[/red]")
        return 3
    return 0


def print_summary(summary: dict, console: Console) -> None:
    t = Table(title=f"{summary['env_id']} · agent {summary['agent']} · {summary['episodes']} episode(s) × {summary['rounds']} rounds")
    t.add_column("metric")
    t.add_column("mean", justify="right")
    t.add_column("95% CI", justify="right")
    for name, ci in summary["metrics_ci"].items():
        t.add_row(name, f"{ci['mean']:.3f}", f"[{ci['ci_low']:.3f}, {ci['ci_high']:.3f}]")
    console.print(t)
    u = summary["usage"]
    console.print(f"backend: {summary['backend_note']}")
    console.print(
        f"usage: agent {u['agent']['calls']} calls / {u['agent']['cache_hits']} cache hits, "
        f"user {u['user']['calls']} calls / {u['user']['cache_hits']} cache hits; "
        f"throughput {summary['throughput']['rounds_per_s']} rounds/s"
    )
