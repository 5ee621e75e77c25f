"""The real data whole: defects the official files have (a row without ``explanation``, an unknown
field, an editor's copy of a topic file) keep every item, and PrefEval's own filler format loads."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from persona_lab.cli import prefeval as prefeval_cli
from persona_lab.simulators.prefeval.data import (
    PREFEVAL_FILLER,
    default_filler_path,
    load_filler,
    load_prefeval,
)


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="persona-lab")
    sub = parser.add_subparsers(dest="command")
    prefeval_cli.add_parser(sub)
    args = parser.parse_args(["prefeval", *argv])
    return args.func(args)


def prefeval_filler(n_convs: int, msgs_per_conv: int = 4) -> list[dict]:
    """PrefEval's ``filtered_inter_turns.json`` shape: objects whose ``conversation`` holds messages."""
    out = []
    for c in range(n_convs):
        conv = []
        for k in range(msgs_per_conv):
            role = "user" if k % 2 == 0 else "assistant"
            conv.append({"content": f"conv {c} message {k} from the {role}", "role": role})
        out.append({"conversation_id": f"id{c}", "model": "m", "conversation": conv, "turn": msgs_per_conv // 2,
                    "language": "English", "redacted": False})
    return out


def _realistic_copy(src: Path, dst: Path) -> Path:
    """The sample plus the official data's three quirks: a row without ``explanation`` (in every
    form file of that row), an unknown field on some rows, and an editor's copy of a topic file."""
    shutil.copytree(src, dst)
    for sub in ("explicit_preference", "implicit_preference/choice-based", "implicit_preference/persona-driven",
                "mcq_options"):
        p = dst / sub / "travel_restaurant.json"
        p.chmod(0o644)
        rows = json.loads(p.read_text(encoding="utf-8"))
        del rows[5]["explanation"]
        if "persona-driven" in sub:
            for i in (1, 3, 4):
                rows[i]["fix"] = "edited by hand"
        p.write_text(json.dumps(rows), encoding="utf-8")
    mcq = dst / "mcq_options"
    mcq.chmod(0o755)
    rows = json.loads((mcq / "travel_restaurant.json").read_text(encoding="utf-8"))
    (mcq / "travel_restaurant copy.json").write_text(json.dumps(rows[:-3]), encoding="utf-8")
    shutil.copy(mcq / "lifestyle_dietary.json", mcq / "zzz_dup.json")
    return dst


