"""Run directories tell the truth: resume fills gaps, one writer at a time, readers never count a round
twice, summaries use complete episodes only, throughput counts every round, intervals stay in range."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from filelock import FileLock

from persona_lab.core.errors import ConfigError, DataError
from persona_lab.core.io import read_jsonl
from persona_lab.core.records import episodes, read_records
from persona_lab.eval.runner import LOCK_FILE, RunConfig, Runner

ENV = "persona_lab/EditEmail-v0"


def _cfg(**kw: object) -> RunConfig:
    base = {"env_id": ENV, "agent": "cipher", "rounds": 8, "episodes": 2, "seed": 1,
            "env_kwargs": {"population": "verifiable", "effort": 1}, "agent_kwargs": {"encoder": "tfidf"}}
    return RunConfig(**{**base, **kw})  # type: ignore[arg-type]


def _rows(run: Path) -> list[tuple]:
    return sorted((r["episode"], r["round"], r["action"], r["reward"]) for r in read_jsonl(run / "transitions.jsonl"))


def _drop_lines(path: Path, keep: object) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(line for line in lines if keep(json.loads(line))))


# --- item 4: resume fills every missing round -----------------------------------------------------------

def test_resume_fills_a_missing_middle_round(tmp_path: Path) -> None:
    """Old behaviour: the episode counted as finished once its last round was recorded; the gap stayed."""
    full = Runner(_cfg(), tmp_path / "full").run()
    run = tmp_path / "gap"
    Runner(_cfg(), run).run()
    _drop_lines(run / "transitions.jsonl", lambda r: (r["episode"], r["round"]) not in {(0, 3), (1, 5), (1, 6)})
    result = Runner(_cfg(), run).run(resume=True)
    assert _rows(run) == _rows(tmp_path / "full")
    assert result.summary["metrics"] == full.summary["metrics"]
    assert result.summary["throughput"]["rounds_executed"] == 3
    assert result.summary["throughput"]["rounds_replayed"] == 13  # the recorded rounds 0..7 replayed, not rewritten


def test_resume_fills_missing_first_round(tmp_path: Path) -> None:
    run = tmp_path / "r"
    Runner(_cfg(episodes=1), run).run()
    _drop_lines(run / "transitions.jsonl", lambda r: r["round"] != 0)
    Runner(_cfg(episodes=1), run).run(resume=True)
    assert [r[1] for r in _rows(run)] == list(range(8))


# --- item 5: one writer, readers refuse or de-duplicate loudly -------------------------------------------

def test_second_writer_fails_at_once(tmp_path: Path) -> None:
    """Old behaviour: two writers both exited 0 and duplicated every round."""
    run = tmp_path / "r"
    run.mkdir()
    with FileLock(run / LOCK_FILE), pytest.raises(ConfigError, match="in use by another persona-lab process"):
        Runner(_cfg(), run).run()
    assert not (run / "transitions.jsonl").exists()
    Runner(_cfg(), run).run()  # the lock is free again


def test_readers_count_a_duplicated_round_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    run = tmp_path / "r"
    clean = Runner(_cfg(), run).run().summary
    path = run / "transitions.jsonl"
    path.write_text(path.read_text() * 2)  # what two writers left
    with caplog.at_level(logging.WARNING):
        recs = read_records(run)
    assert len(recs) == 16 and "duplicated" in caplog.text
    again = Runner(_cfg(), run).summarize(wall_s=1.0, rounds_executed=0, failed=[])
    assert again["metrics"] == clean["metrics"] and again["episodes"] == 2


def test_readers_refuse_conflicting_duplicates(tmp_path: Path) -> None:
    run = tmp_path / "r"
    Runner(_cfg(episodes=1), run).run()
    path = run / "transitions.jsonl"
    row = json.loads(path.read_text().splitlines()[2])
    row["action"], row["action_hash"] = "something else", "0" * 16
    path.write_text(path.read_text() + json.dumps(row) + "\n")
    with pytest.raises(DataError, match="recorded twice with different actions"):
        read_records(run)
    with pytest.raises(DataError, match="recorded twice"):
        episodes(_raw(path))


def _raw(path: Path) -> list:
    from persona_lab.core.records import iter_records

    return list(iter_records(path))


def test_training_data_builder_skips_duplicates(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from persona_lab.train.data import preference_pairs_from_edit_run

    run = tmp_path / "r"
    Runner(RunConfig(env_id=ENV, agent="no-learning", rounds=6), run).run()
    once = preference_pairs_from_edit_run(run)
    path = run / "transitions.jsonl"
    path.write_text(path.read_text() * 2)
    with caplog.at_level(logging.WARNING):
        twice = preference_pairs_from_edit_run(run)
    assert len(twice) == len(once) and "duplicated" in caplog.text


# --- lead's fixes on main, tested here --------------------------------------------------------------

def test_failure_before_first_round_leaves_no_config(tmp_path: Path) -> None:
    run = tmp_path / "r"
    with pytest.raises(ConfigError):
        Runner(_cfg(env_kwargs={"population": "no-such-population"}), run).run()
    assert not (run / "config.json").exists()
    Runner(_cfg(), run).run()  # the corrected rerun needs no --resume
    assert (run / "config.json").exists()


def test_corrupt_config_json_is_a_config_error(tmp_path: Path) -> None:
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.json").write_bytes(b"\xff\xfe{not json")
    with pytest.raises(ConfigError, match="corrupt"):
        Runner(_cfg(), run).run(resume=True)


def test_out_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        Runner(_cfg(), f).run()


# --- item 7: complete episodes only ------------------------------------------------------------------

def test_summary_uses_complete_episodes_only(tmp_path: Path) -> None:
    """Old behaviour: a 2-round fragment was averaged with full episodes."""
    run = tmp_path / "r"
    Runner(_cfg(episodes=3), run).run()
    _drop_lines(run / "transitions.jsonl", lambda r: r["episode"] != 1 or r["round"] < 2)
    s = Runner(_cfg(episodes=3), run).summarize(wall_s=1.0, rounds_executed=0, failed=[1])
    assert s["episodes"] == 2 and s["incomplete_episodes"] == [1] and set(s["per_episode"]) == {"0", "2"}
    ref = Runner(_cfg(episodes=3), tmp_path / "ref").run().summary
    costs = [ref["per_episode"][e]["episode/cost"] for e in ("0", "2")]
    assert s["metrics"]["episode/cost"] == pytest.approx(sum(costs) / 2)
    assert s["metrics_ci"]["episode/cost"]["n"] == 2


# --- item 8: throughput under concurrency ---------------------------------------------------------------

def test_rounds_executed_counts_every_round_under_concurrency(tmp_path: Path) -> None:
    s = Runner(_cfg(episodes=4, rounds=10), tmp_path / "r", concurrency=4).run().summary
    assert s["throughput"]["rounds_executed"] == 40 and s["throughput"]["rounds_replayed"] == 0


# --- item 10: bounded intervals, n -------------------------------------------------------------------

def test_intervals_respect_ranges() -> None:
    from persona_lab.eval.metrics import format_ci, mean_ci, metric_ci

    cost = metric_ci("episode/cost", [0.0, 0.0, 0.0, 30.0])
    assert cost["ci_low"] == 0.0 and cost["ci_high"] > 0 and cost["n"] == 4
    assert mean_ci([0.0, 0.0, 0.0, 30.0])["ci_low"] < 0  # unbounded t-interval would go negative
    rate = metric_ci("episode/acceptance_rate", [1.0, 1.0, 1.0])
    assert 0 < rate["ci_low"] < 1 and rate["ci_high"] == 1.0  # Wilson: not the degenerate [1, 1]
    frac = metric_ci("episode/preference_satisfaction", [0.9, 1.0, 0.95, 1.0])
    assert frac["ci_high"] <= 1.0
    one = metric_ci("episode/cost", [5.0])
    assert one["ci_low"] is None and format_ci(one) == "n = 1"
    assert metric_ci("episode/return", [-3.0, -1.0])["ci_low"] < -3  # a return has no range
    assert metric_ci("episode/utility", [-1.0, 1.0, 1.0])["ci_low"] >= -1.0  # RLHS utility lives in [-1, 1]


def test_run_table_says_n_and_keeps_ids_at_80_columns(tmp_path: Path) -> None:
    from rich.console import Console

    from persona_lab.cli.run import print_summary

    cfg = RunConfig(env_id="persona_lab/EditSummarization-v0", agent="explore-exploit", rounds=3)
    s = Runner(cfg, tmp_path / "r").run().summary
    console = Console(width=80, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    print_summary(s, console)
    text = console.export_text()
    flat = "".join(text.split())
    assert "persona_lab/EditSummarization-v0" in flat and "explore-exploit" in flat
    assert "episode/preference_satisfaction" in flat and "…" not in text
    assert "n = 1" in text and "95% CI" in text


# --- item 12: file modes are consistent ---------------------------------------------------------------

def test_run_files_share_one_mode(tmp_path: Path) -> None:
    """Old behaviour: config.json and summary.json were 0600 (mkstemp), transitions.jsonl 0644."""
    import stat

    run = tmp_path / "r"
    Runner(_cfg(episodes=1, rounds=2), run).run()
    modes = {name: stat.S_IMODE((run / name).stat().st_mode)
             for name in ("config.json", "summary.json", "transitions.jsonl")}
    assert len(set(modes.values())) == 1, modes
