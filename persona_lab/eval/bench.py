"""``persona-lab bench prelude``: every agent × both PRELUDE tasks × seeds, with CIs, a table and plots.

Each (task, agent, seed) is an ordinary run directory under ``<out>/runs/`` (so the bench resumes
exactly like ``persona-lab run --resume``); ``results.json``, ``results.md`` and one PNG per task are
rebuilt from them at the end.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from persona_lab.core.io import atomic_write_json, atomic_write_text
from persona_lab.core.records import episodes, is_complete, read_records
from persona_lab.eval.metrics import metric_ci
from persona_lab.eval.prelude_metrics import exact_accuracy, text_accuracy
from persona_lab.eval.runner import RunConfig, Runner
from persona_lab.models import is_scripted

TASK_ENVS = {"summarization": "persona_lab/EditSummarization-v0", "email": "persona_lab/EditEmail-v0"}


@dataclass(frozen=True)
class AgentVariant:
    """A benchmark row: a registered agent with fixed kwargs."""

    label: str
    agent: str
    kwargs: dict[str, Any] = field(default_factory=dict)


def default_agents(encoder: str = "minilm") -> list[AgentVariant]:
    return [
        AgentVariant("no-learning", "no-learning"),
        AgentVariant("oracle", "oracle"),
        AgentVariant("explore-exploit", "explore-exploit"),
        AgentVariant("continual", "continual"),
        AgentVariant("icl-edit-5", "icl-edit", {"k": 5, "encoder": encoder}),
        AgentVariant("cipher-1", "cipher", {"k": 1, "encoder": encoder}),
        AgentVariant("cipher-5", "cipher", {"k": 5, "encoder": encoder}),
        AgentVariant("fspo-3", "fspo", {"k": 3, "encoder": encoder}),
    ]


@dataclass(frozen=True)
class BenchConfig:
    """What ``persona-lab bench prelude`` runs."""

    out: str = field(metadata={"help": "results folder"})
    tasks: tuple[str, ...] = field(default=("summarization", "email"), metadata={"help": "PRELUDE tasks"})
    agents: tuple[AgentVariant, ...] = field(default_factory=lambda: tuple(default_agents()), metadata={"help": "rows"})
    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata={"help": "one run per seed"})
    rounds: int = field(default=200, metadata={"help": "rounds per run (T)"})
    backend: str = field(default="scripted", metadata={"help": "model backend spec"})
    user: str | None = field(default=None, metadata={"help": "simulated user kind: scripted or llm (default: the "
                                                             "runner's, llm when the backend is a model)"})
    population: str = field(default="prelude", metadata={"help": "population"})
    env_kwargs: dict[str, Any] = field(default_factory=dict, metadata={"help": "extra env kwargs (effort, noise)"})
    last_n: int = field(default=100, metadata={"help": "accuracy is reported over the last n rounds"})


def run_bench(cfg: BenchConfig, *, concurrency: int = 2, cache: bool = True, cache_dir: str | None = None,
              on_round: Callable[[], None] | None = None, timeout_s: float | None = None,
              stop_event: threading.Event | None = None, executor: str = "threads") -> dict[str, Any] | None:
    """Run (or reuse) every run of the bench and rebuild the results; ``None`` when ``stop_event`` was set
    before all runs finished (the finished ones are kept and reused by the next call).

    ``executor`` (see :mod:`persona_lab.eval.executors`): where each run's episodes run; with
    ``processes`` or ``ray`` the ``concurrency`` runs in flight share one pool of that many workers."""
    out = Path(cfg.out)
    stop_event = stop_event if stop_event is not None else threading.Event()
    jobs = [(task, variant, seed) for task in cfg.tasks for variant in cfg.agents for seed in cfg.seeds]

    def one(job: tuple[str, AgentVariant, int]) -> tuple[str, str, int, float]:
        task, variant, seed = job
        run_dir = out / "runs" / task / variant.label / f"seed-{seed}"
        rc = RunConfig(env_id=TASK_ENVS[task], agent=variant.agent, backend=cfg.backend, user=cfg.user, seed=seed,
                       rounds=cfg.rounds, env_kwargs={"population": cfg.population, **cfg.env_kwargs},
                       agent_kwargs=dict(variant.kwargs))
        summary_path = run_dir / "summary.json"
        if summary_path.exists() and _same_config(run_dir, rc):
            done = json.loads(summary_path.read_text())
            recs = episodes(read_records(run_dir)).get(0, [])
            if not done.get("failed_episodes") and is_complete(recs, cfg.rounds):
                return task, variant.label, seed, float(done.get("wall_s_total", done["throughput"]["wall_s"]))
        # A folder holding a run of another config is refused by the Runner ("different config"), never reused.
        if stop_event.is_set():
            return task, variant.label, seed, float("nan")
        start = time.perf_counter()
        Runner(rc, run_dir, cache=cache, cache_dir=cache_dir, on_round=on_round, timeout_s=timeout_s,
               stop_event=stop_event, executor=executor,
               concurrency=1 if executor == "threads" else max(1, concurrency)).run(resume=(run_dir / "config.json").exists())
        wall = time.perf_counter() - start
        s = json.loads(summary_path.read_text())
        s["wall_s_total"] = wall
        atomic_write_json(summary_path, s)
        return task, variant.label, seed, wall

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        walls = list(pool.map(one, jobs))
    if stop_event.is_set():
        return None
    results = collect(cfg, walls)
    atomic_write_json(out / "results.json", results)
    atomic_write_text(out / "results.md", markdown_table(results))
    for task in cfg.tasks:
        plot_cumulative(results, task, out / f"cumulative_cost_{task}.png")
    return results


def _same_config(run_dir: Path, rc: RunConfig) -> bool:
    """The folder's stored config equals the asked one (else it is not reused; the Runner refuses it)."""
    try:
        stored = json.loads((run_dir / "config.json").read_text(encoding="utf-8")).get("config")
    except (OSError, ValueError, AttributeError):
        return False
    return stored == json.loads(json.dumps(rc.to_dict()))


