"""SIGINT/SIGTERM stop a run promptly, write the summary, say how to --resume, and exit 130; the
resumed folder equals an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from persona_lab.core.io import read_jsonl

ARGS = ["run", "persona_lab/EditEmail-v0", "--agent", "cipher", "--agent-arg", "encoder=tfidf", "--rounds", "60",
        "--episodes", "4", "--concurrency", "4", "--population", "verifiable", "--effort", "1", "--seed", "5"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "persona_lab.cli.main", *args]


def _rows(p: Path) -> list:
    return sorted((r["episode"], r["round"], r["action"], r["reward"]) for r in read_jsonl(p / "transitions.jsonl"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_run_writes_summary_and_resumes(tmp_path: Path, sig: signal.Signals) -> None:
    """Old behaviour: every running and queued episode finished before exit 130; no summary.json."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    run = tmp_path / "run"
    proc = subprocess.Popen(_cli(*ARGS, "--out", str(run)), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    path = run / "transitions.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (path.exists() and sum(1 for _ in path.open()) >= 12):
        time.sleep(0.02)
    proc.send_signal(sig)
    sent = time.time()
    out, err = proc.communicate(timeout=60)
    assert time.time() - sent < 5, "the run did not stop promptly"
    assert proc.returncode == 130, err
    recorded = sum(1 for _ in path.open())
    assert recorded < 240, "the run finished before the signal; raise --rounds"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["interrupted"] is True
    assert "--resume" in err and "Traceback" not in err
    if sig != signal.SIGINT:
        return  # resuming is the same for both signals; compare it once
    resumed = subprocess.run(_cli(*ARGS, "--out", str(run), "--resume"), env=env, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    full = tmp_path / "full"
    subprocess.run(_cli(*ARGS, "--out", str(full)), env=env, check=True, capture_output=True, timeout=300)
    assert _rows(run) == _rows(full)
    assert json.loads((run / "summary.json").read_text())["metrics"] == json.loads((full / "summary.json").read_text())["metrics"]
