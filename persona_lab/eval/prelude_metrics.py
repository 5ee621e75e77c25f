"""PRELUDE metrics beyond cost: preference-inference accuracy and agent expense.

Accuracy of the preference an agent *used* for each round's draft:
- scripted world (exact): the catalog items recognized in the used preference against the true items
  of the document's source (precision and recall), and "correct" when the used item set is closer
  (Jaccard) to its own source's true set than to any other source's;
- free text (LLM agents): correct when the used text is closer, by sentence-embedding cosine, to its
  source's true preference statement than to any other source's (the paper's rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from persona_lab.core.records import TransitionRecord
from persona_lab.simulators import catalog


def _jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def exact_accuracy(records: Sequence[TransitionRecord], truths_by_source: dict[str, set[str]]) -> dict[str, float]:
    """Precision, recall and accuracy of the used catalog items (scripted world)."""
    precision, recall, correct = [], [], []
    for rec in records:
        used = set(catalog.recognize(rec.agent.get("used_preference", "") or ""))
        source = rec.privileged["source"]
        truth = set(rec.privileged["preference_ids"])
        precision.append(len(used & truth) / len(used) if used else 0.0)
        recall.append(len(used & truth) / len(truth) if truth else 1.0)
        own = _jaccard(used, truth)
        others = [_jaccard(used, t) for s, t in truths_by_source.items() if s != source]
        correct.append(float(bool(used) and all(own > o for o in others)))
    n = max(len(records), 1)
    return {"precision": sum(precision) / n, "recall": sum(recall) / n, "accuracy": sum(correct) / n}


def text_accuracy(records: Sequence[TransitionRecord], statements_by_source: dict[str, str], encoder: Any) -> float:
    """The paper's rule on free text, with any :class:`~persona_lab.models.embeddings.Encoder`."""
    sources = sorted(statements_by_source)
    truth_vecs = encoder.encode([statements_by_source[s] for s in sources])
    used = [rec.agent.get("used_preference", "") or "" for rec in records]
    idx = [i for i, u in enumerate(used) if u.strip()]
    if not records:
        return float("nan")
    correct = 0
    if idx:
        vecs = encoder.encode([used[i] for i in idx])
        sims = vecs @ truth_vecs.T
        for row, i in zip(sims, idx):
            own = sources.index(records[i].privileged["source"])
            correct += int(np.argmax(row) == own and np.sum(row == row[own]) == 1)
    return correct / len(records)
