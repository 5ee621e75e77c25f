"""Judging generations: the LLM judge's four yes/no checks, a programmatic judge, and their agreement.

The LLM judge asks four questions about (preference, question, response), each in its own prompt
with a JSON answer:

1. acknowledgement: does the response mention a user preference? (and quote it)
2. violation: does the response go against the stated preference?
3. hallucination: is the preference it quoted different from the real one? (asked only when 1 = yes)
4. helpfulness: does it actually answer the question?

:func:`combine_checks` turns the answers into the paper's error types and **accuracy = not violated
and helpful**. An answer that cannot be parsed makes the item *unjudged*: it is reported and left
out of accuracy, never counted as a success (the original code counted it as accurate).

The programmatic judge scores items that carry ``verifiable`` checks (forbidden and required
keywords, catalog preferences) with no model at all; :func:`agreement` compares the two.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from persona_lab.models.base import ChatModel, ChatRequest, GenerationParams
from persona_lab.simulators.prefeval.data import Verifiable

CHECKS: tuple[str, ...] = ("acknowledgement", "violation", "hallucination", "helpfulness")

ERROR_TYPES: tuple[str, ...] = (
    "unhelpful",
    "preference_unaware_violation",
    "hallucination_violation",
    "inconsistency_violation",
)
"""The paper's error types. A violation is *unaware* when the response never acknowledged a
preference, a *hallucination* when it acknowledged a wrong one, an *inconsistency* when it
acknowledged the right one and still went against it."""

PROGRAMMATIC_ERROR_TYPES: tuple[str, ...] = ("unhelpful", "violation")

JudgeKind = Literal["llm", "programmatic", "none"]
Status = Literal["judged", "unjudged", "no_judge"]


# --------------------------------------------------------------------------- prompts

_JSON_RULE = 'Reply with one JSON object and nothing else: {"reasoning": "<one sentence>", "answer": "yes" or "no"}'


def acknowledgement_prompt(question: str, response: str) -> str:
    """Check 1: does the response bring up any preference of the user's? Asks for a quote."""
    return (
        "You are checking an AI assistant's answer to a user.\n\n"
        f"User's question:\n{question}\n\nAssistant's answer:\n{response}\n\n"
        "Does the answer explicitly mention or take into account a personal preference, restriction or "
        "circumstance of the user (for example 'since you are vegetarian' or 'given your fear of heights')? "
        "Generic advice that anyone would get does not count.\n"
        'Reply with one JSON object and nothing else: {"reasoning": "<one sentence>", "answer": "yes" or "no", '
        '"preference": "<the user preference the answer mentions, quoted from the answer, or empty>"}'
    )


def violation_prompt(preference: str, question: str, response: str) -> str:
    """Check 2: does the response go against the stated preference?"""
    return (
        "A user told an AI assistant about a preference earlier in a conversation, and later asked a question.\n\n"
        f"The user's preference:\n{preference}\n\nThe user's question:\n{question}\n\n"
        f"The assistant's answer:\n{response}\n\n"
        "Does the answer recommend, suggest or rely on anything that goes against the user's preference? "
        "Answer yes if any part of it conflicts with the preference, no if all of it respects the preference.\n"
        + _JSON_RULE
    )


def hallucination_prompt(preference: str, quoted: str) -> str:
    """Check 3: is the preference the response attributed to the user different from the real one?"""
    return (
        "An AI assistant restated what it believed was a preference of its user.\n\n"
        f"The user's actual preference:\n{preference}\n\nWhat the assistant attributed to the user:\n{quoted}\n\n"
        "Is the attributed preference made up, i.e. not the user's actual preference and not a fair "
        "paraphrase or consequence of it? Answer yes if it is made up or contradicts the actual preference, "
        "no if it matches it.\n" + _JSON_RULE
    )


def helpfulness_prompt(question: str, response: str) -> str:
    """Check 4: does the response give a real answer rather than a refusal or a deflection?"""
    return (
        "You are checking whether an AI assistant helped its user.\n\n"
        f"User's question:\n{question}\n\nAssistant's answer:\n{response}\n\n"
        "Does the answer give the user useful, relevant content for the question (recommendations, "
        "information or steps)? Answer no if it refuses, only asks questions back, or stays too vague to use.\n"
        + _JSON_RULE
    )


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class YesNo:
    """A parsed judge answer: ``answer`` is None when the text held no clear yes or no."""

    answer: bool | None
    quote: str = ""
    raw: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"answer": self.answer, "quote": self.quote, "raw": self.raw}