def test_official_quirks_keep_every_item(sample_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = load_prefeval(sample_dir)
    root = _realistic_copy(sample_dir, tmp_path / "data")
    ds = load_prefeval(root)
    assert ds.errors == []
    assert len(ds.items) == len(clean.items)  # the row without explanation is kept
    assert ds.form_totals() == clean.form_totals()
    assert ds.topics() == ["lifestyle_dietary", "travel_restaurant"]  # no phantom topic from the copies
    assert sorted(Path(lo.path).name for lo in ds.left_out) == ["travel_restaurant copy.json", "zzz_dup.json"]
    assert any("copy of travel_restaurant.json" in lo.reason for lo in ds.left_out)
    assert any("duplicate of lifestyle_dietary.json" in lo.reason for lo in ds.left_out)
    # one grouped warning per file for the unknown field, naming its rows
    fix = [w for w in ds.warnings if "unknown field" in w.message]
    assert len(fix) == 1 and "'fix' (rows 1, 3, 4 (3 rows))" in fix[0].message
    expl = [w for w in ds.warnings if w.field == "explanation"]
    assert len(expl) == 4 and {w.row for w in expl} == {5}

    assert cli("--data", str(root), "--validate") == 0
    out = " ".join(capsys.readouterr().out.split())
    n = clean.form_totals()["explicit"]
    assert f"items per form: explicit {n:,}, implicit-choice {n:,}, implicit-persona {n:,}, mcq {n:,}" in out
    assert "left out of the totals: 2" in out and "0 error(s)" in out


def test_sample_validates(sample_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("--data", str(sample_dir), "--validate") == 0
    assert "items per form: explicit 113" in " ".join(capsys.readouterr().out.split())


def test_prefeval_filler_format_and_default(tiny_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    convs = prefeval_filler(3, 4)
    convs[1]["conversation"].append({"role": "user", "content": "odd message out"})  # breaks alternation later
    (tiny_data / PREFEVAL_FILLER).write_text(json.dumps(convs), encoding="utf-8")
    assert default_filler_path(tiny_data) == tiny_data / PREFEVAL_FILLER  # preferred over filler.json
    f = load_filler(tiny_data / PREFEVAL_FILLER)
    assert f.format == "prefeval" and len(f.sha256) == 64
    # the original concatenates all messages and pairs them in order
    assert f.pairs[0] == ("conv 0 message 0 from the user", "conv 0 message 1 from the assistant")
    assert f.pairs[2] == ("conv 1 message 0 from the user", "conv 1 message 1 from the assistant")
    assert len(f.pairs) == 6 and len(f.problems) == 1 and f.problems[0].severity == "warning"
    # a different file gives a different sha256
    other = tiny_data / "other.json"
    other.write_text(json.dumps(prefeval_filler(3, 4)), encoding="utf-8")
    assert load_filler(other).sha256 != f.sha256
    assert cli("--data", str(tiny_data), "--validate") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "PrefEval's original filler, found in --data" in out and "prefeval format" in out


def test_prefeval_filler_bad_entries(tmp_path: Path) -> None:
    convs = prefeval_filler(2)
    convs.insert(1, {"conversation": "not a list"})
    convs.append({"conversation": [{"role": "robot", "content": "x"}]})
    path = tmp_path / "f.json"
    path.write_text(json.dumps(convs), encoding="utf-8")
    f = load_filler(path)
    assert len(f.pairs) == 4
    assert [(p.row, p.field) for p in f.problems] == [(1, "conversation"), (3, "conversation[0].role")]


def test_run_names_its_filler_and_reports_controls(tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tiny_data / PREFEVAL_FILLER).write_text(json.dumps(prefeval_filler(4, 4)), encoding="utf-8")
    out = tmp_path / "run"
    assert cli("--backend", "fake", "--data", str(tiny_data), "--turns", "3", "--methods", "zero-shot,reminder",
               "--forms", "explicit", "implicit-choice", "--out", str(out)) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "PrefEval's original filler, found in --data" in shown
    config = json.loads((out / "config.json").read_text())
    f = config["filler"]
    assert f["path"] == str(tiny_data / PREFEVAL_FILLER) and f["format"] == "prefeval" and f["pairs"] == 8  # 4 conversations of 2 pairs
    assert len(f["sha256"]) == 64 and f["tokens_by_pairs"]["3"] > 0 and f["tokenizer"] == "backend"  # the fake counts its own tokens
    report = (out / "report.md").read_text()
    assert report.startswith("# PrefEval run — protocol: persona-lab")
    assert f["sha256"] in report and "filler tokens by the tested model" in report and "5 turns:" in report
    # controls: the question alone, and the preference with no filler (turn count 2), beside each method
    assert "question only (no context)" in report and "2 turns (preference only)" in report
    recs = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    qo = [r for r in recs if r["form"] == "question-only"]
    assert len(qo) == 3 * 2 * 2 and all(r["control"] == "question-only" for r in qo)  # items x methods x tasks
    assert all(r["context"]["preference_block"] == [] and r["context"]["filler_pairs"] == 0 for r in qo)
    from persona_lab.simulators.prefeval.context import request_messages

    gen = next(r for r in qo if r["task"] == "generation" and r["method"] == "zero-shot")
    msgs = request_messages(gen, load_filler(tiny_data / PREFEVAL_FILLER))
    assert [m["role"] for m in msgs] == ["system", "user"] and msgs[1]["content"].startswith(gen["question"])
    assert {r["turns"] for r in recs if r["form"] != "question-only"} == {0, 3}  # 0 added by the controls
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["prefeval/control/question_only/classification/accuracy"] is not None
    main_n = sum(c["ok"] for c in summary["classification"]["cells"] if c["form"] != "question-only")
    assert summary["metrics"]["prefeval/classification/n"] == main_n  # controls stay out of the totals
