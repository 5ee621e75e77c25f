"""The anatomy of a text that every checker and editor shares: words, sentences, line markers, frame lines.

Editors compose only when they agree on what a word, a sentence, a bullet or a sign-off is, so those
definitions live here, once, as precompiled regexes.

A text is a list of lines (split on ``"\\n"`` only). It has three regions:

* the **head**: an optional greeting line ("Hi there,", "Dear all,") as the first non-blank line,
  then an optional ``TL;DR:`` line right after it;
* the **body**: everything between head and tail;
* the **tail**, read from the bottom: an optional sign-off ("Best regards," possibly followed by a
  short signature line such as "[Your Name]"), above it an optional reader question line ("What do
  you think?"), above that an optional call-to-action line ("Please let me know what you think.")
  and above that an optional ``Key takeaway:`` line.

Frame lines (head and tail) are what email and structure preferences add or remove; body-shape
and length preferences look at the body only, so adding a sign-off never breaks a 50-word limit
and a bulleted body stays bulleted when a call to action is appended. A text whose body has no
word characters is *vacuous*: every preference that asks for something to be present holds for it,
and editors leave it alone (there is nothing to format).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# --- words and sentences -------------------------------------------------------------------------

#: A word: a run of word characters, with inner apostrophes ("don't" is one word).
WORD_RE = re.compile(r"\w+(?:['’]\w+)*")

_EMOJI_CHARS = (
    "\U0001f000-\U0001faff"  # emoticons, pictographs, transport, flags, supplemental symbols
    "\u2600-\u27bf"  # miscellaneous symbols and dingbats
    "\u2b05-\u2b07\u2b1b\u2b1c\u2b50\u2b55"
    "\u231a\u231b\u2328\u23cf\u23e9-\u23f3\u23f8-\u23fa"
    "\u3030\u303d\u3297\u3299"
)
#: One emoji code point.
EMOJI_RE = re.compile(f"[{_EMOJI_CHARS}]")
_EMOJI_SEQ = f"[{_EMOJI_CHARS}][\ufe0e\ufe0f\u20e3]*(?:\u200d[{_EMOJI_CHARS}][\ufe0e\ufe0f\u20e3]*)*"
_EMOJI_LEAD_RE = re.compile(rf"(?m)^([ \t]*)(?:{_EMOJI_SEQ}[ \t]*)+")
_EMOJI_INNER_RE = re.compile(rf"[ \t]*(?:{_EMOJI_SEQ})+")

_TERMINALS = ".!?…‼⁉❗❕。！？"
#: Separator between two sentences of one line: whitespace after a terminal mark (optionally
#: followed by one closing quote or bracket, and by emojis, which stay outside both sentences).
_SENT_END_RE = re.compile(rf"[{_TERMINALS}][\"'”’)\]]?((?:{_EMOJI_SEQ})*\s+)")
_ENDS_TERMINAL_RE = re.compile(rf"[{_TERMINALS}][\"'”’)\]]?$")
_EMOJI_OR_JOINER_RE = re.compile(f"[{_EMOJI_CHARS}\ufe0e\ufe0f\u20e3\u200d]")
_TOKEN_RE = re.compile(r"\w+")


@lru_cache(maxsize=16384)
def count_words(text: str) -> int:
    """Number of words (see :data:`WORD_RE`)."""
    return len(WORD_RE.findall(text))


def has_words(text: str) -> bool:
    return WORD_RE.search(text) is not None


@lru_cache(maxsize=8192)
def split_sentences(content: str) -> tuple[tuple[str, str], ...]:
    """Split one line's content into ``(sentence, separator)`` pairs; joining them gives it back."""
    out: list[tuple[str, str]] = []
    pos = 0
    for m in _SENT_END_RE.finditer(content):
        out.append((content[pos : m.start(1)], m.group(1)))
        pos = m.end()
    out.append((content[pos:], ""))
    return tuple(out)


