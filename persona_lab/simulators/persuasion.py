"""PersuasionForGood-style persuadees: a hidden persona, a dialogue, a donation of $0-2 at the end.

The persuader asks the persuadee to donate part of a $2 task bonus to Save the Children. The
persuadee has a hidden persona: an initial inclination, objections (ordered by salience) and the
persuasion strategies that move it or put it off. Two forms:

* :class:`ScriptedPersuadee` — a state machine over objections addressed and strategies used.
  Strategies and objection answers are recognized from cue phrases (the vocabulary below, which the
  scripted persuader skills also write from). Each turn changes the hidden *willingness*: a strategy
  the persona is moved by adds much, a neutral one a little, one it dislikes subtracts, each with
  diminishing returns when repeated; answering an open objection adds and closes it; asking for money
  while objections are open costs a little; an empty turn bores. Phrasing and a small noise come from
  the turn's generator, so a turn is a pure function of (state, agent text, seed).
* :class:`LLMPersuadee` — any ChatModel plays the persona, reporting its willingness on a hidden line
  and its decision on a marked line; donations are parsed robustly.

A dialogue is a value (:class:`Dialogue`: persona, opening, exchanges with the state and seed of each
user turn), so :func:`regenerate` can replay it up to a turn and re-simulate the user from there with a
different agent turn — the primitive of hindsight regeneration.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np

from persona_lab.core.errors import ConfigError
from persona_lab.core.messages import Message
from persona_lab.core.records import TransitionRecord
from persona_lab.core.seeding import derive_seed, make_rng
from persona_lab.models.base import ChatModel, ChatRequest, GenerationParams, Usage
from persona_lab.simulators.audit import (
    ECHOED_PROMPT,
    FILLER,
    INFO_KEY,
    PARSE_FAILURES,
    ask,
    calls_info,
    echoes,
)
from persona_lab.simulators.persuasion_vocab import (  # noqa: F401  (re-exported: the world's vocabulary)
    ASK_CUES,
    CHARITY,
    MAX_DONATION,
    OBJECTIONS,
    STRATEGIES,
    STRATEGY_CUES,
    STRATEGY_NAMES,
    Objection,
    PersuadeePersona,
    detect_answered,
    detect_ask,
    detect_strategies,
)
from persona_lab.simulators.users import build_user


def sample_persona(rng: np.random.Generator, persona_id: str = "persuadee") -> PersuadeePersona:
    """A persona drawn with ``rng``: inclination ~ Beta(2, 3.5), 1-3 objections, 2 strategies that move
    it and (half the time) one that puts it off. (With the scripted ``no-learning`` persuader about 58%
    of these personas give something, near PersuasionForGood's 54%.)"""
    inclination = round(float(rng.beta(2.0, 3.5)), 3)
    ids = list(OBJECTIONS)
    objections = tuple(ids[int(i)] for i in rng.choice(len(ids), size=int(rng.integers(1, 4)), replace=False))
    order = [STRATEGIES[int(i)] for i in rng.permutation(len(STRATEGIES))]
    put_off = (order[2],) if rng.random() < 0.5 else ()
    return PersuadeePersona(persona_id, inclination, objections, tuple(order[:2]), put_off)


def persona_for_index(index: int, seed: int = 0) -> PersuadeePersona:
    """Persona ``index`` of the population ``seed`` (the same everywhere)."""
    return sample_persona(make_rng("persuadee", seed, index), f"persuadee-{seed}-{index}")


@dataclass(frozen=True)
class PersuadeeState:
    """The persuadee's hidden state after a turn."""

    willingness: float
    open_objections: tuple[str, ...]
    voiced: tuple[str, ...] = ()
    strategy_counts: tuple[tuple[str, int], ...] = ()
    asked: int = 0
    turn: int = 0
    decided: bool = False
    ended: bool = False  # said goodbye without being asked
    donation: float | None = None

    def count(self, strategy: str) -> int:
        return dict(self.strategy_counts).get(strategy, 0)

    def to_dict(self) -> dict[str, Any]:
        return {"willingness": self.willingness, "open_objections": list(self.open_objections),
                "voiced": list(self.voiced), "strategy_counts": dict(self.strategy_counts), "asked": self.asked,
                "turn": self.turn, "decided": self.decided, "ended": self.ended, "donation": self.donation}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PersuadeeState:
        return cls(float(d["willingness"]), tuple(d["open_objections"]), tuple(d.get("voiced", ())),
                   tuple(sorted(dict(d.get("strategy_counts", {})).items())), int(d.get("asked", 0)),
                   int(d.get("turn", 0)), bool(d.get("decided", False)), bool(d.get("ended", False)),
                   None if d.get("donation") is None else float(d["donation"]))


def initial_state(persona: PersuadeePersona) -> PersuadeeState:
    return PersuadeeState(persona.inclination, persona.objections)


def donation_amount(willingness: float, open_objections: Sequence[str] = ()) -> float:
    """Dollars given at a willingness: $0 up to 0.4, rising linearly to $2 at 0.9, in 10-cent steps;
    at most $0.50 while "money is tight" is still open."""
    amount = min(MAX_DONATION, max(0.0, MAX_DONATION * (willingness - 0.4) / 0.5))
    if "cant_afford" in open_objections:
        amount = min(amount, 0.5)
    return round(round(amount * 10) / 10, 2)


@dataclass(frozen=True)
class PersuadeeTurn:
    """One persuadee reply with the state it leaves and what changed (privileged)."""

    reply: str
    state: PersuadeeState
    trace: Mapping[str, Any] = field(default_factory=dict)
    usage: tuple[Usage, ...] = ()


@runtime_checkable
class Persuadee(Protocol):
    """State in, (reply, state) out; the model client, if any, is injected."""

    def greet(self, persona: PersuadeePersona, rng: np.random.Generator) -> str: ...

    def respond(self, persona: PersuadeePersona, history: Sequence[Message], state: PersuadeeState,
                agent_text: str, rng: np.random.Generator) -> PersuadeeTurn: ...

    def decide(self, persona: PersuadeePersona, history: Sequence[Message], state: PersuadeeState,
               rng: np.random.Generator) -> PersuadeeTurn: ...


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _lower_first(text: str) -> str:
    return text if re.match(r"I\b", text) else text[:1].lower() + text[1:]


_GREETINGS = ("Hi! I'm doing well, thanks. What did you want to talk about?", "Hello! Sure, I have a few minutes.",
              "Hey, how are you? What's up?")
_MOVED = ("That's really something to think about.", "Okay, that does get to me.", "Hm, that's a good point.")
_PUT_OFF = ("Please don't pressure me like that.", "I don't love that kind of pitch, to be honest.")
_ANSWERED = ("Okay, that answers my worry.", "That's good to know.", "Alright, that makes me feel better about it.")
_CURIOUS = ("Tell me more about what they do.", "What kind of work do they do?", "Okay, go on.")
_READY = ("That sounds like a good cause. How would I donate?", "I think I'd like to help.")
_BORED = ("Okay.", "Sure.", "I'm not sure what you mean.")
_GOODBYE = "I don't think this is for me. I'm going to go now, bye."


def _decision_text(amount: float, rng: np.random.Generator) -> str:
    if amount <= 0:
        return _pick(rng, ("Sorry, I don't think I'll donate this time.", "I'll pass on donating, sorry."))
    return _pick(rng, (f"Okay, I'll donate ${amount:.2f}.", f"Alright, put me down for ${amount:.2f}."))


@dataclass(frozen=True)
class ScriptedPersuadee:
    """The deterministic persuadee (see the module docstring).

    Args:
        moved: willingness gained from a strategy the persona is moved by (first use).
        neutral: gained from any other strategy.
        put_off: lost to a strategy the persona dislikes.
        answered: gained per objection answered.
        pushy: lost when asked for money while objections are open.
        bored: lost to a turn with no strategy and no answer.
        noise: standard deviation of the per-turn noise.
        ready_at: willingness at which the persuadee decides when asked even with objections open.
    """

    moved: float = 0.16
    neutral: float = 0.04
    put_off: float = 0.12
    answered: float = 0.12
    pushy: float = 0.06
    bored: float = 0.03
    noise: float = 0.02
    ready_at: float = 0.6

    def greet(self, persona: PersuadeePersona, rng: np.random.Generator) -> str:
        return _pick(rng, _GREETINGS)

    def respond(self, persona: PersuadeePersona, history: Sequence[Message], state: PersuadeeState,
                agent_text: str, rng: np.random.Generator) -> PersuadeeTurn:
        strategies = detect_strategies(agent_text)
        answered = detect_answered(agent_text, state.open_objections)
        asked = detect_ask(agent_text)
        delta = 0.0
        counts = dict(state.strategy_counts)
        for s in strategies:
            base = self.moved if s in persona.moved_by else -self.put_off if s in persona.put_off_by else self.neutral
            delta += base * (0.5 ** counts.get(s, 0)) if base > 0 else base
            counts[s] = counts.get(s, 0) + 1
        delta += self.answered * len(answered)
        open_now = tuple(o for o in state.open_objections if o not in answered)
        if asked and open_now:
            delta -= self.pushy
        if not strategies and not answered and not asked:
            delta -= self.bored
        delta += float(rng.normal(0.0, self.noise)) if self.noise else 0.0
        w = min(1.0, max(0.0, state.willingness + delta))
        st = replace(state, willingness=round(w, 4), open_objections=open_now,
                     strategy_counts=tuple(sorted(counts.items())), asked=state.asked + int(asked),
                     turn=state.turn + 1)
        trace = {"strategies": list(strategies), "answered": list(answered), "asked": asked,
                 "willingness_before": state.willingness, "willingness_after": st.willingness,
                 "delta": round(st.willingness - state.willingness, 4)}
        if asked and (not open_now or w >= self.ready_at or st.asked >= 2 or w < 0.15):
            amount = donation_amount(w, open_now)
            st = replace(st, decided=True, donation=amount)
            return PersuadeeTurn(_decision_text(amount, rng), st, trace)
        if w < 0.05 and st.turn >= 2:
            st = replace(st, decided=True, ended=True, donation=0.0)
            return PersuadeeTurn(_GOODBYE, st, trace)
        parts = []
        if any(s in persona.put_off_by for s in strategies):
            parts.append(_pick(rng, _PUT_OFF))
        elif any(s in persona.moved_by for s in strategies):
            parts.append(_pick(rng, _MOVED))
        if answered:
            parts.append(_pick(rng, _ANSWERED))
        unvoiced = [o for o in open_now if o not in st.voiced]
        voiced_open = [o for o in open_now if o in st.voiced]
        if unvoiced and w < 0.75:
            parts.append(_pick(rng, OBJECTIONS[unvoiced[0]].voiced))
            st = replace(st, voiced=(*st.voiced, unvoiced[0]))
        elif voiced_open and w < self.ready_at:
            parts.append("As I said, " + _lower_first(_pick(rng, OBJECTIONS[voiced_open[0]].voiced)))
        elif w >= self.ready_at:
            parts.append(_pick(rng, _READY))
        elif not parts:
            parts.append(_pick(rng, _CURIOUS if strategies or answered else _BORED))
        return PersuadeeTurn(" ".join(parts), st, trace)

    def decide(self, persona: PersuadeePersona, history: Sequence[Message], state: PersuadeeState,
               rng: np.random.Generator) -> PersuadeeTurn:
        amount = donation_amount(state.willingness, state.open_objections)
        st = replace(state, decided=True, donation=amount)
        return PersuadeeTurn("I have to go now. " + _decision_text(amount, rng), st, {"forced_decision": True})


# --- LLM persuadee ------------------------------------------------------------------------------
_AMOUNT = re.compile(r"\$\s*(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)\s*(dollars?|bucks?|usd|cents?|¢)", re.IGNORECASE)
_ZERO = re.compile(r"(?i)\b(?:nothing|not donate|won't donate|will not donate|no donation|don't want to donate|"
                   r"do not want to donate|pass on donating|zero|\$?0(?:\.0+)?\b(?! ?cents))")
_ALL = re.compile(r"(?i)\b(?:all of it|the whole (?:thing|bonus|\$?2)|entire bonus|full amount|everything|all \$?2)\b")
_HALF = re.compile(r"(?i)\bhalf\b")
_BUDGET_AFTER = re.compile(r"(?i)\s*(?:task\s+|hit\s+)?(?:bonus|payment|reward)\b")


def parse_donation(text: str) -> float | None:
    """Dollars in [0, 2] from free text: a ``DONATION:``/``DECISION:`` line first, then amounts near
    "donate", then words (nothing, half, all of it); None when no amount can be read."""
    marked = re.search(r"(?i)\b(?:donation|decision|donate)\s*[:=]\s*(.+)", text)
    if marked:
        got = _amount_in(marked.group(1))
        if got is not None:
            return got
    return _amount_in(text)


def _amount_in(text: str) -> float | None:
    amounts = []
    for m in _AMOUNT.finditer(text):
        value = float(m.group(1) or m.group(2))
        unit = (m.group(3) or "").lower()
        if unit.startswith(("cent", "¢")):
            value /= 100.0
        if _BUDGET_AFTER.match(text, m.end()):
            continue  # "of my $2 bonus" is the budget, not the amount
        amounts.append(value)
    if amounts:
        return round(min(MAX_DONATION, max(0.0, amounts[0])), 2)
    if _ALL.search(text):
        return MAX_DONATION
    if _HALF.search(text):
        return 1.0
    if _ZERO.search(text):
        return 0.0
    return None


class LLMPersuadee:
    """A persuadee played by any ChatModel.

    Each reply carries two hidden lines the env strips: ``WILLINGNESS: <0-10>`` (the privileged state;
    when missing, the previous value stands) and, once the persona decides, ``DECISION: $<amount>``
    (or ``GOODBYE``). At the budget's end a separate prompt asks for the donation.

    Args:
        model: the ChatModel (injected).
        max_new_tokens: reply budget.
    """

    def __init__(self, model: ChatModel, *, max_new_tokens: int = 160) -> None:
        self.model = model
        self.params = GenerationParams(max_new_tokens=max_new_tokens)

    def _ask(self, messages: Any) -> tuple[str, Usage]:
        (c,) = self.model.generate([ChatRequest.of(messages, self.params)])
        return c.text, c.usage

    def greet(self, persona: PersuadeePersona, rng: np.random.Generator) -> str:
        return _pick(rng, _GREETINGS)  # a fixed greeting: the persuader opens the real conversation

    def respond(self, persona: PersuadeePersona, history: Sequence[Message], state: PersuadeeState,
                agent_text: str, rng: np.random.Generator) -> PersuadeeTurn:
        from persona_lab.simulators import persuasion_prompts as P

        call = ask(self.model, P.persuadee_turn_prompt(persona, history, agent_text), self.params, "turn",
                   drop_echo=True)
        parsed = P.parse_persuadee_turn(call.text or "")
        call.parsed = {"willingness": parsed.willingness, "donation": parsed.donation, "goodbye": parsed.goodbye}
        if parsed.willingness is None:
            call.flag(PARSE_FAILURES)
            call.fall_back("no WILLINGNESS line: previous willingness kept")
        if echoes(call.raw, agent_text):
            call.flag(ECHOED_PROMPT)
        reply = parsed.reply
        if not reply:
            call.flag(FILLER)
            call.fall_back("no visible reply: scripted filler")
            reply = "Okay."
        w = parsed.willingness if parsed.willingness is not None else state.willingness
        st = replace(state, willingness=w, turn=state.turn + 1, asked=state.asked + int(detect_ask(agent_text)))
        trace = {"strategies": list(detect_strategies(agent_text)), "asked": detect_ask(agent_text),
                 "willingness_before": state.willingness, "willingness_after": w,
                 "delta": round(w - state.willingness, 4), "parse_failed": parsed.willingness is None,
                 INFO_KEY: calls_info([call]), "reply_filler": not parsed.reply}
        if parsed.goodbye:
            st = replace(st, decided=True, ended=True, donation=0.0 if parsed.donation is None else parsed.donation)
        elif parsed.donation is not None:
            st = replace(st, decided=True, donation=parsed.donation)
        return PersuadeeTurn(reply, st, trace, (call.usage,))

    def decide(self, persona: PersuadeePersona, history: Sequence[Message], state: PersuadeeState,
               rng: np.random.Generator) -> PersuadeeTurn:
        from persona_lab.simulators import persuasion_prompts as P

        call = ask(self.model, P.persuadee_decision_prompt(persona, history), self.params, "forced_decision",
                   drop_echo=True)
        amount = parse_donation(call.text or "")
        call.parsed = amount
        failed = amount is None
        if failed:
            call.flag(PARSE_FAILURES)
            call.fall_back("no amount: donation from the willingness")
        amount = donation_amount(state.willingness) if amount is None else amount
        st = replace(state, decided=True, donation=amount)
        reply = P.strip_hidden(call.text or "")
        if not reply:
            call.flag(FILLER)
            call.fall_back("no visible reply: scripted filler")
            reply = _decision_text(amount, rng)
        return PersuadeeTurn(reply, st, {"forced_decision": True, "parse_failed": failed,
                                         INFO_KEY: calls_info([call])}, (call.usage,))


def make_persuadee(kind: str | Persuadee, model: ChatModel | None = None, *, noise: float = 0.02) -> Persuadee:
    """``"scripted"`` or ``"llm"`` (needs ``model``), or a Persuadee passed through."""
    return build_user(kind, model, what="persuadee", scripted=lambda: ScriptedPersuadee(noise=noise), llm=LLMPersuadee)


# --- dialogues and regeneration -----------------------------------------------------------------
@dataclass(frozen=True)
class Exchange:
    """Agent turn t, the persuadee's reply, the state it left, the seed of the user's generator."""

    agent: str
    user: str
    state: PersuadeeState
    seed: int
    trace: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"agent": self.agent, "user": self.user, "state": self.state.to_dict(), "seed": self.seed,
                "trace": dict(self.trace)}


