"""PRELUDE learners: scripted inference, aggregation, CIPHER memory, and that learning lowers cost."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest

from persona_lab.agents import Transition, create_agent, skills
from persona_lab.agents.prompts import (
    aggregate_preferences_messages,
    draft_messages,
    icl_messages,
    infer_preference_messages,
)
from persona_lab.core.errors import ConfigError
from persona_lab.envs.base import PRIVILEGED
from persona_lab.simulators import catalog
from persona_lab.testing import FakeChatModel


def run_agent(agent_name: str, rounds: int, env_id: str = "persona_lab/EditEmail-v0", seed: int = 0, **kw: object) -> int:
    env = gym.make(env_id, rounds=rounds, population=kw.pop("population", "prelude"), effort=kw.pop("effort", None))
    agent = create_agent(agent_name, env.unwrapped.task, None, **kw)
    obs, info = env.reset(seed=seed)
    total = 0
    for _ in range(rounds):
        if hasattr(agent, "reveal"):
            agent.reveal(info[PRIVILEGED]["next"])
        action = agent.act(obs)
        obs2, reward, _, trunc, info = env.step(action)
        agent.update(Transition(obs, action, reward, {k: info[k] for k in env.unwrapped.feedback_keys}))
        total += info["cost"]
        obs = obs2
    return total


def test_infer_names_what_the_edit_introduced() -> None:
    draft = "Hello,\n\nThe results are in. The model works. We should publish soon.\n\nBest regards"
    truth = ["format.bullets", "email.no_closing"]
    edited = catalog.apply_preferences(draft, truth)
    inferred = skills.infer(draft, edited)
    assert set(truth) <= set(inferred)
    assert skills.infer(draft, draft) == []


def test_infer_keeps_applied_items_the_user_kept() -> None:
    draft = catalog.apply_preferences("Hello,\n\nOne thing. Another thing.\n\nBest regards", ["format.bullets"])
    edited = catalog.apply_preferences(draft, ["email.no_closing"])
    assert "format.bullets" in skills.infer(draft, edited, applied=["format.bullets"])
    assert "format.bullets" not in skills.infer(draft, edited)


def test_aggregate_votes() -> None:
    a = catalog.describe(["format.bullets", "markers.emojis"])
    b = catalog.describe(["format.bullets"])
    c = catalog.describe(["format.numbered"])
    merged = catalog.recognize(skills.aggregate([a, b, b, c, a]))
    assert "format.bullets" in merged and "format.numbered" not in merged and "markers.emojis" in merged
    assert skills.aggregate([]) == ""


@pytest.mark.parametrize("encoder", ["tfidf", "minilm"])
def test_cipher_learns(encoder: str) -> None:
    base = run_agent("no-learning", 40)
    cipher = run_agent("cipher", 40, k=5, encoder=encoder)
    assert cipher < 0.5 * base


def test_learners_run_and_beat_no_learning_on_email() -> None:
    base = run_agent("no-learning", 40)
    for name in ("continual", "icl-edit", "explore-exploit"):
        kw = {"encoder": "tfidf"} if name == "icl-edit" else {}
        assert run_agent(name, 40, **kw) < base, name


def test_cipher_memory_saves_and_loads(tmp_path: Path) -> None:
    agent = create_agent("cipher", "email", None, k=1, encoder="tfidf")
    doc = "Notes: the lab meeting moved to Friday. Please tell the group."
    draft = agent.act({"document": doc, "round": 0})
    edited = catalog.apply_preferences(draft, ["format.bullets"])
    agent.update(Transition({"document": doc, "round": 0}, draft, -3.0, {"edited_text": edited, "accepted": False, "cost": 3}))
    assert len(agent.memory) == 1
    agent.save(tmp_path)
    clone = create_agent("cipher", "email", None, k=1, encoder="tfidf")
    clone.load(tmp_path)
    assert clone.memory is not None and clone.memory.payloads == agent.memory.payloads
    assert "format.bullets" in catalog.recognize(clone.memory.payloads[0]["preference"])


def test_cipher_with_fake_model_uses_the_paper_calls() -> None:
    calls: list[str] = []

    def respond(req):  # noqa: ANN001
        text = req.messages[-1].content
        calls.append("infer" if "judging by these edits" in text else "merge" if "most of these descriptions share" in text else "draft")
        return {"infer": "bullet points", "merge": "bullet points, brief"}.get(calls[-1], "- a draft")

    agent = create_agent("cipher", "summarization", FakeChatModel(respond), k=5, encoder="tfidf")
    for i in range(3):
        obs = {"document": f"Document number {i} about rivers and bridges.", "round": i}
        draft = agent.act(obs)
        agent.update(Transition(obs, draft, -1.0, {"edited_text": draft + " edited", "accepted": False, "cost": 1}))
    assert calls == ["draft", "infer", "draft", "infer", "merge", "draft", "infer"]


def test_edit_agents_reject_other_tasks() -> None:
    with pytest.raises(ConfigError, match="works in the tasks .*'email'.*not 'marketplace-nonexistent'"):
        create_agent("no-learning", "marketplace-nonexistent", None)
    with pytest.raises(ConfigError, match="cipher.*not 'marketplace'"):
        create_agent("cipher", "marketplace", None)


def test_agent_prompts_render_differently() -> None:
    assert draft_messages("email", "a") != draft_messages("email", "b")
    assert draft_messages("email", "a", "bullets") != draft_messages("email", "a", "brief")
    assert draft_messages("email", "a") != draft_messages("summarization", "a")
    assert icl_messages("email", "a", [("x", "y")]) != icl_messages("email", "a", [("x", "z")])
    assert infer_preference_messages([("a", "b")]) != infer_preference_messages([("a", "c")])
    assert aggregate_preferences_messages(["p"]) != aggregate_preferences_messages(["q"])
    with pytest.raises(ValueError):
        draft_messages("poetry", "a")
