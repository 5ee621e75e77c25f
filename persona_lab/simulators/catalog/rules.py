"""Checkers and minimal editors, one pair per preference kind.

Every editor starts with ``if check(text): return text`` (so it is idempotent on passing text) and
otherwise makes the smallest change that makes its own checker pass while keeping the content:
it reformats, splits, cuts at sentence boundaries or adds one fixed neutral phrase or line, and it
leaves the regions other preferences own alone (see :mod:`.layout`). All functions are module-level
so preferences built from them (or from ``functools.partial`` of them) pickle.
"""

from __future__ import annotations

import bisect
import re

from persona_lab.simulators.catalog.layout import (
    CASUAL_GREETING_RE,
    CLOSING_LINE,
    CTA_LINE,
    EMOJI_RE,
    FORMAL_GREETING_RE,
    GREETING_CASUAL_LINE,
    GREETING_FORMAL_LINE,
    HEADING_LINE,
    QA_OPENING_LINE,
    QUESTION_LINE,
    STRUCTURE_KINDS,
    TAKEAWAY_PREFIX,
    THANKFUL_CLOSING_LINE,
    THANKFUL_CLOSING_RE,
    TLDR_PREFIX,
    WORD_RE,
    Layout,
    apostrophe_pairs,
    body_stats,
    clip_words,
    contains_phrase,
    count_words,
    ends_with_terminal,
    first_nonblank,
    has_words,
    insert_after_content,
    join,
    layout,
    lexicon,
    line_parts,
    longest_sentence,
    phrase_index,
    split_sentences,
    strip_emojis,
    strip_markers,
    strip_trailing_emojis,
)

# --- shared helpers ------------------------------------------------------------------------------


def _vacuous(text: str) -> bool:
    """No words in the body: presence preferences hold, there is nothing to edit."""
    return body_stats(text).words == 0


def _content_index(lay: Layout) -> int:
    """Index of the first body line that is not a heading and has words (else the first with words)."""
    fallback = None
    for i in range(lay.body_start, lay.body_end):
        parts = line_parts(lay.lines[i])
        if has_words(parts.content):
            if parts.kind != "heading":
                return i
            if fallback is None:
                fallback = i
    assert fallback is not None, "callers rule out vacuous texts first"
    return fallback


def _sentence_items(content: str) -> list[str]:
    """Sentences of ``content``, with word-less fragments (an emoji, "...") glued to a neighbour."""
    items: list[str] = []
    for piece, _sep in split_sentences(content):
        if not piece.strip():
            continue
        if items and (not has_words(piece) or not has_words(items[-1])):
            items[-1] = f"{items[-1]} {piece}"
        else:
            items.append(piece)
    return items


def _replace_body(lay: Layout, new_body: list[str]) -> str:
    return join([*lay.lines[: lay.body_start], *new_body, *lay.lines[lay.body_end :]])


#: First words that may be lower-cased when a phrase is put in front of them.
# fmt: off
_LOWERABLE = frozenset([
    "the", "a", "an", "this", "that", "these", "those", "it", "its", "in", "on", "at", "for", "with",
    "there", "here", "when", "while", "after", "before", "as", "if", "our", "my", "your", "their",
    "his", "her", "some", "many", "most", "all", "each", "every", "what", "how", "why", "who", "where",
    "today", "now", "then", "one", "two", "three", "researchers", "scientists", "people", "we", "you",
    "they", "he", "she", "to", "from", "by", "of", "and", "but", "so", "because", "although",
    "during", "over", "under",
])
# fmt: on


def _add_opening_phrase(text: str, phrase: str) -> str:
    """Put ``phrase`` (e.g. "As you will see, ") in front of the body's first sentence."""
    lay = layout(text)
    lines = list(lay.lines)
    i = _content_index(lay)
    parts = line_parts(lines[i])
    content = parts.content
    first = WORD_RE.match(content)
    if first and first.group(0).lower() in _LOWERABLE and content[0].isascii() and content[0].isupper():
        content = content[0].lower() + content[1:]
    lines[i] = parts.prefix + phrase + content + parts.trail
    return join(lines)


