"""``persona-lab prefeval``: PrefEval-style long-context preference-following tests on any backend.

    persona-lab prefeval --backend hf:smollm2-135m --turns 0 3 --limit 4 --out runs/pe
    persona-lab prefeval --data path/to/prefeval --validate
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from persona_lab.cli.common import (
    add_cache_args,
    add_timeout_arg,
    check_cache_args,
    check_out_dir,
    nonnegative_int,
    open_model,
    positive_int,
    print_table,
)
from persona_lab.core.errors import ConfigError, DataError


def _list_arg(values: list[str] | None) -> list[str] | None:
    """Accept both ``--x a b`` and ``--x a,b``."""
    if values is None:
        return None
    return [v.strip() for chunk in values for v in chunk.split(",") if v.strip()]


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "prefeval",
        help="PrefEval-style tests: does a model follow a preference stated early in a long conversation?",
        description="Run PrefEval-style long-context preference-following tests (generation and "
        "classification) on a backend, or check a dataset with --validate.",
    )
    p.add_argument("--backend", default=None, help="model under test: hf:<model>, openai:<model>@<base_url>, fake")
    p.add_argument("--judge", default=None, help="LLM judge spec; without it only items with verifiable checks are judged")
    p.add_argument("--data", default=None, help="dataset directory in PrefEval's layout (default: the built-in dataset)")
    p.add_argument("--filler", default=None, help="filler file: JSON list of conversations (default: <data>/filler.json or built-in)")
    p.add_argument("--forms", nargs="+", default=None, help="explicit, implicit-choice, implicit-persona (default: all)")
    p.add_argument(
        "--turns", nargs="+", default=None,
        help="filler pairs N between preference and question; the paper's turns = N + 2 (default: 0 3 8 28 68 298)",
    )
    p.add_argument("--methods", nargs="+", default=None, help="zero-shot, reminder, self-critic, cot, rag (default: zero-shot)")
    p.add_argument("--tasks", nargs="+", default=None, help="generation, classification (default: both)")
    p.add_argument("--topics", nargs="+", default=None, help="only these topics (default: all)")
    p.add_argument("--limit", type=positive_int, default=None, help="at most N items, spread over topics")
    p.add_argument("--concurrency", type=positive_int, default=4, help="tests in flight at once (default 4)")
    p.add_argument("--out", default=None, help="run directory (config.json, items.jsonl, summary.json, report.md, plot)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out, skipping recorded tests")
    p.add_argument("--validate", action="store_true", help="check the dataset and print counts per form and topic; no model")
    p.add_argument("--list-methods", action="store_true", help="list the registered methods and exit")
    p.add_argument("--seed", type=int, default=0, help="seed of the classification option shuffle (default 0)")
    p.add_argument("--words", type=nonnegative_int, default=300, help="word cap in the question's length instruction; 0 = none (default 300)")
    p.add_argument("--max-new-tokens", type=positive_int, default=512, help="answer budget for generation (default 512)")
    p.add_argument("--reply-max-new-tokens", type=positive_int, default=256,
                   help="budget of the model's own reply to an explicit preference (default 256)")
    p.add_argument("--system-prompt", default=None, help="system prompt (default: 'You are a helpful assistant.'; '' for none)")
    p.add_argument("--rag-k", type=positive_int, default=5, help="messages the rag method retrieves (default 5)")
    p.add_argument("--rag-encoder", default="minilm", help="rag encoder: minilm (packaged), tfidf, or a local folder")
    add_timeout_arg(p)
    p.add_argument("--protocol", default="persona-lab", choices=("persona-lab", "paper"),
                   help="persona-lab: own prompts and budgets (default); paper: the original PrefEval texts, budgets "
                   "(300-token answers, 5-token classification replies), option shuffle and judge, read from --protocol-dir")
    p.add_argument("--protocol-dir", default=None, help="a checkout of PrefEval's code (github.com/amazon-science/PrefEval), "
                   "read at run time by --protocol paper")
    p.add_argument("--no-controls", dest="controls", action="store_false",
                   help="leave out the question-only (no context) control and the preference-only (0 filler pairs) row")
    add_cache_args(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    console = Console()
    console = Console(width=max(console.width, 120)) if not console.is_terminal else console
    if args.list_methods:
        return _list_methods(console)
    if args.validate:
        return _validate(args, console)
    if not args.backend:
        raise ConfigError("--backend is required to run tests", hint="e.g. --backend hf:smollm2-135m (or --validate to check data only)")
    if not args.out:
        raise ConfigError("--out is required to run tests", hint="e.g. --out runs/prefeval")
    check_out_dir(args.out)
    check_cache_args(args)
    return _run(args, console)


def _list_methods(console: Console) -> int:
    from persona_lab.eval.prefeval.methods import METHODS, MethodOptions

    t = Table("method", "tasks", "what it does", title="prefeval methods")
    for e in METHODS.entries():
        m = e.factory(MethodOptions())
        t.add_row(e.name, ", ".join(sorted(m.tasks)), e.help)
    console.print(t)
    return 0


def _validate(args: argparse.Namespace, console: Console) -> int:
    from persona_lab.core.errors import DataError
    from persona_lab.models.tokens import approx_token_count
    from persona_lab.simulators.prefeval.data import (
        FORMS,
        default_filler_path,
        filler_source_note,
        load_filler,
        load_prefeval,
    )

    ds = load_prefeval(args.data)
    t = Table("topic", *FORMS, "mcq", "verifiable", "items", title=f"PrefEval dataset {ds.root}")
    totals = dict.fromkeys((*FORMS, "mcq", "verifiable", "items"), 0)
    for topic, c in ds.counts().items():
        t.add_row(topic, *(str(c[k]) for k in totals))
        for k in totals:
            totals[k] += c[k]
    t.add_row("[bold]total[/bold]", *(f"[bold]{totals[k]}[/bold]" for k in totals))
    console.print(t)
    per_form = ds.form_totals()
    console.print("items per form: " + ", ".join(f"{k} {v:,}" for k, v in per_form.items()), highlight=False)
    if ds.left_out:
        console.print(f"left out of the totals: {len(ds.left_out)} stray or duplicate file(s):", highlight=False)
        for lo in ds.left_out:
            console.print(f"  {lo.path}: {lo.reason}", highlight=False)
    problems = list(ds.problems)
    filler_path = Path(args.filler) if args.filler else default_filler_path(ds.root)
    console.print(f"filler {filler_path}: {filler_source_note(filler_path, ds.root, explicit=bool(args.filler))}", highlight=False)
    try:
        filler = load_filler(filler_path)
    except DataError as exc:
        console.print(f"filler: [yellow]{exc}[/yellow]")
    else:
        problems += list(filler.problems)
        tokens = approx_token_count([{"content": x} for pair in filler.pairs for x in pair])
        console.print(
            f"filler {filler.path} ({filler.format} format, sha256 {filler.sha256[:12]}): {len(filler.pairs)} turn pairs, "
            f"about {tokens} tokens (4 chars/token; runs measure with the tested model's tokenizer)",
            highlight=False,
        )
    if args.protocol == "paper":
        from persona_lab.eval.prefeval.paper import load_paper_texts

        if not args.protocol_dir:
            raise ConfigError("--protocol paper needs --protocol-dir <PrefEval checkout>")
        texts = load_paper_texts(args.protocol_dir)
        console.print(
            f"protocol paper: {len(texts.sources)} files read from {texts.checkout} (answers {texts.max_gen_tokens} tokens, "
            f"classification replies {texts.max_mcq_tokens} tokens)",
            highlight=False,
        )
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity == "warning"]
    for p in problems:
        style = "red" if p.severity == "error" else "yellow"
        console.print(f"[{style}]{p}[/{style}]", highlight=False)
    console.print(f"{len(ds.items)} items, {len(errors)} error(s), {len(warnings)} warning(s)", highlight=False)
    return 1 if errors else 0


def _run(args: argparse.Namespace, console: Console) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from persona_lab.core.io import read_jsonl
    from persona_lab.eval.prefeval.runner import (
        DONE_STATUSES,
        ITEMS_FILE,
        PrefEvalConfig,
        PrefEvalRunner,
        plan_tests,
    )
    from persona_lab.models import UsageMeter

    kwargs: dict[str, object] = {}
    for name in ("forms", "methods", "tasks", "topics"):
        vals = _list_arg(getattr(args, name))
        if vals is not None:
            kwargs[name] = tuple(vals)
    turns = _list_arg(args.turns)
    if turns is not None:
        try:
            kwargs["turns"] = tuple(int(x) for x in turns)
        except ValueError:
            raise ConfigError(f"--turns takes integers (filler pairs), got {turns}") from None
    if args.system_prompt is not None:
        kwargs["system_prompt"] = args.system_prompt
    if "rag" in kwargs.get("methods", ()) and args.rag_encoder not in ("minilm", "all-MiniLM-L6-v2", "tfidf") \
            and not Path(args.rag_encoder).is_dir():
        raise ConfigError(f"unknown --rag-encoder {args.rag_encoder!r}",
                          hint="use minilm (packaged), tfidf, or a local sentence-transformers folder")
    config = PrefEvalConfig(
        backend=args.backend,
        judge=args.judge,
        data_dir=args.data,
        filler=args.filler,
        limit=args.limit,
        seed=args.seed,
        answer_words=args.words,
        max_new_tokens=args.max_new_tokens,
        reply_max_new_tokens=args.reply_max_new_tokens,
        rag_k=args.rag_k,
        rag_encoder=args.rag_encoder,
        protocol=args.protocol,
        protocol_dir=args.protocol_dir,
        controls=args.controls,
        **kwargs,  # type: ignore[arg-type]
    )
    model = open_model(args, args.backend, UsageMeter())
    judge = open_model(args, args.judge, UsageMeter()) if args.judge else None
    out = Path(args.out)
    with Progress(
        TextColumn("prefeval"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True
    ) as progress:
        bar = progress.add_task("tests", total=None)

        def on_test(_rec: dict[str, object]) -> None:
            progress.advance(bar)

        runner = PrefEvalRunner(config, model, out, judge_model=judge, concurrency=args.concurrency, on_test=on_test)
        _print_problems(console, [*runner.dataset.problems, *runner.filler.problems])
        if args.filler and not runner.filler.pairs:
            raise DataError("the filler file has no usable turn pair", path=args.filler,
                            hint="fix the problems printed above, or omit --filler for the built-in one")
        console.print(f"filler {runner.filler.path}: {runner.filler_source}", highlight=False)
        if runner.paper is not None:
            c = runner.config
            console.print(
                f"protocol paper: texts read from {runner.paper.checkout}; answers {c.max_new_tokens} tokens, "
                f"classification replies {c.classification_max_new_tokens} tokens, its system prompt and option "
                "shuffle (these replace --max-new-tokens, --reply-max-new-tokens, --words, --system-prompt and --seed)",
                highlight=False,
            )
        planned = plan_tests(runner.dataset.select(topics=config.topics, limit=config.limit), config)
        if not planned:
            raise DataError(f"no test to run: the dataset {runner.dataset.root} has {len(runner.dataset.items)} valid "
                            f"item(s) for topics {list(config.topics or ['all'])}",
                            hint="fix the data problems printed above (`persona-lab prefeval --validate --data ...`) "
                            "or choose other --topics")
        done = {r["key"] for r in read_jsonl(out / ITEMS_FILE) if r.get("status") in DONE_STATUSES} if args.resume else set()
        progress.update(bar, total=len(planned), completed=sum(t.key in done for t in planned))
        summary = runner.run(resume=args.resume)
    _print_summary(console, summary, out)
    return _exit_code(console, summary, out)


def _exit_code(console: Console, summary: dict, out: Path) -> int:
    """0 when every test ran; 3 when tests failed on the backend (it kept failing), 2 when they failed
    on bad input (flags or data); the failures are counted and the first one shown."""
    run = summary.get("run", {})
    by_kind = run.get("tests_failed_by_kind") or {}
    if not run.get("tests_failed"):
        return 0
    from persona_lab.core.io import read_jsonl

    first = next((r.get("error", "") for r in read_jsonl(out / "items.jsonl") if r.get("status") == "error"), "")
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(by_kind.items()))
    console.print(f"[red]{run['tests_failed']} of {run.get('tests_run')} test(s) failed ({kinds}); first error: "
                  f"{first.splitlines()[0] if first else '?'}[/red]", highlight=False)
    if by_kind.get("backend"):
        console.print("the backend kept failing: fix it, then rerun with --resume to retry only the failed tests",
                      highlight=False)
        return 3
    return 2


def _print_problems(console: Console, problems: list, shown: int = 10) -> None:
    """Data problems found while loading, printed during a run (not only by --validate)."""
    errors = [p for p in problems if p.severity == "error"]
    if not problems:
        return
    for p in errors[:shown]:
        console.print(f"[red]{p}[/red]", highlight=False)
    more = len(errors) - shown
    console.print(f"[yellow]dataset: {len(errors)} error(s){f' ({more} more not shown)' if more > 0 else ''}, "
                  f"{len(problems) - len(errors)} warning(s); items with errors are skipped "
                  "(`--validate` lists all)[/yellow]", highlight=False)


def _print_summary(console: Console, summary: dict, out: Path) -> None:
    for task in ("generation", "classification"):
        cells = summary[task]["cells"]
        if not cells:
            continue
        n_key = "judged" if task == "generation" else "ok"
        title = "generation: followed (not violated and helpful)" if task == "generation" else "classification (chance 25%)"
        t = Table("method", "form", "turns", "tokens", "n", "accuracy", "95% CI", "not judged" if task == "generation" else "unparsed",
                  "skipped (ctx)", title=f"PrefEval {title}")
        for c in cells:
            ci = "–" if c["ci_low"] is None else f"{100 * c['ci_low']:.0f}–{100 * c['ci_high']:.0f}%"
            acc = "–" if c["accuracy"] is None else f"{100 * c['accuracy']:.1f}%"
            extra = c["unjudged"] + c["no_judge"] if task == "generation" else c["unparsed"]
            t.add_row(c["method"], c["form"], str(c["paper_turns"]), str(c["mean_prompt_tokens"]), str(c[n_key]), acc, ci,
                      str(extra), str(c["skipped_context"]))
        print_table(console, t)
    console.print(summary["generation"]["judging"]["note"], highlight=False)
    run = summary.get("run", {})
    console.print(
        f"{run.get('tests_run')} test(s) run ({run.get('tests_failed', 0)} failed) in {run.get('wall_s')} s; outputs in {out}/ "
        "(items.jsonl, summary.json, report.md, accuracy_vs_context.png)",
        highlight=False,
    )
