"""Episodes outside the driver's threads: ``processes`` (standard library) and ``ray`` (optional extra).

The driver (the process that called :meth:`Runner.run`) stays the one writer of the run directory:
a worker runs one whole episode and sends its records back; the driver appends them to
``transitions.jsonl`` in episode order (episode e only after every earlier one), so the file is the
one a single-threaded run writes and ``kill -9`` -> ``--resume`` stays exact (an episode that was in
flight in a worker is simply run again; episodes are deterministic given the seed).

Workers build their own :class:`Runner` from the run's config (models open once per worker process,
with the same response cache on disk). Their usage meters are summed into the driver's summary.
Infrastructure failures (a worker process that died, a Ray worker lost) re-queue the episode, up to
``REQUEUE`` times; a :class:`BackendError` inside an episode is recorded in ``errors.jsonl`` as with
threads.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from persona_lab.core.errors import BackendError, ConfigError
from persona_lab.core.io import append_jsonl
from persona_lab.models.base import UsageMeter

if TYPE_CHECKING:
    from persona_lab.eval.runner import Runner

log = logging.getLogger(__name__)

EXECUTORS: tuple[str, ...] = ("threads", "processes", "ray")
REQUEUE = 2  # times an episode is re-run after an infrastructure failure


def run_episode_task(config: dict[str, Any], out: str, cache: bool, cache_dir: str | None, episode: int,
                     recorded: Mapping[int, str]) -> dict[str, Any]:
    """One episode in a worker: its new records, rounds executed and usage, or the BackendError text.

    A top-level function of plain arguments, so that process pools and Ray can ship it anywhere.
    """
    from persona_lab.eval.runner import RunConfig

    runner = _worker_runner(RunConfig(**config), out, cache, cache_dir)
    records: list[dict[str, Any]] = []
    for meter in runner.meters.values():
        meter.__init__()  # type: ignore[misc]  # usage of this episode only
    replayed = runner._counts["replayed"]
    try:
        executed = runner._run_episode(episode, {int(k): v for k, v in recorded.items()}, emit=records.append)
    except BackendError as exc:
        return {"episode": episode, "error": str(exc)}
    return {"episode": episode, "records": records, "executed": executed,
            "replayed": runner._counts["replayed"] - replayed,
            "usage": {role: m.snapshot() for role, m in runner.meters.items()}}


_RUNNERS: dict[tuple[Any, ...], Runner] = {}


def _worker_runner(config: Any, out: str, cache: bool, cache_dir: str | None) -> Runner:
    """One Runner per worker process and run, so its models load once, not once per episode."""
    from persona_lab.eval.runner import Runner

    key = (repr(config.to_dict()), out, cache, cache_dir)
    if key not in _RUNNERS:
        _RUNNERS[key] = Runner(config, out, cache=cache, cache_dir=cache_dir)
    return _RUNNERS[key]


def run_elsewhere(runner: Runner, todo: list[int], recorded: Mapping[int, Mapping[int, str]]) -> list[int]:
    """Run ``todo`` with ``runner.executor``; write records in episode order. Returns the failed
    episodes (rounds executed are counted into the runner)."""
    if runner.executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {runner.executor!r}", hint=f"use one of {EXECUTORS}")
    args = {e: (runner.config.to_dict(), str(runner.out), runner._cache is not None,
                None if runner.cache_dir is None else str(runner.cache_dir), e,
                dict(recorded.get(e, {}))) for e in todo}
    writer = _OrderedWriter(runner, todo)
    if runner.executor == "processes":
        _processes(runner.concurrency, args, writer)
    else:
        _ray(runner.concurrency, args, writer)
    return sorted(writer.failed)


class _OrderedWriter:
    """Appends finished episodes to the run in episode order and merges their usage."""

    def __init__(self, runner: Runner, todo: list[int]) -> None:
        self.runner = runner
        self.order = sorted(todo)
        self.next = 0
        self.ready: dict[int, dict[str, Any]] = {}
        self.executed = 0
        self.failed: list[int] = []

    def accept(self, result: dict[str, Any]) -> None:
        self.ready[result["episode"]] = result
        while self.next < len(self.order) and self.order[self.next] in self.ready:
            self._write(self.ready.pop(self.order[self.next]))
            self.next += 1

    def _write(self, result: dict[str, Any]) -> None:
        runner, e = self.runner, result["episode"]
        if "error" in result:
            self.failed.append(e)
            log.error("episode %d failed: %s", e, result["error"])
            append_jsonl(runner.out / "errors.jsonl", {"episode": e, "error": result["error"], "time": time.time()})
            return
        for rec in result["records"]:
            append_jsonl(runner.transitions_path, rec)
            runner._count("executed")
            runner.on_round()
        self.executed += result["executed"]
        for _ in range(result.get("replayed", 0)):
            runner._count("replayed")
        for role, snap in result["usage"].items():
            meter = runner.meters.setdefault(role, UsageMeter())
            with meter._lock:
                meter.calls += snap["calls"]
                meter.cache_hits += snap["cache_hits"]
                meter.prompt_tokens += snap["prompt_tokens"]
                meter.completion_tokens += snap["completion_tokens"]
                meter.backend_seconds += snap["backend_seconds"]
                meter.errors += snap["errors"]


def _processes(workers: int, args: dict[int, tuple[Any, ...]], writer: _OrderedWriter) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    tries = dict.fromkeys(args, 0)
    pending = sorted(args)
    ctx = multiprocessing.get_context("spawn")  # the driver has threads; forking them is unsafe
    while pending:
        lost: list[int] = []
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = {pool.submit(run_episode_task, *args[e]): e for e in pending}
            for fut in as_completed(futures):
                e = futures[fut]
                try:
                    writer.accept(fut.result())
                except BrokenProcessPool:
                    lost.append(e)
        for e in lost:
            tries[e] += 1
            if tries[e] > REQUEUE:
                writer.accept({"episode": e, "error": f"worker process died {tries[e]} times running this episode"})
        pending = sorted(e for e in lost if tries[e] <= REQUEUE)
        if pending:
            log.warning("worker processes died; re-running episodes %s", pending)


def _ray(max_in_flight: int, args: dict[int, tuple[Any, ...]], writer: _OrderedWriter) -> None:
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray", hint="pip install 'persona-lab[ray]' (or `pip install ray`)") from None
    if not ray.is_initialized():
        # RAY_ADDRESS (e.g. ray://head:10001 or auto) joins a cluster; unset starts a local instance.
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, ignore_reinit_error=True)
    task = ray.remote(max_retries=REQUEUE)(run_episode_task)  # lost workers are retried by Ray itself
    pending = sorted(args)
    in_flight: dict[Any, int] = {}
    while pending or in_flight:
        while pending and len(in_flight) < max_in_flight:  # the run's concurrency caps what is in flight
            e = pending.pop(0)
            in_flight[task.remote(*args[e])] = e
        ready, _ = ray.wait(list(in_flight), num_returns=1)
        for ref in ready:
            e = in_flight.pop(ref)
            try:
                writer.accept(ray.get(ref))
            except Exception as exc:  # noqa: BLE001 - a task Ray could not complete after its retries
                writer.accept({"episode": e, "error": f"ray task failed: {type(exc).__name__}: {exc}"})
