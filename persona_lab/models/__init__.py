"""Language-model backends behind the :class:`ChatModel` seam, the response cache and usage accounting."""

from persona_lab.models.base import (
    ChatModel,
    ChatRequest,
    Completion,
    GenerationParams,
    Scorer,
    ScoreRequest,
    TokenCounter,
    Usage,
    UsageMeter,
)
from persona_lab.models.cache import CachedChatModel, ResponseCache, default_cache_dir, request_key
from persona_lab.models.registry import (
    SCRIPTED,
    backend_table,
    create_backend,
    is_scripted,
    open_chat_model,
    register_backend,
    resolve_chat_model,
    split_spec,
)

__all__ = [
    "SCRIPTED",
    "CachedChatModel",
    "ChatModel",
    "ChatRequest",
    "Completion",
    "GenerationParams",
    "ResponseCache",
    "ScoreRequest",
    "Scorer",
    "TokenCounter",
    "Usage",
    "UsageMeter",
    "backend_table",
    "create_backend",
    "default_cache_dir",
    "is_scripted",
    "open_chat_model",
    "register_backend",
    "request_key",
    "resolve_chat_model",
    "split_spec",
]
