"""A scripted run stays light: no torch, scipy or transformers in the process (checked in a fresh one)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from persona_lab.eval.metrics import mean_ci, t_ppf, wilson_interval

HEAVY = ("torch", "scipy", "transformers", "sentence_transformers", "faiss", "sklearn", "trl", "peft")

_SCRIPT = """
import json, sys
from persona_lab.cli.main import main
rc = main(["run", "persona_lab/EditEmail-v0", "--rounds", "20", "--out", sys.argv[1]])
print(json.dumps({"rc": rc, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def test_a_scripted_run_imports_no_heavy_library(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path / "run")], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["rc"] == 0
    assert not set(HEAVY) & set(report["modules"]), set(HEAVY) & set(report["modules"])
    assert "gymnasium" in report["modules"]  # the check can see what was imported


def test_t_quantile_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    for df in [*range(1, 40), 99, 1000, 4999, 5001, 50000]:
        for p in (0.6, 0.95, 0.975, 0.995):
            assert t_ppf(p, df) == pytest.approx(float(stats.t.ppf(p, df)), rel=1e-8)
    ci = mean_ci([1.0, 2.0, 4.0])
    assert ci["ci_high"] - ci["mean"] == pytest.approx(float(stats.t.ppf(0.975, 2)) * ci["std"] / 3**0.5)
    low, high = wilson_interval(3, 10)
    z = float(stats.norm.ppf(0.975))
    centre = (0.3 + z * z / 20) / (1 + z * z / 10)
    assert (low + high) / 2 == pytest.approx(centre)
