"""The audit trail of LLM-simulated users: every model call, what the parser made of it, and why.

A run with an LLM user is only as trustworthy as the user's parsing: a small model that echoes the
prompt's ``<<<``/``>>>`` delimiters, answers "No" and then returns the draft unchanged, writes only
marker lines, or loops until the token cap can turn into numbers that look fine. Each LLM user
therefore records one :class:`UserCall` per model call (the raw text, a hash of the request, the
parsed value, the fallback it used, and flags) and the env puts them in ``info["user_calls"]``.
:mod:`persona_lab.eval.fidelity` sums the flags into the ``user/...`` counters of every summary.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from persona_lab.core.messages import Transcript
from persona_lab.core.seeding import stable_hash
from persona_lab.models.base import ChatModel, ChatRequest, GenerationParams, Usage

# Flags a call can carry; the summary counts each as ``user/<flag>``. ``fallbacks`` is set for
# every call whose ``fallback`` is not None.
PARSE_FAILURES = "parse_failures"
FALLBACKS = "fallbacks"
ECHOED_PROMPT = "echoed_prompt"
DEGENERATE = "degenerate_repetition"
UNCHANGED_AFTER_NO = "unchanged_after_no"
UNCLEAR_VERDICTS = "unclear_verdicts"
FILLER = "filler_replies"
FLAGS = (PARSE_FAILURES, FALLBACKS, ECHOED_PROMPT, DEGENERATE, UNCHANGED_AFTER_NO, UNCLEAR_VERDICTS, FILLER)

INFO_KEY = "user_calls"  # the list of call dicts in a step's info
RAW_CHARS = 4000  # raw text kept per call (the request hash finds the full text in the response cache)

_DELIM = re.compile(r"^\s*(<<<|>>>)\s*$|<<<|>>>", re.MULTILINE)


def has_delimiters(text: str) -> bool:
    """Whether ``text`` contains the ``<<<``/``>>>`` delimiters our prompts put around quoted text."""
    return "<<<" in text or ">>>" in text


def strip_delimiters(text: str) -> str:
    """``text`` without echoed ``<<<``/``>>>`` delimiters (and the blank edges they leave)."""
    return _DELIM.sub("", text).strip()


def _segments_and_words(text: str) -> tuple[list[str], list[str]]:
    """The sentences/lines of ``text`` with two words or more (lower-cased, whitespace normalized) and
    all its words (lower-cased), in one pass. A segment ends at a line break or after a word ending
    in ``.``, ``!`` or ``?``: what splitting the text at sentence punctuation followed by whitespace
    and at line breaks gave, without a look-behind regex over every character (run summaries audit
    every action)."""
    segments: list[str] = []
    words: list[str] = []
    for line in text.split("\n"):
        current: list[str] = []
        for word in line.split():
            low = word.lower()
            current.append(low)
            words.append(low)
            if word[-1] in ".!?":
                if len(current) >= 2:
                    segments.append(" ".join(current))
                current = []
        if len(current) >= 2:
            segments.append(" ".join(current))
    return segments, words


def is_degenerate(text: str, *, min_segments: int = 4, min_unique_ratio: float = 0.5, ngram: int = 4) -> bool:
    """Whether ``text`` loops: the same sentence/line again and again, or (for text without sentence
    breaks) mostly repeated word 4-grams. Short texts never count."""
    segs, words = _segments_and_words(text)
    if len(segs) >= min_segments and len(set(segs)) / len(segs) < min_unique_ratio:
        return True
    if len(words) < 6 * ngram:
        return False
    grams = set(zip(*(words[i:] for i in range(ngram))))  # every run of ngram consecutive words
    return len(grams) / (len(words) - ngram + 1) < min_unique_ratio * 0.6


@dataclass
class UserCall:
    """One model call of a simulated user (mutable while the user parses it, then frozen as a dict).

    Attributes:
        step: which question it answered ("verdict", "revision", "decision", ...).
        key: hash of the request (messages + decoding), to find it in the response cache.
        raw: the model's text (first :data:`RAW_CHARS` characters).
        parsed: what the parser made of it (JSON-able).
        fallback: the rule that replaced an unusable answer, or ``None``.
        flags: the :data:`FLAGS` this call raised.
    """

    step: str
    key: str
    raw: str
    parsed: Any = None
    fallback: str | None = None
    flags: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    text: str | None = None  # what parsers read (``raw`` unless echoed prompt lines were dropped)

    def __post_init__(self) -> None:
        if self.text is None:
            self.text = self.raw

    def flag(self, *names: str) -> None:
        for name in names:
            if name not in FLAGS:
                raise ValueError(f"unknown flag {name!r}; use one of {FLAGS}")
            if name not in self.flags:
                self.flags.append(name)

    def fall_back(self, rule: str) -> None:
        """Record that ``rule`` replaced the model's answer (counted as a fallback)."""
        self.fallback = rule if self.fallback is None else f"{self.fallback}; {rule}"
        self.flag(FALLBACKS)

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "key": self.key, "raw": self.raw[:RAW_CHARS], "parsed": self.parsed,
                "fallback": self.fallback, "flags": list(self.flags)}


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


