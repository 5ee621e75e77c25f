"""Episodes outside the driver's threads: ``processes`` (standard library) and ``ray`` (optional extra).

The driver (the process that called :meth:`Runner.run`) stays the one writer of the run directory:
a worker runs one whole episode and sends its records back; the driver appends them to
``transitions.jsonl`` in episode order (episode e only after every earlier one), so the file is the
one a single-threaded run writes and ``kill -9`` -> ``--resume`` stays exact (an episode that was in
flight in a worker is simply run again; episodes are deterministic given the seed).

Workers build their own :class:`Runner` from the run's config (models open once per worker process,
with the same response cache on disk). Their usage meters, backend faults and per-replica usage are
summed into the driver's summary.
Network backends in workers share one concurrency cap per backend for the whole run
(:mod:`persona_lab.eval.caps`). At most ``concurrency`` episodes are in flight; a stop request
(Ctrl-C) starts no new one.

An infrastructure failure (a worker process that died, a Ray worker or node lost) is not a result:
the episode is re-queued, up to ``REQUEUE`` times, and counted (``throughput.episodes_requeued`` in
the summary); only then is it a failed episode (``errors.jsonl``, rerun with ``--resume``). A dead
process breaks the whole standard-library pool, so every episode in flight with it is charged one
loss (the pool cannot say which one died). A
:class:`BackendError` inside an episode is recorded in ``errors.jsonl`` as with threads, and bad
input found inside a worker stops the run as it does with threads.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from multiprocessing.managers import BaseManager
from typing import TYPE_CHECKING, Any

from persona_lab.core.errors import BackendError, ConfigError, PersonaLabError
from persona_lab.core.io import append_jsonl
from persona_lab.core.records import iter_records
from persona_lab.eval.caps import CappedBackend, Caps, CapTable, TableClient, backend_cap
from persona_lab.models.base import UsageMeter

if TYPE_CHECKING:
    from persona_lab.eval.runner import Runner

log = logging.getLogger(__name__)

EXECUTORS: tuple[str, ...] = ("threads", "processes", "ray")
REQUEUE = 2  # times an episode is re-run after an infrastructure failure


def check_executor(name: str) -> str:
    """``name`` if it is a known executor, else a :class:`ConfigError` naming the choices."""
    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor {name!r}", hint=f"use one of {', '.join(EXECUTORS)}")
    return name


# ------------------------------------------------------------------------------------------------
# the worker side

_CAPS: Caps | None = None  # the run's cap table, set by each task (a worker runs one task at a time)


def run_episode_task(config: dict[str, Any], out: str, cache: bool, cache_dir: str | None, episode: int,
                     recorded: Mapping[int, str], caps: Any = None, lease: str = "") -> dict[str, Any]:
    """One episode in a worker: its new records, rounds executed and usage, or the BackendError text.

    A top-level function of plain arguments, so that process pools and Ray can ship it anywhere.
    ``caps`` is the run's cap table (a manager proxy or a Ray actor handle), or ``None``; ``lease``
    names this attempt's slots in it (freed by the driver if the attempt is lost).
    """
    from persona_lab.eval.runner import RunConfig, _Stopped

    global _CAPS
    _CAPS = _client(caps, lease)
    runner = _worker_runner(RunConfig(**config), out, cache, cache_dir)
    runner._stop.clear()  # a permanent fault stopped this worker's runner during an earlier episode
    records: list[dict[str, Any]] = []
    for meter in runner.meters.values():
        meter.__init__()  # type: ignore[misc]  # usage of this episode only
    replayed = runner._counts["replayed"]
    try:
        executed = runner._run_episode(episode, {int(k): v for k, v in recorded.items()}, emit=records.append)
    except BackendError as exc:
        return {"episode": episode, "error": str(exc), "message": exc.message, "hint": exc.hint,
                "retryable": exc.retryable, "backends": _backend_report(runner)}
    except _Stopped:  # not expected (the stop flag was cleared); never a result
        return {"episode": episode, "error": "stopped in the worker", "retryable": True}
    return {"episode": episode, "records": records, "executed": executed,
            "replayed": runner._counts["replayed"] - replayed,
            "usage": {role: m.snapshot() for role, m in runner.meters.items()},
            "backends": _backend_report(runner)}


def _backend_report(runner: Runner) -> dict[str, Any]:
    """What this worker's backends counted (faults, per-replica usage) since its last report."""
    now: dict[str, Any] = {}
    for spec, backend in runner._backends.items():
        faults, replicas = getattr(backend, "faults", None), getattr(backend, "replica_stats", None)
        entry = {**({"faults": faults.snapshot()} if hasattr(faults, "snapshot") else {}),
                 **({"replicas": replicas()} if callable(replicas) else {})}
        if entry:
            now[spec] = entry
    last = getattr(runner, "_reported", {})
    runner._reported = now  # type: ignore[attr-defined]
    return {spec: _delta(entry, last.get(spec)) for spec, entry in now.items()}


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _delta(new: Any, old: Any) -> Any:
    """``new - old`` over nested dicts and lists of counters (other values: ``new``)."""
    if isinstance(new, dict):
        return {k: _delta(v, old.get(k) if isinstance(old, dict) else None) for k, v in new.items()}
    if isinstance(new, list):
        olds = old if isinstance(old, list) and len(old) == len(new) else [None] * len(new)
        return [_delta(n, o) for n, o in zip(new, olds)]
    return new - old if _number(new) and _number(old) else new


