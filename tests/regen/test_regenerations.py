"""Dialogue datasets from Persuasion-v0 runs, and hindsight regenerations with the three controllers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import persona_lab  # noqa: F401  (registers the envs)
from persona_lab.core.errors import DataError
from persona_lab.eval.runner import RunConfig, Runner
from persona_lab.simulators import persuasion as P
from persona_lab.simulators.persuasion_hindsight import (
    LLMController,
    OracleController,
    Proposal,
    ScriptedController,
    controller_prompt,
    parse_proposal,
)
from persona_lab.testing.fakes import FakeChatModel
from persona_lab.testing.tiny import tiny_tokenizer
from persona_lab.train.dialogues import (
    dpo_pairs,
    kto_examples,
    load_dialogues,
    regenerate_rows,
    rows_from_run,
    save_dialogues,
    sft_examples,
    token_view,
)

ENV_ID = "persona_lab/Persuasion-v0"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "p4g"
    Runner(RunConfig(env_id=ENV_ID, agent="no-learning", rounds=4, episodes=12, seed=3), out, cache=False).run()
    return out


@pytest.fixture(scope="module")
def rows(run_dir: Path) -> list:
    return rows_from_run(run_dir)


def test_rows_from_a_run_round_trip(rows: list, tmp_path: Path) -> None:
    assert len(rows) == 12 and all(r.source == "original" and r.done for r in rows)
    assert any(r.reward == 0 for r in rows) and any(r.reward > 0 for r in rows)
    for r in rows:
        assert r.turns[0].role == "persuadee" and len(r.turn_rewards) == len(r.persuader_turns)
        assert r.turn_rewards[-1] == r.reward and r.dialogue().donation == pytest.approx(r.reward)
    path = save_dialogues(rows, tmp_path / "d.jsonl")
    back = load_dialogues(path)
    assert back == rows and [b.world for b in back] == [r.world for r in rows]


def test_loading_names_file_row_and_field(rows: list, tmp_path: Path) -> None:
    good = rows[0].to_dict()
    cases = [({**good, "source": "made_up"}, "source"), ({**good, "reward": 7.0}, "reward"),
             ({**good, "turn_rewards": [0.0]}, "turn_rewards"),
             ({**good, "source": "regenerated", "parent_id": "x", "divergence_turn": 99}, "divergence_turn")]
    for bad, fieldname in cases:
        path = tmp_path / "bad.jsonl"
        path.write_text(json.dumps(rows[1].to_dict()) + "\n" + json.dumps(bad) + "\n")
        with pytest.raises(DataError) as err:
            load_dialogues(path)
        assert err.value.row == 2 and err.value.field == fieldname and str(path) in str(err.value)


def test_token_view_masks_persuader_tokens_and_puts_reward_on_turn_ends(rows: list) -> None:
    tok = tiny_tokenizer()
    row = next(r for r in rows if r.reward > 0)
    view = token_view(row, tok)
    text = "".join(tok.decode([i]) for i, m in zip(view.input_ids, view.agent_mask) if m)
    for turn in row.persuader_turns:
        assert turn in text
    assert row.persuadee_turns[1] not in text
    assert sum(view.rewards) == pytest.approx(row.reward) and view.done
    last = max(i for i, r in enumerate(view.rewards) if r)
    assert view.agent_mask[last] == 1 and view.input_ids[last] == tok.eos_token_id


# --- controllers ---------------------------------------------------------------------------------
class Spy:
    name = "spy"

    def __init__(self, privileged: bool) -> None:
        self.privileged = privileged
        self.seen: list[Any] = []

    def propose(self, transcript: Any, *, dialogue: Any = None) -> Proposal:
        self.seen.append((transcript, dialogue))
        return Proposal(0, "Even a small amount helps, just a few cents. Would you like to donate?")


def test_only_the_oracle_sees_privileged_data(rows: list) -> None:
    for privileged in (False, True):
        spy = Spy(privileged)
        regenerate_rows(rows[:3], spy, P.ScriptedPersuadee(), seed=0)
        assert spy.seen
        for transcript, dialogue in spy.seen:
            assert (dialogue is not None) == privileged
            blob = json.dumps(transcript)
            assert "persuadee-" not in blob and "willingness" not in blob
    captured: list[str] = []

    def answer(request: Any) -> str:
        captured.append(json.dumps([m.content for m in request.messages]))
        return '{"turn": 1, "utterance": "It really makes a difference."}'

    llm = LLMController(FakeChatModel(answer))
    regenerate_rows(rows[:2], llm, P.ScriptedPersuadee(), seed=0)
    assert captured and all(rows[0].dialogue().persona.describe()[:40] not in c for c in captured)
    assert all("moved most by" not in c for c in captured)


def test_regeneration_keeps_the_prefix_is_seeded_clipped_and_cached(rows: list, tmp_path: Path) -> None:
    user = P.ScriptedPersuadee()
    new, stats = regenerate_rows(rows, ScriptedController(), user, seed=5)
    again, _ = regenerate_rows(rows, ScriptedController(), user, seed=5)
    assert new and new == again and stats.regenerated == len(new)
    by_id = {r.id: r for r in rows}
    for row in new:
        parent, k = by_id[row.parent_id], row.divergence_turn
        assert row.turns[: 2 * k + 1] == parent.turns[: 2 * k + 1]  # the prefix is untouched
        assert row.persuader_turns[k] != parent.persuader_turns[k]
        assert 0.0 <= row.reward <= 2.0 and row.controller == "scripted" and row.source == "regenerated"
    assert stats.mean_gain == pytest.approx(sum(r.reward - by_id[r.parent_id].reward for r in new) / len(new))

    cache = tmp_path / "regen.jsonl"
    first, _ = regenerate_rows(rows, ScriptedController(), user, seed=5, cache=cache)
    spy = Spy(False)
    spy.name = "scripted"
    cached, cstats = regenerate_rows(rows, spy, user, seed=5, cache=cache)
    assert cached == first and not spy.seen and cstats.cached == cstats.parents


def test_prefix_only_keeps_the_original_turn(rows: list) -> None:
    new, _ = regenerate_rows(rows, ScriptedController(), P.ScriptedPersuadee(), seed=1, prefix_only=True)
    by_id = {r.id: r for r in rows}
    assert new and all(r.source == "prefix_only" for r in new)
    for row in new:
        assert row.persuader_turns[row.divergence_turn] == by_id[row.parent_id].persuader_turns[row.divergence_turn]


def test_scripted_controller_answers_the_unanswered_objection() -> None:
    voiced = P.OBJECTIONS["cant_afford"].voiced[0]
    transcript = [("persuadee", "Hi!"), ("persuader", "Imagine a hungry child."), ("persuadee", voiced),
                  ("persuader", "Research shows every dollar counts. Would you donate?"), ("persuadee", "I'll pass on donating, sorry.")]
    p = ScriptedController().propose(transcript)
    assert p is not None and p.turn == 1 and P.OBJECTIONS["cant_afford"].counter in p.utterance
    assert P.detect_ask(p.utterance)  # the replaced turn asked, so the new one does too
    answered = [*transcript[:3], ("persuader", P.OBJECTIONS["cant_afford"].counter), ("persuadee", "Okay.")]
    assert ScriptedController().propose(answered) is None


def test_oracle_gains_more_than_the_scripted_controller_on_average(rows: list) -> None:
    user = P.ScriptedPersuadee()
    _, scripted = regenerate_rows(rows, ScriptedController(), user, seed=2)
    _, oracle = regenerate_rows(rows, OracleController(), user, seed=2)
    assert oracle.regenerated > 0 and oracle.mean_gain is not None and scripted.mean_gain is not None
    assert oracle.mean_gain > 0


def test_llm_controller_parses_json_and_counts_failures(rows: list) -> None:
    assert parse_proposal('Sure: {"turn": 2, "utterance": "Any amount helps."} done', 3) == Proposal(2, "Any amount helps.", "llm")
    assert parse_proposal('{"turn": 5, "utterance": "x"}', 3) is None
    assert parse_proposal("no json here", 3) is None
    llm = LLMController(FakeChatModel(["not json", '{"turn": 0, "utterance": "It makes a difference."}']))
    new, stats = regenerate_rows(rows[:4], llm, P.ScriptedPersuadee(), seed=0)
    parents = sum(r.reward < 2.0 for r in rows[:4])
    assert llm.calls == parents and stats.failures == llm.failures and stats.failures >= 1
    assert len(new) == parents - stats.failures
    a = controller_prompt([("persuadee", "Hi"), ("persuader", "Donate?"), ("persuadee", "No")])
    b = controller_prompt([("persuadee", "Hi"), ("persuader", "Give?"), ("persuadee", "Maybe")])
    assert a != b and "[turn 0] Persuader: Donate?" in a[1]["content"]


def test_learner_views_of_the_same_data(rows: list) -> None:
    new, _ = regenerate_rows(rows, OracleController(), P.ScriptedPersuadee(), seed=0)
    data = rows + new
    bc = sft_examples(rows)
    filtered = sft_examples(rows, min_reward=1e-9)
    assert len(bc) == sum(len(r.persuader_turns) for r in rows) and 0 < len(filtered) < len(bc)
    assert bc[0]["prompt"][0]["role"] == "system" and bc[0]["completion"][0]["role"] == "assistant"
    pairs = dpo_pairs(data)
    assert pairs and all(p["chosen"] != p["rejected"] for p in pairs)
    kto = kto_examples(data)
    assert {e["label"] for e in kto} == {True, False}


def test_kto_rows_validate_and_train_a_step(rows: list, tmp_path: Path) -> None:
    from datasets import Dataset

    from persona_lab.testing.tiny import tiny_chat_model
    from persona_lab.train.data import check_dataset
    from persona_lab.train.kto import KTOTrainConfig, train_kto

    short = [e for e in kto_examples(rows) if sum(len(m["content"]) for m in e["prompt"]) < 800]
    data = Dataset.from_list([*[e for e in short if e["label"]][:2], *[e for e in short if not e["label"]][:2]])
    assert check_dataset(data, kind="unpaired", source="mem") == "unpaired/conversational"
    with pytest.raises(DataError):
        check_dataset(Dataset.from_list([{**kto_examples(rows[:1])[0], "label": "yes"}]), kind="unpaired", source="mem")
    model, tok = tiny_chat_model(seed=0)
    result = train_kto(KTOTrainConfig(out=str(tmp_path / "kto"), max_steps=1, batch_size=2, device="cpu",
                                      max_length=1024), dataset=data, model=model, tokenizer=tok)
    assert result.steps == 1 and (tmp_path / "kto" / "adapter_config.json").is_file()
