"""The hf backend's dynamic batching vs one raw padded ``generate`` over the same prompts.

    python benchmarks/bench_hf_batcher.py [--threads 8 16] [--reps 5] [--hidden 64] [--new-tokens 16]

On a tiny random model built in code (where the batcher's own overhead is what is measured). Per
rep, interleaved: (A) raw: render the prompts with the chat template, tokenize them left-padded and
call ``model.generate`` once; (B) ``HFChatModel.generate([one request])`` from T threads released
together by a barrier (the same T threads every rep, as a run's episode threads; one warm-up rep
first). The order of A and B alternates each rep. Reported: median wall seconds of each, the ratio
A/B of the medians and the median of the per-rep ratios (>= 1 means the batcher is as fast), how
many ``generate`` calls (B) made per rep (1 = no split batch), how many batches were served
without waiting for the quiet gap, and whether every greedy answer is identical to (A)'s. On a loaded shared CPU, torch's OpenMP threads wait on each other
and timings swing by seconds; ``--torch-threads 1`` (the default) avoids that for both sides.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time

from persona_lab.models import ChatRequest
from persona_lab.models.hf import HFChatModel
from persona_lab.testing.tiny import save_tiny_model

TOPICS = ["rain", "cats", "the sea", "trains", "bread", "winter", "music", "mountains"]


def prompts(n: int) -> list[str]:
    return [f"Write a line about {TOPICS[i % 8]} number {i}." for i in range(n)]


def raw(model: object, tok: object, texts: list[str], new_tokens: int) -> tuple[float, list[str]]:
    import torch

    start = time.perf_counter()
    rendered = [tok.apply_chat_template([{"role": "user", "content": t}], tokenize=False,  # type: ignore[attr-defined]
                                        add_generation_prompt=True) for t in texts]
    enc = tok(rendered, add_special_tokens=False, padding=True, return_tensors="pt").to(model.device)  # type: ignore[operator,attr-defined]
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=new_tokens, do_sample=False,  # type: ignore[attr-defined]
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)  # type: ignore[attr-defined]
    answers = tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)  # type: ignore[attr-defined]
    return time.perf_counter() - start, answers


class Callers:
    """``n`` caller threads that live across reps, as a run's episode threads do: each rep, released
    together by a barrier, each sends its one request through ``HFChatModel.generate``."""

    def __init__(self, chat: HFChatModel, texts: list[str], new_tokens: int) -> None:
        self.chat, self.texts, self.new_tokens = chat, texts, new_tokens
        self.answers = [""] * len(texts)
        self.start = threading.Barrier(len(texts) + 1)
        self.done = threading.Barrier(len(texts) + 1)
        self.stop = False
        self.threads = [threading.Thread(target=self._work, args=(i,), daemon=True) for i in range(len(texts))]
        for t in self.threads:
            t.start()

    def _work(self, i: int) -> None:
        while True:
            self.start.wait()
            if self.stop:
                return
            req = ChatRequest.of(self.texts[i], max_new_tokens=self.new_tokens)
            self.answers[i] = self.chat.generate([req])[0].text
            self.done.wait()

    def rep(self) -> tuple[float, list[str], int]:
        calls = self.chat.generate_calls
        self.start.wait()
        t0 = time.perf_counter()
        self.done.wait()
        return time.perf_counter() - t0, list(self.answers), self.chat.generate_calls - calls

    def close(self) -> None:
        self.stop = True
        self.start.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--torch-threads", type=int, default=1,
                    help="intra-op threads for both (1: stable timings on a shared CPU; 0: torch's default)")
    args = ap.parse_args()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)

    with tempfile.TemporaryDirectory() as tmp:
        folder = save_tiny_model(f"{tmp}/tiny", hidden_size=args.hidden)
        model = AutoModelForCausalLM.from_pretrained(folder).eval()
        tok = AutoTokenizer.from_pretrained(folder)
        tok.padding_side = "left"
        chat = HFChatModel(str(folder))
        chat.load()
        model.to(chat._model.device)  # both on the device the backend chose (cuda when there is one)
        print(f"device: {chat._model.device}")
        raw(model, tok, prompts(2), args.new_tokens)  # warm up both
        for n in args.threads:
            texts = prompts(n)
            callers = Callers(chat, texts, args.new_tokens)
            callers.rep()  # warm-up: the batcher meets these callers (it serves known callers without the quiet gap)
            early = chat.batcher.early
            a, b, calls, same = [], [], [], True
            for rep in range(args.reps):
                order = ("raw", "batcher") if rep % 2 == 0 else ("batcher", "raw")
                for which in order:
                    if which == "raw":
                        ta, ans_a = raw(model, tok, texts, args.new_tokens)
                        a.append(ta)
                    else:
                        tb, ans_b, k = callers.rep()
                        b.append(tb)
                        calls.append(k)
                same = same and ans_a == ans_b
            callers.close()
            ma, mb = statistics.median(a), statistics.median(b)
            ratios = [x / y for x, y in zip(a, b)]
            print(f"{n:>2} threads: raw padded generate {ma * 1e3:7.1f} ms, batcher {mb * 1e3:7.1f} ms, ratio of medians "
                  f"{ma / mb:.2f}, median paired ratio {statistics.median(ratios):.2f}; generate calls per rep {calls}; "
                  f"served without the quiet gap {chat.batcher.early - early}/{args.reps}; identical greedy answers: {same}",
                  flush=True)
        print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
