"""Per-role decoding overrides, the hf choice constraint, CIPHER's plain-words prompts, preference
accuracy in edit-world metrics, and fidelity in a run's summary and printout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from persona_lab.agents.prompts import aggregate_preferences_messages, infer_preference_messages
from persona_lab.cli.main import main
from persona_lab.core.errors import ConfigError
from persona_lab.core.records import TransitionRecord
from persona_lab.envs.edit_env import EditEmailEnv
from persona_lab.models.base import ChatRequest, GenerationParams
from persona_lab.models.decoding import GenSettings, choice_params, has_extra_body, parse_gen, with_gen
from persona_lab.models.hf import ChoiceConstraint
from persona_lab.simulators import catalog
from persona_lab.testing import FakeChatModel


def test_gen_overrides_reach_the_backend() -> None:
    fake = FakeChatModel("ok")
    model = with_gen(fake, "temperature=0.7,top_p=0.9,seed=3,max_new_tokens=16")
    model.generate([ChatRequest.of("hi", GenerationParams(max_new_tokens=400)),
                    ChatRequest.of("hi", GenerationParams(max_new_tokens=8))])
    a, b = (r.params for r in fake.requests)
    assert (a.temperature, a.top_p, a.seed, a.max_new_tokens) == (0.7, 0.9, 3, 16)
    assert b.max_new_tokens == 8  # a cap, not a raise: the verdict's 8-token budget stays
    assert with_gen(fake, None) is fake and with_gen(fake, {}) is fake
    assert parse_gen({"seed": 1}) == GenSettings(seed=1)


@pytest.mark.parametrize(("spec", "match"), [("temp=0.5", "unknown decoding"), ("temperature=-1", "temperature"),
                                             ("top_p=0", "top_p"), ("seed", "key=value")])
def test_bad_gen_specs_are_config_errors(spec: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_gen(spec)


def test_choice_params_only_where_the_backend_offers_them() -> None:
    p = GenerationParams(max_new_tokens=8)
    assert choice_params(p, ("yes", "no"), FakeChatModel("x")) == p  # a fake (or openai) server: free text
    if has_extra_body():
        hf_like = type("M", (), {"spec": "hf:tiny", "generate": lambda self, r: []})()
        assert choice_params(p, ("yes", "no"), hf_like).extra_body == {"guided_choice": ["yes", "no"]}
    else:  # this build has no GenerationParams.extra_body: constrained output falls back to parsing
        assert choice_params(p, ("yes", "no"), type("M", (), {"spec": "hf:tiny"})()) == p
        with pytest.raises(ConfigError, match="extra_body"):
            GenSettings(repetition_penalty=1.2)


def test_choice_constraint_allows_only_the_choices_then_eos() -> None:
    import torch

    yes, no, eos = [5, 6], [7], 0
    c = ChoiceConstraint([yes, no], [eos], prompt_len=2)
    assert c.allowed([]) == {5, 7} and c.allowed([5]) == {6} and c.allowed([5, 6]) == {0} and c.allowed([7]) == {0}
    scores = torch.zeros(2, 10)
    scores[:, 9] = 100.0  # the model would rather say something else
    ids = torch.tensor([[1, 2], [1, 2]])
    out = c(ids, scores)
    assert {int(out[0].argmax())} <= {5, 7} and torch.isinf(out[0, 9])
    out = c(torch.tensor([[1, 2, 5], [1, 2, 7]]), scores)
    assert int(out[0].argmax()) == 6 and int(out[1].argmax()) == eos


def test_cipher_prompts_ask_for_writing_preferences_in_plain_words() -> None:
    for messages in (infer_preference_messages([("Draft one.", "Edited one.")]),
                     aggregate_preferences_messages(["short sentences", "bullet points"])):
        text = " ".join(m.content for m in messages).lower()
        # the old wording ("style properties", "properties most of them share") was read as CSS
        assert "propert" not in text and "style" not in text
        assert "writing preferences" in text and "not code" in text and "plain words" in text
        # the instructions themselves name no catalog preference the model could copy
        instructions = text.split(">>>")[-1] if ">>>" in text else text.split("documents:")[-1].split("\n\n", 1)[-1]
        assert catalog.recognize(instructions) == []
    a = infer_preference_messages([("Draft one.", "Edited one.")])
    b = infer_preference_messages([("Draft two.", "Edited two.")])
    assert a != b


def _rec(t: int, used: str, ids: list[str], source: str) -> TransitionRecord:
    return TransitionRecord(episode=0, round=t, env_id="e", seed=0, action="a", action_hash="h", reward=0.0,
                            terminated=False, truncated=False,
                            info={"cost": 0, "accepted": True, "preference_satisfaction": 1.0},
                            privileged={"source": source, "preference_ids": ids}, agent={"used_preference": used})


def test_preference_accuracy_in_edit_metrics() -> None:
    truth_a, truth_b = ["format.bullets"], ["tone.casual"]
    used_a = catalog.describe(truth_a) if hasattr(catalog, "describe") else "bullet points"
    assert catalog.recognize(used_a) == truth_a
    recs = [_rec(0, used_a, truth_a, "a"), _rec(1, "font-weight, text-align", truth_b, "b")]
    m = EditEmailEnv.episode_metrics(recs)
    assert m["episode/preference_precision"] == 0.5 and m["episode/preference_recall"] == 0.5
    assert m["episode/preference_accuracy"] == 0.5


def test_run_records_gen_settings_and_prints_fidelity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    rc = main(["run", "persona_lab/EditEmail-v0", "--backend", "fake:x", "--rounds", "3", "--out", str(out),
               "--no-cache", "--user-gen", "temperature=0.5,seed=3", "--agent-gen", "max_new_tokens=32"])
    assert rc == 0
    cfg = json.loads((out / "config.json").read_text())["config"]
    assert cfg["user_gen"] == {"temperature": 0.5, "seed": 3} and cfg["agent_gen"] == {"max_new_tokens": 32}
    summary = json.loads((out / "summary.json").read_text())
    # the fake answers "ok" to the yes/no question: an unclear verdict each round, never an acceptance
    assert summary["fidelity"]["user/unclear_verdicts"] == 3 and summary["fidelity"]["user/calls"] == 6
    assert summary["metrics"]["episode/acceptance_rate"] == 0.0
    printed = capsys.readouterr().out
    assert "warning: user/unclear_verdicts in 50% of 6 user calls" in printed
    rows = [json.loads(line) for line in (out / "transitions.jsonl").read_text().splitlines()]
    assert rows[0]["info"]["user_calls"][0]["raw"] == "ok" and rows[0]["info"]["user_verdict"] == "unclear"
    assert main(["run", "persona_lab/EditEmail-v0", "--out", str(tmp_path / "bad"), "--user-gen", "temp=1"]) == 2


def _with_extras(params: GenerationParams, extra: dict) -> GenerationParams:
    """``params`` carrying backend extras, also on a build whose GenerationParams lacks the field."""
    if has_extra_body():
        import dataclasses

        return dataclasses.replace(params, extra_body=extra)
    object.__setattr__(params, "extra_body", extra)
    return params


def test_hf_backend_honours_guided_choice_and_repetition_penalty(tmp_path: Path) -> None:
    from persona_lab.models import open_chat_model
    from persona_lab.testing.tiny import save_tiny_model

    chat = open_chat_model(f"hf:{save_tiny_model(tmp_path / 'tiny')}", cache=False)
    prompts = ["Is this fine?", "Answer yes or no: is the sky green?", "Hello there, how are you today?"]
    free = [c.text for c in chat.generate([ChatRequest.of(p, GenerationParams(max_new_tokens=6)) for p in prompts])]
    assert not all(t.strip().lower() in ("yes", "no") for t in free)  # the random tiny model says anything
    constrained = [ChatRequest.of(p, _with_extras(GenerationParams(max_new_tokens=6), {"guided_choice": ["yes", "no"]}))
                   for p in prompts]
    out = [c.text for c in chat.generate(constrained)]
    assert all(t.strip().lower() in ("yes", "no") for t in out), out
    penalized = chat.generate([ChatRequest.of(prompts[0], _with_extras(GenerationParams(max_new_tokens=12),
                                                                       {"repetition_penalty": 5.0}))])
    plain = chat.generate([ChatRequest.of(prompts[0], GenerationParams(max_new_tokens=12))])
    assert penalized[0].text != plain[0].text
