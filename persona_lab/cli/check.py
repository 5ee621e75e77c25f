"""``persona-lab check <env-id>``: the Gymnasium env checker plus a short scripted rollout."""

from __future__ import annotations

import argparse

from rich.console import Console

from persona_lab.cli.common import positive_int


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("check", help="run gymnasium's env checker and a scripted rollout on an env")
    p.add_argument("env_id", help="environment id (`persona-lab ls envs`)")
    p.add_argument("--rounds", type=positive_int, default=5, help="rounds of the rollout (default 5)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from persona_lab.testing.contracts import check_registered_env

    report = check_registered_env(args.env_id, rounds=args.rounds)
    console = Console()
    for line in report:
        console.print(f"[green]ok[/green] {line}")
    return 0
