"""Judges: the combination formula on all 16 answer combinations, unparseable answers, parsing,
the LLM judge with a scripted model, the programmatic judge and agreement statistics."""

from __future__ import annotations

import itertools
import json

import pytest

from persona_lab.eval.metrics import cohen_kappa
from persona_lab.eval.prefeval.report import agreement
from persona_lab.models.base import ChatRequest
from persona_lab.simulators.prefeval.data import Verifiable
from persona_lab.simulators.prefeval.judges import (
    LLMJudge,
    ProgrammaticJudge,
    acknowledgement_prompt,
    combine_checks,
    hallucination_prompt,
    helpfulness_prompt,
    parse_yes_no,
    violation_prompt,
)
from persona_lab.testing import FakeChatModel

# (acknowledged, violated, hallucinated, helpful) -> (followed, errors); written out by hand.
TABLE = {
    (False, False, False, False): (False, ("unhelpful",)),
    (False, False, False, True): (True, ()),
    (False, False, True, False): (False, ("unhelpful",)),  # hallucination ignored without acknowledgement
    (False, False, True, True): (True, ()),
    (False, True, False, False): (False, ("unhelpful", "preference_unaware_violation")),
    (False, True, False, True): (False, ("preference_unaware_violation",)),
    (False, True, True, False): (False, ("unhelpful", "preference_unaware_violation")),
    (False, True, True, True): (False, ("preference_unaware_violation",)),
    (True, False, False, False): (False, ("unhelpful",)),
    (True, False, False, True): (True, ()),
    (True, False, True, False): (False, ("unhelpful",)),
    (True, False, True, True): (True, ()),  # a wrong quote but no violation still follows
    (True, True, False, False): (False, ("unhelpful", "inconsistency_violation")),
    (True, True, False, True): (False, ("inconsistency_violation",)),
    (True, True, True, False): (False, ("unhelpful", "hallucination_violation")),
    (True, True, True, True): (False, ("hallucination_violation",)),
}


def test_table_covers_all_16_combinations() -> None:
    assert set(TABLE) == set(itertools.product([False, True], repeat=4))


@pytest.mark.parametrize("answers", sorted(TABLE))
def test_combination_formula(answers: tuple[bool, bool, bool, bool]) -> None:
    status, followed, errors = combine_checks(*answers)
    ack, violated, _halluc, helpful = answers
    assert status == "judged"
    assert followed == ((not violated) and helpful)  # accuracy = not violated and helpful
    assert (followed, errors) == TABLE[answers]


@pytest.mark.parametrize(
    "answers",
    [
        (None, False, False, True),
        (False, None, False, True),
        (False, False, False, None),
        (True, False, None, True),  # acknowledged, but the hallucination answer was unparseable
        (None, None, None, None),
    ],
)
def test_unparseable_answers_are_unjudged_never_accurate(answers) -> None:
    assert combine_checks(*answers) == ("unjudged", None, ())


def test_unparsed_hallucination_irrelevant_without_acknowledgement() -> None:
    assert combine_checks(False, False, None, True) == ("judged", True, ())


@pytest.mark.parametrize(
    ("text", "answer", "quote"),
    [
        ('{"reasoning": "it mentions nuts", "answer": "yes", "preference": "your nut allergy"}', True, "your nut allergy"),
        ('Sure! ```json\n{"answer": "No"}\n```', False, ""),
        ('{"answer": true}', True, ""),
        ("Answer: yes\nPreference: avoids seafood", True, "avoids seafood"),
        ("answer = NO.", False, ""),
        ("Yes, it does.", True, ""),
        ("no", False, ""),
        ("Answer: yes. Actually, answer: no.", None, ""),
        ("It is hard to say.", None, ""),
        ('{"answer": "maybe"}', None, ""),
        ("", None, ""),
    ],
)
def test_parse_yes_no(text: str, answer: bool | None, quote: str) -> None:
    got = parse_yes_no(text)
    assert got.answer is answer
    if answer is not None:
        assert got.quote == quote


def test_prompts_differ_by_input_and_ask_for_json() -> None:
    for fn, args in [
        (acknowledgement_prompt, ("q1", "r1")),
        (violation_prompt, ("p1", "q1", "r1")),
        (hallucination_prompt, ("p1", "quote1")),
        (helpfulness_prompt, ("q1", "r1")),
    ]:
        a, b = fn(*args), fn(*(x.replace("1", "2") for x in args))
        assert a != b and '"answer"' in a
        assert all(x in a for x in args)


def _scripted_judge(answers: dict[str, str]) -> FakeChatModel:
    def respond(req: ChatRequest) -> str:
        text = req.messages[-1].content
        if "Does the answer explicitly mention" in text:
            return answers["ack"]
        if "goes against the user's preference" in text:
            return answers["violation"]
        if "made up" in text:
            return answers["hallucination"]
        return answers["helpful"]

    return FakeChatModel(respond)


