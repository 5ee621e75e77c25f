"""`prefeval` exit codes follow the README's rule: 0 when every test ran, 3 when the backend kept
failing, 2 for bad input; failed tests are counted in the printed report; data problems are printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from persona_lab.cli.main import main
from persona_lab.testing.fake_server import FakeOpenAIServer, Fault

BASE = ["prefeval", "--turns", "0", "--limit", "1", "--tasks", "classification", "--no-controls"]


def test_backend_that_keeps_failing_exits_3(tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Old behaviour: every test failed, "N test(s) run", exit 0."""
    with FakeOpenAIServer() as server:
        server.set_default_fault(Fault.http(401))
        rc = main([*BASE, "--backend", server.spec(), "--data", str(tiny_data), "--out", str(tmp_path / "r"), "--no-cache"])
    out = capsys.readouterr().out
    assert rc == 3
    assert "3 of 3 test(s) failed" in out and "(3 failed)" in out and "backend kept failing" in out
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["run"]["tests_failed"] == 3 and summary["run"]["tests_failed_by_kind"] == {"backend": 3}


def test_bad_rag_encoder_exits_2_before_running(tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main([*BASE, "--backend", "fake", "--methods", "rag", "--rag-encoder", "nope", "--data", str(tiny_data),
               "--out", str(tmp_path / "r")])
    assert rc == 2 and "unknown --rag-encoder 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "r" / "config.json").exists()


def test_data_with_no_valid_item_exits_2_and_prints_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    (data / "explicit_preference").mkdir(parents=True)
    (data / "explicit_preference" / "travel.json").write_text('[{"question": "no preference here"}]')
    rc = main([*BASE, "--backend", "fake", "--data", str(data), "--out", str(tmp_path / "r")])
    captured = capsys.readouterr()
    assert rc == 2, captured
    assert "no test to run" in captured.err and "error" in captured.out
    assert "Traceback" not in captured.err


def test_all_tests_ok_exits_0(tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main([*BASE, "--backend", "fake", "--data", str(tiny_data), "--out", str(tmp_path / "r")])
    assert rc == 0 and "(0 failed)" in capsys.readouterr().out