@dataclass(frozen=True)
class Lexicon:
    """The ``\\w+`` runs of a text (apostrophes split them: "you're" gives "you" and "re")."""

    seq: tuple[str, ...]  # lower-cased, in order
    cased: frozenset[str]  # as written
    lower: frozenset[str]


@lru_cache(maxsize=4096)
def lexicon(text: str) -> Lexicon:
    found = _TOKEN_RE.findall(text)
    seq = tuple(t.lower() for t in found)
    return Lexicon(seq, frozenset(found), frozenset(seq))


def contains_phrase(text: str, index: dict[str, tuple[tuple[str, ...], ...]]) -> bool:
    """Whether a phrase of ``index`` (first token -> phrases as token tuples) occurs in ``text``.

    Tokens must follow each other with only non-word characters between them, case-insensitive;
    this replaces a long regex alternation, which Python's ``re`` scans slowly.
    """
    lex = lexicon(text)
    if not (lex.lower & index.keys()):
        return False
    seq = lex.seq
    for i, tok in enumerate(seq):
        for phrase in index.get(tok, ()):
            if seq[i : i + len(phrase)] == phrase:
                return True
    return False


def phrase_index(phrases: tuple[str, ...]) -> dict[str, tuple[tuple[str, ...], ...]]:
    out: dict[str, list[tuple[str, ...]]] = {}
    for phrase in phrases:
        toks = tuple(t.lower() for t in _TOKEN_RE.findall(phrase))
        out.setdefault(toks[0], []).append(toks)
    return {k: tuple(v) for k, v in out.items()}


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def apostrophe_pairs(text: str) -> list[tuple[str, str]]:
    """``(left, right)`` word runs around each apostrophe that has word characters on both sides."""
    pairs: list[tuple[str, str]] = []
    for mark in ("'", "’"):
        i = text.find(mark)
        while i != -1:
            j = i
            while j > 0 and _is_word_char(text[j - 1]):
                j -= 1
            k = i + 1
            while k < len(text) and _is_word_char(text[k]):
                k += 1
            if j < i and k > i + 1:
                pairs.append((text[j:i], text[i + 1 : k]))
            i = text.find(mark, i + 1)
    return pairs


def ends_with_terminal(text: str) -> bool:
    """Whether a sentence boundary would follow ``text`` if whitespace and more text came next."""
    return _ENDS_TERMINAL_RE.search(text) is not None


def clip_words(text: str, n: int) -> str:
    """``text`` cut after its ``n``-th word, with an ellipsis; unchanged if it has at most ``n``."""
    for i, m in enumerate(WORD_RE.finditer(text), start=1):
        if i == n:
            rest = text[m.end() :]
            return text if not WORD_RE.search(rest) else text[: m.end()] + "…"
    return text


def strip_emojis(text: str) -> str:
    """``text`` without emoji sequences (and the spaces that separated them)."""
    return _EMOJI_INNER_RE.sub("", _EMOJI_LEAD_RE.sub(r"\1", text))


def strip_trailing_emojis(text: str) -> str:
    """``text`` without trailing whitespace and emojis ("Why? 🎉 " -> "Why?")."""
    end = len(text)
    while end and (text[end - 1].isspace() or _EMOJI_OR_JOINER_RE.match(text[end - 1])):
        end -= 1
    return text[:end]


# --- line markers --------------------------------------------------------------------------------

_MARKER_RE = re.compile(
    r"(\s*)((?:[-*•+]|\d{1,3}[.)]|[QA]:|#{1,6}|(?i:tl;dr:)|(?i:key takeaway:))(?=\s|$))?(\s*)"
)
#: Markers that make a line a list item, a Q/A line or a heading (what "prose" lines lack).
STRUCTURE_KINDS = frozenset({"bullet", "number", "q", "a", "heading"})


@dataclass(frozen=True)
class LineParts:
    """A line cut into ``prefix`` (indent and marker), ``content`` and ``trail`` (trailing space)."""

    prefix: str
    content: str
    trail: str
    kind: str | None  # "bullet", "number", "q", "a", "heading", "tldr", "takeaway" or None
    marker: str

    @property
    def line(self) -> str:
        return self.prefix + self.content + self.trail


