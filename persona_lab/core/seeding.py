"""Seeding helpers: derive independent, stable seeds from parts, never touch global RNGs."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

# One encoder for every hash: ``json.dumps`` with non-default options builds a new encoder per call,
# which was most of the cost of hashing a short text (an action, a cache key). Same output.
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def stable_hash(obj: Any, *, length: int = 64) -> str:
    """SHA-256 of a canonical JSON rendering; stable across processes and Python versions."""
    return hashlib.sha256(_CANONICAL.encode(obj).encode("utf-8")).hexdigest()[:length]


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed determined by ``parts`` (unlike ``hash()``, not salted per process)."""
    return int(stable_hash(list(parts), length=16), 16) & ((1 << 63) - 1)


def make_rng(*parts: Any) -> np.random.Generator:
    """A fresh numpy Generator seeded from ``parts``."""
    return np.random.default_rng(derive_seed(*parts))
