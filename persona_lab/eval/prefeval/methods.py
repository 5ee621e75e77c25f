"""Prompting methods that help a model keep a preference across a long conversation.

Each method is a small component registered in :data:`METHODS` ("prefeval method"). It may add
text before or after the question (kept separate from the question in every record, so training
data can be built with or without it) and decides how the model is called:

- ``zero-shot``: the question as is.
- ``reminder``: one sentence asking the model to stay consistent with earlier preferences.
- ``self-critic``: answer, a two-sentence self-critique, then a revised answer (three calls).
- ``cot``: five worked examples of reasoning about an earlier preference, then the question.
- ``rag``: the top-k earlier messages most similar to the question (sentence-transformers
  embeddings in a faiss index) placed before the question; the full history stays in the prompt.

A method states which tasks it supports (``generation``, ``classification``); the runner skips
the other combinations.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from persona_lab.core.messages import Message, Transcript
from persona_lab.core.registry import Registry
from persona_lab.models.base import ChatModel, ChatRequest, Completion, GenerationParams
from persona_lab.simulators.prefeval.context import FinalUserMessage, PrefEvalContext, length_instruction

TASKS: tuple[str, ...] = ("generation", "classification")


@dataclass(frozen=True)
class MethodOptions:
    """Settings shared by the method factories (each uses what concerns it)."""

    rag_k: int = field(default=5, metadata={"help": "Earlier messages RAG puts before the question."})
    rag_encoder: str = field(default="minilm", metadata={"help": "Encoder for RAG: minilm, tfidf or a local folder."})
    answer_words: int = field(default=300, metadata={"help": "Word cap repeated in self-critic's revision request."})


@dataclass
class Prepared:
    """The final user message a method sends, and what it wants recorded (e.g. retrieved messages)."""

    final: FinalUserMessage
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class MethodOutput:
    """The answer and how it came about.

    ``steps`` are the turns that followed the first request (self-critic's draft, critique request,
    critique and revision request), so the exact messages of every call can be rebuilt.
    """

    response: str
    completions: list[Completion]
    steps: list[dict[str, str]] = field(default_factory=list)


@runtime_checkable
class PrefEvalMethod(Protocol):
    """A way of asking the question. Implementations must be thread-safe."""

    name: str
    tasks: frozenset[str]

    def prepare(self, ctx: PrefEvalContext) -> Prepared:
        """The final user message (the context's question plus this method's text)."""
        ...

    def reserve_tokens(self, max_new_tokens: int) -> int:
        """Tokens needed beyond the first prompt (generated text, later turns): for the window check."""
        ...

    def respond(self, model: ChatModel, ctx: PrefEvalContext, prepared: Prepared, params: GenerationParams) -> MethodOutput:
        """Call the model and return the final answer."""
        ...


METHODS: Registry[PrefEvalMethod] = Registry("prefeval method", "persona-lab prefeval --list-methods")


def create_method(name: str, options: MethodOptions = MethodOptions()) -> PrefEvalMethod:
    """A method by registered name, e.g. ``create_method("rag", MethodOptions(rag_k=3))``."""
    return METHODS.get(name)(options)


class _SinglePass:
    """One call with the prepared message; subclasses only change the message."""

    name: ClassVar[str]
    tasks: ClassVar[frozenset[str]] = frozenset(TASKS)

    def prepare(self, ctx: PrefEvalContext) -> Prepared:
        return Prepared(ctx.final)

    def reserve_tokens(self, max_new_tokens: int) -> int:
        return max_new_tokens

    def respond(self, model: ChatModel, ctx: PrefEvalContext, prepared: Prepared, params: GenerationParams) -> MethodOutput:
        (c,) = model.generate([ChatRequest(ctx.messages(prepared.final), params)])
        return MethodOutput(c.text, [c])


@METHODS.register("zero-shot", "the question as is (the paper's baseline)")
class ZeroShotMethod(_SinglePass):
    """The question as is (the paper's baseline)."""

    name = "zero-shot"

    def __init__(self, options: MethodOptions = MethodOptions()) -> None:
        pass


def reminder_text() -> str:
    """The reminder sentence added after the question."""
    return (
        "When you answer, keep in mind everything I have told you about myself earlier in our "
        "conversation, and make sure your answer is consistent with my preferences."
    )


@METHODS.register("reminder", "one sentence after the question asking to stay consistent with earlier preferences")
class ReminderMethod(_SinglePass):
    """One sentence after the question asks the model to honour earlier preferences."""

    name = "reminder"

    def __init__(self, options: MethodOptions = MethodOptions()) -> None:
        pass

    def prepare(self, ctx: PrefEvalContext) -> Prepared:
        return Prepared(ctx.final.with_method_text(suffix=reminder_text()))


def critique_request() -> str:
    """Self-critic's second user turn."""
    return (
        "Before I use that answer, review it against everything I have told you about myself earlier in "
        "this conversation. In two sentences, say whether it respects my preferences and what should change."
    )


def revision_request(words: int) -> str:
    """Self-critic's third user turn."""
    return " ".join(
        p
        for p in (
            "Now write the improved answer to my original question, taking your critique into account. "
            "Give only the answer.",
            length_instruction(words),
        )
        if p
    )


@METHODS.register("self-critic", "answer, two-sentence self-critique, revised answer (three calls; generation only)")
class SelfCriticMethod:
    """Answer, criticise the answer in two sentences against earlier preferences, then revise."""

    name = "self-critic"
    tasks = frozenset({"generation"})

    def __init__(self, options: MethodOptions = MethodOptions()) -> None:
        self.answer_words = options.answer_words

    def prepare(self, ctx: PrefEvalContext) -> Prepared:
        return Prepared(ctx.final)

    def reserve_tokens(self, max_new_tokens: int) -> int:
        # draft + critique + revision, and the two requests in between
        return 3 * max_new_tokens + 150

    def respond(self, model: ChatModel, ctx: PrefEvalContext, prepared: Prepared, params: GenerationParams) -> MethodOutput:
        msgs: Transcript = ctx.messages(prepared.final)
        (draft,) = model.generate([ChatRequest(msgs, params)])
        ask_critique = critique_request()
        msgs = (*msgs, Message("assistant", draft.text), Message("user", ask_critique))
        (critique,) = model.generate([ChatRequest(msgs, params)])
        ask_revision = revision_request(self.answer_words)
        msgs = (*msgs, Message("assistant", critique.text), Message("user", ask_revision))
        (final,) = model.generate([ChatRequest(msgs, params)])
        steps = [
            {"role": "assistant", "content": draft.text, "kind": "draft"},
            {"role": "user", "content": ask_critique, "kind": "critique_request"},
            {"role": "assistant", "content": critique.text, "kind": "critique"},
            {"role": "user", "content": ask_revision, "kind": "revision_request"},
        ]
        return MethodOutput(final.text, [draft, critique, final], steps)


# Five worked examples, written for persona-lab, on topics away from the test domains' questions.
COT_EXAMPLES: tuple[tuple[str, str, str, str], ...] = (
    (
        "I get motion sick easily, so long winding drives are miserable for me.",
        "What's a good day trip from San Francisco?",
        "The user gets motion sick, so the winding coastal road to Big Sur or the curvy drive to Muir "
        "Woods would be a poor fit; a trip with straight roads or a train ride suits them better.",
        "Take the Capitol Corridor train to Sacramento: a smooth ride, then the old town and the railroad museum.",
    ),
    (
        "I'm on a tight budget this year and try not to spend on anything non-essential.",
        "How should I celebrate my partner's birthday?",
        "The user is saving money, so an expensive dinner or a weekend away goes against that; the answer "
        "should focus on thoughtful, low-cost ideas.",
        "Cook their favourite meal at home, write a letter about your best moments together, and plan a picnic in a park you both like.",
    ),
    (
        "I don't drink alcohol at all.",
        "What should I bring to a dinner party?",
        "A bottle of wine is the usual suggestion, but the user does not drink, so I should suggest something else.",
        "Bring a dessert you bake yourself, a bunch of seasonal flowers, or a nice sparkling juice or craft soda.",
    ),
    (
        "I have bad knees, so I avoid high-impact exercise.",
        "What's a good way to get fitter this spring?",
        "Running and jumping-based classes are high impact, which the user avoids because of their knees; "
        "low-impact options fit the preference.",
        "Try swimming or cycling three times a week, add a gentle strength routine, and build up slowly.",
    ),
    (
        "I prefer reading things on paper; screens give me headaches.",
        "How can I keep up with the news each morning?",
        "News apps and websites mean screen time, which gives the user headaches; print options respect that.",
        "Subscribe to a daily newspaper delivered to your door, or a weekly news magazine for a deeper digest.",
    ),
)


def cot_prefix() -> str:
    """Self-contained worked examples shown before the question."""
    parts = ["Here are examples of answering a question while keeping a user's earlier preference in mind."]
    for i, (pref, q, reasoning, answer) in enumerate(COT_EXAMPLES, 1):
        parts.append(
            f"Example {i}\nEarlier the user said: {pref}\nLater the user asked: {q}\n"
            f"Reasoning: {reasoning}\nAnswer: {answer}"
        )
    return "\n\n".join(parts)


def cot_suffix() -> str:
    return (
        "Answer my question the same way: first reason briefly about which of my earlier preferences "
        "apply, then give your answer."
    )


@METHODS.register("cot", "five worked examples of reasoning about an earlier preference (few-shot CoT; generation only)")
class FewShotCoTMethod(_SinglePass):
    """Five worked examples of reasoning about an earlier preference before answering."""

    name = "cot"
    tasks = frozenset({"generation"})

    def __init__(self, options: MethodOptions = MethodOptions()) -> None:
        pass

    def prepare(self, ctx: PrefEvalContext) -> Prepared:
        return Prepared(ctx.final.with_method_text(prefix=cot_prefix(), suffix=cot_suffix()))

    def reserve_tokens(self, max_new_tokens: int) -> int:
        return max_new_tokens


def rag_prefix(retrieved: list[Message]) -> str:
    """The retrieved messages, shown before the question."""
    lines = [f"[{m.role}] {m.content}" for m in retrieved]
    return "Earlier messages from our conversation that may be relevant:\n\n" + "\n\n".join(lines)


@METHODS.register("rag", "top-k earlier messages most similar to the question, put before it (history kept)")
class RagMethod(_SinglePass):
    """Retrieve the ``k`` earlier messages most similar to the question and put them before it.

    The filler is the same for every item, so its message vectors are computed once and reused;
    only the preference block is encoded per item. The encoder loads on first use.
    """

    name = "rag"

    def __init__(self, options: MethodOptions = MethodOptions()) -> None:
        self.k = options.rag_k
        self.encoder_name = options.rag_encoder
        self._encoder: Any = None
        self._filler_vecs: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def _get_encoder(self) -> Any:
        with self._lock:
            if self._encoder is None:
                from persona_lab.models.embeddings import open_encoder

                self._encoder = open_encoder(self.encoder_name)
            return self._encoder

    def _filler_vectors(self, ctx: PrefEvalContext) -> np.ndarray:
        enc = self._get_encoder()
        n = len(ctx.filler)
        with self._lock:
            have = self._filler_vecs.get(ctx.filler_sha)
            if have is not None and len(have) >= n:
                return have[:n]
            start = 0 if have is None else len(have)
            new = enc.encode([m.content for m in ctx.filler[start:]])
            vecs = new if have is None else np.concatenate([have, new])
            self._filler_vecs[ctx.filler_sha] = vecs
            return vecs[:n]

    def prepare(self, ctx: PrefEvalContext) -> Prepared:
        from persona_lab.models.embeddings import VectorIndex

        past = ctx.past_messages()
        if not past or self.k <= 0:
            return Prepared(ctx.final, {"retrieved": []})
        enc = self._get_encoder()
        block_vecs = enc.encode([m.content for m in ctx.block]) if ctx.block else None
        filler_vecs = self._filler_vectors(ctx) if ctx.filler else None
        vecs = np.concatenate([v for v in (block_vecs, filler_vecs) if v is not None])
        index = VectorIndex(vecs.shape[1])
        index.add(vecs, list(range(len(past))))
        (hits,) = index.search(enc.encode([ctx.item.question]), self.k)
        retrieved = [past[i] for _, i in hits]
        info = {"retrieved": [{"index": int(i), "score": round(float(s), 4), "role": past[i].role} for s, i in hits]}
        return Prepared(ctx.final.with_method_text(prefix=rag_prefix(retrieved)), info)

    def __getstate__(self) -> dict[str, Any]:
        return {"k": self.k, "encoder_name": self.encoder_name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(MethodOptions(rag_k=state["k"], rag_encoder=state["encoder_name"]))  # type: ignore[misc]
