"""The long conversation of one PrefEval test: system prompt, preference block, filler, question.

Layout (as in the paper): system prompt -> preference block -> the first N (user, assistant) pairs
of an item-independent filler -> the final user message (the question plus a length instruction).
"Turns" in the paper's plots count N + 2 (the preference exchange and the question).

The explicit form's block is the preference turn followed by *the tested model's own reply* to it,
so each backend sees its own words; the runner generates that reply once per item and backend (the
response cache makes reruns free) and passes it in here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from persona_lab.core.errors import ConfigError
from persona_lab.core.messages import Message, Transcript
from persona_lab.core.seeding import stable_hash
from persona_lab.simulators.prefeval.data import Filler, PrefEvalItem, normalize_form

DEFAULT_TURNS: tuple[int, ...] = (0, 3, 8, 28, 68, 298)
"""Filler pairs N per test; the paper's turn counts N + 2 = 2, 5, 10, 30, 70, 300."""

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."


def length_instruction(words: int) -> str:
    """The instruction appended to every question (the paper caps answers at 300 words)."""
    return f"Please answer in no more than {words} words." if words > 0 else ""


@dataclass(frozen=True)
class ContextConfig:
    """How the conversation around the question is laid out."""

    system_prompt: str = field(default=DEFAULT_SYSTEM_PROMPT, metadata={"help": "First message; empty string for none."})
    answer_words: int = field(default=300, metadata={"help": "Word cap in the length instruction; 0 for none."})


LAYOUTS: tuple[str, ...] = ("persona-lab", "paper")


@dataclass(frozen=True)
class FinalUserMessage:
    """The last user turn split into parts, so a method's added text stays separable from the question.

    ``layout="persona-lab"``: ``text`` = prefix, "question instruction", suffix, joined by blank lines.
    ``layout="paper"``: ``text`` = prefix + question + suffix + instruction, concatenated as the
    original PrefEval code does (its texts carry their own spacing; the word cap comes last).
    """

    question: str
    instruction: str = ""
    prefix: str = ""
    suffix: str = ""
    layout: str = "persona-lab"

    @property
    def text(self) -> str:
        if self.layout == "paper":
            return f"{self.prefix}{self.question}{self.suffix}{self.instruction}"
        core = self.question if not self.instruction else f"{self.question} {self.instruction}"
        return "\n\n".join(p for p in (self.prefix, core, self.suffix) if p)

    def with_method_text(self, *, prefix: str = "", suffix: str = "") -> FinalUserMessage:
        sep = "" if self.layout == "paper" else "\n\n"
        join = lambda a, b: sep.join(p for p in (a, b) if p)  # noqa: E731
        return FinalUserMessage(
            self.question, self.instruction, join(prefix, self.prefix), join(self.suffix, suffix), self.layout
        )

    def without_method_text(self) -> FinalUserMessage:
        return FinalUserMessage(self.question, self.instruction, layout=self.layout)

    def to_dict(self) -> dict[str, str]:
        return {"prefix": self.prefix, "question": self.question, "instruction": self.instruction, "suffix": self.suffix,
                "layout": self.layout}

    @classmethod
    def from_dict(cls, d: dict[str, str]) -> FinalUserMessage:
        return cls(d["question"], d.get("instruction", ""), d.get("prefix", ""), d.get("suffix", ""),
                   d.get("layout", "persona-lab"))


QUESTION_ONLY = "question-only"
"""The no-context control: the question alone, with no preference and no filler. For
classification it measures how often the preferred option wins without any preference."""


def preference_block(item: PrefEvalItem, form: str, explicit_reply: str | None = None) -> Transcript:
    """The messages that reveal the preference in ``form`` (none for the question-only control).

    Args:
        item: the test item.
        form: ``explicit``, ``implicit-choice``, ``implicit-persona`` or ``question-only``.
        explicit_reply: the tested model's reply to the stated preference (explicit form only).
    """
    if form == QUESTION_ONLY:
        return ()
    form = normalize_form(form)
    if form == "explicit":
        if item.explicit is None:
            raise ConfigError(f"item {item.item_id} has no explicit form")
        if explicit_reply is None:
            raise ConfigError("the explicit form needs the model's own reply to the preference turn")
        return (Message("user", item.explicit.preference), Message("assistant", explicit_reply))
    if form == "implicit-choice":
        c = item.choice
        if c is None:
            raise ConfigError(f"item {item.item_id} has no implicit-choice form")
        return (
            Message("user", c.query),
            Message("assistant", c.assistant_options),
            Message("user", c.user_selection),
            Message("assistant", c.assistant_acknowledgment),
        )
    p = item.persona
    if p is None:
        raise ConfigError(f"item {item.item_id} has no implicit-persona form")
    out: list[Message] = []
    for u, a in p.turns:
        out += [Message("user", u), Message("assistant", a)]
    return tuple(out)


def explicit_reply_request(item: PrefEvalItem, config: ContextConfig) -> Transcript:
    """The conversation whose completion is the model's own reply to the stated preference."""
    if item.explicit is None:
        raise ConfigError(f"item {item.item_id} has no explicit form")
    system = (Message("system", config.system_prompt),) if config.system_prompt else ()
    return (*system, Message("user", item.explicit.preference))


