"""FLR: follow-up likelihood as reward.

The reward of an answer is how likely a scorer LM finds the *positive* follow-ups of
:data:`~persona_lab.simulators.followup.FOLLOWUPS` as the user's next turn, minus how likely it finds
the *negative* ones: ``mean(log p(positive follow-up | conversation, answer)) - mean(log p(negative
... ))``, each ``log p`` being the mean per-token log-probability of the follow-up (what
``Scorer.score`` returns). No judge is prompted; the scorer only reads.

Batching: all 120 follow-ups of one answer go to the scorer in one ``score`` call, and
:func:`flr_batch` puts several answers into that one call too, so a backend can fill its batches.

This module imports only ``core``, ``models`` and the follow-up lists, so the follow-up env may use it
(lazily) without depending on the rest of ``eval``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from persona_lab.core.errors import BackendUnavailableError, ConfigError
from persona_lab.core.messages import Message, as_messages
from persona_lab.models.base import Scorer, ScoreRequest
from persona_lab.simulators.followup import DIMENSIONS, NEGATIVE, POSITIVE, followup_list

_NO_SCORE_HINT = (
    "FLR needs token log-probabilities: use a local transformers scorer (`scorer=hf:smollm2-135m`) or a "
    "server that returns them (`scorer=openai:<model>@<url>`; vLLM, llama.cpp)"
)


@dataclass(frozen=True)
class FLRResult:
    """FLR of one answer.

    Attributes:
        flr: mean positive minus mean negative log-likelihood (higher is better).
        positive: mean log-likelihood of the positive follow-ups.
        negative: mean log-likelihood of the negative follow-ups.
        by_dimension: the same difference within each dimension.
    """

    flr: float
    positive: float
    negative: float
    by_dimension: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"flr": self.flr, "positive": self.positive, "negative": self.negative,
                "by_dimension": dict(self.by_dimension)}


def as_scorer(scorer: Any) -> Scorer:
    """A scorer from a model object or spec string (``hf:<folder or packaged name>`` or ``openai:<model>@<url>``).

    Raises BackendUnavailableError (with a hint) for a backend that cannot score; a cached model
    whose backend cannot score is caught here already, before any request is built.
    """
    if scorer is None:
        raise ConfigError("FLR needs a scorer", hint=_NO_SCORE_HINT)
    if isinstance(scorer, str):
        scorer = _open(scorer)
    inner = getattr(scorer, "backend", scorer)  # CachedChatModel wraps the real backend
    if not callable(getattr(scorer, "score", None)) or not callable(getattr(inner, "score", None)):
        spec = getattr(scorer, "spec", type(scorer).__name__)
        raise BackendUnavailableError(f"backend {spec} cannot score text (no token log-probabilities)",
                                      hint=_NO_SCORE_HINT)
    return scorer


# Scorers opened from spec strings, shared by every env of the process: a run makes one env per episode,
# and each must not load its own copy of the model (the runner shares chat backends the same way).
_OPENED: dict[str, Any] = {}
_OPEN_LOCK = threading.Lock()


def _open(spec: str) -> Any:
    from persona_lab.models import open_chat_model

    with _OPEN_LOCK:
        if spec not in _OPENED:
            _OPENED[spec] = open_chat_model(spec, cache=False)
        return _OPENED[spec]


def flr_requests(conversation: Sequence[Message | dict[str, str]], answer: str | None = None) -> list[ScoreRequest]:
    """The 120 score requests of one answer, in :func:`followup_list` order.

    Args:
        conversation: the chat before the follow-up. With ``answer`` it ends with the user's
            request and the answer is appended as the assistant turn; without, it must already end
            with the assistant's answer.
    """
    msgs = as_messages(conversation)
    if answer is not None:
        msgs = (*msgs, Message("assistant", answer))
    if not msgs or msgs[-1].role != "assistant":
        raise ConfigError("FLR scores follow-ups to an answer: the conversation must end with the assistant turn",
                          hint="pass the answer as `answer=` or append it to the conversation")
    return [ScoreRequest(msgs, Message("user", text)) for _, _, text in followup_list()]


def _reduce(scores: Sequence[float]) -> FLRResult:
    items = followup_list()
    sums = {(d, lab): [0.0, 0] for d in DIMENSIONS for lab in (POSITIVE, NEGATIVE)}
    for (dim, lab, _), s in zip(items, scores, strict=True):
        cell = sums[(dim, lab)]
        cell[0] += float(s)
        cell[1] += 1

    def mean(label: str, dims: Sequence[str]) -> float:
        total = sum(sums[(d, label)][0] for d in dims)
        count = sum(sums[(d, label)][1] for d in dims)
        return total / count

    pos, neg = mean(POSITIVE, DIMENSIONS), mean(NEGATIVE, DIMENSIONS)
    by_dim = {d: mean(POSITIVE, [d]) - mean(NEGATIVE, [d]) for d in DIMENSIONS}
    return FLRResult(pos - neg, pos, neg, by_dim)


def flr_batch(scorer: Any, conversations: Sequence[Sequence[Message | dict[str, str]]]) -> list[FLRResult]:
    """FLR of several answers with ONE ``score`` call (120 requests per answer).

    Args:
        scorer: a Scorer (e.g. ``hf:`` backend, possibly cached) or a spec string.
        conversations: each ends with the answer to score as its assistant turn.
    """
    scorer = as_scorer(scorer)
    requests = [r for conv in conversations for r in flr_requests(conv)]
    if not requests:
        return []
    scores = scorer.score(requests)
    if len(scores) != len(requests):
        raise BackendUnavailableError(f"scorer returned {len(scores)} scores for {len(requests)} requests",
                                      hint="the backend's score() must return one value per request")
    n = len(followup_list())
    return [_reduce(scores[i : i + n]) for i in range(0, len(scores), n)]


def follow_up_likelihood_reward(scorer: Any, conversation: Sequence[Message | dict[str, str]],
                                answer: str | None = None) -> FLRResult:
    """FLR of one answer (see :func:`flr_requests` for ``conversation`` and ``answer``)."""
    msgs = as_messages(conversation)
    if answer is not None:
        msgs = (*msgs, Message("assistant", answer))
    return flr_batch(scorer, [msgs])[0]
