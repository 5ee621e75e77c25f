"""The verifiable preference catalog: the heart of the scripted world.

Each :class:`Preference` is a plain-English statement with a deterministic **checker** (text ->
bool) and a **minimal editor** (text -> text that passes the checker and keeps the content). The
scripted user applies the editors of the preferences a draft violates, scripted agent skills apply
the editors of the preferences they :func:`recognize` in a description, and metrics use the
checkers. Everything is regex-based and fast (no models), and every checker and editor is a
module-level function or a ``functools.partial`` of one, so preferences pickle.

How texts are read (greeting, TL;DR, body, call to action, reader question, sign-off) is defined
once in :mod:`persona_lab.simulators.catalog.layout`; length and format preferences apply to the
body only, so "Best regards," never counts against a 50-word limit. A text whose body has no word
characters (``""``, whitespace, punctuation, emojis only) is *vacuous*: every preference asking for
something to be present holds for it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType

import numpy as np

from persona_lab.core.errors import ConfigError, UnknownNameError
from persona_lab.simulators.catalog import rules as R

__all__ = [
    "CATALOG",
    "FAMILIES",
    "Preference",
    "apply_preferences",
    "canonical_order",
    "compatible",
    "describe",
    "get_preference",
    "recognize",
    "sample_compatible",
    "satisfied",
]


@dataclass(frozen=True)
class Preference:
    """One verifiable preference.

    Attributes:
        id: dotted id, ``<family>.<name>`` (e.g. ``"format.bullets"``).
        family: the group it belongs to; :func:`sample_compatible` draws at most one per family.
        statement: the preference in plain English (what an LLM user or agent is told).
        check: deterministic checker.
        edit: minimal editor; its output passes ``check`` and it returns passing text unchanged.
        conflicts: ids it cannot coexist with (symmetric across the catalog).
        salience: how noticeable a violation is (0-1); users with limited effort fix these first.
        keywords: lower-case phrases by which a free-text description names it.
    """

    id: str
    family: str
    statement: str
    check: Callable[[str], bool]
    edit: Callable[[str], str]
    conflicts: frozenset[str]
    salience: float
    keywords: tuple[str, ...]


# --- the catalog ---------------------------------------------------------------------------------
# Listed in canonical order: the order in which editors compose. Structure first (format), then
# editors that add words (tone and voice phrases), then frame lines, then sentence splitting, then
# length cuts (which see everything added before them), then marks that add no words.

SHORT_SENTENCE_WORDS = 12

_SPECS: list[tuple[str, str, Callable[[str], bool], Callable[[str], str], float, tuple[str, ...]]] = [
    (
        "format.single_paragraph",
        "Write everything as one single paragraph of flowing prose.",
        R.check_single_paragraph,
        R.edit_single_paragraph,
        0.8,
        (
            "single paragraph",
            "one paragraph",
            "a paragraph",
            "flowing prose",
            "paragraph form",
            "prose",
            "one block of text",
        ),
    ),
    (
        "format.bullets",
        "Use bullet points, one idea per bullet.",
        R.check_bullets,
        R.edit_bullets,
        0.95,
        (
            "bullet",
            "bullets",
            "bullet point",
            "bullet points",
            "bulleted",
            "bullet list",
            "bulleted list",
            "structured",
        ),
    ),
    (
        "format.numbered",
        "Present the content as numbered steps.",
        R.check_numbered,
        R.edit_numbered,
        0.9,
        ("numbered", "numbered steps", "numbered list", "numbered points", "step by step", "enumerated"),
    ),
    (
        "format.qa",
        "Write it in question-and-answer style, with Q: and A: lines.",
        R.check_qa,
        R.edit_qa,
        0.9,
        (
            "question and answer",
            "questions and answers",
            "question answering",
            "q&a",
            "q and a",
            "faq",
            "qa style",
        ),
    ),
    (
        "format.headings",
        "Organize the text under markdown headings.",
        R.check_headings,
        R.edit_headings,
        0.85,
        ("heading", "headings", "headers", "subheadings", "section titles", "markdown headings", "sections"),
    ),
    (
        "tone.formal",
        "Use a formal, professional tone without contractions.",
        R.check_formal,
        R.edit_formal,
        0.55,
        (
            "formal",
            "formal tone",
            "professional",
            "professional tone",
            "without contractions",
            "no contractions",
            "avoid contractions",
            "businesslike",
        ),
    ),
    (
        "tone.casual",
        "Keep the tone casual and conversational, with contractions.",
        R.check_casual,
        R.edit_casual,
        0.5,
        (
            "casual",
            "casual tone",
            "informal",
            "conversational",
            "contractions",
            "use contractions",
            "chatty",
            "relaxed",
            "laid back",
            "friendly tone",
        ),
    ),
    (
        "tone.polite",
        "Be polite and respectful: say please or thank you.",
        R.check_polite,
        R.edit_polite,
        0.45,
        ("polite", "politely", "respectful", "courteous", "please", "say please", "gracious"),
    ),
    (
        "voice.first_person",
        "Write in the first person singular, using I and my.",
        partial(R.check_words, words=R.FIRST_SINGULAR_WORDS, any_case=False),
        partial(R.edit_opening_phrase, words=R.FIRST_SINGULAR_WORDS, any_case=False, phrase="In my view, "),
        0.4,
        (
            "first person singular",
            "first person",
            "i and my",
            "personal voice",
            "personal perspective",
            "own perspective",
        ),
    ),
    (
        "voice.we",
        "Write in the first person plural, using we and our.",
        partial(R.check_words, words=R.FIRST_PLURAL_WORDS, any_case=False),
        partial(R.edit_opening_phrase, words=R.FIRST_PLURAL_WORDS, any_case=False, phrase="As we know, "),
        0.4,
        ("first person plural", "plural first person", "we and our", "inclusive we", "use we"),
    ),
    (
        "voice.second_person",
        "Address the reader directly as you.",
        partial(R.check_words, words=R.SECOND_PERSON_WORDS, any_case=True),
        partial(
            R.edit_opening_phrase, words=R.SECOND_PERSON_WORDS, any_case=True, phrase="As you will see, "
        ),
        0.45,
        (
            "second person",
            "address the reader",
            "speak to the reader",
            "directly to the reader",
            "personalized",
            "personalised",
            "immersive",
        ),
    ),
    (
        "structure.tldr",
        "Start with a one-line TL;DR summary.",
        R.check_tldr,
        R.edit_tldr,
        0.85,
        ("tl;dr", "tldr", "tl dr", "one line summary", "summary line", "summary first"),
    ),
    (
        "structure.takeaway",
        "End the body with a Key takeaway line.",
        R.check_takeaway,
        R.edit_takeaway,
        0.7,
        (
            "key takeaway",
            "takeaway",
            "main takeaway",
            "bottom line",
            "moral of the story",
            "key point",
            "reflection",
            "reflective",
        ),
    ),
    (
        "email.call_to_action",
        "Finish with a clear call to action.",
        R.check_call_to_action,
        R.edit_call_to_action,
        0.75,
        (
            "call to action",
            "calls to action",
            "cta",
            "next step",
            "next steps",
            "action item",
            "ask for a reply",
        ),
    ),
    (
        "markers.questions",
        "Ask the reader at least one question.",
        R.check_questions,
        R.edit_questions,
        0.6,
        (
            "ask the reader",
            "questions to the reader",
            "question to the reader",
            "interactive",
            "inquisitive",
            "rhetorical question",
            "rhetorical questions",
            "engage the reader",
            "engaging",
            "ask questions",
        ),
    ),
    (
        "structure.ends_with_question",
        "Close with a question for the reader.",
        R.check_ends_with_question,
        R.edit_ends_with_question,
        0.65,
        (
            "close with a question",
            "end with a question",
            "ends with a question",
            "ending with a question",
            "closing question",
            "final question",
            "foreshadowing",
            "cliffhanger",
            "teaser",
        ),
    ),
    (
        "email.no_greeting",
        "Skip the greeting and start directly with the content.",
        R.check_no_greeting,
        R.edit_no_greeting,
        0.7,
        (
            "no greeting",
            "no greetings",
            "without a greeting",
            "without greeting",
            "skip the greeting",
            "no salutation",
        ),
    ),
    (
        "email.greeting_casual",
        "Open with a friendly greeting such as Hi there.",
        partial(R.check_greeting, formal=False),
        partial(R.edit_greeting, formal=False),
        0.85,
        (
            "friendly greeting",
            "casual greeting",
            "informal greeting",
            "hi there",
            "greeting",
            "greet",
            "salutation",
        ),
    ),
    (
        "email.greeting_formal",
        "Open with a formal greeting such as Dear all.",
        partial(R.check_greeting, formal=True),
        partial(R.edit_greeting, formal=True),
        0.85,
        ("formal greeting", "professional greeting", "respectful greeting", "dear", "formal salutation"),
    ),
    (
        "email.no_closing",
        "No closing or sign-off at the end.",
        R.check_no_closing,
        R.edit_no_closing,
        0.7,
        (
            "no closing",
            "without a closing",
            "without closing",
            "no sign off",
            "without a sign off",
            "skip the sign off",
            "no valediction",
        ),
    ),
    (
        "email.closing",
        "End with a sign-off such as Best regards.",
        partial(R.check_closing, thankful=False),
        partial(R.edit_closing, thankful=False),
        0.8,
        ("closing", "closing line", "sign off", "signoff", "best regards", "valediction"),
    ),
    (
        "email.thankful_closing",
        "End with a thankful sign-off such as Many thanks.",
        partial(R.check_closing, thankful=True),
        partial(R.edit_closing, thankful=True),
        0.8,
        (
            "thankful closing",
            "thankful sign off",
            "thank you closing",
            "close with thanks",
            "end with thanks",
            "many thanks",
            "grateful closing",
            "thankful",
        ),
    ),
    (
        "markers.short_sentences",
        f"Use short sentences of at most {SHORT_SENTENCE_WORDS} words each.",
        partial(R.check_short_sentences, n=SHORT_SENTENCE_WORDS),
        partial(R.edit_short_sentences, n=SHORT_SENTENCE_WORDS),
        0.55,
        (
            "short sentences",
            "simple sentences",
            "simple english",
            "simple language",
            "plain language",
            "plain english",
            "young children",
            "kids",
            "easy to read",
            "child friendly",
            "for children",
        ),
    ),
    *[
        (
            f"length.max_words_{n}",
            f"Keep the main text to at most {n} words.",
            partial(R.check_max_words, n=n),
            partial(R.edit_max_words, n=n),
            salience,
            keywords,
        )
        for n, salience, keywords in (
            (200, 0.5, ("200 words", "two hundred words")),
            (120, 0.6, ("120 words",)),
            (80, 0.7, ("80 words", "eighty words")),
            (50, 0.8, ("50 words", "fifty words", "tweet", "tweets", "tweet style", "tweet length")),
        )
    ],
    (
        "length.max_sentences_5",
        "Keep it to at most five sentences.",
        partial(R.check_max_sentences, n=5),
        partial(R.edit_max_sentences, n=5),
        0.6,
        ("five sentences", "5 sentences", "concise"),
    ),
    (
        "length.brief",
        "Be brief: at most three sentences.",
        partial(R.check_max_sentences, n=3),
        partial(R.edit_max_sentences, n=3),
        0.75,
        (
            "brief",
            "briefly",
            "three sentences",
            "3 sentences",
            "succinct",
            "short and sweet",
            "terse",
            "to the point",
            "straight to the point",
            "straight to the points",
        ),
    ),
    (
        "tone.enthusiastic",
        "Sound enthusiastic, with at least one exclamation mark.",
        R.check_enthusiastic,
        R.edit_enthusiastic,
        0.6,
        (
            "enthusiastic",
            "enthusiasm",
            "excited",
            "excitement",
            "exclamation",
            "exclamation mark",
            "exclamation marks",
            "exclamation points",
            "energetic",
            "upbeat",
            "playful",
            "positive",
            "lively",
            "cheerful",
        ),
    ),
    (
        "markers.emojis",
        "Include a few emojis.",
        R.check_emojis,
        R.edit_emojis,
        0.8,
        ("emoji", "emojis", "with emojis", "use emojis", "emoticons"),
    ),
    (
        "tone.no_exclamation",
        "Keep it calm, with no exclamation marks.",
        R.check_no_exclamation,
        R.edit_no_exclamation,
        0.5,
        (
            "no exclamation",
            "no exclamation marks",
            "no exclamation points",
            "without exclamation marks",
            "avoid exclamation marks",
            "calm",
            "measured",
            "restrained",
            "understated",
        ),
    ),
    (
        "markers.no_emojis",
        "Do not use any emojis.",
        R.check_no_emojis,
        R.edit_no_emojis,
        0.75,
        ("no emoji", "no emojis", "without emojis", "emoji free", "avoid emojis", "no emoticons"),
    ),
]

#: Pairs that cannot hold together (made symmetric below).
_CONFLICTS: list[tuple[str, str]] = [
    # one body layout at a time; headings need sections, which a single paragraph has not
    ("format.bullets", "format.numbered"),
    ("format.bullets", "format.qa"),
    ("format.bullets", "format.single_paragraph"),
    ("format.numbered", "format.qa"),
    ("format.numbered", "format.single_paragraph"),
    ("format.qa", "format.single_paragraph"),
    ("format.headings", "format.single_paragraph"),
    ("tone.formal", "tone.casual"),
    ("tone.enthusiastic", "tone.no_exclamation"),
    ("markers.emojis", "markers.no_emojis"),
    ("email.greeting_casual", "email.greeting_formal"),
    ("email.greeting_casual", "email.no_greeting"),
    ("email.greeting_formal", "email.no_greeting"),
    ("email.closing", "email.no_closing"),
    ("email.thankful_closing", "email.no_closing"),
    # the last line cannot be both a question and a sign-off
    ("structure.ends_with_question", "email.closing"),
    ("structure.ends_with_question", "email.thankful_closing"),
]

#: What a negated mention ("no emojis", "not formal") of a preference means, for :func:`recognize`.
_NEGATION_OF: dict[str, str] = {
    "markers.emojis": "markers.no_emojis",
    "markers.no_emojis": "markers.emojis",
    "tone.enthusiastic": "tone.no_exclamation",
    "tone.no_exclamation": "tone.enthusiastic",
    "tone.formal": "tone.casual",
    "tone.casual": "tone.formal",
    "email.closing": "email.no_closing",
    "email.thankful_closing": "email.no_closing",
    "email.no_closing": "email.closing",
    "email.greeting_casual": "email.no_greeting",
    "email.greeting_formal": "email.no_greeting",
    "email.no_greeting": "email.greeting_casual",
}


def _build() -> dict[str, Preference]:
    conflicts: dict[str, set[str]] = {spec[0]: set() for spec in _SPECS}
    for a, b in _CONFLICTS:
        conflicts[a].add(b)
        conflicts[b].add(a)
    return {
        pid: Preference(
            id=pid,
            family=pid.split(".", 1)[0],
            statement=statement,
            check=check,
            edit=edit,
            conflicts=frozenset(conflicts[pid]),
            salience=salience,
            keywords=keywords,
        )
        for pid, statement, check, edit, salience, keywords in _SPECS
    }


CATALOG: Mapping[str, Preference] = MappingProxyType(_build())
#: Families in first-appearance order.
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(p.family for p in CATALOG.values()))
_RANK = {pid: i for i, pid in enumerate(CATALOG)}
_BY_FAMILY = {fam: tuple(p.id for p in CATALOG.values() if p.family == fam) for fam in FAMILIES}


# --- lookups and set operations ------------------------------------------------------------------


def get_preference(pid: str) -> Preference:
    """The preference with id ``pid``; an unknown id raises with a "did you mean"."""
    try:
        return CATALOG[pid]
    except KeyError:
        close = difflib.get_close_matches(str(pid), list(CATALOG), n=1, cutoff=0.5)
        msg = f"unknown preference {pid!r}" + (f"; did you mean {close[0]!r}?" if close else "")
        raise UnknownNameError(msg, hint="`persona-lab ls preferences` lists the catalog ids") from None


def _ids(ids: Iterable[str]) -> list[str]:
    if isinstance(ids, str):
        raise ConfigError(
            f"expected a collection of preference ids, got the string {ids!r}",
            hint=f"wrap it in a list: [{ids!r}]",
        )
    return [get_preference(pid).id for pid in ids]


def canonical_order(ids: Iterable[str]) -> list[str]:
    """The ids, deduplicated, in the order in which their editors compose."""
    return sorted(set(_ids(ids)), key=_RANK.__getitem__)


def compatible(ids: Iterable[str]) -> bool:
    """Whether no two of ``ids`` conflict."""
    chosen = canonical_order(ids)
    return not any(other in CATALOG[pid].conflicts for pid in chosen for other in chosen)


def satisfied(text: str, ids: Iterable[str]) -> dict[str, bool]:
    """Checker result per id (canonical order)."""
    return {pid: bool(CATALOG[pid].check(text)) for pid in canonical_order(ids)}


MAX_ROUNDS = 8


def apply_preferences(text: str, ids: Iterable[str], *, limit: int | None = None) -> str:
    """Apply the editors of the violated preferences among ``ids`` in canonical order.

    With ``limit``, only the ``limit`` most salient violated preferences are fixed (ties broken by
    canonical order), which models a user with limited effort: a draft violating three preferences
    needs three calls with ``limit=1``. Editors are re-run until the chosen preferences all hold (one
    edit can undo another, e.g. a word cut removing the only "you"); for a compatible set this reaches
    a text satisfying all of them. Incompatible sets are applied best effort (at most
    ``MAX_ROUNDS`` passes).
    """
    chosen = [CATALOG[pid] for pid in canonical_order(ids)]
    if limit is not None:
        if limit < 0:
            raise ConfigError(f"limit must be >= 0 or None, got {limit}", hint="use None for no limit")
        violated = [p for p in chosen if not p.check(text)]
        top = sorted(violated, key=lambda p: (-p.salience, _RANK[p.id]))[:limit]
        chosen = sorted(top, key=lambda p: _RANK[p.id])
    for _ in range(MAX_ROUNDS):
        pending = [p for p in chosen if not p.check(text)]
        if not pending:
            break
        for pref in pending:
            text = pref.edit(text)
    return text


def sample_compatible(
    rng: np.random.Generator,
    k: int,
    *,
    families: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
) -> list[str]:
    """``k`` mutually compatible ids, at most one per family, drawn with ``rng`` (canonical order)."""
    fams = list(FAMILIES) if families is None else list(dict.fromkeys(families))
    for fam in fams:
        if fam not in _BY_FAMILY:
            close = difflib.get_close_matches(str(fam), FAMILIES, n=1, cutoff=0.5)
            raise UnknownNameError(
                f"unknown preference family {fam!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
                hint=f"families: {', '.join(FAMILIES)}",
            )
    excluded = set(_ids(exclude))
    if not 0 <= k <= len(fams):
        raise ConfigError(
            f"cannot draw {k} preferences from {len(fams)} families (at most one per family)",
            hint=f"use 0 <= k <= {len(fams)} or allow more families",
        )
    chosen: list[str] = []
    for fi in rng.permutation(len(fams)):
        if len(chosen) == k:
            break
        candidates = [
            pid
            for pid in _BY_FAMILY[fams[int(fi)]]
            if pid not in excluded and not any(pid in CATALOG[c].conflicts for c in chosen)
        ]
        if candidates:
            chosen.append(candidates[int(rng.integers(len(candidates)))])
    if len(chosen) < k:
        raise ConfigError(
            f"only {len(chosen)} compatible preferences could be drawn, {k} asked for",
            hint="ask for fewer, exclude fewer ids, or allow more families",
        )
    return canonical_order(chosen)


# --- descriptions --------------------------------------------------------------------------------


def describe(ids: Iterable[str]) -> str:
    """The statements of ``ids`` joined into one description (canonical order)."""
    return " ".join(CATALOG[pid].statement for pid in canonical_order(ids))


def _normalize(text: str) -> str:
    text = text.lower().replace("’", "'").replace("‘", "'")
    text = re.sub(r"(?<=\w)-(?=\w)", " ", text)
    return re.sub(r"\s+", " ", text)


def _keyword_owners() -> dict[str, str]:
    owners: dict[str, str] = {}
    for pref in CATALOG.values():
        for kw in pref.keywords:
            if owners.setdefault(_normalize(kw), pref.id) != pref.id:
                raise AssertionError(f"keyword {kw!r} is claimed by two preferences")
    return owners


_KEYWORD_OWNER = _keyword_owners()
_KEYWORD_RE = re.compile(
    r"(?<!\w)(?:"
    + "|".join(re.escape(kw) for kw in sorted(_KEYWORD_OWNER, key=lambda k: (-len(k), k)))
    + r")(?!\w)"
)
# fmt: off
_NEGATION_WORDS = frozenset([
    "no", "not", "without", "avoid", "avoiding", "never", "don't", "dont", "doesn't", "shouldn't",
    "mustn't", "won't", "skip", "omit", "drop", "nor", "neither", "zero",
])
# fmt: on
_CLAUSE_BREAK_RE = re.compile(r"[.,;:!?()\n]")
_NEGATION_WINDOW = 5
_COORDINATION = frozenset({"or", "nor", "and"})


def _mentions(text: str) -> list[tuple[str, str, bool]]:
    """``(keyword, id, negated)`` for each keyword match of a normalized text.

    A negation word counts for the first keyword after it in its clause ("no emojis please" does
    not negate "please") and carries over a coordination ("no closing or sign-off").
    """
    out: list[tuple[str, str, bool]] = []
    prev_end, prev_negated = 0, False
    for m in _KEYWORD_RE.finditer(text):
        kw = m.group(0)
        segment = text[prev_end : m.start()]
        pieces = _CLAUSE_BREAK_RE.split(segment)
        same_clause = bool(out) and len(pieces) == 1
        words = pieces[-1].split()
        if kw.split()[0] in _NEGATION_WORDS:
            negated = True
        elif same_clause and words and set(words) <= _COORDINATION:
            negated = prev_negated
        else:
            negated = any(w in _NEGATION_WORDS for w in words[-_NEGATION_WINDOW:])
        out.append((kw, _KEYWORD_OWNER[kw], negated))
        prev_end, prev_negated = m.end(), negated
    return out


def recognize(description: str) -> list[str]:
    """Ids whose keywords a free-text description mentions, in canonical order.

    Matching is case-insensitive on whole words, longest keyword first, so "no emojis" is read as
    one phrase; a keyword preceded in its clause by a negation ("do not use any emojis") means the
    opposite preference where there is one and nothing otherwise. Of two conflicting mentions the
    one with the longer keyword (then the earlier) wins.
    """
    text = _normalize(description)
    found: list[tuple[int, int, str]] = []  # (-keyword length, position, id)
    for pos, (kw, owner, negated) in enumerate(_mentions(text)):
        pid = owner
        if negated and kw.split()[0] not in _NEGATION_WORDS:
            pid = _NEGATION_OF.get(owner)
        if pid is not None:
            found.append((-len(kw), pos, pid))
    accepted: list[str] = []
    for _, _, pid in sorted(found):
        if pid not in accepted and not any(pid in CATALOG[a].conflicts for a in accepted):
            accepted.append(pid)
    return canonical_order(accepted)
