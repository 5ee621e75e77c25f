"""The runner: drives episodes of any registered persona-lab env with any agent for its task, records
every transition, resumes after a kill, and writes a summary with metrics, usage and throughput.

The runner relies on the :class:`~persona_lab.envs.base.PersonaEnv` contract only: it passes ``user``,
``backend``, ``rounds`` (when the run asks for a length; else the env's ``default_rounds``) and the
run's ``env_kwargs`` (checked against the env's signature), reads ``task`` to pick the agent,
``feedback_keys`` to filter what the agent learns from, and ``episode_metrics`` to summarize.

Run directory layout::

    config.json        resolved RunConfig, package versions, git revision (written once the env and
                       agent accept the config; removed if bad input stops the run before any round)
    transitions.jsonl  one TransitionRecord per round (appended atomically)
    errors.jsonl       written only when an episode fails (backend faults after retries), to rerun with --resume
    summary.json       metrics over complete episodes (mean, bounded 95% interval, n), the incomplete
                       ones, usage, faults per backend, throughput (rounds executed and replayed)
    .lock              held while a process writes the folder: a second writer fails at once

Resume replays every episode that lacks a round (0..T-1, or up to the round that ended it) and
appends only the missing rounds. :meth:`Runner.stop` (SIGINT/SIGTERM in the CLI) lets the rounds in
flight finish, starts no new one and still writes the summary.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import inspect
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
from filelock import FileLock, Timeout

from persona_lab.agents.base import AGENTS, Agent, Transition, TruthAware, create_agent
from persona_lab.core.errors import BackendError, ConfigError, PersonaLabError
from persona_lab.core.io import append_jsonl, atomic_write_json, fsync_path, open_append, repair_jsonl
from persona_lab.core.provenance import environment_info
from persona_lab.core.records import TRANSITIONS_FILE, TransitionRecord, episodes, is_complete, iter_records
from persona_lab.core.seeding import derive_seed, stable_hash
from persona_lab.envs.base import PRIVILEGED, PersonaEnv
from persona_lab.eval.fidelity import fidelity_counters
from persona_lab.eval.metrics import metric_ci
from persona_lab.models import (
    SCRIPTED,
    CachedChatModel,
    ChatModel,
    ResponseCache,
    UsageMeter,
    create_backend,
    is_scripted,
)
from persona_lab.models.decoding import with_gen

log = logging.getLogger(__name__)

SCRIPTED_NOTE = (
    "scripted: deterministic simulated users and scripted agent skills (no language model). Switch to LLM users/agents with --backend hf:<model> or "
    "--backend openai:<model>@<base_url>."
)


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run (saved to config.json; a resumed run must match it)."""

    env_id: str = field(metadata={"help": "registered env id, e.g. persona_lab/EditEmail-v0"})
    agent: str = field(default="no-learning", metadata={"help": "registered agent name (`persona-lab ls agents`)"})
    backend: str = field(default=SCRIPTED, metadata={"help": "model backend of the agent and LLM users"})
    user: str | None = field(default=None, metadata={"help": "simulated user kind: scripted or llm (default: llm when a model backend is given)"})
    user_backend: str | None = field(default=None, metadata={"help": "a different backend for the LLM user"})
    seed: int = field(default=0, metadata={"help": "run seed; episode e is reset with derive_seed(seed, e)"})
    rounds: int | None = field(default=None, metadata={"help": "agent turns per episode (default: the env's default_rounds)"})
    episodes: int = field(default=1, metadata={"help": "episodes (users) to run; episode e uses user index e"})
    env_kwargs: Mapping[str, Any] = field(default_factory=dict, metadata={"help": "world-specific gymnasium.make kwargs, checked against the env's signature"})
    agent_kwargs: Mapping[str, Any] = field(default_factory=dict, metadata={"help": "extra agent constructor kwargs"})
    agent_gen: Mapping[str, Any] = field(default_factory=dict, metadata={"help": "agent decoding overrides (temperature, top_p, seed, repetition_penalty, max_new_tokens); see persona_lab.models.decoding"})
    user_gen: Mapping[str, Any] = field(default_factory=dict, metadata={"help": "LLM user decoding overrides (same keys as agent_gen, plus guided)"})

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["env_kwargs"], d["agent_kwargs"] = dict(self.env_kwargs), dict(self.agent_kwargs)
        for key in ("agent_gen", "user_gen"):  # only when set, so runs recorded before them still resume
            if d[key]:
                d[key] = dict(d[key])
            else:
                del d[key]
        return d

    @property
    def user_kind(self) -> str:
        if self.user:
            return self.user
        return "scripted" if is_scripted(self.backend) and is_scripted(self.user_backend) else "llm"


