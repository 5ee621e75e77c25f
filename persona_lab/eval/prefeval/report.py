"""Summaries of a PrefEval run: accuracy with Wilson 95% intervals per (task, method, form, turns),
error types, unjudged and skipped counts, judge agreement, a markdown report and a plot.

Everything here is computed from the ``items.jsonl`` records alone, so a report can be rebuilt from
a run directory at any time (:func:`rebuild_outputs`).
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from persona_lab.core.io import atomic_write_json, atomic_write_text, read_jsonl
from persona_lab.eval.metrics import cohen_kappa, wilson_interval
from persona_lab.simulators.prefeval.classification import CHANCE
from persona_lab.simulators.prefeval.context import QUESTION_ONLY
from persona_lab.simulators.prefeval.data import FORMS
from persona_lab.simulators.prefeval.judges import ERROR_TYPES, PROGRAMMATIC_ERROR_TYPES

PLOT_FILE = "accuracy_vs_context.png"


def agreement(pairs: Sequence[tuple[bool, bool]]) -> dict[str, Any]:
    """Agreement of (llm, programmatic) ``followed`` labels on the items both judged, with the
    disagreements counted each way; ``kappa`` is None where it is undefined (no items, or both
    judges constant and equal)."""
    n = len(pairs)
    agree = sum(a == b for a, b in pairs)
    kappa = cohen_kappa([a for a, _ in pairs], [b for _, b in pairs]) if n else float("nan")
    return {
        "n": n,
        "agree": agree,
        "disagree": n - agree,
        "llm_only_followed": sum(a and not b for a, b in pairs),
        "programmatic_only_followed": sum(b and not a for a, b in pairs),
        "rate": agree / n if n else None,
        "kappa": None if math.isnan(kappa) else kappa,
        "llm_followed": sum(a for a, _ in pairs),
        "programmatic_followed": sum(b for _, b in pairs),
    }


def _ci(k: int, n: int) -> tuple[float | None, float | None]:
    if n == 0:
        return None, None
    lo, hi = wilson_interval(k, n)
    return round(lo, 4), round(hi, 4)


def _cell_order(c: dict[str, Any]) -> tuple[Any, ...]:
    form_rank = FORMS.index(c["form"]) if c["form"] in FORMS else len(FORMS)
    return (c["method"], form_rank, c["turns"])


def _mean(xs: Sequence[float]) -> float | None:
    return round(sum(xs) / len(xs), 1) if xs else None


def summarize(records: Sequence[dict[str, Any]], config: Any = None, run_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run summary (the content of ``summary.json``)."""
    by_cell: dict[tuple[str, str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_cell[(r["task"], r["method"], r["form"], r["turns"])].append(r)

    gen_cells, cls_cells = [], []
    judged_by: Counter[str] = Counter()
    pairs: list[tuple[bool, bool]] = []
    for (task, method, form, turns), rs in by_cell.items():
        ok = [r for r in rs if r.get("status") == "ok"]
        base = {
            "method": method,
            "form": form,
            "turns": turns,
            "paper_turns": turns + 2,
            "tests": len(rs),
            "ok": len(ok),
            "skipped_context": sum(r.get("status") == "skipped_context" for r in rs),
            "failed": sum(r.get("status") == "error" for r in rs),
            "mean_prompt_tokens": _mean([r["prompt_tokens"] for r in rs if r.get("prompt_tokens") is not None]),
        }
        if task == "generation":
            judged = [r for r in ok if r["judge"]["status"] == "judged"]
            followed = sum(bool(r["judge"]["followed"]) for r in judged)
            errors: Counter[str] = Counter()
            for r in judged:
                errors.update(r["judge"]["errors"])
            kinds = Counter(r["judge"]["judge"] for r in judged)
            for r in ok:
                js = r.get("judges", {})
                st = r["judge"]["status"]
                judged_by[r["judge"]["judge"] if st == "judged" else st] += 1
                llm, prog = js.get("llm"), js.get("programmatic")
                if llm and prog and llm["status"] == "judged" and prog["status"] == "judged":
                    pairs.append((bool(llm["followed"]), bool(prog["followed"])))
            lo, hi = _ci(followed, len(judged))
            orig = [r for r in ok if "original_followed" in (r["judge"].get("detail") or {})]
            gen_cells.append(
                {
                    **base,
                    "judged": len(judged),
                    "followed": followed,
                    "accuracy": round(followed / len(judged), 4) if judged else None,
                    "ci_low": lo,
                    "ci_high": hi,
                    "unjudged": sum(r["judge"]["status"] == "unjudged" for r in ok),
                    "no_judge": sum(r["judge"]["status"] == "no_judge" for r in ok),
                    "judged_by": dict(kinds),
                    "original_judged": len(orig),
                    "original_followed": sum(bool(r["judge"]["detail"]["original_followed"]) for r in orig),
                    "original_followed_unjudged": sum(
                        bool(r["judge"]["detail"]["original_followed"]) for r in orig if r["judge"]["status"] == "unjudged"
                    ),
                    "error_types": {e: errors.get(e, 0) for e in (*ERROR_TYPES, *PROGRAMMATIC_ERROR_TYPES[1:])},
                }
            )
        else:
            parsed = sum(bool(r.get("parsed")) for r in ok)
            correct = sum(bool(r.get("is_correct")) for r in ok)
            lo, hi = _ci(correct, len(ok))
            strict = [r for r in ok if "answer_lenient" in r]
            cls_cells.append(
                {
                    **base,
                    "correct_letters": dict(sorted(Counter(str(r.get("correct")) for r in ok).items())),
                    "answer_letters": dict(sorted(Counter(str(r.get("answer")) for r in ok).items())),
                    "lenient_compared": len(strict),
                    "lenient_correct": sum(r["answer_lenient"] == r.get("correct") for r in strict),
                    "lenient_disagree": sum(r["answer_lenient"] != r.get("answer") for r in strict),
                    "parsed": parsed,
                    "unparsed": len(ok) - parsed,
                    "correct": correct,
                    "accuracy": round(correct / len(ok), 4) if ok else None,
                    "ci_low": lo,
                    "ci_high": hi,
                }
            )
    gen_cells.sort(key=_cell_order)
    cls_cells.sort(key=_cell_order)

    judging = {
        "llm": judged_by.get("llm", 0),
        "programmatic": judged_by.get("programmatic", 0),
        "unjudged": judged_by.get("unjudged", 0),
        "no_judge": judged_by.get("no_judge", 0),
    }
    judging["note"] = _judging_note(judging, config)
    gen_main = [c for c in gen_cells if c["form"] != QUESTION_ONLY]
    cls_main = [c for c in cls_cells if c["form"] != QUESTION_ONLY]
    gen_total = _totals(gen_main, "followed", "judged")
    cls_total = _totals(cls_main, "correct", "ok")
    gen_ctrl = _totals([c for c in gen_cells if c["form"] == QUESTION_ONLY], "followed", "judged")
    cls_ctrl = _totals([c for c in cls_cells if c["form"] == QUESTION_ONLY], "correct", "ok")
    metrics = {
        "prefeval/generation/accuracy": gen_total["accuracy"],
        "prefeval/generation/judged": gen_total["n"],
        "prefeval/classification/accuracy": cls_total["accuracy"],
        "prefeval/classification/n": cls_total["n"],
        "prefeval/control/question_only/generation/accuracy": gen_ctrl["accuracy"],
        "prefeval/control/question_only/classification/accuracy": cls_ctrl["accuracy"],
        "prefeval/skipped_context": sum(c["skipped_context"] for c in (*gen_cells, *cls_cells)),
        "prefeval/failed": sum(c["failed"] for c in (*gen_cells, *cls_cells)),
    }
    cfg = config.to_dict() if hasattr(config, "to_dict") else (config or {})
    return {
        "task": "prefeval-v0",
        "config": cfg,
        "records": len(records),
        "metrics": metrics,
        "generation": {"cells": gen_cells, "judging": judging, "agreement": agreement(pairs)},
        "classification": {"chance": CHANCE, "cells": cls_cells},
        "run": run_info or {},
    }


def _totals(cells: list[dict[str, Any]], k: str, n: str) -> dict[str, Any]:
    kk, nn = sum(c[k] for c in cells), sum(c[n] for c in cells)
    return {"n": nn, "accuracy": round(kk / nn, 4) if nn else None}


def _judging_note(j: dict[str, Any], config: Any) -> str:
    judge = getattr(config, "judge", None) if config is not None and not isinstance(config, dict) else (config or {}).get("judge")
    parts = []
    if judge:
        parts.append(f"LLM judge {judge} judged {j['llm']} generation(s)")
    else:
        parts.append("no LLM judge (--judge not given)")
    parts.append(f"the programmatic judge (verifiable keywords / catalog) judged {j['programmatic']}")
    if j["unjudged"]:
        parts.append(f"{j['unjudged']} could not be judged (unparseable judge answer or judge failure) and are left out of accuracy")
    if j["no_judge"]:
        parts.append(f"{j['no_judge']} had no applicable judge (no --judge and no verifiable checks) and are left out of accuracy")
    return "; ".join(parts) + "."


# --------------------------------------------------------------------------- markdown


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _acc_cell(c: dict[str, Any], n_key: str) -> str:
    if c["accuracy"] is None:
        return f"– (n=0{', skipped ' + str(c['skipped_context']) if c['skipped_context'] else ''})"
    return f"{_pct(c['accuracy'])} [{100 * c['ci_low']:.0f}–{100 * c['ci_high']:.0f}] n={c[n_key]}"


def _pivot(cells: list[dict[str, Any]], n_key: str) -> list[str]:
    """One table per form: methods x turns, with the controls beside each method (the question
    alone, no context; and 2 turns = the preference with no filler)."""
    lines: list[str] = []
    control = {c["method"]: c for c in cells if c["form"] == QUESTION_ONLY}
    main = [c for c in cells if c["form"] != QUESTION_ONLY]
    turns = sorted({c["turns"] for c in main})
    forms = [f for f in (*FORMS, *sorted({c["form"] for c in main} - set(FORMS))) if any(c["form"] == f for c in main)]
    head = (["question only (no context)"] if control else []) + [
        f"{n + 2} turns" + (" (preference only)" if n == 0 else "") for n in turns
    ]
    for form in forms:
        lines += [f"**{form}** (accuracy, 95% Wilson CI, n)", ""]
        lines.append("| method | " + " | ".join(head) + " |")
        lines.append("| --- | " + " | ".join("---" for _ in head) + " |")
        for method in sorted({c["method"] for c in main if c["form"] == form}):
            row = []
            if control:
                row.append("" if method not in control else _acc_cell(control[method], n_key))
            for n in turns:
                c = next((c for c in main if c["form"] == form and c["method"] == method and c["turns"] == n), None)
                row.append("" if c is None else _acc_cell(c, n_key))
            lines.append(f"| {method} | " + " | ".join(row) + " |")
        lines.append("")
    if control and not forms:
        lines += ["**question only** (accuracy, 95% Wilson CI, n)", "", "| method | question only (no context) |", "| --- | --- |"]
        lines += [f"| {m} | {_acc_cell(c, n_key)} |" for m, c in sorted(control.items())] + [""]
    if control:
        lines += [
            "The question-only control asks the question with no preference and no filler: for generation it is "
            "how often a preference-blind answer already passes; for classification how often the preferred "
            "option wins with no preference at all (chance 25%).",
            "",
        ]
    return lines


def _filler_lines(f: dict[str, Any]) -> list[str]:
    if not f:
        return []
    out = [
        f"- filler: `{f.get('path')}` ({f.get('format', '?')} format, sha256 `{f.get('sha256') or '?'}`, "
        f"{f.get('pairs')} pairs){'; ' + f['source'] if f.get('source') else ''}"
    ]
    tok = f.get("tokens_by_pairs") or {}
    if tok:
        how = "the tested model's tokenizer" if f.get("tokenizer") == "backend" else "an estimate (4 chars/token; the backend has no tokenizer)"
        per = ", ".join(f"{int(n) + 2} turns: {t:,} filler tokens ({f['tokens_per_pair'][n]:,}/turn pair)" for n, t in tok.items())
        out.append(f"- filler tokens by {how}: {per}")
    return out


def render_markdown(summary: dict[str, Any]) -> str:
    """``report.md``: accuracy by method x turns x form, error types, judging, classification, usage."""
    cfg = summary.get("config", {})
    run = summary.get("run", {})
    g, c = summary["generation"], summary["classification"]
    proto = run.get("protocol") or {"name": cfg.get("protocol", "persona-lab")}
    if proto.get("name") == "paper":
        where = proto.get("checkout") or cfg.get("protocol_dir")
        title = f"# PrefEval run — protocol: paper (the original texts and budgets, read from `{where}`)"
    else:
        title = "# PrefEval run — protocol: persona-lab (persona-lab's own prompts, budgets and judge)"
    lines = [
        title,
        "",
        f"- backend: `{cfg.get('backend')}`; judge: `{cfg.get('judge') or 'programmatic only'}`",
        f"- data: `{run.get('data_dir') or cfg.get('data_dir') or 'built-in'}`; filler pairs per test: {cfg.get('turns')}"
        " (paper turns = pairs + 2)",
        *_filler_lines(run.get("filler") or {}),
        f"- answer budget {cfg.get('max_new_tokens')} tokens, classification budget {cfg.get('classification_max_new_tokens')}"
        f" tokens, word cap {cfg.get('answer_words')}",
        f"- records: {summary['records']}; this invocation ran {run.get('tests_run', '?')} test(s) in "
        f"{run.get('wall_s', '?')} s",
        "",
    ]
    if g["cells"]:
        lines += ["## Generation: preference following", "", "Accuracy = not violated and helpful, over judged answers.", ""]
        lines += _pivot(g["cells"], "judged")
        lines += [
            "### Error types, judging and skips",
            "",
            "| method | form | turns | mean prompt tokens | judged | accuracy | 95% CI | unhelpful | unaware viol. | "
            "halluc. viol. | inconsist. viol. | viol. (programmatic) | unjudged | no judge | skipped (context) | failed |",
            "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for x in g["cells"]:
            e = x["error_types"]
            ci = "–" if x["ci_low"] is None else f"{100 * x['ci_low']:.1f}–{100 * x['ci_high']:.1f}%"
            lines.append(
                f"| {x['method']} | {x['form']} | {x['paper_turns']} | {x['mean_prompt_tokens']} | {x['judged']} | "
                f"{_pct(x['accuracy'])} | {ci} | {e.get('unhelpful', 0)} | {e.get('preference_unaware_violation', 0)} | "
                f"{e.get('hallucination_violation', 0)} | {e.get('inconsistency_violation', 0)} | {e.get('violation', 0)} | "
                f"{x['unjudged']} | {x['no_judge']} | {x['skipped_context']} | {x['failed']} |"
            )
        a = g["agreement"]
        lines += ["", "### How answers were judged", "", g["judging"]["note"], ""]
        n_orig = sum(x.get("original_judged", 0) for x in g["cells"])
        if n_orig:
            lines += [
                f"The original code's accuracy rule (unparseable judge answers count as followed) would score "
                f"{sum(x['original_followed'] for x in g['cells'])} of {n_orig} answer(s) as followed, "
                f"{sum(x['original_followed_unjudged'] for x in g['cells'])} of them unjudged here.",
                "",
            ]
        if a["n"]:
            kappa = "undefined" if a["kappa"] is None else f"{a['kappa']:.3f}"
            lines.append(
                f"LLM judge vs programmatic judge on the {a['n']} answer(s) both judged: agreement "
                f"{100 * a['rate']:.1f}%, Cohen's kappa {kappa} (LLM: {a['llm_followed']} followed, "
                f"programmatic: {a['programmatic_followed']} followed). They disagree on {a.get('disagree', 0)} "
                f"answer(s): {a.get('llm_only_followed', 0)} followed for the LLM judge only, "
                f"{a.get('programmatic_only_followed', 0)} followed for the programmatic judge only."
            )
        else:
            lines.append("No answer was judged by both the LLM judge and the programmatic judge (no agreement to report).")
        lines.append("")
    if c["cells"]:
        lines += ["## Classification: pick the answer that fits the user", "", f"Chance: {_pct(c['chance'])}.", ""]
        lines += _pivot(c["cells"], "ok")
        lines += [
            "| method | form | turns | mean prompt tokens | answered | correct | accuracy | 95% CI | unparsed | skipped (context) | failed |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
        ]
        for x in c["cells"]:
            ci = "–" if x["ci_low"] is None else f"{100 * x['ci_low']:.1f}–{100 * x['ci_high']:.1f}%"
            lines.append(
                f"| {x['method']} | {x['form']} | {x['paper_turns']} | {x['mean_prompt_tokens']} | {x['ok']} | {x['correct']} | "
                f"{_pct(x['accuracy'])} | {ci} | {x['unparsed']} | {x['skipped_context']} | {x['failed']} |"
            )
        lines.append("")
        letters: Counter[str] = Counter()
        answers: Counter[str] = Counter()
        for x in c["cells"]:
            letters.update(x.get("correct_letters", {}))
            answers.update(x.get("answer_letters", {}))
        if letters:
            fmt = lambda cnt: ", ".join(f"{k} {v}" for k, v in sorted(cnt.items()))  # noqa: E731
            lines += [f"Correct letters over all cells: {fmt(letters)}; answers given: {fmt(answers)} "
                      "(a model that always picks the most frequent correct letter scores its share).", ""]
        n_len = sum(x.get("lenient_compared", 0) for x in c["cells"])
        if n_len:
            lines += [
                f"Parsed with the original rule (the first capital A-D inside the `<choice>` tag, so a reply such as "
                f"'Arizmendi' reads as A). persona-lab's stricter parser disagrees on "
                f"{sum(x['lenient_disagree'] for x in c['cells'])} of {n_len} replies and would score "
                f"{sum(x['lenient_correct'] for x in c['cells'])} correct against "
                f"{sum(x['correct'] for x in c['cells'])}.",
                "",
            ]
    usage = run.get("usage") or {}
    if usage:
        lines += ["## Usage (this invocation)", ""]
        for who, u in usage.items():
            if u:
                lines.append(f"- {who}: " + ", ".join(f"{k}={v}" for k, v in u.items()))
        lines.append("")
    lines.append(f"Plot: `{PLOT_FILE}`.")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- plot


def plot_accuracy(summary: dict[str, Any], path: str | Path) -> Path | None:
    """Accuracy (with CIs) against mean prompt tokens, one line per method and form. None if empty."""
    panels = [(name, summary[name]["cells"]) for name in ("generation", "classification") if summary[name]["cells"]]
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.5), squeeze=False)
    styles = {"explicit": "-", "implicit-choice": "--", "implicit-persona": ":"}
    for ax, (name, cells) in zip(axes[0], panels):
        for key in sorted({(c["method"], c["form"]) for c in cells}):
            pts = sorted(
                (c for c in cells if (c["method"], c["form"]) == key and c["accuracy"] is not None and c["mean_prompt_tokens"]),
                key=lambda c: c["mean_prompt_tokens"],
            )
            if not pts:
                continue
            xs = [c["mean_prompt_tokens"] for c in pts]
            ys = [100 * c["accuracy"] for c in pts]
            err = [[100 * (c["accuracy"] - c["ci_low"]) for c in pts], [100 * (c["ci_high"] - c["accuracy"]) for c in pts]]
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, linestyle=styles.get(key[1], "-"), label=f"{key[0]} / {key[1]}")
        if name == "classification":
            ax.axhline(100 * CHANCE, color="grey", linewidth=1, linestyle="-.", label="chance")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:,.0f}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(-2, 102)
        ax.set_xlabel("prompt tokens (mean, log scale)")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"PrefEval {name}")
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no judged answers", transform=ax.transAxes, ha="center", va="center", color="grey")
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path


def write_outputs(out_dir: str | Path, records: Sequence[dict[str, Any]], config: Any, run_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``summary.json``, ``report.md`` and the plot; return the summary."""
    out = Path(out_dir)
    summary = summarize(records, config, run_info)
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "report.md", render_markdown(summary))
    plot_accuracy(summary, out / PLOT_FILE)
    return summary


def rebuild_outputs(out_dir: str | Path) -> dict[str, Any]:
    """Recompute the summary, report and plot of a run directory from its records."""
    from persona_lab.eval.prefeval.runner import ITEMS_FILE

    out = Path(out_dir)
    latest: dict[str, dict[str, Any]] = {}
    for r in read_jsonl(out / ITEMS_FILE):
        latest[r["key"]] = r
    cfg_path = out / "config.json"
    config = json.loads(cfg_path.read_text(encoding="utf-8")).get("config", {}) if cfg_path.exists() else {}
    old = out / "summary.json"
    run_info = json.loads(old.read_text(encoding="utf-8")).get("run", {}) if old.exists() else {}
    return write_outputs(out, list(latest.values()), config, run_info)

