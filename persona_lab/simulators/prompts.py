"""Prompts of the simulated users, as plain Python functions (rendered strictly, tested)."""

from __future__ import annotations

import re

from persona_lab.core.messages import Message, Transcript


def _require(**values: str) -> None:
    for name, value in values.items():
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"prompt variable {name!r} must be a non-empty string")


def edit_acceptance_prompt(draft: str, preference: str) -> Transcript:
    """PRELUDE's first step: would someone with this preference accept the draft as it is?"""
    _require(draft=draft, preference=preference)
    return (
        Message("system", "You are a user reviewing a text an assistant wrote for you. Answer only yes or no."),
        Message(
            "user",
            f"My preference for this kind of text: {preference}\n\n"
            f"The assistant's text:\n<<<\n{draft}\n>>>\n\n"
            "Is this text already what someone with my preference would want, with no changes needed? "
            "Answer yes or no.",
        ),
    )


def edit_revision_prompt(draft: str, preference: str) -> Transcript:
    """PRELUDE's second step: revise the draft given only the draft and the preference."""
    _require(draft=draft, preference=preference)
    return (
        Message(
            "system",
            "You are a user editing a text an assistant wrote for you so that it matches your preference. "
            "Keep the content; change only what your preference requires. Reply with the edited text only.",
        ),
        Message("user", f"My preference: {preference}\n\nText to edit:\n<<<\n{draft}\n>>>\n\nEdited text:"),
    )


_YES = re.compile(r"^\W*(yes|y|yeah|yep|correct|true)\b", re.IGNORECASE)
_NO = re.compile(r"^\W*(no|n|nope|false|not)\b", re.IGNORECASE)


def parse_yes_no(text: str) -> bool | None:
    """``True`` for an answer that starts with yes, ``False`` for no, ``None`` when unclear."""
    if _YES.match(text):
        return True
    if _NO.match(text):
        return False
    return None
