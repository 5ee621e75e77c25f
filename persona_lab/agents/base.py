"""The Agent seam: ``act(observation) -> action`` and ``update(transition)``.

Agents see observations and *public* feedback only (the edited text, acceptance, cost). Memory is
explicit state that ``save``/``load`` round-trip. The one documented exception to "no ground truth"
is the oracle: the runner hands it the true preference through :class:`TruthAware`. Agents are
registered in :data:`AGENTS` by (name, task).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from persona_lab.core.errors import ConfigError, UnknownNameError
from persona_lab.core.io import atomic_write_json
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


class TruthAware:
    """Mixin of the agents that the runner may tell the truth (oracles only): before each action the
    runner calls :meth:`reveal` with ``info["privileged"]["next"]``, which the agent reads as
    ``self.truth``. Every other agent sees observations and public feedback only."""

    truth: dict[str, Any]

    def reveal(self, truth: dict[str, Any]) -> None:
        self.truth = dict(truth)


@dataclass(frozen=True)
class AgentEntry:
    name: str
    task: str
    factory: Callable[..., Agent]
    help: str


class AgentRegistry:
    """The one agent registry, keyed by (name, task).

    Names are shared across worlds ("no-learning" and "oracle" exist in every world); the task (the
    env's ``task``) picks the implementation. A factory registers for the tasks in its ``tasks``
    attribute, or for those passed explicitly.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], AgentEntry] = {}

    def register(self, name: str, help: str = "", *, tasks: tuple[str, ...] | None = None
                 ) -> Callable[[Callable[..., Agent]], Callable[..., Agent]]:
        """Decorator registering ``factory`` as agent ``name`` for ``tasks`` (default: ``factory.tasks``)."""

        def deco(factory: Callable[..., Agent]) -> Callable[..., Agent]:
            for task in tasks if tasks is not None else getattr(factory, "tasks", ()):
                self.add(name, task, factory, help)
            return factory

        return deco

    def add(self, name: str, task: str, factory: Callable[..., Agent], help: str = "") -> None:
        if not task:
            raise ValueError(f"agent {name!r} must name the tasks it supports")
        if (name, task) in self._entries:
            raise ValueError(f"agent {name!r} is already registered for task {task!r}")
        doc = help or (factory.__doc__ or "").strip().split("\n")[0]
        self._entries[(name, task)] = AgentEntry(name, task, factory, doc)

    def remove(self, name: str) -> None:
        """Unregister every task of ``name`` (tests and notebooks that register a throwaway agent)."""
        for key in [k for k in self._entries if k[0] == name]:
            del self._entries[key]

    def names(self) -> list[str]:
        return sorted({name for name, _ in self._entries})

    def tasks(self, name: str) -> list[str]:
        return sorted(task for n, task in self._entries if n == name)

    def supports(self, name: str, task: str) -> bool:
        return (name, task) in self._entries

    def entries(self) -> list[AgentEntry]:
        return [self._entries[k] for k in sorted(self._entries)]

    def check(self, name: str, task: str | None = None) -> None:
        """Raise a helpful error unless ``name`` exists (for ``task``, when given)."""
        if name not in self.names():
            close = difflib.get_close_matches(name, self.names(), n=1, cutoff=0.5)
            raise UnknownNameError(f"unknown agent {name!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
                                   hint=f"`persona-lab ls agents` lists them: {', '.join(self.names())}")
        if task is not None and not self.supports(name, task):
            here = sorted(n for n, t in self._entries if t == task)
            raise ConfigError(f"agent {name!r} works in the tasks {self.tasks(name)}, not {task!r}",
                              hint=f"agents for {task!r}: {', '.join(here) or '(none)'}; `persona-lab ls agents` lists all")

    def get(self, name: str, task: str) -> Callable[..., Agent]:
        self.check(name, task)
        return self._entries[(name, task)].factory

    def create(self, name: str, task: str, model: Any = None, **kwargs: Any) -> Agent:
        return self.get(name, task)(task=task, model=model, **kwargs)

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


AGENTS = AgentRegistry()


def create_agent(name: str, task: str, model: Any = None, **kwargs: Any) -> Agent:
    """The agent ``name`` for an env of ``task``, with an injected model (``None`` = scripted skills)."""
    return AGENTS.create(name, task, model, **kwargs)


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

    def base_prompt(self, observation: Any) -> list[dict[str, str]] | None:
        """The prompt (chat messages) this agent's policy answers for ``observation``, without any
        learned additions: the runner records it with each transition for training sets."""
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