def _marker_kind(marker: str) -> str | None:
    if not marker:
        return None
    c = marker[0]
    if c in "-*•+":
        return "bullet"
    if c.isdigit():
        return "number"
    if c == "#":
        return "heading"
    if marker == "Q:":
        return "q"
    if marker == "A:":
        return "a"
    return "tldr" if marker.lower().startswith("tl") else "takeaway"


@lru_cache(maxsize=4096)
def line_parts(line: str) -> LineParts:
    """Cut a line into prefix, content and trailing whitespace."""
    m = _MARKER_RE.match(line)
    assert m is not None  # the pattern can match the empty string
    marker = m.group(2) or ""
    rest = line[m.end() :]
    content = rest.rstrip()
    return LineParts(m.group(0), content, rest[len(content) :], _marker_kind(marker), marker)


def strip_markers(content: str) -> str:
    """Remove list, Q/A and heading markers from the start of ``content`` (repeatedly)."""
    text = content.strip()
    while text:
        parts = line_parts(text)
        if parts.kind not in STRUCTURE_KINDS:
            break
        text = parts.content
    return text


# --- frame lines ---------------------------------------------------------------------------------

GREETING_RE = re.compile(
    r"(?i:hi|hello|hey|dear|greetings|good morning|good afternoon|good evening)"
    r"(?:[ \t]+[^\W\d_][\w.'’-]*){0,4}[ \t]*[,:]?"
)
CASUAL_GREETING_RE = re.compile(r"(?i:hi|hello|hey)\b")
FORMAL_GREETING_RE = re.compile(r"(?i:dear|greetings|good morning|good afternoon|good evening)\b")
CLOSING_RE = re.compile(
    r"(?i:best|best regards|best wishes|kind regards|warm regards|warmest regards|regards|sincerely"
    r"|sincerely yours|yours sincerely|yours truly|yours faithfully|cheers|all the best|take care"
    r"|warmly|respectfully|thanks|thanks again|thanks so much|thanks a lot|thank you|thank you so much"
    r"|thank you again|many thanks|with thanks|with gratitude|gratefully)[ \t]*[,.!]?"
)
THANKFUL_CLOSING_RE = re.compile(r"(?i:thanks|thank you|many thanks|with thanks|with gratitude|gratefully)\b")
_SIGNATURE_RE = re.compile(r"[\[(<]?[^\W\d_][\w.'’ \t-]{0,38}[\])>]?")
_SIGNATURE_BAD_END = tuple(".!?,:;…")

#: The lines editors add; each is recognized in the tail only when it is exactly this line.
GREETING_CASUAL_LINE = "Hi there,"
GREETING_FORMAL_LINE = "Dear all,"
CLOSING_LINE = "Best regards,"
THANKFUL_CLOSING_LINE = "Many thanks,"
CTA_LINE = "Please let me know what you think."
QUESTION_LINE = "What do you think?"
HEADING_LINE = "## Overview"
TLDR_PREFIX = "TL;DR: "
TAKEAWAY_PREFIX = "Key takeaway: "
QA_OPENING_LINE = "Q: What is this about?"
_CTA_LINES = frozenset({CTA_LINE.lower()})
_QUESTION_LINES = frozenset({QUESTION_LINE.lower()})


def is_greeting(line: str) -> bool:
    return GREETING_RE.fullmatch(line.strip()) is not None


def is_closing(line: str) -> bool:
    return CLOSING_RE.fullmatch(line.strip()) is not None


def _is_signature(line: str) -> bool:
    s = line.strip()
    return (
        _SIGNATURE_RE.fullmatch(s) is not None
        and not s.endswith(_SIGNATURE_BAD_END)
        and 1 <= count_words(s) <= 4
        and line_parts(s).kind is None
    )