@dataclass(frozen=True)
class Dialogue:
    """A persuasion dialogue as a value: the persona, the opening and the exchanges."""

    persona: PersuadeePersona
    opening: str
    start: PersuadeeState
    exchanges: tuple[Exchange, ...]
    budget: int

    @property
    def state(self) -> PersuadeeState:
        return self.exchanges[-1].state if self.exchanges else self.start

    @property
    def donation(self) -> float | None:
        return self.state.donation

    @property
    def finished(self) -> bool:
        return self.state.decided

    def state_before(self, t: int) -> PersuadeeState:
        return self.exchanges[t - 1].state if t > 0 else self.start

    def history(self, t: int | None = None) -> tuple[Message, ...]:
        """Messages before agent turn ``t`` (all of them by default), from the persuader's side:
        the persuadee is ``user``, the persuader ``assistant``."""
        t = len(self.exchanges) if t is None else t
        out = [Message("user", self.opening)]
        for ex in self.exchanges[:t]:
            out += [Message("assistant", ex.agent), Message("user", ex.user)]
        return tuple(out)

    def render(self, t: int | None = None) -> str:
        return "\n".join(f"{'Persuadee' if m.role == 'user' else 'Persuader'}: {m.content}" for m in self.history(t))

    def to_dict(self) -> dict[str, Any]:
        return {"persona": self.persona.to_dict(), "opening": self.opening, "start": self.start.to_dict(),
                "exchanges": [e.to_dict() for e in self.exchanges], "budget": self.budget}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Dialogue:
        return cls(PersuadeePersona.from_dict(d["persona"]), str(d["opening"]), PersuadeeState.from_dict(d["start"]),
                   tuple(Exchange(e["agent"], e["user"], PersuadeeState.from_dict(e["state"]), int(e["seed"]),
                                  dict(e.get("trace", {}))) for e in d["exchanges"]), int(d["budget"]))


