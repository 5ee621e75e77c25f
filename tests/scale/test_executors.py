"""Episodes in worker processes and on Ray give the run folder that threads give; infrastructure
failures are re-queued and counted; a backend's concurrency cap holds across workers."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from persona_lab.core.errors import ConfigError
from persona_lab.eval import executors
from persona_lab.eval.caps import CappedBackend, CapTable, TableClient
from persona_lab.eval.executors import _drive, _Lost, _OrderedWriter, _ProcessPool
from persona_lab.eval.runner import RunConfig, Runner
from persona_lab.models.base import ChatRequest
from persona_lab.models.fake import FakeChatModel
from persona_lab.testing.fake_server import FakeOpenAIServer, Fault

CONFIG = RunConfig(env_id="persona_lab/EditEmail-v0", agent="cipher", rounds=6, episodes=3, seed=7,
                   agent_kwargs={"encoder": "tfidf"})


def run_folder(out: Path, config: RunConfig = CONFIG, **kw: object) -> tuple[str, dict]:
    result = Runner(config, out, cache=False, **kw).run()  # type: ignore[arg-type]
    summary = dict(result.summary)
    summary.pop("throughput")
    return (out / "transitions.jsonl").read_text(), summary


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    """One local Ray instance for every Ray test of this module (starting one takes seconds)."""
    ray = pytest.importorskip("ray")
    # address="local": a fresh instance even when a `ray start` cluster runs on this machine
    ray.init(address="local", num_cpus=2, include_dashboard=False, ignore_reinit_error=True, logging_level="WARNING")
    try:
        yield ray
    finally:
        ray.shutdown()


class _Peak:
    """A fake-server responder that counts the requests it is serving at once."""

    def __init__(self, delay_s: float = 0.03) -> None:
        self.delay_s, self.now, self.peak = delay_s, 0, 0
        self._lock = threading.Lock()

    def __call__(self, body: object) -> str:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(self.delay_s)
        with self._lock:
            self.now -= 1
        return "Hi team, the draft is attached."


def served_config(server: FakeOpenAIServer, cap: int) -> RunConfig:
    return RunConfig(env_id="persona_lab/EditEmail-v0", agent="no-learning", user="scripted",
                     backend=server.spec("m") + f"?max_concurrency={cap}", rounds=4, episodes=3, seed=1)


# --- processes -------------------------------------------------------------------------------------


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
    assert result.summary["throughput"]["episodes_requeued"] == 0


def _without_timing(summary: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in summary.items() if k not in ("throughput", "usage")}
    for entry in out.get("backends", {}).values():
        entry["replicas"] = [{k: v for k, v in r.items() if k != "seconds"} for r in entry["replicas"]]
    return out


def test_the_cap_of_a_backend_holds_across_worker_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    peak = _Peak()
    with FakeOpenAIServer(peak) as server:
        server.inject(Fault.http(503))
        threads = Runner(served_config(server, 1), tmp_path / "threads", cache=False, concurrency=3).run()
        server.inject(Fault.http(503))
        result = Runner(served_config(server, 1), tmp_path / "capped", cache=False, concurrency=3,
                        executor="processes").run()
        assert result.summary["episodes"] == 3 and not result.failed_episodes
        assert peak.peak == 1  # three workers, one request at a time at the server
        (caps,) = result.summary["throughput"]["caps"].values()
        assert caps == {"cap": 1, "peak_in_flight": 1}
        # the workers' faults and per-replica usage reach the summary as with threads
        assert _without_timing(result.summary) == _without_timing(threads.summary)
        (faults,) = result.summary["faults"].values()
        assert faults["retries"] == 1 and result.summary["usage"]["agent"]["calls"] == 12
        # without the shared table each worker keeps its own cap of 1: the same run overlaps requests
        monkeypatch.setattr(executors, "_uses_models", lambda runner: False)
        peak.peak = 0
        Runner(served_config(server, 1), tmp_path / "per-worker", cache=False, concurrency=3,
               executor="processes").run()
        assert peak.peak > 1


def test_a_dead_worker_process_is_reported_as_lost_and_the_pool_replaced() -> None:
    pool = _ProcessPool(1)
    fut = pool._pool().submit(os._exit, 3)
    ((handle, outcome),) = pool.wait([fut])
    assert handle is fut and isinstance(outcome, _Lost) and "died" in outcome.why
    assert pool._pool().submit(int, "7").result() == 7  # a fresh pool took the broken one's place


# --- the driver loop --------------------------------------------------------------------------------


class _FlakyPool:
    """Runs episodes in-process; the first ``lose`` attempts of each episode in ``flaky`` are lost."""

    width = 2

    def __init__(self, runner: Runner, flaky: set[int], lose: int) -> None:
        self.runner, self.flaky, self.lose = runner, flaky, lose
        self.attempts: dict[int, int] = {}
        self.outcomes: dict[int, Any] = {}

    def submit(self, args: tuple[Any, ...]) -> int:
        e, lease = args[4], args[-1]
        assert lease == f"{e}/{self.attempts.get(e, 0)}"
        self.attempts[e] = self.attempts.get(e, 0) + 1
        handle = len(self.outcomes)
        if e in self.flaky and self.attempts[e] <= self.lose:
            self.outcomes[handle] = _Lost("worker crashed (test)")
        else:
            records: list[dict[str, Any]] = []
            executed = self.runner._run_episode(e, {}, emit=records.append)
            self.outcomes[handle] = {"episode": e, "records": records, "executed": executed, "usage": {}}
        return handle

    def wait(self, handles: list[int]) -> list[tuple[int, Any]]:
        return [(handles[-1], self.outcomes[handles[-1]])]  # the latest first: out of order on purpose


def test_lost_episodes_are_requeued_counted_and_never_recorded_as_results(tmp_path: Path) -> None:
    full = run_folder(tmp_path / "full")[0]
    runner = Runner(CONFIG, tmp_path / "flaky", cache=False)
    runner.out.mkdir()
    writer = _OrderedWriter(runner, [0, 1, 2])
    pool = _FlakyPool(runner, flaky={1}, lose=executors.REQUEUE)
    _drive(runner, pool, {e: (None, None, None, None, e, {}, None) for e in range(3)}, writer)
    assert writer.requeued == executors.REQUEUE and not writer.failed
    assert pool.attempts == {0: 1, 1: executors.REQUEUE + 1, 2: 1}
    assert (runner.out / "transitions.jsonl").read_text() == full  # episode order, nothing of the lost tries
    assert not (runner.out / "errors.jsonl").exists()

    runner = Runner(CONFIG, tmp_path / "lost", cache=False)
    runner.out.mkdir()
    writer = _OrderedWriter(runner, [0, 1, 2])
    _drive(runner, _FlakyPool(runner, flaky={1}, lose=99), {e: (None, None, None, None, e, {}, None) for e in range(3)},
           writer)
    assert writer.failed == [1] and writer.requeued == executors.REQUEUE
    records = [json.loads(x) for x in (runner.out / "transitions.jsonl").read_text().splitlines()]
    assert sorted({r["episode"] for r in records}) == [0, 2]  # the lost episode left no record
    assert "lost 3 times" in (runner.out / "errors.jsonl").read_text()


# --- caps ---------------------------------------------------------------------------------------------


def test_a_capped_backend_sends_a_batch_larger_than_its_cap_in_slices() -> None:
    table = CapTable()
    inner = FakeChatModel("ok")
    capped = CappedBackend(inner, "k", 2, lambda: TableClient(lambda m, *a: getattr(table, m)(*a)))
    reqs = [ChatRequest.of(f"q{i}") for i in range(5)]
    assert [c.text for c in capped.generate(reqs)] == ["ok"] * 5
    assert inner.calls == 3 and table.stats() == {"k": {"cap": 2, "peak_in_flight": 2}}
    assert capped.spec == inner.spec and not hasattr(capped, "score")  # what the backend cannot do stays absent
    assert table.try_acquire("k", 2, 2, timeout_s=0)  # every slot was given back


def test_the_slots_of_a_lost_attempt_are_freed_by_the_driver() -> None:
    table = CapTable()
    assert table.try_acquire("k", 1, 1, timeout_s=0, owner="3/0")  # the worker of episode 3 died holding it
    assert not table.try_acquire("k", 1, 1, timeout_s=0.01, owner="4/0")
    table.release("k", 1, owner="4/0")  # a release by another owner frees nothing
    assert not table.try_acquire("k", 1, 1, timeout_s=0, owner="4/0")
    assert table.release_owner("3/0") == 1
    assert table.try_acquire("k", 1, 1, timeout_s=0, owner="4/0")


# --- ray ------------------------------------------------------------------------------------------------


def test_ray_writes_the_same_run_folder_as_threads(tmp_path: Path, ray_local: Any) -> None:
    threads = run_folder(tmp_path / "threads", concurrency=2)
    on_ray = run_folder(tmp_path / "ray", concurrency=2, executor="ray")
    assert on_ray == run_folder(tmp_path / "one")
    assert on_ray[1] == threads[1]
    cut = tmp_path / "ray"  # kill -9 during episode 1, then --resume on Ray: the same file again
    lines = (cut / "transitions.jsonl").read_text().splitlines(keepends=True)
    (cut / "transitions.jsonl").write_text("".join(lines[:8]))
    result = Runner(CONFIG, cut, cache=False, executor="ray", concurrency=2).run(resume=True)
    assert (cut / "transitions.jsonl").read_text() == on_ray[0]
    assert result.summary["throughput"]["executor"] == "ray"


def test_the_cap_of_a_backend_holds_across_ray_workers(tmp_path: Path, ray_local: Any) -> None:
    peak = _Peak()
    with FakeOpenAIServer(peak) as server:
        result = Runner(served_config(server, 1), tmp_path / "capped", cache=False, concurrency=2,
                        executor="ray").run()
    assert result.summary["episodes"] == 3 and peak.peak == 1
    (caps,) = result.summary["throughput"]["caps"].values()
    assert caps == {"cap": 1, "peak_in_flight": 1}


def test_a_crashed_ray_worker_is_reported_as_lost(ray_local: Any) -> None:
    def crash() -> None:  # nested, so Ray ships it by value (workers cannot import the test module)
        os._exit(3)  # the worker process dies as it would from the OOM killer or a segfault

    pool = executors._RayPool(1)
    ref = ray_local.remote(max_retries=0)(crash).remote()
    ((handle, outcome),) = pool.wait([ref])
    assert isinstance(outcome, _Lost) and "WorkerCrashedError" in outcome.why


def test_bench_prelude_passes_the_executor_to_its_runs(tmp_path: Path) -> None:
    from persona_lab.cli.main import main

    def bench(executor: str) -> dict[str, str]:
        out = tmp_path / executor
        assert main(["bench", "prelude", "--agents", "no-learning", "cipher-1", "--encoder", "tfidf", "--tasks", "email",
                     "--seeds", "0", "--rounds", "4", "--concurrency", "2", "--no-cache", "--executor", executor,
                     "--out", str(out)]) == 0
        runs = sorted((out / "runs").rglob("transitions.jsonl"))
        assert len(runs) == 2
        for path in runs:
            throughput = json.loads((path.parent / "summary.json").read_text())["throughput"]
            assert throughput.get("executor", "threads") == executor
        return {str(p.relative_to(out)): p.read_text() for p in runs}

    assert bench("processes") == bench("threads")


def test_without_ray_the_run_is_refused_and_leaves_no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_ray(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ConfigError, match="needs Ray") as info:
        Runner(CONFIG, tmp_path / "r", cache=False, executor="ray").run()
    assert "pip install" in str(info.value)
    assert not (tmp_path / "r" / "config.json").exists()  # the same command works once Ray is installed
