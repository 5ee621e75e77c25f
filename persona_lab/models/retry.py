"""The one retry helper every backend client uses: exponential backoff with jitter.

Clients decide *what* is worth retrying (``is_retryable``) and may pass a server-requested wait
(``retry_after``, e.g. an HTTP ``Retry-After`` header); this module decides *when*. Keeping the loop
in one place means one policy to tune and one place to test (STYLE.md: no retry loop per client).
Jitter comes from a local :class:`random.Random`, never the global RNG, so seeding elsewhere is
untouched and concurrent clients do not retry in lockstep.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from persona_lab.core.errors import ConfigError

T = TypeVar("T")

Jitter = Literal["full", "decorrelated", "none"]
JITTERS: tuple[str, ...] = ("full", "decorrelated", "none")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a failing call."""

    max_attempts: int = field(
        default=5, metadata={"help": "Total tries including the first; 1 disables retrying."}
    )
    base_delay_s: float = field(
        default=0.5, metadata={"help": "Backoff before the second try; doubles with each further try."}
    )
    max_delay_s: float = field(
        default=20.0, metadata={"help": "Cap on one computed backoff delay (seconds)."}
    )
    jitter: Jitter = field(
        default="full",
        metadata={
            "help": "'full': uniform in [0, backoff]; 'decorrelated': uniform in [base, 3 x previous "
            "delay]; 'none': the exact exponential backoff (for tests and debugging)."
        },
    )
    max_server_delay_s: float = field(
        default=60.0,
        metadata={
            "help": "Cap on a wait the server asks for (HTTP Retry-After), so one header cannot stall a run."
        },
    )

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(
                f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}",
                hint="use 1 to disable retrying",
            )
        for name in ("base_delay_s", "max_delay_s", "max_server_delay_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"RetryPolicy.{name} must be >= 0, got {getattr(self, name)}")
        if self.jitter not in JITTERS:
            raise ConfigError(f"unknown RetryPolicy.jitter {self.jitter!r}", hint=f"use one of {JITTERS}")

    def backoff_s(self, retry: int, previous_s: float, rng: random.Random) -> float:
        """The delay before retry number ``retry`` (1 = the first retry).

        Args:
            retry: how many retries this one makes, counting from 1.
            previous_s: the delay used before the previous retry (decorrelated jitter grows from it).
            rng: the source of jitter.
        """
        exp = min(self.max_delay_s, self.base_delay_s * (2.0 ** (retry - 1)))
        if self.jitter == "none":
            return exp
        if self.jitter == "full":
            return rng.uniform(0.0, exp)
        upper = max(self.base_delay_s, 3.0 * previous_s)
        return min(self.max_delay_s, rng.uniform(self.base_delay_s, upper))


@dataclass(frozen=True)
class RetryEvent:
    """What ``on_retry`` is told before each wait."""

    attempt: int  # the attempt that just failed, counting from 1
    max_attempts: int
    error: BaseException
    delay_s: float


def fault_kind(exc: BaseException) -> str:
    """A short name for a failed attempt: ``429``, ``5xx``, ``http 4xx`` codes, or the client's own
    ``kind`` (``timeout``, ``connection``, ``malformed``), else the exception type."""
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return "429" if status == 429 else "5xx" if status >= 500 else f"http {status}"
    kind = getattr(exc, "kind", None)
    return str(kind) if kind else type(exc).__name__


class FaultCounter:
    """Thread-safe tally of failed attempts a backend saw, for run summaries: faults by kind, retries
    made, give-ups (a retryable fault that outlasted the attempts) and permanent faults (not retried)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_kind: Counter[str] = Counter()
        self.retries = 0
        self.give_ups = 0
        self.permanent = 0

    def record(self, kind: str, outcome: str) -> None:
        """``outcome``: ``retry``, ``give_up`` or ``permanent``."""
        with self._lock:
            self.by_kind[kind] += 1
            if outcome == "retry":
                self.retries += 1
            elif outcome == "give_up":
                self.give_ups += 1
            else:
                self.permanent += 1

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {"faults": sum(self.by_kind.values()), "by_kind": dict(self.by_kind), "retries": self.retries,
                    "give_ups": self.give_ups, "permanent": self.permanent}


def call_with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy,
    *,
    is_retryable: Callable[[BaseException], bool],
    on_retry: Callable[[RetryEvent], None] | None = None,
    retry_after: Callable[[BaseException], float | None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    faults: FaultCounter | None = None,
) -> T:
    """Call ``fn()`` until it returns, retrying failures that ``is_retryable`` accepts.

    The last exception is re-raised unchanged when it is not retryable or the attempts are spent;
    callers that need the attempt count keep it themselves (``fn`` is theirs) or read it from
    ``on_retry``.

    Args:
        fn: the call; takes no arguments (close over what it needs).
        policy: attempt budget and backoff.
        is_retryable: ``True`` for failures that another try may fix (timeouts, 429, 5xx).
        on_retry: called before each wait, e.g. to log it.
        retry_after: a server-requested wait for this failure, or ``None``; the wait used is the
            larger of it (capped at ``policy.max_server_delay_s``) and the computed backoff.
        sleep: how to wait; tests pass a no-op.
        rng: the jitter source; a fresh local ``random.Random()`` when omitted.
        faults: where to count each failed attempt (kind from :func:`fault_kind`) and its outcome.
    """
    rng = rng if rng is not None else random.Random()
    previous = policy.base_delay_s
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:
            if attempt >= policy.max_attempts or not is_retryable(exc):
                if faults is not None:
                    # a fault the client marks retryable (or one already retried) ran out of attempts
                    retryable = getattr(exc, "retryable", attempt > 1)
                    faults.record(fault_kind(exc), "give_up" if retryable else "permanent")
                raise
            if faults is not None:
                faults.record(fault_kind(exc), "retry")
            delay = policy.backoff_s(attempt, previous, rng)
            previous = delay
            if retry_after is not None:
                asked = retry_after(exc)
                if asked is not None and asked > 0:
                    delay = max(delay, min(asked, policy.max_server_delay_s))
            if on_retry is not None:
                on_retry(RetryEvent(attempt, policy.max_attempts, exc, delay))
            if delay > 0:
                sleep(delay)