def play_turn(user: Persuadee, dialogue: Dialogue, agent_text: str, seed: int) -> Exchange:
    """One user turn after ``agent_text``, with the generator ``seed``; at the budget's last turn an
    undecided persuadee is made to decide. Env and :func:`regenerate` share this one function."""
    rng = np.random.default_rng(seed)
    history = dialogue.history()
    turn = user.respond(dialogue.persona, history, dialogue.state, agent_text, rng)
    reply, state, trace, usage = turn.reply, turn.state, dict(turn.trace), list(turn.usage)
    if not state.decided and len(dialogue.exchanges) + 1 >= dialogue.budget:
        final = user.decide(dialogue.persona, (*history, Message("assistant", agent_text), Message("user", reply)),
                            state, rng)
        reply, state = f"{reply} {final.reply}".strip(), final.state
        failed = bool(trace.get("parse_failed") or final.trace.get("parse_failed"))
        calls = [*trace.get(INFO_KEY, ()), *final.trace.get(INFO_KEY, ())]
        trace.update(final.trace)
        trace["parse_failed"] = failed
        if calls:
            trace[INFO_KEY] = calls
        usage.extend(final.usage)
    trace["usage"] = [asdict(u) for u in usage]
    return Exchange(agent_text, reply, state, int(seed), trace)


