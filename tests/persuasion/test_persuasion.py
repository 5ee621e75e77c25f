"""Persuasion-v0: the scripted state machine, the env's stop logic, regeneration, the LLM persuadee."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import persona_lab  # noqa: F401  (registers the envs)
from persona_lab.agents import create_agent
from persona_lab.agents.persuasion_agents import ASK, STRATEGY_LINES
from persona_lab.core.errors import ConfigError
from persona_lab.core.messages import Message
from persona_lab.envs.base import PRIVILEGED
from persona_lab.envs.persuasion_env import PersuasionEnv
from persona_lab.eval.runner import RunConfig, Runner
from persona_lab.models.base import ChatRequest
from persona_lab.simulators import persuasion as P
from persona_lab.simulators import persuasion_prompts as PP
from persona_lab.testing.fakes import FakeChatModel

ENV_ID = "persona_lab/Persuasion-v0"
PERSONA = P.PersuadeePersona("p", 0.3, ("distrusts_charities", "cant_afford"), ("personal_story", "logical_appeal"),
                             ("emotional_appeal",))


def _respond(text: str, state: P.PersuadeeState | None = None, persona: P.PersuadeePersona = PERSONA,
             seed: int = 0, **kw: float) -> P.PersuadeeTurn:
    user = P.ScriptedPersuadee(noise=0.0, **kw)
    return user.respond(persona, (), state or P.initial_state(persona), text, np.random.default_rng(seed))


# --- vocabulary and state machine ------------------------------------------------------------------
def test_each_scripted_line_is_recognized_as_its_own_strategy() -> None:
    for strategy, line in STRATEGY_LINES.items():
        assert P.detect_strategies(line) == (strategy,), strategy
    for objection in P.OBJECTIONS.values():
        assert P.detect_answered(objection.counter, [objection.id]) == (objection.id,)
    assert P.detect_ask(ASK) and not any(P.detect_ask(line) for line in STRATEGY_LINES.values())


def test_strategies_move_willingness_as_the_persona_says() -> None:
    w0 = PERSONA.inclination
    moved = _respond(STRATEGY_LINES["personal_story"]).state.willingness - w0
    neutral = _respond(STRATEGY_LINES["self_modeling"]).state.willingness - w0
    off = _respond(STRATEGY_LINES["emotional_appeal"]).state.willingness - w0
    bored = _respond("The weather is nice.").state.willingness - w0
    assert moved > neutral > 0 > bored > off
    twice = _respond(STRATEGY_LINES["personal_story"], _respond(STRATEGY_LINES["personal_story"]).state)
    assert twice.state.willingness - moved - w0 < moved  # diminishing returns


def test_answering_an_objection_closes_it() -> None:
    turn = _respond(P.OBJECTIONS["distrusts_charities"].counter)
    assert turn.state.open_objections == ("cant_afford",)
    assert turn.trace["answered"] == ["distrusts_charities"]
    assert turn.state.willingness > PERSONA.inclination
    assert "money" in turn.reply.lower() or "spare" in turn.reply.lower()  # it voices the next objection


def test_asking_too_early_is_pushy_and_repeated_asks_force_a_decision() -> None:
    first = _respond(ASK)
    assert not first.state.decided and first.state.willingness < PERSONA.inclination
    second = _respond(ASK, first.state)
    assert second.state.decided and second.state.donation == 0.0


def test_persuaded_persona_donates_when_asked() -> None:
    state = P.initial_state(PERSONA)
    for text in (P.OBJECTIONS["distrusts_charities"].counter + " " + STRATEGY_LINES["personal_story"],
                 P.OBJECTIONS["cant_afford"].counter + " " + STRATEGY_LINES["logical_appeal"] + " " + ASK):
        turn = _respond(text, state)
        state = turn.state
    assert state.decided and state.donation and state.donation > 0
    assert f"${state.donation:.2f}" in turn.reply


def test_donation_amount_bounds() -> None:
    assert P.donation_amount(0.0) == 0.0 and P.donation_amount(0.4) == 0.0
    assert P.donation_amount(1.0) == 2.0 and P.donation_amount(0.65) == 1.0
    assert P.donation_amount(1.0, ["cant_afford"]) == 0.5


def test_personas_are_deterministic_and_varied() -> None:
    assert P.persona_for_index(3) == P.persona_for_index(3)
    personas = [P.persona_for_index(i) for i in range(50)]
    assert len({p.inclination for p in personas}) > 40
    assert all(1 <= len(p.objections) <= 3 and len(p.moved_by) == 2 for p in personas)
    assert all(not set(p.put_off_by) & set(p.moved_by) for p in personas)
    assert P.PersuadeePersona.from_dict(personas[0].to_dict()) == personas[0]


# --- env ---------------------------------------------------------------------------------------------
def test_episode_terminates_on_decision_with_donation_reward() -> None:
    env = gym.make(ENV_ID, rounds=10)
    obs, info = env.reset(seed=0, options={"user_index": 0})
    assert obs["turn"] == 0 and obs["turns_left"] == 10 and obs["dialogue"].startswith("Persuadee: ")
    assert "persona" in info[PRIVILEGED]["next"]
    oracle = create_agent("oracle", "persuasion")
    rewards = []
    while True:
        oracle.reveal(info[PRIVILEGED].get("next", {}))
        obs, reward, term, trunc, info = env.step(oracle.act(obs))
        rewards.append(reward)
        truth = info[PRIVILEGED]["round"]
        assert truth["delta"] == pytest.approx(truth["willingness_after"] - truth["willingness_before"], abs=1e-4)
        if term or trunc:
            break
    assert term and not trunc and info["decided"] and info["outcome"] == "decided"
    assert rewards[-1] == info["donation"] > 0 and all(r == 0 for r in rewards[:-1])
    assert "next" not in info[PRIVILEGED]
    assert env.unwrapped.dialogue.finished


def test_budget_truncates_and_forces_a_decision() -> None:
    env = PersuasionEnv(rounds=3)
    env.reset(seed=1)
    for i in range(3):
        _, reward, term, trunc, info = env.step(STRATEGY_LINES["credibility_appeal"])
        assert not term
        assert trunc == (i == 2)
    assert info["decided"] and info["outcome"] == "budget" and info["donation"] is not None
    assert reward == info["donation"]
    assert "I have to go now." in info["user_reply"]
    with pytest.raises(RuntimeError, match="reset"):
        env.step("hi")


def test_goodbye_ends_the_episode() -> None:
    env = PersuasionEnv(rounds=10)
    env.reset(seed=0)
    env.dialogue = replace(env.dialogue, start=replace(env.dialogue.start, willingness=0.05))
    for _ in range(10):
        _, reward, term, trunc, info = env.step("whatever")
        if term or trunc:
            break
    assert term and info["outcome"] == "goodbye" and reward == 0.0


def test_unknown_population_says_how_to_fix() -> None:
    with pytest.raises(ConfigError, match="unknown persuadee population"):
        PersuasionEnv(population="verifiable")


def test_non_ascii_and_long_actions_stay_in_the_observation_space() -> None:
    env = PersuasionEnv(rounds=2)
    env.reset(seed=0)
    obs, *_ = env.step("你好 " * 2000)
    assert env.observation_space.contains(obs)


# --- regeneration -------------------------------------------------------------------------------------
def _finished_dialogue(seed: int = 3, rounds: int = 8) -> P.Dialogue:
    env = PersuasionEnv(rounds=rounds)
    agent = create_agent("no-learning", "persuasion")
    obs, _ = env.reset(seed=seed, options={"user_index": seed})
    while True:
        obs, _, term, trunc, _ = env.step(agent.act(obs))
        if term or trunc:
            break
    assert env.dialogue is not None
    return env.dialogue


def test_regeneration_keeps_earlier_turns_and_changes_the_outcome() -> None:
    d = _finished_dialogue()
    user = P.ScriptedPersuadee()
    t = 1
    assert len(d.exchanges) > t + 1
    weak = P.regenerate(d, t, "ok.", user, seed=11)
    counters = " ".join(P.OBJECTIONS[o].counter for o in d.persona.objections)
    moves = " ".join(STRATEGY_LINES[s] for s in d.persona.moved_by)
    strong = P.regenerate(d, t, f"{counters} {moves}", user, seed=11)
    for new in (weak, strong):
        assert new.exchanges[:t] == d.exchanges[:t]  # turns < t identical, texts and states
        assert new.persona == d.persona and new.opening == d.opening and new.finished
    assert strong.exchanges[t].agent != d.exchanges[t].agent
    assert strong.donation != weak.donation
    assert strong.donation > weak.donation


def test_regenerating_with_the_original_turn_reproduces_the_dialogue() -> None:
    d = _finished_dialogue()
    user = P.ScriptedPersuadee()
    for t in range(len(d.exchanges)):
        assert P.regenerate(d, t, d.exchanges[t].agent, user) == d


def test_regeneration_with_an_agent_and_bounds() -> None:
    d = _finished_dialogue(rounds=6)
    user = P.ScriptedPersuadee()
    seen = []

    def agent(partial: P.Dialogue) -> str:
        seen.append(len(partial.exchanges))
        return STRATEGY_LINES["logical_appeal"] + " " + ASK

    out = P.regenerate(d, 0, "Hi there.", user, seed=0, agent=agent)
    assert seen and seen[0] == 1 and out.finished and len(out.exchanges) <= d.budget
    with pytest.raises(ConfigError, match="outside"):
        P.regenerate(d, len(d.exchanges), "x", user)


def test_dialogue_round_trips_through_json() -> None:
    import json

    d = _finished_dialogue()
    assert P.Dialogue.from_dict(json.loads(json.dumps(d.to_dict()))) == d
    assert d.history()[0] == Message("user", d.opening) and len(d.history()) == 1 + 2 * len(d.exchanges)


# --- runner -------------------------------------------------------------------------------------------
def test_oracle_outpersuades_no_learning_through_the_runner(tmp_path: Path) -> None:
    def run(agent: str) -> dict[str, float]:
        cfg = RunConfig(env_id=ENV_ID, agent=agent, rounds=8, episodes=24)
        return Runner(cfg, tmp_path / agent).run().summary["metrics"]

    oracle, plain = run("oracle"), run("no-learning")
    for key in ("episode/donation_rate", "episode/donation", "episode/turns", "episode/early_decision",
                "episode/goodbye", "episode/final_willingness", "episode/willingness_gain"):
        assert key in plain
    assert 0 < plain["episode/donation_rate"] < 1 and 0 <= plain["episode/donation"] <= 2
    assert oracle["episode/donation"] > plain["episode/donation"] + 0.3
    assert oracle["episode/donation_rate"] >= plain["episode/donation_rate"]


# --- LLM persuadee ------------------------------------------------------------------------------------
def test_llm_persuadee_on_a_fake_model() -> None:
    replies = iter(["Sure, tell me more.\nWILLINGNESS: 6", "Okay, fine.\nWILLINGNESS: 8/10\nDECISION: $1.50"])
    model = FakeChatModel(lambda req: next(replies))
    env = gym.make(ENV_ID, user="llm", backend=model, rounds=5)
    env.reset(seed=0)
    _, r1, term, _, info = env.step("Hi! Want to hear about Save the Children?")
    assert info["user_reply"] == "Sure, tell me more." and not term and r1 == 0.0
    assert info[PRIVILEGED]["round"]["willingness_after"] == pytest.approx(0.6)
    _, r2, term, trunc, info = env.step("Would you donate?")
    assert term and not trunc and r2 == 1.5 and info["donation"] == 1.5
    assert "DECISION" not in info["user_reply"] and info[PRIVILEGED]["round"]["willingness_after"] == 0.8
    sys_prompt = model.requests[0].messages[0].content
    assert env.unwrapped.dialogue.persona.describe() in sys_prompt and "WILLINGNESS" in sys_prompt
    assert model.requests[1].messages[-1] == Message("user", "Would you donate?")


def test_llm_persuadee_decides_at_the_budget_and_survives_garbage() -> None:
    def respond(req: ChatRequest) -> str:
        return "I'll give 50 cents." if "chat has ended" in req.messages[-1].content else "hmm"
    env = PersuasionEnv(user="llm", backend=FakeChatModel(respond), rounds=1)
    env.reset(seed=0)
    _, reward, term, trunc, info = env.step("hello")
    assert trunc and not term and reward == 0.5 and info["parse_failed"]  # no WILLINGNESS line: state kept
    env2 = PersuasionEnv(user="llm", backend=FakeChatModel("no idea"), rounds=1)
    env2.reset(seed=0)
    _, reward, _, trunc, info = env2.step("hello")
    assert trunc and info["decided"] and 0.0 <= reward <= 2.0


@pytest.mark.parametrize(("text", "amount"), [
    ("DECISION: $1.50", 1.5), ("I'll donate $2.", 2.0), ("I'll give 50 cents", 0.5), ("1 dollar", 1.0),
    ("I'll donate $1 of my $2 bonus.", 1.0), ("Out of my $2 bonus, I'll give $0.30", 0.3),
    ("I won't donate, sorry.", 0.0), ("Nothing this time.", 0.0), ("Half of it.", 1.0),
    ("All of it!", 2.0), ("$5", 2.0), ("decision: $0", 0.0), ("maybe later", None),
])
def test_parse_donation(text: str, amount: float | None) -> None:
    assert P.parse_donation(text) == amount


def test_parse_persuadee_turn() -> None:
    t = PP.parse_persuadee_turn("Fine.\n**WILLINGNESS: 3**\nGOODBYE")
    assert t.reply == "Fine." and t.willingness == pytest.approx(0.3) and t.goodbye and t.donation is None
    t = PP.parse_persuadee_turn("Sure!")
    assert t.willingness is None and not t.goodbye


def test_prompts_differ_with_their_inputs() -> None:
    other = replace(PERSONA, objections=("prefers_local",), inclination=0.8)
    hist = (Message("user", "Hi!"),)
    assert PP.persuadee_turn_prompt(PERSONA, hist, "x") != PP.persuadee_turn_prompt(other, hist, "x")
    assert PP.persuadee_turn_prompt(PERSONA, hist, "x") != PP.persuadee_turn_prompt(PERSONA, hist, "y")
    assert PP.persuadee_decision_prompt(PERSONA, hist) != PP.persuadee_decision_prompt(other, hist)
    msgs = PP.persuadee_turn_prompt(PERSONA, hist, "x")
    assert [m.role for m in msgs] == ["system", "user", "assistant", "user"]


def test_llm_persuaders_see_the_dialogue_and_the_oracle_the_persona() -> None:
    env = PersuasionEnv(rounds=4)
    obs, info = env.reset(seed=2)
    model = FakeChatModel("Hi! Would you donate?")
    oracle = create_agent("oracle", "persuasion", model=model)
    oracle.reveal(info[PRIVILEGED]["next"])
    assert oracle.act(obs) == "Hi! Would you donate?"
    msgs = model.requests[-1].messages
    assert env.dialogue.persona.describe() in msgs[0].content and obs["dialogue"] in msgs[-1].content
    assert "4 turns left" in msgs[0].content
    plain = create_agent("no-learning", "persuasion", model=model)
    plain.act(obs)
    assert env.dialogue.persona.describe() not in model.requests[-1].messages[0].content


def test_dialogue_rebuilt_from_run_records_regenerates(tmp_path: Path) -> None:
    from persona_lab.core.records import read_records
    from persona_lab.simulators.persuasion import dialogue_from_records

    Runner(RunConfig(env_id=ENV_ID, agent="no-learning", rounds=6, episodes=1), tmp_path / "r").run()
    recs = read_records(tmp_path / "r")
    d = dialogue_from_records(recs)
    assert d.finished and d.donation == recs[-1].info["donation"] and d.budget == 6
    assert recs[0].prompt[0]["role"] == "system" and "Persuadee:" in recs[0].prompt[-1]["content"]
    user = P.ScriptedPersuadee()
    again = P.regenerate(d, 1, d.exchanges[1].agent, user)
    assert [e.user for e in again.exchanges] == [e.user for e in d.exchanges] and again.donation == d.donation
