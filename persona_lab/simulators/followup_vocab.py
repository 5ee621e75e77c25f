"""The follow-up world's public vocabulary: the question bank and the conversation's text form.

What an assistant may know without seeing a user's hidden persona: the questions users ask, with the
keywords, answer terms and reference facts that make an answer checkable (the scripted assistant's
"world knowledge"), and how a conversation is written as text in observations. Agents import this
module, never :mod:`persona_lab.simulators.followup` (the users' logic).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from persona_lab.core.errors import ConfigError
from persona_lab.core.messages import Message, Transcript

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
    words = set(words_of(message))
    best, best_overlap = None, 1
    for q in QUESTIONS.values():
        overlap = len(words & set(words_of(q.text)) - _STOPWORDS)
        if overlap > best_overlap:
            best, best_overlap = q, overlap
    return best


_STOPWORDS = frozenset({
    "a", "an", "the", "i", "my", "me", "do", "does", "how", "what", "when", "why", "is", "it", "to", "of",
    "in", "on", "for", "and", "or", "should", "can", "be", "i'm", "you", "your", "with", "at", "so",
    "that", "this", "from", "much", "many", "long", "if",
})


def normalize_text(text: str) -> str:
    """Lower case, straight quotes, hyphens between letters as spaces (for word matching)."""
    text = text.lower().replace("’", "'").replace("‘", "'")
    return re.sub(r"(?<=\w)-(?=\w)", " ", text)


def words_of(text: str) -> list[str]:
    """The words of ``text``, normalized (:func:`normalize_text`)."""
    return re.findall(r"[a-z][a-z']*", normalize_text(text))


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