_YES = {"yes", "y", "true"}
_NO = {"no", "n", "false"}


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        v = value.strip().strip(".!\"' ").lower()
        if v in _YES:
            return True
        if v in _NO:
            return False
    return None


def _json_objects(text: str) -> list[dict[str, Any]]:
    dec = json.JSONDecoder()
    out = []
    for m in re.finditer(r"\{", text):
        try:
            obj, _ = dec.raw_decode(text, m.start())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


_ANSWER_FIELD = re.compile(r"\banswer\b\W{0,4}(yes|no|true|false)\b", re.IGNORECASE)
_LEADING = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)
_QUOTE_FIELD = re.compile(r"\bpreference\b\W{0,4}(.+)", re.IGNORECASE)


def parse_yes_no(text: str) -> YesNo:
    """Parse a judge reply: a JSON ``{"answer": ...}`` first, then ``answer: yes``, then a leading
    Yes/No. Conflicting answers, or none, give ``answer=None`` (unparsed)."""
    raw = text if isinstance(text, str) else ""
    for obj in _json_objects(raw):
        lowered = {str(k).lower(): v for k, v in obj.items()}
        if "answer" in lowered:
            ans = _as_bool(lowered["answer"])
            if ans is not None:
                quote = lowered.get("preference", lowered.get("quote", ""))
                return YesNo(ans, quote.strip() if isinstance(quote, str) else "", raw)
    found = {m.group(1).lower() in ("yes", "true") for m in _ANSWER_FIELD.finditer(raw)}
    if len(found) == 1:
        ans = found.pop()
    elif not found and (m := _LEADING.match(raw)):
        ans = m.group(1).lower() == "yes"
    else:
        return YesNo(None, "", raw)
    q = _QUOTE_FIELD.search(raw)
    quote = q.group(1).strip().strip("\"'") if q else ""
    return YesNo(ans, quote, raw)


# --------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class GenerationVerdict:
    """How one generation was judged.

    ``status`` is ``judged`` (``followed`` is True/False), ``unjudged`` (a judge answer could not be
    parsed or the judge failed: ``followed`` is None) or ``no_judge`` (no judge applies to the item).
    """

    judge: JudgeKind
    status: Status
    followed: bool | None = None
    acknowledged: bool | None = None
    violated: bool | None = None
    hallucinated: bool | None = None
    helpful: bool | None = None
    errors: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "judge": self.judge,
            "status": self.status,
            "followed": self.followed,
            "acknowledged": self.acknowledged,
            "violated": self.violated,
            "hallucinated": self.hallucinated,
            "helpful": self.helpful,
            "errors": list(self.errors),
            "detail": self.detail,
        }


NO_JUDGE = GenerationVerdict(judge="none", status="no_judge")


def combine_checks(
    acknowledged: bool | None, violated: bool | None, hallucinated: bool | None, helpful: bool | None
) -> tuple[Status, bool | None, tuple[str, ...]]:
    """The paper's formula: ``followed = not violated and helpful``, plus the error types.

    ``None`` means the judge's answer could not be parsed. Acknowledgement, violation and helpfulness
    are always needed; hallucination only when a preference was acknowledged (otherwise there is no
    quoted preference to check, and its value is ignored). A missing needed answer -> ``unjudged``.

    Returns:
        (status, followed, errors)
    """
    if acknowledged is None or violated is None or helpful is None or (acknowledged and hallucinated is None):
        return "unjudged", None, ()
    errors: list[str] = []
    if not helpful:
        errors.append("unhelpful")
    if violated:
        if not acknowledged:
            errors.append("preference_unaware_violation")
        elif hallucinated:
            errors.append("hallucination_violation")
        else:
            errors.append("inconsistency_violation")
    return "judged", (not violated) and helpful, tuple(errors)