def _append_to_content(text: str, suffix: str) -> str:
    """Append ``suffix`` to the end of the body's first content line."""
    lay = layout(text)
    lines = list(lay.lines)
    i = _content_index(lay)
    parts = line_parts(lines[i])
    lines[i] = parts.prefix + parts.content + suffix + parts.trail
    return join(lines)


# --- format --------------------------------------------------------------------------------------


def _content_lines(lay: Layout) -> list:
    return [line_parts(line) for line in lay.body if line.strip()]


def check_bullets(text: str) -> bool:
    if _vacuous(text):
        return True
    lay = layout(text)
    return all(p.kind == "heading" or (p.kind == "bullet" and p.content) for p in _content_lines(lay))


def edit_bullets(text: str) -> str:
    if check_bullets(text):
        return text
    lay = layout(text)
    body: list[str] = []
    for line in lay.body:
        parts = line_parts(line)
        if not line.strip() or parts.kind == "heading" or (parts.kind == "bullet" and parts.content):
            body.append(line)
            continue
        body.extend(f"- {item}" for item in _sentence_items(strip_markers(line)))
    return _replace_body(lay, body)


_MAX_NUMBER = 999  # the marker regex reads at most three digits


def check_numbered(text: str) -> bool:
    if _vacuous(text):
        return True
    lay = layout(text)
    expected = 1
    for p in _content_lines(lay):
        if p.kind == "heading":
            continue
        if p.kind != "number" or not p.content or int(p.marker[:-1]) != expected:
            return False
        expected += 1
    return True


def edit_numbered(text: str) -> str:
    if check_numbered(text):
        return text
    lay = layout(text)
    body: list[str] = []  # kept lines, and placeholders where numbered items go
    items: list[str] = []
    slots: list[int] = []
    for line in lay.body:
        parts = line_parts(line)
        if not line.strip() or parts.kind == "heading":
            body.append(line)
            continue
        content = strip_markers(line)
        if not content:
            continue
        new = [content] if parts.kind in STRUCTURE_KINDS else _sentence_items(content)
        for item in new:
            if len(items) == _MAX_NUMBER:
                items[-1] = f"{items[-1]} {item}"
            else:
                slots.append(len(body))
                body.append("")
                items.append(item)
    for n, (slot, item) in enumerate(zip(slots, items, strict=True), start=1):
        body[slot] = f"{n}. {item}"
    return _replace_body(lay, body)


def _is_question(sentence: str) -> bool:
    return strip_trailing_emojis(sentence).rstrip("\"'”’)]").endswith(("?", "？", "⁉"))


def check_qa(text: str) -> bool:
    if _vacuous(text):
        return True
    lay = layout(text)
    first = True
    for p in _content_lines(lay):
        if p.kind == "heading":
            continue
        if p.kind not in ("q", "a") or not p.content or (first and p.kind != "q"):
            return False
        first = False
    return True


def edit_qa(text: str) -> str:
    """Questions become ``Q:`` lines, the sentences after them ``A:`` lines; a neutral opening
    question is added when the text does not start with one."""
    if check_qa(text):
        return text
    lay = layout(text)
    body: list[str] = []
    started = False
    for line in lay.body:
        parts = line_parts(line)
        if not line.strip() or parts.kind == "heading":
            body.append(line)
            continue
        if parts.kind in ("q", "a") and parts.content:
            new = [(parts.kind.upper(), line)]  # already a Q/A line: keep it as written
        else:
            new = []
            for item in _sentence_items(strip_markers(line)):
                kind = "Q" if _is_question(item) else "A"
                if new and new[-1][0] == kind:
                    new[-1] = (kind, f"{new[-1][1]} {item}")
                else:
                    new.append((kind, f"{kind}: {item}"))
        for kind, new_line in new:
            if not started and kind == "A":
                body.append(QA_OPENING_LINE)
            started = True
            body.append(new_line)
    return _replace_body(lay, body)


