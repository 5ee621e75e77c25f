"""``persona-lab calibrate <env-id> --user-backend <spec>``: the LLM user against the scripted truth."""

from __future__ import annotations

import argparse
import json
import math
import shlex
from pathlib import Path

from rich.console import Console
from rich.table import Table

from persona_lab.cli.common import add_cache_args, open_model


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("calibrate", help="measure an LLM user against the scripted user on the same items")
    p.add_argument("env_id", help="an edit world, Marketplace-v0, Persuasion-v0 or FollowUp-v0, e.g. persona_lab/EditEmail-v0")
    p.add_argument("--user-backend", required=True, help="the LLM user's backend, e.g. hf:smollm2-135m")
    p.add_argument("--limit", type=int, default=20, help="items to probe (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of users, documents and bootstrap (default 0)")
    p.add_argument("--user-gen", default=None, metavar="K=V,...", help="LLM user decoding, as in `run --user-gen`")
    p.add_argument("--pairwise", default=None, metavar="KIND",
                   help="Marketplace: audit the customer's pairwise prefer() (RLHS feedback) for position bias instead: "
                        "immediate, partial_hindsight or full_hindsight")
    p.add_argument("--out", default=None, help="write the full result (with every call) to this JSON file")
    add_cache_args(p)
    p.set_defaults(func=run)
    return p


def _fmt(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def run(args: argparse.Namespace) -> int:
    from persona_lab.eval.calibrate import calibrate, save_calibration
    from persona_lab.models.decoding import parse_gen, with_gen

    settings = parse_gen(args.user_gen)
    model = with_gen(open_model(args, args.user_backend), settings)
    if args.pairwise:
        return _run_pairwise(args, model, settings.to_dict())
    result = calibrate(args.env_id, model, limit=args.limit, seed=args.seed)
    result["user_gen"] = settings.to_dict()
    if getattr(args, "argv", None):
        result["command"] = "persona-lab " + shlex.join(args.argv)
    print_calibration(result, Console())
    if not args.no_cache:
        save_calibration(result, args.cache_dir)  # `run` with this LLM user prints it beside its results
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    return 0


def print_calibration(r: dict, console: Console) -> None:
    measure = f" · {r['measure']}" if r.get("measure") else ""
    t = Table(title=f"calibration · {r['env_id']} · LLM user {r['user_backend']} vs scripted · {r['items']} items{measure}")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_column("95% CI (bootstrap)", justify="right")
    t.add_row("agreement", _fmt(r["agreement"]), f"[{_fmt(r['agreement_ci'][0])}, {_fmt(r['agreement_ci'][1])}]")
    t.add_row("Cohen's kappa", _fmt(r["kappa"]), f"[{_fmt(r['kappa_ci'][0])}, {_fmt(r['kappa_ci'][1])}]")
    if "donated" in r:
        d = r["donated"]
        t.add_row("donated-or-not agreement", _fmt(d["agreement"]),
                  f"[{_fmt(d['agreement_ci'][0])}, {_fmt(d['agreement_ci'][1])}]")
        t.add_row("donated-or-not Cohen's kappa", _fmt(d["kappa"]), f"[{_fmt(d['kappa_ci'][0])}, {_fmt(d['kappa_ci'][1])}]")
    if "llm_positive_rate" in r:
        t.add_row(f"{r.get('positive_label', 'accept')} rate: scripted / LLM", f"{_fmt(r['scripted_positive_rate'])} / {_fmt(r['llm_positive_rate'])}", "")
    if "llm_share_A" in r:
        t.add_row("share of option A among purchases: scripted / LLM",
                  f"{_fmt(r['scripted_share_A'])} / {_fmt(r['llm_share_A'])}", "")
    if "revision_satisfaction_gain" in r:
        t.add_row(f"preference satisfaction gain of LLM revisions ({r['revisions']})",
                  _fmt(r["revision_satisfaction_gain"]), "")
    for flag, rate in r["rates"].items():
        t.add_row(f"user/{flag} (of {r['calls']} calls)", _fmt(rate), "")
    console.print(t)
    console.print(f"labels: scripted {r['scripted_labels']}, LLM {r['llm_labels']}")
    if "donated" in r:
        console.print(f"donated-or-not: scripted {r['donated']['scripted_labels']}, LLM {r['donated']['llm_labels']}")


def _run_pairwise(args: argparse.Namespace, model: object, user_gen: dict) -> int:
    from persona_lab.core.errors import ConfigError
    from persona_lab.eval.calibrate import pairwise_position_bias
    from persona_lab.eval.runner import env_class

    if env_class(args.env_id).task != "marketplace":
        raise ConfigError(f"--pairwise audits the marketplace customer, not {args.env_id}",
                          hint="use persona_lab/Marketplace-v0, or leave --pairwise out")
    r = pairwise_position_bias(args.env_id, model, limit=args.limit, seed=args.seed, kind=args.pairwise)  # type: ignore[arg-type]
    r["user_gen"] = user_gen
    t = Table(title=f"pairwise prefer() · {r['env_id']} · {r['user_backend']} · {r['kind']} · {r['pairs']} pairs, "
                    "each asked in both orders")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_column("95% CI (bootstrap)", justify="right")
    t.add_row("verdict flips when the order is swapped", _fmt(r["flip_rate"]), "")
    t.add_row("answers 'the first' in both orders", _fmt(r["first_both_orders"]), "")
    t.add_row("answers 'the second' in both orders", _fmt(r["second_both_orders"]), "")
    t.add_row("ties (of all answers)", _fmt(r["tie_rate"]), "")
    t.add_row("unreadable answers (of all answers)", _fmt(r["unclear_rate"]), "")
    for order in ("forward", "backward"):
        b = r[order]
        t.add_row(f"agreement with the scripted preference ({order} order)", _fmt(b["agreement"]),
                  f"[{_fmt(b['agreement_ci'][0])}, {_fmt(b['agreement_ci'][1])}]")
        t.add_row(f"Cohen's kappa ({order} order)", _fmt(b["kappa"]), f"[{_fmt(b['kappa_ci'][0])}, {_fmt(b['kappa_ci'][1])}]")
    console = Console()
    console.print(t)
    console.print(f"labels: scripted {r['forward']['scripted_labels']}, LLM forward {r['forward']['llm_labels']}, "
                  f"LLM backward (mapped back) {r['backward']['llm_labels']}")
    if args.out:
        Path(args.out).write_text(json.dumps(r, indent=2, default=str), encoding="utf-8")
    return 0
