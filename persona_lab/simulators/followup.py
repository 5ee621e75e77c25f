"""Follow-up feedback: a user with a persona asks, reads the answer, and writes the next turn.

Three things live here, none of which loads or calls a model on construction:

- :data:`FOLLOWUPS`, the follow-up utterances written for this project: for each of six dimensions
  (understanding, relevance, correctness, engagingness, informativeness, instruction-following)
  ten positive and ten negative things a user might say right after an answer. The scripted user
  picks its reactions from them and FLR (:mod:`persona_lab.simulators.followup_flr`) scores their likelihood.
- the question bank (:data:`TOPICS`, in :mod:`persona_lab.simulators.followup_vocab`, the world's
  public vocabulary): what the simulated users ask about, with the keywords, answer terms and
  reference facts that make an answer checkable without a judge.
- The users: :class:`ScriptedFollowUpUser` (deterministic, reacts to which of its catalog
  preferences and content checks the answer passed) and :class:`LLMFollowUpUser` (any ChatModel,
  prompts in :mod:`persona_lab.simulators.followup_prompts`). Both take state in and return
  ``(reply, new state)``.

How an answer is judged without a judge (:func:`assess`): understanding (readable text), relevance
(mentions the question's subject), correctness (states one of the question's answer terms),
informativeness (enough words), and the persona's catalog preferences, split into
instruction-following (format, length, structure, frame lines) and engagingness (tone, voice,
markers such as emojis and questions).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np

from persona_lab.core.errors import ConfigError
from persona_lab.core.messages import Message
from persona_lab.core.seeding import make_rng
from persona_lab.models.base import ChatModel, GenerationParams, Usage
from persona_lab.simulators import catalog
from persona_lab.simulators.audit import FILLER, UNCLEAR_VERDICTS, UserCall, ask, strip_delimiters
from persona_lab.simulators.followup_vocab import (  # noqa: F401  (re-exported: the world's vocabulary)
    QUESTIONS,
    TOPICS,
    Question,
    Topic,
    find_question,
    get_topic,
    parse_conversation,
    render_conversation,
)
from persona_lab.simulators.followup_vocab import normalize_text as _normalize
from persona_lab.simulators.followup_vocab import words_of as _words
from persona_lab.simulators.personas import (
    PRELUDE_PREFERENCES,
    LatentPreference,
    Population,
    make_population,
    prelude_approximation,
)
from persona_lab.simulators.users import build_user

# --- the follow-up lists -------------------------------------------------------------------------

DIMENSIONS: tuple[str, ...] = (
    "understanding",
    "relevance",
    "correctness",
    "engagingness",
    "informativeness",
    "instruction_following",
)
POSITIVE, NEGATIVE = "positive", "negative"
LABELS: tuple[str, ...] = (POSITIVE, NEGATIVE)

#: dimension -> label -> ten utterances a user might say as the next turn.
FOLLOWUPS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "understanding": {
        POSITIVE: (
            "You understood exactly what I was asking.",
            "Yes, that's precisely what I meant.",
            "Great, you got what I was after.",
            "That's the question I had in mind, thanks.",
            "You read my question right.",
            "Perfect, you caught what I was really asking about.",
            "Good, you knew what I needed.",
            "Right, that's the point I was getting at.",
            "You grasped my question completely.",
            "Exactly the thing I wanted to know about.",
        ),
        NEGATIVE: (
            "I don't think you understood my question.",
            "That's not what I meant at all.",
            "You misread what I was asking.",
            "Hmm, I think you misunderstood me.",
            "No, I was asking about something else.",
            "That's not the question I asked.",
            "You seem confused about what I want.",
            "Let me rephrase, because you missed my point.",
            "I'm not sure you got what I was asking.",
            "That answer doesn't match my question.",
        ),
    },
    "relevance": {
        POSITIVE: (
            "That's right on topic, thanks.",
            "Everything you said is relevant to what I need.",
            "Good, you stayed focused on my question.",
            "That's exactly the information that matters here.",
            "Nice, no detours, just what's relevant.",
            "All of that applies to my situation.",
            "That's pertinent, thank you.",
            "You kept to the point, which I appreciate.",
            "Those details are just what's relevant for me.",
            "Helpful, and all of it on topic.",
        ),
        NEGATIVE: (
            "That's off topic.",
            "How is that relevant to my question?",
            "You went off on a tangent there.",
            "Most of that has nothing to do with what I asked.",
            "Please stay on topic.",
            "That doesn't apply to my situation.",
            "I didn't ask about that.",
            "That's beside the point.",
            "Can you stick to what I actually asked?",
            "None of that is relevant to me.",
        ),
    },
    "correctness": {
        POSITIVE: (
            "That's correct, thanks.",
            "Yes, that matches what I've read elsewhere.",
            "Accurate, as far as I can tell.",
            "Good, that lines up with the facts I know.",
            "Right, that's the correct answer.",
            "That checks out.",
            "I looked it up and you're right.",
            "Those facts are spot on.",
            "Correct, and clearly stated.",
            "You got the details right.",
        ),
        NEGATIVE: (
            "That's not correct.",
            "I'm pretty sure that's wrong.",
            "That doesn't match what I know.",
            "Are you sure? That sounds inaccurate.",
            "You got some facts wrong there.",
            "That's a mistake.",
            "I checked, and that isn't true.",
            "That contradicts what the experts say.",
            "Some of that information is wrong.",
            "That's incorrect, please double-check.",
        ),
    },
    "engagingness": {
        POSITIVE: (
            "I enjoyed reading that!",
            "That was fun to read, thanks.",
            "I love the way you put that.",
            "What a lively answer, great.",
            "That kept my attention the whole way.",
            "Nice style, it feels like talking to a friend.",
            "That was a pleasure to read.",
            "Ha, I like your tone.",
            "Very engaging, thank you.",
            "You made that interesting.",
        ),
        NEGATIVE: (
            "That was pretty dull to read.",
            "This feels robotic.",
            "Can you make it less boring?",
            "That tone doesn't work for me.",
            "It reads like a manual, not a conversation.",
            "I lost interest halfway through.",
            "That style isn't what I like.",
            "A bit flat, honestly.",
            "That doesn't sound like how I want you to talk to me.",
            "Too dry for my taste.",
        ),
    },
    "informativeness": {
        POSITIVE: (
            "That was really informative.",
            "I learned something new, thanks.",
            "Great, that gives me enough detail.",
            "Very helpful, lots of useful information.",
            "That covers what I needed to know.",
            "Thanks, now I know what to do.",
            "That's a thorough answer.",
            "Useful details, thank you.",
            "That's plenty of information to go on.",
            "Good, that fills in the gaps for me.",
        ),
        NEGATIVE: (
            "That doesn't tell me much.",
            "Can you give me more detail?",
            "That's too vague to be useful.",
            "I still don't know what to do.",
            "You left out the important part.",
            "That's not very helpful.",
            "I need more specifics than that.",
            "That barely answers anything.",
            "There's not much information there.",
            "Could you be more concrete?",
        ),
    },
    "instruction_following": {
        POSITIVE: (
            "That's exactly the format I wanted.",
            "Thanks for doing it the way I like.",
            "Perfect, you followed my instructions.",
            "Good, that's how I prefer answers written.",
            "You did just what I asked.",
            "That's the style I asked for, thank you.",
            "Great, you remembered how I like it.",
            "Nice, it's written exactly the way I wanted.",
            "You stuck to my instructions, I appreciate that.",
            "That fits how I asked you to answer.",
        ),
        NEGATIVE: (
            "That's not the format I asked for.",
            "You didn't follow my instructions.",
            "Please write it the way I like.",
            "I told you how I want answers written.",
            "That ignores what I asked for.",
            "Not the way I wanted it written.",
            "You forgot how I like my answers.",
            "Please stick to my instructions.",
            "That's not how I asked you to answer.",
            "Can you redo it the way I asked?",
        ),
    },
}


def followup_list(label: str | None = None) -> list[tuple[str, str, str]]:
    """``(dimension, label, utterance)`` for every follow-up (or those of one label), in a fixed order."""
    if label is not None and label not in LABELS:
        raise ConfigError(f"unknown follow-up label {label!r}", hint=f"use one of {LABELS}")
    return [
        (dim, lab, text)
        for dim in DIMENSIONS
        for lab in LABELS
        if label is None or lab == label
        for text in FOLLOWUPS[dim][lab]
    ]


def _mentions(text: str, phrases: Sequence[str]) -> bool:
    norm = _normalize(text)
    return any(re.search(r"(?<![a-z0-9])" + re.escape(_normalize(p)), norm) for p in phrases)


# --- personas and goals ----------------------------------------------------------------------------

CONTEXT = "answer"  # the persona context of the follow-up world: how answers should be written

#: catalog families whose preferences an answer's *form* must follow, and those about its *voice*.
INSTRUCTION_FAMILIES = frozenset({"format", "length", "structure", "email"})
ENGAGEMENT_FAMILIES = frozenset({"tone", "voice", "markers"})


@dataclass(frozen=True)
class FollowUpPersona:
    """A user of the follow-up world: how they like answers written, and what they want to know.

    Attributes:
        id: persona id (stable for a population and index).
        preference: free-text statement plus the verifiable catalog items approximating it.
        topic: the topic id they ask about.
        questions: the question ids they will ask, in order.
        goal_answers: satisfactory answers after which they are done (<= len(questions)).
    """

    id: str
    preference: LatentPreference
    topic: str
    questions: tuple[str, ...]
    goal_answers: int

    def question(self, answered: int) -> Question:
        return QUESTIONS[self.questions[min(answered, len(self.questions) - 1)]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "preference": self.preference.statement,
            "preference_ids": list(self.preference.ids),
            "topic": self.topic,
            "questions": [QUESTIONS[q].text for q in self.questions],
            "goal_answers": self.goal_answers,
        }


_PRELUDE_STATEMENTS: tuple[tuple[str, str], ...] = tuple(
    (task, source) for task, sources in PRELUDE_PREFERENCES.items() for source in sources
)


def make_followup_persona(
    population: str | Population,
    index: int,
    *,
    goal_answers: int | None = None,
    population_k: int = 2,
    population_seed: int = 0,
) -> FollowUpPersona:
    """User ``index`` of a population, with a topic and a goal fixed by the index.

    ``"prelude"``: the nine published PRELUDE preference statements, user ``i`` taking statement
    ``i mod 9`` (with its catalog approximation). ``"verifiable"``: ``population_k`` compatible
    catalog items. A file or Population object: the persona's preference for context ``"answer"``.
    The topic, the order of its questions and (unless ``goal_answers`` is given) a goal of 2 to 4
    satisfactory answers are drawn from a generator seeded by the index alone.
    """
    if isinstance(population, str) and population == "prelude":
        task, source = _PRELUDE_STATEMENTS[index % len(_PRELUDE_STATEMENTS)]
        pref = LatentPreference(PRELUDE_PREFERENCES[task][source], prelude_approximation(task, source))
        pid = f"prelude-{task}-{source}"
    else:
        kwargs = {"k": population_k, "seed": population_seed} if population == "verifiable" else {}
        persona = make_population(population, **kwargs).persona(index, "followup", (CONTEXT,))
        pref, pid = persona.preference_for(CONTEXT), persona.id
    rng = make_rng("followup-goal", index)
    topic = TOPICS[int(rng.integers(len(TOPICS)))]
    order = [topic.questions[0]] + [topic.questions[int(i) + 1] for i in rng.permutation(len(topic.questions) - 1)]
    goal = int(rng.integers(2, len(order) + 1)) if goal_answers is None else goal_answers
    if not 1 <= goal <= len(order):
        raise ConfigError(f"goal_answers must be in [1, {len(order)}], got {goal}",
                          hint="each topic has four questions; the goal counts satisfactory answers")
    return FollowUpPersona(f"{pid}#{index}", pref, topic.id, tuple(q.id for q in order), goal)


# --- judge-free assessment -----------------------------------------------------------------------

MIN_INFORMATIVE_WORDS = 12
_TOKEN_RE = re.compile(r"\S+")
_WORD_TOKEN_RE = re.compile(r"^[\W_]*[A-Za-z][A-Za-z'’-]*[\W_]*$")


@dataclass(frozen=True)
class Assessment:
    """What a scripted reader sees in one answer.

    Attributes:
        checks: dimension -> passed (all six dimensions).
        satisfied: catalog id -> satisfied, for the persona's preferences.
    """

    checks: Mapping[str, bool]
    satisfied: Mapping[str, bool]

    @property
    def ok(self) -> bool:
        return all(self.checks.values())

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(d for d in FAILURE_PRIORITY if not self.checks[d])


#: the order in which a user complains: the most basic failure first.
FAILURE_PRIORITY: tuple[str, ...] = (
    "understanding", "relevance", "correctness", "informativeness", "instruction_following", "engagingness",
)


def readable(text: str) -> bool:
    """At least three words, and most whitespace-separated tokens are words (not noise)."""
    toks = _TOKEN_RE.findall(text)
    words = sum(1 for t in toks if _WORD_TOKEN_RE.match(t))
    return words >= 3 and words >= 0.6 * len(toks)


def assess(answer: str, question: Question, preference_ids: Sequence[str]) -> Assessment:
    """Check an answer on the six dimensions (see the module docstring for what each means)."""
    sat = catalog.satisfied(answer, preference_ids)

    def group(families: frozenset[str]) -> bool:
        return all(ok for pid, ok in sat.items() if catalog.CATALOG[pid].family in families)

    understood = readable(answer)
    checks = {
        "understanding": understood,
        "relevance": understood and _mentions(answer, question.keywords),
        "correctness": understood and _mentions(answer, question.answer_terms),
        "engagingness": group(ENGAGEMENT_FAMILIES),
        "informativeness": understood and len(_words(answer)) >= MIN_INFORMATIVE_WORDS,
        "instruction_following": group(INSTRUCTION_FAMILIES),
    }
    return Assessment(checks, sat)


# --- the users ------------------------------------------------------------------------------------

MAX_USER_CHARS = 2000


@dataclass(frozen=True)
class FollowUpState:
    """The user's side of the conversation: satisfactory answers so far and turns taken."""

    answered: int = 0
    turn: int = 0


