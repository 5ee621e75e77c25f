"""Classification parsing and seeded shuffles; the registered methods."""

from __future__ import annotations

from pathlib import Path

import pytest

from persona_lab.core.errors import UnknownNameError
from persona_lab.eval.prefeval.methods import (
    METHODS,
    MethodOptions,
    cot_prefix,
    create_method,
    reminder_text,
)
from persona_lab.models.base import GenerationParams
from persona_lab.simulators.prefeval.classification import (
    classification_question,
    parse_choice,
    shuffle_options,
)
from persona_lab.simulators.prefeval.context import build_context
from persona_lab.simulators.prefeval.data import load_filler, load_prefeval
from persona_lab.testing import FakeChatModel

OPTIONS = ("Herbal tea.", "A double espresso.", "A vanilla latte.", "Cold brew coffee.")


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("B", "B"),
        ("b", "B"),
        ("(B)", "B"),
        ("Answer: b", "B"),
        ("The answer is B.", "B"),
        ("The answer is B because it fits you.", "B"),
        ("B) A double espresso.", "B"),
        ("**C**", "C"),
        ("C.", "C"),
        ("I would choose option D.", "D"),
        ("Final answer: (a)", "A"),
        ("Option A would ignore your preference, so the answer is C.", "C"),  # the answer phrase wins
        ("I think herbal tea is best.", "A"),  # quotes exactly one option
        ("A or B", None),
        ("(A) or (B)", None),
        ("The answer is a bit tricky.", None),  # 'a' is an article here
        ("A latte is a nice drink.", None),
        ("Answer: B. Actually, answer: C.", None),
        ("", None),
        ("I cannot decide.", None),
        # the paper's XML format, whole or after a pre-filled "<choice>"
        ("<choice>B</choice>", "B"),
        ("<choice> (d) </choice>", "D"),
        ("<choice>C</choice> because you avoid caffeine, not (A).", "C"),  # the tag wins over later markers
        ("<choice>A", "A"),
        ("<choice>A</choice><choice>B</choice>", None),  # two tags: ambiguous
        ("<choice>[A/B/C/D]</choice>", None),  # the format echoed back
        ("The answer is: D", "D"),
        ("The best answer is: (c).", "C"),
        ("My answer would be: B", "B"),
        ("I choose (B) over (C)", "B"),
        ("(C)", "C"),
        ("Option (C) fits best, then (A).", None),
    ],
)
def test_parse_choice(text: str, letter: str | None) -> None:
    assert parse_choice(text, OPTIONS) == letter


def test_shuffle_is_seeded_per_item_and_tracks_the_correct_option() -> None:
    a = shuffle_options(OPTIONS, "topic/3")
    assert a == shuffle_options(OPTIONS, "topic/3")  # stable
    assert a.options[a.order.index(0)] == OPTIONS[0] and a.options[ord(a.correct_letter) - 65] == OPTIONS[0]
    assert sorted(a.options) == sorted(OPTIONS)
    orders = {shuffle_options(OPTIONS, f"topic/{i}").order for i in range(40)}
    assert len(orders) > 8  # items get different orders
    letters = {shuffle_options(OPTIONS, f"topic/{i}").correct_letter for i in range(40)}
    assert letters == set("ABCD")  # the correct answer is not always A
    assert {shuffle_options(OPTIONS, "topic/3", seed=s).order for s in range(10)} != {a.order}


def test_classification_question_lists_options() -> None:
    q = classification_question("What should I order?", OPTIONS)
    assert q.question == "What should I order?" and q.instruction == ""
    assert "(A) Herbal tea." in q.suffix and "(D) Cold brew coffee." in q.suffix and "letter" in q.suffix


def test_registry() -> None:
    assert set(METHODS.names()) == {"zero-shot", "reminder", "self-critic", "cot", "rag"}
    assert all(e.help for e in METHODS.entries())
    with pytest.raises(UnknownNameError, match="did you mean 'reminder'"):
        create_method("remider")
    assert create_method("self-critic").tasks == frozenset({"generation"})


@pytest.fixture
def ctx(tiny_data: Path):
    ds = load_prefeval(tiny_data)
    return build_context(ds.items[1], "explicit", 6, load_filler(tiny_data / "filler.json"), explicit_reply="Noted.")


def test_reminder_and_cot_keep_method_text_separable(ctx) -> None:
    r = create_method("reminder").prepare(ctx).final
    assert r.question == ctx.final.question and r.suffix == reminder_text() and r.prefix == ""
    c = create_method("cot").prepare(ctx).final
    assert c.prefix == cot_prefix() and c.prefix.count("Example ") == 5 and c.question == ctx.final.question
    assert create_method("zero-shot").prepare(ctx).final == ctx.final


def test_self_critic_makes_three_calls(ctx) -> None:
    model = FakeChatModel(["draft answer", "The draft suggests espresso, which ignores your preference.", "final answer"])
    m = create_method("self-critic", MethodOptions(answer_words=120))
    out = m.respond(model, ctx, m.prepare(ctx), GenerationParams(max_new_tokens=10))
    assert out.response == "final answer" and len(out.completions) == 3
    assert [s["kind"] for s in out.steps] == ["draft", "critique_request", "critique", "revision_request"]
    last = model.requests[-1].messages
    assert last[: len(ctx.messages())] == ctx.messages()  # full history kept
    assert last[-1].content.endswith("120 words.") and last[-2].content.startswith("The draft suggests")


def test_rag_retrieves_the_preference_and_keeps_history(ctx) -> None:
    m = create_method("rag", MethodOptions(rag_k=2, rag_encoder="tfidf"))
    prep = m.prepare(ctx)
    hits = prep.info["retrieved"]
    assert len(hits) == 2 and hits[0]["index"] == 0  # the user's coffee preference is most similar
    assert ctx.item.explicit.preference in prep.final.prefix
    assert prep.final.question == ctx.final.question
    model = FakeChatModel("ok")
    m.respond(model, ctx, prep, GenerationParams(max_new_tokens=5))
    sent = model.requests[0].messages
    assert sent[:-1] == ctx.history and sent[-1].content.startswith("Earlier messages")
    # the filler vectors are computed once and reused across items and shorter contexts
    assert len(m._filler_vecs[ctx.filler_sha]) == len(ctx.filler)


def test_rag_pickles_without_its_encoder(ctx) -> None:
    import pickle

    m = create_method("rag", MethodOptions(rag_k=3, rag_encoder="tfidf"))
    m.prepare(ctx)
    clone = pickle.loads(pickle.dumps(m))
    assert clone.k == 3 and clone._encoder is None