def _add(total: Any, part: Any) -> Any:
    """``total + part`` over the same shapes as :func:`_delta`."""
    if isinstance(part, dict):
        base = total if isinstance(total, dict) else {}
        return {**base, **{k: _add(base.get(k), v) for k, v in part.items()}}
    if isinstance(part, list):
        base = total if isinstance(total, list) and len(total) == len(part) else [None] * len(part)
        return [_add(t, p) for t, p in zip(base, part)]
    if _number(part) and _number(total):
        out = total + part
        return round(out, 6) if isinstance(out, float) else out
    return part


class _Reported:
    """The driver's stand-in for a backend the workers used: their faults and replica usage, summed,
    where :meth:`Runner.summarize` reads them (``faults``, ``backends``)."""

    def __init__(self, totals: dict[str, Any]) -> None:
        self._totals = totals
        if "faults" in totals:
            self.faults = self
        if "replicas" in totals:
            self.replica_stats = lambda: totals["replicas"]

    def snapshot(self) -> Any:
        return self._totals["faults"]


def _client(handle: Any, lease: str) -> Caps | None:
    if handle is None:
        return None
    return TableClient(lambda method, *a: _call(handle, method, *a), lease)


def _call(handle: Any, method: str, *args: Any) -> Any:
    """Call ``method`` of the cap table behind ``handle`` (a Ray actor handle or a manager proxy)."""
    fn = getattr(handle, method)
    if hasattr(fn, "remote"):
        import ray

        return ray.get(fn.remote(*args))
    return fn(*args)


_RUNNERS: dict[tuple[Any, ...], Runner] = {}


def _worker_runner(config: Any, out: str, cache: bool, cache_dir: str | None) -> Runner:
    """One Runner per worker process and run, so its models load once, not once per episode."""
    from persona_lab.eval.runner import Runner, set_read_timeout
    from persona_lab.models import create_backend, is_scripted

    class WorkerRunner(Runner):
        def _model(self, spec: str | None, role: str) -> Any:
            if not is_scripted(spec) and spec is not None:
                with self._lock:
                    if spec not in self._backends:
                        backend = create_backend(spec)
                        set_read_timeout(backend, self.timeout_s)
                        size = backend_cap(backend)
                        self._backends[spec] = backend if size is None else CappedBackend(
                            backend, spec, size, lambda: _CAPS)
            return super()._model(spec, role)

    key = (repr(config.to_dict()), out, cache, cache_dir)
    if key not in _RUNNERS:
        _RUNNERS[key] = WorkerRunner(config, out, cache=cache, cache_dir=cache_dir)
    return _RUNNERS[key]


# ------------------------------------------------------------------------------------------------
# the driver side


def run_elsewhere(runner: Runner, todo: list[int], recorded: Mapping[int, Mapping[int, str]]) -> list[int]:
    """Run ``todo`` with ``runner.executor``; write records in episode order. Returns the failed
    episodes. Sets ``runner.executor_stats`` (the executor, re-queued episodes, cap peaks)."""
    check_executor(runner.executor)
    writer = _OrderedWriter(runner, todo)
    pool: _ProcessPool | _RayPool | None = None
    caps = None
    try:
        pool = _ProcessPool(runner.concurrency) if runner.executor == "processes" else _RayPool(runner.concurrency)
        caps = pool.cap_table() if _uses_models(runner) else None
        args = {e: (runner.config.to_dict(), str(runner.out), runner._cache is not None,
                    None if runner.cache_dir is None else str(runner.cache_dir), e,
                    dict(recorded.get(e, {})), caps) for e in todo}
        _drive(runner, pool, args, writer, on_lost=None if caps is None else (
            lambda lease: _call(caps, "release_owner", lease)))
    except PersonaLabError:  # no Ray, or bad input found in a worker: as with threads, nothing recorded
        if not any(True for _ in iter_records(runner.transitions_path)):  # -> no config.json to block the fix
            (runner.out / "config.json").unlink(missing_ok=True)
        raise
    finally:
        for spec, totals in writer.backends.items():
            runner._backends[spec] = _Reported(totals)  # the driver's own copy (if any) sent nothing
        runner.executor_stats = {"executor": runner.executor, "episodes_requeued": writer.requeued}
        if pool is not None and caps is not None:
            try:
                runner.executor_stats["caps"] = pool.cap_stats(caps)
                pool.close_table(caps)
            except Exception as exc:  # noqa: BLE001 - a report only: never hide how the run ended
                log.warning("could not read the run's cap table: %s", exc)
    return sorted(writer.failed)