_QUOTED = re.compile(r"<<<.*?>>>", re.DOTALL)


def echoes(text: str, source: str, *, min_words: int = 8) -> bool:
    """Whether ``text`` repeats ``source`` verbatim: a run of ``min_words`` of its words (all of it
    when shorter)."""
    a, b = _norm(text), _norm(source).split()
    if not a or not b:
        return False
    n = min(min_words, len(b))
    return any(" ".join(b[i:i + n]) in a for i in range(len(b) - n + 1))


def strip_echo(text: str, prompt: str) -> str:
    """``text`` without what it copied from ``prompt``: every prompt line of 3+ words found in it
    verbatim, then any remaining line that appears in the prompt."""
    for line in sorted({ln.strip() for ln in prompt.splitlines() if len(ln.split()) >= 3}, key=len, reverse=True):
        text = text.replace(line, "")
    seen = _norm(prompt)
    return "\n".join(ln for ln in text.splitlines() if ln.strip() and not (len(ln.split()) >= 3 and _norm(ln) in seen))


def ask(model: ChatModel, messages: Transcript, params: GenerationParams, step: str, *,
        drop_echo: bool = False) -> UserCall:
    """One audited call: generate; flag echoed delimiters, copied instructions (the prompt's words
    outside its ``<<<``/``>>>`` quotes) and degenerate repetition. With ``drop_echo`` the lines copied
    from the prompt are left out of :attr:`UserCall.text`, the text parsers read."""
    request = ChatRequest.of(messages, params)
    (completion,) = model.generate([request])
    raw = completion.text or ""
    prompt = request.messages[-1].content if request.messages else ""
    call = UserCall(step=step, key=stable_hash(request.key_payload(), length=16), raw=raw, usage=completion.usage)
    if has_delimiters(raw) or echoes(raw, _QUOTED.sub(" ", prompt)):
        call.flag(ECHOED_PROMPT)
    if is_degenerate(raw):
        call.flag(DEGENERATE)
    if drop_echo and ECHOED_PROMPT in call.flags:
        call.text = strip_echo(raw, prompt)
    return call


def calls_info(calls: Sequence[UserCall]) -> list[dict[str, Any]]:
    """The ``info["user_calls"]`` value of one step."""
    return [c.to_dict() for c in calls]


def audit_fields(calls: Sequence[UserCall], **extra: Any) -> dict[str, Any]:
    """The audit fields a step's ``info`` carries: ``user_calls`` (always, empty for scripted users)
    plus ``user_<name>`` for each ``extra`` value that is not None (e.g. ``user_verdict``)."""
    out: dict[str, Any] = {INFO_KEY: calls_info(calls)}
    out.update({f"user_{k}": v for k, v in extra.items() if v is not None})
    return out


def count_flags(calls: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """``{flag: count}`` over call dicts (every flag present, zeros included)."""
    out = dict.fromkeys(FLAGS, 0)
    for c in calls:
        for f in c.get("flags", ()):
            if f in out:
                out[f] += 1
    return out
