"""The Agent seam: ``act(observation) -> action`` and ``update(transition)``.

Agents see observations and *public* feedback only (the edited text, acceptance, cost). Memory is
explicit state that ``save``/``load`` round-trip. The one documented exception to "no ground truth"
is the oracle: the runner hands it the true preference through :class:`TruthAware`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from persona_lab.core.errors import ConfigError
from persona_lab.core.io import atomic_write_json
from persona_lab.core.registry import Registry
from persona_lab.models.base import ChatModel, GenerationParams


@dataclass(frozen=True)
class Transition:
    """What an agent learns from one round: its observation and action, and the user's public reaction."""

    observation: dict[str, Any]
    action: str
    reward: float
    feedback: dict[str, Any] = field(default_factory=dict)  # e.g. edited_text, accepted, cost


@runtime_checkable
class Agent(Protocol):
    name: str

    def act(self, observation: dict[str, Any]) -> str: ...

    def update(self, transition: Transition) -> None: ...

    def save(self, folder: str | Path) -> None: ...

    def load(self, folder: str | Path) -> None: ...


@runtime_checkable
class TruthAware(Protocol):
    """Agents that the runner may tell the true latent preference (the oracle only)."""

    def reveal(self, truth: dict[str, Any]) -> None: ...


AGENTS: Registry[Agent] = Registry("agent", "persona-lab ls agents")

# Agent names are shared across environments ("no-learning", "oracle", ...); an implementation for
# one task registers here, and :func:`create_agent` picks it for that task.
_TASK_IMPLS: dict[tuple[str, str], Callable[..., Agent]] = {}


def register_for_task(name: str, task: str) -> Callable[[Callable[..., Agent]], Callable[..., Agent]]:
    """Register the implementation of agent ``name`` for envs whose ``task`` is ``task``."""

    def deco(factory: Callable[..., Agent]) -> Callable[..., Agent]:
        _TASK_IMPLS[(name, task)] = factory
        return factory

    return deco


def create_agent(name: str, task: str, model: Any = None, **kwargs: Any) -> Agent:
    """The agent ``name`` for an env of ``task``, with an injected model (``None`` = scripted skills)."""
    impl = _TASK_IMPLS.get((name, task))
    if impl is not None:
        return impl(task=task, model=model, **kwargs)
    return AGENTS.get(name)(task=task, model=model, **kwargs)


class BaseAgent:
    """Plumbing every built-in agent shares: the task check, the injected model (``None`` = scripted
    skills), the generation budget, ``step_info``, and ``save``/``load`` of :meth:`state`.

    Subclasses set ``name``, ``tasks`` (the env tasks they act in), ``world`` (how errors name those
    tasks) and ``default_max_new_tokens``, and write ``act`` (and ``update``/``state`` if they learn).
    """

    name = "base"
    tasks: tuple[str, ...] = ()
    world = "the tasks"
    default_max_new_tokens = 300

    def __init__(self, task: str, model: ChatModel | None = None, *, max_new_tokens: int | None = None) -> None:
        if task not in self.tasks:
            raise ConfigError(
                f"agent {self.name!r} works in {self.world} {sorted(self.tasks)}, not {task!r}",
                hint="`persona-lab ls agents` lists the agents; pick one that supports this env",
            )
        self.task = task
        self.model = model
        self.params = GenerationParams(max_new_tokens=max_new_tokens or self.default_max_new_tokens)
        self.step_info: dict[str, Any] = {}

    def update(self, transition: Transition) -> None:
        return None

    def state(self) -> dict[str, Any]:
        """Learned state, JSON-serializable (empty for agents that do not learn)."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        return None

    def save(self, folder: str | Path) -> None:
        atomic_write_json(Path(folder) / "agent.json", {"name": self.name, "task": self.task, "state": self.state()})

    def load(self, folder: str | Path) -> None:
        blob = json.loads((Path(folder) / "agent.json").read_text(encoding="utf-8"))
        self.set_state(blob.get("state", {}))
