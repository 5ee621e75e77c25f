"""The classification task: pick, among four answers, the one that respects the earlier preference.

The options of an item (correct one first in the file) are shuffled with an RNG seeded from the
run seed and the item id only, so every form, turn count and method sees the same order, and a
rerun sees it again. The answer is parsed as exactly one letter; anything ambiguous is *unparsed*
and counts as wrong (chance is 25%).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from persona_lab.core.seeding import make_rng
from persona_lab.simulators.prefeval.context import FinalUserMessage

LETTERS = "ABCD"
CHANCE = 0.25


@dataclass(frozen=True)
class ShuffledOptions:
    """The options in presentation order; ``order[k]`` is the file index shown as letter ``k``."""

    options: tuple[str, ...]
    order: tuple[int, ...]

    @property
    def correct_letter(self) -> str:
        return LETTERS[self.order.index(0)]


def shuffle_options(options: Sequence[str], item_id: str, seed: int = 0) -> ShuffledOptions:
    """Shuffle ``options`` (correct first) with a per-item RNG: stable across runs and processes."""
    rng = make_rng("prefeval-classification", seed, item_id)
    order = tuple(int(i) for i in rng.permutation(len(options)))
    return ShuffledOptions(tuple(options[i] for i in order), order)


def classification_instruction(options: Sequence[str]) -> str:
    """The options and the answer format, shown after the question."""
    lines = "\n".join(f"({LETTERS[k]}) {opt}" for k, opt in enumerate(options))
    return (
        "Which of these answers would be the best one for me? Consider everything you know about me "
        f"from our conversation.\n{lines}\nReply with the letter of one option only."
    )


def classification_question(question: str, options: Sequence[str]) -> FinalUserMessage:
    """The final user turn of a classification test (the options take the length instruction's place)."""
    return FinalUserMessage(question=question, instruction="", suffix=classification_instruction(options))


_WHOLE = re.compile(r"^\W*\(?([A-Da-d])\)?\W*$")
_ANSWER = re.compile(
    r"\b(?:final\s+answer|answer|choice|i\s+(?:choose|pick|select|would\s+(?:choose|pick)))"
    r"\s*(?:(?:is|would\s+be)\s*[:=-]?|[:=-])?\s*(?:option\s*)?(\(?)([A-Da-d])\)?(?![\w'])",
    re.IGNORECASE,
)
_TAG = re.compile(r"<choice>\s*\(?\s*([A-Da-d])\s*\)?\s*(?:</choice>|$|\n|[.,;:!?])", re.IGNORECASE)
_MARKER = re.compile(r"(?:^|\n)\s*\(?([A-D])[).:](?=\s|$)|\(([A-D])\)|\b[Oo]ption\s+\(?([A-D])\)?(?![\w'])")
_CLOSES = re.compile(r"\)?\s*(?:$|[.,;:!?\n])")


def _answer_letters(t: str) -> set[str]:
    """Letters named by "answer is B"-style phrases. A lowercase letter counts only in parentheses or
    when the sentence ends right after it ("answer: b."), so "answer is a bit" is not an answer."""
    out = set()
    for m in _ANSWER.finditer(t):
        paren, letter = m.group(1), m.group(2)
        if letter.islower() and not paren and not _CLOSES.match(t, m.end(2)):
            continue
        out.add(letter.upper())
    return out


def _tag_letters(t: str) -> set[str]:
    return {m.group(1).upper() for m in _TAG.finditer(t)}


def _marker_letters(t: str) -> set[str]:
    return {next(g for g in m.groups() if g) for m in _MARKER.finditer(t)}


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", s.lower())).strip()


def parse_choice(text: str, options: Sequence[str] | None = None) -> str | None:
    """One letter A-D from a model's reply, or None when there is none or more than one.

    Tries, in order: the whole reply is a letter ("B", "(b)"); the paper's XML format
    ("<choice>B</choice>", or "<choice>B" when the tag was pre-filled); "answer is B" / "The answer
    is: D" / "Answer: b"; letter markers ("B) ...", "(B)", "option B"); and, with ``options``, the
    reply quoting exactly one option's text. The first rule that finds anything decides; if it finds
    two different letters the reply is ambiguous (None, scored as wrong).
    """
    if not isinstance(text, str):
        return None
    t = text.replace("*", "").strip()
    if not t:
        return None
    m = _WHOLE.match(t)
    if m:
        return m.group(1).upper()
    for rule in (_tag_letters, _answer_letters, _marker_letters):
        found = rule(t)
        if len(found) == 1:
            return found.pop()
        if len(found) > 1:
            return None
    if options:
        nt = f" {_norm(t)} "
        hits = {LETTERS[k] for k, opt in enumerate(options) if _norm(opt) and f" {_norm(opt)} " in nt}
        if len(hits) == 1:
            return hits.pop()
    return None
