"""Context builder: preference first, N filler pairs in order, token counts monotone, over-long skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from persona_lab.core.errors import ConfigError
from persona_lab.eval.prefeval.runner import PrefEvalConfig, PrefEvalRunner
from persona_lab.simulators.prefeval.context import (
    ContextConfig,
    FinalUserMessage,
    build_context,
    count_tokens,
    length_instruction,
)
from persona_lab.simulators.prefeval.data import FORMS, load_filler, load_prefeval
from persona_lab.testing import FakeChatModel


@pytest.fixture
def data(tiny_data: Path):
    return load_prefeval(tiny_data), load_filler(tiny_data / "filler.json")


def test_preference_block_comes_first_then_filler_in_order(data) -> None:
    ds, filler = data
    item = ds.items[0]
    for form in FORMS:
        ctx = build_context(item, form, 5, filler, explicit_reply="Noted, no peanuts.")
        msgs = ctx.messages()
        assert msgs[0].role == "system" and msgs[0].content == "You are a helpful assistant."
        block = msgs[1 : 1 + len(ctx.block)]
        assert block == ctx.block
        if form == "explicit":
            assert [m.content for m in block] == [item.explicit.preference, "Noted, no peanuts."]
        elif form == "implicit-choice":
            assert block[2].content == item.choice.user_selection and len(block) == 4
        else:
            assert any(item.persona.preference[3:20].lower() in m.content.lower() for m in block)
        filler_msgs = msgs[1 + len(ctx.block) : -1]
        assert [(filler_msgs[2 * i].content, filler_msgs[2 * i + 1].content) for i in range(5)] == list(filler.pairs[:5])
        assert msgs[-1].role == "user"
        assert msgs[-1].content == f"{item.question} Please answer in no more than 300 words."
        assert ctx.turns == 7


def test_token_counts_grow_with_n(data) -> None:
    ds, filler = data
    model = FakeChatModel()
    for form in FORMS:
        counts = [count_tokens(model, build_context(ds.items[0], form, n, filler, explicit_reply="ok").messages()) for n in range(0, 12, 3)]
        assert counts == sorted(counts) and len(set(counts)) == len(counts)


def test_config_and_final_message_parts(data) -> None:
    ds, filler = data
    ctx = build_context(ds.items[1], "implicit-choice", 0, filler, config=ContextConfig(system_prompt="", answer_words=0))
    assert ctx.messages()[0].role == "user" and ctx.messages()[-1].content == ds.items[1].question
    assert length_instruction(0) == "" and "120 words" in length_instruction(120)
    f = FinalUserMessage("Q?", "Be brief.").with_method_text(prefix="P", suffix="S")
    assert f.text == "P\n\nQ? Be brief.\n\nS" and f.to_dict()["question"] == "Q?"
    with pytest.raises(ConfigError, match="needs the model's own reply"):
        build_context(ds.items[0], "explicit", 0, filler)
    with pytest.raises(ConfigError, match="has 40 turn pairs"):
        build_context(ds.items[0], "implicit-choice", 41, filler)


def test_different_items_render_different_prompts(data) -> None:
    """lm-eval #3930: a template bug once rendered every document into one constant prompt."""
    ds, filler = data
    rendered = {build_context(it, f, 2, filler, explicit_reply="ok").messages() for it in ds.items for f in it.forms()}
    assert len(rendered) == 3 * len(ds.items)


def test_over_long_tests_are_skipped_and_counted(tiny_data: Path, tmp_path: Path) -> None:
    model = FakeChatModel("Sunflower-seed trail mix with dried fruit and a granola bar is a great snack.", context_window=900)
    cfg = PrefEvalConfig(backend="fake", data_dir=str(tiny_data), turns=(0, 30), forms=("implicit-choice",), tasks=("generation",))
    summary = PrefEvalRunner(cfg, model, tmp_path / "run").run()
    recs = [r for r in PrefEvalRunner(cfg, model, tmp_path / "run").records()]
    long = [r for r in recs if r["turns"] == 30]
    assert long and all(r["status"] == "skipped_context" and r["prompt_tokens"] + r["reserve_tokens"] > 900 for r in long)
    assert all("response" not in r for r in long)  # never sent, never truncated
    assert all(r["status"] == "ok" for r in recs if r["turns"] == 0)
    cell = next(c for c in summary["generation"]["cells"] if c["turns"] == 30)
    assert cell["skipped_context"] == 3 and cell["judged"] == 0
    assert summary["metrics"]["prefeval/skipped_context"] == 3
    assert "skipped (context)" in (tmp_path / "run" / "report.md").read_text()


def test_explicit_reply_generated_once_per_item(tiny_data: Path, tmp_path: Path) -> None:
    model = FakeChatModel(lambda r: "Got it." if len(r.messages) == 2 else "an answer")
    cfg = PrefEvalConfig(backend="fake", data_dir=str(tiny_data), turns=(0, 2, 4), forms=("explicit",),
                         methods=("zero-shot", "reminder"), tasks=("generation", "classification"), controls=False)
    PrefEvalRunner(cfg, model, tmp_path / "run", concurrency=4).run()
    reply_requests = [r for r in model.requests if len(r.messages) == 2]
    assert len(reply_requests) == 3  # one per item, shared by 3 turns x 2 methods x 2 tasks
    answer_requests = [r for r in model.requests if len(r.messages) > 2]
    assert all(r.messages[2].content == "Got it." for r in answer_requests)