def check_single_paragraph(text: str) -> bool:
    if _vacuous(text):
        return True
    lay = layout(text)
    lines = _content_lines(lay)
    return len(lines) <= 1 and all(p.kind not in STRUCTURE_KINDS for p in lines)


def edit_single_paragraph(text: str) -> str:
    if check_single_paragraph(text):
        return text
    lay = layout(text)
    contents = [c for c in (strip_markers(line) for line in lay.body) if c]
    for i in range(len(contents) - 1):
        if not ends_with_terminal(contents[i]):
            # keep the lines' sentence breaks, but "0" + "." must not become a list marker
            contents[i] += "." if i or line_parts(contents[i] + ". x").kind is None else ";"
    body = list(lay.body)
    start = first_nonblank(body)
    end = len(body) - next(i for i, line in enumerate(reversed(body)) if line.strip())
    return _replace_body(lay, [*body[:start], " ".join(contents), *body[end:]])


def check_headings(text: str) -> bool:
    if _vacuous(text):
        return True
    lay = layout(text)
    first = _content_lines(lay)[0]
    return first.kind == "heading" and bool(first.content)


def edit_headings(text: str) -> str:
    if check_headings(text):
        return text
    lay = layout(text)
    lines = list(lay.lines)
    i = first_nonblank(lines, lay.body_start, lay.body_end)
    lines.insert(i, HEADING_LINE)
    return join(lines)


# --- length --------------------------------------------------------------------------------------


def check_max_words(text: str, *, n: int) -> bool:
    return body_stats(text).words <= n


def check_max_sentences(text: str, *, n: int) -> bool:
    return body_stats(text).sentences <= n


def _truncate(text: str, budget: int, by_sentences: bool) -> str:
    """Keep the body's opening up to ``budget`` words (or sentences), cutting at a sentence end.

    A sentence is cut mid-way (with "…") only when stopping at its start would keep less than half
    the word budget, so the first sentence always survives in some form.
    """
    lay = layout(text)
    body = list(lay.body)
    out: list[str] = []
    used = 0
    for line in body:
        if not line.strip():
            out.append(line)
            continue
        parts = line_parts(line)
        heading = parts.kind == "heading"
        kept: list[tuple[str, str]] = []
        stop = False
        for piece, sep in split_sentences(parts.content):
            words = count_words(piece)
            cost = (0 if heading or not words else 1) if by_sentences else words
            if used + cost <= budget:
                kept.append((piece, sep))
                used += cost
                continue
            if not by_sentences and used < budget // 2:
                kept.append((clip_words(piece, budget - used), ""))
                used = budget
            stop = True
            break
        if kept:
            content = "".join(p + s for p, s in kept[:-1]) + kept[-1][0]
            out.append(parts.prefix + content + parts.trail)
        if stop:
            break

    # no blank run, and no dangling heading once some text was kept before it
    def worded_text_before(k: int) -> bool:
        return any(line_parts(x).kind != "heading" and has_words(line_parts(x).content) for x in out[:k])

    while out and (
        not out[-1].strip() or (line_parts(out[-1]).kind == "heading" and worded_text_before(len(out) - 1))
    ):
        out.pop()
    n_blank = 0
    for line in reversed(body):
        if line.strip():
            break
        n_blank += 1
    return _replace_body(lay, [*out, *body[len(body) - n_blank :]])


def edit_max_words(text: str, *, n: int) -> str:
    if check_max_words(text, n=n):
        return text
    return _truncate(text, n, by_sentences=False)


def edit_max_sentences(text: str, *, n: int) -> str:
    if check_max_sentences(text, n=n):
        return text
    return _truncate(text, n, by_sentences=True)


# --- tone ----------------------------------------------------------------------------------------

