"""PRELUDE's learning agents: explore-then-exploit, continual, ICL-edit and CIPHER.

Each works with a model (the paper's prompts, :mod:`persona_lab.agents.prompts`) or, when ``model`` is
``None``, with the deterministic scripted skills (:mod:`persona_lab.agents.skills`). ``step_info``
exposes, per round, the preference the agent used and the one it inferred, for the metrics.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from persona_lab.agents import skills
from persona_lab.agents.base import AGENTS, Transition
from persona_lab.agents.baselines import DraftingAgent
from persona_lab.agents.prompts import aggregate_preferences_messages, icl_messages, infer_preference_messages
from persona_lab.models.base import ChatModel, ChatRequest
from persona_lab.models.embeddings import Encoder, VectorIndex, open_encoder
from persona_lab.simulators import catalog


class _InferringAgent(DraftingAgent):
    """Adds preference inference and aggregation, by model or by scripted skills."""

    def infer_from(self, pairs: list[tuple[str, str]], applied: str | None = None) -> str:
        """One preference explaining the user's edits of ``pairs`` ((draft, edited) tuples)."""
        pairs = [(a, b) for a, b in pairs if a != b]
        if not pairs:
            return applied or ""
        if self.model is None:
            used = catalog.recognize(applied) if applied else []
            per_pair = [skills.infer_description(a, b, used) for a, b in pairs]
            return per_pair[0] if len(per_pair) == 1 else skills.aggregate(per_pair)
        return self.ask(infer_preference_messages(pairs))

    def merge(self, preferences: list[str]) -> str:
        preferences = [p for p in preferences if p]
        if not preferences:
            return ""
        if len(preferences) == 1:
            return preferences[0]
        if self.model is None:
            return skills.aggregate(preferences)
        return self.ask(aggregate_preferences_messages(preferences))


@AGENTS.register("explore-exploit", "default drafts for n rounds, infers one preference from those edits, keeps it")
class ExploreExploitAgent(_InferringAgent):
    name = "explore-exploit"

    def __init__(self, task: str, model: ChatModel | None = None, *, explore_rounds: int = 5, **kw: Any) -> None:
        super().__init__(task, model, **kw)
        self.explore_rounds = explore_rounds
        self.pairs: list[tuple[str, str]] = []
        self.preference: str | None = None

    def act(self, observation: dict[str, Any]) -> str:
        return self.draft(observation["document"], self.preference)

    def update(self, transition: Transition) -> None:
        if self.preference is not None:
            self.step_info["inferred_preference"] = self.preference
            return
        self.pairs.append((transition.action, transition.feedback.get("edited_text", transition.action)))
        if len(self.pairs) >= self.explore_rounds:
            self.preference = self.infer_from(self.pairs)
            self.step_info["inferred_preference"] = self.preference

    def state(self) -> dict[str, Any]:
        return {"pairs": self.pairs, "preference": self.preference}

    def set_state(self, state: dict[str, Any]) -> None:
        self.pairs = [tuple(p) for p in state["pairs"]]  # type: ignore[misc]
        self.preference = state["preference"]


@AGENTS.register("continual", "re-infers the preference every round from the last n edits")
class ContinualAgent(_InferringAgent):
    name = "continual"

    def __init__(self, task: str, model: ChatModel | None = None, *, window: int = 5, **kw: Any) -> None:
        super().__init__(task, model, **kw)
        self.window = window
        self.pairs: deque[tuple[str, str]] = deque(maxlen=window)
        self.preference: str | None = None

    def act(self, observation: dict[str, Any]) -> str:
        return self.draft(observation["document"], self.preference)

    def update(self, transition: Transition) -> None:
        self.pairs.append((transition.action, transition.feedback.get("edited_text", transition.action)))
        self.preference = self.infer_from(list(self.pairs)) or self.preference
        self.step_info["inferred_preference"] = self.preference or ""

    def state(self) -> dict[str, Any]:
        return {"pairs": list(self.pairs), "preference": self.preference}

    def set_state(self, state: dict[str, Any]) -> None:
        self.pairs = deque((tuple(p) for p in state["pairs"]), maxlen=self.window)  # type: ignore[misc]
        self.preference = state["preference"]


