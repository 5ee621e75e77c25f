"""``persona-lab run <env-id>``: one agent in one environment, recorded to a resumable run directory."""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from persona_lab.cli.common import (
    add_cache_args,
    add_timeout_arg,
    check_cache_args,
    check_out_dir,
    positive_int,
    probability,
)


def parse_kv(items: list[str] | None) -> dict[str, object]:
    """``["k=1", "name=x"]`` -> ``{"k": 1, "name": "x"}`` (values parsed as JSON when they parse)."""
    from persona_lab.core.errors import ConfigError

    out: dict[str, object] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"expected key=value, got {item!r}", hint="e.g. --agent-arg k=5 --env-arg noise=0.1")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default="scripted", help="model backend of the agent and LLM users (default: scripted)")
    p.add_argument("--user", choices=["scripted", "llm"], default=None,
                   help="simulated user kind (default: llm when --backend is a model, else scripted)")
    p.add_argument("--user-backend", default=None, help="a different backend for the LLM user")
    # World-specific shortcuts: each is the same as --env-arg NAME=VALUE and is refused (exit 2) by an
    # env that takes no such argument.
    p.add_argument("--population", default=None, help="edit/follow-up worlds: prelude, verifiable, or a YAML/JSON persona file")
    p.add_argument("--effort", type=positive_int, default=None, help="edit worlds, scripted user: fix at most m violated preferences per round")
    p.add_argument("--noise", type=probability, default=None, help="scripted user: probability of an incidental edit (edit worlds) or willingness noise (persuasion)")
    p.add_argument("--corpus", default=None, help="edit worlds: builtin, hub, or a folder of <source>.jsonl files")
    p.add_argument("--env-arg", action="append", metavar="K=V",
                   help="world-specific gymnasium.make kwarg (repeatable; `persona-lab ls envs` names each env's)")
    p.add_argument("--agent-arg", action="append", metavar="K=V", help="extra agent kwarg, e.g. k=5 (repeatable)")
    add_timeout_arg(p)
    p.add_argument("--agent-gen", default=None, metavar="K=V,...",
                   help="agent decoding: temperature, top_p, seed, repetition_penalty, max_new_tokens (e.g. temperature=0.7,seed=1)")
    p.add_argument("--user-gen", default=None, metavar="K=V,...",
                   help="LLM user decoding: as --agent-gen, plus guided=true|false (constrained yes/no and option letters)")
    add_cache_args(p)


EXECUTOR_NAMES = ("threads", "processes", "ray")  # persona_lab.eval.executors.EXECUTORS (not imported here: lean CLI)


def executor_name(value: str) -> str:
    """argparse type of ``--executor``: a known executor name."""
    if value not in EXECUTOR_NAMES:
        raise argparse.ArgumentTypeError(f"unknown executor {value!r}; use one of {', '.join(EXECUTOR_NAMES)}")
    return value


def add_executor_args(p: argparse.ArgumentParser) -> None:
    """``--executor`` and ``--ray-address`` (``run`` and the benches)."""
    p.add_argument("--executor", type=executor_name, default="threads",
                   help="where episodes run: threads of this process (default), worker processes (one per "
                        "--concurrency), or Ray tasks; this process writes the run directory either way")
    p.add_argument("--ray-address", default=None, metavar="ADDRESS",
                   help="with --executor ray: the cluster to join (ray://<head>:10001, or auto for a "
                        "`ray start` on this machine); default: $RAY_ADDRESS, else a local Ray instance")


def apply_executor_args(args: argparse.Namespace) -> str:
    """Check ``--ray-address`` against ``--executor`` and hand it to Ray (as ``RAY_ADDRESS``); returns the
    executor name."""
    import os

    from persona_lab.core.errors import ConfigError

    executor = getattr(args, "executor", "threads")
    address = getattr(args, "ray_address", None)
    if address is not None:
        if executor != "ray":
            raise ConfigError(f"--ray-address {address!r} needs --executor ray (got --executor {executor})",
                              hint="add --executor ray, or drop --ray-address")
        if not address.strip():
            raise ConfigError("--ray-address is empty", hint="e.g. --ray-address ray://<head>:10001 or auto")
        os.environ["RAY_ADDRESS"] = address.strip()
    return executor


