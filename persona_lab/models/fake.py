"""A scripted fake ChatModel for unit tests: fixed outputs, a cycle of outputs, or a callable."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence

from persona_lab.models.base import ChatRequest, Completion, Usage
from persona_lab.models.registry import register_backend
from persona_lab.models.tokens import approx_token_count


class FakeChatModel:
    """Answers from a script.

    Args:
        responder: a string (always answered), a list of strings (answered in turn, cycling), or a
            callable ``(request) -> str``.
        name: model name used in the spec (and so in cache keys).
    """

    def __init__(
        self,
        responder: str | Iterable[str] | Callable[[ChatRequest], str] = "ok",
        name: str = "fake",
        context_window: int | None = None,
    ) -> None:
        if isinstance(responder, str):
            text = responder
            self._fn: Callable[[ChatRequest], str] = lambda _r: text
        elif callable(responder):
            self._fn = responder
        else:
            items = list(responder)
            if not items:
                raise ValueError("FakeChatModel needs at least one scripted output")
            state = {"i": 0}

            def cycle(_r: ChatRequest) -> str:
                out = items[state["i"] % len(items)]
                state["i"] += 1
                return out

            self._fn = cycle
        self.name = name
        self.context_window = context_window
        self._lock = threading.Lock()
        self.calls = 0
        self.requests: list[ChatRequest] = []

    @property
    def spec(self) -> str:
        return f"fake:{self.name}"

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        out = []
        with self._lock:
            self.calls += 1
            for r in requests:
                self.requests.append(r)
                text = self._fn(r)
                out.append(
                    Completion(text, Usage(approx_token_count(r.messages), max(1, len(text) // 4), 0.0))
                )
        return out

    def count_tokens(self, messages: Sequence[object]) -> int:
        return approx_token_count(messages)


@register_backend("fake", "fake", "for tests: answers 'ok' (or scripted outputs in code via persona_lab.testing.FakeChatModel)")
def _fake_backend(rest: str) -> FakeChatModel:
    return FakeChatModel("ok", name=rest or "fake")
