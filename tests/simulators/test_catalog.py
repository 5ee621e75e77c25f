"""Properties of the verifiable preference catalog (persona_lab.simulators.catalog)."""

from __future__ import annotations

import itertools
import pickle
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persona_lab.core.errors import ConfigError, UnknownNameError
from persona_lab.simulators.catalog import (
    CATALOG,
    FAMILIES,
    apply_preferences,
    canonical_order,
    compatible,
    describe,
    get_preference,
    recognize,
    rules,
    sample_compatible,
    satisfied,
)
from persona_lab.simulators.catalog.layout import CTA_LINE, QUESTION_LINE

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
IDS = list(CATALOG)

SENTENCES = [
    "The city council approved a new budget on Tuesday.",
    "It's expected to pass the state review next month, although critics don't agree.",
    "Furthermore, the mayor said the plan is ambitious and will create jobs across the region, "
    "especially in the older industrial districts near the river.",
    "Residents can't wait!",
    "Why does this matter to you?",
    "We think the results are promising 🎉.",
    "I loved the second act; the third one dragged on for far too long without any real payoff "
    "for the characters we had followed since the opening scene.",
    "Please reply by Friday.",
    "Let me know what you think.",
    "In short, the model uses fewer parameters.",
    "Yeah, it's kinda cool!!!",
    "Researchers at the university studied 1,200 patients over five years.",
    "Thus, the effect is small; nevertheless it is consistent.",
    "This paper introduces a new method for learning from user edits.",
    "Thanks for the thoughtful review.",
    "You're going to love this 😊",
    "e.g. 3.5 million people, i.e. most of them.",
    "A sentence without a final stop",
    "What a day?! Truly ⁉",
    "Café owners in Zürich said “it’s fine” — mostly.",
    "Ok",
    "…",
]
STRUCTURE_LINES = [
    "- a first point",
    "* another point.",
    "1. First step.",
    "2) Second step",
    "Q: What happened?",
    "A: The council voted.",
    "## Results",
    "#",
    "-",
    "Hi there,",
    "Dear Dr. Smith,",
    "Hello",
    "Best regards,",
    "Thanks!",
    "Many thanks,",
    "[Your Name]",
    "Alex",
    "TL;DR: the budget passed.",
    "TL;DR:",
    "Key takeaway: it passed.",
    CTA_LINE,
    QUESTION_LINE,
    "",
    "   ",
    "\t- indented bullet",
    "🎉🎉",
]

# fragments that sit on the seams between preferences (markers, frame lines, contractions, marks)
# fmt: off
TOKENS = [
    "word", "Word", " ", " ", "  ", "\n", "\n", "\n\n", "\t", "\r", ".", ",", "!", "?", ";", ":", "…",
    "'", "- ", "* ", "1. ", "3) ", "Q: ", "A: ", "## ", "#", "TL;DR: ", "Key takeaway: ", "Hi",
    "Dear all,", "Best regards,", "Thanks", "Many thanks,", "[Your Name]", CTA_LINE, QUESTION_LINE,
    "don't", "it is ", "do not ", "I am ", "thus", "gonna", "you", "we", "my", "please", "🎉", "✨",
    "\ufe0f", "\u200d", "⁉", "！", "\u017forta", "\u212ainda", "İt is ", "ı'm", "thuſ", "0", "999",
    "let me know", "The", "\u00a0", "”", ")",
]
# fmt: on
token_text = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)
prose_line = st.lists(st.sampled_from(SENTENCES), min_size=1, max_size=4).map(" ".join)
arbitrary = st.text(max_size=60)
line = st.one_of(prose_line, prose_line, st.sampled_from(STRUCTURE_LINES), arbitrary)
texts = st.one_of(
    token_text,
    st.lists(line, max_size=9).map("\n".join),
    st.lists(line, max_size=6).map("\n\n".join),
    arbitrary,
    st.lists(prose_line, min_size=1, max_size=12).map(" ".join),  # one long paragraph
)


