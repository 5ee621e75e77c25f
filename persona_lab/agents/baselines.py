"""Agents that do not learn: ``no-learning`` and the ``oracle`` (told the true preference)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from persona_lab.agents import skills
from persona_lab.agents.base import AGENTS, Transition
from persona_lab.agents.prompts import TASK_INSTRUCTIONS, draft_messages
from persona_lab.core.errors import ConfigError
from persona_lab.core.io import atomic_write_json
from persona_lab.models.base import ChatModel, ChatRequest, GenerationParams


class DraftingAgent:
    """Shared plumbing: draft with a preference description through a model, or with scripted skills.

    Args:
        task: ``summarization`` or ``email``.
        model: a ChatModel, or ``None`` for the scripted skills.
        max_new_tokens: drafting budget.
    """

    name = "drafting"
    tasks: tuple[str, ...] = tuple(TASK_INSTRUCTIONS)  # the envs (by task) this agent supports

    def __init__(self, task: str, model: ChatModel | None = None, *, max_new_tokens: int = 300) -> None:
        if task not in TASK_INSTRUCTIONS:
            raise ConfigError(
                f"agent {self.name!r} drafts texts for the edit tasks {sorted(TASK_INSTRUCTIONS)}, not {task!r}",
                hint="`persona-lab ls agents` lists the agents; pick one that supports this env",
            )
        self.task = task
        self.model = model
        self.params = GenerationParams(max_new_tokens=max_new_tokens)
        self.step_info: dict[str, Any] = {}

    def draft(self, document: str, preference: str | None) -> str:
        self.step_info = {"used_preference": preference or ""}
        if self.model is None:
            return skills.respond(self.task, document, preference)
        (c,) = self.model.generate([ChatRequest.of(draft_messages(self.task, document, preference), self.params)])
        return c.text.strip() or skills.base_draft(self.task, document)

    def ask(self, messages: Any, max_new_tokens: int = 64) -> str:
        """One auxiliary model call (inference, aggregation)."""
        assert self.model is not None
        (c,) = self.model.generate([ChatRequest.of(messages, GenerationParams(max_new_tokens=max_new_tokens))])
        return c.text.strip()

    def act(self, observation: dict[str, Any]) -> str:
        return self.draft(observation["document"], None)

    def update(self, transition: Transition) -> None:
        return None

    def state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        return None

    def save(self, folder: str | Path) -> None:
        atomic_write_json(Path(folder) / "agent.json", {"name": self.name, "task": self.task, "state": self.state()})

    def load(self, folder: str | Path) -> None:
        import json

        blob = json.loads((Path(folder) / "agent.json").read_text(encoding="utf-8"))
        self.set_state(blob["state"])


@AGENTS.register("no-learning", "drafts with the default prompt and never learns (PRELUDE's lower bound)")
class NoLearningAgent(DraftingAgent):
    name = "no-learning"


@AGENTS.register("oracle", "told the true latent preference by the runner (PRELUDE's upper bound)")
class OracleAgent(DraftingAgent):
    name = "oracle"

    def __init__(self, task: str, model: ChatModel | None = None, **kwargs: Any) -> None:
        super().__init__(task, model, **kwargs)
        self._truth: dict[str, Any] = {}

    def reveal(self, truth: dict[str, Any]) -> None:
        self._truth = truth

    def act(self, observation: dict[str, Any]) -> str:
        return self.draft(observation["document"], self._truth.get("preference"))
