"""The ChatModel seam: batched, thread-safe text generation with per-call usage.

Every backend (local transformers, any OpenAI-compatible server, fakes) implements
:class:`ChatModel`. Callers hand over a *batch* of requests so backends can sort, batch and cache;
callers in several threads may call ``generate`` at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from persona_lab.core.messages import Message, Transcript, as_messages


@dataclass(frozen=True)
class GenerationParams:
    """Decoding settings. Greedy by default so that runs are reproducible."""

    max_new_tokens: int = field(default=256, metadata={"help": "Upper bound on generated tokens."})
    temperature: float = field(default=0.0, metadata={"help": "0 means greedy decoding."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass (sampling only)."})
    seed: int | None = field(default=None, metadata={"help": "Sampling seed; part of the cache key."})
    stop: tuple[str, ...] = field(default=(), metadata={"help": "Strings that end generation."})
    extra_body: Mapping[str, Any] | None = field(
        default=None,
        compare=False,
        metadata={"help": "Server-specific request fields passed through by the openai backend (vLLM "
                  "guided_json, response_format, repetition_penalty...); part of the cache key; other "
                  "backends ignore them."},
    )

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GenerationParams):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.max_new_tokens, self.temperature, self.top_p, self.seed, self.stop,
                     json.dumps(self.extra_body, sort_keys=True) if self.extra_body else None))

    def to_dict(self) -> dict[str, Any]:
        # Built by hand: dataclasses.asdict deep-copies and cost a third of a cache key.
        d: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature,
                             "top_p": self.top_p, "seed": self.seed, "stop": list(self.stop)}
        if self.extra_body:  # absent otherwise, so keys of requests without extras stay as they were
            d["extra_body"] = json.loads(json.dumps(self.extra_body, sort_keys=True))
        return d


@dataclass(frozen=True)
class ChatRequest:
    """One conversation to continue with an assistant turn."""

    messages: Transcript
    params: GenerationParams = GenerationParams()

    @classmethod
    def of(
        cls,
        messages: Sequence[Message | Mapping[str, str]] | str,
        params: GenerationParams | None = None,
        **param_kwargs: Any,
    ) -> ChatRequest:
        """Build a request from a prompt string or role/content dicts."""
        if isinstance(messages, str):
            msgs: Transcript = (Message("user", messages),)
        else:
            msgs = as_messages(messages)
        if params is None:
            params = GenerationParams(**param_kwargs)
        elif param_kwargs:
            raise TypeError("pass either params or keyword parameters, not both")
        return cls(msgs, params)

    def key_payload(self) -> dict[str, Any]:
        return {"messages": [m.to_dict() for m in self.messages], "params": self.params.to_dict()}


@dataclass(frozen=True)
class Usage:
    """What one completion cost."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cache_hit: bool = False


@dataclass(frozen=True)
class Completion:
    """A generated assistant turn and its usage."""

    text: str
    usage: Usage = Usage()
    finish_reason: str = "stop"


@runtime_checkable
class ChatModel(Protocol):
    """Batched chat completion. Implementations must be safe to call from several threads."""

    @property
    def spec(self) -> str:
        """The spec string that identifies backend and model (part of every cache key)."""
        ...

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """Complete each request; the result has the same length and order."""
        ...


@runtime_checkable
class TokenCounter(Protocol):
    """Backends that know their tokenizer and context window (used by long-context tests)."""

    context_window: int | None

    def count_tokens(self, messages: Sequence[Message]) -> int: ...


@dataclass(frozen=True)
class ScoreRequest:
    """Log-likelihood of ``continuation`` as the next message after ``messages``."""

    messages: Transcript
    continuation: Message


@runtime_checkable
class Scorer(Protocol):
    """Backends that expose token log-probabilities (e.g. for follow-up likelihood rewards)."""

    def score(self, requests: Sequence[ScoreRequest]) -> list[float]:
        """Mean per-token log-probability of each continuation."""
        ...


class UsageMeter:
    """Thread-safe per-run totals of model usage, shared by every part of a run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0
        self.cache_hits = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.backend_seconds = 0.0
        self.errors = 0

    def record(self, usage: Usage) -> None:
        with self._lock:
            if usage.cache_hit:
                self.cache_hits += 1
            else:
                self.calls += 1
                self.backend_seconds += usage.latency_s
            self.prompt_tokens += usage.prompt_tokens
            self.completion_tokens += usage.completion_tokens

    def record_error(self) -> None:
        with self._lock:
            self.errors += 1

    def snapshot(self) -> dict[str, float | int]:
        with self._lock:
            return {
                "calls": self.calls,
                "cache_hits": self.cache_hits,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "backend_seconds": round(self.backend_seconds, 6),
                "errors": self.errors,
            }

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


class Timer:
    """Context manager measuring wall seconds (``perf_counter``)."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
