"""``persona-lab ls <what>``: list registered backends, envs, agents, populations, ..."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from rich.console import Console
from rich.table import Table


def _backends() -> Table:
    from persona_lab.models import backend_table

    t = Table("backend", "example spec", "what it is", title="backends")
    for row in backend_table():
        t.add_row(row.name, row.example, row.help)
    return t


def _envs() -> Table:
    import gymnasium as gym

    import persona_lab  # noqa: F401  (registers the envs)

    t = Table("env id", "entry point", "what it is", title="environments")
    for env_id, spec in sorted(gym.registry.items()):
        if env_id.startswith("persona_lab/"):
            cls = spec.entry_point if not isinstance(spec.entry_point, str) else _load(spec.entry_point)
            t.add_row(env_id, str(spec.entry_point), (cls.__doc__ or "").strip().split("\n")[0])
    return t


def _load(entry_point: str) -> type:
    import importlib

    mod, _, attr = entry_point.partition(":")
    return getattr(importlib.import_module(mod), attr)


def _agents() -> Table:
    from persona_lab.agents import AGENTS
    from persona_lab.agents.base import _TASK_IMPLS

    t = Table("agent", "tasks", "what it is", title="agents")
    for e in AGENTS.entries():
        extra = sorted(task for name, task in _TASK_IMPLS if name == e.name)
        tasks = getattr(e.factory, "tasks", None) or ()
        t.add_row(e.name, ", ".join([*tasks, *extra]) or "-", e.help)
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
    Console().print(LISTINGS[args.what]())
    return 0
