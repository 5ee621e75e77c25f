"""Throughput of the preference catalog: checks and edits per second on a ~150-word text.

Run: ``python benchmarks/bench_catalog.py [--seconds 3]``. Two numbers per operation: "warm", the
same text again and again (the parse caches hit, as when a user checks one draft against several
preferences), and "cold", the parse caches cleared before every call.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from persona_lab.simulators.catalog import CATALOG, apply_preferences, sample_compatible
from persona_lab.simulators.catalog.layout import layout, line_parts

TEXT = (
    "The city council approved a new budget on Tuesday after a long and sometimes heated debate, "
    "and the plan is expected to pass the state review next month. It includes funding for parks, "
    "schools and a new bus line that residents have requested for years. Furthermore, the mayor said "
    "the plan is ambitious but affordable! Critics don't agree: they argue that the spending is too "
    'high and that property taxes will rise. "We can\'t keep borrowing," one council member said. '
    "Supporters point out that the city's debt is lower than in neighbouring towns, and that the "
    "bus line will cut commuting times for thousands of workers. The council will hold a public "
    "hearing in two weeks, where residents can ask questions about the details. Do you think the "
    "plan is worth it? Local businesses have mostly welcomed the proposal."
)


def _rate(fn, seconds: float) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = parser.parse_args()
    prefs = list(CATALOG.values())
    words = len(TEXT.split())
    print(f"text: {words} words; {len(prefs)} preferences")

    def check_all() -> None:
        for p in prefs:
            p.check(TEXT)

    def edit_all() -> None:
        for p in prefs:
            p.edit(TEXT)

    counter = iter(range(10**12))

    def check_all_cold() -> None:
        text = f"{TEXT} {next(counter)}"
        for p in prefs:
            layout.cache_clear()
            line_parts.cache_clear()
            p.check(text)

    def edit_all_cold() -> None:
        text = f"{TEXT} {next(counter)}"
        for p in prefs:
            layout.cache_clear()
            line_parts.cache_clear()
            p.edit(text)

    rng = np.random.default_rng(0)
    sets = [sample_compatible(rng, 3) for _ in range(64)]
    set_iter = iter(range(10**12))

    def apply_three() -> None:
        apply_preferences(TEXT, sets[next(set_iter) % len(sets)])

    n = len(prefs)
    for label, fn, per_call in (
        ("checks/s (warm)", check_all, n),
        ("checks/s (cold)", check_all_cold, n),
        ("edits/s  (warm)", edit_all, n),
        ("edits/s  (cold)", edit_all_cold, n),
        ("apply_preferences(3 ids)/s", apply_three, 1),
    ):
        print(f"{label:>28}: {_rate(fn, args.seconds) * per_call:,.0f}")


if __name__ == "__main__":
    main()