def _uses_models(runner: Runner) -> bool:
    """Whether any backend of the run is a model (a scripted run needs no cap table)."""
    from persona_lab.models import is_scripted

    cfg = runner.config
    specs = [cfg.backend, cfg.user_backend, *(v for k, v in cfg.env_kwargs.items()
                                              if k in runner.env_cls.model_kwargs and isinstance(v, str))]
    return any(not is_scripted(s) for s in specs)


class _Lost:
    """An attempt that infrastructure lost (the episode itself may be fine)."""

    def __init__(self, why: str) -> None:
        self.why = why


def _drive(runner: Runner, pool: Any, args: dict[int, tuple[Any, ...]], writer: _OrderedWriter,
           on_lost: Callable[[str], Any] | None = None) -> None:
    """Keep up to ``pool.width`` episodes in flight; re-queue lost ones (``on_lost(lease)`` frees what a
    lost attempt held); stop submitting on a stop request or on bad input, finish what is in flight,
    then raise that bad input."""
    pending = deque(sorted(args))
    tries = dict.fromkeys(args, 0)
    in_flight: dict[Any, int] = {}
    refused: BaseException | None = None
    stop = runner._stop
    while in_flight or (pending and not stop.is_set()):
        while pending and len(in_flight) < pool.width and not stop.is_set():
            e = pending.popleft()
            in_flight[pool.submit((*args[e], f"{e}/{tries[e]}"))] = e  # the lease: this attempt
        if not in_flight:
            break
        for handle, outcome in pool.wait(list(in_flight)):
            e = in_flight.pop(handle)
            if isinstance(outcome, _Lost):
                if on_lost is not None:
                    on_lost(f"{e}/{tries[e]}")
                tries[e] += 1
                if tries[e] > REQUEUE:
                    writer.accept({"episode": e, "retryable": True,
                                   "error": f"lost {tries[e]} times ({outcome.why}); not re-queued again"})
                else:
                    writer.requeued += 1
                    log.warning("episode %d lost (%s); re-queued (%d of %d)", e, outcome.why, tries[e], REQUEUE)
                    pending = deque(sorted([*pending, e]))
            elif isinstance(outcome, BaseException):
                refused = refused or outcome
                runner.stop()
            else:
                writer.accept(outcome)
    writer.flush()
    if refused is not None:
        raise refused


class _ProcessPool:
    """Worker processes of the standard library, shared by the runs of this process (a bench) that ask
    for the same number of workers; a pool that broke (a worker died) is replaced."""

    _pools: dict[int, Any] = {}
    _manager: Any = None
    _lock = threading.Lock()

    def __init__(self, width: int) -> None:
        self.width = width

    def _pool(self) -> Any:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with self._lock:
            pool = self._pools.get(self.width)
            if pool is None:
                ctx = multiprocessing.get_context("spawn")  # the driver has threads; forking them is unsafe
                pool = self._pools[self.width] = ProcessPoolExecutor(
                    max_workers=self.width, mp_context=ctx, initializer=_ignore_sigint)
            return pool

    def submit(self, args: tuple[Any, ...]) -> Any:
        return self._pool().submit(run_episode_task, *args)

    def wait(self, handles: list[Any]) -> list[tuple[Any, Any]]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        out: list[tuple[Any, Any]] = []
        for fut in done:
            try:
                out.append((fut, fut.result()))
            except BrokenProcessPool as exc:
                self._drop_broken()
                out.append((fut, _Lost(f"worker process died: {exc}")))
            except Exception as exc:  # noqa: BLE001 - raised by the episode itself: the driver re-raises it
                out.append((fut, exc))
        return out

    def _drop_broken(self) -> None:
        with self._lock:
            pool = self._pools.get(self.width)
            if pool is not None and getattr(pool, "_broken", False):
                del self._pools[self.width]
                pool.shutdown(wait=False, cancel_futures=True)

    def cap_table(self) -> Any:
        """A fresh table in the manager process (started once per driver process)."""
        import multiprocessing

        with self._lock:
            if _ProcessPool._manager is None:
                manager = _CapManager(ctx=multiprocessing.get_context("spawn"))
                manager.start(_ignore_sigint)
                _ProcessPool._manager = manager
            return _ProcessPool._manager.CapTable()

    @staticmethod
    def cap_stats(table: Any) -> dict[str, Any]:
        return table.stats()

    @staticmethod
    def close_table(table: Any) -> None:
        """Nothing to do: the manager frees the table with its last proxy."""


