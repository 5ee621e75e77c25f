"""PrefEval token counting at 300 turns: the hf backend's ``count_tokens`` vs tokenizing each whole text.

    python benchmarks/bench_token_count.py [--items 40] [--turns 298] [--model smollm2-135m]

Per item, interleaved: (A) what a user would write: render the chat with the tokenizer's template
and tokenize the whole text; (B) ``HFChatModel(...).count_tokens(messages)`` (tokenizer only; the
filler's turns are counted once and memoized). Both must give identical totals (checked per item).
Contexts are built by PrefEval's ``build_context`` on the built-in dataset with a synthetic filler of
~340 tokens per pair (the layout of ``bench_prefeval.py``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_prefeval import synthetic_filler  # noqa: E402

from persona_lab.models.hf import HFChatModel  # noqa: E402
from persona_lab.simulators.prefeval.context import build_context  # noqa: E402
from persona_lab.simulators.prefeval.data import load_prefeval  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=40)
    ap.add_argument("--turns", type=int, default=298, help="filler pairs N (paper turns = N + 2)")
    ap.add_argument("--model", default="smollm2-135m")
    args = ap.parse_args()
    items = load_prefeval().items
    filler = synthetic_filler(args.turns)
    contexts = [build_context(items[i % len(items)], "explicit", args.turns, filler,
                              explicit_reply=f"Noted, I will keep that in mind ({i}).") for i in range(args.items)]
    model = HFChatModel(args.model)
    t = time.perf_counter()
    model.count_tokens(contexts[0].messages())  # loads the tokenizer (and converts the GGUF once)
    print(f"tokenizer ready in {time.perf_counter() - t:.1f}s; model loaded: {model.loaded}")
    tok = model._counting_tok
    raw_s = ours_s = 0.0
    steady: list[tuple[float, float]] = []  # (raw, ours) after count_tokens' 3 self-checks
    totals = []
    for ctx in contexts:
        msgs = ctx.messages()
        t = time.perf_counter()
        text = tok.apply_chat_template([m.to_dict() for m in msgs], tokenize=False, add_generation_prompt=True)
        raw = len(tok(text, add_special_tokens=False)["input_ids"])
        raw_s += time.perf_counter() - t
        t = time.perf_counter()
        checking = model._fragment_checks_left > 0
        ours = model.count_tokens(msgs)
        ours_s += time.perf_counter() - t
        if not checking:
            steady.append((raw_s, ours_s))
        if raw != ours:
            raise SystemExit(f"MISMATCH: {raw} vs {ours}")
        totals.append(ours)
    n = len(contexts)
    print(f"{n} PrefEval contexts at {args.turns} filler pairs, {min(totals)}-{max(totals)} tokens each; totals identical")
    print(f"whole-text tokenization: {raw_s / n * 1e3:.1f} ms/item ({n / raw_s:.1f} tests/s)")
    print(f"count_tokens:            {ours_s / n * 1e3:.1f} ms/item ({n / ours_s:.1f} tests/s)  "
          f"(first 3 calls also check against the whole text); ratio {raw_s / ours_s:.1f}x; model loaded: {model.loaded}")
    if len(steady) > 1:
        k = len(steady) - 1
        r, o = steady[-1][0] - steady[0][0], steady[-1][1] - steady[0][1]
        print(f"after the self-checks ({k} items): whole text {r / k * 1e3:.1f} ms/item, count_tokens {o / k * 1e3:.2f} "
              f"ms/item ({k / o:.0f} tests/s); ratio {r / o:.0f}x")


if __name__ == "__main__":
    main()
