"""``persona-lab ls <what>``: list registered backends, envs, agents, populations, ..."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from rich.console import Console
from rich.table import Column, Table


def _backends() -> Table:
    from persona_lab.models import backend_table

    t = Table("backend", "example spec", "what it is", title="backends")
    for row in backend_table():
        t.add_row(row.name, row.example, row.help)
    return t


def _envs() -> Table:
    import gymnasium as gym

    import persona_lab  # noqa: F401  (registers the envs)
    from persona_lab.eval.runner import env_arguments, env_class

    t = Table(Column("env id", no_wrap=True), "task", "rounds", Column("--env-arg names", overflow="fold"), "what it is", title="environments")
    for env_id in sorted(k for k in gym.registry if k.startswith("persona_lab/")):
        cls = env_class(env_id)
        t.add_row(env_id, cls.task, str(cls.default_rounds), ", ".join(env_arguments(cls)),
                  (cls.__doc__ or "").strip().split("\n")[0])
    return t


def _agents() -> Table:
    from persona_lab.agents import AGENTS

    t = Table(Column("agent", no_wrap=True), "tasks", "what it is (first task's implementation)", title="agents")
    for name in AGENTS.names():
        tasks = AGENTS.tasks(name)
        first = next(e for e in AGENTS.entries() if e.name == name)
        t.add_row(name, ", ".join(tasks), first.help)
    return t


def _populations() -> Table:
    from persona_lab.simulators.personas import POPULATIONS

    t = Table("population", "what it is", title="populations (or pass a YAML/JSON persona file)")
    for e in POPULATIONS.entries():
        t.add_row(e.name, e.help)
    return t


def _preferences() -> Table:
    from persona_lab.simulators import catalog

    t = Table("id", "family", "statement", "conflicts with", title="verifiable preference catalog")
    for pid in sorted(catalog.CATALOG):
        p = catalog.CATALOG[pid]
        t.add_row(pid, p.family, p.statement, ", ".join(sorted(p.conflicts)))
    return t


# name -> function returning a rich Table. Later parts add their listings here.
LISTINGS: dict[str, Callable[[], Table]] = {
    "backends": _backends,
    "envs": _envs,
    "agents": _agents,
    "populations": _populations,
    "preferences": _preferences,
}


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("ls", help="list registered backends, envs, agents, populations")
    p.add_argument("what", choices=sorted(LISTINGS), help="what to list")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from persona_lab.cli.common import print_table

    print_table(Console(), LISTINGS[args.what]())
    return 0
