"""Hindsight controllers: read a finished persuasion dialogue, pick the persuader turn that went wrong
and propose a better one (the first step of hindsight regeneration; the user simulator then completes
the dialogue from there with :func:`persona_lab.simulators.persuasion.regenerate`).

A controller sees the *public transcript* only — ``(role, text)`` pairs, ``role`` being ``persuader``
or ``persuadee`` — never the hidden persona or state, with one labelled exception:

* :class:`ScriptedController` — finds the first persuadee reply that turned against donating (an
  objection voiced, a pitch that put them off, a refusal) and writes a persuader turn that answers the
  objection expressed, with the world's public cue vocabulary;
* :class:`LLMController` — any ChatModel reads the transcript and returns ``{"turn": k, "utterance":
  "..."}`` as JSON; unparseable answers are counted in ``failures`` and give no proposal;
* :class:`OracleController` — ``privileged = True``: reads the hidden persona and per-turn state of the
  simulator, so its regenerations are an *upper bound*, not a method.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from persona_lab.models.base import ChatModel, ChatRequest, GenerationParams
from persona_lab.simulators.persuasion import (
    CHARITY,
    OBJECTIONS,
    STRATEGIES,
    Dialogue,
    detect_answered,
    detect_ask,
    detect_strategies,
)

Transcript = Sequence[tuple[str, str]]  # (persuadee | persuader, text), opening with the persuadee

# One persuader sentence per strategy, written with the strategy's public cue phrases.
STRATEGY_SENTENCES: dict[str, str] = {
    "logical_appeal": "Research shows it is cost-effective: every dollar goes a long way.",
    "emotional_appeal": "Imagine a hungry, frightened child; they need you.",
    "credibility_appeal": f"{CHARITY} is reputable, with a long track record and a four-star rating.",
    "personal_story": "I remember my friend came back from volunteering with them, deeply moved.",
    "foot_in_the_door": "Even a small amount helps, just a few cents.",
    "self_modeling": "I'm donating part of my own bonus too.",
    "donation_information": "It comes out of your task bonus and goes directly to the charity.",
}
ASK_SENTENCE = "Would you like to donate some of your bonus? How much would you give?"
_NEGATIVE = ("don't pressure", "don't love that", "not for me", "i'll pass", "don't think i'll donate", "going to go")


@dataclass(frozen=True)
class Proposal:
    """Replace persuader turn ``turn`` (0-based) with ``utterance``; ``reason`` says why (for analysis)."""

    turn: int
    utterance: str
    reason: str = ""


@runtime_checkable
class HindsightController(Protocol):
    name: str
    privileged: bool

    def propose(self, transcript: Transcript, *, dialogue: Dialogue | None = None) -> Proposal | None:
        """A proposal for a finished dialogue, or None. ``dialogue`` (privileged) is given only to
        controllers with ``privileged = True``."""
        ...


def public_transcript(dialogue: Dialogue) -> tuple[tuple[str, str], ...]:
    """What a non-oracle controller may read: the utterances, nothing of the persona or state."""
    out = [("persuadee", dialogue.opening)]
    for ex in dialogue.exchanges:
        out += [("persuader", ex.agent), ("persuadee", ex.user)]
    return tuple(out)


def _split(transcript: Transcript) -> tuple[list[str], list[str]]:
    """Persuader turns and the persuadee reply to each (reply k follows persuader turn k)."""
    agent = [t for r, t in transcript if r == "persuader"]
    replies = [t for r, t in transcript[1:] if r == "persuadee"]
    return agent, replies


def voiced_objections(text: str) -> list[str]:
    """Objections a persuadee reply expresses, recognized from their public phrasing."""
    low = text.lower()
    found = []
    for o in OBJECTIONS.values():
        if any(v.lower().rstrip(".?") in low or v.lower()[:30] in low for v in o.voiced):
            found.append(o.id)
    return found


def compose_turn(objection: str | None, avoid: Sequence[str] = (), *, ask: bool = False, used: Sequence[str] = ()) -> str:
    """A persuader turn: the objection's answer, one strategy sentence (not in ``avoid``; fewest ``used``
    first) and, when ``ask``, the request."""
    parts = [OBJECTIONS[objection].counter] if objection else []
    options = [s for s in STRATEGIES if s not in avoid]
    if options:
        pick = min(options, key=lambda s: (list(used).count(s), STRATEGIES.index(s)))
        parts.append(STRATEGY_SENTENCES[pick])
    if ask:
        parts.append(ASK_SENTENCE)
    return " ".join(parts)


class ScriptedController:
    """Finds where the persuadee's replies turned against donating and answers what they objected to.

    The first reply that voices an objection which the next persuader turn leaves unanswered (or that
    says the pitch put them off, or refuses) marks the turn to replace: the persuader turn after an
    objection (or the offending turn itself) becomes the objection's answer plus a strategy the
    persuadee has not pushed back on, with the request kept where the original asked.
    """

    name = "scripted"
    privileged = False

    def propose(self, transcript: Transcript, *, dialogue: Dialogue | None = None) -> Proposal | None:
        agent, replies = _split(transcript)
        if not agent:
            return None
        disliked: list[str] = []
        for k, reply in enumerate(replies):
            low = reply.lower()
            if any(n in low for n in _NEGATIVE[:2]):  # the pitch of turn k put them off
                disliked += list(detect_strategies(agent[k]))
                objection = next(iter(_open_objections(agent, replies, k)), None)
                return Proposal(k, compose_turn(objection, disliked, ask=detect_ask(agent[k]),
                                                used=_used(agent[:k])), f"turn {k} put the persuadee off")
            for o in voiced_objections(reply):
                nxt = k + 1
                if nxt < len(agent) and detect_answered(agent[nxt], [o]):
                    continue  # the persuader answered it
                target = nxt if nxt < len(agent) else k
                return Proposal(target, compose_turn(o, disliked, ask=detect_ask(agent[target]) or target == len(agent) - 1,
                                                     used=_used(agent[:target])),
                                f"objection {o!r} voiced after turn {k} was left unanswered")
            if any(n in low for n in _NEGATIVE[2:]):
                objection = next(iter(_open_objections(agent, replies, k)), None)
                return Proposal(k, compose_turn(objection, disliked, ask=True, used=_used(agent[:k])),
                                f"the persuadee refused after turn {k}")
        return None


def _used(turns: Sequence[str]) -> list[str]:
    return [s for t in turns for s in detect_strategies(t)]


def _open_objections(agent: Sequence[str], replies: Sequence[str], upto: int) -> list[str]:
    voiced = [o for r in replies[: upto + 1] for o in voiced_objections(r)]
    return [o for o in dict.fromkeys(voiced) if not any(detect_answered(a, [o]) for a in agent[: upto + 1])]


def controller_prompt(transcript: Transcript) -> list[dict[str, str]]:
    """The LLM controller's prompt: the numbered persuader turns of the finished dialogue."""
    lines, k = [], 0
    for role, text in transcript:
        if role == "persuader":
            lines.append(f"[turn {k}] Persuader: {text}")
            k += 1
        else:
            lines.append(f"Persuadee: {text}")
    system = (f"You review finished conversations in which a persuader asked a crowd worker to donate part of a $2 "
              f"task bonus to {CHARITY}. Find the persuader turn that most hurt the outcome and write a better one "
              "that answers what the persuadee objected to. Reply with JSON only: "
              '{"turn": <turn number>, "utterance": "<the better persuader turn>"}')
    return [{"role": "system", "content": system},
            {"role": "user", "content": "Conversation:\n" + "\n".join(lines) + "\n\nYour JSON:"}]


