"""Metrics with confidence intervals that respect each value's range.

A rate cannot be negative and a cost cannot be below zero, so an interval that says otherwise is
wrong, not merely wide: proportions get a Wilson interval, other means a Student-t interval clipped
to the metric's range, and a single value gets no interval at all (``ci_low``/``ci_high`` ``None``).
Every interval carries its ``n`` so that tables can say it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from statistics import NormalDist


def _t_two_sided(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with integer ``df`` (the exact finite series of Abramowitz &
    Stegun 26.7.3/26.7.4)."""
    theta = math.atan(t / math.sqrt(df))
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if df % 2 == 1:
        total, term = 0.0, math.cos(theta)
        if df > 1:
            total = term
            for k in range(3, df - 1, 2):  # terms cos^(k) with coefficient (2*4*..*(k-1))/(1*3*..*k)
                term *= c2 * (k - 1) / k
                total += term
        return (2 / math.pi) * (theta + s * total)
    total, term = 1.0, 1.0
    for k in range(2, df - 1, 2):
        term *= c2 * (k - 1) / k
        total += term
    return s * total


@lru_cache(maxsize=256)
def t_ppf(p: float, df: int) -> float:
    """The ``p`` quantile (p > 0.5) of Student's t with integer ``df``, by bisection on the exact CDF;
    agrees with ``scipy.stats.t.ppf`` to 1e-8 (a test checks). Computed here because importing
    ``scipy.stats`` for two quantiles cost about a second of CPU and half the peak memory of a
    scripted run."""
    if df < 1 or not 0.5 < p < 1:
        raise ValueError(f"t_ppf needs df >= 1 and 0.5 < p < 1, got df={df}, p={p}")
    if df > 5000:  # the series is long; Cornish-Fisher is exact to well below 1e-9 here
        z = NormalDist().inv_cdf(p)
        return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
    target = 2 * p - 1
    lo, hi = 0.0, 1.0
    while _t_two_sided(hi, df) < target:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if _t_two_sided(mid, df) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return (lo + hi) / 2

Bounds = tuple[float, float]

# Metric-name endings and the range of the value. A name matching none is unbounded.
_UNIT = ("rate", "satisfaction", "accuracy", "recall", "precision", "share", "fraction", "followed", "judged",
         "rating")
_SIGNED_UNIT = ("utility",)  # RLHS's true utility: -1 requirement unmet .. 1 cheapest qualifying
_NONNEGATIVE = ("cost", "tokens", "turns", "donation", "wall_s", "rounds", "calls", "seconds", "expense")


def metric_bounds(name: str) -> Bounds:
    """The range a metric's value lives in, from its (namespaced) name."""
    leaf = name.rsplit("/", 1)[-1].lower()
    if leaf.endswith(_UNIT) or leaf.startswith("pref_"):
        return (0.0, 1.0)
    if leaf.endswith(_SIGNED_UNIT):
        return (-1.0, 1.0)
    if any(word in leaf for word in _NONNEGATIVE):
        return (0.0, math.inf)
    return (-math.inf, math.inf)


def mean_ci(values: Sequence[float], confidence: float = 0.95, *, bounds: Bounds | None = None) -> dict[str, float | None]:
    """Mean and a confidence interval kept inside ``bounds``.

    Values that are all 0 or 1 within unit bounds are a proportion: Wilson score interval. Otherwise a
    Student-t interval, clipped to ``bounds``. Fewer than two values: ``ci_low``/``ci_high`` are
    ``None`` (one episode says nothing about spread). Always returns ``n``.
    """
    n = len(values)
    if n == 0:
        return {"mean": None, "ci_low": None, "ci_high": None, "std": None, "n": 0}
    mean = sum(values) / n
    if n < 2:
        return {"mean": mean, "ci_low": None, "ci_high": None, "std": None, "n": n}
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    std = math.sqrt(var)
    lo_b, hi_b = bounds if bounds is not None else (-math.inf, math.inf)
    if (lo_b, hi_b) == (0.0, 1.0) and all(v in (0, 1) for v in values):
        lo, hi = wilson_interval(int(sum(values)), n, confidence)
    else:
        half = t_ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)
        lo, hi = max(lo_b, mean - half), min(hi_b, mean + half)
    return {"mean": mean, "ci_low": lo, "ci_high": hi, "std": std, "n": n}


def metric_ci(name: str, values: Sequence[float], confidence: float = 0.95) -> dict[str, float | None]:
    """:func:`mean_ci` with the bounds of the metric ``name``."""
    return mean_ci(values, confidence, bounds=metric_bounds(name))


def format_ci(ci: dict[str, float | None], fmt: str = ".3f") -> str:
    """``[lo, hi]``, or ``n = 1`` / ``n = 0`` where there is no interval."""
    if ci.get("ci_low") is None or ci.get("ci_high") is None:
        return f"n = {ci.get('n', 0)}"
    return f"[{ci['ci_low']:{fmt}}, {ci['ci_high']:{fmt}}]"


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (well-behaved near 0 and 1)."""
    if n == 0:
        return (float("nan"), float("nan"))
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def cohen_kappa(a: Sequence[object], b: Sequence[object]) -> float:
    """Cohen's kappa of two raters' labels on the same items (1 = perfect agreement, 0 = chance
    level); NaN when chance agreement is 1 (both raters used one and the same label throughout), so
    an undefined kappa is never printed as a number. The one implementation every report uses."""
    if len(a) != len(b) or not a:
        raise ValueError("need two label sequences of the same, non-zero length")
    n = len(a)
    po = sum(x == y for x, y in zip(a, b)) / n
    labels = set(a) | set(b)
    pe = sum((sum(x == k for x in a) / n) * (sum(y == k for y in b) / n) for k in labels)
    return float("nan") if pe >= 1.0 else (po - pe) / (1 - pe)