class _RetrievalAgent(_InferringAgent):
    """A memory keyed by document embedding (faiss), saved and loaded with the agent."""

    def __init__(self, task: str, model: ChatModel | None = None, *, k: int = 5, encoder: str | Encoder = "minilm",
                 index: str = "flat", **kw: Any) -> None:
        super().__init__(task, model, **kw)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k = k
        self.encoder_spec = encoder if isinstance(encoder, str) else encoder.name
        self._encoder: Encoder | None = None if isinstance(encoder, str) else encoder
        self.index_kind = index
        self.memory: VectorIndex | None = None
        self._pending: dict[str, Any] = {}

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = open_encoder(self.encoder_spec)
        return self._encoder

    def _embed(self, document: str) -> np.ndarray:
        return self.encoder.encode([document])

    def _neighbors(self, vec: np.ndarray) -> list[dict[str, Any]]:
        if self.memory is None or len(self.memory) == 0:
            return []
        return [payload for _, payload in self.memory.search(vec, self.k)[0]]

    def _remember(self, vec: np.ndarray, payload: dict[str, Any]) -> None:
        if self.memory is None:
            self.memory = VectorIndex(vec.shape[1], kind=self.index_kind)
        self.memory.add(vec, [payload])

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        super().save(folder)
        if self.memory is not None:
            self.memory.save(folder / "memory")

    def load(self, folder: str | Path) -> None:
        folder = Path(folder)
        super().load(folder)
        if (folder / "memory" / "index.faiss").exists():
            self.memory = VectorIndex.load(folder / "memory")

    def state(self) -> dict[str, Any]:
        return {"k": self.k, "encoder": self.encoder_spec, "index": self.index_kind}


@AGENTS.register("icl-edit", "shows the k past (draft, edit) pairs of the most similar documents in the prompt")
class ICLEditAgent(_RetrievalAgent):
    name = "icl-edit"

    def act(self, observation: dict[str, Any]) -> str:
        doc = observation["document"]
        vec = self._embed(doc)
        examples = self._neighbors(vec)
        self._pending = {"vec": vec, "doc": doc}
        self.step_info = {"retrieved": len(examples)}
        if self.model is None:
            # imitate the revised examples: the style their final texts had beyond a plain draft
            styles = [e["style"] for e in examples]
            pref = skills.aggregate(styles) if styles else ""
            self.step_info["used_preference"] = pref
            return skills.respond(self.task, doc, pref)
        pairs = [(e["draft"], e["edited"]) for e in examples]
        (c,) = self.model.generate([ChatRequest.of(icl_messages(self.task, doc, pairs), self.params)])
        return c.text.strip() or skills.base_draft(self.task, doc)

    def update(self, transition: Transition) -> None:
        edited = transition.feedback.get("edited_text", transition.action)
        doc = self._pending["doc"]
        memory = {"doc": doc, "draft": transition.action, "edited": edited}
        if self.model is None:  # what the scripted skill reads from an example, computed once
            memory["style"] = skills.infer_description(skills.base_draft(self.task, doc), edited)
        self._remember(self._pending["vec"], memory)


@AGENTS.register("cipher", "CIPHER: retrieves preferences inferred from edits on the k most similar documents")
class CipherAgent(_RetrievalAgent):
    """CIPHER-k. k = 1 uses the retrieved preference as is; k > 1 aggregates the k retrieved ones.

    After each round it infers a preference from (draft, edit) only when the user edited, and otherwise
    stores the preference it just used.
    """

    name = "cipher"

    def act(self, observation: dict[str, Any]) -> str:
        doc = observation["document"]
        vec = self._embed(doc)
        retrieved = [p["preference"] for p in self._neighbors(vec) if p.get("preference")]
        preference = (retrieved[0] if self.k == 1 else self.merge(retrieved)) if retrieved else None
        self._pending = {"vec": vec, "preference": preference}
        return self.draft(doc, preference)

    def update(self, transition: Transition) -> None:
        used = self._pending["preference"]
        if transition.feedback.get("accepted", False):
            inferred = used or ""
        else:
            inferred = self.infer_from([(transition.action, transition.feedback.get("edited_text", transition.action))],
                                       applied=used)
        self.step_info["inferred_preference"] = inferred
        self._remember(self._pending["vec"], {"preference": inferred})


