"""The response cache on the packaged offline LLM: a cold run vs a warm rerun of the same requests.

    python benchmarks/bench_cache.py [--model smollm2-135m] [--prompts 8] [--max-new-tokens 32]

Everything happens in a fresh cache folder (``PERSONA_LAB_CACHE_DIR``), so the cold run pays for
converting the GGUF, loading the model and generating. A second cold run (conversion already done,
empty response cache) shows what a model load plus generation costs alone. The warm rerun opens a
new chat model on the same folder: every answer comes from the response cache, so the model is
never even loaded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

PROMPTS = [
    "What is the capital of France?",
    "Name three fruits.",
    "Say good morning in German.",
    "What is 2 + 2?",
    "Write a short line about rain.",
    "Give me a synonym for happy.",
    "Explain gravity in one sentence.",
    "What color is the sky?",
]


def run(spec: str, prompts: list[str], max_new_tokens: int) -> tuple[float, int, int]:
    """Open the model through the public entry point and answer every prompt; (seconds, backend calls, hits)."""
    from persona_lab.models import ChatRequest, open_chat_model

    start = time.perf_counter()
    chat = open_chat_model(spec)
    chat.generate([ChatRequest.of(p, max_new_tokens=max_new_tokens) for p in prompts])
    seconds = time.perf_counter() - start
    usage = chat.meter.snapshot()
    return seconds, int(usage["calls"]), int(usage["cache_hits"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    args = ap.parse_args()
    spec = f"hf:{args.model}"
    prompts = (PROMPTS * (args.prompts // len(PROMPTS) + 1))[: args.prompts]

    root = Path(tempfile.mkdtemp(prefix="persona-lab-bench-cache-"))
    os.environ["PERSONA_LAB_CACHE_DIR"] = str(root)
    try:
        cold = run(spec, prompts, args.max_new_tokens)
        (root / "responses.sqlite").unlink()
        for suffix in ("-wal", "-shm"):
            Path(f"{root / 'responses.sqlite'}{suffix}").unlink(missing_ok=True)
        converted = run(spec, prompts, args.max_new_tokens)
        warm = run(spec, prompts, args.max_new_tokens)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"{spec}: {len(prompts)} prompts, {args.max_new_tokens} new tokens, greedy")
    print(f"{'run':<48}{'wall s':>10}{'backend calls':>15}{'cache hits':>12}")
    rows = [
        ("cold (convert GGUF + load + generate)", cold),
        ("cold, GGUF already converted (load + generate)", converted),
        ("warm rerun (response cache)", warm),
    ]
    for name, (seconds, calls, hits) in rows:
        print(f"{name:<48}{seconds:>10.4f}{calls:>15}{hits:>12}")
    print(f"ratio cold / warm: {cold[0] / warm[0]:,.0f}x   (converted cold / warm: {converted[0] / warm[0]:,.0f}x)")


if __name__ == "__main__":
    main()