def collect(cfg: BenchConfig, walls: Sequence[tuple[str, str, int, float]]) -> dict[str, Any]:
    """Per task and agent: metrics per seed, mean and 95% CI."""
    out = Path(cfg.out)
    wall_of = {(t, a, s): w for t, a, s, w in walls}
    encoder = None
    results: dict[str, Any] = {"config": {
        "tasks": list(cfg.tasks), "agents": [v.label for v in cfg.agents], "seeds": list(cfg.seeds),
        "rounds": cfg.rounds, "backend": cfg.backend, "user": cfg.user, "population": cfg.population,
        "env_kwargs": cfg.env_kwargs,
        "last_n": cfg.last_n}, "tasks": {}}
    for task in cfg.tasks:
        rows: dict[str, Any] = {}
        for variant in cfg.agents:
            per_seed: dict[str, dict[str, float]] = {}
            incomplete: list[int] = []
            curves = []
            for seed in cfg.seeds:
                run_dir = out / "runs" / task / variant.label / f"seed-{seed}"
                recs = episodes(read_records(run_dir)).get(0, [])
                summary = json.loads((run_dir / "summary.json").read_text())
                if not is_complete(recs, cfg.rounds) or summary.get("failed_episodes"):
                    incomplete.append(seed)  # a fragment would bias the mean; counted, not averaged
                    continue
                costs = [r.info["cost"] for r in recs]
                truths: dict[str, set[str]] = {}
                statements: dict[str, str] = {}
                for r in recs:
                    truths[r.privileged["source"]] = set(r.privileged["preference_ids"])
                    statements[r.privileged["source"]] = r.privileged["preference"]
                tail = recs[-cfg.last_n:]
                m = {
                    "cumulative_cost": float(sum(costs)),
                    "acceptance_rate": summary["metrics"]["episode/acceptance_rate"],
                    "preference_satisfaction": summary["metrics"]["episode/preference_satisfaction"],
                    "expense_tokens": float(summary["usage"]["agent"]["prompt_tokens"] + summary["usage"]["agent"]["completion_tokens"]),
                    "wall_s": wall_of.get((task, variant.label, seed), float("nan")),
                }
                exact = exact_accuracy(tail, truths)
                m.update({f"pref_{k}": v for k, v in exact.items()})
                if not is_scripted(cfg.backend):
                    if encoder is None:
                        from persona_lab.models.embeddings import open_encoder

                        encoder = open_encoder("minilm")
                    m["pref_accuracy_text"] = text_accuracy(tail, statements, encoder)
                per_seed[str(seed)] = m
                running, total = [], 0
                for c in costs:
                    total += c
                    running.append(total)
                curves.append(running)
            names = sorted({k for m in per_seed.values() for k in m})
            rows[variant.label] = {
                "agent": variant.agent, "kwargs": variant.kwargs, "per_seed": per_seed, "n": len(per_seed),
                "incomplete_seeds": incomplete,
                "mean_ci": {n: metric_ci(n, [m[n] for m in per_seed.values()]) for n in names},
                "curve_mean": [sum(c[i] for c in curves) / len(curves) for i in range(min(map(len, curves)))]
                if curves else [],
            }
        results["tasks"][task] = rows
    return results


