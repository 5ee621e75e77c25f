"""``persona-lab bench rlhs``: RLHS's experiment in one command.

collect (two seller turns per train scenario, sampled from the policy) -> label (the customer compares
them under immediate / partial / full hindsight feedback; the misalignment check is printed) -> train
(one DPO LoRA adapter per mode, optionally GRPO) -> evaluate (the base policy and every adapter on the
held-out scenarios, through the runner) -> report (markdown, JSON, PNG).

Everything lands under ``--out``; every stage is skipped when its output is already there, and the
runs use a response cache inside ``--out``, so an interrupted bench resumes where it stopped::

    <out>/data/        split.json, comparisons.jsonl, <mode>.jsonl, misalignment.json, build_config.json
    <out>/adapters/    sft/ (warm start, when asked), dpo-<mode>/, grpo-<mode>/
    <out>/runs/<row>/  one Marketplace-v0 run per table row (held-out scenarios)
    <out>/results.json, results.md, rating_vs_utility.png

This module composes the train and eval layers (only the CLI may know both).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from persona_lab.core.errors import ConfigError

ENV_ID = "persona_lab/Marketplace-v0"
SCRIPTED_ROWS = ("oracle", "no-learning", "deceptive-seller")


@dataclass(frozen=True)
class RLHSBenchConfig:
    """What ``persona-lab bench rlhs`` runs (saved as ``<out>/bench_config.json``)."""

    out: str = field(default="results/rlhs", metadata={"help": "results folder"})
    base: str = field(default="hf:smollm2-135m", metadata={
        "help": "the policy's base model (hf:<model>); 'scripted': no model, the scripted sellers only (data check)"})
    policy: str = field(default="model", metadata={
        "help": "who writes the paired turns: 'model' (samples from the policy, as RLHS) or 'scripted' "
                "(honest and deceptive scripted sellers)"})
    customer: str = field(default="scripted", metadata={"help": "the customer that labels and evaluates: scripted or llm"})
    customer_backend: str | None = field(default=None, metadata={"help": "backend of the llm customer"})
    seed: int = field(default=0, metadata={"help": "seeds the split, the sampling, the training and the evaluation"})
    test_categories: int = field(default=2, metadata={"help": "categories held out for evaluation"})
    pairs: int = field(default=200, metadata={"help": "train scenarios to sample a pair on"})
    test_scenarios: int = field(default=100, metadata={"help": "held-out scenarios per evaluated seller"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature of the policy (RLHS: 1.0)"})
    max_new_tokens: int = field(default=160, metadata={"help": "seller turn budget (sampling and evaluation)"})
    modes: tuple[str, ...] = field(default=("immediate", "partial_hindsight", "full_hindsight"),
                                   metadata={"help": "feedback modes to train an adapter on"})
    sft_steps: int = field(default=0, metadata={"help": "SFT warm-start steps on honest scripted-seller turns (0: none)"})
    sft_examples: int = field(default=80, metadata={"help": "warm-start examples"})
    dpo_steps: int = field(default=20, metadata={"help": "DPO steps per mode"})
    grpo_modes: tuple[str, ...] = field(default=(), metadata={"help": "modes to also train by GRPO (online arm)"})
    grpo_steps: int = field(default=10, metadata={"help": "GRPO steps per mode"})
    batch_size: int = field(default=4, metadata={"help": "pairs (DPO) / prompts x generations (GRPO) per step"})
    learning_rate: float = field(default=5e-5, metadata={"help": "DPO / GRPO learning rate (RLHS: 5e-5)"})
    max_length: int = field(default=1024, metadata={"help": "tokens per training sequence"})
    data_only: bool = field(default=False, metadata={"help": "stop after the pairs and the misalignment check"})
    eval_concurrency: int = field(default=8, metadata={"help": "evaluation episodes in flight (batched by hf)"})

    @property
    def scripted(self) -> bool:
        return self.base.strip() in ("", "scripted")


# A smoke-sized run (the whole pipeline on a 2-core CPU with a 135M model); far too small to show learning.
QUICK = {"pairs": 16, "test_scenarios": 16, "max_new_tokens": 64, "sft_steps": 0, "sft_examples": 32,
         "dpo_steps": 2, "batch_size": 1, "grpo_steps": 2}


def add_parser(bsub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from persona_lab.cli.common import nonnegative_int, positive_int
    from persona_lab.train.rlhs import MODES

    q = bsub.add_parser("rlhs", help="RLHS: DPO on immediate vs hindsight feedback, evaluated on held-out scenarios",
                        description=__doc__.split("\n\n")[0] if __doc__ else None)
    d = RLHSBenchConfig()
    q.add_argument("--out", default=d.out, help=f"results folder (default {d.out})")
    q.add_argument("--base", default=d.base, help="policy base model, hf:<model>; 'scripted' for the data check only "
                                                  f"(default {d.base})")
    q.add_argument("--policy", default=d.policy, choices=["model", "scripted"], help="who writes the paired turns")
    q.add_argument("--customer", default=d.customer, choices=["scripted", "llm"], help="labelling/evaluating customer")
    q.add_argument("--customer-backend", default=None, help="backend spec of the llm customer")
    q.add_argument("--seed", type=nonnegative_int, default=d.seed,
                   help="seeds the split, the sampled turns, the training and the evaluation (default 0)")
    q.add_argument("--pairs", type=positive_int, default=None, help=f"train scenarios with a pair (default {d.pairs})")
    q.add_argument("--test-scenarios", type=positive_int, default=None, help=f"held-out scenarios (default {d.test_scenarios})")
    q.add_argument("--temperature", type=_positive_temperature, default=None, help="policy sampling temperature (default 1.0)")
    q.add_argument("--max-new-tokens", type=positive_int, default=None, help=f"seller turn budget (default {d.max_new_tokens})")
    q.add_argument("--modes", nargs="+", choices=list(MODES), default=None, help="modes to train (default: all three)")
    q.add_argument("--sft-steps", type=nonnegative_int, default=None, help="SFT warm start on honest scripted turns (default 0)")
    q.add_argument("--dpo-steps", type=positive_int, default=None, help=f"DPO steps per mode (default {d.dpo_steps})")
    q.add_argument("--grpo", nargs="*", choices=list(MODES), default=None, help="also train GRPO on these modes")
    q.add_argument("--grpo-steps", type=positive_int, default=None, help=f"GRPO steps per mode (default {d.grpo_steps})")
    q.add_argument("--batch-size", type=positive_int, default=None, help=f"pairs per DPO step; GRPO's group size (default {d.batch_size})")
    q.add_argument("--data-only", action="store_true", help="stop after the pairs and the misalignment check")
    q.add_argument("--quick", action="store_true",
                   help="a small run (" + ", ".join(f"{k}={v}" for k, v in QUICK.items()) + "); flags still win")
    q.set_defaults(func=run_cli)
    return q


def _positive_temperature(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0 (pairs need sampled turns), got {text}")
    return value


def config_from_args(args: argparse.Namespace) -> RLHSBenchConfig:
    values: dict[str, Any] = dict(QUICK) if args.quick else {}
    flags = {"out": args.out, "base": args.base, "policy": args.policy, "customer": args.customer,
             "customer_backend": args.customer_backend, "seed": args.seed, "pairs": args.pairs,
             "test_scenarios": args.test_scenarios, "temperature": args.temperature,
             "max_new_tokens": args.max_new_tokens, "sft_steps": args.sft_steps, "dpo_steps": args.dpo_steps,
             "grpo_steps": args.grpo_steps, "batch_size": args.batch_size,
             "modes": tuple(args.modes) if args.modes else None,
             "grpo_modes": tuple(args.grpo) if args.grpo is not None else None,
             "data_only": True if args.data_only else None}
    values.update({k: v for k, v in flags.items() if v is not None})
    return RLHSBenchConfig(**values)


def run_cli(args: argparse.Namespace) -> int:
    from rich.console import Console

    from persona_lab.cli.common import check_out_dir

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    check_out_dir(args.out)
    cfg = config_from_args(args)
    results = run_rlhs_bench(cfg, log=lambda msg: err.print(msg, markup=False))
    out = Console(highlight=False, soft_wrap=True)
    out.print((Path(cfg.out) / "results.md").read_text(), markup=False)
    files = "results.json, results.md" + ("" if cfg.data_only else ", rating_vs_utility.png")
    out.print(f"results: {cfg.out}/{files}, pairs in {cfg.out}/data (total {results['wall_s']:.0f} s)", markup=False)
    return 0


# --------------------------------------------------------------------------------------------------
# the pipeline


def run_rlhs_bench(cfg: RLHSBenchConfig, *, log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Run (or resume) the whole bench; returns ``results.json``'s content."""
    from persona_lab.core.io import atomic_write_json, atomic_write_text
    from persona_lab.eval import rlhs_report
    from persona_lab.train.rlhs import MODES, format_misalignment, split_scenarios

    _check(cfg, MODES)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    _check_resume(out, cfg)
    start = time.perf_counter()
    split = split_scenarios(cfg.seed, test_categories=cfg.test_categories)
    log(f"split: test categories {list(split.test_categories)} ({len(split.test)} scenarios), "
        f"train {len(split.train)} scenarios")

    policy_spec = None if cfg.scripted else _hf(cfg.base)
    if not cfg.scripted and cfg.sft_steps > 0:
        policy_spec = _warm_start(cfg, split, out, log)
    misalign = _collect(cfg, split, policy_spec, out, log)
    log(format_misalignment(misalign))
    if cfg.data_only:
        results = {"config": asdict(cfg), "split": split.to_dict(), "misalignment": misalign, "rows": {},
                   "wall_s": time.perf_counter() - start}
        atomic_write_json(out / "results.json", results)
        atomic_write_text(out / "results.md", "```\n" + format_misalignment(misalign) + "\n```\n")
        return results

    rows: dict[str, str] = {}
    if cfg.scripted:
        rows.update({name: "scripted" for name in SCRIPTED_ROWS})
    else:
        assert policy_spec is not None
        rows["base" if cfg.sft_steps <= 0 else "base+sft"] = policy_spec
        for mode in cfg.modes:
            rows[f"dpo-{mode}"] = _train_dpo(cfg, policy_spec, out / "data" / f"{mode}.jsonl",
                                             out / "adapters" / f"dpo-{mode}", log)
        for mode in cfg.grpo_modes:
            rows[f"grpo-{mode}"] = _train_grpo(cfg, split, policy_spec, mode, out / "adapters" / f"grpo-{mode}", log)

    stats = {}
    for label, spec in rows.items():
        run_dir = _evaluate(cfg, split, label, spec, out, log)
        stats[label] = rlhs_report.run_stats(run_dir)
    note = (f"RLHS on {ENV_ID}: {stats[next(iter(stats))]['n']} held-out scenarios (categories "
            f"{', '.join(split.test_categories)}), customer `{cfg.customer}`, base `{cfg.base}`, "
            f"{misalign['pairs']} train pairs, seed {cfg.seed}. Mean [95% CI] per seller turn; ratings in [0, 1], "
            "utility in [-1, 1]; deception = a turn with a claim the hidden table contradicts (claim grammar).")
    results = {"config": asdict(cfg), "split": split.to_dict(), "misalignment": misalign,
               "rows": {label: {"spec": rows[label], **s} for label, s in stats.items()},
               "wall_s": time.perf_counter() - start}
    atomic_write_json(out / "results.json", results)
    atomic_write_text(out / "results.md", rlhs_report.markdown_table(stats, note=note) + "\n```\n"
                      + format_misalignment(misalign) + "\n```\n")
    rlhs_report.plot_rating_vs_utility(stats, out / "rating_vs_utility.png", title=f"RLHS, base {cfg.base}")
    return results


