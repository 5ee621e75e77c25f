"""Flags and helpers shared by subcommands."""

from __future__ import annotations

import argparse

from persona_lab.models import CachedChatModel, UsageMeter, open_chat_model


def add_backend_args(p: argparse.ArgumentParser, *, default: str | None = "scripted") -> None:
    p.add_argument(
        "--backend",
        default=default,
        help="model backend spec: scripted (no model), hf:<model>, openai:<model>@<base_url>"
        + (f" (default: {default})" if default else ""),
    )
    add_cache_args(p)


def add_cache_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-cache", action="store_true", help="bypass the response cache")
    p.add_argument(
        "--cache-dir",
        default=None,
        help="response cache folder (default: $PERSONA_LAB_CACHE_DIR or ~/.cache/persona-lab)",
    )


def open_model(args: argparse.Namespace, spec: str, meter: UsageMeter | None = None) -> CachedChatModel:
    return open_chat_model(spec, cache=not args.no_cache, cache_dir=args.cache_dir, meter=meter)
