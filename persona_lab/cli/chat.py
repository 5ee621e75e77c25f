"""``persona-lab chat --backend <spec> "<prompt>"``: one completion with its usage, to check a backend."""

from __future__ import annotations

import argparse

from rich.console import Console

from persona_lab.cli.common import (
    add_cache_args,
    add_timeout_arg,
    nonnegative_float,
    open_model,
    positive_int,
)
from persona_lab.models import ChatRequest, GenerationParams


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("chat", help="one completion from a backend, with usage (to check it by hand)")
    p.add_argument("prompt", help="the user message")
    p.add_argument("--backend", required=True, help="hf:<model>, openai:<model>@<base_url>, fake")
    p.add_argument("--system", default=None, help="optional system message")
    p.add_argument("--max-new-tokens", type=positive_int, default=128, help="generation budget (default 128)")
    p.add_argument("--temperature", type=nonnegative_float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--seed", type=int, default=None, help="sampling seed")
    add_timeout_arg(p)
    add_cache_args(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    model = open_model(args, args.backend)
    messages = ([{"role": "system", "content": args.system}] if args.system else []) + [
        {"role": "user", "content": args.prompt}
    ]
    params = GenerationParams(max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed)
    (completion,) = model.generate([ChatRequest.of(messages, params)])
    console = Console()
    console.print(completion.text, markup=False, highlight=False)
    u = completion.usage
    console.print(
        f"[dim]backend={model.spec} prompt_tokens={u.prompt_tokens} completion_tokens={u.completion_tokens} "
        f"latency_s={u.latency_s:.3f} cache_hit={u.cache_hit} finish={completion.finish_reason}[/dim]"
    )
    return 0
