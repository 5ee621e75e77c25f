"""Simulated users who edit the assistant's draft (PRELUDE's feedback).

One protocol, two forms: an LLM user following the paper's protocol (judge the draft against the
preference; if it does not suit, revise it given only the draft and the preference), and a scripted
user that applies the catalog editors of the preferences the draft violates. Both take their state
(the draft, the latent preference, a random generator) in and return the feedback; neither loads or
calls anything in its constructor.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from persona_lab.models.base import ChatModel, GenerationParams, Usage
from persona_lab.simulators import catalog
from persona_lab.simulators.audit import (
    PARSE_FAILURES,
    UNCHANGED_AFTER_NO,
    UNCLEAR_VERDICTS,
    UserCall,
    ask,
    strip_delimiters,
)
from persona_lab.simulators.personas import LatentPreference
from persona_lab.simulators.prompts import edit_acceptance_prompt, edit_revision_prompt, parse_yes_no
from persona_lab.simulators.users import build_user


@dataclass(frozen=True)
class EditFeedback:
    """The user's reaction to one draft."""

    edited: str
    accepted: bool
    fixed: tuple[str, ...] = ()  # catalog ids the edit addressed (scripted user only)
    incidental: bool = False  # an unrelated edit was added (scripted noise)
    usage: tuple[Usage, ...] = field(default=())
    verdict: str | None = None  # LLM user: "yes" / "no" / "unclear" (None for the scripted user)
    calls: tuple[UserCall, ...] = field(default=())  # LLM user: the audited model calls


@runtime_checkable
class EditingUser(Protocol):
    """Reacts to a draft given the latent preference of the current context."""

    def react(self, draft: str, preference: LatentPreference, rng: np.random.Generator) -> EditFeedback: ...


# Incidental edits a real user makes that have nothing to do with their preference.
_INCIDENTAL = (
    (" very ", " "),
    (" really ", " "),
    (" just ", " "),
    (" also ", " "),
    (" however, ", " but "),
    (" in order to ", " to "),
    (" a lot of ", " many "),
    (" utilize ", " use "),
)


@dataclass(frozen=True)
class ScriptedEditingUser:
    """Deterministic editing user over the verifiable catalog.

    Args:
        effort: fix at most this many violated preferences per round, most salient first
            (``None`` = all of them, so the edited text satisfies the whole preference).
        noise: probability that an edit also carries one incidental, unrelated change.
    """

    effort: int | None = None
    noise: float = 0.0

    def __post_init__(self) -> None:
        if self.effort is not None and self.effort < 1:
            raise ValueError(f"effort must be >= 1 or None, got {self.effort}")
        if not 0.0 <= self.noise <= 1.0:
            raise ValueError(f"noise must be in [0, 1], got {self.noise}")

    def react(self, draft: str, preference: LatentPreference, rng: np.random.Generator) -> EditFeedback:
        violated = [pid for pid, ok in catalog.satisfied(draft, preference.ids).items() if not ok]
        if not violated:
            return EditFeedback(draft, True)
        edited = catalog.apply_preferences(draft, preference.ids, limit=self.effort)
        fixed = tuple(pid for pid, ok in catalog.satisfied(edited, violated).items() if ok)
        incidental = False
        if self.noise and rng.random() < self.noise:
            edited, incidental = _incidental_edit(edited, rng)
        return EditFeedback(edited, edited == draft, fixed, incidental)


def _incidental_edit(text: str, rng: np.random.Generator) -> tuple[str, bool]:
    """Apply one unrelated wording change (when one applies), chosen with ``rng``."""
    for j in rng.permutation(len(_INCIDENTAL)):
        old, new = _INCIDENTAL[int(j)]
        if old in text:
            return text.replace(old, new, 1), True
    return text, False


