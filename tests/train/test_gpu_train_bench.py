"""benchmarks/gpu_train.py runs on CPU with a tiny config (what CI exercises; the GPU numbers come
from running it on a GPU machine)."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_train.py"


def test_gpu_train_benchmark_tiny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = runpy.run_path(str(SCRIPT), run_name="gpu_train_bench")
    out = tmp_path / "bench.json"
    rc = bench["main"](["--tiny", "--steps", "1", "--warmup", "1", "--settings", "trl-defaults,persona-lab",
                        "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "tokens/s" in text and "MFU" in text
    results = json.loads(out.read_text())["results"]
    assert {(r["method"], r["setting"]) for r in results} == {
        (m, s) for m in ("dpo", "sft") for s in ("trl-defaults", "persona-lab")
    }
    assert all(r["tokens_per_s"] > 0 and r["steps"] == 1 for r in results)


def test_peak_flops_table() -> None:
    bench = runpy.run_path(str(SCRIPT), run_name="gpu_train_bench")
    assert bench["peak_flops"]("NVIDIA H100 80GB HBM3", None) == pytest.approx(989.4e12)
    assert bench["peak_flops"]("NVIDIA H100 PCIe", None) == pytest.approx(756e12)
    assert bench["peak_flops"]("NVIDIA H200", None) == pytest.approx(989.4e12)
    assert bench["peak_flops"]("Some GPU", None) is None
    assert bench["peak_flops"]("Some GPU", 100.0) == pytest.approx(100e12)
