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


# name -> function returning a rich Table. Later parts add their listings here.
LISTINGS: dict[str, Callable[[], Table]] = {"backends": _backends}


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("ls", help="list registered backends, envs, agents, populations")
    p.add_argument("what", choices=sorted(LISTINGS), help="what to list")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    Console().print(LISTINGS[args.what]())
    return 0