def _check(cfg: RLHSBenchConfig, modes: tuple[str, ...]) -> None:
    bad = [m for m in (*cfg.modes, *cfg.grpo_modes) if m not in modes]
    if bad:
        raise ConfigError(f"unknown feedback modes {bad}", hint=f"use {list(modes)}")
    if cfg.scripted and cfg.policy == "model":
        cfg_policy_hint = "with --base scripted the pairs come from the scripted sellers (--policy scripted)"
        raise ConfigError("--base scripted has no model to sample turns from", hint=cfg_policy_hint)
    if cfg.customer == "llm" and not cfg.customer_backend:
        raise ConfigError("--customer llm needs --customer-backend", hint="e.g. --customer-backend hf:smollm2-135m")
    if cfg.pairs < 1 or cfg.test_scenarios < 1:
        raise ConfigError("--pairs and --test-scenarios must be >= 1")


def _check_resume(out: Path, cfg: RLHSBenchConfig) -> None:
    """A bench folder belongs to one config: resuming with other settings would mix results."""
    from persona_lab.core.io import atomic_write_json

    path = out / "bench_config.json"
    mine = json.loads(json.dumps(asdict(cfg)))
    if path.exists():
        stored = json.loads(path.read_text())
        stored["data_only"] = mine["data_only"]  # a data-only run may be continued by the full bench
        if stored != mine:
            diff = sorted(k for k in mine if stored.get(k) != mine[k])
            raise ConfigError(f"{out} holds a bench run with other settings ({', '.join(diff)})",
                              hint="rerun with the same flags to resume, or choose another --out")
        return
    atomic_write_json(path, mine)