def test_llm_judge_acknowledged_and_followed() -> None:
    model = _scripted_judge(
        {
            "ack": json.dumps({"answer": "yes", "preference": "you avoid peanuts"}),
            "violation": '{"answer": "no"}',
            "hallucination": '{"answer": "no"}',
            "helpful": '{"answer": "yes"}',
        }
    )
    v = LLMJudge(model).judge("I avoid peanuts.", "Snack ideas?", "Since you avoid peanuts, try trail mix.")
    assert (v.status, v.followed, v.acknowledged, v.hallucinated, v.errors) == ("judged", True, True, False, ())
    assert model.calls == 2  # three checks in one batch, the hallucination check after
    halluc_req = model.requests[-1].messages[-1].content
    assert "you avoid peanuts" in halluc_req


def test_llm_judge_skips_hallucination_check_and_reports_unparsed() -> None:
    model = _scripted_judge({"ack": '{"answer": "no"}', "violation": "hmm", "hallucination": "-", "helpful": '{"answer": "yes"}'})
    v = LLMJudge(model).judge("p", "q", "r")
    assert (v.status, v.followed) == ("unjudged", None)
    assert "hallucination" not in v.detail and v.detail["violation"]["raw"] == "hmm"
    assert model.calls == 1


def test_programmatic_judge() -> None:
    j = ProgrammaticJudge(min_words=5)
    ver = Verifiable(forbid=("peanut", "peanut butter"), require_any=("trail mix", "fruit"))
    ok = j.judge(ver, "For your hike, pack trail mix with no peanuts and some fresh fruit.")
    assert (ok.status, ok.followed, ok.violated, ok.helpful) == ("judged", True, False, True)
    bad = j.judge(ver, "Pack a peanut butter sandwich and some fruit for the trail.")
    assert bad.followed is False and bad.errors == ("violation",) and "peanut" in bad.detail["forbidden_mentioned"]
    missing = j.judge(ver, "Pack crackers and cheese, they keep well on hikes.")
    assert missing.violated is True and missing.detail["required_mentioned"] == []
    gluten = j.judge(Verifiable(forbid=("gluten",)), "Try Wildflower Bakery, which is fully gluten-free and cosy.")
    assert gluten.violated is False
    refusal = j.judge(ver, "I'm sorry, but I can't help with trail mix or fruit questions today.")
    assert refusal.helpful is False and refusal.errors == ("unhelpful",)
    assert j.judge(None, "x").status == "no_judge"
    assert not j.applies(Verifiable()) and j.applies(ver)


def test_agreement_and_kappa() -> None:
    pairs = [(True, True)] * 4 + [(False, False)] * 4 + [(True, False), (False, True)]
    a = agreement(pairs)
    assert a["n"] == 10 and a["rate"] == pytest.approx(0.8)
    assert a["kappa"] == pytest.approx(0.6)  # po 0.8, pe 0.5
    assert agreement([])["kappa"] is None and agreement([(True, True)] * 3)["kappa"] is None
    assert agreement([(True, False), (False, True)])["kappa"] == pytest.approx(-1.0)
    assert cohen_kappa([True, False], [False, True]) == pytest.approx(-1.0)


def test_programmatic_judge_with_catalog_ids() -> None:
    catalog = pytest.importorskip("persona_lab.simulators.catalog")
    j = ProgrammaticJudge(min_words=3)
    ver = Verifiable(catalog=("format.numbered",))
    assert j.applies(ver)
    plain = "Walk the coastal path first. Then visit the botanic garden. Finally, eat at the market."
    numbered = catalog.apply_preferences(plain, ["format.numbered"])  # the catalog's own editor
    assert catalog.satisfied(numbered, ["format.numbered"]) == {"format.numbered": True}
    assert j.judge(ver, numbered).followed is True
    bad = j.judge(ver, plain)
    assert bad.violated is True and bad.detail["catalog_satisfied"] is False


def test_loader_rejects_unknown_catalog_ids(tmp_path, make_dataset) -> None:
    pytest.importorskip("persona_lab.simulators.catalog")
    import json

    from persona_lab.simulators.prefeval.data import load_prefeval

    root = make_dataset(tmp_path)
    path = root / "explicit_preference" / "snacks.json"
    rows = json.loads(path.read_text())
    rows[0]["verifiable"] = {"catalog": ["format.numberd"]}
    path.write_text(json.dumps(rows))
    (err,) = [p for p in load_prefeval(root).problems if p.severity == "error"]
    assert (err.row, err.field) == (0, "verifiable.catalog") and "did you mean 'format.numbered'" in err.message