LOCK_FILE = ".lock"
FLUSH_S = 0.05  # longest a new record waits in its episode's buffer before it is written
MEMO_RECORDS = 20_000  # records a run keeps in memory for its summary; beyond, it reads the file back


class _Stopped(Exception):
    """An episode saw the stop request before its next round (nothing half-recorded)."""


@dataclass
class RunResult:
    out: Path
    summary: dict[str, Any]
    failed_episodes: list[int]
    interrupted: bool = False


def set_read_timeout(model: Any, seconds: float | None) -> None:
    """Set the read timeout of a network backend (or of the backend a cached model wraps); local
    backends have none and are left alone."""
    if seconds is None:
        return
    target = getattr(model, "backend", model)
    if hasattr(target, "read_timeout_s"):
        target.read_timeout_s = float(seconds)
    else:
        log.info("%s has no read timeout; --timeout ignored for it", getattr(target, "spec", target))


def env_class(env_id: str) -> type[PersonaEnv]:
    """The registered class of ``env_id`` (imported from its entry point; no env is built)."""
    if env_id not in gym.registry:
        import difflib

        close = difflib.get_close_matches(env_id, [k for k in gym.registry if k.startswith("persona_lab/")], n=1)
        raise ConfigError(f"unknown env {env_id!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
                          hint="`persona-lab ls envs` lists them")
    entry = gym.spec(env_id).entry_point
    if callable(entry):
        cls = entry
    else:
        module, _, attr = str(entry).partition(":")
        cls = getattr(importlib.import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, PersonaEnv)):
        raise ConfigError(f"{env_id} is not a persona-lab env (its class does not subclass PersonaEnv)",
                          hint="the runner drives persona_lab/* envs; subclass persona_lab.envs.base.PersonaEnv")
    return cls


STANDARD_KWARGS = ("user", "backend", "rounds", "render_mode")


