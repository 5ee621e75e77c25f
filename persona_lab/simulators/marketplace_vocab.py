"""The marketplace's public vocabulary: the feature table's text form and the claim sentences.

What a seller may know without seeing the customer's hidden state: the status marks, the option
letters, how the env writes the seller's feature table (:func:`parse_table` reads it back), how to
find the feature a customer names, and the canonical claim sentences the scripted sellers write (the
world's lenient parser, in :mod:`persona_lab.simulators.marketplace`, reads them and much more).
Agents import this module, never the customers' logic.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

HAS, LACKS, UNSPECIFIED = "+", "-", "?"
STATUSES = (HAS, LACKS, UNSPECIFIED)
STATUS_WORDS = {HAS: "yes", LACKS: "no", UNSPECIFIED: "unspecified"}
LETTERS = ("A", "B", "C")
NO_PURCHASE = "D"
CHOICES = (*LETTERS, NO_PURCHASE)
# A pairwise preference: the first turn, the second, a stated tie, or an answer nobody could read.
PREFERENCES = ("a", "b", "tie", "unclear")
UNCLEAR_PREFERENCE = "unclear"


@functools.lru_cache(maxsize=4096)
def norm_text(text: str) -> str:
    """Lower case, straight quotes, single spaces for runs of spaces and hyphens (for matching)."""
    text = text.replace("’", "'").replace("‘", "'").lower()
    return re.sub(r"[\s\-]+", " ", text)


@dataclass(frozen=True)
class TableView:
    """What a seller can read from the table text."""

    category: str
    prices: Mapping[str, int]
    features: Mapping[str, Mapping[str, str]]  # letter -> feature -> status

    @property
    def feature_names(self) -> tuple[str, ...]:
        first = next(iter(self.features.values()), {})
        return tuple(first)


_TABLE_LINE = re.compile(r"^Option ([ABC]) \(\$(\d+)\): (.*)$")
_WORD_STATUS = {v: k for k, v in STATUS_WORDS.items()}


def parse_table(text: str) -> TableView:
    """Read :func:`feature_table` text back (scripted seller skills use it)."""
    category, prices, features = "", {}, {}
    for line in text.splitlines():
        if line.startswith("Product: "):
            category = line[len("Product: "):].strip()
            continue
        m = _TABLE_LINE.match(line.strip())
        if not m:
            continue
        letter, price, rest = m.group(1), int(m.group(2)), m.group(3)
        feats = {}
        for part in rest.split("; "):
            name, _, word = part.rpartition(" = ")
            if name:
                feats[name] = _WORD_STATUS.get(word.strip(), UNSPECIFIED)
        prices[letter], features[letter] = price, feats
    return TableView(category, prices, features)


def find_required(customer_text: str, features: Sequence[str]) -> str | None:
    """The feature a customer message names (the longest match wins)."""
    low = norm_text(customer_text)
    hits = [f for f in features if norm_text(f) in low]
    return max(hits, key=len) if hits else None


def render_claims(letter: str, has: Sequence[str] = (), lacks: Sequence[str] = (), unlisted: Sequence[str] = ()) -> str:
    """Canonical sentences of the claim grammar (what the scripted seller skills write)."""
    out = []
    if has:
        out.append(f"Option {letter} has {_join(has)}.")
    if lacks:
        out.append(f"Option {letter} does not have {_join(lacks)}.")
    if unlisted:
        out.append(f"Option {letter} does not list {_join(unlisted)}.")
    return " ".join(out)


def _join(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
