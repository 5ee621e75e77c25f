"""Persuaders for ``persona_lab/Persuasion-v0``: ``no-learning`` and ``oracle``.

With a model, both are LLM persuaders prompted from the dialogue (the oracle also gets the hidden
persona and state in words). Without one, they are scripted skills that speak the persuadee's cue
vocabulary (:mod:`persona_lab.simulators.persuasion`):

* ``no-learning`` — the same generic pitch for everyone: introduce the charity, an emotional and a
  logical appeal, then ask; it never adapts to what the persuadee says.
* ``oracle`` — told the persona and current state: answers the open objections one by one, uses the
  strategies this persona is moved by (never the one it dislikes), and asks once nothing is left
  open and the persuadee is willing, or at the last turn.
"""

from __future__ import annotations

from typing import Any

from persona_lab.agents.base import AGENTS, BaseAgent, TruthAware
from persona_lab.core.messages import Message, Transcript
from persona_lab.models.base import ChatModel, ChatRequest
from persona_lab.simulators.persuasion_vocab import CHARITY, OBJECTIONS, STRATEGY_NAMES, PersuadeePersona

TASK = "persuasion"

# One line per strategy, each carrying that strategy's cue phrases (what the scripted persuadee hears).
STRATEGY_LINES: dict[str, str] = {
    "logical_appeal": "Research shows it is one of the most cost-effective ways to help: every dollar goes far.",
    "emotional_appeal": "Imagine a hungry child in a war zone, frightened and alone; they need you.",
    "credibility_appeal": f"{CHARITY} has a long track record and is highly rated by Charity Navigator.",
    "personal_story": "I remember when my friend volunteered with them; the kids she met changed her life.",
    "foot_in_the_door": "Even a small amount helps, just 10 cents would already mean something.",
    "self_modeling": "I donate part of my bonus every time myself.",
    "donation_information": "The donation comes from your task bonus: the researchers will send it for you.",
}
ASK = "Would you like to donate part of it? How much would you give?"
_INTRO = (f"Hi! Have you heard of {CHARITY}? It is an international organization that helps children with food, "
          "health care and education.")


def persuader_messages(observation: dict[str, Any], persona_text: str = "") -> Transcript:
    """The persuader's prompt: the task, the dialogue so far (and, for the oracle, the persona)."""
    system = (f"You are chatting with another worker on a crowdsourcing platform. Persuade them to donate part of "
              f"their $2 task bonus (between $0 and $2) to {CHARITY}. Useful strategies: "
              + ", ".join(STRATEGY_NAMES.values())
              + ". Be natural and brief (one to three sentences); ask for a donation when the time is right. "
              f"You have {observation.get('turns_left', '?')} turns left.")
    if persona_text:
        system += f"\nWhat you know about this person (they do not know you know): {persona_text}"
    return (Message("system", system),
            Message("user", f"The conversation so far:\n{observation['dialogue']}\n\nYour next message:"))


class PersuaderAgent(BaseAgent):
    """Shared plumbing of the persuaders.

    Args:
        task: must be ``persuasion``.
        model: a ChatModel, or ``None`` for the scripted skill.
        max_new_tokens: reply budget of the LLM persuader.
    """

    name = "persuader"

    tasks: tuple[str, ...] = (TASK,)
    world = 'the persuasion task'
    default_max_new_tokens = 120

    def base_prompt(self, observation: dict[str, Any]) -> list[dict[str, str]]:
        return [m.to_dict() for m in persuader_messages(observation)]

    def act(self, observation: dict[str, Any]) -> str:
        if self.model is None:
            return self.scripted(observation)
        (c,) = self.model.generate([ChatRequest.of(persuader_messages(observation, self.persona_text()), self.params)])
        return c.text.strip() or self.scripted(observation)

    def persona_text(self) -> str:
        return ""

    def scripted(self, observation: dict[str, Any]) -> str:
        raise NotImplementedError





_GENERIC_SCRIPT = (
    _INTRO,
    STRATEGY_LINES["emotional_appeal"],
    STRATEGY_LINES["logical_appeal"] + " " + ASK,
    STRATEGY_LINES["donation_information"] + " " + ASK,
)


@AGENTS.register("no-learning", "The same pitch for everyone; asks from the third turn on.")
class NoLearningPersuader(PersuaderAgent):
    """The same pitch for everyone; asks from the third turn on."""

    name = "no-learning"

    def scripted(self, observation: dict[str, Any]) -> str:
        t = int(observation.get("turn", 0))
        return _GENERIC_SCRIPT[min(t, len(_GENERIC_SCRIPT) - 1)]


@AGENTS.register("oracle", "Told the hidden persona and state by the runner; answers objections, plays to what moves them.")
class OraclePersuader(TruthAware, PersuaderAgent):
    """Told the hidden persona and state by the runner; answers objections, plays to what moves them."""

    name = "oracle"

    def __init__(self, task: str = TASK, model: ChatModel | None = None, **kwargs: Any) -> None:
        super().__init__(task, model, **kwargs)
        self.truth: dict[str, Any] = {}


    def persona_text(self) -> str:
        return str(self.truth.get("description", ""))

    def scripted(self, observation: dict[str, Any]) -> str:
        if "persona" not in self.truth:
            return NoLearningPersuader.scripted(self, observation)  # type: ignore[arg-type]
        persona = PersuadeePersona.from_dict(self.truth["persona"])
        state = self.truth.get("state", {})
        open_objections = list(state.get("open_objections", persona.objections))
        counts = dict(state.get("strategy_counts", {}))
        willingness = float(state.get("willingness", persona.inclination))
        last_turn = int(observation.get("turns_left", 2)) <= 1
        parts = [] if observation.get("turn", 0) else [f"Hi! I'd like to tell you about {CHARITY}."]
        if open_objections:
            parts.append(OBJECTIONS[open_objections[0]].counter)
        moved = [s for s in persona.moved_by if counts.get(s, 0) < 2]
        neutral = [s for s in STRATEGY_LINES
                   if s not in persona.moved_by and s not in persona.put_off_by and not counts.get(s, 0)]
        pick = min(moved, key=lambda s: counts.get(s, 0)) if moved else (neutral[0] if neutral else None)
        if pick is not None:
            parts.append(STRATEGY_LINES[pick])
        remaining = open_objections[1:] if open_objections else []
        if last_turn or (not remaining and willingness >= 0.45):
            parts.append(ASK)
        self.step_info = {"willingness_seen": willingness, "open_objections_seen": open_objections}
        return " ".join(parts)
