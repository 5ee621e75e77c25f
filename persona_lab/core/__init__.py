"""Shared foundations: messages, errors, registries, seeding and atomic file IO."""

from persona_lab.core.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigError,
    DataError,
    PersonaLabError,
    UnknownNameError,
)
from persona_lab.core.io import (
    append_jsonl,
    atomic_write_json,
    atomic_write_text,
    read_jsonl,
    repair_jsonl,
)
from persona_lab.core.messages import Message, Transcript, as_messages
from persona_lab.core.registry import Registry
from persona_lab.core.seeding import derive_seed, make_rng, stable_hash

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "ConfigError",
    "DataError",
    "Message",
    "PersonaLabError",
    "Registry",
    "Transcript",
    "UnknownNameError",
    "append_jsonl",
    "as_messages",
    "atomic_write_json",
    "atomic_write_text",
    "derive_seed",
    "make_rng",
    "read_jsonl",
    "repair_jsonl",
    "stable_hash",
]
