"""Follow-up feedback: a user with a persona asks, reads the answer, and writes the next turn.

Three things live here, none of which loads or calls a model on construction:

- :data:`FOLLOWUPS`, the follow-up utterances written for this project: for each of six dimensions
  (understanding, relevance, correctness, engagingness, informativeness, instruction-following)
  ten positive and ten negative things a user might say right after an answer. The scripted user
  picks its reactions from them and FLR (:mod:`persona_lab.simulators.followup_flr`) scores their likelihood.
- :data:`TOPICS`, a small question bank: what the simulated users ask about, with the keywords,
  answer terms and reference facts that make an answer checkable without a judge.
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
from persona_lab.core.messages import Message, Transcript
from persona_lab.core.seeding import make_rng
from persona_lab.models.base import ChatModel, GenerationParams, Usage
from persona_lab.simulators import catalog
from persona_lab.simulators.audit import FILLER, UNCLEAR_VERDICTS, UserCall, ask, strip_delimiters
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


# --- the question bank ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """One thing a user asks, checkable without a judge.

    Attributes:
        id: ``<topic>/<n>``.
        text: the question as the user writes it.
        keywords: subject words (lower case, matched as word prefixes); a relevant answer names one.
        answer_terms: phrases that state the answer; a correct answer contains one.
        facts: reference sentences (the first holds a keyword and an answer term); scripted
            assistants answer from them.
    """

    id: str
    text: str
    keywords: tuple[str, ...]
    answer_terms: tuple[str, ...]
    facts: tuple[str, ...]


@dataclass(frozen=True)
class Topic:
    id: str
    title: str
    questions: tuple[Question, ...]


def _topic(tid: str, title: str, *questions: tuple[str, tuple[str, ...], tuple[str, ...], str]) -> Topic:
    qs = []
    for n, (text, keywords, terms, facts) in enumerate(questions):
        sentences = tuple(s.strip() for s in re.split(r"(?<=[.!?])\s+", facts.strip()) if s.strip())
        qs.append(Question(f"{tid}/{n}", text, keywords, terms, sentences))
    return Topic(tid, title, tuple(qs))


TOPICS: tuple[Topic, ...] = (
    _topic(
        "sourdough", "Baking sourdough bread",
        ("How do I keep a sourdough starter alive?", ("starter",), ("feed",),
         "Feed the starter equal weights of flour and water once a day while it lives at room temperature. "
         "Discard about half of it before each feeding so it does not grow out of control. "
         "A healthy starter doubles within four to eight hours after a feeding. "
         "If you bake rarely, keep it in the fridge and feed it once a week."),
        ("How can I tell when the dough has proofed enough?", ("dough", "proof"), ("poke test", "springs back"),
         "Use the poke test to check the dough: press a floured finger into it and watch how it springs back. "
         "If the dent fills in slowly and only partly, the loaf is ready to bake. "
         "If it springs back at once, give it more time. "
         "If the dent stays, it has gone too far."),
        ("What oven temperature should I bake sourdough at?", ("oven", "temperature", "bake"), ("250", "230"),
         "Bake sourdough in a very hot oven at about 250 degrees Celsius for the first twenty minutes. "
         "Then take the lid off and lower the heat to about 230 degrees Celsius to finish the crust. "
         "A Dutch oven traps steam so the loaf can rise before the crust sets. "
         "The bread is done when the inside reaches about 96 degrees."),
        ("Why is my sourdough bread so dense?", ("dense", "bread", "loaf"), ("underproof", "weak starter"),
         "Dense bread usually means the dough was underproofed or the starter was too weak. "
         "Make sure the starter is active and bubbly before you mix. "
         "Let the bulk ferment run until the dough has grown by about half. "
         "Shaping with good surface tension also helps the loaf hold its rise."),
    ),
    _topic(
        "houseplants", "Caring for houseplants",
        ("How often should I water a snake plant?", ("water", "snake plant"), ("dried out", "two to three weeks"),
         "Water a snake plant only when the soil has dried out completely, usually every two to three weeks. "
         "In winter it needs water even less often, about once a month. "
         "Overwatering is the most common way to kill one, because the roots rot in wet soil. "
         "Use a pot with a drainage hole so extra water can escape."),
        ("Why are the leaves of my plant turning yellow?", ("leaves", "yellow"), ("overwater", "too much water"),
         "Yellow leaves most often come from overwatering, which starves the roots of air. "
         "Check whether the soil stays soggy for days after watering. "
         "Too little light or a lack of nutrients can also turn older leaves yellow. "
         "Remove the yellow leaves and let the soil dry before you water again."),
        ("How much light does a pothos need?", ("light", "pothos"), ("indirect",),
         "A pothos grows best in bright, indirect light, such as a few feet from a sunny window. "
         "It tolerates low light, but then it grows slowly and its leaves lose their variegation. "
         "Direct afternoon sun can scorch the leaves. "
         "Rotate the pot now and then so the vine grows evenly."),
        ("When should I repot a houseplant?", ("repot", "pot"), ("roots", "spring"),
         "Repot a houseplant when its roots circle the pot or grow out of the drainage hole. "
         "Spring is the best time, because the plant is starting to grow again. "
         "Choose a pot only one size larger than the old one. "
         "Water it well after repotting and keep it out of strong sun for a week."),
    ),
    _topic(
        "running", "Starting to run",
        ("How should a beginner start running?", ("beginner", "run"), ("walk", "intervals"),
         "A beginner should start running with run-walk intervals, such as one minute of running and two "
         "minutes of walking. "
         "Repeat the intervals for about twenty minutes, three times a week. "
         "Each week, run a little longer and walk a little less. "
         "Rest days between runs let your muscles and joints adapt."),
        ("How do I avoid shin splints?", ("shin",), ("gradually", "ten percent"),
         "To avoid shin splints, increase your weekly distance gradually, by no more than about ten percent a week. "
         "Wear shoes that fit well and replace them after roughly 500 to 800 kilometers. "
         "Softer surfaces such as trails are gentler on your shins than concrete. "
         "Strengthening your calves and hips also lowers the risk."),
        ("What should I eat before a morning run?", ("eat", "run"), ("banana", "toast", "carbohydrate"),
         "Before a morning run, eat something small and easy to digest, such as a banana or a slice of toast. "
         "Simple carbohydrates give quick energy without upsetting your stomach. "
         "Eat about thirty to sixty minutes before you head out. "
         "For runs under an hour, water is usually enough during the run itself."),
        ("How many rest days do runners need?", ("rest",), ("one or two", "at least one"),
         "Most runners need at least one or two rest days a week. "
         "Beginners benefit from a rest day after every run. "
         "Easy cross training, such as cycling or swimming, can replace some rest days. "
         "Persistent soreness or fatigue is a sign you need more rest."),
    ),
    _topic(
        "budgeting", "Managing a personal budget",
        ("How do I make a simple monthly budget?", ("budget",), ("income", "expenses"),
         "Start a monthly budget by writing down your income after tax and listing all your regular expenses. "
         "Sort the expenses into needs, wants and savings. "
         "A popular rule of thumb is fifty percent for needs, thirty percent for wants and twenty percent for savings. "
         "Review the numbers at the end of each month and adjust."),
        ("How big should an emergency fund be?", ("emergency",), ("three to six months", "six months"),
         "An emergency fund should usually cover three to six months of essential expenses. "
         "Keep it in a separate savings account that you can reach quickly. "
         "Start with a smaller goal, such as one month of expenses, if the full amount feels far away. "
         "Only use it for real emergencies like a job loss or an urgent repair."),
        ("Should I pay off debt or save first?", ("debt", "sav"), ("high interest",),
         "Pay off high-interest debt such as credit cards first, because its interest usually outpaces what "
         "savings earn. "
         "Keep a small emergency buffer while you do it, so a surprise bill does not push you back into debt. "
         "Always make at least the minimum payment on every loan. "
         "Once the expensive debt is gone, redirect those payments into savings."),
        ("How can I cut my grocery spending?", ("grocer", "spend"), ("plan", "list"),
         "Cut grocery spending by planning your meals for the week and shopping from a list. "
         "Buy store brands and staples such as rice, beans and oats in bulk. "
         "Check what you already have before you shop, so food does not go to waste. "
         "Avoid shopping when you are hungry, since it leads to impulse buys."),
    ),
    _topic(
        "sleep", "Sleeping better",
        ("How much sleep does an adult need?", ("sleep", "adult"), ("seven to nine",),
         "Most adults need seven to nine hours of sleep a night. "
         "Regularly sleeping less than seven hours is linked to poorer mood, focus and health. "
         "Needs vary a little between people, so notice how rested you feel. "
         "Keeping the same schedule, even on weekends, matters as much as the total."),
        ("Does screen time before bed hurt sleep?", ("screen", "bed", "sleep"), ("blue light", "melatonin"),
         "Screens before bed can hurt sleep, partly because their blue light delays the release of melatonin. "
         "Engaging content also keeps your mind alert when it should be winding down. "
         "Try to put devices away thirty to sixty minutes before bed. "
         "If you must use them, dim the screen and turn on a night mode."),
        ("Is it bad to drink coffee in the afternoon?", ("coffee", "afternoon"), ("caffeine",),
         "Coffee in the afternoon can disturb your sleep, because caffeine stays in the body for many hours. "
         "Its half-life is about five hours, so half of a 3 pm cup is still active at 8 pm. "
         "Sensitive people should stop caffeine by early afternoon. "
         "Switch to decaf or herbal tea later in the day."),
        ("What can I do if I can't fall asleep?", ("asleep", "sleep"), ("get up", "twenty minutes"),
         "If you cannot fall asleep after about twenty minutes, get up and do something calm in dim light. "
         "Go back to bed only when you feel sleepy. "
         "This keeps your brain from linking the bed with lying awake. "
         "Slow breathing or a body scan can also help you relax."),
    ),
    _topic(
        "python", "Learning Python",
        ("How do I read a text file in Python?", ("file", "read"), ("open",),
         "Read a text file in Python with the built-in open function inside a with statement. "
         "Calling read on the file object returns the whole text as one string. "
         "Looping over the file object gives you one line at a time, which saves memory. "
         "The with block closes the file for you when it ends."),
        ("What is the difference between a list and a tuple?", ("list", "tuple"), ("immutable",),
         "A list can be changed after you create it, while a tuple is immutable. "
         "Lists use square brackets and tuples use parentheses. "
         "Because tuples never change, they can serve as dictionary keys. "
         "Use a list for a collection that grows and a tuple for a fixed group of values."),
        ("How do I install a package with pip?", ("pip", "package", "install"), ("pip install",),
         "Install a package by running pip install followed by the package name in your terminal. "
         "Do it inside a virtual environment, so each project keeps its own packages. "
         "You can create one with python -m venv and then activate it. "
         "To record what you installed, run pip freeze and save the output to a requirements file."),
        ("Why does my Python code say IndentationError?", ("indent",), ("spaces", "tabs"),
         "An indentation error means the spaces at the start of a line do not line up with the block around it. "
         "Python uses indentation to mark blocks, so every line in a block needs the same amount. "
         "Mixing tabs and spaces is a common cause. "
         "Set your editor to insert four spaces when you press the tab key."),
    ),
    _topic(
        "japan", "Planning a trip to Japan",
        ("When is the best time to visit Japan?", ("japan", "visit"), ("spring", "autumn"),
         "Spring and autumn are the best times to visit Japan. "
         "Late March to early April brings the cherry blossoms, and October to November brings mild weather "
         "and red leaves. "
         "Summer is hot and humid, with a rainy season in June. "
         "Winter is quiet and good for skiing in the north."),
        ("Is the Japan Rail Pass worth it?", ("rail pass", "pass"), ("long distance", "bullet train"),
         "The Japan Rail Pass is worth it mainly if you take several long-distance bullet train trips. "
         "Since its price rose in 2023, a simple Tokyo and Kyoto round trip often costs less with single tickets. "
         "Add up the fares of your planned trips before you buy. "
         "Regional passes can be better value if you stay in one part of the country."),
        ("How do I pay for things in Japan?", ("pay", "japan"), ("cash", "ic card"),
         "To pay for things in Japan, carry some cash, because small shops, temples and rural restaurants may "
         "not take cards. "
         "Rechargeable IC cards such as Suica or Pasmo work on trains, buses and in many convenience stores. "
         "Credit cards are widely accepted in cities, hotels and department stores. "
         "Convenience store ATMs usually accept foreign cards."),
        ("What etiquette should I know in Japan?", ("etiquette", "japan"), ("shoes", "tip"),
         "Basic etiquette in Japan starts with taking off your shoes in homes, temples and some restaurants. "
         "Tipping is not expected and can even cause confusion. "
         "Keep your voice down on trains and avoid phone calls there. "
         "When you pay, place the money in the small tray instead of handing it over."),
    ),
    _topic(
        "puppy", "Training a new puppy",
        ("How do I house-train a puppy?", ("house train", "puppy"), ("outside", "schedule"),
         "House-train a puppy by taking it outside on a regular schedule: after waking, after meals and every "
         "couple of hours. "
         "Praise it or give a treat the moment it goes in the right spot. "
         "Clean accidents with an enzyme cleaner so the smell does not draw it back. "
         "Never punish accidents, since that only teaches it to hide."),
        ("How do I stop my puppy from biting?", ("bit", "nip"), ("toy", "redirect"),
         "Stop puppy biting by redirecting it to a chew toy each time it nips you. "
         "If it keeps biting, end play for a minute so it learns that teeth end the fun. "
         "A short yelp can startle some puppies into letting go. "
         "Plenty of sleep helps too, since tired puppies bite more."),
        ("How long can a puppy be left alone?", ("alone", "puppy"), ("month of age", "per month"),
         "A puppy can usually be left alone for about one hour per month of age, up to around four hours. "
         "Start with short absences of a few minutes and build up slowly. "
         "Leave a safe chew toy and a comfortable crate or pen. "
         "A midday visit from a friend or dog walker helps on long workdays."),
        ("When should a puppy start obedience training?", ("obedience", "training", "train"), ("eight weeks",),
         "A puppy can start simple obedience training as early as eight weeks old. "
         "Begin with its name, sit and come, in sessions of five minutes or less. "
         "Reward each success right away with a small treat or praise. "
         "Puppy classes after the first vaccinations also help with socialization."),
    ),
)
QUESTIONS: Mapping[str, Question] = {q.id: q for t in TOPICS for q in t.questions}
_TOPIC_BY_ID: Mapping[str, Topic] = {t.id: t for t in TOPICS}


def get_topic(tid: str) -> Topic:
    try:
        return _TOPIC_BY_ID[tid]
    except KeyError:
        raise ConfigError(f"unknown follow-up topic {tid!r}", hint=f"topics: {', '.join(_TOPIC_BY_ID)}") from None


def find_question(message: str) -> Question | None:
    """The bank question a user message asks (verbatim when it holds one, else best word overlap).

    This is the scripted assistant's "world knowledge": it reads the request, not any hidden state.
    """
    low = message.lower()
    verbatim = [q for q in QUESTIONS.values() if q.text.lower() in low]
    if verbatim:
        return max(verbatim, key=lambda q: (low.rfind(q.text.lower()), len(q.text)))
    words = set(_words(message))
    best, best_overlap = None, 1
    for q in QUESTIONS.values():
        overlap = len(words & set(_words(q.text)) - _STOPWORDS)
        if overlap > best_overlap:
            best, best_overlap = q, overlap
    return best


_STOPWORDS = frozenset({
    "a", "an", "the", "i", "my", "me", "do", "does", "how", "what", "when", "why", "is", "it", "to", "of",
    "in", "on", "for", "and", "or", "should", "can", "be", "i'm", "you", "your", "with", "at", "so",
    "that", "this", "from", "much", "many", "long", "if",
})


def _normalize(text: str) -> str:
    text = text.lower().replace("’", "'").replace("‘", "'")
    return re.sub(r"(?<=\w)-(?=\w)", " ", text)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z][a-z']*", _normalize(text))


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


# --- conversation text ----------------------------------------------------------------------------

_HEADER_RE = re.compile(r"^\[(user|assistant)\]$", re.MULTILINE)


def render_conversation(messages: Sequence[Message]) -> str:
    """The conversation as text: each turn under a ``[user]`` / ``[assistant]`` header line."""
    return "\n\n".join(f"[{m.role}]\n{m.content}" for m in messages if m.role in ("user", "assistant"))


def parse_conversation(text: str) -> Transcript:
    """Inverse of :func:`render_conversation` (a turn whose text holds a header line splits there)."""
    heads = list(_HEADER_RE.finditer(text))
    out = []
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        content = text[m.end() + 1 : end]
        if i + 1 < len(heads) and content.endswith("\n\n"):
            content = content[:-2]
        out.append(Message(m.group(1), content))  # type: ignore[arg-type]
    return tuple(out)


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
