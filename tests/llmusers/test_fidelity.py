"""LLM users that invent no outcome, their audit trail, and fidelity counters that count exactly what
a fake model was scripted to do wrong (echoed delimiters, "No" + unchanged revision, unclear verdicts,
marker-only replies, loops)."""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest

from persona_lab.core.messages import Message
from persona_lab.core.records import TransitionRecord
from persona_lab.envs.edit_env import EditEmailEnv
from persona_lab.envs.marketplace_env import MarketplaceEnv
from persona_lab.envs.persuasion_env import PersuasionEnv
from persona_lab.eval.fidelity import fidelity_counters, fidelity_rates, fidelity_warnings
from persona_lab.models.base import ChatRequest
from persona_lab.simulators.audit import FLAGS, has_delimiters, is_degenerate, strip_delimiters
from persona_lab.simulators.followup import FollowUpState, LLMFollowUpUser
from persona_lab.testing import FakeChatModel

LOOP = "I like this email. " * 30


def _draft_of(request: ChatRequest) -> str:
    m = re.search(r"<<<\n(.*)\n>>>", request.messages[-1].content, re.DOTALL)
    assert m, "the prompt quotes the draft between <<< and >>>"
    return m.group(1)


def _record(info: dict, t: int, action: str = "a", agent: dict | None = None) -> TransitionRecord:
    info = {k: v for k, v in info.items() if k != "privileged"}
    return TransitionRecord(episode=0, round=t, env_id="x", seed=0, action=action, action_hash="h", reward=0.0,
                            terminated=False, truncated=False, info=info, agent=agent or {})


# Each round's draft names the behaviour the fake user shows on it.
PLAN = {
    "yes": ("Yes.", None),
    "echo": ("No.", lambda d: f"<<<\n{d} Thanks!\n>>>"),
    "no-unchanged": ("No", lambda d: d),
    "unclear": ("Hard to say, it depends.", lambda d: d + " Best regards."),
    "loop": ("no", lambda d: LOOP),
    "empty": ("No, not at all.", lambda d: "   "),
}


def _scripted_user(request: ChatRequest) -> str:
    draft = _draft_of(request)
    kind = draft.split(":")[0]
    verdict, revise = PLAN[kind]
    return verdict if "yes or no" in request.messages[0].content else revise(draft)


def test_edit_user_counters_count_exactly_what_was_injected() -> None:
    kinds = ["yes", "echo", "no-unchanged", "unclear", "loop", "empty", "no-unchanged", "echo"]
    env = EditEmailEnv(user="llm", backend=FakeChatModel(_scripted_user), rounds=len(kinds))
    env.reset(seed=0)
    infos = []
    for i, kind in enumerate(kinds):
        draft = f"{kind}: Dear team, the meeting moves to room {i} on Friday. Please bring the quarterly figures."
        *_, info = env.step(draft)
        infos.append((kind, draft, info))
    for kind, draft, info in infos:
        assert [c["step"] for c in info["user_calls"]] == (["verdict"] if kind == "yes" else ["verdict", "revision"])
        assert info["user_calls"][0]["raw"] == PLAN[kind][0]  # the raw text is in the record
        assert info["user_calls"][0]["key"] and len(info["usage"]) == len(info["user_calls"])
        if kind == "yes":
            assert info["accepted"] and info["cost"] == 0 and info["user_verdict"] == "yes"
        else:
            assert not info["accepted"]  # nothing but a "yes" accepts
        if kind in ("no-unchanged", "empty"):  # the unchanged draft: a rejection with cost 0
            assert info["edited_text"] == draft and info["cost"] == 0
        if kind == "echo":
            assert not has_delimiters(info["edited_text"]) and info["edited_text"] == draft + " Thanks!"
            assert info["cost"] == 2  # "Thanks" and "!" only, not the delimiters
        if kind == "unclear":
            assert info["user_verdict"] == "unclear" and info["user_calls"][0]["fallback"]
    counters = fidelity_counters(_record(info, t) for t, (_, _, info) in enumerate(infos))
    assert counters["user/calls"] == 2 * len(kinds) - 1
    assert counters["user/echoed_prompt"] == 2
    assert counters["user/unchanged_after_no"] == 2
    assert counters["user/unclear_verdicts"] == 1
    assert counters["user/degenerate_repetition"] == 1
    assert counters["user/parse_failures"] == 1  # the empty revision
    assert counters["user/fallbacks"] == 2  # unclear verdict, empty revision
    assert counters["user/filler_replies"] == 0


def test_marker_only_customer_reply_is_marked_as_filler_and_the_choice_is_not_invented() -> None:
    model = FakeChatModel(lambda r: "DECISION: B\nRATING: 4" if "DECISION:" in r.messages[-1].content else "RATING: 2")
    env = MarketplaceEnv(user="llm", backend=model, rounds=3)
    env.reset(seed=0)
    records = []
    for t in range(3):
        *_, info = env.step("Option B has what you need.")
        assert info["choice"] == "B" and info["user_reply_filler"] is True and not info["parse_failed"]
        assert info["user_calls"][0]["raw"] == "DECISION: B\nRATING: 4"
        assert "filler" in info["user_calls"][0]["fallback"]
        records.append(_record(info, t))
    c = fidelity_counters(records)
    assert c["user/filler_replies"] == 3 and c["user/calls"] == 9 and c["user/parse_failures"] == 0
    assert c["user/fallbacks"] == 3
    # an answer with no decision: no purchase, but as a counted fallback
    env = MarketplaceEnv(user="llm", backend=FakeChatModel("hmm, tough one"), rounds=1)
    env.reset(seed=0)
    *_, info = env.step("Option A has it.")
    assert info["choice"] == "D" and "no decision" in info["user_calls"][0]["fallback"]
    assert fidelity_counters([_record(info, 0)])["user/parse_failures"] == 2  # decision + full hindsight