class LLMJudge:
    """The four-check judge backed by any :class:`ChatModel` (batched: the three independent checks
    go in one ``generate`` call, the hallucination check in a second when needed)."""

    name = "llm"

    def __init__(self, model: ChatModel, params: GenerationParams | None = None) -> None:
        self.model = model
        self.params = params or GenerationParams(max_new_tokens=200)

    @property
    def spec(self) -> str:
        return self.model.spec

    def judge(self, preference: str, question: str, response: str) -> GenerationVerdict:
        """Judge one response to ``question`` against ``preference``."""
        prompts = [
            acknowledgement_prompt(question, response),
            violation_prompt(preference, question, response),
            helpfulness_prompt(question, response),
        ]
        outs = self.model.generate([ChatRequest.of(p, self.params) for p in prompts])
        ack, vio, hlp = (parse_yes_no(c.text) for c in outs)
        hal = YesNo(None)
        if ack.answer:
            quoted = ack.quote or f"(no quote given; the assistant's answer was:)\n{response}"
            (c,) = self.model.generate([ChatRequest.of(hallucination_prompt(preference, quoted), self.params)])
            hal = parse_yes_no(c.text)
        status, followed, errors = combine_checks(ack.answer, vio.answer, hal.answer, hlp.answer)
        detail = {"acknowledgement": ack.to_dict(), "violation": vio.to_dict(), "helpfulness": hlp.to_dict()}
        if ack.answer:
            detail["hallucination"] = hal.to_dict()
        return GenerationVerdict(
            judge="llm",
            status=status,
            followed=followed,
            acknowledged=ack.answer,
            violated=vio.answer,
            hallucinated=hal.answer if ack.answer else None,
            helpful=hlp.answer,
            errors=errors,
            detail=detail,
        )


# --------------------------------------------------------------------------- programmatic judge

_NEGATORS = {
    "no", "not", "without", "avoid", "avoids", "avoiding", "avoided", "skip", "skipping", "excluding",
    "exclude", "never", "don't", "dont", "doesn't", "free", "instead", "minus", "zero", "non",
}
_REFUSAL = re.compile(
    r"^\W*(i'?m sorry|i am sorry|sorry,|i can(?:no|')t (?:help|assist|provide)|i cannot (?:help|assist|provide)|"
    r"i'?m (?:not able|unable) to|as an ai)",
    re.IGNORECASE,
)


def _term_pattern(term: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w-])" + re.escape(term.strip()) + r"(?![\w])", re.IGNORECASE)


def _mentions(text: str, term: str, *, negation_aware: bool) -> bool:
    """Whether ``term`` occurs in ``text``; with ``negation_aware``, occurrences that are negated
    ("no peanuts", "without gluten", "gluten-free") do not count."""
    for m in _term_pattern(term).finditer(text):
        if not negation_aware:
            return True
        after = text[m.end() : m.end() + 6].lower()
        if re.match(r"[- ]?free\b", after):
            continue
        before = re.findall(r"[\w']+", text[max(0, m.start() - 40) : m.start()].lower())[-3:]
        if any(w in _NEGATORS for w in before):
            continue
        return True
    return False


def _segments(text: str) -> list[str]:
    """Sentences and lines of at least three words, normalized (list markers, case, punctuation)."""
    out = []
    for seg in re.split(r"[.!?\n]+", text):
        words = re.findall(r"[a-z0-9']+", seg.lower())
        if len(words) >= 3:
            out.append(" ".join(words))
    return out


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def repeated_ngram_ratio(text: str, n: int = 4) -> float:
    """Share of the word ``n``-grams of ``text`` that repeat an earlier one (0 = none repeats).

    Phrase-level, so a loop inside one long sentence ("a tale of the unknown, and a tale of the
    unknown, and ...") counts as much as the same line printed again and again."""
    words = _words(text)
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def is_degenerate(
    text: str,
    *,
    min_segments: int = 4,
    min_unique_ratio: float = 0.5,
    max_ngram_repeat: float = 0.3,
    max_tail_repeat: float = 0.5,
    tail_words: int = 60,
) -> bool:
    """Whether ``text`` mostly repeats itself, the usual failure of small models on long prompts:
    the same sentence or list line again and again, a phrase looping (``max_ngram_repeat`` of the
    4-grams are repeats), or a looping tail after a sane start (``max_tail_repeat`` of the last
    ``tail_words`` words' 4-grams)."""
    segs = _segments(text)
    if len(segs) >= min_segments and len(set(segs)) / len(segs) < min_unique_ratio:
        return True
    words = _words(text)
    if len(words) >= 24 and repeated_ngram_ratio(text) >= max_ngram_repeat:
        return True
    tail = words[-tail_words:]
    return len(words) >= tail_words and repeated_ngram_ratio(" ".join(tail)) >= max_tail_repeat


_STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her
    here hers him his how i if in into is it its itself just like me more most my myself no nor not now of off
    on once only or other our ours out over own same she should so some such than that the their theirs them
    then there these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself any anything something recommend recommendations
    suggest suggestions ideas idea good best some get give tips help need want looking look planning plan""".split()  # noqa: SIM905
)


def _stem(word: str) -> str:
    for suf in ("ing", "ed", "es", "s", "ly", "e"):
        if len(word) > len(suf) + 2 and word.endswith(suf):
            word = word[: -len(suf)]
            break
    return word[:5]


def content_stems(text: str) -> set[str]:
    """Crude stems of the content words of ``text`` (stopwords and words under 3 letters dropped)."""
    return {_stem(w) for w in _words(text) if len(w) >= 3 and w not in _STOPWORDS and not w.isdigit()}


def ignores_question(question: str, response: str, *, min_question_words: int = 2) -> bool:
    """Whether ``response`` shares no content word with ``question`` (an answer to some other
    question, or filler chatter). Questions with fewer than ``min_question_words`` content words
    are never flagged, since there is too little to compare."""
    q = content_stems(question)
    return len(q) >= min_question_words and not (q & content_stems(response))


def catalog_checker() -> Any | None:
    """``persona_lab.simulators.catalog.satisfied`` when that module exists (imported lazily)."""
    try:
        from persona_lab.simulators import catalog  # type: ignore[attr-defined]
    except ImportError:
        return None
    return getattr(catalog, "satisfied", None)


def _catalog_ok(result: Any) -> bool:
    if isinstance(result, bool):
        return result
    if isinstance(result, dict):
        return all(bool(v) for v in result.values())
    if isinstance(result, (list, tuple)):
        return all(bool(v) for v in result)
    return bool(result)


class ProgrammaticJudge:
    """Judge-free scoring for items with ``verifiable`` checks.

    violated = a ``forbid`` term is mentioned (negated mentions such as "no peanuts" or
    "gluten-free" do not count), or none of ``require_any`` is, or a named catalog preference is
    not satisfied; helpful = at least ``min_words`` words, no refusal opening, not degenerate
    (a repeated sentence, a looping phrase or a looping tail: :func:`is_degenerate`) and, when the
    question is given, sharing at least one content word with it (:func:`ignores_question`).
    Keyword checks still cannot tell a good answer from a poor on-topic one that avoids the
    forbidden words: pair them with an LLM judge where it matters.
    Acknowledgement and hallucination are not judged (None).
    """

    name = "programmatic"

    def __init__(self, min_words: int = 15) -> None:
        self.min_words = min_words

    def applies(self, verifiable: Verifiable | None) -> bool:
        if verifiable is None:
            return False
        if verifiable.forbid or verifiable.require_any:
            return True
        return bool(verifiable.catalog) and catalog_checker() is not None

    def judge(self, verifiable: Verifiable | None, response: str, question: str | None = None) -> GenerationVerdict:
        """Score ``response``; with ``question``, an answer sharing no content word with it is unhelpful."""
        if not self.applies(verifiable):
            return NO_JUDGE
        assert verifiable is not None
        detail: dict[str, Any] = {}
        hits = [t for t in verifiable.forbid if _mentions(response, t, negation_aware=True)]
        detail["forbidden_mentioned"] = hits
        violated = bool(hits)
        if verifiable.require_any:
            present = [t for t in verifiable.require_any if _mentions(response, t, negation_aware=False)]
            detail["required_mentioned"] = present
            violated = violated or not present
        if verifiable.catalog:
            check = catalog_checker()
            if check is None:
                detail["catalog"] = "not checked: persona_lab.simulators.catalog is not available"
            else:
                ok = _catalog_ok(check(response, list(verifiable.catalog)))
                detail["catalog_satisfied"] = ok
                violated = violated or not ok
        words = len(response.split())
        degenerate = is_degenerate(response)
        off_topic = question is not None and ignores_question(question, response)
        helpful = words >= self.min_words and not _REFUSAL.match(response) and not degenerate and not off_topic
        detail["words"] = words
        detail["degenerate"] = degenerate
        detail["repeated_4gram_ratio"] = round(repeated_ngram_ratio(response), 3)
        detail["ignores_question"] = off_topic
        errors = tuple(e for e, bad in (("unhelpful", not helpful), ("violation", violated)) if bad)
        return GenerationVerdict(
            judge="programmatic",
            status="judged",
            followed=(not violated) and helpful,
            violated=violated,
            helpful=helpful,
            errors=errors,
            detail=detail,
        )
