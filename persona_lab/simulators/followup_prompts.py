"""Prompts of the LLM follow-up user, as plain Python functions, and the parsers of its replies."""

from __future__ import annotations

import re
from collections.abc import Sequence

from persona_lab.core.messages import Message, Transcript

POSITIVE, NEGATIVE = "positive", "negative"  # the labels of persona_lab.simulators.followup
HISTORY_TURNS = 6  # earlier turns shown to the user (the latest answer is always shown in full)


def _require(**values: str) -> None:
    for name, value in values.items():
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"prompt variable {name!r} must be a non-empty string")


def _history(conversation: Sequence[Message]) -> str:
    earlier = [m for m in conversation[:-1] if m.role in ("user", "assistant")][-HISTORY_TURNS:]
    if not earlier:
        return ""
    lines = "\n".join(f"{'You' if m.role == 'user' else 'Assistant'}: {m.content}" for m in earlier)
    return f"The conversation so far:\n<<<\n{lines}\n>>>\n\n"


def followup_user_prompt(
    preference: str, question: str, next_question: str | None, conversation: Sequence[Message]
) -> Transcript:
    """Play the user: judge the latest answer, label the reaction, write the next turn.

    Args:
        preference: how this user likes answers written (hidden from the assistant).
        question: what the user is currently asking.
        next_question: what to ask after a satisfactory answer (``None``: the user is then done).
        conversation: the chat so far, ending with the assistant's answer.
    """
    if not conversation or conversation[-1].role != "assistant":
        raise ValueError("the conversation must end with the assistant's answer")
    answer = conversation[-1].content
    _require(preference=preference, question=question)
    after = (f'continue by asking your next question: "{next_question}"' if next_question
             else "say that you have everything you need")
    return (
        Message(
            "system",
            "You are role-playing a user who is chatting with an AI assistant. Stay in character and write "
            "as that user, in the first person, never as the assistant.",
        ),
        Message(
            "user",
            f"How you like answers written (you have not told the assistant): {preference}\n"
            f"Your current question: {question}\n\n"
            f"{_history(conversation)}"
            f"The assistant's latest answer:\n<<<\n{answer or '(empty)'}\n>>>\n\n"
            "Decide whether this answer is satisfactory: it must understand your question, answer it "
            "correctly, stay relevant, be informative, and be written the way you like.\n"
            "Then write your next message to the assistant in one to three sentences. Start with your honest "
            "reaction to the answer. If it was satisfactory, " + after + ". If it was not, say what was "
            "wrong and ask your question again.\n\n"
            "Reply in exactly this format:\nVERDICT: positive or negative\nMESSAGE: your next message",
        ),
    )


def followup_classification_prompt(message: str) -> Transcript:
    """Label a user's follow-up: was their reaction to the previous answer positive or negative?"""
    _require(message=message)
    return (
        Message("system", "You classify user messages. Answer with one word: positive or negative."),
        Message(
            "user",
            "A user wrote this message right after reading an assistant's answer:\n"
            f"<<<\n{message}\n>>>\n\n"
            "Was the user's reaction to that answer positive (satisfied) or negative (dissatisfied)? "
            "Answer positive or negative.",
        ),
    )


# Leftmost match wins; negated forms are listed so that "not satisfied" is read as negative.
_LABEL_RE = re.compile(
    r"\b(?P<neg>negative|neg|dissatisfied|unsatisfied|unsatisfactory|not\s+satisf\w*|not\s+positive|bad|no)\b"
    r"|\b(?P<pos>positive|pos|satisfied|satisfactory|good|yes)\b",
    re.IGNORECASE,
)
_VERDICT_RE = re.compile(r"^\W*(?:verdict|label|reaction|classification)\W*[:=\-]\s*(?P<rest>.*)$",
                         re.IGNORECASE | re.MULTILINE)
_MESSAGE_RE = re.compile(r"^\W*(?:message|reply|next message|response)\W*[:=\-]\s*(?P<rest>.*)$",
                         re.IGNORECASE | re.MULTILINE | re.DOTALL)


def parse_label(text: str) -> str | None:
    """``"positive"`` / ``"negative"`` from a classification answer (leftmost label word), else ``None``."""
    m = _LABEL_RE.search(text or "")
    if m is None:
        return None
    return NEGATIVE if m.group("neg") else POSITIVE


def parse_followup(text: str) -> tuple[str | None, str]:
    """``(label or None, message)`` from a reply in the VERDICT / MESSAGE format.

    Tolerates markdown emphasis, other casing, missing lines and extra chatter: the label comes
    from the VERDICT line only (a message that merely says "good" is not a verdict); the message is
    what follows ``MESSAGE:``, or else the text with the verdict line removed, unquoted and without
    echoed ``<<<`` / ``>>>`` delimiters (small models copy them from the prompt).
    """
    text = (text or "").strip()
    label = None
    verdict = _VERDICT_RE.search(text)
    if verdict is not None:
        label = parse_label(verdict.group("rest"))
    m = _MESSAGE_RE.search(text)
    if m is not None:
        message = m.group("rest")
    else:
        message = _VERDICT_RE.sub("", text) if verdict is not None else text
    message = message.strip().removeprefix("<<<").removesuffix(">>>")  # echoed prompt delimiters
    message = message.strip().strip("*").strip()
    if len(message) >= 2 and message[0] == message[-1] and message[0] in "\"'":
        message = message[1:-1].strip()
    return label, message
