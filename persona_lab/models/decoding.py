"""Decoding control per role (``--agent-gen`` / ``--user-gen``) and constrained choices for LLM users.

Agents and simulated users build their own :class:`GenerationParams` (a verdict needs 8 tokens, a
revision 400). A run changes them per role without touching any agent or user: the runner wraps the
role's model in :class:`DecodingOverride`, which rewrites every request's params with the role's
:class:`GenSettings` (temperature, top-p, seed, repetition penalty, a cap on new tokens) before the
response cache sees it, so overridden calls get their own cache keys.

Backend-specific fields (a repetition penalty, vLLM's ``guided_choice``) travel in
``GenerationParams.extra_body`` — the openai backend passes them to the server, the hf backend reads
the two it implements. On a build whose ``GenerationParams`` has no ``extra_body`` field, a repetition
penalty is refused with a ConfigError and constrained choices fall back to free text plus parsing.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from persona_lab.core.errors import ConfigError
from persona_lab.models.base import ChatModel, ChatRequest, Completion, GenerationParams

EXTRA_FIELD = "extra_body"
GUIDED_CHOICE = "guided_choice"  # vLLM's name; the hf backend implements it with a logits constraint
REPETITION_PENALTY = "repetition_penalty"


def has_extra_body() -> bool:
    """Whether this build's GenerationParams carries server extras (``extra_body``)."""
    return EXTRA_FIELD in {f.name for f in dataclasses.fields(GenerationParams)}


def extras(params: GenerationParams) -> dict[str, Any]:
    """The backend extras of ``params`` (empty when there are none or the field does not exist)."""
    return dict(getattr(params, EXTRA_FIELD, None) or {})


def with_extras(params: GenerationParams, **values: Any) -> GenerationParams:
    """``params`` with ``values`` merged into its extras; unchanged when extras are not supported."""
    if not has_extra_body():
        return params
    return dataclasses.replace(params, **{EXTRA_FIELD: {**extras(params), **values}})


@dataclass(frozen=True)
class GenSettings:
    """Decoding settings of one role; ``None`` leaves the caller's own value."""

    temperature: float | None = field(default=None, metadata={"help": "sampling temperature (0 = greedy)"})
    top_p: float | None = field(default=None, metadata={"help": "nucleus mass in (0, 1]"})
    seed: int | None = field(default=None, metadata={"help": "sampling seed (part of the cache key)"})
    repetition_penalty: float | None = field(default=None, metadata={"help": "> 1 discourages repeats (hf; vLLM via extra_body)"})
    max_new_tokens: int | None = field(default=None, metadata={"help": "cap on every call's new tokens (min with the call's own)"})
    guided: bool | None = field(default=None, metadata={"help": "constrained choices: None = where the backend is known to offer them (hf), true = also on an openai server (vLLM), false = never"})

    def __post_init__(self) -> None:
        if self.temperature is not None and self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {self.temperature}", hint="e.g. temperature=0.7")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}", hint="e.g. top_p=0.9")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}", hint="e.g. max_new_tokens=200")
        if self.repetition_penalty is not None:
            if self.repetition_penalty <= 0:
                raise ConfigError(f"repetition_penalty must be > 0, got {self.repetition_penalty}",
                                  hint="e.g. repetition_penalty=1.2")
            if not has_extra_body():
                raise ConfigError("repetition_penalty needs GenerationParams.extra_body, which this build lacks",
                                  hint="update persona-lab, or leave repetition_penalty out")

    @property
    def empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in dataclasses.fields(self))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}

    def apply(self, params: GenerationParams) -> GenerationParams:
        """``params`` with this role's settings."""
        change: dict[str, Any] = {}
        if self.temperature is not None:
            change["temperature"] = self.temperature
        if self.top_p is not None:
            change["top_p"] = self.top_p
        if self.seed is not None:
            change["seed"] = self.seed
        if self.max_new_tokens is not None:
            change["max_new_tokens"] = min(self.max_new_tokens, params.max_new_tokens)
        out = dataclasses.replace(params, **change) if change else params
        if self.repetition_penalty is not None:
            out = with_extras(out, **{REPETITION_PENALTY: self.repetition_penalty})
        if self.guided is False and GUIDED_CHOICE in extras(out):
            kept = {k: v for k, v in extras(out).items() if k != GUIDED_CHOICE}
            out = dataclasses.replace(out, **{EXTRA_FIELD: kept or None})
        return out


def parse_gen(spec: str | Mapping[str, Any] | None) -> GenSettings:
    """``"temperature=0.7,top_p=0.9,seed=1"`` (or a mapping) -> :class:`GenSettings`; ConfigError on a bad key."""
    if spec is None or spec == "":
        return GenSettings()
    if isinstance(spec, Mapping):
        items = dict(spec)
    else:
        items = {}
        for part in str(spec).split(","):
            key, sep, value = part.strip().partition("=")
            if not sep or not key:
                raise ConfigError(f"expected key=value in the decoding spec, got {part!r}",
                                  hint="e.g. --user-gen temperature=0.7,top_p=0.9,seed=1")
            try:
                items[key.strip()] = json.loads(value)
            except json.JSONDecodeError:
                items[key.strip()] = value
    names = [f.name for f in dataclasses.fields(GenSettings)]
    bad = [k for k in items if k not in names]
    if bad:
        raise ConfigError(f"unknown decoding setting(s) {bad}", hint=f"use {names}")
    try:
        return GenSettings(**items)
    except TypeError as exc:  # pragma: no cover - defensive
        raise ConfigError(f"bad decoding spec {spec!r}: {exc}", hint="e.g. temperature=0.7") from None


class DecodingOverride:
    """A ChatModel that rewrites each request's params with one role's :class:`GenSettings`.

    Put it *outside* the response cache so the rewritten params are part of the cache key.
    """

    def __init__(self, model: ChatModel, settings: GenSettings) -> None:
        self.model = model
        self.settings = settings

    @property
    def spec(self) -> str:
        return self.model.spec

    @property
    def guided_decoding(self) -> bool | None:
        return self.settings.guided

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        return self.model.generate([ChatRequest(r.messages, self.settings.apply(r.params)) for r in requests])

    def __getattr__(self, name: str) -> Any:  # count_tokens, context_window, score, meter, ...
        if name in ("model", "settings"):
            raise AttributeError(name)
        return getattr(self.model, name)


def with_gen(model: ChatModel, gen: str | Mapping[str, Any] | GenSettings | None) -> ChatModel:
    """``model`` with a role's decoding overrides (unchanged when there are none)."""
    settings = gen if isinstance(gen, GenSettings) else parse_gen(gen)
    return model if settings.empty else DecodingOverride(model, settings)


def offers_choice(model: ChatModel | None) -> bool:
    """Whether constrained choices are known to work with ``model``: the hf backend implements them;
    an openai server only when the run says so (``guided=true``, e.g. vLLM)."""
    if model is None or not has_extra_body():
        return False
    guided = getattr(model, "guided_decoding", None)
    if guided is not None:
        return bool(guided)
    return str(getattr(model, "spec", "")).startswith("hf:")


def choice_params(params: GenerationParams, choices: Sequence[str], model: ChatModel | None) -> GenerationParams:
    """``params`` restricted to ``choices`` where ``model`` offers it, else unchanged (free text + parsing)."""
    if not offers_choice(model):
        return params
    return with_extras(params, **{GUIDED_CHOICE: list(choices)})
