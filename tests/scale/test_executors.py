"""Episodes in worker processes (and on Ray when installed) give the run folder that threads give."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from persona_lab.eval.runner import RunConfig, Runner

CONFIG = RunConfig(env_id="persona_lab/EditEmail-v0", agent="cipher", rounds=6, episodes=3, seed=7,
                   agent_kwargs={"encoder": "tfidf"})


def run_folder(out: Path, **kw: object) -> tuple[str, dict]:
    result = Runner(CONFIG, out, cache=False, **kw).run()  # type: ignore[arg-type]
    summary = dict(result.summary)
    summary.pop("throughput")
    return (out / "transitions.jsonl").read_text(), summary


def test_processes_write_the_same_run_folder_as_threads(tmp_path: Path) -> None:
    threads = run_folder(tmp_path / "threads", concurrency=2)
    procs = run_folder(tmp_path / "procs", concurrency=2, executor="processes")
    one = run_folder(tmp_path / "one")
    assert procs[1] == threads[1] == one[1]
    assert procs[0] == one[0]  # records in episode order: the file of a one-thread run, byte for byte
    assert sorted(procs[0].splitlines()) == sorted(threads[0].splitlines())
    assert len(procs[0].splitlines()) == 18
    assert json.loads((tmp_path / "procs" / "config.json").read_text())["config"] == CONFIG.to_dict()


def test_resume_with_processes_completes_a_cut_run(tmp_path: Path) -> None:
    full = run_folder(tmp_path / "full")
    cut = tmp_path / "cut"
    run_folder(cut)
    lines = (cut / "transitions.jsonl").read_text().splitlines(keepends=True)
    (cut / "transitions.jsonl").write_text("".join(lines[:8]))  # killed in episode 1
    result = Runner(CONFIG, cut, cache=False, executor="processes", concurrency=2).run(resume=True)
    assert (cut / "transitions.jsonl").read_text() == full[0]
    assert result.summary["throughput"]["rounds_executed"] == 10


def test_ray_writes_the_same_run_folder_as_threads(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    try:
        assert run_folder(tmp_path / "ray", concurrency=2, executor="ray") == run_folder(tmp_path / "one")
    finally:
        ray.shutdown()
