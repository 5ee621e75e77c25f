"""The one factory every world's simulated user goes through: ``"scripted"``, ``"llm"`` (needs a
model) or an instance passed through, with the same errors everywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from persona_lab.core.errors import ConfigError
from persona_lab.models.base import ChatModel

U = TypeVar("U")
USER_KINDS = ("scripted", "llm")


def build_user(kind: str | U, model: ChatModel | None, *, what: str,
               scripted: Callable[[], U], llm: Callable[[ChatModel], U]) -> U:
    """The simulated user ``kind`` of one world.

    Args:
        kind: ``"scripted"``, ``"llm"`` or a ready user object (returned as is).
        model: the chat model an LLM user talks to.
        what: how errors name this world's user ("editing user", "customer", ...).
        scripted / llm: constructors of the two built-in kinds.
    """
    if not isinstance(kind, str):
        return kind
    if kind == "scripted":
        return scripted()
    if kind == "llm":
        if model is None:
            raise ConfigError(f"the llm {what} needs a model backend",
                              hint="pass --backend hf:<model> or openai:<model>@<url>, or --user scripted")
        return llm(model)
    raise ConfigError(f"unknown {what} {kind!r}", hint=f"use one of {list(USER_KINDS)}")
