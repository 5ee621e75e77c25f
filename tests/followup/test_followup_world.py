"""The follow-up world: lists, question bank, scripted and LLM users, env, agents, runner."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import persona_lab  # noqa: F401  (registers the envs)
from persona_lab.agents import create_agent
from persona_lab.agents.followup_agents import answer, answer_messages, base_answer
from persona_lab.core.errors import BackendUnavailableError, ConfigError
from persona_lab.core.io import read_jsonl
from persona_lab.core.messages import Message
from persona_lab.core.records import TransitionRecord
from persona_lab.envs.base import PRIVILEGED
from persona_lab.envs.followup_env import FollowUpEnv
from persona_lab.eval.runner import RunConfig, Runner
from persona_lab.models.cache import CachedChatModel
from persona_lab.simulators import catalog
from persona_lab.simulators.followup import (
    DIMENSIONS,
    FOLLOWUPS,
    NEGATIVE,
    POSITIVE,
    QUESTIONS,
    TOPICS,
    FollowUpState,
    LLMFollowUpUser,
    ScriptedFollowUpUser,
    assess,
    find_question,
    followup_list,
    lexical_label,
    make_followup_persona,
    parse_conversation,
    render_conversation,
)
from persona_lab.simulators.followup_prompts import (
    followup_classification_prompt,
    followup_user_prompt,
    parse_followup,
    parse_label,
)
from persona_lab.testing.fakes import FakeChatModel

ENV = "persona_lab/FollowUp-v0"


# --- the lists and the bank -----------------------------------------------------------------------


def test_followup_lists_have_six_dimensions_of_ten_and_ten() -> None:
    assert set(FOLLOWUPS) == set(DIMENSIONS) and len(DIMENSIONS) == 6
    texts = [t for _, _, t in followup_list()]
    assert len(texts) == 120 and len(set(texts)) == 120
    for dim in DIMENSIONS:
        assert len(FOLLOWUPS[dim][POSITIVE]) == 10 and len(FOLLOWUPS[dim][NEGATIVE]) == 10
    assert len(followup_list(POSITIVE)) == len(followup_list(NEGATIVE)) == 60


def test_every_question_is_answerable_from_its_first_fact() -> None:
    assert len(TOPICS) >= 8 and all(len(t.questions) == 4 for t in TOPICS)
    for q in QUESTIONS.values():
        # the first fact alone holds a keyword and an answer term; three facts are informative
        first = assess(q.facts[0], q, [])
        assert first.checks["relevance"] and first.checks["correctness"], q.id
        assert assess(" ".join(q.facts[:3]), q, []).ok, q.id
        assert find_question(f"Thanks. {q.text}") == q


def test_assess_flags_each_content_dimension() -> None:
    q = QUESTIONS["sleep/0"]
    assert not assess("x9#% @@ ~~ 1 2", q, []).checks["understanding"]
    off = assess("Sourdough starters like flour and water once a day at room temperature, they say often.", q, [])
    assert off.checks["understanding"] and not off.checks["relevance"]
    wrong = assess("Adults need about four hours of sleep each night, and that is plenty for most people.", q, [])
    assert wrong.checks["relevance"] and not wrong.checks["correctness"]
    thin = assess("Adults: seven to nine hours of sleep.", q, [])
    assert thin.checks["correctness"] and not thin.checks["informativeness"]


def test_conversation_text_round_trips() -> None:
    msgs = (Message("user", "Hi?\nTwo lines."), Message("assistant", "A\n\nB"), Message("user", "Ok."))
    assert parse_conversation(render_conversation(msgs)) == msgs


# --- the scripted user -----------------------------------------------------------------------------


def _persona(ids: list[str], goal: int = 2):
    persona = make_followup_persona("verifiable", 5, goal_answers=goal)
    pref = type(persona.preference)(catalog.describe(ids), tuple(catalog.canonical_order(ids)))
    return type(persona)(persona.id, pref, persona.topic, persona.questions, goal)


@pytest.mark.parametrize("ids", [["format.bullets"], ["tone.enthusiastic", "markers.emojis"],
                                 ["length.max_words_50", "tone.polite"], ["format.qa", "markers.questions"]])
def test_scripted_user_is_positive_when_preferences_hold_and_negative_otherwise(ids: list[str]) -> None:
    persona = _persona(ids)
    user = ScriptedFollowUpUser()
    q = persona.question(0)
    plain = base_answer(q.text)
    following = catalog.apply_preferences(plain, ids)
    assert all(catalog.satisfied(following, ids).values()) and not all(catalog.satisfied(plain, ids).values())
    for seed in range(5):
        conv = (Message("user", q.text),)
        good, state = user.respond(persona, FollowUpState(), (*conv, Message("assistant", following)),
                                   np.random.default_rng(seed))
        assert good.label == POSITIVE and good.utterance in FOLLOWUPS[good.dimension][POSITIVE]
        assert state.answered == 1 and good.text.endswith(persona.question(1).text)
        bad, state = user.respond(persona, FollowUpState(), (*conv, Message("assistant", plain)),
                                  np.random.default_rng(seed))
        assert bad.label == NEGATIVE and state.answered == 0
        assert bad.dimension in ("instruction_following", "engagingness")
        assert bad.utterance in FOLLOWUPS[bad.dimension][NEGATIVE] and bad.text.endswith(q.text)


def test_scripted_user_names_the_failed_dimension_and_can_restate() -> None:
    persona = _persona(["format.bullets"])
    q = persona.question(0)
    conv = (Message("user", q.text), Message("assistant", base_answer(q.text)))
    reply, _ = ScriptedFollowUpUser(restate=True).respond(persona, FollowUpState(), conv, np.random.default_rng(0))
    assert reply.dimension == "instruction_following" and catalog.CATALOG["format.bullets"].statement in reply.text
    gibberish = (Message("user", q.text), Message("assistant", "zq#x 8@@ ~~k"))
    reply, _ = ScriptedFollowUpUser().respond(persona, FollowUpState(), gibberish, np.random.default_rng(0))
    assert reply.dimension == "understanding" and reply.label == NEGATIVE


def test_scripted_user_reaches_the_goal() -> None:
    persona = _persona(["format.bullets"], goal=2)
    user, state = ScriptedFollowUpUser(), FollowUpState()
    for turn in range(2):
        q = persona.question(state.answered)
        conv = (Message("user", q.text), Message("assistant", answer(q.text, preference_ids=["format.bullets"])))
        reply, state = user.respond(persona, state, conv, np.random.default_rng(turn))
    assert reply.goal_met and state.answered == 2


# --- the LLM user on a fake model ----------------------------------------------------------------


def test_followup_prompts_render_their_inputs() -> None:
    conv = (Message("user", "Q1?"), Message("assistant", "Answer one."))
    a = followup_user_prompt("Use bullet points.", "Q1?", "Q2?", conv)
    b = followup_user_prompt("Be brief.", "Q1?", None, conv)
    assert a != b and "Use bullet points." in a[-1].content and '"Q2?"' in a[-1].content
    assert "everything you need" in b[-1].content and "Answer one." in b[-1].content
    assert "Thanks!" in followup_classification_prompt("Thanks!")[-1].content
    with pytest.raises(ValueError):
        followup_user_prompt("", "Q1?", None, conv)


@pytest.mark.parametrize(("text", "label", "message"), [
    ("VERDICT: positive\nMESSAGE: Great, thanks! What next?", POSITIVE, "Great, thanks! What next?"),
    ("**Verdict:** Negative\n**Message:** \"That's not what I asked.\"", NEGATIVE, "That's not what I asked."),
    ("verdict - not satisfied\nmessage = Try again.", NEGATIVE, "Try again."),
    ("Great answer, thanks!", None, "Great answer, thanks!"),
    ("VERDICT: positive", POSITIVE, ""),
    ("<<<\nGood answer.\n>>>", None, "Good answer."),
])
def test_parse_followup_is_robust(text: str, label: str | None, message: str) -> None:
    assert parse_followup(text) == (label, message)


def test_parse_label() -> None:
    assert parse_label("Positive.") == POSITIVE and parse_label(" negative") == NEGATIVE
    assert parse_label("The user is not satisfied") == NEGATIVE and parse_label("hmm") is None


def test_llm_user_labels_its_own_followup_and_falls_back() -> None:
    persona = _persona(["format.bullets"], goal=2)
    q = persona.question(0)
    conv = (Message("user", q.text), Message("assistant", "Some answer."))
    model = FakeChatModel("VERDICT: positive\nMESSAGE: Lovely, thanks. " + persona.question(1).text)
    reply, state = LLMFollowUpUser(model).respond(persona, FollowUpState(), conv, np.random.default_rng(0))
    assert reply.label == POSITIVE and reply.classified_by == "self" and state.answered == 1
    assert reply.text.startswith("Lovely") and model.calls == 1 and len(reply.usage) == 1
    # no verdict: the classification prompt decides
    model = FakeChatModel(lambda r: "negative" if "classify" in r.messages[0].content else "Meh, not helpful.")
    reply, state = LLMFollowUpUser(model).respond(persona, FollowUpState(), conv, np.random.default_rng(0))
    assert reply.label == NEGATIVE and reply.classified_by == "prompt" and state.answered == 0 and model.calls == 2
    # neither parses: the closest list utterance decides
    model = FakeChatModel("You understood exactly what I was asking.")
    reply, _ = LLMFollowUpUser(model).respond(persona, FollowUpState(), conv, np.random.default_rng(0))
    assert (reply.label, reply.classified_by, reply.dimension) == (POSITIVE, "lexical", "understanding")
    assert lexical_label("Hmm, I think you misunderstood me. How do I ...?") == (NEGATIVE, "understanding")


def test_env_with_llm_user_on_fake_model() -> None:
    model = FakeChatModel(["VERDICT: negative\nMESSAGE: Not the format I wanted.",
                           "VERDICT: positive\nMESSAGE: Good. Next question please."])
    env = gym.make(ENV, user="llm", backend=model, rounds=4, goal_answers=1)
    obs, _ = env.reset(seed=0)
    _, r1, term, trunc, info = env.step("An answer.")
    assert (r1, term, trunc, info["followup_class"]) == (-1.0, False, False, NEGATIVE)
    assert info["followup"] == "Not the format I wanted." and info["usage"]
    obs, r2, term, trunc, info = env.step("A better answer.")
    assert (r2, term, trunc, info["goal_met"]) == (1.0, True, False, True)
    assert obs["message"] == "Good. Next question please."
    with pytest.raises(ConfigError, match="needs a model"):
        e = gym.make(ENV, user="llm", rounds=2)
        e.reset(seed=0)
        e.step("x")


# --- the env --------------------------------------------------------------------------------------


def test_env_episode_info_and_termination() -> None:
    env = gym.make(ENV, rounds=6, goal_answers=2, user_index=3)
    agent = create_agent("oracle", "followup")
    obs, info = env.reset(seed=0)
    truth = info[PRIVILEGED]["next"]
    assert obs["turn"] == 0 and obs["message"] == truth["question"] and "persona" in truth
    steps = 0
    while True:
        agent.reveal(info[PRIVILEGED]["next"])
        obs, reward, term, trunc, info = env.step(agent.act(obs))
        steps += 1
        for key in ("followup", "followup_class", "dimension", "satisfied", "checks", "goal_progress", "usage"):
            assert key in info
        assert info[PRIVILEGED]["round"]["persona"]["preference_ids"] == truth["preference_ids"]
        assert reward == 1.0 and info["followup_class"] == POSITIVE
        if term or trunc:
            break
    assert term and not trunc and steps == 2 and PRIVILEGED in info and "next" not in info[PRIVILEGED]
    assert parse_conversation(obs["conversation"])[-1].content == obs["message"]
    with pytest.raises(RuntimeError, match="reset"):
        env.step("more")


def test_env_truncates_when_the_goal_is_not_met() -> None:
    env = gym.make(ENV, rounds=3, population="prelude")
    obs, _ = env.reset(seed=4)
    agent = create_agent("no-learning", "followup")
    outcomes = []
    for _ in range(3):
        obs, reward, term, trunc, info = env.step(agent.act(obs))
        outcomes.append((reward, term, trunc))
    assert outcomes[-1][2] and not any(o[1] for o in outcomes)


def test_env_is_picklable_mid_episode_and_renders() -> None:
    env = gym.make(ENV, rounds=4, render_mode="ansi").unwrapped
    env.reset(seed=3)
    env.step("first answer about nothing")
    clone = pickle.loads(pickle.dumps(env))
    a, b = env.step("second answer"), clone.step("second answer")
    assert repr(a[:4]) == repr(b[:4])
    assert "follow-up" in env.render()
    env.close()
    env.close()


def test_scripted_rollouts_stay_inside_the_spaces() -> None:
    for episode in range(12):
        env = gym.make(ENV, rounds=4, population="prelude" if episode % 3 else "verifiable", restate=True).unwrapped
        agent = create_agent("oracle" if episode % 2 else "no-learning", "followup")
        obs, info = env.reset(seed=episode)
        assert env.observation_space.contains(obs)
        while True:
            if hasattr(agent, "reveal"):
                agent.reveal(info[PRIVILEGED]["next"])
            action = agent.act(obs)
            assert env.action_space.contains(action)
            obs, _, term, trunc, info = env.step(action)
            assert env.observation_space.contains(obs)
            if term or trunc:
                break


def test_flr_mode_needs_a_scorer_that_can_score() -> None:
    with pytest.raises(ConfigError, match="needs a scorer"):
        gym.make(ENV, reward_mode="flr")
    with pytest.raises(ConfigError, match="reward_mode"):
        gym.make(ENV, reward_mode="likes")
    for scorer in (FakeChatModel("ok"), CachedChatModel(FakeChatModel("ok"), None)):
        env = gym.make(ENV, reward_mode="flr", scorer=scorer, rounds=2)
        env.reset(seed=0)
        with pytest.raises(BackendUnavailableError, match="cannot score") as err:
            env.step("An answer.")
        assert "hf:smollm2-135m" in str(err.value)


def test_agents_for_the_followup_task() -> None:
    obs = {"conversation": "[user]\nHow much sleep does an adult need?", "message": "How much sleep does an adult need?",
           "turn": 0}
    plain = create_agent("no-learning", "followup").act(obs)
    assert plain == " ".join(QUESTIONS["sleep/0"].facts[:3])
    oracle = create_agent("oracle", "followup")
    oracle.reveal({"preference": "Use bullet points, one idea per bullet.", "preference_ids": ["format.bullets"]})
    assert catalog.satisfied(oracle.act(obs), ["format.bullets"])["format.bullets"]
    model = FakeChatModel("LLM answer")
    llm = create_agent("oracle", "followup", model)
    llm.reveal({"preference": "Be brief."})
    assert llm.act(obs) == "LLM answer" and "Be brief." in model.requests[0].messages[0].content
    assert answer_messages(obs)[-1] == Message("user", "How much sleep does an adult need?")
    with pytest.raises(ConfigError):
        create_agent("oracle", "followup").__class__(task="email")


# --- runner ---------------------------------------------------------------------------------------


def test_runner_end_to_end_with_the_scripted_user(tmp_path: Path) -> None:
    results = {}
    for agent in ("no-learning", "oracle"):
        cfg = RunConfig(env_id=ENV, agent=agent, rounds=6, episodes=3, env_kwargs={"population": "verifiable"})
        result = Runner(cfg, tmp_path / agent).run()
        assert result.failed_episodes == []
        recs = list(read_jsonl(tmp_path / agent / "transitions.jsonl"))
        assert recs and "privileged" not in recs[0]["info"] and recs[0]["privileged"]["persona"]
        assert recs[0]["prompt"][0]["role"] == "system" and recs[0]["feedback"]["followup"]
        results[agent] = json.loads((tmp_path / agent / "summary.json").read_text())["metrics"]
    assert results["oracle"]["episode/positivity_rate"] == 1.0 and results["oracle"]["episode/goal_rate"] == 1.0
    assert "episode/turns_to_goal" in results["oracle"]
    assert results["no-learning"]["episode/positivity_rate"] < results["oracle"]["episode/positivity_rate"]
    assert results["no-learning"]["episode/preference_satisfaction"] < 1.0


def test_episode_metrics_from_records() -> None:
    def rec(cls: str, reward: float, goal: bool = False, flr: float | None = None) -> TransitionRecord:
        info = {"followup_class": cls, "goal_met": goal, "preference_satisfaction": 1.0,
                "checks": dict.fromkeys(DIMENSIONS, True)}
        if flr is not None:
            info["flr"] = flr
        return TransitionRecord(episode=0, round=0, env_id=ENV, seed=0, action="a", action_hash="h", reward=reward,
                                terminated=False, truncated=False, info=info)

    m = FollowUpEnv.episode_metrics([rec(NEGATIVE, -1.0), rec(POSITIVE, 1.0), rec(POSITIVE, 1.0, goal=True)])
    assert m["episode/positivity_rate"] == pytest.approx(2 / 3) and m["episode/turns_to_goal"] == 3.0 and m["episode/goal_rate"] == 1.0
    assert "episode/mean_flr" not in m
    m = FollowUpEnv.episode_metrics([rec(NEGATIVE, -0.5, flr=-0.5), rec(NEGATIVE, 0.1, flr=0.1)])
    assert m["episode/mean_flr"] == pytest.approx(-0.2) and "episode/turns_to_goal" not in m and m["episode/goal_rate"] == 0.0
