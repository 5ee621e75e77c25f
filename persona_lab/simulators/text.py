"""Text utilities shared by simulated users and metrics: word tokens and the edit cost."""

from __future__ import annotations

import re

from rapidfuzz.distance import Levenshtein

# Words (with inner apostrophes/hyphens) or single non-space symbols: punctuation is its own token.
_TOKEN = re.compile(r"\w+(?:['’\-]\w+)*|[^\w\s]", re.UNICODE)


def word_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def edit_cost(draft: str, edited: str) -> int:
    """PRELUDE's cost: Levenshtein distance over word tokens, punctuation separate, unnormalized."""
    if draft == edited:
        return 0
    return int(Levenshtein.distance(word_tokens(draft), word_tokens(edited)))
