"""Agents of PrefEval-v0 (task ``prefeval``): ``no-learning`` and ``oracle``.

The observation is the whole long conversation as text (:func:`render_conversation`); an LLM agent
sends it back to its model as messages. Without a model the scripted skills answer: the
``no-learning`` answer is generic advice that ignores every preference stated earlier (PrefEval's
failure mode), and the oracle, told the preference and its verifiable checks, writes an answer that
names what the user wants and avoids what they ruled out. The PrefEval harness
(``persona-lab prefeval``) remains the place for the paper's methods (reminder, CoT, RAG, ...).
"""

from __future__ import annotations

from typing import Any

from persona_lab.agents.base import AGENTS, BaseAgent, TruthAware
from persona_lab.models.base import ChatModel, ChatRequest
from persona_lab.simulators.prefeval.context import parse_conversation

TASK = "prefeval"
_GENERIC = ("Here are a few suggestions that work well for most people. Start with the most popular option, "
            "compare two or three alternatives on price and reviews, and pick the one that fits your schedule "
            "and budget. Popular choices are popular for a reason, so they are a safe place to begin.")


def question_of(observation: str) -> str:
    """The final user message of the conversation (the question under test)."""
    users = [m["content"] for m in parse_conversation(observation) if m["role"] == "user"]
    return users[-1] if users else observation[-500:]


class PrefEvalAgent(BaseAgent):
    """Shared plumbing: answer the conversation with a model, or with the scripted skill."""

    name = "prefeval"
    tasks: tuple[str, ...] = (TASK,)
    world = "the PrefEval task"
    default_max_new_tokens = 300

    def base_prompt(self, observation: Any) -> list[dict[str, str]]:
        return parse_conversation(observation)

    def messages(self, observation: str) -> list[dict[str, str]]:
        return self.base_prompt(observation)

    def act(self, observation: Any) -> str:
        if self.model is None:
            return self.scripted(observation)
        (c,) = self.model.generate([ChatRequest.of(self.messages(observation), self.params)])
        return c.text.strip()

    def scripted(self, observation: str) -> str:
        return _GENERIC


@AGENTS.register("no-learning", "Answers the question generically, whatever was said earlier (the lower bound).")
class PrefEvalNoLearningAgent(PrefEvalAgent):
    """Answers the question generically, whatever was said earlier (the lower bound)."""

    name = "no-learning"


@AGENTS.register("oracle", "Told the stated preference by the runner; answers with it in mind (the upper bound).")
class PrefEvalOracleAgent(TruthAware, PrefEvalAgent):
    """Told the stated preference by the runner; answers with it in mind (the upper bound)."""

    name = "oracle"

    def __init__(self, task: str = TASK, model: ChatModel | None = None, **kwargs: Any) -> None:
        super().__init__(task, model, **kwargs)
        self.truth: dict[str, Any] = {}

    def messages(self, observation: str) -> list[dict[str, str]]:
        msgs = self.base_prompt(observation)
        pref = self.truth.get("preference")
        if pref and msgs:
            msgs[-1] = {**msgs[-1], "content": f"{msgs[-1]['content']}\n\n(Remember my preference: {pref})"}
        return msgs

    def scripted(self, observation: str) -> str:
        checks = self.truth.get("verifiable") or {}
        wanted = list(checks.get("require_any") or [])
        avoided = list(checks.get("forbid") or [])
        parts = ["Keeping in mind the preference you told me about earlier, here is what I suggest."]
        if wanted:
            parts.append(f"Go for {wanted[0]}: it matches what you asked for, and I picked every suggestion with it in mind.")
        if avoided:
            parts.append("I left out the options you said you want to avoid.")
        parts.append("Compare two or three alternatives on price and reviews, then choose the one that fits your "
                     "schedule and budget best.")
        return " ".join(parts)
