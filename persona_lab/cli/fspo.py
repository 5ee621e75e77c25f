"""``persona-lab fspo {data,show}``: build FSPO's verifiable users and pairs; print an episode.

``persona-lab fspo data --out DIR`` writes ``users.jsonl``, ``pairs.jsonl`` and ``meta.json`` (the
config, the question split and the preference pairs held out of training); ``persona-lab train fspo
--data DIR`` trains on it and ``persona-lab bench fspo`` evaluates.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from rich.console import Console


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from persona_lab.simulators.fspo import FSPODataConfig

    p = sub.add_parser("fspo", help="FSPO data: verifiable synthetic users, verified preference pairs, episodes")
    fsub = p.add_subparsers(dest="fspo_command", metavar="<command>", parser_class=type(p))
    d = fsub.add_parser("data", help="build the users, splits and checker-verified pairs and save them")
    d.add_argument("--out", required=True, help="folder to write users.jsonl, pairs.jsonl and meta.json")
    group = d.add_argument_group("data settings")
    for f in dataclasses.fields(FSPODataConfig):
        flag = "--" + f.name.replace("_", "-")
        help_text = str(f.metadata.get("help", "")).replace("%", "%%") + f" (default: {f.default})"
        if isinstance(f.default, tuple):
            group.add_argument(flag, dest=f.name, nargs="*", default=None, help=help_text)
        else:
            group.add_argument(flag, dest=f.name, type=type(f.default), default=None, help=help_text)
    d.set_defaults(func=run_data)
    s = fsub.add_parser("show", help="print one training episode (prompt, chosen, rejected)")
    s.add_argument("--data", default=None, help="a folder from `fspo data` (default: the default data set)")
    s.add_argument("--shots", type=int, default=2, help="shots per episode (default 2)")
    s.add_argument("--description", action="store_true", help="the user-description variant")
    s.add_argument("--seed", type=int, default=0, help="episode seed")
    s.set_defaults(func=run_show)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])
    return p


def run_data(args: argparse.Namespace) -> int:
    from persona_lab.simulators.fspo import SPLITS, FSPODataConfig, build_fspo_data

    values: dict[str, Any] = {}
    for f in dataclasses.fields(FSPODataConfig):
        v = getattr(args, f.name)
        if v is not None:
            values[f.name] = tuple(v) if isinstance(f.default, tuple) else v
    data = build_fspo_data(FSPODataConfig(**values))
    folder = data.save(args.out)
    counts = ", ".join(f"{len(data.users_in(s))} {s}" for s in SPLITS)
    Console(highlight=False, soft_wrap=True).print(
        f"FSPO data: users {counts}; {len(data.pairs)} verified pairs ({data.skipped} (user, question) "
        f"draws without a valid pair skipped); {len(data.train_questions)} train / {len(data.eval_questions)} eval "
        f"questions; {len(data.heldout_pairs)} preference pairs held out for interpolated users -> {folder}",
        markup=False,
    )
    return 0


def run_show(args: argparse.Namespace) -> int:
    from persona_lab.simulators.fspo import FSPOData, default_data, training_rows

    data = FSPOData.load(args.data) if args.data else default_data()
    row = training_rows(data, n_shots=args.shots, draws=1, description=args.description, conversational=False,
                        seed=args.seed)[0]
    print(row["prompt"])
    print("=== chosen ===")
    print(row["chosen"])
    print("=== rejected ===")
    print(row["rejected"])
    return 0
