"""ILQL: the losses against a hand computation, next-state indices, Polyak, a training step on a tiny model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from persona_lab.core.errors import ConfigError  # noqa: E402
from persona_lab.testing.tiny import tiny_chat_model  # noqa: E402
from persona_lab.train.dialogues import DialogueRow, Turn  # noqa: E402
from persona_lab.train.ilql import (  # noqa: E402
    HEADS_FILE,
    ILQLConfig,
    ILQLScorer,
    ilql_losses,
    make_heads,
    next_state_indices,
    polyak_update,
    prepare_ilql,
    train_ilql,
    train_step,
)


def test_next_state_skips_environment_tokens_and_ends_at_zero() -> None:
    # states 0..5; the token after states 0, 3, 4 is the persuader's, after 1, 2, 5 the persuadee's
    mask = torch.tensor([[1, 0, 0, 1, 1, 0]])
    nxt, terminal = next_state_indices(mask, torch.tensor([True]), torch.tensor([7]))
    assert nxt[0, 0] == 3 and nxt[0, 3] == 4  # state 0 bootstraps from state 3, past the persuadee's tokens
    assert bool(terminal[0, 4]) and not bool(terminal[0, 0])  # no persuader token after state 4: V = 0
    nxt, terminal = next_state_indices(mask, torch.tensor([False]), torch.tensor([7]))
    assert nxt[0, 4] == 6 and not bool(terminal[0, 4])  # unfinished: bootstrap from the last state


def test_losses_match_a_hand_computation_on_a_three_token_trajectory() -> None:
    # tokens: x0 prompt | x1 persuader (end of turn 1, reward 0.5) | x2 persuadee | x3, x4 persuader (x4 ends
    # turn 2, reward 1.0); the dialogue is finished. Vocabulary of 3 tokens.
    ids = torch.tensor([[0, 2, 1, 0, 2]])
    agent = torch.tensor([[0, 1, 0, 1, 1]])
    rewards = torch.tensor([[0.0, 0.5, 0.0, 0.0, 1.0]])
    attn = torch.ones_like(ids)
    q1 = torch.tensor([[[0.1, 0.2, 0.3], [0.0, 0.4, 0.0], [0.5, 0.0, 0.0], [0.0, 0.0, 0.9], [0.0, 0.0, 0.0]]])
    q2 = q1 + 0.1
    t1 = torch.tensor([[[0.0, 0.0, 0.2], [0.0, 0.0, 0.0], [0.8, 0.0, 0.0], [0.0, 0.0, 1.1], [0.0, 0.0, 0.0]]])
    t2 = t1 - torch.tensor([[[0.0, 0.0, 0.1], [0.0, 0.0, 0.0], [-0.1, 0.0, 0.0], [0.0, 0.0, 0.2], [0.0, 0.0, 0.0]]])
    v = torch.tensor([[0.25, 0.7, 0.6, 0.3, 9.0]])
    gamma, tau, alpha = 0.9, 0.7, 0.05
    out = ilql_losses([q1, q2], [t1, t2], v, ids, agent, rewards, attn, torch.tensor([True]),
                      gamma=gamma, tau=tau, cql_alpha=alpha)

    # by hand: the agent actions are taken in states 0 (x1=2), 2 (x3=0), 3 (x4=2)
    y0 = 0.5 + gamma * 0.6   # next agent state is 2 (state 1 acts for the persuadee): V(s2) = 0.6
    y2 = 0.0 + gamma * 0.3   # next agent state is 3
    y3 = 1.0 + gamma * 0.0   # last agent token of a finished dialogue: V = 0 (not v[4] = 9)
    q1a, q2a = (0.3, 0.5, 0.9), (0.4, 0.6, 1.0)
    ys = (y0, y2, y3)
    loss_q = sum((a - y) ** 2 for a, y in zip(q1a, ys)) / 3 + sum((a - y) ** 2 for a, y in zip(q2a, ys)) / 3
    qbar = (min(0.2, 0.1), min(0.8, 0.9), min(1.1, 0.9))  # (0.1, 0.8, 0.9)
    vs = (0.25, 0.6, 0.3)
    # expectile: weight 1 - tau where Q̄ < V (state 0), tau where Q̄ >= V (states 2, 3)
    weights = (1 - tau, tau, tau)
    assert [qb < vv for qb, vv in zip(qbar, vs)] == [True, False, False]
    loss_v = sum(w * (qb - vv) ** 2 for w, qb, vv in zip(weights, qbar, vs)) / 3

    def ce(row: list[float], a: int) -> float:
        return -row[a] + math.log(sum(math.exp(x) for x in row))

    rows1 = ([0.1, 0.2, 0.3], [0.5, 0.0, 0.0], [0.0, 0.0, 0.9])
    acts = (2, 0, 2)
    cql = sum(ce(r, a) for r, a in zip(rows1, acts)) / 3 + sum(ce([x + 0.1 for x in r], a) for r, a in zip(rows1, acts)) / 3
    assert float(out["loss_q"]) == pytest.approx(loss_q, abs=1e-6)
    assert float(out["loss_v"]) == pytest.approx(loss_v, abs=1e-6)
    assert float(out["loss_cql"]) == pytest.approx(cql, abs=1e-6)
    assert float(out["loss"]) == pytest.approx(loss_q + loss_v + alpha * cql, abs=1e-6)


def test_polyak_moves_the_target_a_fraction_of_the_way() -> None:
    online, target = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    before = [p.detach().clone() for p in target.parameters()]
    polyak_update(target, online, 0.25)
    for t, b, o in zip(target.parameters(), before, online.parameters()):
        assert torch.allclose(t, 0.75 * b + 0.25 * o)
    polyak_update(target, online, 1.0)
    assert all(torch.equal(t, o) for t, o in zip(target.parameters(), online.parameters()))


def test_low_rank_heads_are_tied_to_the_output_embedding() -> None:
    heads = make_heads(8, 11, 2, seed=0)
    emb = torch.randn(11, 8)
    h = torch.randn(1, 3, 8)
    qs, tqs, v = heads(h, emb)
    assert qs[0].shape == (1, 3, 11) and v.shape == (1, 3)
    assert sum(p.numel() for p in heads.q[0].parameters()) == 8 * 2 + 2 * 8 + 11  # no d x |V| matrix
    assert torch.allclose(qs[0], tqs[0])  # targets start as copies
    assert not any(p.requires_grad for p in heads.target_q.parameters())


def _rows() -> list[DialogueRow]:
    def row(i: int, reward: float) -> DialogueRow:
        turns = (Turn("persuadee", "Hi!"), Turn("persuader", f"Please give {i}."), Turn("persuadee", "Hm."),
                 Turn("persuader", "Any amount helps."), Turn("persuadee", "Okay." if reward else "No."))
        return DialogueRow(f"r{i}", "original", turns, reward, (0.0, reward), "p", i, 2)

    return [row(0, 1.0), row(1, 0.0)]


def test_a_training_step_changes_lora_and_head_weights(tmp_path: Path) -> None:
    model, tok = tiny_chat_model(seed=0)
    config = ILQLConfig(out=str(tmp_path / "ilql"), device="cpu", batch_size=2, learning_rate=1e-2, head_rank=4)
    oracle_row = DialogueRow("o", "regenerated", _rows()[0].turns, 2.0, (0.0, 2.0), "p", 0, 2, parent_id="r0",
                             divergence_turn=0, controller="oracle")
    run = prepare_ilql(config, rows=[*_rows(), oracle_row], model=model, tokenizer=tok)
    assert len(run.views) == 2  # the oracle's regenerations are left out by default
    trainable = {n: p.detach().clone() for n, p in run.model.named_parameters() if p.requires_grad}
    heads = {n: p.detach().clone() for n, p in run.heads.named_parameters()}
    assert any("lora_A" in n for n in trainable) and any("lora_B" in n for n in trainable)
    for _ in range(2):  # lora_A gets its first gradient once lora_B (initialised to 0) has moved
        record = train_step(run, run.views)
    assert math.isfinite(record["loss"])
    changed = [n for n, p in run.model.named_parameters() if p.requires_grad and not torch.equal(p, trainable[n])]
    assert sorted(changed) == sorted(trainable)
    head_changed = [n for n, p in run.heads.named_parameters() if not torch.equal(p, heads[n])]
    assert sorted(head_changed) == sorted(heads)  # Q and V heads by the optimizer, target Q by Polyak


def test_train_saves_config_beside_checkpoint_and_scorer_ranks(tmp_path: Path) -> None:
    model, tok = tiny_chat_model(seed=0)
    base = tmp_path / "base"
    model.save_pretrained(base)
    tok.save_pretrained(base)
    out = tmp_path / "ilql"
    config = ILQLConfig(base=str(base), out=str(out), device="cpu", batch_size=2, max_steps=2, head_rank=4, save_steps=1)
    result = train_ilql(config, rows=_rows())
    assert result.steps == 2 and (out / HEADS_FILE).is_file() and (out / "adapter_config.json").is_file()
    saved = json.loads((out / "train_config.json").read_text())["config"]
    assert saved["method"] == "ilql" and saved["gamma"] == 0.99 and saved["head_rank"] == 4
    assert (out / "checkpoint-1" / HEADS_FILE).is_file() and (out / "checkpoint-1" / "train_config.json").is_file()
    with pytest.raises(ConfigError):
        train_ilql(config, rows=_rows())
    scorer = ILQLScorer.load(out)
    scores = scorer.score([Turn("persuadee", "Hi!")], ["Please give.", "Any amount helps, even a few cents."])
    assert len(scores) == 2 and all(math.isfinite(s) for s in scores) and scores[0] != scores[1]

    # The runner's episode threads each build an ilql agent: they share one scorer, loaded once (two
    # concurrent loads once left one thread's heads on the meta device).
    from concurrent.futures import ThreadPoolExecutor

    from persona_lab.train.ilql import load_scorer_once

    with ThreadPoolExecutor(4) as pool:
        loaded = list(pool.map(lambda _: load_scorer_once(str(out)), range(4)))
    assert all(s is loaded[0] for s in loaded)
    assert loaded[0].score([Turn("persuadee", "Hi!")], ["Please give.", "Any amount helps, even a few cents."]) == scores


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ConfigError):
        ILQLConfig(tau=1.5)
    with pytest.raises(ConfigError):
        ILQLConfig(sources="original,made_up")


class PreferAsking:
    """A fake value model: the score is the number of donation requests in the candidate."""

    def __init__(self) -> None:
        self.seen: list[list[dict]] = []

    def score(self, turns, candidates):  # noqa: ANN001, ANN201
        from persona_lab.simulators.persuasion import detect_ask

        self.seen.append([dict(t) for t in turns])
        return [float(detect_ask(c)) for c in candidates]


def test_ilql_agent_picks_the_best_scored_candidate_and_tracks_the_dialogue() -> None:
    import gymnasium as gym

    import persona_lab  # noqa: F401
    from persona_lab.agents import create_agent
    from persona_lab.simulators.persuasion import detect_ask

    scorer = PreferAsking()
    agent = create_agent("ilql", "persuasion", None, scorer=scorer, candidates=6, seed=1)
    env = gym.make("persona_lab/Persuasion-v0", rounds=3)
    obs, _ = env.reset(seed=0, options={"user_index": 0})
    action = agent.act(obs)
    assert agent.step_info["candidates"] > 1 and detect_ask(action)
    assert scorer.seen[-1] == [{"role": "persuadee", "text": obs["user"]}]
    obs2, *_ = env.step(action)
    agent.act(obs2)
    assert [t["role"] for t in scorer.seen[-1]] == ["persuadee", "persuader", "persuadee"]
    assert scorer.seen[-1][1]["text"] == action
    again = create_agent("ilql", "persuasion", None, scorer=PreferAsking(), candidates=6, seed=1)
    assert again.candidates(obs) == agent.candidates(obs)  # seeded
    plain = create_agent("ilql", "persuasion", None)  # no value model: the behaviour policy alone
    assert plain.act(obs) in plain.candidates(obs) and plain.step_info["value_model"] is None
    with pytest.raises(ConfigError):
        create_agent("ilql", "persuasion", None, scorer=scorer, candidates=0)