def _finish(user: Persuadee, dialogue: Dialogue, seed: int) -> Dialogue:
    """Make an undecided persuadee decide now (the persuader has nothing more to say)."""
    if dialogue.finished or not dialogue.exchanges:
        return dialogue
    rng = np.random.default_rng(seed)
    final = user.decide(dialogue.persona, dialogue.history(), dialogue.state, rng)
    last = dialogue.exchanges[-1]
    failed = bool(last.trace.get("parse_failed") or final.trace.get("parse_failed"))
    calls = [*last.trace.get(INFO_KEY, ()), *final.trace.get(INFO_KEY, ())]
    merged = replace(last, user=f"{last.user} {final.reply}".strip(), state=final.state,
                     trace={**last.trace, **final.trace, "parse_failed": failed, **({INFO_KEY: calls} if calls else {})})
    return replace(dialogue, exchanges=(*dialogue.exchanges[:-1], merged))


def regenerate(dialogue: Dialogue, from_turn: int, new_agent_turn: str, user: Persuadee, seed: int | None = None,
               *, agent: Callable[[Dialogue], str] | None = None) -> Dialogue:
    """Replay ``dialogue`` up to agent turn ``from_turn``, put ``new_agent_turn`` there and re-simulate.

    Turns before ``from_turn`` are kept as they are (same texts, same states). From there the user is
    simulated again; the persuader's later turns come from ``agent`` (called with the dialogue so far)
    or, without one, are the original later turns replayed. When the persuader runs out of turns
    before the user decides, the user decides then; the budget is the original one.

    Args:
        dialogue: a (finished or not) dialogue.
        from_turn: index of the agent turn to replace (0 = the first persuader turn).
        new_agent_turn: the replacement persuader turn.
        user: the persuadee simulator (scripted or LLM).
        seed: seeds the re-simulated user turns; ``None`` reuses the original turns' seeds, so giving
            the original turn back reproduces the original dialogue exactly (scripted user).
        agent: optional persuader for the turns after ``from_turn``.
    """
    if not 0 <= from_turn < len(dialogue.exchanges):
        raise ConfigError(f"from_turn {from_turn} is outside the dialogue's {len(dialogue.exchanges)} agent turns",
                          hint=f"use 0..{len(dialogue.exchanges) - 1}")

    def seed_for(t: int) -> int:
        if seed is None and t < len(dialogue.exchanges):
            return dialogue.exchanges[t].seed
        return derive_seed("regenerate", dialogue.exchanges[0].seed if seed is None else seed, t)

    out = replace(dialogue, exchanges=dialogue.exchanges[:from_turn])
    text: str | None = new_agent_turn
    t = from_turn
    while text is not None and t < dialogue.budget:
        out = replace(out, exchanges=(*out.exchanges, play_turn(user, out, text, seed_for(t))))
        if out.finished:
            return out
        t += 1
        if agent is not None:
            text = agent(out)
        else:
            text = dialogue.exchanges[t].agent if t < len(dialogue.exchanges) else None
    return _finish(user, out, seed_for(t))


def dialogue_from_records(records: Sequence[TransitionRecord]) -> Dialogue:
    """Rebuild one episode's :class:`Dialogue` from its run records (to branch it with :func:`regenerate`)."""
    recs = sorted(records, key=lambda r: r.round)
    first = recs[0]
    persona = PersuadeePersona.from_dict(first.privileged["persona"])
    exchanges = tuple(
        Exchange(r.action, r.info["user_reply"], PersuadeeState.from_dict(r.privileged["state"]), int(r.privileged["seed"]),
                 {k: r.privileged[k] for k in ("strategies", "answered", "asked") if k in r.privileged})
        for r in recs
    )
    budget = int(first.observation["turns_left"])
    return Dialogue(persona, first.observation["user"], initial_state(persona), exchanges, budget)
