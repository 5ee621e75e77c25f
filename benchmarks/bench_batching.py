"""Dynamic batching in the hf backend: 32 requests served one by one vs from 8 threads at once.

    python benchmarks/bench_batching.py                        # random models built in code
    python benchmarks/bench_batching.py --model smollm2-135m   # a real (packaged) model

Both runs use greedy decoding and the same requests; the table gives wall time, throughput, the
number of ``model.generate`` calls, and how many answers are identical between the two runs (with
float32 they should all be: batching must not change answers).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from persona_lab.models import CachedChatModel, ChatRequest
from persona_lab.models.hf import HFChatModel, split_hf_spec
from persona_lab.testing.tiny import save_tiny_model

TOPICS = ["rain", "cats", "the sea", "trains", "bread", "winter", "music", "mountains"]
ASKS = ["Write a line about {}.", "Name a fact about {}.", "Describe {} briefly.", "Why do people like {}?"]


def requests(n: int, max_new_tokens: int) -> list[ChatRequest]:
    prompts = [ask.format(topic) for ask in ASKS for topic in TOPICS][:n]
    return [ChatRequest.of(p, max_new_tokens=max_new_tokens) for p in prompts]


def one_by_one(chat, reqs: list[ChatRequest]) -> tuple[float, list[str]]:
    start = time.perf_counter()
    texts = [chat.generate([r])[0].text for r in reqs]
    return time.perf_counter() - start, texts


def concurrent(chat, reqs: list[ChatRequest], threads: int) -> tuple[float, list[str]]:
    texts: list[str] = [""] * len(reqs)

    def worker(k: int) -> None:
        for i in range(k, len(reqs), threads):
            texts[i] = chat.generate([reqs[i]])[0].text

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return time.perf_counter() - start, texts


def bench(label: str, spec: str, n: int, threads: int, max_new_tokens: int, dtype: str) -> None:
    base, adapter = split_hf_spec(spec.removeprefix("hf:"))
    chat = CachedChatModel(HFChatModel(base, adapter=adapter, dtype=dtype))  # no response cache
    backend = chat.backend
    backend.load()
    chat.generate([ChatRequest.of("warm up", max_new_tokens=2)])
    reqs = requests(n, max_new_tokens)
    calls = backend.generate_calls
    t_seq, seq = one_by_one(chat, reqs)
    seq_calls = backend.generate_calls - calls
    calls = backend.generate_calls
    t_par, par = concurrent(chat, reqs, threads)
    par_calls = backend.generate_calls - calls
    same = sum(a == b for a, b in zip(seq, par))
    print(f"\n{label}  ({n} requests, {max_new_tokens} new tokens each, greedy, {backend._model.dtype})")
    print(f"{'mode':<24}{'wall s':>9}{'req/s':>9}{'generate calls':>16}")
    print(f"{'one by one':<24}{t_seq:>9.2f}{n / t_seq:>9.2f}{seq_calls:>16}")
    print(f"{f'{threads} threads, batched':<24}{t_par:>9.2f}{n / t_par:>9.2f}{par_calls:>16}")
    print(f"throughput ratio: {t_seq / t_par:.2f}x   identical answers: {same}/{n}")
    backend.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="an hf spec without the `hf:` prefix; default: random models built in code")
    ap.add_argument("--requests", type=int, default=32)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--dtype", default="auto")
    args = ap.parse_args()
    if args.model:
        bench(args.model, args.model, args.requests, args.threads, args.max_new_tokens, args.dtype)
        return
    with tempfile.TemporaryDirectory() as tmp:
        tiny = save_tiny_model(Path(tmp) / "tiny")
        bench("tiny random Llama (hidden 64, 2 layers)", str(tiny), args.requests, args.threads,
              args.max_new_tokens, args.dtype)
        medium = save_tiny_model(Path(tmp) / "medium", hidden_size=512, num_layers=8)
        bench("random Llama (hidden 512, 8 layers, ~21M params)", str(medium), args.requests, args.threads,
              args.max_new_tokens, args.dtype)


if __name__ == "__main__":
    main()