CONTRACTION_RE = re.compile(
    r"\b(?:(?:i|you|we|they|he|she|it|that|there|here|what|who|where|how|let)['’](?:m|re|ve|ll|d|s)"
    r"|\w+n['’]t)\b",
    re.IGNORECASE,
)
_SLANG = {
    "gonna": "going to",
    "wanna": "want to",
    "gotta": "have to",
    "kinda": "kind of",
    "sorta": "sort of",
    "yeah": "yes",
    "yep": "yes",
    "nope": "no",
    "dunno": "do not know",
    "lemme": "let me",
    "gimme": "give me",
}
SLANG_RE = re.compile(r"\b(?:" + "|".join(_SLANG) + r")\b", re.IGNORECASE)
_STIFF = {
    "furthermore": "also",
    "moreover": "also",
    "therefore": "so",
    "thus": "so",
    "hence": "so",
    "nevertheless": "still",
    "nonetheless": "still",
    "whereby": "where",
    "utilize": "use",
    "utilise": "use",
}
STIFF_RE = re.compile(r"\b(?:" + "|".join(_STIFF) + r")\b", re.IGNORECASE)
_EXPAND_SUFFIX = {"m": " am", "re": " are", "ve": " have", "ll": " will", "d": " would", "s": " is"}
_EXPAND_NT = {"can": "cannot", "won": "will not", "shan": "shall not", "ain": "is not"}
_CONTRACT = {
    "do not": "don't",
    "does not": "doesn't",
    "did not": "didn't",
    "is not": "isn't",
    "are not": "aren't",
    "was not": "wasn't",
    "were not": "weren't",
    "have not": "haven't",
    "has not": "hasn't",
    "had not": "hadn't",
    "would not": "wouldn't",
    "should not": "shouldn't",
    "could not": "couldn't",
    "will not": "won't",
    "cannot": "can't",
    "can not": "can't",
    "it is": "it's",
    "that is": "that's",
    "there is": "there's",
    "here is": "here's",
    "what is": "what's",
    "i am": "I'm",
    "you are": "you're",
    "we are": "we're",
    "they are": "they're",
    "i will": "I'll",
    "you will": "you'll",
    "we will": "we'll",
    "they will": "they'll",
    "let us": "let's",
}
# "it is" etc. only before another word: "that is what it is." must keep its final "it is".
_CONTRACTIBLE_RE = re.compile(
    r"\b(?:(?:do|does|did|is|are|was|were|have|has|had|would|should|could|will|can)[ \t]+not|cannot"
    r"|(?:it|that|there|here|what)[ \t]+is(?=[ \t]+\w)|i[ \t]+am|(?:you|we|they)[ \t]+are(?=[ \t]+\w)"
    r"|(?:i|you|we|they)[ \t]+will|let[ \t]+us)\b",
    re.IGNORECASE,
)
_EXCL = "!！‼⁉❗❕"
EXCLAMATION_RE = re.compile(f"[{_EXCL}]")
_EXCL_RUN_RE = re.compile(f"[{_EXCL}]+")
_SENTENCE_PERIOD_RE = re.compile(r"(?<=[^\W\d_][^\W\d_])\.(?=\s|$)")
_POLITE_WORDS = frozenset({"please", "thanks", "kindly", "appreciate", "appreciated", "grateful"})
_THANK_YOU_RE = re.compile(r"\bthank\s+you\b", re.IGNORECASE)