def test_programmatic_judge_flags_degenerate_repetition() -> None:
    from persona_lab.simulators.prefeval.judges import is_degenerate

    looped = "Here are some albums:\n" + "\n".join(f'{i}. "The Sound of Live Music" by The Cure' for i in range(1, 8))
    varied = "Try Daft Punk's Discovery. Add Dua Lipa's Future Nostalgia. Chic's greatest hits keep the tempo up. Finish with Bruno Mars."
    assert is_degenerate(looped) and not is_degenerate(varied)
    v = ProgrammaticJudge().judge(Verifiable(forbid=("metallica",)), looped)
    assert (v.helpful, v.followed, v.detail["degenerate"]) == (False, False, True)


TALE_LOOP = (
    "The album I would suggest is a journey through sound, a tale of the unknown, and a tale of the unknown, "
    "and a tale of the unknown, and a tale of the unknown, and a tale of the unknown, and a tale of the unknown."
)
GOOD_START_LOOPING_TAIL = (
    "For a relaxing evening, start with a caffeine-free chamomile or peppermint tea, which most cafes serve. "
    "If you want something richer, ask for a steamed oat milk with honey and cinnamon. "
    + "You can also try the the the hot chocolate, " * 12
)
ITINERARY = (
    "Day 1: walk the coastal path from Bondi to Coogee and swim at Bronte. "
    "Day 2: visit the Art Gallery of New South Wales and the Royal Botanic Garden. "
    "Day 3: take the train to the Blue Mountains and hike to the Three Sisters lookout. "
    "Day 4: explore the Rocks markets and eat at a laneway cafe in Surry Hills."
)
SHORT_HEALTHY = "For the evening, order a caffeine-free herbal tea such as chamomile, or a warm steamed milk with honey."


@pytest.mark.parametrize(
    ("text", "degenerate"),
    [
        (TALE_LOOP, True),  # a phrase looping inside one sentence (the SmolLM2 answer from the issue)
        ("\n".join(f"{i}. Visit the museum of modern art in the city centre" for i in range(1, 9)), True),  # same line
        (GOOD_START_LOOPING_TAIL, True),  # sane start, looping tail
        ("Pack pack pack pack pack pack pack pack pack pack pack pack pack pack pack pack pack pack pack pack pack pack pack pack.", True),
        (ITINERARY, False),  # shared structure ("Day N: ...") is not repetition
        (SHORT_HEALTHY, False),
        ("Try Daft Punk's Discovery. Add Dua Lipa's Future Nostalgia. Chic's greatest hits keep the tempo up.", False),
        ("You can take the train, or you can take the bus, and you can also walk along the river path to the old town.", False),
    ],
)
def test_degenerate_table(text: str, degenerate: bool) -> None:
    from persona_lab.simulators.prefeval.judges import is_degenerate

    assert is_degenerate(text) is degenerate


@pytest.mark.parametrize(
    ("question", "answer", "ignores"),
    [
        ("What should I order at a cafe in the evening?", SHORT_HEALTHY, False),  # "evening" in both
        ("What should I order at a cafe in the evening?", "Volcanoes form where magma rises through the crust near plate boundaries.", True),
        ("How should I spend a day in Sydney?", ITINERARY, False),  # "day" in both
        ("What snack should I pack for a long hike?", "For hiking, sunflower-seed trail mix and dried apricots travel well.", False),  # hike ~ hiking
        ("Any ideas?", "Magma rises through the crust.", False),  # too little in the question to compare
    ],
)
def test_ignores_question_table(question: str, answer: str, ignores: bool) -> None:
    from persona_lab.simulators.prefeval.judges import ignores_question

    assert ignores_question(question, answer) is ignores


def test_programmatic_judge_not_fooled_by_degenerate_or_off_topic_answers() -> None:
    j = ProgrammaticJudge()
    ver = Verifiable(forbid=("coffee", "espresso", "latte"))
    loop = j.judge(ver, TALE_LOOP, "What album should I listen to tonight?")
    assert (loop.helpful, loop.followed, loop.detail["degenerate"]) == (False, False, True)
    assert loop.detail["repeated_4gram_ratio"] > 0.5
    off = j.judge(ver, "Volcanoes form where magma rises through the crust near plate boundaries, often under the sea.",
                  "What should I order at a cafe in the evening?")
    assert (off.helpful, off.followed, off.detail["ignores_question"]) == (False, False, True)
    good = j.judge(ver, SHORT_HEALTHY, "What should I order at a cafe in the evening?")
    assert (good.helpful, good.followed) == (True, True)


def test_agreement_counts_disagreements_each_way() -> None:
    a = agreement([(True, True), (True, False), (True, False), (False, True), (False, False)])
    assert (a["disagree"], a["llm_only_followed"], a["programmatic_only_followed"]) == (3, 2, 1)
