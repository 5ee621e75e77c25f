"""Deterministic agent *skills* for the scripted world, so every agent runs without a model.

They mirror what an LLM agent does, and they infer rather than peek:
- ``respond``: a plain draft of the document, then the catalog editors of the preferences it can
  recognize in a free-text preference description;
- ``infer``: compare catalog checkers on the draft and the user's edit to name what the edit
  introduced (plus what the agent applied and the user kept);
- ``aggregate``: vote over several descriptions.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache

from persona_lab.simulators import catalog

_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


def sentences(text: str) -> list[str]:
    """Split prose (or note lines) into sentences."""
    out: list[str] = []
    for line in text.splitlines():
        line = _BULLET.sub("", line).strip()
        if not line:
            continue
        out.extend(s.strip() for s in _SENT.split(line) if s.strip())
    return out


def _as_sentence(s: str) -> str:
    s = s.strip()
    return s if s[-1:] in ".!?" else s + "."


@lru_cache(maxsize=4096)
def base_draft(task: str, document: str, n_sentences: int = 3) -> str:
    """What an assistant writes with no knowledge of the user: the lead sentences, plainly framed."""
    lead = " ".join(_as_sentence(s) for s in sentences(document)[:n_sentences]) or document.strip()
    if task == "email":
        return f"Hello,\n\n{lead}\n\nBest regards"
    return lead


def respond(task: str, document: str, preference: str | None = None) -> str:
    """A draft that follows the catalog preferences recognized in ``preference``."""
    draft = base_draft(task, document)
    ids = catalog.recognize(preference) if preference else []
    return catalog.apply_preferences(draft, ids) if ids else draft


def infer(draft: str, edited: str, applied: Iterable[str] = ()) -> list[str]:
    """Catalog items the user's edit introduced, plus the applied items the user kept.

    An edit that adds bullets also shortens sentences as a side effect; to name the user's intent
    rather than every side effect, introduced items that the *other* introduced items' editors
    already produce are dropped (a minimal explanation, tried from the least salient item up).
    """
    before = catalog.satisfied(draft, list(catalog.CATALOG))
    after = catalog.satisfied(edited, list(catalog.CATALOG))
    introduced = [pid for pid in catalog.CATALOG if after[pid] and not before[pid]]
    kept = [pid for pid in applied if after.get(pid, False)]
    return _compatible_subset(_minimal(draft, introduced) + [k for k in kept if k not in introduced])


def _minimal(draft: str, ids: list[str]) -> list[str]:
    keep = sorted(ids, key=lambda p: (-catalog.CATALOG[p].salience, p))
    for pid in reversed(list(keep)):
        rest = [p for p in keep if p != pid]
        if rest and catalog.compatible(rest) and catalog.satisfied(catalog.apply_preferences(draft, rest), [pid])[pid]:
            keep = rest
    return keep


def infer_description(draft: str, edited: str, applied: Iterable[str] = ()) -> str:
    ids = infer(draft, edited, applied)
    return catalog.describe(ids) if ids else ""


def aggregate(descriptions: Sequence[str], min_share: float = 0.3) -> str:
    """Vote: keep items named by at least ``min_share`` of the descriptions, resolving conflicts by votes."""
    named = [catalog.recognize(d) for d in descriptions if d]
    if not named:
        return ""
    votes = Counter(pid for ids in named for pid in ids)
    need = max(1.0, min_share * len(named))
    ranked = sorted((pid for pid, v in votes.items() if v >= need), key=lambda p: (-votes[p], p))
    ids = _compatible_subset(ranked)
    return catalog.describe(ids) if ids else ""


def _compatible_subset(ids: Sequence[str]) -> list[str]:
    """Greedily keep ids (in the given priority order) that do not conflict with those kept."""
    kept: list[str] = []
    for pid in ids:
        if catalog.compatible([*kept, pid]):
            kept.append(pid)
    return catalog.canonical_order(kept)
