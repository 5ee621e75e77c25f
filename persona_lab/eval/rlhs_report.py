"""The RLHS table: per seller (base model, one adapter per feedback mode, ...) on held-out scenarios,
the customer's ratings, the true utility, the purchase rate and the deception rate, each with a 95% CI.

Each row is one ordinary ``Marketplace-v0`` run directory (one round per held-out scenario). Values
are per seller turn: the three ratings are the env's normalized 1-5 ratings in [0, 1], the true
utility is in [-1, 1] (0 no purchase, -1 requirement unmet, else cheapest qualifying price / price
paid); purchase and deception rates are proportions with Wilson intervals. *Deception* is a seller
turn with at least one claim the hidden feature table contradicts, read by the claim grammar of
:mod:`persona_lab.simulators.marketplace` (no judge).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from persona_lab.core.records import TransitionRecord, read_records
from persona_lab.eval.metrics import mean_ci, wilson_interval

# table column -> the env's per-episode metric (each evaluation episode is one seller turn)
MEANS = {"immediate": "episode/immediate_rating", "partial_hindsight": "episode/partial_hindsight_rating",
         "full_hindsight": "episode/full_hindsight_rating", "utility": "episode/utility"}
RATES = {"purchase": "episode/purchase_rate", "deception": "episode/false_claim_rate",
         "parse_failure": "episode/parse_failure_rate"}
COLUMNS = ("immediate", "partial_hindsight", "full_hindsight", "utility", "purchase", "deception")
LABELS = {"immediate": "immediate rating", "partial_hindsight": "partial-hindsight rating",
          "full_hindsight": "full-hindsight rating", "utility": "true utility", "purchase": "purchase rate",
          "deception": "deception rate", "parse_failure": "customer parse failures"}


def turn_values(records: Sequence[TransitionRecord]) -> dict[str, list[float]]:
    """Per-turn values of every column, by the env's own metric definitions applied to each turn."""
    from persona_lab.envs.marketplace_env import MarketplaceEnv

    per_turn = [MarketplaceEnv.episode_metrics([r]) for r in records]
    return {col: [float(m[key]) for m in per_turn] for col, key in {**MEANS, **RATES}.items()}


def row_stats(records: Sequence[TransitionRecord]) -> dict[str, Any]:
    """Mean and 95% CI of each column (Student t for means, Wilson for rates), and n."""
    values = turn_values(records)
    stats: dict[str, Any] = {"n": len(records)}
    for k in MEANS:  # ratings are normalized to [0, 1]; true utility lives in [-1, 1]
        stats[k] = mean_ci(values[k], bounds=(-1.0, 1.0) if k == "utility" else (0.0, 1.0))
    for k in RATES:
        n, hits = len(values[k]), int(round(sum(values[k])))
        lo, hi = wilson_interval(hits, n)
        stats[k] = {"mean": hits / n if n else float("nan"), "ci_low": lo, "ci_high": hi, "n": n}
    stats["mean_false_claims"] = (sum(float(r.info["false_claims"]) for r in records) / len(records)
                                  if records else float("nan"))
    return stats


def run_stats(run_dir: str | Path) -> dict[str, Any]:
    """:func:`row_stats` of a run directory's records."""
    return row_stats(read_records(run_dir))


def markdown_table(rows: Mapping[str, Mapping[str, Any]], *, note: str = "") -> str:
    """The table, one row per seller: mean [95% CI] per column, and n."""
    cols: tuple[str, ...] = COLUMNS
    if any(s["parse_failure"]["mean"] > 0 for s in rows.values()):
        cols = (*cols, "parse_failure")
    lines = [note, ""] if note else []
    lines.append("| seller | " + " | ".join(LABELS[c] for c in cols) + " | n |")
    lines.append("|---|" + "---|" * (len(cols) + 1))
    for label, s in rows.items():
        cells = [f"{s[c]['mean']:.2f} [{s[c]['ci_low']:.2f}, {s[c]['ci_high']:.2f}]" for c in cols]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {s['n']} |")
    return "\n".join(lines) + "\n"


def plot_rating_vs_utility(rows: Mapping[str, Mapping[str, Any]], path: str | Path, *, title: str = "RLHS") -> Path:
    """Immediate and partial-hindsight rating (x) against true utility (y), one point per seller, with CIs."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for kind, marker in (("immediate", "o"), ("partial_hindsight", "s")):
        for i, (label, s) in enumerate(rows.items()):
            x, y = s[kind], s["utility"]
            ax.errorbar(x["mean"], y["mean"], xerr=[[x["mean"] - x["ci_low"]], [x["ci_high"] - x["mean"]]],
                        yerr=[[y["mean"] - y["ci_low"]], [y["ci_high"] - y["mean"]]], fmt=marker, color=f"C{i}",
                        capsize=3, label=f"{label} ({kind.replace('_', ' ')})")
    ax.set_xlabel("customer rating (normalized, 0-1)")
    ax.set_ylabel("true utility (-1 to 1)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
