"""``persona-lab bench regen``: hindsight regenerations + offline learners on ``Persuasion-v0`` (in cli/ because it
runs both the trainers and the evaluation runner).

The pipeline, every stage cached in ``<out>`` so that a rerun resumes where it stopped:

1. ``warm/`` (optional) — an SFT warm start of the base model on the *scripted* ``no-learning``
   persuader's turns (so a small model writes in-world persuader turns at all);
2. ``runs/collect`` — the base persuader (the warm-started model, greedy) talks to the scripted
   persuadees of population ``train_population``;
3. ``data/dialogues.jsonl`` — the original dialogues plus the regenerations of every controller
   (``data/regen-<controller>.jsonl`` caches them), with ``data/regen_stats.json``;
4. ``adapters/<learner>`` — BC, filtered BC, BC + regenerations, DPO on (regenerated ≻ original)
   turns, KTO, and ILQL on originals and on originals + regenerations, all on the same rows;
5. ``runs/eval-<arm>`` — each arm persuades the *held-out* population ``eval_population``;
6. ``results.json`` and ``results.md`` — donation rate and mean donation with 95% CIs and n per arm,
   plus the regenerations each controller produced and their mean reward gain.

Regenerations that train the learners come from ``learn_controller`` (the scripted one by default);
the oracle controller's rows are reported as an upper bound on what a controller can find, never
trained on unless asked. The ``oracle`` arm is the oracle persuader told the hidden persona.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from persona_lab.core.errors import ConfigError
from persona_lab.core.io import atomic_write_json, atomic_write_text
from persona_lab.eval.metrics import mean_ci, metric_ci
from persona_lab.eval.runner import RunConfig, Runner

ENV_ID = "persona_lab/Persuasion-v0"
ARMS = ("no-learning", "bc", "filtered-bc", "bc-regen", "dpo-regen", "kto", "ilql-orig", "ilql-regen", "oracle")
CONTROLLERS = ("scripted", "oracle", "llm")


@dataclass(frozen=True)
class RegenBenchConfig:
    """What ``persona-lab bench regen`` runs (saved to ``<out>/bench_config.json``)."""

    out: str = field(metadata={"help": "results folder"})
    base: str = field(default="smollm2-135m", metadata={"help": "base model (packaged name, folder or hub id), or "
                                                                "tiny-random: a random tiny Llama built in code"})
    policy: str = field(default="llm", metadata={"help": "llm: the base model persuades in every arm; scripted: the "
                                                        "scripted persuaders, and the ilql agent re-ranks scripted "
                                                        "candidates (BC/DPO/KTO need an LLM and are skipped)"})
    warm_start: bool = field(default=True, metadata={"help": "SFT warm start on scripted persuader turns first"})
    warm_episodes: int = field(default=24, metadata={"help": "scripted dialogues of the warm start"})
    warm_steps: int = field(default=30, metadata={"help": "SFT steps of the warm start"})
    train_episodes: int = field(default=32, metadata={"help": "dialogues collected with the base persuader"})
    eval_episodes: int = field(default=24, metadata={"help": "held-out persuadees per arm"})
    rounds: int = field(default=4, metadata={"help": "persuader turns per dialogue"})
    train_population: int = field(default=0, metadata={"help": "population seed of the collected dialogues"})
    eval_population: int = field(default=1, metadata={"help": "population seed of the held-out evaluation"})
    seed: int = field(default=0, metadata={"help": "seed of runs, regenerations and training"})
    controllers: tuple[str, ...] = field(default=("scripted", "oracle"), metadata={"help": "hindsight controllers"})
    learn_controller: str = field(default="scripted", metadata={"help": "whose regenerations the learners use"})
    arms: tuple[str, ...] = field(default=ARMS, metadata={"help": "table rows"})
    steps: int = field(default=20, metadata={"help": "optimizer steps per learner"})
    batch_size: int = field(default=4, metadata={"help": "batch size per learner"})
    max_length: int = field(default=768, metadata={"help": "token budget per training sequence"})
    max_new_tokens: int = field(default=48, metadata={"help": "persuader turn budget"})
    candidates: int = field(default=4, metadata={"help": "ILQL best-of-N"})
    head_rank: int = field(default=64, metadata={"help": "ILQL Q-head rank (0: full vocabulary heads)"})
    ilql_learning_rate: float = field(default=5e-5, metadata={"help": "ILQL learning rate (LoRA and heads)"})
    device: str = field(default="auto", metadata={"help": "training device"})

    def __post_init__(self) -> None:
        if self.policy not in ("llm", "scripted"):
            raise ConfigError(f"policy={self.policy!r}", hint="use llm or scripted")
        bad = [a for a in self.arms if a not in ARMS]
        if bad:
            raise ConfigError(f"unknown bench regen arms {bad}", hint=f"choose from {', '.join(ARMS)}")
        bad = [c for c in self.controllers if c not in CONTROLLERS]
        if bad or self.learn_controller not in self.controllers:
            raise ConfigError(f"controllers {list(self.controllers)} / learn_controller {self.learn_controller!r}",
                              hint=f"controllers from {', '.join(CONTROLLERS)}; learn_controller must be one of them")
        for name in ("train_episodes", "eval_episodes", "rounds", "steps", "batch_size", "candidates"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)}: must be at least 1")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def quick(out: str, **overrides: Any) -> RegenBenchConfig:
    """The ``--quick`` size: small enough for SmolLM2-135M on a 2-core CPU (tens of minutes; far too small
    for a conclusive comparison)."""
    values: dict[str, Any] = dict(warm_episodes=12, warm_steps=12, train_episodes=12, eval_episodes=10, rounds=3,
                                  steps=6, batch_size=2, max_length=512, max_new_tokens=24, candidates=2)
    values.update(overrides)
    return RegenBenchConfig(out=out, **values)


Stage = Callable[[str], None]


def _hf(base: str, adapter: Path | None = None) -> str:
    return f"hf:{base}" + (f"+{adapter}" if adapter is not None else "")


def _run(out: Path, config: RunConfig, *, cache: bool, cache_dir: str | None) -> dict[str, Any]:
    done = out / "summary.json"
    if done.is_file() and json.loads(done.read_text()).get("episodes") == config.episodes:
        return json.loads(done.read_text())
    runner = Runner(config, out, concurrency=4, cache=cache, cache_dir=cache_dir)  # the hf backend batches them
    return runner.run(resume=(out / "config.json").exists()).summary


def run_regen_bench(cfg: RegenBenchConfig, *, cache: bool = True, cache_dir: str | None = None,
                    on_stage: Stage | None = None) -> dict[str, Any]:
    """Run (or resume) the whole pipeline and write ``results.json`` / ``results.md``."""
    import persona_lab.train.ilql  # noqa: F401  (registers the ilql agent's value-model loader)
    from persona_lab.simulators.persuasion import ScriptedPersuadee
    from persona_lab.simulators.persuasion_hindsight import make_controller
    from persona_lab.train.dialogues import load_dialogues, regenerate_rows, rows_from_run, save_dialogues

    say = on_stage or (lambda _m: None)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    stored = out / "bench_config.json"
    if stored.is_file() and _settings(json.loads(stored.read_text())) != _settings(json.loads(json.dumps(cfg.to_dict()))):
        raise ConfigError(f"{out} holds a bench regen run with other settings",
                          hint="rerun with the same flags to resume (--arms may differ), or choose a new --out")
    atomic_write_json(stored, cfg.to_dict())
    train_env = {"population_seed": cfg.train_population}
    agent_kw = {"max_new_tokens": cfg.max_new_tokens}
    llm = cfg.policy == "llm"
    base = cfg.base
    if base == "tiny-random":
        from persona_lab.testing.tiny import save_tiny_model

        folder = out / "tiny-random"
        if not (folder / "config.json").is_file():
            save_tiny_model(folder, seed=cfg.seed, max_positions=8192)
        base = str(folder)
        cfg = RegenBenchConfig(**{**cfg.__dict__, "base": base})

    # 1. warm start
    policy_adapter: Path | None = None
    if cfg.warm_start and llm:
        policy_adapter = out / "warm"
        if not (policy_adapter / "adapter_config.json").is_file():
            say("warm start: scripted persuader dialogues")
            scripted = out / "runs" / "warm-scripted"
            _run(scripted, RunConfig(env_id=ENV_ID, agent="no-learning", rounds=cfg.rounds, episodes=cfg.warm_episodes,
                                     seed=cfg.seed + 7, env_kwargs={"population_seed": cfg.train_population + 100}),
                 cache=cache, cache_dir=cache_dir)
            say("warm start: SFT")
            _train("sft", policy_adapter, cfg, _sft(rows_from_run(scripted)), base=cfg.base, steps=cfg.warm_steps)
    policy = _hf(cfg.base, policy_adapter) if llm else "scripted"
    base_for_learners = cfg.base if policy_adapter is None else f"hf:{cfg.base}+{policy_adapter}"

    # 2. collect
    say("collect: base persuader dialogues")
    collect = out / "runs" / "collect"
    _run(collect, RunConfig(env_id=ENV_ID, agent="no-learning", backend=policy, user="scripted", rounds=cfg.rounds,
                            episodes=cfg.train_episodes, seed=cfg.seed, env_kwargs=train_env,
                            agent_kwargs=agent_kw if llm else {}),
         cache=cache, cache_dir=cache_dir)
    originals = rows_from_run(collect, prefix="collect")

    # 3. regenerate
    data_dir = out / "data"
    stats: dict[str, Any] = {}
    regens: dict[str, list] = {}
    for name in cfg.controllers:
        say(f"regenerate: {name} controller")
        model = None
        if name == "llm":
            if not llm:
                raise ConfigError("the llm controller needs an LLM", hint="use policy=llm, or controllers scripted/oracle")
            from persona_lab.models import CachedChatModel, ResponseCache, UsageMeter, create_backend

            model = CachedChatModel(create_backend(policy), ResponseCache(cache_dir) if cache else None, UsageMeter())
        rows, st = regenerate_rows(originals, make_controller(name, model), ScriptedPersuadee(), seed=cfg.seed,
                                   cache=data_dir / f"regen-{name}.jsonl")
        regens[name], stats[name] = rows, st.to_dict()
    all_rows = originals + [r for rows in regens.values() for r in rows]
    save_dialogues(all_rows, data_dir / "dialogues.jsonl")
    load_dialogues(data_dir / "dialogues.jsonl")  # validate what we wrote
    atomic_write_json(data_dir / "regen_stats.json", stats)
    learn = originals + regens[cfg.learn_controller]

    # 4. learners
    from persona_lab.train.dialogues import dpo_pairs, kto_examples, sft_examples

    datasets: dict[str, tuple[str, Any]] = {
        "bc": ("sft", sft_examples(originals)),
        "filtered-bc": ("sft", sft_examples(originals, min_reward=1e-9)),
        "bc-regen": ("sft", sft_examples(learn, min_reward=1e-9)),
        "dpo-regen": ("dpo", dpo_pairs(learn)),
        "kto": ("kto", kto_examples(learn)),
        "ilql-orig": ("ilql", originals),
        "ilql-regen": ("ilql", learn),
    }
    trained: dict[str, Path | None] = {}
    notes: dict[str, str] = {}
    for arm in cfg.arms:
        if arm not in datasets:
            continue
        method, data = datasets[arm]
        folder = out / "adapters" / arm
        if method != "ilql" and not llm:
            trained[arm], notes[arm] = None, "needs an LLM persuader (policy=llm)"
            continue
        if not data or (method == "kto" and len({e["label"] for e in data}) < 2):
            trained[arm], notes[arm] = None, "no training examples (skipped)"
            continue
        cached = (folder / ("ilql_heads.safetensors" if method == "ilql" else "adapter_config.json")).is_file()
        say(f"train: {arm} ({method}, {len(data)} examples){' (cached)' if cached else ''}")
        try:
            if method == "ilql":
                _train_ilql(folder, cfg, data)
            else:
                _train(method, folder, cfg, data, base=base_for_learners, steps=cfg.steps)
        except (ValueError, RuntimeError) as exc:  # e.g. every example longer than max_length
            trained[arm], notes[arm] = None, f"training failed: {str(exc).splitlines()[0][:120]}"
            say(f"train: {arm} failed: {exc}")
            continue
        trained[arm] = folder
        notes[arm] = f"{method} on {len(data)} {'dialogues' if method == 'ilql' else 'examples'}"

    # 5. evaluate on held-out persuadees
    eval_env = {"population_seed": cfg.eval_population}
    summaries: dict[str, dict[str, Any]] = {}
    for arm in cfg.arms:
        if arm in trained and trained[arm] is None:
            continue
        say(f"evaluate: {arm}")
        agent, backend, kwargs = "no-learning", policy, dict(agent_kw) if llm else {}
        if arm == "oracle":
            agent = "oracle"
        elif arm.startswith("ilql"):
            agent = "ilql"
            kwargs.update(value_model=str(trained[arm]), candidates=cfg.candidates, seed=cfg.seed)
        elif arm != "no-learning":
            backend = _hf(cfg.base, trained[arm])
        summaries[arm] = _run(out / "runs" / f"eval-{arm}",
                              RunConfig(env_id=ENV_ID, agent=agent, backend=backend, user="scripted", rounds=cfg.rounds,
                                        episodes=cfg.eval_episodes, seed=cfg.seed + 1000, env_kwargs=eval_env,
                                        agent_kwargs=kwargs),
                              cache=cache, cache_dir=cache_dir)

    results = {"config": cfg.to_dict(), "arms": {arm: _arm_row(s) | {"note": notes.get(arm, "")}
                                                 for arm, s in summaries.items()},
               "skipped": {a: notes[a] for a, p in trained.items() if p is None},
               "regenerations": stats, "originals": _orig_stats(originals)}
    atomic_write_json(out / "results.json", results)
    atomic_write_text(out / "results.md", results_markdown(results))
    return results


def _settings(stored: dict[str, Any]) -> dict[str, Any]:
    """What cached stages depend on: everything but the arms (each arm's files are its own, so a
    rerun may add or drop arms); settings added since a run was stored count at their defaults."""
    import dataclasses

    defaults = {f.name: f.default for f in dataclasses.fields(RegenBenchConfig) if f.default is not dataclasses.MISSING}
    merged = json.loads(json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in defaults.items()}))
    merged.update(stored)
    return {k: v for k, v in merged.items() if k != "arms"}


def _sft(rows: Sequence[Any]) -> list[dict[str, Any]]:
    from persona_lab.train.dialogues import sft_examples

    return sft_examples(rows)


def _train(method: str, folder: Path, cfg: RegenBenchConfig, data: list[dict[str, Any]], *, base: str, steps: int) -> None:
    if (folder / "adapter_config.json").is_file():
        return
    from datasets import Dataset

    from persona_lab.train import METHODS

    config_cls, train_fn = METHODS[method]
    config = config_cls(base=base, out=str(folder), max_steps=steps, batch_size=max(cfg.batch_size, 2 if method == "kto" else 1),
                        max_length=cfg.max_length, seed=cfg.seed, device=cfg.device)
    train_fn(config, dataset=Dataset.from_list(data), overwrite=True)


def _train_ilql(folder: Path, cfg: RegenBenchConfig, rows: list[Any]) -> None:
    from persona_lab.train.ilql import HEADS_FILE, ILQLConfig, train_ilql

    if (folder / HEADS_FILE).is_file():
        return
    config = ILQLConfig(base=cfg.base, out=str(folder), max_steps=cfg.steps, batch_size=cfg.batch_size,
                        max_length=cfg.max_length, seed=cfg.seed, device=cfg.device, sources="original,regenerated",
                        head_rank=cfg.head_rank, learning_rate=cfg.ilql_learning_rate,
                        exclude_controllers="")  # the pipeline picked the rows itself
    train_ilql(config, rows=rows, overwrite=True)


def _per_episode(summary: dict[str, Any], suffix: str) -> list[float]:
    out = []
    for metrics in summary.get("per_episode", {}).values():
        key = next((k for k in metrics if k == suffix or k.endswith("/" + suffix)), None)
        if key is not None:
            out.append(float(metrics[key]))
    return out


def _arm_row(summary: dict[str, Any]) -> dict[str, Any]:
    donation = _per_episode(summary, "mean_donation") or _per_episode(summary, "donation")
    rate = _per_episode(summary, "donation_rate")
    # a rate is a 0/1 outcome per persuadee (Wilson); a donation lives in [0, 2] dollars
    return {"n": len(donation), "donation_rate": metric_ci("episode/donation_rate", rate),
            "mean_donation": mean_ci(donation, bounds=(0.0, 2.0))}


def _orig_stats(rows: Sequence[Any]) -> dict[str, Any]:
    rewards = [r.reward for r in rows]
    return {"n": len(rows), "mean_donation": mean_ci(rewards)["mean"] if rows else None,
            "donation_rate": sum(r > 0 for r in rewards) / len(rows) if rows else None}


def _fmt(ci: dict[str, float], pct: bool = False) -> str:
    if not ci.get("n"):
        return "–"
    if ci.get("ci_low") is None:  # one persuadee: no interval
        return (f"{ci['mean'] * 100:.1f}%" if pct else f"${ci['mean']:.2f}") + " (n = 1)"
    if pct:
        return f"{ci['mean'] * 100:.1f}% [{ci['ci_low'] * 100:.1f}, {ci['ci_high'] * 100:.1f}]"
    return f"${ci['mean']:.2f} [{ci['ci_low']:.2f}, {ci['ci_high']:.2f}]"


def results_markdown(results: dict[str, Any]) -> str:
    """The table: donation rate and mean donation (95% CIs, n) per arm, then the regenerations."""
    cfg = results["config"]
    if cfg.get("policy", "llm") == "llm":
        policy = f"policy: the base model {cfg['base']}" + (
            " + SFT warm start on scripted persuader turns" if cfg["warm_start"] else "")
    else:
        policy = f"policy: scripted persuaders (ILQL re-ranks scripted candidates; value trunk {cfg['base']})"
    lines = [f"Held-out persuadees (population {cfg['eval_population']}), {cfg['rounds']} persuader turns, {policy}.",
             "", "| arm | donation rate (95% CI) | mean donation (95% CI) | n | trained on |",
             "| --- | --- | --- | --- | --- |"]
    for arm, row in results["arms"].items():
        lines.append(f"| {arm} | {_fmt(row['donation_rate'], pct=True)} | {_fmt(row['mean_donation'])} | {row['n']} "
                     f"| {row.get('note', '')} |")
    for arm, why in results.get("skipped", {}).items():
        lines.append(f"| {arm} | – | – | 0 | {why} |")
    o = results["originals"]
    lines += ["", f"Collected dialogues: {o['n']} (donation rate {100 * (o['donation_rate'] or 0):.1f}%, "
              f"mean ${o['mean_donation'] or 0:.2f}).", "",
              "| controller | dialogues read | proposals | regenerations | failures | mean reward gain |",
              "| --- | --- | --- | --- | --- | --- |"]
    for name, st in results["regenerations"].items():
        gain = "–" if st["mean_gain"] is None else f"{st['mean_gain']:+.3f}"
        label = f"{name} (upper bound: reads the persona)" if name == "oracle" else name
        lines.append(f"| {label} | {st['parents']} | {st['proposals']} | {st['regenerated']} | {st['failures']} | {gain} |")
    return "\n".join(lines) + "\n"
