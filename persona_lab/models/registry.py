"""Backends chosen by spec strings: ``hf:<model>``, ``openai:<model>@<base_url>``, ``fake``, ``scripted``.

``scripted`` is not a language model: it names persona-lab's deterministic scripted world (simulated
users and agent skills built on the verifiable preference catalog), which needs no ChatModel at all.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from persona_lab.core.errors import ConfigError
from persona_lab.core.registry import Registry
from persona_lab.models.base import ChatModel, UsageMeter
from persona_lab.models.cache import CachedChatModel, ResponseCache

SCRIPTED = "scripted"

BACKENDS: Registry[ChatModel] = Registry("backend", "persona-lab ls backends")


@dataclass(frozen=True)
class BackendInfo:
    name: str
    example: str
    help: str


BACKEND_INFO: dict[str, BackendInfo] = {}


def register_backend(name: str, example: str, help: str) -> Callable[[Callable[..., ChatModel]], Callable[..., ChatModel]]:
    """Register a backend factory ``factory(rest_of_spec: str) -> ChatModel``."""
    BACKEND_INFO[name] = BackendInfo(name, example, help)
    return BACKENDS.register(name, help)


def split_spec(spec: str) -> tuple[str, str]:
    """``"hf:foo"`` -> ``("hf", "foo")``; ``"fake"`` -> ``("fake", "")``."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError("empty backend spec", hint="use e.g. `scripted`, `hf:smollm2-135m` or `openai:<model>@<url>`")
    name, _, rest = spec.strip().partition(":")
    return name, rest


def is_scripted(spec: str | None) -> bool:
    return spec is None or spec.strip() == SCRIPTED


def create_backend(spec: str) -> ChatModel:
    """The raw backend for ``spec`` (no cache, no meter). Loads nothing until first use where possible."""
    _ensure_builtin_backends()
    name, rest = split_spec(spec)
    if name == SCRIPTED:
        raise ConfigError(
            "`scripted` is not a language model backend",
            hint="the scripted world needs no ChatModel; pass a spec like `hf:smollm2-135m` where a model is needed",
        )
    return BACKENDS.get(name)(rest)


def open_chat_model(
    spec: str,
    *,
    cache: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    meter: UsageMeter | None = None,
) -> CachedChatModel:
    """The chat model for ``spec``, wrapped with the response cache (unless ``cache=False``) and a meter."""
    backend = create_backend(spec)
    store = ResponseCache(Path(cache_dir) if cache_dir else None) if cache else None
    return CachedChatModel(backend, store, meter)


def resolve_chat_model(model: ChatModel | str | None) -> ChatModel | None:
    """A ChatModel from what a user passed: a spec string is opened (with the response cache), an
    instance or ``None`` passes through. Envs call it lazily, at first use, never in a constructor."""
    if isinstance(model, str):
        return open_chat_model(model)
    return model


_loaded = False
_load_lock = threading.Lock()


def _ensure_builtin_backends() -> None:
    """Import the modules that register the built-in backends (lazily: they import heavy libraries
    only when a model is actually created). Safe when several threads open models at once."""
    global _loaded
    if _loaded:
        return
    with _load_lock:
        if _loaded:
            return
        import persona_lab.models.fake  # noqa: F401
        import persona_lab.models.hf  # noqa: F401
        import persona_lab.models.openai_compat  # noqa: F401

        _loaded = True


def backend_table() -> list[BackendInfo]:
    _ensure_builtin_backends()
    rows = [BackendInfo(SCRIPTED, SCRIPTED, "deterministic scripted world: simulated users and agent skills from the verifiable preference catalog; no model, instant, judge-free (default)")]
    return rows + [BACKEND_INFO[n] for n in sorted(BACKEND_INFO)]
