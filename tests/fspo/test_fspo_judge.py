"""bench fspo's LLM-judge column: the pairwise prompt, the order swap, and agreement computed from verdicts."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from persona_lab.eval import fspo_bench as B
from persona_lab.simulators import fspo as F


def test_pairwise_prompt_renders_its_inputs_and_differs_with_them() -> None:
    a = F.pairwise_judge_messages("Use bullet points.", "How do tides work?", "First answer.", "Second answer.")
    text = a[-1]["content"]
    assert "Use bullet points." in text and "How do tides work?" in text
    assert text.index("First answer.") < text.index("Second answer.") and "# Response 1" in text
    swapped = F.pairwise_judge_messages("Use bullet points.", "How do tides work?", "Second answer.", "First answer.")
    assert swapped != a
    assert F.pairwise_judge_messages("No jargon.", "How do tides work?", "First answer.", "Second answer.") != a


@pytest.mark.parametrize(("reply", "choice"), [
    ("2", 2), ("Response 1.", 1), ("**2** because", 2), ("answer #1", 1),
    ("Maybe", None), ("I prefer 1", None), ("12", None), ("1.5", None), ("", None),
])
def test_parse_choice_counts_what_does_not_start_with_a_choice_as_unparsed(reply: str, choice: int | None) -> None:
    assert F.parse_choice(reply) == choice


def test_order_swapped_outcome() -> None:
    assert B.judge_outcome(1, 2) == "win"  # the row's answer picked in both orders
    assert B.judge_outcome(2, 1) == "loss"
    assert B.judge_outcome(1, 1) == B.judge_outcome(2, 2) == "tie"  # followed the position
    assert B.judge_outcome(1, None) is None and B.judge_outcome(None, 2) is None


def test_summary_kappa_and_counts_come_from_the_verdicts() -> None:
    def item(checker: str, picks: list[int | None]) -> dict:
        return {"checker": checker, "picks": picks, "judge": B.judge_outcome(*picks)}

    items = [item("win", [1, 2]), item("win", [1, 1]), item("tie", [2, 2]), item("loss", [2, 1]),
             item("loss", [None, 1])]
    s = B.judge_summary(items)
    assert (s["n"], s["judged"], s["unparsed"], s["unparsed_replies"]) == (5, 4, 1, 1)
    # checker win win tie loss vs judge win tie tie loss: po = 3/4, pe = .5*.25 + .25*.5 + .25*.25
    pe = 0.5 * 0.25 + 0.25 * 0.5 + 0.25 * 0.25
    assert s["agreement"] == 0.75 and s["kappa"] == pytest.approx((0.75 - pe) / (1 - pe))
    assert s["win_rate"] == pytest.approx((1 + 0.5 * 2) / 4) and s["position_consistency"] == 0.5
    assert s["first_position_rate"] == pytest.approx(5 / 9)  # 1 is 5 of the 9 parsed replies
    assert s["confusion"]["checker win / judge tie"] == 1 and s["confusion"]["checker loss / judge loss"] == 1


def _fake_judge(data: F.FSPOData, mode: str):  # noqa: ANN202
    """A judge that picks by the user's checkers (``faithful``), always Response 1, or never parses."""
    from persona_lab.testing import FakeChatModel

    ids = {u.description: u.preference_ids for u in data.users}
    seen: list[str] = []

    def respond(request) -> str:  # noqa: ANN001
        text = request.messages[-1].content
        seen.append(text)
        if mode == "biased":
            return "1"
        if mode == "broken":
            return "Both are fine."
        desc = text.split("written:\n", 1)[1].split("\n\nQuestion:", 1)[0]
        first, second = re.split(r"\n\n# Response 2\n", text.split("# Response 1\n", 1)[1])
        second = second.rsplit("\n\nWhich response", 1)[0]
        a, b = (sum(F.check_answer(x, ids[desc]).values()) for x in (first, second))
        return "2" if b > a else "1"

    return FakeChatModel(respond), seen


