"""FSPO's agents: the few-shot task's zero-shot, few-shot, ``fspo`` and oracle agents, and ``fspo`` in
the edit world (its shots are the user's own past (draft, edit) pairs).

With a model:

- ``no-learning`` (zero-shot): the question alone, under a generic system prompt;
- ``few-shot``: the episode prompt (the user's shots, then the question) in one user message: few-shot
  prompting with no training, and, with an FSPO adapter (``--backend hf:<base>+<adapter>``), FSPO
  itself (``fspo`` is the same agent under the method's name);
- ``oracle``: the question with the user's true description in the system prompt.

Without a model (scripted skills, the judge-free reference): zero-shot answers with the question
bank's base answer; few-shot reads the shots, keeps the catalog preferences every preferred answer
meets and some dispreferred answer misses, and applies their editors; the oracle applies the
editors of the user's true preferences.
"""

from __future__ import annotations

from typing import Any

from persona_lab.agents import skills
from persona_lab.agents.base import AGENTS, BaseAgent, Transition, TruthAware
from persona_lab.agents.learners import _RetrievalAgent
from persona_lab.agents.prompts import TASK_INSTRUCTIONS
from persona_lab.models.base import ChatModel, ChatRequest
from persona_lab.simulators import catalog
from persona_lab.simulators import fspo as F

TASK = "fewshot"


def fallback_answer(step_info: dict[str, Any], fallback: str) -> str:
    """``fallback`` in place of a model answer that parsed to nothing, marked in the step's info
    (``parse_failed``, ``fallback``) so the fidelity counters see it instead of a model outcome."""
    step_info["parse_failed"] = True
    step_info["fallback"] = "scripted"
    return fallback


def scripted_base_answer(question: str) -> str:
    """The scripted assistant's answer with no knowledge of the user."""
    found = F.find_question(question)
    return found.answer if found is not None else f"Here is a short answer to your question: {question}"


def infer_from_shots(shots: list[tuple[str, str, str]]) -> list[str]:
    """Catalog ids every preferred answer satisfies and at least one dispreferred answer violates,
    reduced to a compatible set (most salient first)."""
    if not shots:
        return []
    ids = list(catalog.CATALOG)
    always = [pid for pid in ids if all(catalog.CATALOG[pid].check(w) for _, w, _ in shots)]
    telling = [pid for pid in always if any(not catalog.CATALOG[pid].check(rej) for _, _, rej in shots)]
    kept: list[str] = []
    for pid in sorted(telling, key=lambda p: -catalog.CATALOG[p].salience):
        if catalog.compatible([*kept, pid]):
            kept.append(pid)
    return catalog.canonical_order(kept)


class FewShotAgent(BaseAgent):
    """Shared plumbing of the ``fewshot`` agents."""

    name = "fewshot"
    tasks: tuple[str, ...] = (TASK,)
    world = "the few-shot task"
    default_max_new_tokens = 200

    def generate(self, messages: list[dict[str, str]]) -> str:
        assert self.model is not None
        (c,) = self.model.generate([ChatRequest.of(messages, self.params)])
        return c.text.strip()

    def answer_or_base(self, answer: str, question: str) -> str:
        """The model's answer; an empty one is replaced by the packaged base answer and flagged
        ``parse_failed`` in ``step_info``, so the run counts it (``agent/parse_failures``)."""
        return answer or fallback_answer(self.step_info, scripted_base_answer(question))

    def act(self, observation: dict[str, Any]) -> str:
        question = observation["question"]
        if self.model is None:
            self.step_info = {"used_preference": ""}
            return scripted_base_answer(question)
        self.step_info = {}
        return self.answer_or_base(self.generate(F.zero_shot_messages(question)), question)

    def base_prompt(self, observation: dict[str, Any]) -> list[dict[str, str]] | None:
        return F.zero_shot_messages(observation["question"])


@AGENTS.register("no-learning", "Answers the question alone (zero-shot: the base model of FSPO's win rates).")
class ZeroShotAgent(FewShotAgent):
    """Answers the question alone (the base model: FSPO's reference for win rates)."""

    name = "no-learning"


@AGENTS.register("few-shot", "The user's preference pairs in the prompt, then the question (few-shot prompting).")
class FewShotPromptAgent(FewShotAgent):
    """Few-shot prompting: the episode prompt as one user message. With an FSPO adapter, FSPO."""

    name = "few-shot"

    def act(self, observation: dict[str, Any]) -> str:
        if self.model is None:
            shots, question = F.parse_episode(observation["prompt"])
            ids = infer_from_shots(shots)
            self.step_info = {"used_preference": catalog.describe(ids) if ids else ""}
            base = scripted_base_answer(question)
            return catalog.apply_preferences(base, ids) if ids else base
        self.step_info = {}
        text = self.generate(self.base_prompt(observation))
        return self.answer_or_base(F.answer_from_completion(text), observation["question"])

    def base_prompt(self, observation: dict[str, Any]) -> list[dict[str, str]] | None:
        return [{"role": "system", "content": F.SYSTEM_PROMPT}, {"role": "user", "content": observation["prompt"]}]