@dataclass(frozen=True)
class FollowUpReply:
    """The user's next turn.

    Attributes:
        text: the whole next user message (reaction, then what they ask next).
        utterance: the reaction part (for the scripted user, an item of :data:`FOLLOWUPS`).
        label: ``"positive"`` or ``"negative"``.
        dimension: the dimension the reaction is about (scripted user; ``None`` when unknown).
        satisfactory: whether the answer counts towards the goal.
        goal_met: the user is done.
        classified_by: ``"script"``, ``"self"`` (LLM verdict), ``"prompt"`` (classification call)
            or ``"lexical"`` (closest list utterance, when the LLM's verdict could not be parsed).
    """

    text: str
    utterance: str
    label: str
    dimension: str | None
    satisfactory: bool
    goal_met: bool
    classified_by: str = "script"
    usage: tuple[Usage, ...] = field(default=())
    calls: tuple[UserCall, ...] = field(default=())  # LLM user: the audited model calls


@runtime_checkable
class FollowUpUser(Protocol):
    """Reads the latest answer of a conversation and writes the next turn."""

    def respond(
        self,
        persona: FollowUpPersona,
        state: FollowUpState,
        conversation: Sequence[Message],
        rng: np.random.Generator,
    ) -> tuple[FollowUpReply, FollowUpState]:
        """``conversation`` ends with the assistant's answer; returns the reply and the new state."""
        ...


