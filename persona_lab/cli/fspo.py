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


def add_bench_parser(bsub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``persona-lab bench fspo`` (added to ``persona-lab bench``)."""
    q = bsub.add_parser("fspo", help="FSPO: build users and data, train DPO/IPO/description adapters, judge-free "
                                     "win rates vs the base model per user split")
    q.add_argument("--out", default="results/fspo", help="results folder (default results/fspo); reruns resume")
    q.add_argument("--base", default="smollm2-135m",
                   help="base model to train and evaluate (hf grammar), or 'scripted' for the judge-free "
                        "scripted reference without training (default smollm2-135m)")
    q.add_argument("--quick", action="store_true",
                   help="CPU sizes: 1 shot, one-sentence answers, 6 steps per adapter, 3 users x 1 question per split")
    q.add_argument("--shots", type=int, default=None, help="shots per episode (default 4; quick 1)")
    q.add_argument("--steps", type=int, default=None, help="optimizer steps per adapter (default 200; quick 6)")
    q.add_argument("--eval-users", type=int, default=None, help="users evaluated per split (default 20; quick 3)")
    q.add_argument("--rows", nargs="+", default=None, help="subset of rows by label (default: all six)")
    q.add_argument("--judge-free-text", action="store_true",
                   help="let the judge reply in free text (parsed; unparseable replies counted) instead of "
                        "restricting it to 1 or 2 where the backend offers it (hf)")
    q.add_argument("--judge", default=None,
                   help="pairwise LLM judge reported beside the checkers (order-swapped, told the user's "
                        "description; Cohen's kappa vs the checkers): a backend spec such as hf:smollm2-135m, "
                        "or 'none' (default: none for --base scripted, else the base model hf:<base>)")
    q.set_defaults(func=run_bench)
    return q


def run_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.markdown import Markdown

    from persona_lab.core.errors import ConfigError
    from persona_lab.eval.fspo_bench import ROWS, FSPOBenchConfig, quick_config, run_fspo_bench
    from persona_lab.train.fspo import DEFAULT_BETA

    cfg = quick_config(args.out, args.base) if args.quick else FSPOBenchConfig(out=args.out, base=args.base)
    changes = {k: v for k, v in (("shots", args.shots), ("steps", args.steps), ("eval_users", args.eval_users),
                                 ("judge", args.judge)) if v is not None}
    if args.judge_free_text:
        changes["judge_constrained"] = False
    if changes:
        cfg = dataclasses.replace(cfg, **changes)
    if cfg.judge_spec is not None:  # a bad judge spec fails now, not after the adapters are trained
        from persona_lab.models.registry import create_backend

        create_backend(cfg.judge_spec)
    rows = ROWS
    if args.rows:
        known = {r.label: r for r in ROWS}
        unknown = [r for r in args.rows if r not in known]
        if unknown:
            raise ConfigError(f"unknown rows {unknown}", hint=f"choose from {list(known)}")
        rows = tuple(r for r in ROWS if r.label in args.rows)
        if rows[0].label != "zero-shot":
            rows = (ROWS[0], *rows)  # the base answers every win rate compares with
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    run_fspo_bench(cfg, rows=rows, train=_trainer(cfg), betas=dict(DEFAULT_BETA),
                   on_log=lambda s: err.print(f"bench fspo: {s}", markup=False))
    Console().print(Markdown((Path(args.out) / "results.md").read_text()))
    print(f"results: {args.out}/results.json, results.md, win_rates.png")
    return 0


def _trainer(cfg: Any) -> Any:
    """The bench's adapter trainer: ``train fspo`` with the bench's sizes (reference log-probs
    precomputed for only the episodes the steps use)."""
    from persona_lab.train.fspo import FSPOTrainConfig, train_fspo

    def train(name: str, loss: str, description: bool, folder: Any) -> None:
        tc = FSPOTrainConfig(base=cfg.base, data=str(folder.parent.parent / "data"), out=str(folder), loss=loss,
                             description=description, shots=cfg.shots, max_steps=cfg.steps,
                             batch_size=cfg.batch_size, learning_rate=cfg.learning_rate, lora_r=cfg.lora_r,
                             lora_alpha=2 * cfg.lora_r, max_length=cfg.max_length, seed=cfg.seed,
                             episode_seed=cfg.seed, precompute_ref_log_probs=True,
                             max_samples=cfg.steps * cfg.batch_size, warmup=0.1)
        train_fspo(tc, overwrite=True)

    return train
