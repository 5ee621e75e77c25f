"""FLR: request building, reduction, batching, errors, and the ranking property on a tiny model.

Why a fine-tuned tiny model: FLR ranks answers by how likely the scorer finds positive follow-ups
after them. A random model has no reason to prefer either class after any answer, so the ranking
property can only be tested on a scorer whose conditional distribution of the next user turn
*does* depend on whether the answer followed the preference. We build such a scorer the way real
ones come by it (from data): a tiny random Llama (built in code) is trained for a few seconds on
conversations where answers that follow the user's preference ("Include a few emojis", made by the
catalog editor, checked by the catalog checker) are followed by a positive follow-up drawn from the
lists, and answers that violate it by a negative one. FLR must then rank the following answer above
the violating one for **held-out** questions (topics never seen in training), because the only
thing that separates the two answers is the preference, and that is what the model was taught to
read. The test checks the sign for every held-out pair, through the real ``hf:`` scorer path.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from persona_lab.core.errors import BackendUnavailableError, ConfigError
from persona_lab.core.messages import Message
from persona_lab.models.cache import CachedChatModel
from persona_lab.simulators import catalog
from persona_lab.simulators.followup import DIMENSIONS, NEGATIVE, POSITIVE, TOPICS, followup_list
from persona_lab.simulators.followup_flr import (
    FLRResult,
    as_scorer,
    flr_batch,
    flr_requests,
    follow_up_likelihood_reward,
)
from persona_lab.simulators.personas import LatentPreference, Persona
from persona_lab.testing.fakes import FakeChatModel

PREF = ["markers.emojis"]
TRAIN_TOPICS, HELD_OUT_TOPICS = TOPICS[:6], TOPICS[6:]


def _pair(question: Any) -> tuple[str, str]:
    """(answer following the preference, answer violating it), same content."""
    plain = question.facts[0]
    following = catalog.apply_preferences(plain, PREF)
    assert catalog.satisfied(following, PREF)[PREF[0]] and not catalog.satisfied(plain, PREF)[PREF[0]]
    return following, plain


class _ListScorer:
    """A fake scorer: a fixed log-prob per follow-up text, plus a bonus for positives after 'good'."""

    spec = "fake:scorer"

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.positive = {t for _, lab, t in followup_list() if lab == POSITIVE}

    def score(self, requests: list[Any]) -> list[float]:
        self.calls.append(len(requests))
        out = []
        for r in requests:
            good = r.messages[-1].content == "good"
            out.append(-2.0 + (0.5 if good and r.continuation.content in self.positive else 0.0))
        return out


def test_requests_are_the_120_followups_after_the_answer() -> None:
    reqs = flr_requests([{"role": "user", "content": "Q?"}], "A.")
    assert len(reqs) == 120
    assert all(r.messages == (Message("user", "Q?"), Message("assistant", "A.")) for r in reqs)
    assert [r.continuation.content for r in reqs] == [t for _, _, t in followup_list()]
    assert all(r.continuation.role == "user" for r in reqs)
    with pytest.raises(ConfigError, match="assistant turn"):
        flr_requests([{"role": "user", "content": "Q?"}])


def test_flr_reduction_and_one_call_for_a_batch() -> None:
    scorer = _ListScorer()
    good, bad = flr_batch(scorer, [[Message("user", "Q"), Message("assistant", "good")],
                                   [Message("user", "Q"), Message("assistant", "bad")]])
    assert scorer.calls == [240]  # both answers, all follow-ups, one score call
    assert isinstance(good, FLRResult)
    assert good.flr == pytest.approx(0.5) and bad.flr == pytest.approx(0.0)
    assert good.positive == pytest.approx(-1.5) and good.negative == pytest.approx(-2.0)
    assert set(good.by_dimension) == set(DIMENSIONS)
    assert np.mean(list(good.by_dimension.values())) == pytest.approx(good.flr)
    single = follow_up_likelihood_reward(scorer, [Message("user", "Q")], "good")
    assert single.flr == pytest.approx(good.flr) and scorer.calls[-1] == 120


def test_backends_without_score_raise_with_a_hint() -> None:
    for model in (FakeChatModel("ok"), CachedChatModel(FakeChatModel("ok"), None)):
        with pytest.raises(BackendUnavailableError, match="cannot score") as err:
            as_scorer(model)
        assert "hf:smollm2-135m" in str(err.value)
    with pytest.raises(ConfigError, match="needs a scorer"):
        as_scorer(None)
    with pytest.raises(BackendUnavailableError):
        follow_up_likelihood_reward(FakeChatModel("ok"), [Message("user", "Q")], "A")


# --- the ranking property on a fine-tuned tiny model -------------------------------------------------


def _train_followup_scorer(folder: Path, *, steps: int = 100, batch: int = 16, lr: float = 1e-2) -> Path:
    import torch

    from persona_lab.testing.tiny import tiny_chat_model

    model, tok = tiny_chat_model(seed=0)
    positives = [t for _, lab, t in followup_list() if lab == POSITIVE]
    negatives = [t for _, lab, t in followup_list() if lab == NEGATIVE]
    examples = []
    for topic in TRAIN_TOPICS:
        for q in topic.questions:
            following, violating = _pair(q)
            examples += [(q.text, following, positives), (q.text, violating, negatives)]
    rng = np.random.default_rng(0)

    def encode(question: str, answer: str, followup: str) -> tuple[list[int], list[int]]:
        chat = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        prefix = tok.apply_chat_template(chat, tokenize=False) + "<|im_start|>user\n"
        p = tok(prefix, add_special_tokens=False)["input_ids"]
        c = tok(followup + "<|im_end|>\n", add_special_tokens=False)["input_ids"]
        return p + c, [-100] * len(p) + c  # the loss is on the follow-up only

    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for _ in range(steps):
            rows = []
            for _ in range(batch):
                question, answer, pool = examples[int(rng.integers(len(examples)))]
                rows.append(encode(question, answer, pool[int(rng.integers(len(pool)))]))
            width = max(len(ids) for ids, _ in rows)
            ids = torch.full((batch, width), tok.pad_token_id)
            labels = torch.full((batch, width), -100)
            mask = torch.zeros((batch, width), dtype=torch.long)
            for i, (row_ids, row_labels) in enumerate(rows):
                ids[i, : len(row_ids)] = torch.tensor(row_ids)
                labels[i, : len(row_labels)] = torch.tensor(row_labels)
                mask[i, : len(row_ids)] = 1
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def trained_scorer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    import torch

    from persona_lab.models import open_chat_model

    # A model this small gains nothing from intra-op threads, and on a shared CPU they only contend.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        folder = _train_followup_scorer(tmp_path_factory.mktemp("flr-tiny"))
        yield open_chat_model(f"hf:{folder}", cache=False)
    finally:
        torch.set_num_threads(threads)


def test_flr_ranks_the_preference_following_answer_above_the_violating_one(trained_scorer: Any) -> None:
    questions = [q for t in HELD_OUT_TOPICS for q in t.questions]
    conversations = []
    for q in questions:
        following, violating = _pair(q)
        conversations += [[Message("user", q.text), Message("assistant", a)] for a in (following, violating)]
    results = flr_batch(trained_scorer, conversations)  # 16 answers x 120 follow-ups, one call
    for i, q in enumerate(questions):
        following, violating = results[2 * i], results[2 * i + 1]
        assert following.flr > violating.flr, (q.id, following.flr, violating.flr)


class _OnePersona:
    """A population of one user whose only preference is emojis."""

    name = "emoji-lovers"

    def persona(self, index: int, task: str, sources: Any) -> Persona:
        pref = LatentPreference(catalog.describe(PREF), tuple(PREF))
        return Persona("emoji-lover", {s: pref for s in sources})


def test_env_flr_reward_prefers_the_answer_that_follows_the_preference(trained_scorer: Any) -> None:
    rewards, infos = {}, {}
    for name in ("following", "violating"):
        env = gym.make("persona_lab/FollowUp-v0", population=_OnePersona(), reward_mode="flr",
                       scorer=trained_scorer, rounds=3, user_index=6)  # a held-out topic (asserted below)
        obs, info = env.reset(seed=0)
        topic = info["privileged"]["next"]["persona"]["topic"]
        assert topic in {t.id for t in HELD_OUT_TOPICS}
        question = next(q for t in TOPICS for q in t.questions if q.text == obs["message"])
        following, violating = _pair(question)
        _, rewards[name], _, _, infos[name] = env.step(following if name == "following" else violating)
    assert rewards["following"] > rewards["violating"]
    assert rewards["following"] == infos["following"]["flr"] and set(infos["following"]["flr_by_dimension"]) == set(DIMENSIONS)
    assert infos["following"]["followup_class"] == POSITIVE and infos["violating"]["followup_class"] == NEGATIVE


@pytest.mark.slow
def test_flr_on_the_packaged_small_llm() -> None:
    from persona_lab.models import open_chat_model

    scorer = open_chat_model("hf:smollm2-135m", cache=False)
    (res,) = flr_batch(scorer, [[Message("user", "How much sleep does an adult need?"),
                                 Message("assistant", "Most adults need seven to nine hours of sleep a night.")]])
    assert np.isfinite(res.flr) and res.positive < 0 and res.negative < 0
