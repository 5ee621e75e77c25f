"""`bench prelude` reuses a run folder only when its stored config equals the asked one, and its table
says n and uses complete runs only."""

from __future__ import annotations

from pathlib import Path

import pytest

from persona_lab.core.errors import ConfigError
from persona_lab.eval.bench import AgentVariant, BenchConfig, run_bench


def _cfg(out: Path, **kw: object) -> BenchConfig:
    base = {"out": str(out), "tasks": ("email",), "agents": (AgentVariant("no-learning", "no-learning"),),
            "seeds": (0, 1), "rounds": 4}
    return BenchConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_bench_reuses_only_a_run_of_the_same_config(tmp_path: Path) -> None:
    rounds: list[int] = []
    first = run_bench(_cfg(tmp_path), concurrency=1, on_round=lambda: rounds.append(1))
    assert len(rounds) == 8
    again = run_bench(_cfg(tmp_path), concurrency=1, on_round=lambda: rounds.append(1))
    assert len(rounds) == 8, "an identical finished run is reused, not rerun"
    assert again["tasks"]["email"]["no-learning"]["per_seed"]["0"]["cumulative_cost"] == \
        first["tasks"]["email"]["no-learning"]["per_seed"]["0"]["cumulative_cost"]
    # Old behaviour: the first run's numbers were printed under a header saying effort 1.
    with pytest.raises(ConfigError, match="different config"):
        run_bench(_cfg(tmp_path, env_kwargs={"effort": 1}), concurrency=1)


def test_bench_table_says_n_and_leaves_out_incomplete_runs(tmp_path: Path) -> None:
    run_bench(_cfg(tmp_path), concurrency=1)
    path = tmp_path / "runs" / "email" / "no-learning" / "seed-1" / "transitions.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:2]))  # a 2-round fragment
    from persona_lab.eval.bench import collect, markdown_table

    results = collect(_cfg(tmp_path), [])
    row = results["tasks"]["email"]["no-learning"]
    assert row["n"] == 1 and row["incomplete_seeds"] == [1]
    table = markdown_table(results)
    assert "email n" in table and "(n = 1)" in table and "seeds [1] incomplete" in table


def test_bench_stop_keeps_finished_runs_and_the_rerun_completes(tmp_path: Path) -> None:
    import threading

    stop = threading.Event()
    rounds: list[int] = []

    def on_round() -> None:
        rounds.append(1)
        if len(rounds) == 3:
            stop.set()

    assert run_bench(_cfg(tmp_path), concurrency=1, on_round=on_round, stop_event=stop) is None
    assert len(rounds) == 3, "no round starts after the stop request"
    assert not (tmp_path / "results.json").exists()
    done = run_bench(_cfg(tmp_path), concurrency=1)
    assert done is not None and done["tasks"]["email"]["no-learning"]["n"] == 2