DONE_LINE = "That's all I needed, thanks."
RESTATE_PREFIX = "Please remember:"


def opening_message(persona: FollowUpPersona) -> str:
    """The first user turn: the persona's first question."""
    return persona.question(0).text


def _next_text(persona: FollowUpPersona, state: FollowUpState, utterance: str, extra: str = "") -> str:
    if state.answered >= persona.goal_answers:
        return f"{utterance} {DONE_LINE}"
    middle = f" {extra}" if extra else ""
    return f"{utterance}{middle} {persona.question(state.answered).text}"


@dataclass(frozen=True)
class ScriptedFollowUpUser:
    """Deterministic follow-up writer over the verifiable catalog and the question bank.

    A satisfactory answer (all six checks pass) gets a positive utterance, drawn with ``rng`` from
    a dimension the answer did well on (a preference dimension when the persona has preferences
    there), then the next question. Otherwise the reaction is a negative utterance of the first
    failed dimension in :data:`FAILURE_PRIORITY`, then the same question again.

    Args:
        restate: after a preference failure, also restate the most salient violated preference
            (off by default: the preference stays latent, as in PRELUDE).
    """

    restate: bool = False

    def respond(
        self,
        persona: FollowUpPersona,
        state: FollowUpState,
        conversation: Sequence[Message],
        rng: np.random.Generator,
    ) -> tuple[FollowUpReply, FollowUpState]:
        answer = _last_answer(conversation)
        result = assess(answer, persona.question(state.answered), persona.preference.ids)
        if result.ok:
            families = {catalog.CATALOG[p].family for p in persona.preference.ids}
            praised = [d for d, fams in (("instruction_following", INSTRUCTION_FAMILIES),
                                         ("engagingness", ENGAGEMENT_FAMILIES)) if families & fams]
            pool = praised or ["understanding", "relevance", "correctness", "informativeness"]
            dim = pool[int(rng.integers(len(pool)))]
            utterance = FOLLOWUPS[dim][POSITIVE][int(rng.integers(10))]
            new = replace(state, answered=state.answered + 1, turn=state.turn + 1)
            goal = new.answered >= persona.goal_answers
            return FollowUpReply(_next_text(persona, new, utterance), utterance, POSITIVE, dim, True, goal), new
        dim = result.failed[0]
        utterance = FOLLOWUPS[dim][NEGATIVE][int(rng.integers(10))]
        extra = ""
        if self.restate and dim in ("instruction_following", "engagingness"):
            violated = [catalog.CATALOG[p] for p, ok in result.satisfied.items() if not ok]
            top = max(violated, key=lambda p: p.salience)
            extra = f"{RESTATE_PREFIX} {top.statement}"
        new = replace(state, turn=state.turn + 1)
        return FollowUpReply(_next_text(persona, new, utterance, extra), utterance, NEGATIVE, dim, False, False), new


