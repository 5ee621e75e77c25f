"""Opening the response cache vs the raw SQLite a user would write, on a cache of 10^5 answers.

    python benchmarks/bench_cache_open.py [--entries 100000] [--reps 30]

Interleaved A/B, each rep in a fresh object: (A) ``ResponseCache(path).get_many([key])``; (B) a raw
``sqlite3.connect`` + one ``SELECT``. The integrity check the cache used to run on every open
(``PRAGMA quick_check``) is timed too, as what was removed. Medians are printed with the ratio.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from persona_lab.models import Completion, Usage
from persona_lab.models.cache import ResponseCache


def build(path: Path, n: int) -> None:
    cache = ResponseCache(path)
    text = "lorem ipsum dolor sit amet " * 32  # ~0.9 KB per answer, as measured on real runs
    for i in range(0, n, 5000):
        cache.put_many("bench:m", [(f"key-{j:08d}", Completion(text + str(j), Usage(10, 200))) for j in range(i, min(n, i + 5000))])
    cache.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="persona-lab-bench-cache-open-") as tmp:
        path = Path(tmp) / "responses.sqlite"
        t0 = time.perf_counter()
        build(path, args.entries)
        print(f"built {args.entries} answers in {time.perf_counter() - t0:.1f}s: {path.stat().st_size / 2**20:.0f} MiB")
        key = f"key-{args.entries // 2:08d}"
        ours, raw, check = [], [], []
        for _ in range(args.reps):
            t = time.perf_counter()
            c = ResponseCache(path)
            assert key in c.get_many([key])
            ours.append(time.perf_counter() - t)
            c.close()
            t = time.perf_counter()
            conn = sqlite3.connect(path)
            assert conn.execute("SELECT text FROM responses WHERE key = ?", (key,)).fetchone()
            raw.append(time.perf_counter() - t)
            conn.close()
            if len(check) < 5:
                t = time.perf_counter()
                conn = sqlite3.connect(path)
                conn.execute("PRAGMA quick_check").fetchone()
                check.append(time.perf_counter() - t)
                conn.close()
        a, b = statistics.median(ours), statistics.median(raw)
        print(f"open + 1 lookup, median of {args.reps}: persona-lab {a * 1e3:.2f} ms, raw sqlite3 {b * 1e3:.2f} ms "
              f"(ratio raw/persona-lab {b / a:.2f}); the removed PRAGMA quick_check alone: "
              f"{statistics.median(check) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
