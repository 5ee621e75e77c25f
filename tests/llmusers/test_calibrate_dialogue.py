"""Calibration of the LLM persuadee and the LLM follow-up user: injected verdicts, exact counts."""

from __future__ import annotations

import re

from persona_lab.eval.calibrate import calibrate, cohen_kappa
from persona_lab.models.base import ChatRequest
from persona_lab.simulators import catalog
from persona_lab.simulators.followup import assess, find_question
from persona_lab.testing import FakeChatModel

PERSUASION = "persona_lab/Persuasion-v0"
FOLLOWUP = "persona_lab/FollowUp-v0"


def _decision_prompt(r: ChatRequest) -> bool:
    return "The chat has ended" in r.messages[-1].content


def test_persuasion_direction_and_donation_counts() -> None:
    # turns: always fully willing, never decides; forced decision: $0
    keen = FakeChatModel(lambda r: "DECISION: $0" if _decision_prompt(r) else "Sounds great.\nWILLINGNESS: 10")
    r = calibrate(PERSUASION, keen, limit=9, seed=0)
    items = r["per_item"]
    dialogues = sum(i["turn"] == 0 for i in items)
    assert dialogues >= 2  # dialogues end (the scripted persuadee decides) and new personas follow
    # first turn of a dialogue: up from the persona's inclination; afterwards 10 -> 10 is "same"
    assert r["llm_labels"] == {"up": dialogues, "same": 9 - dialogues}
    assert r["donated"]["llm_labels"] == {"none": 9} and r["calls"] == 18  # one turn + one forced decision each
    scripted = [i["scripted"] for i in items]
    llm = [i["llm"] for i in items]
    assert r["agreement"] == sum(a == b for a, b in zip(scripted, llm)) / 9
    assert r["kappa"] == cohen_kappa(scripted, llm)
    assert r["donated"]["agreement"] == r["donated"]["scripted_labels"].get("none", 0) / 9
    assert r["rates"]["parse_failures"] == 0

    # deciding inside the turn skips the forced decision call; unparseable turns are unclear, not invented
    calls = {"n": 0}

    def mixed(req: ChatRequest) -> str:
        if _decision_prompt(req):
            return "hmm"  # no amount: unclear
        calls["n"] += 1
        return "I'll give.\nWILLINGNESS: 8\nDECISION: $1" if calls["n"] % 2 else "whatever"
    m = calibrate(PERSUASION, FakeChatModel(mixed), limit=6, seed=0)
    assert m["llm_labels"].get("unclear") == 3 and m["donated"]["llm_labels"] == {"donate": 3, "unclear": 3}
    assert m["calls"] == 9 and m["rates"]["parse_failures"] == 6 / 9  # 3 turns + 3 decisions unparsed


def _rule_follower(request: ChatRequest) -> str:
    """A fake follow-up user that applies the world's checks exactly: it should agree perfectly."""
    text = request.messages[-1].content
    statement = re.search(r"have not told the assistant\): (.*?)\n", text).group(1)
    question = re.search(r"Your current question: (.*?)\n", text).group(1)
    answer = text.rsplit("<<<\n", 1)[1].split("\n>>>", 1)[0]
    ok = assess(answer, find_question(question), catalog.recognize(statement)).ok
    return f"VERDICT: {'positive' if ok else 'negative'}\nMESSAGE: {'Thanks!' if ok else 'Not quite.'}"


def test_followup_agreement_counts() -> None:
    good = calibrate(FOLLOWUP, FakeChatModel(_rule_follower), limit=8, seed=0)
    assert good["scripted_labels"] == {"negative": 4, "positive": 4}  # no-learning vs oracle answers
    assert good["agreement"] == 1.0 and good["kappa"] == 1.0 and good["calls"] == 8
    yes = calibrate(FOLLOWUP, FakeChatModel("VERDICT: positive\nMESSAGE: Great."), limit=8, seed=0)
    assert yes["agreement"] == 0.5 and yes["kappa"] == 0.0 and yes["llm_positive_rate"] == 1.0
    # no verdict line, and the classification call unclear too: both counted, the item is "unclear"
    vague = calibrate(FOLLOWUP, FakeChatModel("Hmm, I see."), limit=4, seed=0)
    assert vague["llm_labels"] == {"unclear": 4} and vague["calls"] == 8
    assert vague["rates"]["unclear_verdicts"] == 1.0 and vague["agreement"] == 0.0


def test_pairwise_prefer_position_bias_counts(tmp_path, capsys) -> None:
    from persona_lab.cli.main import main
    from persona_lab.eval.calibrate import pairwise_position_bias

    m = "persona_lab/Marketplace-v0"
    first = pairwise_position_bias(m, FakeChatModel("PREFERENCE: 1"), limit=6, seed=0)
    assert first["first_both_orders"] == 1.0 and first["flip_rate"] == 1.0 and first["tie_rate"] == 0.0
    assert first["forward"]["llm_labels"] == {"a": 6} and first["backward"]["llm_labels"] == {"b": 6}
    assert first["forward"]["agreement"] == first["forward"]["scripted_labels"].get("a", 0) / 6 < 1.0
    assert all(len(q["raw"]) == 2 for q in first["per_pair"])  # one call per order
    unread = pairwise_position_bias(m, FakeChatModel("I can't tell."), limit=4, seed=0)
    assert unread["unclear_rate"] == 1.0 and unread["tie_rate"] == 0.0  # unreadable is counted, not a tie
    assert unread["flip_rate"] == 0.0 and unread["second_both_orders"] == 0.0
    tie = pairwise_position_bias(m, FakeChatModel("PREFERENCE: tie"), limit=4, seed=0)
    assert tie["tie_rate"] == 1.0 and tie["unclear_rate"] == 0.0 and tie["flip_rate"] == 0.0
    out = tmp_path / "p.json"
    assert main(["calibrate", m, "--user-backend", "fake:x", "--limit", "2", "--pairwise", "immediate",
                 "--no-cache", "--out", str(out)]) == 0
    assert "verdict flips when the order is swapped" in capsys.readouterr().out and out.exists()
    assert main(["calibrate", PERSUASION, "--user-backend", "fake:x", "--pairwise", "immediate", "--no-cache"]) == 2