@dataclass(frozen=True)
class Layout:
    """Where the frame lines and the body of a text are (indices into ``lines``)."""

    lines: tuple[str, ...]
    greeting: int | None
    tldr: int | None
    body_start: int
    body_end: int  # exclusive; also the index of the first tail line (or len(lines))
    takeaway: int | None
    cta: int | None
    question: int | None
    closing: tuple[int, int] | None  # first and last line of the sign-off (signature included)

    @property
    def body(self) -> tuple[str, ...]:
        return self.lines[self.body_start : self.body_end]

    @property
    def head_end(self) -> int:
        return self.body_start


@lru_cache(maxsize=4096)
def layout(text: str) -> Layout:
    """Parse ``text`` into head, body and tail (cached: checkers call it many times per text)."""
    lines = tuple(text.split("\n"))
    nonblank = [i for i, line in enumerate(lines) if line.strip()]
    lo = 0
    greeting = tldr = None
    body_start = 0
    if lo < len(nonblank) and is_greeting(lines[nonblank[lo]]):
        greeting = nonblank[lo]
        body_start = greeting + 1
        lo += 1
    if lo < len(nonblank) and line_parts(lines[nonblank[lo]]).kind == "tldr":
        tldr = nonblank[lo]
        body_start = tldr + 1
        lo += 1
    hi = len(nonblank) - 1
    body_end = len(lines)
    closing = question = cta = takeaway = None
    if hi >= lo:
        last = lines[nonblank[hi]]
        if is_closing(last):
            closing = (nonblank[hi], nonblank[hi])
            hi -= 1
        elif hi - 1 >= lo and _is_signature(last) and is_closing(lines[nonblank[hi - 1]]):
            closing = (nonblank[hi - 1], nonblank[hi])
            hi -= 2
        if closing is not None:
            body_end = closing[0]
    if hi >= lo and lines[nonblank[hi]].strip().lower() in _QUESTION_LINES:
        question = body_end = nonblank[hi]
        hi -= 1
    if hi >= lo and lines[nonblank[hi]].strip().lower() in _CTA_LINES:
        cta = body_end = nonblank[hi]
        hi -= 1
    if hi >= lo and line_parts(lines[nonblank[hi]]).kind == "takeaway":
        takeaway = body_end = nonblank[hi]
        hi -= 1
    return Layout(lines, greeting, tldr, body_start, body_end, takeaway, cta, question, closing)


@dataclass(frozen=True)
class BodyStats:
    words: int
    sentences: int  # sentences with words, outside headings


@lru_cache(maxsize=4096)
def body_stats(text: str) -> BodyStats:
    """Word and sentence counts of the body (cached: several checkers need them)."""
    words = sentences = 0
    for line in layout(text).body:
        parts = line_parts(line)
        if not parts.content:
            continue
        for piece, _ in split_sentences(parts.content):
            n = count_words(piece)
            words += n
            if n and parts.kind != "heading":
                sentences += 1
    return BodyStats(words, sentences)


def body_has_words(lay: Layout) -> bool:
    """False for a vacuous text (see the module docstring)."""
    return body_stats(join(lay.lines)).words > 0


@lru_cache(maxsize=4096)
def longest_sentence(text: str) -> int:
    """Words in the longest sentence of any line of ``text`` (frame lines included)."""
    best = 0
    for line in text.split("\n"):
        content = line_parts(line).content
        if content:
            for piece, _ in split_sentences(content):
                best = max(best, count_words(piece))
    return best


def join(lines: list[str] | tuple[str, ...]) -> str:
    return "\n".join(lines)


def insert_after_content(lines: list[str], pos: int, new_line: str) -> list[str]:
    """Insert ``new_line`` right after the last non-blank line before index ``pos``.

    Used for tail lines, so "Body\\n" + a sign-off gives "Body\\nBest regards,\\n", not a blank
    line before the sign-off.
    """
    at = pos
    for i in range(pos - 1, -1, -1):
        if lines[i].strip():
            at = i + 1
            break
    return lines[:at] + [new_line] + lines[at:]


def first_nonblank(lines: tuple[str, ...] | list[str], start: int = 0, end: int | None = None) -> int | None:
    end = len(lines) if end is None else end
    for i in range(start, end):
        if lines[i].strip():
            return i
    return None