def test_looping_persuadee_that_echoes_the_persuader_is_counted() -> None:
    pitch = "Save the Children helps kids in need all around the world every single day."
    model = FakeChatModel(lambda r: "You said: " + r.messages[-1].content + " " + "I see. I see. I see. I see. I see.")
    env = PersuasionEnv(user="llm", backend=model, rounds=3)
    env.reset(seed=0)
    records = []
    for t in range(3):
        *_, info = env.step(pitch)
        records.append(_record(info, t))
    c = fidelity_counters(records)
    assert c["user/calls"] == 4  # three turns plus the forced decision at the budget's end
    assert c["user/echoed_prompt"] == 4  # each turn repeats the persuader; the decision repeats its prompt
    assert c["user/degenerate_repetition"] == 4  # every call loops, the forced decision too
    assert c["user/parse_failures"] == 4  # no WILLINGNESS line x3, no amount in the forced decision
    final = records[-1].info["user_calls"][-1]
    assert final["step"] == "forced_decision" and final["parsed"] is None  # no amount read from the echo


def test_followup_unclear_verdicts_are_counted() -> None:
    from persona_lab.simulators import catalog
    from persona_lab.simulators.followup import make_followup_persona

    base = make_followup_persona("verifiable", 5, goal_answers=2)
    ids = ["format.bullets"]
    pref = type(base.preference)(catalog.describe(ids), tuple(catalog.canonical_order(ids)))
    persona = type(base)(base.id, pref, base.topic, base.questions, 2)
    conv = (Message("user", persona.question(0).text), Message("assistant", "Some answer."))
    model = FakeChatModel("<<<\nYou understood exactly what I was asking.\n>>>")
    reply, _ = LLMFollowUpUser(model).respond(persona, FollowUpState(), conv, np.random.default_rng(0))
    assert reply.classified_by == "lexical" and not has_delimiters(reply.text)
    c = fidelity_counters([_record({"user_calls": [x.to_dict() for x in reply.calls]}, 0)])
    # both calls (follow-up and classification) got the delimited text: two echoes, two unclear verdicts
    assert c["user/unclear_verdicts"] == 2 and c["user/echoed_prompt"] == 2 and c["user/fallbacks"] == 2


def test_scripted_users_make_no_calls_and_warnings_start_above_ten_percent() -> None:
    env = gym.make("persona_lab/EditEmail-v0", rounds=2)
    env.reset(seed=0)
    *_, info = env.step("Hello team. Meeting on Friday.")
    assert info["user_calls"] == [] and "user_verdict" not in info
    calls = [{"flags": []}] * 9 + [{"flags": ["echoed_prompt"]}]
    c = fidelity_counters([_record({"user_calls": calls}, 0)])
    assert fidelity_rates(c) == {"user/echoed_prompt": 0.1} and fidelity_warnings(c) == []
    c = fidelity_counters([_record({"user_calls": calls + [{"flags": ["echoed_prompt"]}]}, 0)])
    (line,) = fidelity_warnings(c)
    assert "user/echoed_prompt" in line and "18%" in line
    # agent side: an empty action and a preference that names no writing preference (CSS)
    c = fidelity_counters([_record({}, 0, action=" "), _record({}, 1, agent={"used_preference": "font-weight, text-align"})])
    assert c["agent/parse_failures"] == 1 and c["agent/unrecognized_preference"] == 1


def test_revision_lead_ins_are_not_part_of_the_edit() -> None:
    from persona_lab.simulators.edit_users import _clean_revision

    assert _clean_revision("Here's the edited text:\n\n<<<\nDear Ann,\n>>>") == "Dear Ann,"
    assert _clean_revision("Sure! Here is the revised version:\nHi") == "Hi"
    assert _clean_revision("Here's the edited text with the requested changes:\n\nHi") == "Hi"
    assert _clean_revision("Editing notes: keep") == "Editing notes: keep"


def test_detectors() -> None:
    assert strip_delimiters("<<<\nHello there.\n>>>") == "Hello there."
    assert strip_delimiters("Edited: <<< Hi >>>") == "Edited:  Hi"
    assert is_degenerate(LOOP) and is_degenerate("the cat sat on " * 10)
    assert not is_degenerate("Dear team, the meeting moves to Friday. Please bring the figures. Thanks, Ann.")
    assert set(FLAGS) >= {"echoed_prompt", "unchanged_after_no", "unclear_verdicts", "degenerate_repetition"}


@pytest.mark.parametrize("flag", ["bogus"])
def test_unknown_flag_is_refused(flag: str) -> None:
    from persona_lab.simulators.audit import UserCall

    with pytest.raises(ValueError, match="unknown flag"):
        UserCall("verdict", "k", "raw").flag(flag)
