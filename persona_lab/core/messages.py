"""Chat messages as small immutable values, so transcripts hash, pickle and compare cleanly."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")


@dataclass(frozen=True, slots=True)
class Message:
    """One chat turn."""

    role: Role
    content: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; expected one of {ROLES}")
        if not isinstance(self.content, str):
            raise TypeError(f"message content must be str, got {type(self.content).__name__}")

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


Transcript = tuple[Message, ...]


def as_messages(items: Iterable[Message | Mapping[str, str]]) -> Transcript:
    """Normalize role/content dicts (the OpenAI and TRL shape) or messages into a transcript."""
    out = []
    for item in items:
        if isinstance(item, Message):
            out.append(item)
        else:
            out.append(Message(role=item["role"], content=item["content"]))  # type: ignore[arg-type]
    return tuple(out)
