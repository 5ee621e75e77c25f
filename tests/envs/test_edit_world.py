"""The scripted edit world: oracle, no-learning, effort, users, prompts."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from persona_lab.agents import AGENTS, Transition
from persona_lab.envs.base import PRIVILEGED
from persona_lab.simulators import catalog
from persona_lab.simulators.edit_users import LLMEditingUser, ScriptedEditingUser
from persona_lab.simulators.personas import LatentPreference, make_population
from persona_lab.simulators.prompts import edit_acceptance_prompt, edit_revision_prompt, parse_yes_no
from persona_lab.simulators.text import edit_cost, word_tokens
from persona_lab.testing import FakeChatModel


def play(env_id: str, agent_name: str, rounds: int = 20, seed: int = 0, **env_kw: object) -> list[dict]:
    env = gym.make(env_id, rounds=rounds, **env_kw)
    agent = AGENTS.create(agent_name, task=env.unwrapped.task, model=None)
    obs, info = env.reset(seed=seed)
    infos = []
    for _ in range(rounds):
        if hasattr(agent, "reveal"):
            agent.reveal(info[PRIVILEGED]["next"])
        action = agent.act(obs)
        obs2, reward, term, trunc, info = env.step(action)
        assert reward == -info["cost"]
        agent.update(Transition(obs, action, reward, {k: info[k] for k in ("edited_text", "accepted", "cost")}))
        infos.append(info)
        obs = obs2
        if term or trunc:
            break
    assert trunc and len(infos) == rounds
    return infos


@pytest.mark.parametrize("env_id", ["persona_lab/EditSummarization-v0", "persona_lab/EditEmail-v0"])
@pytest.mark.parametrize("population", ["prelude", "verifiable"])
def test_oracle_zero_cost_no_learning_positive(env_id: str, population: str) -> None:
    oracle = play(env_id, "oracle", population=population)
    assert sum(i["cost"] for i in oracle) == 0
    assert all(i["accepted"] for i in oracle)
    baseline = play(env_id, "no-learning", population=population)
    assert sum(i["cost"] for i in baseline) > 0


def test_effort_one_needs_three_rounds_for_three_violations() -> None:
    ids = ("format.bullets", "markers.emojis", "email.no_closing")
    assert catalog.compatible(ids)
    pref = LatentPreference("bullets, emojis, no closing", ids)
    draft = "Hello,\n\nThe report is ready. We fixed the figures. The deadline is Monday.\n\nBest regards"
    assert not any(catalog.satisfied(draft, ids).values())
    user = ScriptedEditingUser(effort=1)
    rng = np.random.default_rng(0)
    text, rounds = draft, 0
    while True:
        fb = user.react(text, pref, rng)
        if fb.accepted:
            break
        assert len(fb.fixed) == 1
        text, rounds = fb.edited, rounds + 1
    assert rounds == 3
    assert all(catalog.satisfied(text, ids).values())


def test_unlimited_effort_fixes_everything_in_one_round() -> None:
    ids = ("format.bullets", "markers.emojis", "email.no_closing")
    fb = ScriptedEditingUser().react("Hello,\n\nOne. Two. Three.\n\nBest regards", LatentPreference("x", ids),
                                     np.random.default_rng(0))
    assert not fb.accepted and all(catalog.satisfied(fb.edited, ids).values())


def test_noise_adds_incidental_edits_deterministically() -> None:
    pref = LatentPreference("bullets", ("format.bullets",))
    draft = "This is really good. It is very fast. We just need to ship it."
    a = ScriptedEditingUser(noise=1.0).react(draft, pref, np.random.default_rng(5))
    b = ScriptedEditingUser(noise=1.0).react(draft, pref, np.random.default_rng(5))
    clean = ScriptedEditingUser().react(draft, pref, np.random.default_rng(5))
    assert a == b and a.incidental and a.edited != clean.edited


def test_edit_cost_counts_word_tokens() -> None:
    assert word_tokens("Hi, you're here!") == ["Hi", ",", "you're", "here", "!"]
    assert edit_cost("a b c", "a b c") == 0
    assert edit_cost("a b c", "a x c") == 1
    assert edit_cost("Hello world.", "Hello world!") == 1
    assert edit_cost("one two", "") == 2


def test_llm_user_accepts_on_yes_and_edits_otherwise() -> None:
    pref = LatentPreference("bullet points", ("format.bullets",))
    yes = FakeChatModel("Yes.")
    fb = LLMEditingUser(yes).react("draft text", pref, np.random.default_rng(0))
    assert fb.accepted and fb.edited == "draft text" and len(yes.requests) == 1
    no = FakeChatModel(["No", "- draft text"])
    fb = LLMEditingUser(no).react("draft text", pref, np.random.default_rng(0))
    assert not fb.accepted and fb.edited == "- draft text" and len(no.requests) == 2
    assert "draft text" in no.requests[1].messages[-1].content
    assert "bullet points" in no.requests[1].messages[-1].content


def test_prompts_render_differently_for_different_inputs() -> None:
    assert edit_acceptance_prompt("a", "p") != edit_acceptance_prompt("b", "p")
    assert edit_acceptance_prompt("a", "p") != edit_acceptance_prompt("a", "q")
    assert edit_revision_prompt("a", "p") != edit_revision_prompt("b", "p")
    with pytest.raises(ValueError):
        edit_revision_prompt("", "p")
    assert parse_yes_no("Yes, it is fine") is True
    assert parse_yes_no("no.") is False
    assert parse_yes_no("Maybe") is None


def test_env_with_llm_user_on_fake_backend() -> None:
    fake = FakeChatModel(lambda r: "No" if "yes or no" in r.messages[-1].content else "- edited")
    env = gym.make("persona_lab/EditEmail-v0", user="llm", backend=fake, rounds=2)
    obs, _ = env.reset(seed=0)
    _, reward, _, _, info = env.step("A plain draft.")
    assert info["edited_text"] == "- edited" and reward < 0 and not info["accepted"]
    assert len(info["usage"]) == 2


def test_verifiable_population_is_seeded_and_distinct() -> None:
    pop = make_population("verifiable", k=3, seed=0)
    sources = ["news", "reddit"]
    a, b = pop.persona(0, "summarization", sources), pop.persona(0, "summarization", sources)
    assert a == b
    users = {tuple(pop.persona(i, "summarization", sources).preferences["news"].ids) for i in range(20)}
    assert len(users) > 5
    for i in range(20):
        ids = pop.persona(i, "summarization", sources).preferences["news"].ids
        assert len(ids) == 3 and catalog.compatible(ids)


def test_population_file_errors_name_file_and_field(tmp_path) -> None:
    from persona_lab.core.errors import DataError

    bad = tmp_path / "users.yaml"
    bad.write_text("personas:\n  - id: a\n    preferences:\n      news: [format.bulets]\n")
    with pytest.raises(DataError) as info:
        make_population(str(bad))
    msg = str(info.value)
    assert "users.yaml" in msg and "preferences.news" in msg and "did you mean" in msg
    good = tmp_path / "users.json"
    good.write_text('{"personas": [{"id": "a", "preferences": {"news": ["format.bullets"]}}]}')
    persona = make_population(str(good)).persona(0, "summarization", ["news"])
    assert persona.preferences["news"].ids == ("format.bullets",)
