"""Text spaces with an explicit charset, so ``sample()`` and ``contains()`` both work on real text."""

from __future__ import annotations

import string
from collections.abc import Iterable

from gymnasium import spaces

# Printable ASCII plus the non-ASCII characters assistants and users commonly produce.
EXTRA_CHARS = "‘’“”–—…•·éèêëáàâäíìîïóòôöúùûüçñÉÈÁÀÖÜÇÑß€£°×÷±→←✓✔✨🎉🚀💡🔥😊🙂👍📌🌟🧵📚🤔❤️🙏"
BASE_CHARSET = frozenset(string.printable) | frozenset(EXTRA_CHARS)


def text_space(max_length: int, extra: Iterable[str] = ()) -> spaces.Text:
    """A ``spaces.Text`` over printable text plus every character in ``extra`` (e.g. a corpus)."""
    chars = set(BASE_CHARSET)
    for piece in extra:
        chars.update(piece)
    return spaces.Text(max_length=max_length, min_length=0, charset="".join(sorted(chars)))