def _hf(spec: str) -> str:
    return spec if spec.startswith("hf:") else f"hf:{spec}"


def _adapter_spec(policy_spec: str, adapter: Path) -> str:
    from persona_lab.train.common import split_base_spec

    name, _ = split_base_spec(policy_spec)
    return f"hf:{name}+{adapter}"


def _cache(out: Path) -> Any:
    from persona_lab.models import ResponseCache

    return ResponseCache(out / "cache")


def _customer(cfg: RLHSBenchConfig, out: Path) -> Any:
    from persona_lab.simulators.marketplace import make_customer

    if cfg.customer == "scripted":
        return make_customer("scripted")
    from persona_lab.models import CachedChatModel, create_backend

    assert cfg.customer_backend is not None
    return make_customer("llm", CachedChatModel(create_backend(cfg.customer_backend), _cache(out)))


def _warm_start(cfg: RLHSBenchConfig, split: Any, out: Path, log: Callable[[str], None]) -> str:
    from datasets import Dataset

    from persona_lab.train.rlhs import warm_start_rows
    from persona_lab.train.sft import SFTTrainConfig, train_sft

    adapter = out / "adapters" / "sft"
    if not (adapter / "adapter_config.json").exists():
        rows = warm_start_rows(split.sample("train", cfg.sft_examples, seed=cfg.seed + 1), seed=cfg.seed)
        log(f"warm start: SFT {cfg.sft_steps} steps on {len(rows)} honest scripted-seller turns -> {adapter}")
        config = SFTTrainConfig(base=cfg.base, out=str(adapter), max_steps=cfg.sft_steps, batch_size=cfg.batch_size,
                                seed=cfg.seed, max_length=cfg.max_length, logging_steps=1)
        result = train_sft(config, dataset=Dataset.from_list(rows), overwrite=True)
        log(f"  sft loss {result.losses[0][1]:.3f} -> {result.final_loss:.3f} in {result.wall_s:.0f} s")
    return _adapter_spec(cfg.base, adapter)