def _pm(ci: dict[str, Any], fmt: str = ",.0f") -> str:
    """``mean ± half-width`` (the interval's upper side), or the mean alone with n = 1."""
    if ci.get("mean") is None:
        return "–"
    if ci.get("ci_high") is None:
        return f"{ci['mean']:{fmt}} (n = 1)"
    return f"{ci['mean']:{fmt}} [{ci['ci_low']:{fmt}}, {ci['ci_high']:{fmt}}]"


def markdown_table(results: dict[str, Any]) -> str:
    cfg = results["config"]
    lines = [
        f"Cumulative edit cost over {cfg['rounds']} rounds, mean [95% CI, clipped at 0] over seeds {cfg['seeds']} "
        f"(backend `{cfg['backend']}`{', user ' + cfg['user'] if cfg.get('user') else ''}, population `{cfg['population']}`, env kwargs {cfg['env_kwargs'] or '{}'}); "
        f"preference accuracy / recall over the last {min(cfg['last_n'], cfg['rounds'])} rounds; "
        "n = complete runs (seeds) per cell.",
        "",
    ]
    tasks = list(results["tasks"])
    header = "| agent | " + " | ".join(f"{t} n | {t} cost | {t} pref acc / recall" for t in tasks) + " | expense (tokens) | wall (s) |"
    lines += [header, "|" + " --- |" * (3 * len(tasks) + 3)]
    notes = []
    for label in cfg["agents"]:
        cells = [label]
        expense, wall = 0.0, 0.0
        for t in tasks:
            entry = results["tasks"][t][label]
            row = entry["mean_ci"]
            cells.append(str(entry.get("n", len(entry["per_seed"]))))
            if not row:
                cells += ["–", "–"]
            else:
                cells.append(_pm(row["cumulative_cost"]))
                cells.append(f"{row['pref_accuracy']['mean']:.2f} / {row['pref_recall']['mean']:.2f}")
                expense += row["expense_tokens"]["mean"]
                wall += row["wall_s"]["mean"]
            if entry.get("incomplete_seeds"):
                notes.append(f"{label} / {t}: seeds {entry['incomplete_seeds']} incomplete or failed, left out")
        cells += [f"{expense:,.0f}", f"{wall:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]
    return "\n".join(lines) + "\n"


def plot_cumulative(results: dict[str, Any], task: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, row in results["tasks"][task].items():
        ax.plot(range(1, len(row["curve_mean"]) + 1), row["curve_mean"], label=label)
    ax.set_xlabel("round")
    ax.set_ylabel("cumulative edit cost (mean over seeds)")
    ax.set_title(f"PRELUDE {task}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def by_task(results: dict[str, Any]) -> dict[str, dict[str, float]]:  # pragma: no cover - convenience
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for task, rows in results["tasks"].items():
        for label, row in rows.items():
            out[task][label] = row["mean_ci"]["cumulative_cost"]["mean"]
    return dict(out)
