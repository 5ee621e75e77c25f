"""PrefEval harness overhead and a small real-model run.

    python benchmarks/bench_prefeval.py                      # harness overhead at 300 turns (fake backend)
    python benchmarks/bench_prefeval.py --hf smollm2-135m    # plus the packaged small LLM at 2 and 10 turns

Part 1 measures what the harness itself costs per test at 300 turns (N = 298 filler pairs, about
100k tokens): laying out the conversation, counting its tokens, retrieval for RAG and judging, with
a fake backend that answers instantly. Token counting is measured with the 4-characters-a-token
estimate and, when the hf backend is installed, with SmolLM2's real tokenizer. Peak memory is the
largest Python heap (tracemalloc) and the process's max RSS.

Part 2 runs the packaged small LLM on real contexts at 2 and 10 turns and reports tests/s and
generated tokens/s (no response cache: every answer is generated).

Data: ``--data`` (default: the PrefEval sample next to the repo when present, else the built-in
dataset); filler: ``--filler`` or, when none is long enough, a synthetic one made here.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from persona_lab.core.messages import Message
from persona_lab.eval.prefeval.runner import PrefEvalConfig, PrefEvalRunner
from persona_lab.models import CachedChatModel
from persona_lab.simulators.prefeval.data import (
    Filler,
    builtin_data_dir,
    filler_from_pairs,
    load_filler,
    load_prefeval,
)
from persona_lab.testing import FakeChatModel

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared/data/prefeval-sample"
WORDS = ["river", "garden", "engine", "policy", "market", "violin", "harbor", "theory", "canvas", "orbit", "recipe", "ladder", "signal", "forest", "battery", "cotton", "museum", "glacier", "pepper", "bridge", "lantern", "kernel", "marble", "saddle", "planet", "ticket", "mirror", "thunder", "pillow", "circuit", "meadow", "anchor", "velvet", "puzzle", "compass", "falcon", "harvest", "tunnel", "quartz"]


def synthetic_filler(pairs: int, seed: int = 0) -> Filler:
    """Unrelated chat pairs of ~340 tokens each (so 298 pairs is about 100k tokens)."""
    rng = np.random.default_rng(seed)

    def sentence(n: int) -> str:
        return " ".join(rng.choice(WORDS, size=n)).capitalize() + "."

    out = []
    for i in range(pairs):
        q = f"Question {i}: " + sentence(int(rng.integers(12, 30)))
        a = " ".join(sentence(int(rng.integers(12, 24))) for _ in range(14))
        out.append((q, a))
    return filler_from_pairs(out, name=f"<synthetic {pairs} pairs>")


class TokenizerCounter:
    """A fake instant backend that counts tokens with a real tokenizer (the hf backend's)."""

    def __init__(self, fake: FakeChatModel, counter: Any) -> None:
        self.fake, self.counter = fake, counter
        self.context_window = None

    @property
    def spec(self) -> str:
        return self.fake.spec

    def generate(self, requests: Sequence[Any]) -> list[Any]:
        return self.fake.generate(requests)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return self.counter(messages)


def run_once(model: Any, data_dir: Path, filler: Filler, *, turns: tuple[int, ...], methods: tuple[str, ...],
             limit: int, concurrency: int, encoder: str = "minilm", max_new_tokens: int = 512,
             forms: tuple[str, ...] = ("explicit", "implicit-choice", "implicit-persona"),
             tasks: tuple[str, ...] = ("generation",), trace: bool = False) -> dict[str, Any]:
    """One runner pass. Rates use the runner's own loop time (writing the report and plot excluded);
    with ``trace`` the Python heap is traced (slower), for the peak-memory figure."""
    cfg = PrefEvalConfig(backend=model.spec, data_dir=str(data_dir), turns=turns, methods=methods, tasks=tasks, forms=forms,
                         limit=limit, rag_encoder=encoder, max_new_tokens=max_new_tokens, reply_max_new_tokens=max_new_tokens,
                         controls=False)  # the README figures time the tests at the given turns only
    with tempfile.TemporaryDirectory() as tmp:
        runner = PrefEvalRunner(cfg, CachedChatModel(model, None), Path(tmp) / "run", filler=filler, concurrency=concurrency)
        if trace:
            tracemalloc.start()
        summary = runner.run()
        peak = tracemalloc.get_traced_memory()[1] if trace else None
        if trace:
            tracemalloc.stop()
        wall = summary["run"]["wall_s"]
        recs = runner.records()
    n = len(recs)
    usage = summary["run"]["usage"]["backend"]
    return {
        "tests": n,
        "wall_s": round(wall, 2),
        "tests_per_s": round(n / wall, 2),
        "mean_prompt_tokens": round(sum(r.get("prompt_tokens") or 0 for r in recs) / max(n, 1)),
        "completion_tokens": usage["completion_tokens"],
        "gen_tokens_per_s": round(usage["completion_tokens"] / wall, 1),
        "backend_s": usage["backend_seconds"],
        "failed": sum(r["status"] == "error" for r in recs),
        "skipped_context": sum(r["status"] == "skipped_context" for r in recs),
        "peak_python_mb": round(peak / 2**20, 1) if peak is not None else None,
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="dataset dir (default: PrefEval sample if present, else built-in)")
    ap.add_argument("--filler", default=None, help="filler file with at least 298 pairs (default: synthetic)")
    ap.add_argument("--items", type=int, default=20, help="items for the overhead runs (default 20)")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--hf", default=None, help="packaged model for part 2, e.g. smollm2-135m")
    ap.add_argument("--hf-items", type=int, default=4)
    ap.add_argument("--hf-max-new-tokens", type=int, default=64)
    ap.add_argument("--hf-concurrency", type=int, default=1)
    ap.add_argument("--skip-minilm", action="store_true", help="RAG with tf-idf only")
    ap.add_argument("--no-overhead", action="store_true", help="skip part 1 (harness overhead)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)

    data = Path(args.data) if args.data else (SAMPLE if SAMPLE.is_dir() else builtin_data_dir())
    filler = load_filler(args.filler) if args.filler else None
    if filler is None or len(filler.pairs) < 298:
        filler = synthetic_filler(298)
    n_items = len(load_prefeval(data).items)
    print(f"data {data} ({n_items} items); filler {filler.path}: {len(filler.pairs)} pairs")
    results: dict[str, Any] = {}
    fake = FakeChatModel("Here is a helpful answer that respects what you told me earlier, with three concrete suggestions.")
    cases: list[tuple[str, Any, tuple[str, ...], str]] = [] if args.no_overhead else [
        ("fake, zero-shot, approx tokens", fake, ("zero-shot",), "tfidf"),
        ("fake, rag (tf-idf), approx tokens", fake, ("rag",), "tfidf"),
    ]
    if not args.skip_minilm and not args.no_overhead:
        cases.append(("fake, rag (minilm), approx tokens", fake, ("rag",), "minilm"))
    counter = None
    try:
        if args.no_overhead:
            raise RuntimeError("part 1 skipped")
        from persona_lab.models import open_chat_model

        hf_model = open_chat_model("hf:smollm2-135m", cache=False)
        hf_model.count_tokens([Message("user", "warm up the tokenizer")])
        counter = hf_model.count_tokens
    except Exception as exc:  # the hf backend or the packaged model is missing
        if not args.no_overhead:
            print(f"(no real tokenizer: {exc})")
    if counter is not None:
        cases.append(("fake, zero-shot, SmolLM2 tokenizer", TokenizerCounter(fake, counter), ("zero-shot",), "tfidf"))
    for name, model, methods, encoder in cases:
        # warm-up: encoder load and filler vectors are one-off costs, measured separately
        t0 = time.perf_counter()
        run_once(model, data, filler, turns=(298,), methods=methods, limit=1, concurrency=1, encoder=encoder, forms=("explicit",))
        warm = time.perf_counter() - t0
        r = run_once(model, data, filler, turns=(298,), methods=methods, limit=args.items, concurrency=args.concurrency, encoder=encoder)
        r["first_test_s (incl. warm-up)"] = round(warm, 2)
        mem = run_once(model, data, filler, turns=(298,), methods=methods, limit=5, concurrency=args.concurrency,
                       encoder=encoder, trace=True)
        r["peak_python_mb"] = mem["peak_python_mb"]
        r["max_rss_mb"] = mem["max_rss_mb"]
        results[f"300 turns: {name}"] = r
        print(f"{name:40s} {json.dumps(r)}", flush=True)

    if args.hf:
        from persona_lab.models import open_chat_model

        model = open_chat_model(f"hf:{args.hf}", cache=False).backend
        t0 = time.perf_counter()
        model.load()
        print(f"loaded hf:{args.hf} in {time.perf_counter() - t0:.1f} s (context window {model.context_window})")
        for n in (0, 8):
            r = run_once(model, data, filler, turns=(n,), methods=("zero-shot",), limit=args.hf_items,
                         concurrency=args.hf_concurrency, max_new_tokens=args.hf_max_new_tokens, forms=("explicit",))
            results[f"hf:{args.hf} {n + 2} turns"] = r
            print(f"hf:{args.hf} {n + 2:3d} turns {' ' * 20}{json.dumps(r)}", flush=True)

    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
