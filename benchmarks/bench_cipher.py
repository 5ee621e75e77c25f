"""CIPHER-5 speed on the scripted world, and faiss retrieval latency/recall at memory sizes 10^3..10^6.

Usage: python benchmarks/bench_cipher.py [--rounds 200] [--sizes 1000 100000 1000000]

1. Rounds per second of CIPHER-5 on EditSummarization-v0 with the packaged MiniLM encoder and with
   hashed TF-IDF (one episode each, same seed, side by side in this run).
2. Retrieval latency p50/p99 of a single query (k=5) over synthetic unit vectors (384-d, like MiniLM)
   with the exact index (IndexFlatIP) and the approximate one persona-lab offers for large memories
   (HNSW, M=32, efSearch=128), and HNSW's recall@5 against exact search.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from persona_lab.eval.runner import RunConfig, Runner
from persona_lab.models.embeddings import VectorIndex


def cipher_rps(encoder: str, rounds: int) -> float:
    cfg = RunConfig(env_id="persona_lab/EditSummarization-v0", agent="cipher", rounds=rounds,
                    agent_kwargs={"k": 5, "encoder": encoder})
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        Runner(cfg, out, cache=False).run()
        return rounds / (time.perf_counter() - start)


def clustered(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors around 1,000 centres: closer to document embeddings than uniform noise."""
    centres = rng.standard_normal((1000, dim)).astype(np.float32)
    x = centres[rng.integers(0, 1000, n)] + 0.35 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def retrieval(n: int, dim: int = 384, queries: int = 300, k: int = 5, ef_search: int = 128) -> dict[str, float]:
    rng = np.random.default_rng(0)
    data = clustered(n, dim, rng)
    q = clustered(queries, dim, rng)
    out: dict[str, float] = {}
    results = {}
    for kind in ("flat", "hnsw"):
        index = VectorIndex(dim, kind=kind, ef_search=ef_search)
        start = time.perf_counter()
        for lo in range(0, n, 50_000):
            index.add(data[lo:lo + 50_000], list(range(lo, min(n, lo + 50_000))))
        out[f"{kind}_build_s"] = time.perf_counter() - start
        lat = []
        found = []
        for row in q:
            t0 = time.perf_counter()
            hits = index.search(row[None, :], k)[0]
            lat.append(time.perf_counter() - t0)
            found.append({p for _, p in hits})
        out[f"{kind}_p50_ms"] = float(np.percentile(lat, 50) * 1e3)
        out[f"{kind}_p99_ms"] = float(np.percentile(lat, 99) * 1e3)
        results[kind] = found
    out["hnsw_recall@5"] = float(np.mean([len(a & b) / k for a, b in zip(results["hnsw"], results["flat"])]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    args = parser.parse_args()
    cipher_rps("tfidf", 10)  # warm-up (imports); MiniLM's load is part of its measured run
    print(f"CIPHER-5, EditSummarization-v0, {args.rounds} rounds, one episode:")
    for enc in ("minilm", "tfidf"):
        print(f"  encoder {enc:7} {cipher_rps(enc, args.rounds):8.1f} rounds/s")
    print("\nretrieval of k=5 from a memory of N 384-d vectors (single query):")
    print(f"{'N':>9} {'flat p50':>9} {'flat p99':>9} {'hnsw p50':>9} {'hnsw p99':>9} {'recall@5':>9} {'hnsw build s':>13}")
    for n in args.sizes:
        r = retrieval(n)
        print(f"{n:>9} {r['flat_p50_ms']:8.3f}ms {r['flat_p99_ms']:8.3f}ms {r['hnsw_p50_ms']:8.3f}ms "
              f"{r['hnsw_p99_ms']:8.3f}ms {r['hnsw_recall@5']:9.3f} {r['hnsw_build_s']:13.1f}")


if __name__ == "__main__":
    main()
