"""The persuasion world's public vocabulary: the charity, the strategies and the objections.

Everything a persuader may know about the world without seeing a persuadee's hidden state: the
cue phrases that name each persuasion strategy, the objections a persuadee may voice and the
sentences that answer them, and the persona schema (which only an oracle, given the privileged
truth, ever fills in). Agents import this module, never :mod:`persona_lab.simulators.persuasion`
(the persuadees' logic).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_DONATION = 2.0
CHARITY = "Save the Children"

# Strategy -> cue phrases (lowercase) that recognize it in a persuader turn.
STRATEGY_CUES: dict[str, tuple[str, ...]] = {
    "logical_appeal": ("research shows", "evidence", "statistic", "makes sense", "cost-effective", "every dollar",
                       "per dollar", "measurable", "logically", "the numbers"),
    "emotional_appeal": ("imagine", "heartbreaking", "suffering", "hungry", "frightened", "scared", "desperate",
                         "breaks my heart", "they need you", "innocent"),
    "credibility_appeal": ("founded in 1919", "charity navigator", "four-star", "audited", "track record",
                           "reputable", "highly rated", "accountable", "transparent about"),
    "personal_story": ("i remember", "my friend", "my sister", "my brother", "when i was", "i once", "i met",
                       "a girl named", "a boy named", "true story"),
    "foot_in_the_door": ("even a small", "just a little", "just 10 cents", "even 10 cents", "start small",
                         "any amount", "a few cents", "even a dime"),
    "self_modeling": ("i donate", "i'm donating", "i am donating", "i will donate", "i'll donate", "i gave",
                      "i myself", "i also give", "i just donated"),
    "donation_information": ("from your task bonus", "from your bonus", "deducted from", "goes directly",
                             "the researchers will", "your payment", "out of your $2", "of your $2"),
}
STRATEGIES: tuple[str, ...] = tuple(STRATEGY_CUES)
STRATEGY_NAMES = {s: s.replace("_", " ") for s in STRATEGIES}


@dataclass(frozen=True)
class Objection:
    """A reason not to donate: how the persuadee voices it and which phrases answer it."""

    id: str
    voiced: tuple[str, ...]
    answered_by: tuple[str, ...]
    counter: str  # a sentence that answers it (what the scripted persuader says)


OBJECTIONS: dict[str, Objection] = {o.id: o for o in (
    Objection("cant_afford", ("Honestly, money is tight for me right now.", "I can't really spare money at the moment."),
              ("small amount", "any amount", "cents", "just a little", "won't miss", "only from the bonus"),
              "It would only come out of this task's bonus, and any amount helps, even a few cents you won't miss."),
    Objection("doubts_effectiveness", ("I'm not sure my little bit would make any difference.",
                                       "Does a small donation actually change anything?"),
              ("makes a difference", "make a difference", "impact", "provides", "vaccines", "a week of meals",
               "enough to"),
              "It really makes a difference: a single dollar provides enough to vaccinate a child against measles."),
    Objection("distrusts_charities", ("A lot of charities waste most of the money on overhead.",
                                      "How do I know the money isn't eaten up by overhead?"),
              ("overhead", "percent goes", "% goes", "audited", "charity navigator", "transparent"),
              "They are audited every year and about 86 percent goes directly to programs, not overhead."),
    Objection("prefers_local", ("I'd rather help people in my own community.", "Shouldn't we help kids here at home first?"),
              ("in the united states", "in the us", "here at home", "rural america", "local", "in our own country"),
              "They also run programs here at home, in the United States, for kids in poor rural communities."),
    Objection("unfamiliar", ("I've never heard of Save the Children.", "What is this organization, exactly?"),
              ("international", "organization", "since 1919", "founded", "120 countries", "over 100 countries"),
              "Save the Children is an international organization founded in 1919 that works in over 100 countries."),
    Objection("already_donates", ("I already give to other causes.", "I donate elsewhere already."),
              ("in addition", "on top of", "every bit", "both", "another cause", "as well"),
              "That's great, and this could be a small extra on top of what you give; every bit adds up."),
    Objection("suspicious_of_online", ("How do I even know this donation is real?", "This sounds a bit like a scam."),
              ("researchers", "deducted", "your bonus", "verify", "website", "receipt"),
              "The researchers running this task deduct it from your bonus and send it; you can verify it on their website."),
)}

ASK_CUES = ("would you donate", "would you like to donate", "will you donate", "could you donate",
            "can you donate", "how much", "consider donating", "make a donation", "to donate some", "to donate part",
            "would you be willing", "are you willing", "want to donate", "like to give")


def detect_strategies(text: str) -> tuple[str, ...]:
    low = text.lower().replace("’", "'")
    return tuple(s for s, cues in STRATEGY_CUES.items() if any(c in low for c in cues))


def detect_answered(text: str, objections: Sequence[str]) -> tuple[str, ...]:
    low = text.lower().replace("’", "'")
    return tuple(o for o in objections if any(c in low for c in OBJECTIONS[o].answered_by))


def detect_ask(text: str) -> bool:
    low = text.lower().replace("’", "'")
    return any(c in low for c in ASK_CUES)


@dataclass(frozen=True)
class PersuadeePersona:
    """Who the persuadee is (hidden from the persuader)."""

    id: str
    inclination: float
    objections: tuple[str, ...]
    moved_by: tuple[str, ...]
    put_off_by: tuple[str, ...] = ()

    def describe(self) -> str:
        """The persona in words (what an LLM persuadee and the oracle persuader are told)."""
        lean = ("very reluctant" if self.inclination < 0.25 else "somewhat reluctant" if self.inclination < 0.45
                else "open" if self.inclination < 0.65 else "quite willing")
        objs = "; ".join(OBJECTIONS[o].voiced[0] for o in self.objections) or "none in particular"
        moved = ", ".join(STRATEGY_NAMES[s] for s in self.moved_by) or "nothing in particular"
        off = ", ".join(STRATEGY_NAMES[s] for s in self.put_off_by)
        text = (f"You start {lean} to donate to charity. Your concerns, most important first: {objs} "
                f"You are moved most by: {moved}.")
        return text + (f" You are put off by: {off}." if off else "")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "inclination": self.inclination, "objections": list(self.objections),
                "moved_by": list(self.moved_by), "put_off_by": list(self.put_off_by)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PersuadeePersona:
        return cls(str(d["id"]), float(d["inclination"]), tuple(d["objections"]), tuple(d["moved_by"]),
                   tuple(d.get("put_off_by", ())))