def parse_proposal(text: str, n_turns: int) -> Proposal | None:
    """``{"turn": k, "utterance": "..."}`` from a model answer (the first JSON object in it); None when
    it is missing, malformed, or names a turn outside ``0..n_turns - 1``."""
    for match in re.finditer(r"\{.*?\}", text, flags=re.DOTALL):
        try:
            obj = json.loads(match.group(0))
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, Mapping):
            continue
        turn, utterance = obj.get("turn"), obj.get("utterance")
        if isinstance(turn, str) and turn.strip().isdigit():
            turn = int(turn)
        if isinstance(turn, int) and not isinstance(turn, bool) and 0 <= turn < n_turns \
                and isinstance(utterance, str) and utterance.strip():
            return Proposal(turn, utterance.strip(), "llm")
    return None


class LLMController:
    """A ChatModel reads the finished transcript and proposes ``{"turn", "utterance"}`` as JSON.

    Args:
        model: the ChatModel (injected).
        max_new_tokens: answer budget.

    ``calls`` and ``failures`` count requests and answers that could not be parsed into a proposal.
    """

    name = "llm"
    privileged = False

    def __init__(self, model: ChatModel, *, max_new_tokens: int = 160) -> None:
        self.model = model
        self.params = GenerationParams(max_new_tokens=max_new_tokens)
        self.calls = 0
        self.failures = 0

    def propose(self, transcript: Transcript, *, dialogue: Dialogue | None = None) -> Proposal | None:
        n_turns = sum(r == "persuader" for r, _ in transcript)
        (c,) = self.model.generate([ChatRequest.of(controller_prompt(transcript), self.params)])
        self.calls += 1
        proposal = parse_proposal(c.text, n_turns)
        if proposal is None:
            self.failures += 1
        return proposal

    def stats(self) -> dict[str, Any]:
        return {"calls": self.calls, "failures": self.failures}


class OracleController:
    """UPPER BOUND, not a method: reads the simulator's hidden persona and per-turn willingness.

    Replaces the persuader turn after which the hidden willingness fell most (or, when none fell, the
    one that gained least) with a turn that answers the persona's open objections, uses a strategy the
    persona is moved by and asks when the dialogue is near its end.
    """

    name = "oracle"
    privileged = True

    def propose(self, transcript: Transcript, *, dialogue: Dialogue | None = None) -> Proposal | None:
        if dialogue is None or not dialogue.exchanges:
            return None
        deltas = [ex.state.willingness - dialogue.state_before(k).willingness for k, ex in enumerate(dialogue.exchanges)]
        k = min(range(len(deltas)), key=lambda i: (deltas[i], i))
        before = dialogue.state_before(k)
        persona = dialogue.persona
        parts = [OBJECTIONS[o].counter for o in before.open_objections[:2]]
        counts = dict(before.strategy_counts)
        moved = sorted(persona.moved_by, key=lambda s: counts.get(s, 0))
        if moved:
            parts.append(STRATEGY_SENTENCES[moved[0]])
        if k >= len(dialogue.exchanges) - 1 or detect_ask(dialogue.exchanges[k].agent):
            parts.append(ASK_SENTENCE)
        return Proposal(k, " ".join(parts), f"hidden willingness changed by {deltas[k]:+.3f} after turn {k}")


def make_controller(kind: str, model: ChatModel | None = None) -> HindsightController:
    """``scripted``, ``llm`` (needs ``model``) or ``oracle``."""
    from persona_lab.core.errors import ConfigError

    if kind == "scripted":
        return ScriptedController()
    if kind == "oracle":
        return OracleController()
    if kind == "llm":
        if model is None:
            raise ConfigError("the llm hindsight controller needs a model", hint="pass --backend hf:<model>")
        return LLMController(model)
    raise ConfigError(f"unknown hindsight controller {kind!r}", hint="use scripted, llm or oracle")