@AGENTS.register("fspo", "FSPO: the few-shot prompt, answered by a model with an FSPO adapter (hf:<base>+<adapter>).")
class FSPOAgent(FewShotPromptAgent):
    """FSPO at test time: the few-shot prompt, answered by a model carrying an FSPO adapter."""

    name = "fspo"


@AGENTS.register("oracle", "Told the user's true description by the runner (FSPO's oracle persona).")
class FewShotOracleAgent(TruthAware, FewShotAgent):
    """Told the user's true description by the runner (FSPO's oracle-persona row)."""

    name = "oracle"

    def __init__(self, task: str = TASK, model: ChatModel | None = None, **kwargs: Any) -> None:
        super().__init__(task, model, **kwargs)
        self.truth: dict[str, Any] = {}

    def act(self, observation: dict[str, Any]) -> str:
        question = observation["question"]
        description = self.truth.get("preference")
        self.step_info = {"used_preference": description or ""}
        if self.model is None:
            ids = list(self.truth.get("preference_ids") or [])
            base = scripted_base_answer(question)
            return catalog.apply_preferences(base, ids) if ids else base
        return self.answer_or_base(self.generate(F.zero_shot_messages(question, description)), question)

    def base_prompt(self, observation: dict[str, Any]) -> list[dict[str, str]] | None:
        return F.zero_shot_messages(observation["question"], self.truth.get("preference"))


def edit_question(task: str, document: str) -> str:
    """An edit-world request as an FSPO question: the drafting instruction and the document."""
    return f"{TASK_INSTRUCTIONS[task]}\n\n{document.strip()}"


@AGENTS.register("fspo", "FSPO in the edit world: the user's past (draft, edit) pairs of the k most similar "
                         "documents as preference shots (edit preferred), then the new document")
class EditFSPOAgent(_RetrievalAgent):
    """FSPO's episode format fed with the user's own history: each of the ``k`` most similar past
    documents (as ICL-edit retrieves them) is a shot whose preferred response is the user's edit and
    whose dispreferred response is the agent's draft; the new document is the task. With a model
    carrying an FSPO adapter (``hf:<base>+<adapter>``) this is FSPO at test time; with the base model,
    few-shot prompting in FSPO's format. Scripted: the catalog preferences that most retrieved edits
    added to a plain draft of their document are applied. Only rounds the user edited are remembered
    (an accepted draft is no preference pair)."""

    name = "fspo"
    tasks: tuple[str, ...] = tuple(TASK_INSTRUCTIONS)
    world = "the edit tasks"

    def __init__(self, task: str, model: ChatModel | None = None, *, k: int = 3, **kw: Any) -> None:
        super().__init__(task, model, k=k, **kw)

    def act(self, observation: dict[str, Any]) -> str:
        doc = observation["document"]
        vec = self._embed(doc)
        self._pending = {"vec": vec, "doc": doc}
        examples = self._neighbors(vec)
        self.step_info = {"retrieved": len(examples)}
        if self.model is None:
            # what each past edit added to a plain draft of its document, kept when most edits agree
            styles = [skills.infer_description(skills.base_draft(self.task, e["doc"]), e["edited"]) for e in examples]
            pref = skills.aggregate(styles, min_share=0.5) if styles else ""
            self.step_info["used_preference"] = pref
            return skills.respond(self.task, doc, pref)
        shots = [(edit_question(self.task, e["doc"]), e["edited"], e["draft"]) for e in examples]
        messages = F.episode_messages(shots, edit_question(self.task, doc))
        (c,) = self.model.generate([ChatRequest.of(messages, self.params)])
        return F.answer_from_completion(c.text) or fallback_answer(self.step_info, skills.base_draft(self.task, doc))

    def base_prompt(self, observation: dict[str, Any]) -> list[dict[str, str]] | None:
        return F.episode_messages([], edit_question(self.task, observation["document"]))

    def update(self, transition: Transition) -> None:
        edited = transition.feedback.get("edited_text", transition.action)
        if edited.strip() != transition.action.strip():
            self._remember(self._pending["vec"], {"doc": self._pending["doc"], "draft": transition.action,
                                                  "edited": edited})
