"""Flags and helpers shared by subcommands.

The argparse ``type=`` checkers below make a number out of range a usage error (exit 2, with the flag,
the bad value and the allowed range) before any work starts, in every subcommand alike.
"""

from __future__ import annotations

import argparse
import io
import os
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from persona_lab.models import CachedChatModel, UsageMeter, open_chat_model


def add_backend_args(p: argparse.ArgumentParser, *, default: str | None = "scripted") -> None:
    p.add_argument(
        "--backend",
        default=default,
        help="model backend spec: scripted (no model), hf:<model>, openai:<model>@<base_url>"
        + (f" (default: {default})" if default else ""),
    )
    add_cache_args(p)


def _number(kind: type, low: float | None, high: float | None, what: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


positive_int = _number(int, 1, None, "a whole number >= 1")
nonnegative_int = _number(int, 0, None, "a whole number >= 0")
probability = _number(float, 0.0, 1.0, "a probability in [0, 1]")
nonnegative_float = _number(float, 0.0, None, "a number >= 0")
positive_float = _number(float, 1e-9, None, "a number of seconds > 0")


def check_out_dir(path: str | None, flag: str = "--out") -> None:
    """Refuse a path that is a file (or an unwritable place) where a folder will be written."""
    if path is None:
        return
    target = Path(path)
    if target.exists() and not target.is_dir():
        from persona_lab.core.errors import ConfigError

        raise ConfigError(f"{flag} {path} is a file, not a folder", hint=f"give {flag} a folder path")
    try:
        target.mkdir(parents=True, exist_ok=True)  # it is created anyway; doing it now finds a bad place first
    except OSError as exc:
        from persona_lab.core.errors import ConfigError

        raise ConfigError(f"{flag} {path} cannot be created ({exc.strerror})",
                          hint=f"give {flag} a path in a folder you can write") from None
    if not os.access(target, os.W_OK | os.X_OK):
        from persona_lab.core.errors import ConfigError

        raise ConfigError(f"{flag} {path} is not writable", hint=f"give {flag} a folder you can write")


def check_cache_args(args: argparse.Namespace) -> None:
    """``--cache-dir`` must be a writable folder (checked even when this run would not use it)."""
    if not getattr(args, "no_cache", False):
        check_out_dir(getattr(args, "cache_dir", None), "--cache-dir")


def print_table(console: Console, table: Table) -> None:
    """Print ``table``, or, when the console is too narrow for it to show every cell whole (rich would
    cut cells with "…"), the same rows as blocks of "header: value" lines that wrap instead. Ids that a
    user must copy (env ids, agent names, preference ids) are never cut."""
    probe = Console(width=console.width, file=io.StringIO(), color_system=None, legacy_windows=False)
    probe.print(table)
    if "…" not in probe.file.getvalue():  # type: ignore[attr-defined]
        console.print(table)
        return
    headers = [str(c.header) for c in table.columns]
    columns = [list(c.cells) for c in table.columns]
    if table.title:
        console.print(f"[bold]{table.title}[/bold]")
    for row in zip(*columns):
        console.print(Text(str(row[0]), style="bold"), soft_wrap=True)
        for header, cell in zip(headers[1:], row[1:]):
            text = cell if isinstance(cell, Text) else Text.from_markup(str(cell))
            if text.plain:
                console.print(Text("  " + header + ": ") + text, soft_wrap=False, overflow="fold")
    if table.caption:
        console.print(str(table.caption))


def add_timeout_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=positive_float, default=None, metavar="SECONDS",
                   help="read timeout of network (openai) backends: seconds a reply may take before the "
                   "request is retried (default: the backend's, 300)")


def add_cache_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-cache", action="store_true", help="bypass the response cache")
    p.add_argument(
        "--cache-dir",
        default=None,
        help="response cache folder (default: $PERSONA_LAB_CACHE_DIR or ~/.cache/persona-lab)",
    )


def open_model(args: argparse.Namespace, spec: str, meter: UsageMeter | None = None) -> CachedChatModel:
    check_cache_args(args)
    model = open_chat_model(spec, cache=not args.no_cache, cache_dir=args.cache_dir, meter=meter)
    from persona_lab.eval.runner import set_read_timeout

    set_read_timeout(model, getattr(args, "timeout", None))
    return model