def env_kwargs_from(args: argparse.Namespace) -> dict[str, object]:
    """``--env-arg`` values plus the world-specific shortcut flags that were given."""
    kw: dict[str, object] = {name: getattr(args, name) for name in ("population", "effort", "noise", "corpus")
                             if getattr(args, name, None) is not None}
    kw.update(parse_kv(args.env_arg))
    return kw


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("run", help="run an agent in an environment into a resumable run directory")
    p.add_argument("env_id", help="environment id (`persona-lab ls envs`)")
    p.add_argument("--agent", default="no-learning", help="agent name (`persona-lab ls agents`)")
    p.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    p.add_argument("--rounds", type=positive_int, default=None, help="agent turns per episode (default: the env's own length)")
    p.add_argument("--episodes", type=positive_int, default=1, help="episodes, one user each (default 1)")
    p.add_argument("--concurrency", type=positive_int, default=1, help="episodes run in parallel (threads, processes or Ray tasks)")
    add_executor_args(p)
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue a killed run in --out")
    p.add_argument("--calibration", default=None, metavar="FILE",
                   help="LLM user: print this `calibrate --out` file's figure beside the results (default: the saved one)")
    add_run_args(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from persona_lab.eval.runner import RunConfig, Runner
    from persona_lab.models.decoding import parse_gen

    config = RunConfig(
        env_id=args.env_id, agent=args.agent, backend=args.backend, user=args.user, user_backend=args.user_backend,
        seed=args.seed, rounds=args.rounds, episodes=args.episodes,
        env_kwargs=env_kwargs_from(args), agent_kwargs=parse_kv(args.agent_arg),
        agent_gen=parse_gen(args.agent_gen).to_dict(), user_gen=parse_gen(args.user_gen).to_dict(),
    )
    from persona_lab.core.errors import ConfigError

    check_out_dir(args.out)
    check_cache_args(args)
    apply_executor_args(args)
    if getattr(args, "calibration", None) and not Path(args.calibration).is_file():
        raise ConfigError(f"calibration file {args.calibration!r} not found",
                          hint="pass a file written by `persona-lab calibrate ... --out <file>`, or leave --calibration out")
    console = Console(stderr=True)
    runner = Runner(config, args.out, concurrency=args.concurrency, cache=not args.no_cache, cache_dir=args.cache_dir,
                    timeout_s=args.timeout, executor=args.executor)
    with stop_on_signals(runner.stop, console), Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=console, transient=True) as progress:
        task = progress.add_task(f"{args.env_id} / {args.agent}", total=runner.rounds * args.episodes)
        runner.on_round = lambda: progress.advance(task)
        result = runner.run(resume=args.resume)
    print_summary(result.summary, Console())
    if config.user_kind == "llm":
        from persona_lab.eval.calibrate import calibration_note

        Console().print(calibration_note(args.env_id, args.user_backend or args.backend, args.cache_dir,
                                         config.user_gen, file=getattr(args, "calibration", None)), highlight=False, soft_wrap=True)
    if result.interrupted:
        console.print(f"interrupted: {result.summary['episodes']} complete episode(s) recorded in {args.out}; "
                      f"continue with:\n  {resume_command(args)}", highlight=False, soft_wrap=True)
        return 130
    if result.failed_episodes:
        console.print(f"[red]episodes {result.failed_episodes} failed (see {args.out}/errors.jsonl); "
                      "rerun with --resume to retry them[/red]")
        return 3
    return 0


@contextlib.contextmanager
def stop_on_signals(stop: Callable[[], None], console: Console) -> Iterator[None]:
    """SIGINT/SIGTERM call ``stop`` (finish the rounds in flight, write the summary); a second signal
    interrupts at once. Outside the main thread (tests, embedding) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    seen: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        if seen:
            raise KeyboardInterrupt
        seen.append(signum)
        console.print("stopping: finishing the rounds in flight and writing the summary "
                      "(press Ctrl-C again to quit at once)", highlight=False)
        stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)


def resume_command(args: argparse.Namespace) -> str:
    """The command line that continues this run."""
    argv = list(getattr(args, "argv", None) or [])
    if not argv:
        return f"persona-lab run {args.env_id} --out {args.out} ... --resume (the same flags)"
    return "persona-lab " + shlex.join(argv + ([] if "--resume" in argv else ["--resume"]))


def print_summary(summary: dict, console: Console) -> None:
    from persona_lab.cli.common import print_table
    from persona_lab.eval.metrics import format_ci

    n, planned = summary["episodes"], summary.get("episodes_planned", summary["episodes"])
    t = Table(title=f"{summary['env_id']} · agent {summary['agent']} · {n} complete episode(s) × {summary['rounds']} rounds")
    t.add_column("metric", overflow="fold")
    t.add_column("mean", justify="right")
    t.add_column("95% CI", justify="right")
    t.add_column("n", justify="right")
    for name, ci in summary["metrics_ci"].items():
        mean = "–" if ci["mean"] is None else f"{ci['mean']:.3f}"
        t.add_row(name, mean, format_ci(ci), str(ci.get("n", n)))
    if summary["metrics_ci"]:
        print_table(console, t)
    else:
        console.print(f"{summary['env_id']} · agent {summary['agent']}: no complete episode yet, so no metrics")
    incomplete = summary.get("incomplete_episodes", [])
    if incomplete:
        failed = summary.get("failed_episodes", [])
        console.print(f"[yellow]{len(incomplete)} of {planned} episode(s) incomplete ({len(failed)} failed), "
                      f"left out of the metrics: {incomplete}[/yellow]")
    u = summary["usage"]
    console.print(f"backend: {summary['backend_note']}")
    tp = summary["throughput"]
    console.print(
        f"usage: agent {u['agent']['calls']} calls / {u['agent']['cache_hits']} cache hits, "
        f"user {u['user']['calls']} calls / {u['user']['cache_hits']} cache hits; "
        f"rounds executed {tp['rounds_executed']}, replayed {tp.get('rounds_replayed', 0)}; "
        f"throughput {tp['rounds_per_s']} rounds/s"
    )
    for spec, f in (summary.get("faults") or {}).items():
        if f.get("faults"):
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(f.get("by_kind", {}).items())) or "none"
            console.print(f"[yellow]faults on {spec}: {f.get('faults', 0)} ({kinds}); retries {f.get('retries', 0)}; "
                          f"gave up {f.get('give_ups', 0)}; permanent {f.get('permanent', 0)}[/yellow]")
    print_fidelity(summary.get("fidelity") or {}, console)


def print_fidelity(counters: dict, console: Console) -> None:
    """The non-zero fidelity counters (user output that could not be taken at face value), and a
    warning line for each above 10% of its calls."""
    from persona_lab.eval.fidelity import AGENT_CALLS, USER_CALLS, fidelity_rates, fidelity_warnings

    rates = fidelity_rates(counters)
    if rates:
        shown = ", ".join(f"{k} {counters[k]} ({r:.0%})" for k, r in rates.items())
        console.print(f"fidelity: {shown} of {counters.get(USER_CALLS, 0)} user calls / "
                      f"{counters.get(AGENT_CALLS, 0)} agent rounds")
    for line in fidelity_warnings(counters):
        console.print(f"[yellow]{line}[/yellow]", markup=True, highlight=False)
