"""The runner: drives episodes of any persona-lab env with any agent, records every transition,
resumes after a kill, and writes a summary with metrics, usage and throughput.

Run directory layout::

    config.json        resolved RunConfig, package versions, git revision
    transitions.jsonl  one line per round (appended atomically; see TransitionRecord fields below)
    errors.jsonl       episodes that failed (backend faults after retries), to rerun with --resume
    summary.json       metrics (mean and 95% CI over episodes), usage, throughput

A transition line holds ``episode, round, env_id, seed, user_id, doc_id, prompt, observation, action,
reward, terminated, truncated, feedback`` (what the agent saw), ``info`` (env info without the
privileged key), ``privileged`` (ground truth for evaluators) and ``agent`` (the agent's step info,
e.g. the preference it used or inferred).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import platform
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym

from persona_lab.agents.base import AGENTS, Agent, Transition, TruthAware, create_agent
from persona_lab.core.errors import BackendError, ConfigError
from persona_lab.core.io import append_jsonl, atomic_write_json, read_jsonl, repair_jsonl
from persona_lab.core.seeding import derive_seed, stable_hash
from persona_lab.envs.edit_env import PRIVILEGED
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
    rounds: int = field(default=200, metadata={"help": "rounds (documents) per episode"})
    episodes: int = field(default=1, metadata={"help": "episodes (users) to run; episode e uses user index e"})
    population: str = field(default="prelude", metadata={"help": "population name or YAML/JSON file"})
    env_kwargs: Mapping[str, Any] = field(default_factory=dict, metadata={"help": "extra gymnasium.make kwargs"})
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


# Env-specific episode metrics: env id -> fn(records of one episode) -> {name: value}.
EPISODE_METRICS: dict[str, Callable[[list[dict[str, Any]]], dict[str, float]]] = {}
# Env-specific training prompt recorded with each transition: task -> fn(observation) -> messages.
RECORD_PROMPTS: dict[str, Callable[[dict[str, Any]], list[dict[str, str]]]] = {}


def _edit_metrics(records: list[dict[str, Any]]) -> dict[str, float]:
    costs = [r["info"]["cost"] for r in records]
    return {
        "cumulative_cost": float(sum(costs)),
        "mean_cost": sum(costs) / len(costs),
        "acceptance_rate": sum(bool(r["info"]["accepted"]) for r in records) / len(records),
        "preference_satisfaction": sum(r["info"]["preference_satisfaction"] for r in records) / len(records),
    }


def _edit_prompt(task: str) -> Callable[[dict[str, Any]], list[dict[str, str]]]:
    def render(obs: dict[str, Any]) -> list[dict[str, str]]:
        from persona_lab.agents.prompts import draft_messages

        return [m.to_dict() for m in draft_messages(task, obs["document"])]

    return render


EPISODE_METRICS["persona_lab/EditSummarization-v0"] = _edit_metrics
EPISODE_METRICS["persona_lab/EditEmail-v0"] = _edit_metrics
RECORD_PROMPTS["summarization"] = _edit_prompt("summarization")
RECORD_PROMPTS["email"] = _edit_prompt("email")


def _generic_metrics(records: list[dict[str, Any]]) -> dict[str, float]:
    rewards = [float(r["reward"]) for r in records]
    return {"return": sum(rewards), "mean_reward": sum(rewards) / len(rewards)}


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
        if config.env_id not in gym.registry:
            import difflib

            close = difflib.get_close_matches(config.env_id, [k for k in gym.registry if k.startswith("persona_lab/")], n=1)
            raise ConfigError(
                f"unknown env {config.env_id!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
                hint="`persona-lab ls envs` lists them",
            )
        AGENTS.entry(config.agent)  # fail early with a did-you-mean
        if config.rounds < 1 or config.episodes < 1 or concurrency < 1:
            raise ConfigError("rounds, episodes and concurrency must be >= 1")
        self.config, self.out = config, Path(out)
        self.concurrency = concurrency
        self.on_round = on_round or (lambda: None)
        self.user_meter, self.agent_meter = UsageMeter(), UsageMeter()
        self._cache = ResponseCache(cache_dir) if cache else None
        self._backends: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.transitions_path = self.out / "transitions.jsonl"

    # --- models ------------------------------------------------------------------------------
    def _model(self, spec: str | None, meter: UsageMeter) -> CachedChatModel | None:
        if is_scripted(spec):
            return None
        assert spec is not None
        with self._lock:
            if spec not in self._backends:
                self._backends[spec] = create_backend(spec)  # one backend (one loaded model) per spec
        return CachedChatModel(self._backends[spec], self._cache, meter)

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
            executed[0] += self._run_episode(e, set(done.get(e, {}).get("rounds", ())))

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
        atomic_write_json(cfg_path, {"config": self.config.to_dict(), **environment_info()})

    def _recorded(self) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = defaultdict(lambda: {"rounds": {}, "ended": False})
        for rec in read_jsonl(self.transitions_path):
            e = out[rec["episode"]]
            e["rounds"][rec["round"]] = rec["action_hash"]
            e["ended"] = e["ended"] or rec["terminated"] or rec["truncated"]
        return dict(out)

    def _run_episode(self, episode: int, recorded: set[int] | dict[int, str]) -> int:
        """Run (or replay up to the recorded rounds and continue) one episode; returns rounds executed."""
        cfg = self.config
        user_model = self._model(cfg.user_backend or cfg.backend, self.user_meter)
        agent_model = self._model(cfg.backend, self.agent_meter)
        env_kwargs = {"user": cfg.user_kind, "backend": user_model, "rounds": cfg.rounds,
                      "population": cfg.population, **cfg.env_kwargs}
        env = gym.make(cfg.env_id, **env_kwargs)
        task = env.unwrapped.task
        agent = create_agent(cfg.agent, task, agent_model, **cfg.agent_kwargs)
        feedback_keys = getattr(env.unwrapped, "feedback_keys", ())
        seed = derive_seed(cfg.seed, episode)
        obs, info = env.reset(seed=seed, options={"user_index": episode})
        executed = 0
        try:
            for t in range(cfg.rounds):
                if isinstance(agent, TruthAware):
                    agent.reveal(info.get(PRIVILEGED, {}).get("next", {}))
                action = agent.act(obs)
                next_obs, reward, terminated, truncated, info = env.step(action)
                feedback = {k: info[k] for k in feedback_keys if k in info}
                agent.update(Transition(obs, action, float(reward), feedback))
                action_hash = stable_hash(action, length=16)
                if t in recorded:
                    if isinstance(recorded, dict) and recorded[t] != action_hash:
                        log.warning("episode %d round %d replayed a different action than recorded", episode, t)
                else:
                    append_jsonl(self.transitions_path, self._record(episode, t, seed, task, obs, action, action_hash,
                                                                     reward, terminated, truncated, feedback, info, agent))
                    executed += 1
                self.on_round()
                obs = next_obs
                if terminated or truncated:
                    break
        finally:
            env.close()
        return executed

    def _record(self, episode: int, t: int, seed: int, task: str, obs: dict[str, Any], action: str, action_hash: str,
                reward: float, terminated: bool, truncated: bool, feedback: dict[str, Any], info: dict[str, Any],
                agent: Agent) -> dict[str, Any]:
        truth = info.get(PRIVILEGED, {}).get("round", {})
        prompt_fn = RECORD_PROMPTS.get(task)
        return {
            "episode": episode,
            "round": t,
            "env_id": self.config.env_id,
            "seed": seed,
            "user_id": truth.get("user_id"),
            "doc_id": info.get("doc_id"),
            "prompt": prompt_fn(obs) if prompt_fn else None,
            "observation": obs,
            "action": action,
            "action_hash": action_hash,
            "reward": float(reward),
            "terminated": bool(terminated),
            "truncated": bool(truncated),
            "feedback": feedback,
            "info": {k: v for k, v in info.items() if k != PRIVILEGED},
            "privileged": truth,
            "agent": dict(getattr(agent, "step_info", {}) or {}),
        }

    # --- summary -----------------------------------------------------------------------------
    def summarize(self, *, wall_s: float, rounds_executed: int, failed: list[int]) -> dict[str, Any]:
        cfg = self.config
        by_episode: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for rec in read_jsonl(self.transitions_path):
            by_episode[rec["episode"]].append(rec)
        metric_fn = EPISODE_METRICS.get(cfg.env_id, _generic_metrics)
        per_episode = {e: metric_fn(sorted(recs, key=lambda r: r["round"])) for e, recs in sorted(by_episode.items())}
        names = sorted({k for m in per_episode.values() for k in m})
        metrics = {n: mean_ci([m[n] for m in per_episode.values() if n in m])["mean"] for n in names}
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
            "rounds": cfg.rounds,
            "metrics": metrics,
            "metrics_ci": {n: mean_ci([m[n] for m in per_episode.values() if n in m]) for n in names},
            "per_episode": {str(e): m for e, m in per_episode.items()},
            "usage": {"agent": self.agent_meter.snapshot(), "user": self.user_meter.snapshot()},
            "throughput": {
                "wall_s": round(wall_s, 4),
                "rounds_executed": rounds_executed,
                "rounds_per_s": round(rounds_executed / wall_s, 2) if wall_s > 0 else None,
            },
            "failed_episodes": failed,
        }


def environment_info() -> dict[str, Any]:
    """Versions and git revision for config.json (inspect_ai's checklist)."""
    from importlib import metadata

    versions = {}
    for pkg in ("persona-lab", "torch", "transformers", "peft", "trl", "gymnasium", "sentence-transformers", "faiss-cpu"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        rev = None
    return {"versions": versions, "git_revision": rev, "python": platform.python_version(),
            "platform": platform.platform(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


from persona_lab.eval import followup_metrics as _followup_metrics  # noqa: E402,F401  (registers its metrics)
from persona_lab.eval import marketplace_metrics as _marketplace_metrics  # noqa: E402,F401  (registers its metrics)
from persona_lab.eval import persuasion_metrics as _persuasion_metrics  # noqa: E402,F401  (registers its metrics)
