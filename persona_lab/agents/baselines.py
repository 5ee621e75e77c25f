"""Agents that do not learn: ``no-learning`` and the ``oracle`` (told the true preference)."""

from __future__ import annotations

from typing import Any

from persona_lab.agents import skills
from persona_lab.agents.base import AGENTS, BaseAgent, TruthAware
from persona_lab.agents.prompts import TASK_INSTRUCTIONS, draft_messages
from persona_lab.models.base import ChatModel, ChatRequest, GenerationParams


class DraftingAgent(BaseAgent):
    """Shared plumbing of the edit-world agents: draft with a preference description through a model,
    or with scripted skills.

    Args:
        task: ``summarization`` or ``email``.
        model: a ChatModel, or ``None`` for the scripted skills.
        max_new_tokens: drafting budget (default 300).
    """

    name = "drafting"
    tasks: tuple[str, ...] = tuple(TASK_INSTRUCTIONS)
    world = "the edit tasks"

    def base_prompt(self, observation: dict[str, Any]) -> list[dict[str, str]]:
        return [m.to_dict() for m in draft_messages(self.task, observation["document"])]

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


@AGENTS.register("no-learning", "drafts with the default prompt and never learns (PRELUDE's lower bound)")
class NoLearningAgent(DraftingAgent):
    name = "no-learning"


@AGENTS.register("oracle", "told the true latent preference by the runner (PRELUDE's upper bound)")
class OracleAgent(TruthAware, DraftingAgent):
    name = "oracle"

    def __init__(self, task: str, model: ChatModel | None = None, **kwargs: Any) -> None:
        super().__init__(task, model, **kwargs)
        self.truth: dict[str, Any] = {}


    def act(self, observation: dict[str, Any]) -> str:
        return self.draft(observation["document"], self.truth.get("preference"))
