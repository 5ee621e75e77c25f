"""persona-lab: a sandbox for research on personalized LLM assistants.

Importing the package registers the Gymnasium environments (``persona_lab/<Name>-v<N>``) so that
``gymnasium.make`` finds them; everything heavy (torch, transformers, faiss) is imported lazily by
the parts that need it.
"""

from __future__ import annotations

__version__ = "0.1.0"

try:  # environments register themselves on import; the envs package may be absent in partial builds
    from persona_lab import envs as _envs  # noqa: F401
except ImportError as _exc:  # pragma: no cover - only hit while a part is missing
    if "persona_lab.envs" not in str(_exc):
        raise
