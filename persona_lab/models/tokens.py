"""Token counting when a backend has no tokenizer of its own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def approx_token_count(messages: Sequence[Any]) -> int:
    """About 4 characters a token plus 4 tokens of chat framing per message (OpenAI's rule of thumb)."""
    total = 0
    for m in messages:
        content = m.content if hasattr(m, "content") else m["content"]
        total += 4 + (len(content) + 3) // 4
    return total
