"""FSPO users, pairs, splits and episodes (no models)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from persona_lab.core.errors import ConfigError
from persona_lab.simulators import catalog
from persona_lab.simulators import fspo as F

SMALL = F.FSPODataConfig(train_users=12, heldout_users=4, interpolated_users=4, train_pairs_per_user=8,
                         eval_pairs_per_user=3, eval_questions=40, seed=3)


@pytest.fixture(scope="module")
def data() -> F.FSPOData:
    return F.build_fspo_data(SMALL)


def test_question_set_is_large_varied_and_unique() -> None:
    qs = F.load_questions()
    assert len(qs) >= 200
    assert len({q.text for q in qs}) == len(qs) and len({q.id for q in qs}) == len(qs)
    assert len({q.topic for q in qs}) >= 20
    # a generic answer violates most catalog preferences a user could hold
    allowed = [p for p in catalog.CATALOG if p not in F.DEFAULT_EXCLUDE]
    share = sum(F.satisfied_share(q.answer, allowed) for q in qs) / len(qs)
    assert share < 0.5


def test_every_pair_is_verified_by_the_users_checkers(data: F.FSPOData) -> None:
    users = {u.id: u for u in data.users}
    assert len(data.pairs) == len(data.users) * (SMALL.train_pairs_per_user + SMALL.eval_pairs_per_user)
    for p in data.pairs:
        ids = users[p.user_id].preference_ids
        assert all(catalog.satisfied(p.preferred, ids).values())
        assert sum(catalog.satisfied(p.dispreferred, ids).values()) == p.dispreferred_satisfied < len(ids)
        assert p.preferred_satisfied == len(ids)
    assert {p.dispreferred_kind for p in data.pairs} == set(F.DISPREFERRED_KINDS)


def test_users_are_compatible_and_described_by_their_statements(data: F.FSPOData) -> None:
    for u in data.users:
        assert len(u.preference_ids) == SMALL.k and catalog.compatible(u.preference_ids)
        assert not set(u.preference_ids) & set(SMALL.exclude)
        for pid in u.preference_ids:
            assert catalog.CATALOG[pid].statement in u.description


def test_no_heldout_or_interpolated_combination_is_in_training(data: F.FSPOData) -> None:
    train = {u.preference_ids for u in data.users_in("train")}
    held = set(data.heldout_pairs)
    trained_prefs = {p for ids in train for p in ids}
    for u in data.users_in("heldout") + data.users_in("interpolated"):
        assert u.preference_ids not in train
    for ids in train:  # no train user holds a reserved pair ...
        assert not F._pairs_of(ids) & held
    for u in data.users_in("interpolated"):  # ... every interpolated user holds one, of seen preferences
        assert F._pairs_of(u.preference_ids) & held
        assert set(u.preference_ids) <= trained_prefs
    assert len({u.preference_ids for u in data.users}) == len(data.users)


def test_training_rows_use_only_train_users_and_train_questions(data: F.FSPOData) -> None:
    rows = F.training_rows(data, n_shots=2)
    assert len(rows) == SMALL.train_users * 2 * (2 + 1)  # the paper's 2·(N+1) draws per user
    train_ids = {u.id for u in data.users_in("train")}
    eval_q = set(data.eval_questions)
    for r in rows:
        assert r["user_id"] in train_ids
        assert r["question_id"] not in eval_q and not set(r["shot_questions"]) & eval_q
        assert r["question_id"] not in r["shot_questions"]
    assert not set(data.train_questions) & eval_q


def test_episode_text_matches_the_papers_format(data: F.FSPOData) -> None:
    (row,) = F.training_rows(data, n_shots=3, draws=1, conversational=False)[:1]
    text = row["prompt"]
    block = (r"# Example (\d)\n## Question\n[^\n]+\n## Preferred Response\n(?:.|\n)+?\n"
             r"## Dispreferred Response\n(?:.|\n)+?\n\n")
    m = re.fullmatch(f"({block}){{3}}# Task\\n{re.escape(F.TASK_INSTRUCTION)}\\n## Question\\n[^\\n]+\\n", text)
    assert m is not None, text
    assert re.findall(r"^# Example (\d)$", text, flags=re.M) == ["1", "2", "3"]
    assert row["chosen"].startswith("## Preferred Response\n") and row["rejected"].startswith("## Preferred Response\n")
    pair = next(p for p in data.pairs if p.question_id == row["question_id"] and p.user_id == row["user_id"])
    assert F.answer_from_completion(row["chosen"]) == pair.preferred.strip()
    assert F.answer_from_completion(row["rejected"]) == pair.dispreferred.strip()


def test_conversational_and_description_variants(data: F.FSPOData) -> None:
    user = data.users_in("train")[0]
    conv = F.training_rows(data, n_shots=2, description=True, conversational=True)
    row = next(r for r in conv if r["user_id"] == user.id)
    assert [m["role"] for m in row["prompt"]] == ["system", "user"]
    assert F.DESCRIPTION_INSTRUCTION in row["prompt"][1]["content"]
    chosen = row["chosen"][0]["content"]
    assert chosen.startswith(f"## User Description\n{user.description}\n## Preferred Response\n")
    pair = next(p for p in data.pairs if p.question_id == row["question_id"] and p.user_id == user.id)
    assert row["rejected"][0]["content"].startswith(f"## User Description\n{F.describe_user(pair.dispreferred_ids)}\n")
    assert F.answer_from_completion(chosen) == pair.preferred.strip()


def test_episodes_are_redrawn_with_a_seed(data: F.FSPOData) -> None:
    a = F.training_rows(data, n_shots=2, seed=0)
    b = F.training_rows(data, n_shots=2, seed=0)
    c = F.training_rows(data, n_shots=2, seed=1)
    assert a == b and a != c
    # draws of one user differ from each other
    first = [r for r in a if r["user_id"] == a[0]["user_id"]]
    assert len({(r["question_id"], tuple(r["shot_questions"])) for r in first}) > 1


def test_eval_episodes_ask_eval_questions_with_train_shots(data: F.FSPOData) -> None:
    for split in F.SPLITS:
        eps = F.eval_episodes(data, split, n_shots=2)
        assert len(eps) == len(data.users_in(split)) * SMALL.eval_pairs_per_user
        for ep in eps:
            assert ep.query.question_split == "eval" and all(s.question_split == "train" for s in ep.shots)


def test_prompts_render_differently_for_different_inputs(data: F.FSPOData) -> None:
    p = data.pairs
    assert F.episode_text(p[:2], "Q1?") != F.episode_text(p[2:4], "Q1?") != F.episode_text(p[:2], "Q2?")
    assert F.episode_text(p[:2], "Q1?") != F.episode_text(p[:2], "Q1?", description=True)
    assert F.zero_shot_messages("Q1?") != F.zero_shot_messages("Q2?") != F.zero_shot_messages("Q2?", "Be brief.")


def test_save_and_load_round_trip(data: F.FSPOData, tmp_path: Path) -> None:
    data.save(tmp_path / "d")
    back = F.FSPOData.load(tmp_path / "d")
    assert back.users == data.users and back.pairs == data.pairs and back.config == data.config
    assert back.heldout_pairs == data.heldout_pairs and back.eval_questions == data.eval_questions
    with pytest.raises(Exception, match="meta.json"):
        F.FSPOData.load(tmp_path / "nowhere")


def test_bad_config_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="k=1"):
        F.FSPODataConfig(k=1)
    with pytest.raises(ConfigError, match="eval_questions"):
        F.FSPODataConfig(eval_questions=0)
    with pytest.raises(ConfigError, match="too_many|could draw only"):
        F.build_fspo_data(F.FSPODataConfig(train_users=5000, heldout_users=0, interpolated_users=0))