def _last_answer(conversation: Sequence[Message]) -> str:
    if not conversation or conversation[-1].role != "assistant":
        raise ValueError("the conversation must end with the assistant's answer")
    return conversation[-1].content


def lexical_label(message: str) -> tuple[str, str]:
    """``(label, dimension)`` of the list utterance closest to ``message`` (a parse-failure fallback)."""
    from rapidfuzz import fuzz

    low = message.lower()
    best = max(followup_list(), key=lambda item: fuzz.partial_ratio(item[2].lower(), low))
    return best[1], best[0]


class LLMFollowUpUser:
    """A follow-up writer played by any ChatModel, which also labels its own reaction.

    With ``classify="self"`` one call returns ``VERDICT: positive|negative`` and ``MESSAGE: ...``;
    a verdict that does not parse is asked again with the separate classification prompt, and if
    that fails too, the closest list utterance decides (``classified_by`` records which). With
    ``classify="prompt"`` the verdict always comes from the separate classification call.

    Args:
        model: any ChatModel (injected; the user never creates one).
        classify: ``"self"`` or ``"prompt"``.
        max_new_tokens: budget of the follow-up message.
    """

    def __init__(self, model: ChatModel, *, classify: str = "self", max_new_tokens: int = 160) -> None:
        if classify not in ("self", "prompt"):
            raise ConfigError(f"unknown classify mode {classify!r}", hint="use 'self' or 'prompt'")
        self.model = model
        self.classify = classify
        self.params = GenerationParams(max_new_tokens=max_new_tokens)
        self.judge_params = GenerationParams(max_new_tokens=8)

    def respond(
        self,
        persona: FollowUpPersona,
        state: FollowUpState,
        conversation: Sequence[Message],
        rng: np.random.Generator,
    ) -> tuple[FollowUpReply, FollowUpState]:
        from persona_lab.simulators.followup_prompts import (
            followup_classification_prompt,
            followup_user_prompt,
            parse_followup,
            parse_label,
        )

        _last_answer(conversation)
        question = persona.question(state.answered)
        upcoming = persona.question(state.answered + 1).text if state.answered + 1 < persona.goal_answers else None
        call = ask(self.model, followup_user_prompt(persona.preference.statement, question.text, upcoming, conversation),
                   self.params, "followup")
        calls = [call]
        label, message = parse_followup(call.raw)
        message = strip_delimiters(message or "") or strip_delimiters(call.raw)
        if not message:
            call.flag(FILLER)
            call.fall_back("no message: '...'")
            message = "..."
        message = message[:MAX_USER_CHARS]
        call.parsed = {"label": label}
        by = "self"
        if label is None and self.classify == "self":
            call.flag(UNCLEAR_VERDICTS)
            call.fall_back("no VERDICT line: classification prompt")
        if self.classify == "prompt" or label is None:
            judged = ask(self.model, followup_classification_prompt(message), self.judge_params, "classify")
            calls.append(judged)
            label, by = parse_label(judged.raw), "prompt"
            judged.parsed = label
            if label is None:
                judged.flag(UNCLEAR_VERDICTS)
                judged.fall_back("unclear label: lexical match")
        dimension = None
        if label is None:
            label, dimension = lexical_label(message)
            by = "lexical"
        good = label == POSITIVE
        new = replace(state, answered=state.answered + int(good), turn=state.turn + 1)
        goal = new.answered >= persona.goal_answers
        return FollowUpReply(message, message, label, dimension, good, goal, by, tuple(c.usage for c in calls),
                             tuple(calls)), new


def make_followup_user(
    kind: str | FollowUpUser, model: ChatModel | None = None, *, restate: bool = False, classify: str = "self"
) -> FollowUpUser:
    """``"scripted"`` or ``"llm"`` (needs ``model``), or a FollowUpUser instance passed through."""
    return build_user(kind, model, what="follow-up user", scripted=lambda: ScriptedFollowUpUser(restate=restate),
                      llm=lambda m: LLMFollowUpUser(m, classify=classify))