# --- each preference on its own --------------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(text=texts)
def test_every_editor_output_passes_its_checker_and_passing_text_is_left_alone(text: str) -> None:
    # the fast contraction test agrees with the reference regex the formal editor substitutes with
    assert rules._has_contraction(text) == (rules.CONTRACTION_RE.search(text) is not None)
    for pid, pref in CATALOG.items():
        out = pref.edit(text)
        assert pref.check(out), (pid, text, out)
        assert pref.edit(out) == out, (pid, text, out)
        if pref.check(text):
            assert out == text, (pid, text, out)


@pytest.mark.parametrize("text", ["", "   \n\t", "!!!", "🎉", "...", "\n\n"])
def test_vacuous_texts_satisfy_presence_preferences(text: str) -> None:
    """No words in the body: nothing to format, and every editor output still passes."""
    for pref in CATALOG.values():
        out = pref.edit(text)
        assert pref.check(out)
        assert not any(ch.isalnum() for ch in out)


def test_editors_keep_the_content() -> None:
    text = "The council approved the budget. Critics disagree, and they plan to appeal."
    keep = {"council", "approved", "budget", "critics", "disagree", "appeal"}
    for pid, pref in CATALOG.items():
        if pid.startswith("length."):
            continue
        words = set(re.findall(r"\w+", pref.edit(text).lower()))
        assert keep <= words, pid


def test_some_concrete_edits() -> None:
    text = "We can't stay. It's late!"
    assert get_preference("tone.formal").edit(text) == "We cannot stay. It is late!"
    assert get_preference("format.bullets").edit(text) == "- We can't stay.\n- It's late!"
    assert get_preference("format.numbered").edit(text) == "1. We can't stay.\n2. It's late!"
    assert get_preference("tone.no_exclamation").edit(text) == "We can't stay. It's late."
    assert get_preference("markers.no_emojis").edit("Great news 🎉 today") == "Great news today"
    assert get_preference("email.closing").edit("Body.\n") == "Body.\nBest regards,\n"
    assert get_preference("email.no_closing").edit("Body.\nBest regards,\n[Your Name]") == "Body."
    long = " ".join(["One two three four five."] * 20)
    cut = get_preference("length.max_words_50").edit(long)
    assert cut == " ".join(["One two three four five."] * 10)


def test_frame_lines_do_not_count_as_body() -> None:
    text = "Dear all,\n" + " ".join(["word"] * 49) + ".\nPlease let me know what you think.\nBest regards,"
    assert satisfied(text, ["length.max_words_50", "email.closing", "email.greeting_formal"]) == {
        "email.greeting_formal": True,
        "email.closing": True,
        "length.max_words_50": True,
    }
    bulleted = "- one.\n- two.\nWhat do you think?\nMany thanks,\nAlex"
    assert get_preference("format.bullets").check(bulleted)
    assert get_preference("email.thankful_closing").check(bulleted)


# --- sets of preferences ---------------------------------------------------------------------------


def _random_compatible_set(seed: int, size: int) -> list[str]:
    """Any compatible set, not only one per family."""
    rng = np.random.default_rng(seed)
    chosen: list[str] = []
    for i in rng.permutation(len(IDS)):
        pid = IDS[int(i)]
        if len(chosen) < size and compatible([*chosen, pid]):
            chosen.append(pid)
    return chosen


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 4), text=texts)
def test_apply_sampled_sets_satisfies_all_and_is_idempotent(seed: int, k: int, text: str) -> None:
    ids = sample_compatible(np.random.default_rng(seed), k)
    assert len(ids) == k and compatible(ids)
    assert len({CATALOG[i].family for i in ids}) == k
    out = apply_preferences(text, ids)
    assert all(satisfied(out, ids).values()), (ids, text, out, satisfied(out, ids))
    assert apply_preferences(out, ids) == out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(2, 8), text=texts)