def test_bench_judge_column_agreement_is_computed_from_the_verdicts(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    cfg = B.quick_config(str(out), "scripted")
    cfg = dataclasses.replace(cfg, eval_users=6, judge="fake:judge")
    data = B.ensure_data(cfg)
    model, seen = _fake_judge(data, "faithful")
    results = B.run_fspo_bench(cfg, judge_model=model)
    judge = results["judge"]
    assert set(judge["rows"]) == {"few-shot prompting", "oracle description"}  # the base is not judged
    items = 2 * 3 * 6
    assert len(seen) == 2 * items and judge["pooled"]["n"] == items
    # each item asked twice, the second time with the answers swapped
    first, second = seen[0].split("# Response 1\n", 1)[1], seen[1].split("# Response 1\n", 1)[1]
    a1, b1 = first.split("\n\n# Response 2\n")
    a2, b2 = second.split("\n\n# Response 2\n")
    assert a1 == b2.rsplit("\n\nWhich response", 1)[0] and a2 == b1.rsplit("\n\nWhich response", 1)[0]
    pooled = judge["pooled"]
    # a judge that reads the checkers agrees with them on every item: its win rate is the checkers'
    assert pooled["agreement"] == 1.0 and pooled["unparsed"] == 0
    for label, row in judge["rows"].items():
        for split in F.SPLITS:
            assert row["splits"][split]["win_rate"] == results["rows"][label]["splits"][split]["win_rate"]
    checker_ties = sum(results["rows"][r]["splits"][s]["ties"] for r in judge["rows"] for s in F.SPLITS)
    assert pooled["ties"] == checker_ties
    md = (out / "results.md").read_text()
    assert "LLM judge `fake:judge`" in md and "| all rows pooled |" in md
    assert json.loads((out / "results.json").read_text())["judge"]["pooled"]["agreement"] == 1.0

    # cached: a rerun does not call the judge; a different judge spec is judged afresh
    before = len(seen)
    B.run_fspo_bench(cfg, judge_model=model)
    assert len(seen) == before
    biased, _ = _fake_judge(data, "biased")
    cfg_b = dataclasses.replace(cfg, judge="fake:biased")
    b = B.run_fspo_bench(cfg_b, judge_model=biased)["judge"]["pooled"]
    # always "1": every item a tie, so agreement = the checkers' tie share and kappa is 0 (or undefined)
    assert b["ties"] == b["judged"] == items and b["agreement"] == pytest.approx(checker_ties / items)
    assert b["first_position_rate"] == 1.0 and b["position_consistency"] == 0.0
    assert b["kappa"] == pytest.approx(0.0) or b["kappa"] != b["kappa"]
    broken, _ = _fake_judge(data, "broken")
    cfg_x = dataclasses.replace(cfg, judge="fake:broken")
    x = B.run_fspo_bench(cfg_x, judge_model=broken)["judge"]["pooled"]
    assert x["unparsed"] == items and x["judged"] == 0 and x["unparsed_replies"] == 2 * items


def test_judge_spec_defaults_and_bad_specs() -> None:
    from persona_lab.cli.main import main

    assert B.FSPOBenchConfig(out="x", base="scripted").judge_spec is None
    assert B.FSPOBenchConfig(out="x", base="smollm2-135m").judge_spec == "hf:smollm2-135m"
    assert B.FSPOBenchConfig(out="x", base="smollm2-135m", judge="none").judge_spec is None
    assert main(["bench", "fspo", "--base", "scripted", "--judge", "scripted", "--out", "unused"]) == 2


@pytest.mark.parametrize("constrained", [True, False])
def test_judge_reply_is_restricted_to_1_or_2_where_the_backend_offers_it(tmp_path: Path, constrained: bool) -> None:
    from persona_lab.models.decoding import GUIDED_CHOICE, extras
    from persona_lab.testing import FakeChatModel

    model = FakeChatModel("2")
    model.guided_decoding = True  # type: ignore[attr-defined]  # as the hf backend offers it
    cfg = dataclasses.replace(B.quick_config(str(tmp_path / "b"), "scripted"), eval_users=1, judge="fake:j",
                              judge_constrained=constrained)
    judge = B.run_fspo_bench(cfg, judge_model=model)["judge"]
    assert judge["mode"] == ("constrained" if constrained else "free")
    assert all((extras(r.params).get(GUIDED_CHOICE) == ["1", "2"]) is constrained for r in model.requests)
    assert judge["pooled"]["ties"] == judge["pooled"]["judged"] > 0  # "2" in both orders: position, a tie
