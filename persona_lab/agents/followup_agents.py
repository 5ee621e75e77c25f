"""Agents of the follow-up world (task ``followup``): ``no-learning`` and ``oracle``.

Both answer the latest user message. With a model they continue the conversation (the oracle with
the user's true preference in its system prompt); without one they use the scripted skill
:func:`answer`: look the request up in the question bank (the scripted assistant's world knowledge),
answer plainly from the reference facts, and, when told a preference, apply the catalog editors of
the preferences recognized in it.
"""

from __future__ import annotations

from typing import Any

from persona_lab.agents.base import AGENTS, BaseAgent, TruthAware
from persona_lab.core.messages import Message, Transcript
from persona_lab.models.base import ChatModel, ChatRequest
from persona_lab.simulators import catalog
from persona_lab.simulators.followup_vocab import find_question, parse_conversation

TASK = "followup"
N_FACTS = 3
FALLBACK_ANSWER = "I am not sure what you are asking. Could you tell me a little more about what you need?"


def assistant_system_prompt(preference: str | None = None) -> str:
    """The assistant's system prompt; the oracle's carries the user's preference."""
    base = "You are a helpful assistant. Answer the user's latest message accurately and helpfully."
    if preference:
        base += f"\nThe user likes answers written this way; follow it exactly: {preference}"
    return base


def answer_messages(observation: dict[str, Any], preference: str | None = None) -> Transcript:
    """The chat an LLM agent continues: system prompt, then the conversation so far."""
    turns = parse_conversation(observation.get("conversation", "")) or (Message("user", observation["message"]),)
    return (Message("system", assistant_system_prompt(preference)), *turns)


def base_answer(message: str) -> str:
    """What an assistant says with no knowledge of the user: the lead reference facts, plainly."""
    question = find_question(message)
    if question is None:
        return FALLBACK_ANSWER
    return " ".join(question.facts[:N_FACTS])


def answer(message: str, preference: str | None = None, preference_ids: list[str] | None = None) -> str:
    """The scripted skill: a plain answer, then the catalog editors of the preferences given as ids,
    or else of those recognized in the ``preference`` description."""
    draft = base_answer(message)
    ids = list(preference_ids) if preference_ids else (catalog.recognize(preference) if preference else [])
    return catalog.apply_preferences(draft, ids) if ids else draft


class FollowUpAgent(BaseAgent):
    """Shared plumbing of the follow-up agents.

    Args:
        task: must be ``followup``.
        model: a ChatModel, or ``None`` for the scripted skill.
        max_new_tokens: answer budget.
    """

    name = "followup"

    tasks: tuple[str, ...] = (TASK,)
    world = 'the follow-up task'

    def base_prompt(self, observation: dict[str, Any]) -> list[dict[str, str]]:
        return [m.to_dict() for m in answer_messages(observation)]
    default_max_new_tokens = 300

    def respond(self, observation: dict[str, Any], preference: str | None,
                preference_ids: list[str] | None = None) -> str:
        self.step_info = {"used_preference": preference or ""}
        if self.model is None:
            return answer(observation["message"], preference, preference_ids)
        (c,) = self.model.generate([ChatRequest.of(answer_messages(observation, preference), self.params)])
        return c.text.strip() or base_answer(observation["message"])

    def act(self, observation: dict[str, Any]) -> str:
        return self.respond(observation, None)





@AGENTS.register("no-learning", "Answers plainly and never learns (the lower bound).")
class FollowUpNoLearningAgent(FollowUpAgent):
    """Answers plainly and never learns (the lower bound)."""

    name = "no-learning"


@AGENTS.register("oracle", "Told the user's true preference by the runner (the upper bound).")
class FollowUpOracleAgent(TruthAware, FollowUpAgent):
    """Told the user's true preference by the runner (the upper bound)."""

    name = "oracle"

    def __init__(self, task: str = TASK, model: ChatModel | None = None, **kwargs: Any) -> None:
        super().__init__(task, model, **kwargs)
        self.truth: dict[str, Any] = {}


    def act(self, observation: dict[str, Any]) -> str:
        return self.respond(observation, self.truth.get("preference"), self.truth.get("preference_ids"))