def test_apply_any_compatible_set_satisfies_all(seed: int, size: int, text: str) -> None:
    ids = _random_compatible_set(seed, size)
    out = apply_preferences(text, ids)
    assert all(satisfied(out, ids).values()), (ids, text, out, satisfied(out, ids))
    assert apply_preferences(out, ids) == out


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 4), text=texts)
def test_limit_one_applies_only_the_most_salient_violated_editor(seed: int, k: int, text: str) -> None:
    ids = sample_compatible(np.random.default_rng(seed), k)
    violated = [pid for pid, ok in satisfied(text, ids).items() if not ok]
    out = apply_preferences(text, ids, limit=1)
    if not violated:
        assert out == text
        return
    top = max(violated, key=lambda pid: (CATALOG[pid].salience, -IDS.index(pid)))
    assert out == CATALOG[top].edit(text)
    assert CATALOG[top].check(out)
    assert apply_preferences(text, ids, limit=0) == text


def test_limit_one_needs_three_rounds_for_three_violations() -> None:
    ids = ["format.bullets", "markers.emojis", "email.closing"]
    draft = "The council approved the budget. Critics plan to appeal."
    assert not any(satisfied(draft, ids).values())
    seen = [draft]
    for _ in range(3):
        seen.append(apply_preferences(seen[-1], ids, limit=1))
    counts = [sum(satisfied(t, ids).values()) for t in seen]
    assert counts == [0, 1, 2, 3]
    assert apply_preferences(seen[-1], ids, limit=1) == seen[-1]
    assert seen[-1] == apply_preferences(draft, ids)
    # the most salient is fixed first
    assert satisfied(seen[1], ids)["format.bullets"]


# --- conflicts, order, sampling ----------------------------------------------------------------------


def test_catalog_size_and_families() -> None:
    assert len(CATALOG) >= 30
    assert len(FAMILIES) >= 6
    for pid, pref in CATALOG.items():
        assert pref.id == pid and pid.startswith(pref.family + ".")
        assert pref.statement.endswith(".")
        assert 0 < pref.salience <= 1
        assert pref.keywords and all(kw == kw.lower() for kw in pref.keywords)


def test_conflicts_are_symmetric_and_known() -> None:
    for pid, pref in CATALOG.items():
        assert pid not in pref.conflicts
        for other in pref.conflicts:
            assert other in CATALOG
            assert pid in CATALOG[other].conflicts
    assert not compatible(["markers.emojis", "markers.no_emojis"])
    assert not compatible(["tone.casual", "tone.formal"])
    assert not compatible(["structure.ends_with_question", "email.closing"])
    assert compatible(["email.closing", "email.thankful_closing"])


def test_thankful_closing_implies_closing() -> None:
    out = apply_preferences("Body text here.", ["email.thankful_closing"])
    assert satisfied(out, ["email.closing", "email.thankful_closing"]) == {
        "email.closing": True,
        "email.thankful_closing": True,
    }


def test_canonical_order_and_lookup_errors() -> None:
    assert canonical_order(["markers.no_emojis", "format.bullets", "format.bullets"]) == [
        "format.bullets",
        "markers.no_emojis",
    ]
    with pytest.raises(UnknownNameError, match="did you mean 'format.bullets'"):
        get_preference("format.bulets")
    with pytest.raises(UnknownNameError):
        canonical_order(["nope.nothing"])
    with pytest.raises(ConfigError):
        canonical_order("format.bullets")


def test_sample_compatible_is_deterministic_and_validates() -> None:
    a = sample_compatible(np.random.default_rng(7), 4)
    b = sample_compatible(np.random.default_rng(7), 4)
    assert a == b
    only = sample_compatible(np.random.default_rng(1), 2, families=["tone", "email"])
    assert {CATALOG[pid].family for pid in only} == {"tone", "email"}
    excl = sample_compatible(
        np.random.default_rng(3),
        1,
        families=["markers"],
        exclude=["markers.emojis", "markers.questions", "markers.short_sentences"],
    )
    assert excl == ["markers.no_emojis"]
    with pytest.raises(ConfigError):
        sample_compatible(np.random.default_rng(0), len(FAMILIES) + 1)
    with pytest.raises(UnknownNameError, match="did you mean 'format'"):
        sample_compatible(np.random.default_rng(0), 1, families=["formatt"])