def env_arguments(cls: type[PersonaEnv]) -> dict[str, inspect.Parameter]:
    """The world-specific constructor arguments of an env class (the standard ones excluded)."""
    params = inspect.signature(cls.__init__).parameters
    return {n: p for n, p in params.items() if n != "self" and n not in STANDARD_KWARGS
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def check_env_kwargs(env_id: str, cls: type[PersonaEnv], kwargs: Mapping[str, Any]) -> None:
    """Refuse a kwarg the env does not take, naming the env and what it does take."""
    accepted = env_arguments(cls)
    for key in kwargs:
        if key in STANDARD_KWARGS:
            raise ConfigError(f"{key!r} is a standard env argument, not an --env-arg",
                              hint=f"use --{key.replace('_', '-')} instead")
        if key not in accepted:
            import difflib

            close = difflib.get_close_matches(key, list(accepted), n=1)
            raise ConfigError(
                f"{env_id} takes no argument {key!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
                hint=f"its arguments: {', '.join(accepted) or '(none)'}; pass them as --env-arg KEY=VALUE",
            )


def agent_arguments(factory: Callable[..., Any]) -> list[str] | None:
    """The keyword arguments an agent factory takes (following ``**kwargs`` up a class's MRO), or
    ``None`` when they cannot be known (a function taking ``**kwargs``)."""
    names: list[str] = []
    chain = [c for c in factory.__mro__ if "__init__" in vars(c)] if isinstance(factory, type) else [factory]
    for fn in chain:
        params = inspect.signature(fn.__init__ if isinstance(fn, type) else fn).parameters
        names += [n for n, p in params.items() if n not in ("self", "task", "model", *names)
                  and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return names
    return None


class Runner:
    """Runs a :class:`RunConfig` into a run directory.

    Args:
        config: the run.
        out: the run directory.
        concurrency: episodes run in parallel threads (the hf backend batches their requests).
        cache: use the response cache.
        cache_dir: cache folder (default: ``$PERSONA_LAB_CACHE_DIR`` or ``~/.cache/persona-lab``).
        on_round: called after every round (progress bars).
        timeout_s: read timeout of network backends (seconds a reply may take); ``None`` keeps theirs.
        stop_event: a shared stop request (a bench stops all its runs with one); :meth:`stop` sets it.
    """

    def __init__(
        self,
        config: RunConfig,
        out: str | Path,
        *,
        concurrency: int = 1,
        cache: bool = True,
        cache_dir: str | Path | None = None,
        on_round: Callable[[], None] | None = None,
        timeout_s: float | None = None,
        stop_event: threading.Event | None = None,
        executor: str = "threads",
    ) -> None:
        self.executor, self.cache_dir = executor, cache_dir  # executor: see persona_lab.eval.executors
        if timeout_s is not None and timeout_s <= 0:
            raise ConfigError(f"timeout must be > 0 seconds, got {timeout_s}")
        self.timeout_s = timeout_s
        self.env_cls = env_class(config.env_id)
        AGENTS.check(config.agent, self.env_cls.task)  # fail early: unknown name, or not for this task
        check_env_kwargs(config.env_id, self.env_cls, config.env_kwargs)
        if (config.rounds is not None and config.rounds < 1) or config.episodes < 1 or concurrency < 1:
            raise ConfigError("rounds, episodes and concurrency must be >= 1")
        self.config, self.out = config, Path(out)
        self.concurrency = concurrency
        self.on_round = on_round or (lambda: None)
        self.meters = {"agent": UsageMeter(), "user": UsageMeter()}
        self._cache = ResponseCache(cache_dir) if cache else None
        self._backends: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stop = stop_event if stop_event is not None else threading.Event()
        self._counts = {"executed": 0, "replayed": 0}
        self._complete: set[int] = set()
        self._permanent: BackendError | None = None
        self.transitions_path = self.out / TRANSITIONS_FILE
        self._tx_fd: int | None = None  # transitions.jsonl, open for appending while run() runs
        self._write_lock = threading.Lock()
        self._syncing: threading.Thread | None = None  # flushes config.json to the disk
        self._spare: tuple[PersonaEnv, Agent] | None = None  # the env and agent _prepare_dir checked
        self._memo: list[TransitionRecord] | None = None  # the folder's records, while a run keeps them
        self.rounds = config.rounds or self.env_cls.default_rounds

    # --- models: the one place a run turns a backend spec into a model --------------------------------
    def _model(self, spec: str | None, role: str) -> ChatModel | None:
        if is_scripted(spec):
            return None
        assert spec is not None
        with self._lock:
            if spec not in self._backends:
                self._backends[spec] = create_backend(spec)  # one backend (one loaded model) per spec
                set_read_timeout(self._backends[spec], self.timeout_s)
            meter = self.meters.setdefault(role, UsageMeter())
        model = CachedChatModel(self._backends[spec], self._cache, meter)
        return with_gen(model, {"agent": self.config.agent_gen, "user": self.config.user_gen}.get(role))

    def _env_kwargs(self) -> dict[str, Any]:
        """The run's env kwargs, with spec strings of model-taking kwargs (FLR scorer, PrefEval judge)
        opened here, so their usage reaches the summary under their own name."""
        kw = dict(self.config.env_kwargs)
        for key in self.env_cls.model_kwargs:
            value = kw.get(key)
            if isinstance(value, str) and ":" in value:
                kw[key] = self._model(value, key)
        return kw

    def make_env(self) -> PersonaEnv:
        """One env as this run configures it (the same for every episode)."""
        cfg = self.config
        user_model = self._model(cfg.user_backend or cfg.backend, "user")
        kwargs: dict[str, Any] = {"user": cfg.user_kind, "backend": user_model, **self._env_kwargs()}
        if cfg.rounds is not None:
            kwargs["rounds"] = cfg.rounds
        return gym.make(cfg.env_id, **kwargs).unwrapped  # the runner checks its own actions; no wrappers

    def make_agent(self, env: PersonaEnv) -> Agent:
        """The run's agent; unknown or bad ``--agent-arg`` values are a :class:`ConfigError`."""
        cfg = self.config
        accepted = agent_arguments(AGENTS.get(cfg.agent, env.task))
        if accepted is not None:
            for key in cfg.agent_kwargs:
                if key not in accepted:
                    import difflib

                    close = difflib.get_close_matches(key, accepted, n=1)
                    raise ConfigError(f"agent {cfg.agent!r} takes no argument {key!r}"
                                      + (f"; did you mean {close[0]!r}?" if close else ""),
                                      hint=f"its arguments: {', '.join(accepted) or '(none)'}; pass them as --agent-arg KEY=VALUE")
        try:
            return create_agent(cfg.agent, env.task, self._model(cfg.backend, "agent"), **cfg.agent_kwargs)
        except (TypeError, ValueError) as exc:
            if not cfg.agent_kwargs:
                raise
            raise ConfigError(f"agent {cfg.agent!r} refused its arguments {dict(cfg.agent_kwargs)}: {exc}",
                              hint="check the values given with --agent-arg (`persona-lab ls agents`)") from None

    # --- run ---------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask a running :meth:`run` to stop: no new round starts; rounds in flight finish and are
        recorded; the summary is written. Safe to call from a signal handler or another thread."""
        self._stop.set()

    def run(self, *, resume: bool = False) -> RunResult:
        cfg = self.config
        with self._locked(), self._prepared(resume):
            recorded = self._recorded()
            todo = [e for e in range(cfg.episodes) if e not in self._complete]
            start = time.perf_counter()
            failed: list[int] = []
            refused: PersonaLabError | None = None
            if self.executor != "threads":  # other processes or hosts run the episodes; this one writes
                self._memo = None  # their records reach the file, not this process's memory
                from persona_lab.eval.executors import run_elsewhere

                failed = run_elsewhere(self, todo, recorded)
                todo = []

            def settle(e: int, outcome: Callable[[], Any]) -> None:
                nonlocal refused
                try:
                    outcome()
                except _Stopped:
                    pass
                except BackendError as exc:
                    failed.append(e)
                    log.error("episode %d failed: %s", e, exc)
                    append_jsonl(self.out / "errors.jsonl", {"episode": e, "error": str(exc), "time": time.time()})
                    if not getattr(exc, "retryable", True):
                        self.stop()  # a permanent fault fails every episode alike: stop, do not burn calls
                        self._permanent = exc
                except PersonaLabError as exc:  # bad input found only when an episode ran (a lazy encoder)
                    self.stop()
                    refused = refused or exc

            if self.concurrency == 1 or len(todo) == 1:  # one lane: this thread runs it (no hand-off)
                for e in todo:
                    settle(e, functools.partial(self._run_episode, e, recorded.get(e, {})))
            else:
                with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
                    futures = {pool.submit(self._run_episode, e, recorded.get(e, {})): e for e in todo}
                    for fut in as_completed(futures):
                        settle(futures[fut], fut.result)
            if refused is not None:
                if not any(True for _ in iter_records(self.transitions_path)):
                    (self.out / "config.json").unlink(missing_ok=True)  # nothing recorded: do not block the fix
                raise refused
            wall = time.perf_counter() - start
            summary = self.summarize(wall_s=wall, rounds_executed=self._counts["executed"], failed=sorted(failed),
                                     rounds_replayed=self._counts["replayed"])
            summary["interrupted"] = self._stop.is_set() and self._permanent is None
            summary["throughput"].update(getattr(self, "executor_stats", {}))  # set by executors.run_elsewhere
            # derived from the records and rewritten by a --resume: no fsync (a few ms a run)
            atomic_write_json(self.out / "summary.json", summary, fsync=False)
        if self._permanent is not None:
            exc = self._permanent
            raise BackendError(f"{exc.message} (not retryable: every episode would fail the same way, so the run "
                               f"stopped; {summary['episodes']} complete episode(s) kept in {self.out})",
                               hint=exc.hint or "fix the backend or the flags, then continue with --resume")
        return RunResult(self.out, summary, sorted(failed), interrupted=summary["interrupted"])

    @contextlib.contextmanager
    def _prepared(self, resume: bool) -> Iterator[None]:
        """Prepare the folder (see :meth:`_prepare_dir`), then hold ``transitions.jsonl`` open for
        appending while the episodes run."""
        self._prepare_dir(resume)
        with open_append(self.transitions_path) as fd:
            self._tx_fd = fd
            try:
                yield
            finally:
                self._tx_fd = None
                if self._syncing is not None:
                    self._syncing.join()
                    self._syncing = None
                spare, self._spare = self._spare, None
                if spare is not None:  # no episode ran here (all complete, or other executors)
                    spare[0].close()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold an exclusive lock on the run directory: a second writer fails at once."""
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise ConfigError(f"--out {self.out} is not a folder ({exc.strerror})",
                              hint="choose a folder path for the run directory") from None
        except OSError as exc:
            raise ConfigError(f"cannot create the run directory {self.out}: {exc.strerror}",
                              hint="choose a writable --out") from None
        lock = FileLock(self.out / LOCK_FILE)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise ConfigError(f"run directory {self.out} is in use by another persona-lab process",
                              hint="wait for it to finish (or stop it), or choose another --out") from None
        except OSError as exc:
            raise ConfigError(f"cannot lock the run directory {self.out}: {exc.strerror}",
                              hint="choose a writable --out") from None
        try:
            yield
        finally:
            lock.release()

    def _prepare_dir(self, resume: bool) -> None:
        cfg_path = self.out / "config.json"
        if cfg_path.exists():
            try:
                stored = json.loads(cfg_path.read_text(encoding="utf-8"))
                if not isinstance(stored, dict):
                    raise ValueError("not a JSON object")
            except (ValueError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{cfg_path} is corrupt ({exc})",
                                  hint="choose a new --out, or delete the folder to start the run again") from None
            if not resume:
                raise ConfigError(
                    f"run directory {self.out} already holds a run",
                    hint="pass --resume to continue it, or choose a new --out",
                )
            if stored.get("config") != json.loads(json.dumps(self.config.to_dict())):
                raise ConfigError(
                    f"run directory {self.out} holds a run with a different config",
                    hint="resume with the same flags, or choose a new --out",
                )
            repair_jsonl(self.transitions_path)
            return
        env = self.make_env()  # a config the env or agent refuses fails here, before config.json could block the fix
        try:
            agent = self.make_agent(env)
        except BaseException:
            env.close()
            raise
        try:
            # renamed into place now; flushed to the disk by a thread while the episodes run (the
            # wait was a fifth of a 200-round scripted run), joined before run() returns
            atomic_write_json(cfg_path, {"config": self.config.to_dict(), "rounds": self.rounds, **environment_info()},
                              fsync=False)
        except BaseException:
            env.close()
            raise
        self._syncing = threading.Thread(target=fsync_path, args=(cfg_path,), name="persona-lab-fsync", daemon=True)
        self._syncing.start()
        self._spare = (env, agent)  # fresh and unused: the first episode of this process takes them

    def _recorded(self) -> dict[int, dict[int, str]]:
        """Per episode with a complete record, nothing; per other recorded episode, the action hash of
        each recorded round (the rounds a resume replays instead of writing again)."""
        out: dict[int, dict[int, str]] = {}
        found = list(iter_records(self.transitions_path))
        self._memo = found if len(found) <= MEMO_RECORDS else None
        for e, recs in episodes(found).items():
            if is_complete(recs, self.rounds):
                self._complete.add(e)
            out[e] = {r.round: r.action_hash for r in recs}
        return out

    def _run_episode(self, episode: int, recorded: Mapping[int, str],
                     emit: Callable[[dict[str, Any]], None] | None = None) -> int:
        """Run one episode from round 0; rounds already recorded are replayed (same seed, same
        actions, cached model calls) and not written again, so a resume fills every gap. Returns the
        rounds executed. Each new record goes to ``emit`` (default: appended to the transitions file)."""
        if self._stop.is_set():
            raise _Stopped
        cfg = self.config
        with self._lock:
            spare, self._spare = self._spare, None
        env = spare[0] if spare else self.make_env()
        agent = spare[1] if spare else self.make_agent(env)
        feedback_keys = env.feedback_keys
        seed = derive_seed(cfg.seed, episode)
        obs, info = env.reset(seed=seed, options={"user_index": episode})
        executed = 0
        # New lines are written together at most every FLUSH_S (a round slower than that is written
        # at once): a write per round was a tenth of a scripted round. A kill loses at most FLUSH_S
        # of rounds, which a resume replays like any missing round.
        pending: list[bytes] = []
        flushed = time.monotonic()
        try:
            for t in range(env.rounds):
                if self._stop.is_set():
                    raise _Stopped
                if isinstance(agent, TruthAware):
                    agent.reveal(info.get(PRIVILEGED, {}).get("next", {}))
                action = agent.act(obs)
                next_obs, reward, terminated, truncated, info = env.step(action)
                feedback = {k: info[k] for k in feedback_keys if k in info}
                agent.update(Transition(obs, action, float(reward), feedback))
                action_hash = stable_hash(action, length=16)
                if t in recorded:
                    if recorded[t] != action_hash:
                        log.warning("episode %d round %d replayed a different action than recorded", episode, t)
                    self._count("replayed")
                else:
                    rec = self._record(episode, t, seed, obs, action, action_hash, reward, terminated, truncated,
                                       feedback, info, agent)
                    if emit is None:
                        pending.append(rec.json_line())
                        self._remember(rec)
                        if time.monotonic() - flushed >= FLUSH_S:
                            self._append(b"".join(pending))
                            pending.clear()
                            flushed = time.monotonic()
                    else:
                        emit(rec.to_dict())
                    executed += 1
                    self._count("executed")
                self.on_round()
                obs = next_obs
                if terminated or truncated:
                    break
        except BackendError as exc:
            if not exc.retryable:
                self.stop()  # from this worker, before it takes the next episode: a permanent fault fails all alike
            raise
        finally:
            if pending:
                self._append(b"".join(pending))
            env.close()
        return executed

    def _append(self, line: bytes) -> None:
        """Append one record line to ``transitions.jsonl`` with one ``O_APPEND`` write (a kill cannot
        tear it; see :func:`persona_lab.core.io.append_jsonl`), on the descriptor :meth:`run` keeps
        open rather than an open and close per round."""
        fd = self._tx_fd
        if fd is None:
            with open_append(self.transitions_path) as fd:
                os.write(fd, line)
            return
        with self._write_lock:
            os.write(fd, line)

    def write_record(self, row: Mapping[str, Any]) -> None:
        """Append a record that an episode elsewhere emitted (``rec.to_dict()``), in the same bytes a
        record of this process gets (so every executor writes the same file)."""
        self._append(TransitionRecord.from_dict(row, path=str(self.transitions_path)).json_line())

    def _remember(self, rec: TransitionRecord) -> None:
        memo = self._memo
        if memo is not None:
            memo.append(rec)  # atomic under the GIL
            if len(memo) > MEMO_RECORDS:
                self._memo = None  # a large run: the summary reads the file instead

    def _records(self) -> Iterable[TransitionRecord]:
        """Every record of the folder: the ones this run read at its start and wrote since, kept in
        memory (the summary need not parse the file it just wrote), else read from the file."""
        memo = self._memo
        return list(memo) if memo is not None else iter_records(self.transitions_path)

    def _count(self, what: str) -> None:
        with self._lock:
            self._counts[what] += 1

    def _record(self, episode: int, t: int, seed: int, obs: Any, action: str, action_hash: str, reward: float,
                terminated: bool, truncated: bool, feedback: dict[str, Any], info: dict[str, Any],
                agent: Agent) -> TransitionRecord:
        truth = info.get(PRIVILEGED, {}).get("round", {})
        base_prompt = getattr(agent, "base_prompt", None)
        return TransitionRecord(
            episode=episode, round=t, env_id=self.config.env_id, seed=seed, user_id=truth.get("user_id"),
            doc_id=info.get("doc_id"), prompt=base_prompt(obs) if base_prompt else None, observation=obs,
            action=action, action_hash=action_hash, reward=float(reward), terminated=bool(terminated),
            truncated=bool(truncated), feedback=feedback, info={k: v for k, v in info.items() if k != PRIVILEGED},
            privileged=truth, agent=dict(getattr(agent, "step_info", {}) or {}),
        )

    # --- summary -----------------------------------------------------------------------------
    def summarize(self, *, wall_s: float, rounds_executed: int, failed: list[int],
                  rounds_replayed: int = 0) -> dict[str, Any]:
        """Metrics over complete episodes only (a failed or interrupted episode's fragment would bias
        them), with how many episodes were incomplete, usage, faults and throughput."""
        cfg = self.config
        by_episode = episodes(self._records())
        complete = {e: recs for e, recs in by_episode.items() if e < cfg.episodes and is_complete(recs, self.rounds)}
        incomplete = sorted(e for e in range(cfg.episodes) if e not in complete)
        per_episode = {e: self.env_cls.episode_metrics(recs) for e, recs in complete.items()}
        names = sorted({k for m in per_episode.values() for k in m})
        metrics_ci = {n: metric_ci(n, [m[n] for m in per_episode.values() if n in m]) for n in names}
        env_models = {k: v for k, v in cfg.env_kwargs.items()
                      if k in self.env_cls.model_kwargs and isinstance(v, str) and not is_scripted(v)}
        backend_note = SCRIPTED_NOTE if cfg.user_kind == "scripted" and is_scripted(cfg.backend) else (
            f"agent backend {cfg.backend}; user {cfg.user_kind}"
            + (f" on {cfg.user_backend or cfg.backend}" if cfg.user_kind == "llm" else " (scripted)")
        )
        if env_models:  # e.g. the FLR scorer: the run does use a language model, whatever the agent's backend
            uses = ", ".join(f"{k} {v}" for k, v in env_models.items())
            backend_note = (f"agent backend {cfg.backend}; user {cfg.user_kind}; the env uses a language model: {uses}"
                            if backend_note == SCRIPTED_NOTE else f"{backend_note}; the env uses a language model: {uses}")
        return {
            "env_id": cfg.env_id,
            "agent": cfg.agent,
            "backend": cfg.backend,
            "backend_note": backend_note,
            "user": cfg.user_kind,
            "episodes": len(per_episode),
            "episodes_planned": cfg.episodes,
            "incomplete_episodes": incomplete,
            "rounds": self.rounds,
            "metrics": {n: ci["mean"] for n, ci in metrics_ci.items()},
            "metrics_ci": metrics_ci,
            "per_episode": {str(e): m for e, m in per_episode.items()},
            "usage": {role: meter.snapshot() for role, meter in self.meters.items()},
            "faults": self._faults(),
            "throughput": {
                "wall_s": round(wall_s, 4),
                "rounds_executed": rounds_executed,
                "rounds_replayed": rounds_replayed,
                "rounds_per_s": round(rounds_executed / wall_s, 2) if wall_s > 0 else None,
            },
            "failed_episodes": failed,
            **self._backend_stats(),
            "fidelity": fidelity_counters(r for recs in by_episode.values() for r in recs),
        }

    def _backend_stats(self) -> dict[str, Any]:
        """Per-replica usage of backends that report it (``openai`` replica sets), under ``backends``."""
        out = {spec: {"replicas": b.replica_stats()} for spec, b in self._backends.items()
               if callable(getattr(b, "replica_stats", None))}
        return {"backends": out} if out else {}

    def _faults(self) -> dict[str, Any]:
        """What the backends counted: retries, faults by kind, give-ups (where the backend keeps a
        :class:`~persona_lab.models.retry.FaultCounter`)."""
        out: dict[str, Any] = {}
        for spec, backend in self._backends.items():
            counter = getattr(backend, "faults", None)
            if counter is not None and hasattr(counter, "snapshot"):
                out[spec] = counter.snapshot()
        return out
