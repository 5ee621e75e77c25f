"""The runner: drives episodes of any registered persona-lab env with any agent for its task, records
every transition, resumes after a kill, and writes a summary with metrics, usage and throughput.

The runner relies on the :class:`~persona_lab.envs.base.PersonaEnv` contract only: it passes ``user``,
``backend``, ``rounds`` (when the run asks for a length; else the env's ``default_rounds``) and the
run's ``env_kwargs`` (checked against the env's signature), reads ``task`` to pick the agent,
``feedback_keys`` to filter what the agent learns from, and ``episode_metrics`` to summarize.

Run directory layout::

    config.json        resolved RunConfig, package versions, git revision
    transitions.jsonl  one TransitionRecord per round (appended atomically)
    errors.jsonl       written only when an episode fails (backend faults after retries), to rerun with --resume
    summary.json       metrics (mean and 95% CI over episodes), usage, throughput
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym

from persona_lab.agents.base import AGENTS, Agent, Transition, TruthAware, create_agent
from persona_lab.core.errors import BackendError, ConfigError
from persona_lab.core.io import append_jsonl, atomic_write_json, repair_jsonl
from persona_lab.core.provenance import environment_info
from persona_lab.core.records import TRANSITIONS_FILE, TransitionRecord, episodes, iter_records
from persona_lab.core.seeding import derive_seed, stable_hash
from persona_lab.envs.base import PRIVILEGED, PersonaEnv
from persona_lab.eval.metrics import mean_ci
from persona_lab.models import (
    SCRIPTED,
    CachedChatModel,
    ResponseCache,
    UsageMeter,
    create_backend,
    is_scripted,
)

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

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["env_kwargs"], d["agent_kwargs"] = dict(self.env_kwargs), dict(self.agent_kwargs)
        return d

    @property
    def user_kind(self) -> str:
        if self.user:
            return self.user
        return "scripted" if is_scripted(self.backend) and is_scripted(self.user_backend) else "llm"


@dataclass
class RunResult:
    out: Path
    summary: dict[str, Any]
    failed_episodes: list[int]


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


class Runner:
    """Runs a :class:`RunConfig` into a run directory.

    Args:
        config: the run.
        out: the run directory.
        concurrency: episodes run in parallel threads (the hf backend batches their requests).
        cache: use the response cache.
        cache_dir: cache folder (default: ``$PERSONA_LAB_CACHE_DIR`` or ``~/.cache/persona-lab``).
        on_round: called after every round (progress bars).
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
    ) -> None:
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
        self.transitions_path = self.out / TRANSITIONS_FILE
        self.rounds = config.rounds or self.env_cls.default_rounds

    # --- models: the one place a run turns a backend spec into a model --------------------------------
    def _model(self, spec: str | None, role: str) -> CachedChatModel | None:
        if is_scripted(spec):
            return None
        assert spec is not None
        with self._lock:
            if spec not in self._backends:
                self._backends[spec] = create_backend(spec)  # one backend (one loaded model) per spec
            meter = self.meters.setdefault(role, UsageMeter())
        return CachedChatModel(self._backends[spec], self._cache, meter)

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

    # --- run ---------------------------------------------------------------------------------
    def run(self, *, resume: bool = False) -> RunResult:
        cfg = self.config
        self._prepare_dir(resume)
        done = self._recorded()
        todo = [e for e in range(cfg.episodes) if not done.get(e, {}).get("ended")]
        start = time.perf_counter()
        executed = [0]
        failed: list[int] = []

        def one(e: int) -> None:
            n = self._run_episode(e, done.get(e, {}).get("rounds", {}))
            with self._lock:
                executed[0] += n

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(one, e): e for e in todo}
            for fut in as_completed(futures):
                e = futures[fut]
                try:
                    fut.result()
                except BackendError as exc:
                    failed.append(e)
                    log.error("episode %d failed: %s", e, exc)
                    append_jsonl(self.out / "errors.jsonl", {"episode": e, "error": str(exc), "time": time.time()})
        wall = time.perf_counter() - start
        summary = self.summarize(wall_s=wall, rounds_executed=executed[0], failed=sorted(failed))
        atomic_write_json(self.out / "summary.json", summary)
        return RunResult(self.out, summary, sorted(failed))

    def _prepare_dir(self, resume: bool) -> None:
        cfg_path = self.out / "config.json"
        if cfg_path.exists():
            stored = json.loads(cfg_path.read_text(encoding="utf-8"))
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
        self.make_env().close()  # a config the env refuses fails here, before config.json could block the fix
        atomic_write_json(cfg_path, {"config": self.config.to_dict(), "rounds": self.rounds, **environment_info()})

    def _recorded(self) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for rec in iter_records(self.transitions_path):
            e = out.setdefault(rec.episode, {"rounds": {}, "ended": False})
            e["rounds"][rec.round] = rec.action_hash
            e["ended"] = e["ended"] or rec.ended
        return out

    def _run_episode(self, episode: int, recorded: Mapping[int, str]) -> int:
        """Run (or replay up to the recorded rounds and continue) one episode; returns rounds executed."""
        cfg = self.config
        env = self.make_env()
        agent = create_agent(cfg.agent, env.task, self._model(cfg.backend, "agent"), **cfg.agent_kwargs)
        feedback_keys = env.feedback_keys
        seed = derive_seed(cfg.seed, episode)
        obs, info = env.reset(seed=seed, options={"user_index": episode})
        executed = 0
        try:
            for t in range(env.rounds):
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
                else:
                    rec = self._record(episode, t, seed, obs, action, action_hash, reward, terminated, truncated,
                                       feedback, info, agent)
                    append_jsonl(self.transitions_path, rec.to_dict())
                    executed += 1
                self.on_round()
                obs = next_obs
                if terminated or truncated:
                    break
        finally:
            env.close()
        return executed

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
    def summarize(self, *, wall_s: float, rounds_executed: int, failed: list[int]) -> dict[str, Any]:
        cfg = self.config
        by_episode = episodes(iter_records(self.transitions_path))
        per_episode = {e: self.env_cls.episode_metrics(recs) for e, recs in by_episode.items()}
        names = sorted({k for m in per_episode.values() for k in m})
        metrics_ci = {n: mean_ci([m[n] for m in per_episode.values() if n in m]) for n in names}
        backend_note = SCRIPTED_NOTE if cfg.user_kind == "scripted" and is_scripted(cfg.backend) else (
            f"agent backend {cfg.backend}; user {cfg.user_kind}"
            + (f" on {cfg.user_backend or cfg.backend}" if cfg.user_kind == "llm" else " (scripted)")
        )
        return {
            "env_id": cfg.env_id,
            "agent": cfg.agent,
            "backend": cfg.backend,
            "backend_note": backend_note,
            "user": cfg.user_kind,
            "episodes": len(per_episode),
            "rounds": self.rounds,
            "metrics": {n: ci["mean"] for n, ci in metrics_ci.items()},
            "metrics_ci": metrics_ci,
            "per_episode": {str(e): m for e, m in per_episode.items()},
            "usage": {role: meter.snapshot() for role, meter in self.meters.items()},
            "throughput": {
                "wall_s": round(wall_s, 4),
                "rounds_executed": rounds_executed,
                "rounds_per_s": round(rounds_executed / wall_s, 2) if wall_s > 0 else None,
            },
            "failed_episodes": failed,
        }
