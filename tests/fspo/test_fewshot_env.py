"""FewShotPreference-v0: the contract, the reward, privileged info, its agents, and bench fspo (scripted)."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import pytest

import persona_lab  # noqa: F401  (registers the envs)
from persona_lab.agents import create_agent
from persona_lab.agents.fspo_agents import infer_from_shots
from persona_lab.simulators import catalog
from persona_lab.simulators import fspo as F
from persona_lab.testing.contracts import check_registered_env

ENV_ID = "persona_lab/FewShotPreference-v0"


def test_contract_with_no_kwargs() -> None:
    from gymnasium.utils.env_checker import check_env

    env = gym.make(ENV_ID)
    check_env(env.unwrapped, skip_render_check=True)
    assert len(check_registered_env(ENV_ID, rounds=3)) == 3


def test_observation_reward_and_info() -> None:
    env = gym.make(ENV_ID, shots=2, rounds=2, split="interpolated")
    obs, info = env.reset(seed=5)
    truth = info["privileged"]["next"]
    shots, question = F.parse_episode(obs["prompt"])
    assert len(shots) == 2 and question == obs["question"]
    assert truth["split"] == "interpolated" and truth["preference"] == F.describe_user(truth["preference_ids"])
    assert obs["prompt"].startswith("# Example 1\n## Question\n") and "# Task\n" in obs["prompt"]
    base = F.find_question(question).answer
    perfect = catalog.apply_preferences(base, truth["preference_ids"])
    _, reward, term, trunc, info = env.step(perfect)
    assert reward == 1.0 and not term and not trunc
    assert info["checks"] == dict.fromkeys(catalog.canonical_order(truth["preference_ids"]), True)
    assert info["privileged"]["round"]["user_id"] == truth["user_id"] and "preference" not in info
    # a plain answer satisfies fewer checkers; the description variant's completion is parsed
    _, reward2, _, trunc2, info2 = env.step(F.completion_text("A plain answer.", "Some description."))
    assert reward2 == info2["preference_satisfaction"] < 1.0 and trunc2
    assert reward2 == sum(info2["checks"].values()) / len(info2["checks"])


def test_agents_scripted_order_and_base_prompts_differ() -> None:
    env = gym.make(ENV_ID, shots=3, rounds=2)
    means = {}
    for name in ("no-learning", "few-shot", "fspo", "oracle"):
        agent = create_agent(name, "fewshot", None)
        rewards = []
        for ep in range(6):
            obs, info = env.reset(seed=ep)
            done = False
            while not done:
                if hasattr(agent, "reveal"):
                    agent.reveal(info["privileged"]["next"])
                obs, r, term, trunc, info = env.step(agent.act(obs))
                rewards.append(r)
                done = term or trunc
        means[name] = sum(rewards) / len(rewards)
    assert means["no-learning"] < 0.6 < means["few-shot"] <= means["oracle"] == 1.0
    obs, _ = env.reset(seed=0)
    zero = create_agent("no-learning", "fewshot", None).base_prompt(obs)
    few = create_agent("few-shot", "fewshot", None).base_prompt(obs)
    assert zero != few and obs["prompt"] in few[-1]["content"] and obs["prompt"] not in zero[-1]["content"]


def test_scripted_few_shot_inference_reads_the_shots() -> None:
    data = F.default_data()
    user = data.users_in("heldout")[0]
    shots = [(p.question, p.preferred, p.dispreferred) for p in data.pairs_by_user[user.id]["train"][:6]]
    inferred = infer_from_shots(shots)
    assert set(user.preference_ids) & set(inferred)
    assert infer_from_shots([]) == []


def test_bench_fspo_scripted_writes_tables_and_resumes(tmp_path: Path) -> None:
    from persona_lab.cli.main import main

    out = tmp_path / "bench"
    args = ["bench", "fspo", "--base", "scripted", "--quick", "--out", str(out)]
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["rows"]) == {"zero-shot", "few-shot prompting", "oracle description"}
    for split in F.SPLITS:
        assert results["rows"]["zero-shot"]["splits"][split]["win_rate"] == 0.5
        oracle = results["rows"]["oracle description"]["splits"][split]
        assert oracle["ci_low"] <= oracle["win_rate"] <= oracle["ci_high"] and oracle["win_rate"] > 0.5
    assert (out / "win_rates.png").stat().st_size > 0 and "| zero-shot |" in (out / "results.md").read_text()
    answers = out / "answers" / "zero-shot" / "heldout.jsonl"
    stamp = answers.stat().st_mtime_ns
    assert main(args) == 0 and answers.stat().st_mtime_ns == stamp  # resumed: nothing recomputed


def test_bad_kwargs_are_config_errors() -> None:
    from persona_lab.core.errors import ConfigError

    with pytest.raises(ConfigError, match="split"):
        gym.make(ENV_ID, split="test")
    with pytest.raises(ConfigError, match="user kind"):
        gym.make(ENV_ID, user="human")


def test_llm_user_adds_a_judge_verdict_beside_the_checker_reward() -> None:
    from persona_lab.core.records import TransitionRecord
    from persona_lab.envs.fewshot_env import FewShotPreferenceEnv
    from persona_lab.testing import FakeChatModel

    seen: list[str] = []

    def judge(request):  # noqa: ANN001, ANN202
        seen.append(request.messages[-1].content)
        return "Yes, it does." if "Key takeaway" in request.messages[-1].content else "Maybe"

    env = gym.make(ENV_ID, user="llm", backend=FakeChatModel(judge), rounds=2, shots=1).unwrapped
    obs, info = env.reset(seed=0)
    truth = info["privileged"]["next"]
    answer = "A plain answer.\nKey takeaway: keep it plain."
    _, reward, _, _, info = env.step(answer)
    assert reward == info["preference_satisfaction"]  # the reward is the checkers', not the judge's
    assert info["llm_verdict"] is True and truth["preference"] in seen[0] and obs["question"] in seen[0]
    _, _, _, _, info2 = env.step("Plain.")
    assert info2["llm_verdict"] is None  # an unparseable reply is a failure to judge, not a yes
    assert F.parse_yes_no("No.") is False and F.parse_yes_no("**Yes**") is True and F.parse_yes_no("") is None
    rec = [TransitionRecord.from_dict({"episode": 0, "round": i, "env_id": ENV_ID, "seed": 0, "user_id": "u",
                                       "doc_id": "q", "prompt": None, "observation": {}, "action": "a",
                                       "action_hash": "", "reward": 0.0, "terminated": False, "truncated": False,
                                       "feedback": {}, "info": inf, "privileged": {}, "agent": {}})
           for i, inf in enumerate((info, info2))]
    metrics = FewShotPreferenceEnv.episode_metrics(rec)
    assert metrics["episode/llm_yes_rate"] == 1.0 and all(k.startswith("episode/") for k in metrics)
    assert metrics["episode/llm_checker_agreement"] == float(info["preference_satisfaction"] == 1.0)


def test_pair_reward_stats_are_zero_for_an_untrained_adapter() -> None:
    from peft import get_peft_model

    from persona_lab.eval.fspo_bench import pair_reward_stats
    from persona_lab.testing.tiny import tiny_chat_model
    from persona_lab.train.common import lora_config
    from persona_lab.train.fspo import FSPOTrainConfig

    model, tok = tiny_chat_model(seed=0)
    peft = get_peft_model(model, lora_config(FSPOTrainConfig()))  # B = 0: policy == reference
    data = F.build_fspo_data(F.FSPODataConfig(train_users=12, heldout_users=1, interpolated_users=1,
                                              train_pairs_per_user=2, eval_pairs_per_user=1, answer_sentences=1))
    rows = F.training_rows(data, n_shots=1, draws=1)[:3]
    stats = pair_reward_stats("", "", rows, beta=0.1, model=peft, tokenizer=tok)
    assert stats == {"accuracy": 0.0, "margin": 0.0, "beta_margin": 0.0, "n": 3}
    with random_lora_b(peft):
        moved = pair_reward_stats("", "", rows, beta=0.1, model=peft, tokenizer=tok)
    assert moved["margin"] != 0.0


def random_lora_b(model):  # noqa: ANN001, ANN201
    """Context: LoRA B weights set to small random values (so the policy differs from the reference)."""
    import contextlib

    import torch

    @contextlib.contextmanager
    def ctx():  # noqa: ANN202
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "lora_B" in n:
                    p.copy_(torch.randn_like(p) * 0.5)
        yield

    return ctx()


def test_an_answer_without_words_satisfies_nothing() -> None:
    env = gym.make(ENV_ID, rounds=3)
    env.reset(seed=0)
    for empty in ("", "   ", "!!! 🎉"):
        _, reward, _, _, info = env.step(empty)
        assert reward == 0.0 and not any(info["checks"].values())


def test_an_empty_model_answer_is_flagged_and_counted_not_passed_off() -> None:
    """A model whose answer parses to nothing gets the packaged base answer (so the episode goes on),
    flagged `parse_failed`, and the run's fidelity counters count it; a real answer is not flagged."""
    from persona_lab.agents.base import create_agent
    from persona_lab.testing import FakeChatModel

    obs = {"question": "How do I keep basil alive indoors?", "prompt": "# Task\n## Question\nHow do I keep basil alive indoors?"}
    for name in ("no-learning", "few-shot", "oracle"):
        agent = create_agent(name, "fewshot", FakeChatModel(""))
        assert agent.act(obs) and agent.step_info["parse_failed"] is True, name
        agent = create_agent(name, "fewshot", FakeChatModel("Water it when the soil is dry."))
        assert agent.act(obs) == "Water it when the soil is dry." and "parse_failed" not in agent.step_info, name