@dataclass(frozen=True)
class PrefEvalContext:
    """The history before the final user turn, and that turn, for one (item, form, N)."""

    item: PrefEvalItem
    form: str
    n_pairs: int
    system: tuple[Message, ...]
    block: Transcript
    filler: Transcript
    final: FinalUserMessage
    filler_sha: str = ""

    @property
    def turns(self) -> int:
        """The paper's turn count, N + 2."""
        return self.n_pairs + 2

    @property
    def history(self) -> Transcript:
        return (*self.system, *self.block, *self.filler)

    def messages(self, final: FinalUserMessage | None = None) -> Transcript:
        """The full request: history plus the final user turn (``final`` overrides the default one)."""
        return (*self.history, Message("user", (final or self.final).text))

    def past_messages(self) -> Transcript:
        """Preference block and filler (no system prompt): what retrieval may pick from."""
        return (*self.block, *self.filler)


def build_context(
    item: PrefEvalItem,
    form: str,
    n_pairs: int,
    filler: Filler,
    *,
    config: ContextConfig = ContextConfig(),
    explicit_reply: str | None = None,
    question: FinalUserMessage | None = None,
) -> PrefEvalContext:
    """Lay out one test conversation.

    Args:
        item: the preference/question item.
        form: how the preference is revealed.
        n_pairs: filler pairs N between preference and question (turns = N + 2).
        filler: the filler conversation pairs.
        config: system prompt and length instruction.
        explicit_reply: the model's own reply to the stated preference (explicit form).
        question: the final user message; default: the item's question with the length instruction.
    """
    if n_pairs < 0:
        raise ConfigError(f"filler pairs must be >= 0, got {n_pairs}")
    if form == QUESTION_ONLY and n_pairs:
        raise ConfigError(f"the {QUESTION_ONLY} control has no context; got {n_pairs} filler pairs")
    form = form if form == QUESTION_ONLY else normalize_form(form)
    system = (Message("system", config.system_prompt),) if config.system_prompt else ()
    final = question or FinalUserMessage(item.question, length_instruction(config.answer_words))
    return PrefEvalContext(
        item=item,
        form=form,
        n_pairs=n_pairs,
        system=system,
        block=preference_block(item, form, explicit_reply),
        filler=filler.messages(n_pairs),
        final=final,
        filler_sha=filler.sha,
    )


def count_tokens(model: object, messages: Sequence[Message]) -> int:
    """Prompt tokens of ``messages`` with the backend's own tokenizer when it has one."""
    counter = getattr(model, "count_tokens", None)
    if counter is None:
        from persona_lab.models.tokens import approx_token_count

        return approx_token_count(messages)
    return int(counter(messages))


def context_window(model: object) -> int | None:
    """The backend's context window in tokens, or None when it does not say."""
    value = getattr(model, "context_window", None)
    return int(value) if isinstance(value, int) and value > 0 else None


def prompt_sha(messages: Sequence[Message]) -> str:
    """A short hash of the exact messages sent (recorded so reconstructions can be checked)."""
    return stable_hash([m.to_dict() for m in messages], length=16)


def render_conversation(messages: Sequence[dict[str, str]]) -> str:
    """Messages as plain text, one ``[role]`` header per message (PrefEval-v0's observation)."""
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)


_HEADER = re.compile(r"(?:^|\n\n)\[(system|user|assistant)\]\n")


def parse_conversation(text: str) -> list[dict[str, str]]:
    """The messages of a :func:`render_conversation` text (so an agent can send them to a chat model)."""
    heads = list(_HEADER.finditer(text))
    return [{"role": h.group(1), "content": text[h.end(): heads[i + 1].start() if i + 1 < len(heads) else len(text)]}
            for i, h in enumerate(heads)]


def request_messages(
    record: dict[str, Any], filler: Filler, *, with_method_text: bool = True, include_steps: bool = True
) -> list[dict[str, str]]:
    """Rebuild the role/content messages of a record's final request (checked against ``prompt_sha``
    when nothing is dropped).

    Args:
        record: one ``items.jsonl`` record of a ``persona-lab prefeval`` run.
        filler: the filler named by ``record["context"]["filler_sha"]``.
        with_method_text: keep the method's prefix/suffix around the question.
        include_steps: append the later turns (self-critic) so the result is what produced ``response``.
    """
    ctx = record["context"]
    if ctx["filler_sha"] != filler.sha:
        raise ConfigError(
            f"record {record['key']} used filler {ctx['filler_sha']}, not {filler.sha} ({filler.path})",
            hint=f"load the filler the run used: {ctx['filler_file']}",
        )
    final = FinalUserMessage.from_dict(record["final_user"])
    if not with_method_text:
        final = final.without_method_text()
    system = [Message("system", ctx["system"])] if ctx["system"] else []
    block = [Message(m["role"], m["content"]) for m in ctx["preference_block"]]
    msgs = [*system, *block, *filler.messages(ctx["filler_pairs"]), Message("user", final.text)]
    if with_method_text and prompt_sha(msgs) != record["prompt_sha"]:
        raise ConfigError(f"record {record['key']}: rebuilt messages do not match its prompt_sha")
    out = [m.to_dict() for m in msgs]
    if include_steps:
        out += [{"role": s["role"], "content": s["content"]} for s in record.get("steps", [])]
    return out