def _collect(cfg: RLHSBenchConfig, split: Any, policy_spec: str | None, out: Path,
             log: Callable[[str], None]) -> dict[str, Any]:
    from persona_lab.models import CachedChatModel, create_backend
    from persona_lab.models.base import GenerationParams
    from persona_lab.train.rlhs import (
        MISALIGNMENT_FILE,
        MODES,
        ModelPolicy,
        ScriptedPolicy,
        build_pairs,
        write_pair_datasets,
    )

    data = out / "data"
    done = data / MISALIGNMENT_FILE
    if done.exists() and all((data / f"{m}.jsonl").exists() for m in MODES):
        log(f"pairs: reusing {data}")
        return json.loads(done.read_text())
    if cfg.policy == "scripted" or policy_spec is None:
        policy: Any = ScriptedPolicy(seed=cfg.seed)
    else:
        model = CachedChatModel(create_backend(policy_spec), _cache(out))
        policy = ModelPolicy(model, GenerationParams(max_new_tokens=cfg.max_new_tokens,
                                                     temperature=cfg.temperature, seed=cfg.seed))
    indices = split.sample("train", cfg.pairs, seed=cfg.seed)
    log(f"pairs: sampling 2 turns on each of {len(indices)} train scenarios from {policy.describe()}")
    t0 = time.perf_counter()
    pairs = build_pairs(policy, _customer(cfg, out), indices, seed=cfg.seed, train_indices=split.train,
                        batch_size=8)
    paths = write_pair_datasets(pairs, data, split=split, policy=policy.describe(), customer=cfg.customer,
                                seed=cfg.seed)
    sizes = {m: sum(1 for _ in p.open()) for m, p in paths.items()}
    log(f"pairs: {len(pairs)} compared in {time.perf_counter() - t0:.0f} s; non-tie pairs per mode {sizes}")
    return json.loads(done.read_text())


