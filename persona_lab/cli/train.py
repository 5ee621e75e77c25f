"""``persona-lab train {sft,dpo,ipo}``: train a LoRA adapter; ``persona-lab train data``: build a dataset.

Settings resolve as defaults < ``--config file.yaml`` < flags. Every setting of the method's config
dataclass is a flag (``lora_r`` -> ``--lora-r``), with the dataclass's help text.

Several GPUs, no code change (one process per GPU, data parallel)::

    accelerate launch --num_processes 4 -m persona_lab.cli.main train dpo --base ... --data ... --out ...
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from typing import Any

from rich.console import Console

FLAG_ALIASES = {"learning_rate": ["--lr"]}
METHOD_HELP = {
    "sft": "supervised fine-tuning on prompt/completion data (TRL SFTTrainer)",
    "dpo": "direct preference optimization on preference pairs (TRL DPOTrainer)",
    "ipo": "identity preference optimization on preference pairs (TRL DPOTrainer, loss_type=ipo)",
    "kto": "Kahneman-Tversky optimization on desirable/undesirable completions (TRL KTOTrainer)",
    "ilql": "implicit language Q-learning on persuasion dialogues (persona_lab.train.ilql, offline RL)",
    "fspo": "few-shot preference optimization on FSPO episodes (--loss dpo|ipo, --description; data: fspo data)",
}
DATA_KINDS = ("preference", "sft", "unpaired")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from persona_lab.train import METHODS

    p = sub.add_parser(
        "train",
        help="train a LoRA adapter (sft, dpo, ipo) on data from persona-lab runs",
        description="Train a LoRA adapter with TRL + peft. Settings: defaults < --config YAML < flags. "
        "Multi-GPU: accelerate launch -m persona_lab.cli.main train <method> ...",
    )
    methods = p.add_subparsers(dest="train_method", metavar="<method>", parser_class=type(p))
    for name, (config_cls, _fn) in METHODS.items():
        mp = methods.add_parser(name, help=METHOD_HELP[name], description=f"Train a LoRA adapter: {METHOD_HELP[name]}.")
        mp.add_argument("--config", default=None, metavar="YAML", help="YAML file of settings (flags override it)")
        _add_config_flags(mp, config_cls)
        mp.add_argument("--overwrite", action="store_true", help="replace an adapter already in --out")
        mp.add_argument("--quiet", action="store_true", help="no per-step lines, only the final summary")
        mp.add_argument("--json", action="store_true", help="print the final summary as JSON")
        mp.set_defaults(func=run_method, method_name=name)

    dp = methods.add_parser(
        "data",
        help="build a training dataset from a run (or validate a JSONL) and export it",
        description="Build preference pairs or SFT data from an edit-world run, a PrefEval run or a JSONL "
        "file, validate it, and save it (.parquet, .jsonl, or a save_to_disk folder).",
    )
    dp.add_argument("source", help="run directory, .jsonl/.json/.parquet file or saved dataset folder")
    dp.add_argument("--kind", choices=DATA_KINDS, required=True, help="preference pairs (dpo/ipo) or sft data")
    dp.add_argument("--out", required=True, help="where to save: *.parquet, *.jsonl, or a folder (save_to_disk)")
    dp.add_argument("--edited-only", action="store_true",
                    help="edit-world SFT: only rounds where the user changed the draft")
    dp.add_argument("--methods", default=None,
                    help="PrefEval: only answers of these methods, comma-separated (the paper used reminder)")
    dp.add_argument("--judge", default="primary", choices=["primary", "programmatic", "llm", "all"],
                    help="PrefEval: the verdict that decides 'followed' (default: the run's primary judge)")
    dp.add_argument("--keep-method-text", action="store_true",
                    help="PrefEval: keep the method's added prompt text (default: removed)")
    dp.set_defaults(func=run_data)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])
    return p


def _add_config_flags(p: argparse.ArgumentParser, config_cls: type) -> None:
    """One flag per config field; default ``None`` so an unset flag keeps the YAML / default value."""
    group = p.add_argument_group(f"{config_cls.method} settings")
    for f in dataclasses.fields(config_cls):
        if not f.init:
            continue
        flag = "--" + f.name.replace("_", "-")
        names = [flag, *FLAG_ALIASES.get(f.name, [])]
        default = "none" if f.default == "" else f.default
        help_text = str(f.metadata.get("help", "")).replace("%", "%%") + f" (default: {default})"
        kwargs: dict[str, Any] = {"dest": f.name, "default": None, "help": help_text}
        kind = type(f.default)
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = kind
            kwargs["metavar"] = {int: "N", float: "X"}.get(kind, f.name.upper())
        if "choices" in f.metadata:
            kwargs["choices"] = list(f.metadata["choices"])
            kwargs.pop("metavar", None)
        group.add_argument(*names, **kwargs)


def run_method(args: argparse.Namespace) -> int:
    from persona_lab.core.errors import ConfigError
    from persona_lab.train import METHODS, resolve_config

    config_cls, train_fn = METHODS[args.method_name]
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_cls) if f.init}
    config = resolve_config(config_cls, args.config, overrides)
    for name in ("base", "data", "out"):
        if not getattr(config, name):
            raise ConfigError(f"no --{name} given", hint=f"pass --{name} or set `{name}:` in the --config YAML")
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    main_process = os.environ.get("RANK", "0") == "0"  # set by accelerate launch / torchrun
    if not args.quiet and main_process:
        console.print(
            f"persona-lab train {config.method}: base={config.base} data={config.data} out={config.out} "
            f"lora r={config.lora_r} alpha={config.lora_alpha} lr={config.learning_rate:g}",
            markup=False,
        )
    on_log = None if args.quiet else _log_printer(console, config.method)
    result = train_fn(config, on_log=on_log, overwrite=args.overwrite)
    if not result.main_process:
        return 0
    summary = result.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    out = Console(highlight=False, soft_wrap=True)
    first, last = summary["first_loss"], summary["final_loss"]
    out.print(f"trained {config.method} LoRA: {result.steps} steps on {result.examples} examples in {result.wall_s:.1f} s")
    if first is not None and last is not None:
        out.print(f"  loss           {first:.4f} -> {last:.4f}")
    out.print(f"  tokens         {result.train_tokens} ({result.tokens_per_s:.0f} tokens/s)")
    out.print(f"  peak memory    {_human_bytes(result.peak_memory_bytes)} ({result.peak_memory_kind})")
    out.print(f"  adapter        {result.out_dir}")
    if result.loss_curve:
        out.print(f"  loss curve     {result.loss_curve}")
    out.print(f"  use it         --backend 'hf:{_base_name(config.base)}+{result.out_dir}'")
    return 0


def _log_printer(console: Console, method: str):
    keys = {"grad_norm": "grad_norm", "rewards/accuracies": "reward_acc", "rewards/margins": "margin",
            "mean_token_accuracy": "token_acc"}

    def on_log(rec: dict[str, Any]) -> None:
        if "loss" not in rec:
            return
        parts = [f"step {rec['step']}/{rec['max_steps']}", f"loss {rec['loss']:.4f}"]
        if "learning_rate" in rec:
            parts.append(f"lr {rec['learning_rate']:.2e}")
        parts += [f"{label} {rec[k]:.3g}" for k, label in keys.items() if k in rec]
        console.print("  ".join(parts), markup=False)

    return on_log


def _base_name(base: str) -> str:
    base = base[3:] if base.startswith("hf:") else base
    return base.split("+", 1)[0]


def _human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover


def run_data(args: argparse.Namespace) -> int:
    from persona_lab.core.errors import ConfigError
    from persona_lab.train import data as data_mod

    if args.edited_only:
        if args.kind != "sft":
            raise ConfigError("--edited-only applies to --kind sft", hint="preference pairs are edited rounds already")
        ds = data_mod.sft_from_edit_run(args.source, edited_only=True)
    elif _is_prefeval(args.source):
        if args.kind != "sft":
            raise ConfigError("a PrefEval run gives SFT data", hint="use --kind sft")
        methods = [m.strip() for m in args.methods.split(",")] if args.methods else None
        ds = data_mod.sft_from_prefeval_run(args.source, methods=methods, judge=args.judge,
                                            keep_method_text=args.keep_method_text)
    else:
        ds = data_mod.load_training_data(args.source, kind=args.kind)
    fmt = data_mod.check_dataset(ds, kind=args.kind, source=args.source) if len(ds) else "empty"
    path = data_mod.save_dataset(ds, args.out)
    Console(highlight=False, soft_wrap=True).print(
        f"{len(ds)} {args.kind} examples ({fmt}; columns: {', '.join(ds.column_names)}) -> {path}"
    )
    return 0


def _is_prefeval(source: str) -> bool:
    from pathlib import Path

    from persona_lab.train.data import PREFEVAL_FILE

    path = Path(source)
    return (path / PREFEVAL_FILE).is_file() or path.name == PREFEVAL_FILE
