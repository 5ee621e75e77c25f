"""Calibration of an LLM user against the scripted truth: kappa, CIs, and a perfect fake user."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from persona_lab.cli.main import main
from persona_lab.core.errors import ConfigError
from persona_lab.eval.calibrate import bootstrap_ci, calibrate, cohen_kappa
from persona_lab.models.base import ChatRequest
from persona_lab.simulators import catalog
from persona_lab.testing import FakeChatModel


def test_cohen_kappa_known_values() -> None:
    assert cohen_kappa(list("yynn"), list("ynnn")) == pytest.approx(0.5)
    assert cohen_kappa(list("ynyn"), list("ynyn")) == 1.0
    assert cohen_kappa(list("ynyn"), list("nyny")) == pytest.approx(-1.0)
    assert math.isnan(cohen_kappa(list("yyy"), list("yyy")))
    lo, hi = bootstrap_ci(list("yynnyn") * 3, list("ynnnyn") * 3, cohen_kappa, seed=0, n_boot=300)
    assert -1 <= lo < cohen_kappa(list("yynnyn"), list("ynnnyn")) < hi <= 1


def _rule_follower(request: ChatRequest) -> str:
    """A fake LLM user that applies the catalog rules exactly: it should agree with the scripted user."""
    text = request.messages[-1].content
    statement = re.search(r"My preference(?: for this kind of text)?: (.*?)\n", text).group(1)
    draft = re.search(r"<<<\n(.*)\n>>>", text, re.DOTALL).group(1)
    ids = catalog.recognize(statement)
    if "yes or no" in request.messages[0].content:
        return "Yes." if all(catalog.satisfied(draft, ids).values()) else "No."
    return catalog.apply_preferences(draft, ids)


def test_a_rule_following_user_agrees_perfectly_and_a_yes_sayer_does_not() -> None:
    good = calibrate("persona_lab/EditEmail-v0", FakeChatModel(_rule_follower), limit=8, seed=0)
    assert good["scripted_labels"] == {"reject": 4, "accept": 4}  # the perturbed half is accepted
    assert good["agreement"] == 1.0 and good["kappa"] == 1.0
    assert good["revision_satisfaction_gain"] > 0 and good["rates"]["unclear_verdicts"] == 0
    yes = calibrate("persona_lab/EditEmail-v0", FakeChatModel("Yes"), limit=8, seed=0)
    assert yes["agreement"] == 0.5 and yes["kappa"] == 0.0 and yes["llm_positive_rate"] == 1.0


def test_marketplace_position_bias_and_unsupported_worlds() -> None:
    always_a = FakeChatModel(lambda r: "I'll take A.\nDECISION: A\nRATING: 4"
                             if "DECISION:" in r.messages[-1].content else "RATING: 3")
    r = calibrate("persona_lab/Marketplace-v0", always_a, limit=6, seed=0)
    assert r["llm_share_A"] == 1.0 and r["llm_labels"] == {"A": 6} and r["rates"]["filler_replies"] == 0
    mute = calibrate("persona_lab/Marketplace-v0", FakeChatModel("RATING: 3"), limit=3, seed=0)
    assert mute["llm_labels"] == {"unclear": 3}  # no decision read: not the no-purchase fallback
    with pytest.raises(ConfigError, match="does not support"):
        calibrate("persona_lab/PrefEval-v0", always_a, limit=2)


def test_calibrate_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, cache = tmp_path / "cal.json", str(tmp_path / "cache")
    run = ["run", "persona_lab/EditEmail-v0", "--backend", "fake:x", "--rounds", "2", "--cache-dir", cache]
    assert main([*run, "--out", str(tmp_path / "r1")]) == 0
    assert "no calibration of this LLM user yet" in capsys.readouterr().out
    assert main(["calibrate", "persona_lab/EditEmail-v0", "--user-backend", "fake:x", "--limit", "4",
                 "--cache-dir", cache, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Cohen's kappa" in printed and "agreement" in printed
    result = json.loads(out.read_text())
    assert result["items"] == 4 and len(result["per_item"]) == 4 and result["per_item"][0]["calls"][0]["raw"] == "ok"
    assert main([*run, "--out", str(tmp_path / "r2")]) == 0  # a later run prints the saved calibration
    note = capsys.readouterr().out
    assert "calibration of this LLM user (fake:x) in persona_lab/EditEmail-v0" in note and "n=4" in note
    assert "persona-lab calibrate persona_lab/EditEmail-v0 --user-backend fake:x --limit 4" in note  # the command
    assert f"agreement with the scripted user {result['agreement']:.2f}" in note


def test_calibration_store_is_keyed_by_decoding_and_a_file_can_be_named(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = str(tmp_path / "cache")
    cal = ["calibrate", "persona_lab/FollowUp-v0", "--user-backend", "fake:x", "--cache-dir", cache]
    assert main([*cal, "--limit", "2", "--user-gen", "temperature=0.5"]) == 0
    capsys.readouterr()
    run = ["run", "persona_lab/FollowUp-v0", "--backend", "fake:x", "--rounds", "1", "--cache-dir", cache]
    assert main([*run, "--out", str(tmp_path / "r1"), "--user-gen", "temperature=0.5"]) == 0
    assert "calibration of this LLM user (fake:x, temperature=0.5) in persona_lab/FollowUp-v0" in capsys.readouterr().out
    assert main([*run, "--out", str(tmp_path / "r2")]) == 0  # other decoding: says so, shows the other one
    note = capsys.readouterr().out
    assert "no calibration of this LLM user with these decoding settings" in note and "temperature=0.5" in note
    legacy = tmp_path / "cache" / "calibration" / "persona_lab_FollowUp-v0__fake_x.json"  # keyed without user-gen
    legacy.write_text(json.dumps({**json.loads(next(legacy.parent.glob("*__*.json")).read_text()),
                                  "user_gen": {"temperature": 0.9}}))
    assert main([*run, "--out", str(tmp_path / "r2b")]) == 0
    assert "no calibration of this LLM user with these decoding settings" in capsys.readouterr().out
    other = tmp_path / "other.json"
    assert main([*cal, "--limit", "3", "--no-cache", "--out", str(other)]) == 0
    capsys.readouterr()
    assert main([*run, "--out", str(tmp_path / "r3"), "--calibration", str(other)]) == 0
    assert "(fake:x) in persona_lab/FollowUp-v0" in capsys.readouterr().out.replace("\n", " ")
    assert main([*run, "--out", str(tmp_path / "r4"), "--calibration", str(tmp_path / "missing.json")]) == 2


def test_bench_prelude_with_an_llm_user_prints_its_calibration(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import persona_lab.eval.bench as bench_mod

    def fake_bench(cfg, **kw):  # the bench itself is tested elsewhere; here only what is printed after it
        Path(cfg.out, "results.md").write_text("| agent |\n", encoding="utf-8")
        return {}
    monkeypatch.setattr(bench_mod, "run_bench", fake_bench)
    cache = str(tmp_path / "cache")
    bench = ["bench", "prelude", "--rounds", "2", "--seeds", "0", "--agents", "no-learning", "--cache-dir", cache]
    assert main([*bench, "--out", str(tmp_path / "b0")]) == 0  # scripted users: nothing to calibrate
    assert "calibration" not in capsys.readouterr().out
    assert main([*bench, "--backend", "fake:x", "--user", "scripted", "--out", str(tmp_path / "bs")]) == 0
    assert "calibration" not in capsys.readouterr().out  # a model agent with scripted users
    assert main([*bench, "--backend", "fake:x", "--out", str(tmp_path / "b1")]) == 0
    out = capsys.readouterr().out
    assert "no calibration of this LLM user yet: persona-lab calibrate persona_lab/EditEmail-v0 --user-backend fake:x" in out
    assert "persona-lab calibrate persona_lab/EditSummarization-v0 --user-backend fake:x" in out
    assert main(["calibrate", "persona_lab/EditEmail-v0", "--user-backend", "fake:x", "--limit", "2",
                 "--cache-dir", cache]) == 0
    capsys.readouterr()
    assert main([*bench, "--backend", "fake:x", "--out", str(tmp_path / "b2")]) == 0
    out = capsys.readouterr().out
    assert "calibration of this LLM user (fake:x) in persona_lab/EditEmail-v0" in out and "n=2" in out
    assert "no calibration of this LLM user yet: persona-lab calibrate persona_lab/EditSummarization-v0" in out
