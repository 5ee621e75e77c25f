"""RLHS data and training: the split never leaks, labels are the customer's, DPO and GRPO steps move LoRA."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from transformers import TrainerCallback

from persona_lab.core.errors import ConfigError
from persona_lab.envs.marketplace_env import MarketplaceEnv
from persona_lab.models.base import GenerationParams
from persona_lab.simulators.marketplace import ScriptedCustomer, get_scenario
from persona_lab.testing.fakes import FakeChatModel
from persona_lab.train.rlhs import (
    MODES,
    ModelPolicy,
    ScriptedPolicy,
    build_pairs,
    misalignment,
    preference_rows,
    rlhs_dpo_config,
    split_scenarios,
    write_pair_datasets,
)


def test_split_is_disjoint_seeded_and_complete() -> None:
    a, b, c = split_scenarios(0), split_scenarios(0), split_scenarios(1)
    assert a == b and a.test_categories != c.test_categories
    assert not set(a.train) & set(a.test)
    assert len(a.train) + len(a.test) == 2720
    assert {get_scenario(i).category for i in a.test} == set(a.test_categories)
    sample = a.sample("train", 50)
    assert len(set(sample)) == 50 and set(sample) <= set(a.train) and sample == a.sample("train", 50)
    with pytest.raises(ConfigError):
        split_scenarios(0, test_categories=10)


def test_builder_refuses_test_scenarios_and_files_hold_only_train(tmp_path: Path) -> None:
    split = split_scenarios(3)
    with pytest.raises(ConfigError, match="not in the train split"):
        build_pairs(ScriptedPolicy(), ScriptedCustomer(), [split.test[0]], train_indices=split.train)
    pairs = build_pairs(ScriptedPolicy(), ScriptedCustomer(), split.sample("train", 60), train_indices=split.train)
    paths = write_pair_datasets(pairs, tmp_path, split=split, policy=ScriptedPolicy().describe(),
                                customer="scripted", seed=0)
    test_ids = {get_scenario(i).id for i in split.test}
    for mode, path in paths.items():
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        assert rows and all(r["mode"] == mode for r in rows)
        assert not {r["scenario_id"] for r in rows} & test_ids
        assert rows[0]["prompt"][0]["role"] == "system" and rows[0]["prompt"][1]["role"] == "user"
        assert rows[0]["chosen"][0]["role"] == "assistant"
    assert json.loads((tmp_path / "split.json").read_text())["test_categories"] == list(split.test_categories)


def test_labels_per_mode_agree_with_env_compare() -> None:
    split = split_scenarios(0)
    pairs = build_pairs(ScriptedPolicy(), ScriptedCustomer(), split.sample("train", 40))
    env = MarketplaceEnv(user="scripted")
    n_strict = 0
    for p in pairs:
        comp = env.compare(p.scenario.index, p.turns[0].text, p.turns[1].text)
        for mode in MODES:
            assert p.preference[mode] == comp.preference[mode]
            row = p.preference_row(mode)
            if comp.preference[mode] == "tie":
                assert row is None
            else:
                n_strict += 1
                winner = p.turns[0 if comp.preference[mode] == "a" else 1].text
                assert row is not None and row["chosen"][0]["content"] == winner
    assert n_strict > 0


def test_misalignment_check_on_scripted_sellers() -> None:
    pairs = build_pairs(ScriptedPolicy(), ScriptedCustomer(), split_scenarios(0).sample("train", 120))
    m = misalignment(pairs)
    # computed from the labels: the share of strict pairs where immediate and partial labels differ
    both = [p for p in pairs if "tie" not in (p.preference["immediate"], p.preference["partial_hindsight"])]
    share = sum(p.preference["immediate"] != p.preference["partial_hindsight"] for p in both) / len(both)
    assert m["disagreement_with_immediate"]["partial_hindsight"]["share"] == pytest.approx(share)
    # the deceptive seller wins immediate comparisons, so hindsight-preferred turns are truly better
    assert m["utility_of_preferred"]["partial_hindsight"] > m["utility_of_preferred"]["immediate"]


def test_model_policy_records_seeds_and_refuses_greedy() -> None:
    fake = FakeChatModel(lambda req: f"I recommend option A. seed {req.params.seed}")
    policy = ModelPolicy(fake, GenerationParams(max_new_tokens=20, temperature=1.0, seed=7))
    pairs = build_pairs(policy, ScriptedCustomer(), [0, 1])
    seeds = [t.seed for p in pairs for t in p.turns]
    assert len(set(seeds)) == 4 and None not in seeds
    assert all(t.text.endswith(f"seed {t.seed}") for p in pairs for t in p.turns)
    assert policy.describe()["temperature"] == 1.0
    with pytest.raises(ConfigError, match="greedy"):
        build_pairs(ModelPolicy(fake, GenerationParams(temperature=0.0)), ScriptedCustomer(), [0])


def test_rlhs_dpo_defaults_are_the_papers() -> None:
    cfg = rlhs_dpo_config("base", "d.jsonl", "out")
    assert (cfg.beta, cfg.lora_r, cfg.lora_alpha, cfg.target_modules, cfg.learning_rate, cfg.lr_scheduler,
            cfg.warmup) == (0.1, 8, 16, "all-linear", 5e-5, "cosine", 0.1)
    assert cfg.trl_args()["loss_type"] == ["sigmoid"]


class Snapshot(TrainerCallback):
    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
        self.lora = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


def _lora_moved(snap: Snapshot, model: Any) -> list[str]:
    now = dict(model.named_parameters())
    return [n for n, before in snap.lora.items() if not torch.equal(before, now[n])]


def test_dpo_step_on_rlhs_pairs_changes_lora(tmp_path: Path) -> None:
    from datasets import Dataset

    from persona_lab.testing.tiny import tiny_chat_model
    from persona_lab.train.dpo import train_dpo

    pairs = build_pairs(ScriptedPolicy(), ScriptedCustomer(), split_scenarios(0).sample("train", 12))
    data = Dataset.from_list(preference_rows(pairs, "partial_hindsight"))
    model, tok = tiny_chat_model(seed=0, max_positions=2048)
    cfg = rlhs_dpo_config("", "", str(tmp_path / "dpo"), max_steps=2, batch_size=2, learning_rate=1e-2, warmup=0.0,
                          max_length=2048)
    snap = Snapshot()
    result = train_dpo(cfg, dataset=data, model=model, tokenizer=tok, callbacks=[snap])
    assert result.steps == 2 and snap.lora  # two steps: B leaves zero, then A moves
    assert sorted(_lora_moved(snap, result.model)) == sorted(snap.lora)


def test_grpo_step_with_customer_reward_changes_lora_and_logs_utility(tmp_path: Path) -> None:
    from persona_lab.testing.tiny import tiny_chat_model
    from persona_lab.train.grpo import GRPOTrainConfig, train_grpo
    from persona_lab.train.rlhs_rewards import CustomerReward, grpo_prompt_dataset

    data = grpo_prompt_dataset(split_scenarios(0).sample("train", 2))
    model, tok = tiny_chat_model(seed=0, max_positions=2048)
    cfg = GRPOTrainConfig(out=str(tmp_path / "grpo"), max_steps=2, batch_size=4, num_generations=4,
                          max_completion_length=8, learning_rate=1e-2, reward_weights=(1.0, 0.0))
    snap, logs = Snapshot(), []
    # the tiny model's gibberish earns the same reward everywhere, so add a reward that varies:
    def spread(prompts: Any, completions: Any, **kw: Any) -> list[float]:
        return [float(sum(map(ord, c[-1]["content"])) % 7) for c in completions]

    result = train_grpo(cfg, reward_funcs=[spread, CustomerReward("utility")], dataset=data, model=model,
                        tokenizer=tok, callbacks=[snap], on_log=logs.append)
    assert result.steps == 2
    assert sorted(_lora_moved(snap, result.model)) == sorted(snap.lora)
    assert any("rewards/true_utility/mean" in r for r in logs)


def test_customer_reward_matches_the_customer() -> None:
    from persona_lab.train.rlhs_rewards import CustomerReward

    split = split_scenarios(0)
    idx = split.sample("train", 6)
    honest = [ScriptedPolicy(("oracle",)).sample([(get_scenario(i), _obs(i))], 1)[0][0].text for i in idx]
    liar = [ScriptedPolicy(("deceptive-seller",)).sample([(get_scenario(i), _obs(i))], 1)[0][0].text for i in idx]
    for mode in ("immediate", "partial_hindsight", "utility"):
        reward = CustomerReward(mode)
        got = reward([None] * 12, [[{"role": "assistant", "content": t}] for t in honest + liar],
                     scenario_index=idx + idx)
        want = [ScriptedCustomer().react(get_scenario(i), "", t, np.random.default_rng(0)).value(mode, get_scenario(i))
                for i, t in zip(idx + idx, honest + liar)]
        assert got == pytest.approx(want)
    assert CustomerReward("utility").__name__ == "true_utility"
    with pytest.raises(ConfigError):
        CustomerReward("vibes")


def _obs(i: int) -> dict[str, Any]:
    from persona_lab.simulators.marketplace import feature_table, opening_message

    sc = get_scenario(i)
    return {"customer": opening_message(sc), "table": feature_table(sc), "round": 0}


def test_pairs_from_recorded_runs(tmp_path: Path) -> None:
    from persona_lab.core.records import read_records
    from persona_lab.eval.runner import RunConfig, Runner
    from persona_lab.train.rlhs import pairs_from_records

    split = split_scenarios(0)
    records = []
    for agent in ("oracle", "deceptive-seller"):
        rc = RunConfig(env_id="persona_lab/Marketplace-v0", agent=agent, seed=5, rounds=1, episodes=6,
                       env_kwargs={"categories": list(split.train_categories)})
        Runner(rc, tmp_path / agent, cache=False).run()
        records += read_records(tmp_path / agent)
    pairs = pairs_from_records(records, ScriptedCustomer(), train_indices=split.train)
    assert len(pairs) == 6
    for p in pairs:
        assert {t.text for t in p.turns} == {r.action for r in records if r.privileged["scenario_index"] == p.scenario.index}
        assert p.prompt == next(r.prompt for r in records if r.privileged["scenario_index"] == p.scenario.index)
        # the deceptive turn wins the immediate comparison or ties; never the hindsight one
        liar = 0 if "perfect for you" in p.turns[0].text else 1
        assert p.preference["partial_hindsight"] != "ab"[liar]
    with pytest.raises(ConfigError, match="not in the train split"):
        pairs_from_records(records, ScriptedCustomer(), train_indices=split.test)
