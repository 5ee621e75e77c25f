"""Name -> factory registries with "did you mean" errors (lm-eval style)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from persona_lab.core.errors import UnknownNameError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    factory: Callable[..., T]
    help: str


class Registry(Generic[T]):
    """A small registry of named factories.

    Args:
        kind: what the entries are ("agent", "backend", ...), used in error messages.
        list_command: the CLI command that lists the entries, named in error hints.
    """

    def __init__(self, kind: str, list_command: str | None = None) -> None:
        self.kind = kind
        self.list_command = list_command
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, help: str = "") -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering ``factory`` under ``name``."""

        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            self.add(name, factory, help)
            return factory

        return deco

    def add(self, name: str, factory: Callable[..., T], help: str = "") -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = Entry(name, factory, help or (factory.__doc__ or "").strip().split("\n")[0])

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name), hint=self._hint()) from None

    def get(self, name: str) -> Callable[..., T]:
        return self.entry(name).factory

    def create(self, name: str, /, **kwargs: object) -> T:
        return self.get(name)(**kwargs)

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._entries), n=1, cutoff=0.5)
        msg = f"unknown {self.kind} {name!r}"
        if close:
            msg += f"; did you mean {close[0]!r}?"
        return msg

    def _hint(self) -> str:
        known = ", ".join(sorted(self._entries)) or "(none registered)"
        if self.list_command:
            return f"`{self.list_command}` lists them: {known}"
        return f"known: {known}"

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