def test_preferences_pickle() -> None:
    for pref in CATALOG.values():
        clone = pickle.loads(pickle.dumps(pref))
        assert clone.id == pref.id
        text = "A long first sentence, with a comma. Another one!"
        assert clone.edit(text) == pref.edit(text)


# --- descriptions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("pid", IDS)
def test_each_statement_is_recognized_as_itself(pid: str) -> None:
    assert recognize(CATALOG[pid].statement) == [pid]


def test_describe_round_trips_for_every_compatible_pair() -> None:
    for a, b in itertools.combinations(IDS, 2):
        if compatible([a, b]):
            assert recognize(describe([a, b])) == canonical_order([a, b]), (a, b)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(1, 8))
def test_describe_round_trips(seed: int, size: int) -> None:
    ids = _random_compatible_set(seed, size)
    assert recognize(describe(ids)) == canonical_order(ids)


def test_recognize_free_text_and_negation() -> None:
    assert recognize("no emojis please") == ["tone.polite", "markers.no_emojis"]
    assert recognize("with emojis") == ["markers.emojis"]
    assert recognize("Do NOT use any emojis, keep it brief.") == ["length.brief", "markers.no_emojis"]
    assert recognize("avoid exclamation marks") == ["tone.no_exclamation"]
    assert recognize("informal, conversational, no closing") == ["tone.casual", "email.no_closing"]
    assert recognize("bullet points, parallel structure, brief") == ["format.bullets", "length.brief"]
    assert recognize("question answering style") == ["format.qa"]
    assert recognize("nothing relevant here") == []
    # of two conflicting mentions the longer keyword wins
    assert recognize("emojis, but actually no emojis") == ["markers.no_emojis"]


# The PRELUDE latent preferences (REFERENCE.md) and the catalog items recognize() reads in them.
PRELUDE = {
    "style targeted to young children, storytelling, short sentences, playful language, interactive, "
    "positive": ["markers.questions", "markers.short_sentences", "tone.enthusiastic"],
    "second person narrative, brief, show emotions, invoke personal reflection, immersive": [
        "voice.second_person",
        "structure.takeaway",
        "length.brief",
    ],
    "bullet points, parallel structure, brief": ["format.bullets", "length.brief"],
    "tweet style, simple English, inquisitive, skillful foreshadowing, with emojis": [
        "markers.questions",
        "structure.ends_with_question",
        "markers.short_sentences",
        "length.max_words_50",
        "markers.emojis",
    ],
    "question answering style": ["format.qa"],
    "informal, conversational, no closing": ["tone.casual", "email.no_closing"],
    "structured, straight to the points, respectful, professional greeting and closing": [
        "format.bullets",
        "tone.polite",
        "email.greeting_formal",
        "email.closing",
        "length.brief",
    ],
    "casual tone, positive, clear, call to action": [
        "tone.casual",
        "email.call_to_action",
        "tone.enthusiastic",
    ],
    "engaging, personalized, professional tone, thankful closing": [
        "tone.formal",
        "voice.second_person",
        "markers.questions",
        "email.thankful_closing",
    ],
}


@pytest.mark.parametrize("statement", list(PRELUDE))
def test_prelude_preferences_are_recognized_compatible_and_reachable(statement: str) -> None:
    ids = recognize(statement)
    assert ids == PRELUDE[statement]
    assert compatible(ids)
    for draft in (" ".join(SENTENCES[:6]), "\n".join(SENTENCES[6:12])):
        out = apply_preferences(draft, ids)
        assert all(satisfied(out, ids).values()), (ids, out)
