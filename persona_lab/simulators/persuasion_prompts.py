"""Prompts of the LLM persuadee, as plain Python functions, and the parser of its turns.

The persuadee model plays the *assistant* role (it is the one speaking), so the persuader's turns are
given to it as ``user`` messages. Its hidden willingness and its decision travel on marked lines that
the env strips before the persuader sees the reply.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from persona_lab.core.messages import Message, Transcript
from persona_lab.simulators.persuasion import CHARITY, MAX_DONATION, PersuadeePersona, parse_donation


def _system(persona: PersuadeePersona) -> str:
    return (
        "You are a worker on a crowdsourcing platform. You just finished a task and earned a $2 bonus. "
        f"Another worker is now chatting with you and may ask you to donate part of the bonus to {CHARITY}, "
        "a children's charity. Stay in character; write short, natural chat messages (one to three sentences).\n"
        f"Who you are (never reveal this directly): {persona.describe()}\n"
        "After every message add a hidden line 'WILLINGNESS: <0-10>' saying how willing you now are to donate. "
        "When you have made up your mind (for example after being asked), add a line 'DECISION: $<amount>' "
        f"with an amount between $0 and ${MAX_DONATION:.0f}. If you want to end the chat without donating, "
        "add a line 'GOODBYE'."
    )


def _flip(history: Sequence[Message]) -> list[Message]:
    """Persuader-side history (persuadee = user) -> persuadee-side (persuadee = assistant)."""
    flipped = []
    for m in history:
        if m.role == "system":
            continue
        flipped.append(Message("assistant" if m.role == "user" else "user", m.content))
    return flipped


def persuadee_turn_prompt(persona: PersuadeePersona, history: Sequence[Message], agent_text: str) -> Transcript:
    """The persuadee's next message after the persuader said ``agent_text``."""
    msgs = [Message("system", _system(persona)), *_flip(history), Message("user", agent_text or "...")]
    if msgs[1].role == "assistant":  # chat templates want a user turn first
        msgs.insert(1, Message("user", "Hi, how are you doing today?"))
    return tuple(msgs)


def persuadee_decision_prompt(persona: PersuadeePersona, history: Sequence[Message]) -> Transcript:
    """The chat is over: how much does the persuadee donate?"""
    convo = "\n".join(f"{'You' if m.role == 'user' else 'Other worker'}: {m.content}"
                      for m in history if m.role != "system")
    return (
        Message("system", _system(persona)),
        Message("user", f"The chat has ended. Here it is:\n{convo}\n\n"
                        f"How much of your $2 bonus do you donate to {CHARITY}? Reply with one line: "
                        "DECISION: $<amount between 0 and 2>"),
    )


@dataclass(frozen=True)
class ParsedTurn:
    reply: str
    willingness: float | None
    donation: float | None
    goodbye: bool


_WILL = re.compile(r"(?im)^\W*willingness\s*[:=]?\s*(\d+(?:\.\d+)?)\s*(?:/\s*10)?")
_DECISION = re.compile(r"(?im)^\W*decision\s*[:=]?\s*(.*)$")
_GOODBYE = re.compile(r"(?im)^\W*goodbye\W*$")


def parse_persuadee_turn(text: str) -> ParsedTurn:
    """Split a persuadee answer into the visible reply and the hidden lines (each may be missing)."""
    w = None
    m = _WILL.search(text)
    if m:
        value = float(m.group(1))
        w = min(1.0, max(0.0, value / 10.0 if value > 1.0 else value))
    donation = None
    d = _DECISION.search(text)
    if d:
        donation = parse_donation(d.group(1))
    goodbye = bool(_GOODBYE.search(text))
    return ParsedTurn(strip_hidden(text), w, donation, goodbye)


def strip_hidden(text: str) -> str:
    """The visible part of a persuadee answer (hidden WILLINGNESS / DECISION / GOODBYE lines removed)."""
    keep = [ln for ln in text.splitlines() if not re.match(r"(?i)^\W*(willingness|decision|goodbye)\b", ln)]
    return " ".join(" ".join(keep).split())