def _same_case(word: str, replacement: str) -> str:
    if word.isupper() and len(word) > 1:
        return replacement.upper()
    if word[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


# the non-ASCII letters that ``re.IGNORECASE`` matches to ASCII ones ("ſ" to "s", Kelvin "K" to "k")
_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


def _fold(text: str) -> str:
    """Lower-case the way ``re.IGNORECASE`` compares, for looking matches up in tables."""
    return text.translate(_FOLD).lower()


def _expand(match: re.Match[str]) -> str:
    word = match.group(0)
    stem, _, suffix = word.replace("’", "'").rpartition("'")
    if _fold(suffix) == "t":  # n't: stem ends with the "n"
        if _fold(stem) in _EXPAND_NT:
            return _same_case(stem, _EXPAND_NT[_fold(stem)])
        return stem[:-1] + " not"
    if _fold(stem) == "let" and _fold(suffix) == "s":
        return stem + " us"
    return stem + _EXPAND_SUFFIX[_fold(suffix)]


def _replace_from(table: dict[str, str]):  # a re.sub replacement, never stored on a Preference
    def repl(match: re.Match[str]) -> str:
        return _same_case(match.group(0), table[_fold(match.group(0))])

    return repl


_deslang = _replace_from(_SLANG)
_destiff = _replace_from(_STIFF)


def _contract(match: re.Match[str]) -> str:
    phrase = match.group(0)
    short = _CONTRACT[re.sub(r"[ \t]+", " ", _fold(phrase))]
    return short if short.startswith("I'") else _same_case(phrase, short)


# fmt: off
_CONTRACTION_LEFT = frozenset([
    "i", "you", "we", "they", "he", "she", "it", "that", "there", "here", "what", "who", "where", "how",
    "let",
])
# fmt: on
_CONTRACTION_RIGHT = frozenset({"m", "re", "ve", "ll", "d", "s"})


def _has_contraction(text: str) -> bool:
    """Same answer as ``CONTRACTION_RE.search`` (a test checks it), without scanning every word."""
    pairs = apostrophe_pairs(text)
    if not pairs:
        return False
    if not all(left.isascii() and right.isascii() for left, right in pairs):
        return CONTRACTION_RE.search(text) is not None  # Unicode case folding: let re decide
    for left, right in pairs:
        lo, ro = left.lower(), right.lower()
        if (lo in _CONTRACTION_LEFT and ro in _CONTRACTION_RIGHT) or (
            ro == "t" and len(lo) >= 2 and lo[-1] == "n"
        ):
            return True
    return False


def _has_slang(text: str) -> bool:
    return bool(lexicon(text).lower & _SLANG.keys()) and SLANG_RE.search(text) is not None


def _has_stiff(text: str) -> bool:
    return bool(lexicon(text).lower & _STIFF.keys()) and STIFF_RE.search(text) is not None


def check_formal(text: str) -> bool:
    return not _has_contraction(text) and not _has_slang(text)


def edit_formal(text: str) -> str:
    """Expand every contraction and replace slang ("gonna" -> "going to")."""
    for _ in range(64):  # each pass removes every match; more than one is needed only in odd texts
        if check_formal(text):
            break
        text = CONTRACTION_RE.sub(_expand, SLANG_RE.sub(_deslang, text))
    return text


def check_casual(text: str) -> bool:
    if _vacuous(text):
        return True
    return _has_contraction(text) and not _has_stiff(text)


def edit_casual(text: str) -> str:
    """Swap stiff connectives for plain ones and contract what can be contracted."""
    if check_casual(text):
        return text
    text = _CONTRACTIBLE_RE.sub(_contract, STIFF_RE.sub(_destiff, text))
    if not check_casual(text):
        text = _add_opening_phrase(text, "Here's the thing: ")
    return text


def check_enthusiastic(text: str) -> bool:
    if _vacuous(text):
        return True
    return EXCLAMATION_RE.search(text) is not None


def edit_enthusiastic(text: str) -> str:
    """Turn the body's first sentence-ending period into an exclamation mark (or add one)."""
    if check_enthusiastic(text):
        return text
    lay = layout(text)
    lines = list(lay.lines)
    for i in range(lay.body_start, lay.body_end):
        parts = line_parts(lines[i])
        if parts.kind == "heading":
            continue
        m = _SENTENCE_PERIOD_RE.search(parts.content)
        if m:
            content = parts.content[: m.start()] + "!" + parts.content[m.end() :]
            lines[i] = parts.prefix + content + parts.trail
            return join(lines)
    return _append_to_content(text, "!")


def check_no_exclamation(text: str) -> bool:
    return EXCLAMATION_RE.search(text) is None


def _calm(match: re.Match[str]) -> str:
    """ "!" -> ".", "?!" and "!?" -> "?", "⁉" -> "?"."""
    text, start, end = match.string, match.start(), match.end()
    next_to_question = (start > 0 and text[start - 1] in "?？") or (end < len(text) and text[end] in "?？")
    if next_to_question:
        return ""
    return "?" if "⁉" in match.group(0) else "."


def edit_no_exclamation(text: str) -> str:
    if check_no_exclamation(text):
        return text
    return _EXCL_RUN_RE.sub(_calm, text)


def check_polite(text: str) -> bool:
    if _vacuous(text):
        return True
    lower = lexicon(text).lower
    return bool(lower & _POLITE_WORDS) or ("thank" in lower and _THANK_YOU_RE.search(text) is not None)


def edit_polite(text: str) -> str:
    if check_polite(text):
        return text
    return _add_opening_phrase(text, "Please note that ")


# --- voice ---------------------------------------------------------------------------------------

SECOND_PERSON_WORDS = frozenset({"you", "your", "yours", "yourself", "yourselves"})  # any case
FIRST_PLURAL_WORDS = frozenset(
    {"we", "We", "WE", "our", "Our", "OUR", "ours", "Ours", "ourselves", "Ourselves", "us", "Us"}
)  # as written: "US" is a country
FIRST_SINGULAR_WORDS = frozenset({"I", "me", "Me", "my", "My", "MY", "mine", "Mine", "myself", "Myself"})


def check_words(text: str, *, words: frozenset[str], any_case: bool) -> bool:
    """One of ``words`` occurs as a whole word (vacuously true for a text without body words)."""
    if _vacuous(text):
        return True
    return bool((lexicon(text).lower if any_case else lexicon(text).cased) & words)


def edit_opening_phrase(text: str, *, words: frozenset[str], any_case: bool, phrase: str) -> str:
    """Put ``phrase`` (which contains one of ``words``) in front of the first sentence when missing."""
    if check_words(text, words=words, any_case=any_case):
        return text
    return _add_opening_phrase(text, phrase)


# --- markers -------------------------------------------------------------------------------------

EMOJI_MARK = "✨"


def check_emojis(text: str) -> bool:
    return _vacuous(text) or EMOJI_RE.search(text) is not None


def edit_emojis(text: str) -> str:
    if check_emojis(text):
        return text
    return _append_to_content(text, f" {EMOJI_MARK}")


def check_no_emojis(text: str) -> bool:
    return EMOJI_RE.search(text) is None


def edit_no_emojis(text: str) -> str:
    if check_no_emojis(text):
        return text
    return strip_emojis(text)


def check_short_sentences(text: str, *, n: int) -> bool:
    return longest_sentence(text) <= n


_SOFT_BREAK_RE = re.compile(r"[,;:]\s+|\s+[—–-]\s+")
_PUNCT_RUN_RE = re.compile(r"[^\w\s]*")


def _capitalize(text: str) -> str:
    return text[0].upper() + text[1:] if text and "a" <= text[0] <= "z" else text


# words that can open a clause, so a sentence reads best when cut just before them
# fmt: off
_CUT_BEFORE = {
    **dict.fromkeys(["because", "which", "while", "although", "though", "whereas", "where", "when",
                     "since", "until", "unless", "but", "yet", "so"], 3),
    **dict.fromkeys(["and", "or", "after", "before", "with", "as", "if", "then", "for"], 2),
}
# fmt: on
_SOFT_BREAK_WEIGHT = 6


def _cut(rest: str, n: int) -> tuple[str, str]:
    """Cut a sentence of more than ``n`` words in two, the first part having at most ``n`` words.

    Cuts at a comma, semicolon, colon or dash, else before a clause word ("because", "and"...),
    else between any two words, preferring cuts near an even split of the stretch up to the next
    comma so that no part is a one-word scrap.
    """
    words = list(WORD_RE.finditer(rest))
    ends = [w.end() for w in words]
    m = len(words)
    breaks = []
    for b in _SOFT_BREAK_RE.finditer(rest):
        j = bisect.bisect_right(ends, b.start())
        if 1 <= j < m:
            breaks.append((j, b.start(), b.end()))
    stretch = next((j for j, _, _ in breaks if j > n), m)
    target = -(-stretch // -(-stretch // n))  # ceil(stretch / ceil(stretch / n))
    best: tuple[int, int, int, int] | None = None  # (score, j, first_end, tail_start)
    for j, start, end in breaks:
        if j <= n:
            cand = (_SOFT_BREAK_WEIGHT - abs(j - target), j, start, end)
            best = cand if best is None or cand[:2] > best[:2] else best
    for j in range(1, min(n, m - 1) + 1):
        weight = _CUT_BEFORE.get(words[j].group(0).lower(), 0)
        end = ends[j - 1]
        after = _PUNCT_RUN_RE.match(rest, end).end()
        first_end = after if after < len(rest) and rest[after].isspace() else end
        cand = (weight - abs(j - target), j, first_end, first_end)
        best = cand if best is None or cand[:2] > best[:2] else best
    assert best is not None  # m > n >= 1, so j = 1 is always a candidate
    first, tail = rest[: best[2]], rest[best[3] :]
    first = first.rstrip().rstrip(",;:—–-").rstrip()
    if not ends_with_terminal(first):
        first += "."
    return first, _capitalize(tail.lstrip())


def _split_long(sentence: str, n: int) -> str:
    """Split a sentence of more than ``n`` words into sentences of at most ``n`` words."""
    chunks: list[str] = []
    rest = sentence
    while count_words(rest) > n:
        first, rest = _cut(rest, n)
        chunks.append(first)
    chunks.append(rest)
    return " ".join(chunks)


def edit_short_sentences(text: str, *, n: int) -> str:
    if check_short_sentences(text, n=n):
        return text
    lines = text.split("\n")
    for i, line in enumerate(lines):
        parts = line_parts(line)
        pieces = split_sentences(parts.content)
        if any(count_words(p) > n for p, _ in pieces):
            content = "".join((_split_long(p, n) if count_words(p) > n else p) + s for p, s in pieces)
            lines[i] = parts.prefix + content + parts.trail
    return join(lines)


def check_questions(text: str) -> bool:
    if _vacuous(text):
        return True
    return "?" in text or "？" in text


def edit_questions(text: str) -> str:
    """Add a reader question line above the sign-off (or at the end)."""
    if check_questions(text):
        return text
    lay = layout(text)
    pos = lay.closing[0] if lay.closing else len(lay.lines)
    return join(insert_after_content(list(lay.lines), pos, QUESTION_LINE))


# --- structure -----------------------------------------------------------------------------------


def check_ends_with_question(text: str) -> bool:
    if _vacuous(text):
        return True
    lay = layout(text)
    last = next(line for line in reversed(lay.lines) if line.strip())
    return strip_trailing_emojis(last).endswith(("?", "？"))


def edit_ends_with_question(text: str) -> str:
    if check_ends_with_question(text):
        return text
    lines = list(layout(text).lines)
    return join(insert_after_content(lines, len(lines), QUESTION_LINE))


def _body_sentence(lay: Layout, last: bool) -> str:
    """The body's first (or last) sentence with words, preferring non-heading lines."""
    found: list[str] = []
    for heading_ok in (False, True):
        for line in lay.body:
            parts = line_parts(line)
            if (parts.kind == "heading") != heading_ok:
                continue
            found.extend(p for p, _ in split_sentences(parts.content) if has_words(p))
        if found:
            break
    return found[-1] if last else found[0]


def _frame_has_words(lay: Layout, index: int | None) -> bool:
    return index is not None and has_words(line_parts(lay.lines[index]).content)


def check_tldr(text: str) -> bool:
    lay = layout(text)
    return _vacuous(text) or _frame_has_words(lay, lay.tldr)


def edit_tldr(text: str) -> str:
    """Open with ``TL;DR:`` and the body's first sentence (at most ten words)."""
    if check_tldr(text):
        return text
    lay = layout(text)
    lines = list(lay.lines)
    line = TLDR_PREFIX + clip_words(_body_sentence(lay, last=False), 10)
    if lay.tldr is not None:
        lines[lay.tldr] = line
    elif lay.greeting is not None:
        lines.insert(lay.greeting + 1, line)
    else:
        lines.insert(first_nonblank(lines) or 0, line)
    return join(lines)


def check_takeaway(text: str) -> bool:
    lay = layout(text)
    return _vacuous(text) or _frame_has_words(lay, lay.takeaway)


def edit_takeaway(text: str) -> str:
    """Close the body with ``Key takeaway:`` and its last sentence (at most twelve words)."""
    if check_takeaway(text):
        return text
    lay = layout(text)
    lines = list(lay.lines)
    line = TAKEAWAY_PREFIX + clip_words(_body_sentence(lay, last=True), 12)
    if lay.takeaway is not None:
        lines[lay.takeaway] = line
        return join(lines)
    pos = lay.body_end
    return join(insert_after_content(lines, pos, line))


CTA_PHRASES = (
    "let me know", "let us know", "get back to me", "get back to us", "reach out", "get in touch",
    "contact me", "contact us", "reply by", "reply to", "reply with", "feel free to", "don't hesitate",
    "dont hesitate", "do not hesitate", "sign up", "join us", "register now", "register today",
    "register here", "check out", "check it out", "check this out", "check them out", "take a look",
    "give it a try", "give it a read", "give it a look", "click", "book a", "book your", "schedule a",
    "share your thoughts", "share your feedback",
    *(f"please {verb}" for verb in [
        "reply", "respond", "share", "confirm", "review", "send", "get", "reach", "contact", "join",
        "sign", "register", "consider", "take", "read", "check", "visit", "try", "book", "schedule",
    ]),
)  # fmt: skip
_CTA_INDEX = phrase_index(CTA_PHRASES)


def check_call_to_action(text: str) -> bool:
    if _vacuous(text):
        return True
    return contains_phrase(text, _CTA_INDEX)


def edit_call_to_action(text: str) -> str:
    """Add a call-to-action line after the body (above any reader question and sign-off)."""
    if check_call_to_action(text):
        return text
    lay = layout(text)
    if lay.question is not None:
        pos = lay.question
    elif lay.closing is not None:
        pos = lay.closing[0]
    else:
        pos = len(lay.lines)
    return join(insert_after_content(list(lay.lines), pos, CTA_LINE))


# --- email ---------------------------------------------------------------------------------------


def check_greeting(text: str, *, formal: bool) -> bool:
    if _vacuous(text):
        return True
    lay = layout(text)
    if lay.greeting is None:
        return False
    pattern = FORMAL_GREETING_RE if formal else CASUAL_GREETING_RE
    return pattern.match(lay.lines[lay.greeting].strip()) is not None


def edit_greeting(text: str, *, formal: bool) -> str:
    if check_greeting(text, formal=formal):
        return text
    lay = layout(text)
    lines = list(lay.lines)
    line = GREETING_FORMAL_LINE if formal else GREETING_CASUAL_LINE
    if lay.greeting is not None:
        lines[lay.greeting] = line
    else:
        lines.insert(first_nonblank(lines) or 0, line)
    return join(lines)


def check_no_greeting(text: str) -> bool:
    return layout(text).greeting is None


def edit_no_greeting(text: str) -> str:
    while not check_no_greeting(text):
        lay = layout(text)
        text = join(lay.lines[: lay.greeting] + lay.lines[lay.greeting + 1 :])
    return text


def check_closing(text: str, *, thankful: bool) -> bool:
    if _vacuous(text):
        return True
    lay = layout(text)
    if lay.closing is None:
        return False
    return not thankful or THANKFUL_CLOSING_RE.match(lay.lines[lay.closing[0]].strip()) is not None


def edit_closing(text: str, *, thankful: bool) -> str:
    if check_closing(text, thankful=thankful):
        return text
    lay = layout(text)
    lines = list(lay.lines)
    line = THANKFUL_CLOSING_LINE if thankful else CLOSING_LINE
    if lay.closing is not None:
        lines[lay.closing[0]] = line
        return join(lines)
    return join(insert_after_content(lines, len(lines), line))


def check_no_closing(text: str) -> bool:
    return layout(text).closing is None


def edit_no_closing(text: str) -> str:
    while not check_no_closing(text):
        lay = layout(text)
        first, last = lay.closing
        text = join(lay.lines[:first] + lay.lines[last + 1 :])
    return text