class _CapManager(BaseManager):
    """The process that holds the cap table of ``--executor processes`` runs."""


_CapManager.register("CapTable", CapTable)


def _ignore_sigint() -> None:
    """Ctrl-C reaches the whole process group; the driver handles it (no new episode), workers finish."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


_INIT_LOCK = threading.Lock()


class _RayPool:
    """Episodes as Ray tasks on the cluster ``ray.init`` joins: ``RAY_ADDRESS`` (``--ray-address``) or,
    unset, a local instance. Ray's own retries are off: the driver re-queues and counts lost tasks."""

    def __init__(self, width: int) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray needs Ray",
                              hint="pip install 'persona-lab[ray]' (or `pip install ray`)") from None
        self.ray, self.width = ray, width
        with _INIT_LOCK:  # a bench starts runs from several threads
            self._init()
        self._task = ray.remote(max_retries=0, retry_exceptions=False)(run_episode_task)

    def _init(self) -> None:
        ray = self.ray
        if not ray.is_initialized():
            address = os.environ.get("RAY_ADDRESS") or None
            try:
                local = {} if address else {"include_dashboard": False}  # a cluster keeps its own settings
                ray.init(address=address, ignore_reinit_error=True, logging_level=logging.WARNING, **local)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise ConfigError(f"cannot join the Ray cluster at {address!r}: {exc}",
                                  hint="start one with `ray start --head`, or give --ray-address "
                                       "ray://<head>:10001 (or auto)") from None

    def submit(self, args: tuple[Any, ...]) -> Any:
        return self._task.remote(*args)

    def wait(self, handles: list[Any]) -> list[tuple[Any, Any]]:
        ray = self.ray
        ready, _ = ray.wait(handles, num_returns=1)
        out: list[tuple[Any, Any]] = []
        for ref in ready:
            try:
                out.append((ref, ray.get(ref)))
            except ray.exceptions.RayTaskError as exc:  # raised by the episode itself
                cause = getattr(exc, "cause", None)
                out.append((ref, cause if isinstance(cause, BaseException) else exc))
            except ray.exceptions.RayError as exc:  # a worker, node or object lost: infrastructure
                out.append((ref, _Lost(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")))
        return out

    def cap_table(self) -> Any:
        # A threaded actor: blocked acquires wait in its threads (at most caps.WAIT_S each).
        return self.ray.remote(num_cpus=0, max_concurrency=256)(CapTable).remote()

    def cap_stats(self, table: Any) -> dict[str, Any]:
        return self.ray.get(table.stats.remote())

    def close_table(self, table: Any) -> None:
        """End the run's actor (a bench's runs would otherwise leave one actor process each)."""
        self.ray.kill(table)


class _OrderedWriter:
    """Appends finished episodes to the run in episode order and merges their usage."""

    def __init__(self, runner: Runner, todo: list[int]) -> None:
        self.runner = runner
        self.order = sorted(todo)
        self.next = 0
        self.ready: dict[int, dict[str, Any]] = {}
        self.failed: list[int] = []
        self.requeued = 0
        self.backends: dict[str, Any] = {}  # faults and replica usage the workers reported, summed

    def accept(self, result: dict[str, Any]) -> None:
        self.ready[result["episode"]] = result
        while self.next < len(self.order) and self.order[self.next] in self.ready:
            self._write(self.ready.pop(self.order[self.next]))
            self.next += 1

    def flush(self) -> None:
        """Write what finished after an episode that never ran (the run was stopped), in order."""
        for e in sorted(self.ready):
            self._write(self.ready.pop(e))

    def _write(self, result: dict[str, Any]) -> None:
        runner, e = self.runner, result["episode"]
        for spec, part in result.get("backends", {}).items():
            self.backends[spec] = _add(self.backends.get(spec), part)
        if "error" in result:
            self.failed.append(e)
            log.error("episode %d failed: %s", e, result["error"])
            append_jsonl(runner.out / "errors.jsonl", {"episode": e, "error": result["error"], "time": time.time()})
            if not result.get("retryable", True) and runner._permanent is None:
                runner.stop()  # a permanent fault fails every episode alike: stop, as with threads
                runner._permanent = BackendError(result.get("message") or result["error"], hint=result.get("hint"))
            return
        for rec in result["records"]:
            runner.write_record(rec)
            runner._count("executed")
            runner.on_round()
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