class LLMEditingUser:
    """PRELUDE's LLM user: a yes/no suitability check, then a revision given only draft and preference.

    The parser invents no outcome: only a "yes" verdict accepts the draft. A "no" (or unclear) verdict
    followed by the draft unchanged is a rejection with cost 0 and the flag ``unchanged_after_no``;
    an unclear verdict is flagged ``unclear_verdicts`` (and the user is asked for a revision);
    echoed ``<<<``/``>>>`` delimiters are stripped from the revision; an empty revision falls back to
    the draft (flagged). Every call is kept in ``EditFeedback.calls``.

    Args:
        model: any ChatModel (injected; the user never creates one).
        max_new_tokens: budget for the revision.
        constrained: ask the backend to restrict the verdict to ``yes``/``no`` where it can (see
            :func:`persona_lab.models.decoding.choice_params`); free text plus parsing elsewhere.
    """

    def __init__(self, model: ChatModel, *, max_new_tokens: int = 400, constrained: bool = True) -> None:
        from persona_lab.models.decoding import choice_params

        self.model = model
        judge = GenerationParams(max_new_tokens=8)
        self.judge_params = choice_params(judge, ("yes", "no"), model) if constrained else judge
        self.revise_params = GenerationParams(max_new_tokens=max_new_tokens)

    def judge(self, draft: str, preference: LatentPreference) -> tuple[bool | None, UserCall]:
        """The verdict step alone: ``True`` (yes), ``False`` (no) or ``None`` (unclear), and its call."""
        call = ask(self.model, edit_acceptance_prompt(draft, preference.statement), self.judge_params, "verdict")
        verdict = parse_yes_no(strip_delimiters(call.raw))
        call.parsed = _VERDICT_WORD[verdict]
        if verdict is None:
            call.flag(UNCLEAR_VERDICTS)
            call.fall_back("unclear verdict: not accepted, revision asked")
        return verdict, call

    def react(self, draft: str, preference: LatentPreference, rng: np.random.Generator) -> EditFeedback:
        verdict, judged = self.judge(draft, preference)
        if verdict is True:
            return EditFeedback(draft, True, usage=(judged.usage,), verdict="yes", calls=(judged,))
        revised = ask(self.model, edit_revision_prompt(draft, preference.statement), self.revise_params, "revision")
        edited = _clean_revision(revised.raw)
        if not edited:
            revised.flag(PARSE_FAILURES)
            revised.fall_back("empty revision: draft kept")
            edited = draft
        elif " ".join(edited.split()) == " ".join(draft.split()):
            edited = draft
        if edited == draft and revised.fallback is None and verdict is False:
            revised.flag(UNCHANGED_AFTER_NO)
        revised.parsed = {"changed": edited != draft, "chars": len(edited)}
        calls = (judged, revised)
        return EditFeedback(edited, False, usage=tuple(c.usage for c in calls), verdict=_VERDICT_WORD[verdict],
                            calls=calls)


_VERDICT_WORD = {True: "yes", False: "no", None: "unclear"}
# A lead-in before the revision ("Here's the edited text:", "Revised version:"), not part of the edit.
_LABEL = re.compile(r"^\s*(?:(?:sure[,!.]?\s*)?here(?:'s| is) (?:the|your|my) )?(?:edited|revised) (?:text|version|email|summary)"
                    r"[^:\n]{0,40}:\s*|^\s*revision\s*:\s*", re.IGNORECASE)


def _clean_revision(text: str) -> str:
    """The revision without echoed delimiters or a leading "Edited text:" label."""
    return _LABEL.sub("", strip_delimiters(text or "")).strip()


def make_editing_user(
    kind: str | EditingUser, model: ChatModel | None = None, *, effort: int | None = None, noise: float = 0.0
) -> EditingUser:
    """``"scripted"`` or ``"llm"`` (needs ``model``), or an EditingUser instance passed through."""
    return build_user(kind, model, what="editing user", scripted=lambda: ScriptedEditingUser(effort=effort, noise=noise),
                      llm=LLMEditingUser)


def satisfaction(text: str, ids: Sequence[str]) -> float:
    """Share of ``ids`` that ``text`` satisfies (1.0 when there are none)."""
    if not ids:
        return 1.0
    return sum(catalog.satisfied(text, ids).values()) / len(ids)