def _train_dpo(cfg: RLHSBenchConfig, policy_spec: str, data: Path, adapter: Path, log: Callable[[str], None]) -> str:
    from persona_lab.train.dpo import train_dpo
    from persona_lab.train.rlhs import rlhs_dpo_config

    if not (adapter / "adapter_config.json").exists():
        n = sum(1 for _ in data.open())
        if n == 0:
            raise ConfigError(f"{data} holds no preference pairs (every comparison was a tie)",
                              hint="sample more pairs (--pairs), or warm-start the policy (--sft-steps) so its "
                                   "turns say something the customer can act on")
        log(f"train: DPO {cfg.dpo_steps} steps on {n} pairs ({data.name}) -> {adapter}")
        config = rlhs_dpo_config(policy_spec, data, adapter, max_steps=cfg.dpo_steps, batch_size=cfg.batch_size,
                                 seed=cfg.seed, learning_rate=cfg.learning_rate, max_length=cfg.max_length)
        result = train_dpo(config, overwrite=True)
        log(f"  dpo loss {result.losses[0][1]:.3f} -> {result.final_loss:.3f} in {result.wall_s:.0f} s")
    return _adapter_spec(policy_spec, adapter)


def _train_grpo(cfg: RLHSBenchConfig, split: Any, policy_spec: str, mode: str, adapter: Path,
                log: Callable[[str], None]) -> str:
    from persona_lab.train.grpo import GRPOTrainConfig, train_grpo
    from persona_lab.train.rlhs_rewards import CustomerReward, grpo_prompt_dataset

    if not (adapter / "adapter_config.json").exists():
        data = grpo_prompt_dataset(split.sample("train", cfg.pairs, seed=cfg.seed), seed=cfg.seed)
        log(f"train: GRPO {cfg.grpo_steps} steps on the {mode} reward (true utility logged) -> {adapter}")
        group = max(2, cfg.batch_size)  # one prompt's group of sampled turns per step
        config = GRPOTrainConfig(base=policy_spec, out=str(adapter), max_steps=cfg.grpo_steps,
                                 batch_size=group, num_generations=group, seed=cfg.seed,
                                 learning_rate=cfg.learning_rate, max_completion_length=cfg.max_new_tokens,
                                 temperature=cfg.temperature, reward_weights=(1.0, 0.0), lora_r=8, lora_alpha=16,
                                 warmup=0.1)
        customer = _customer(cfg, adapter.parent.parent)
        logs: list[dict[str, Any]] = []
        result = train_grpo(config, reward_funcs=[CustomerReward(mode, customer=customer),
                                                  CustomerReward("utility", customer=customer)],
                            dataset=data, overwrite=True, on_log=logs.append)
        opt = [r.get(f"rewards/{mode}_rating/mean") for r in logs if f"rewards/{mode}_rating/mean" in r]
        util = [r.get("rewards/true_utility/mean") for r in logs if "rewards/true_utility/mean" in r]
        if opt and util:
            log(f"  grpo {mode} reward {opt[0]:.3f} -> {opt[-1]:.3f}; true utility {util[0]:.3f} -> {util[-1]:.3f} "
                f"in {result.wall_s:.0f} s")
    return _adapter_spec(policy_spec, adapter)


def _evaluate(cfg: RLHSBenchConfig, split: Any, label: str, spec: str, out: Path, log: Callable[[str], None]) -> Path:
    from persona_lab.core.io import read_jsonl
    from persona_lab.eval.runner import RunConfig, Runner

    run_dir = out / "runs" / label
    # Each held-out scenario is one episode (rounds=1): a scenario drawn by the episode's seed from the
    # held-out categories, the same draws for every row, so the rows are compared on the same scenarios.
    agent = label if cfg.scripted else "no-learning"  # a model seller: the plain seller prompt, as in training
    rc = RunConfig(env_id=ENV_ID, agent=agent, backend=spec, user=cfg.customer, user_backend=cfg.customer_backend,
                   seed=cfg.seed, rounds=1, episodes=cfg.test_scenarios,
                   env_kwargs={"categories": list(split.test_categories)},
                   agent_kwargs={} if spec == "scripted" else {"max_new_tokens": cfg.max_new_tokens})
    if (run_dir / "summary.json").exists():
        n = sum(1 for _ in read_jsonl(run_dir / "transitions.jsonl"))
        if n == cfg.test_scenarios:
            return run_dir
    log(f"eval: {label} ({spec}) on {cfg.test_scenarios} held-out scenarios")
    # One scenario per episode, episodes in parallel threads: the hf backend batches their turns.
    Runner(rc, run_dir, concurrency=cfg.eval_concurrency, cache_dir=str(out / "cache")).run(
        resume=(run_dir / "config.json").exists())
    return run_dir


def quick_config(out: str, base: str, **overrides: Any) -> RLHSBenchConfig:
    """The ``--quick`` config for ``out`` and ``base`` (tests and notebooks)."""
    return replace(RLHSBenchConfig(out=out, base=base, **QUICK), **overrides)
