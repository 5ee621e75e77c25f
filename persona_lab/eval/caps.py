"""Concurrency caps that hold for a whole run, however many worker processes or Ray workers it uses.

With threads, a network backend's own cap (``max_concurrency`` per replica of the ``openai`` backend)
holds for the run because one backend object serves every episode. With ``--executor processes`` or
``ray`` every worker builds its own backend, so its own cap alone would let ``workers × cap`` requests
reach a server. The driver therefore keeps one :class:`CapTable` (in a ``multiprocessing`` manager
process, or in a Ray actor) and every worker wraps its network backends in :class:`CappedBackend`,
which takes a slot from that table for each request it sends.

The cap of a backend is ``max_concurrency × replicas`` (what one process of that backend would keep in
flight). Backends without ``max_concurrency`` (a local ``hf`` model, one per worker) are not capped.
This module imports nothing heavy: the manager process and Ray actors import it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

WAIT_S = 0.5  # an acquire blocks in the table at most this long, then the caller asks again


class Caps(Protocol):
    """What a worker needs from the run's table (a :class:`CapTable`, its manager proxy or Ray actor)."""

    def acquire(self, key: str, size: int, n: int) -> None: ...

    def release(self, key: str, n: int) -> None: ...


class CapTable:
    """Counting semaphores by key, created on first use with the size the first caller names.

    ``try_acquire`` takes ``n`` slots at once (``n <= size``), so two callers holding part of what they
    need can never wait on each other. It blocks at most ``timeout_s`` and says whether it got the
    slots, so a caller that waits long never holds a manager or actor thread that a ``release`` needs.
    Slots are held by an ``owner`` (one episode attempt): when infrastructure loses the attempt, the
    driver frees what it held with :meth:`release_owner`, so a dead worker cannot shrink the cap.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._size: dict[str, int] = {}
        self._held: dict[str, int] = {}
        self._peak: dict[str, int] = {}
        self._owned: dict[tuple[str, str], int] = {}

    def try_acquire(self, key: str, size: int, n: int, timeout_s: float = WAIT_S, owner: str = "") -> bool:
        if not 1 <= n <= size:
            raise ValueError(f"cannot take {n} of {size} slots")
        deadline = time.monotonic() + timeout_s
        with self._cond:
            size = self._size.setdefault(key, size)
            n = min(n, size)
            while self._held.get(key, 0) + n > size:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            held = self._held[key] = self._held.get(key, 0) + n
            self._peak[key] = max(self._peak.get(key, 0), held)
            self._owned[key, owner] = self._owned.get((key, owner), 0) + n
            return True

    def release(self, key: str, n: int, owner: str = "") -> None:
        with self._cond:
            n = min(n, self._owned.get((key, owner), 0))
            self._free(key, owner, n)

    def release_owner(self, owner: str) -> int:
        """Free every slot ``owner`` still holds (its worker died); returns how many."""
        with self._cond:
            held = [(k, n) for (k, o), n in self._owned.items() if o == owner]
            for key, n in held:
                self._free(key, owner, n)
            return sum(n for _, n in held)

    def _free(self, key: str, owner: str, n: int) -> None:
        left = self._owned.get((key, owner), 0) - n
        if left > 0:
            self._owned[key, owner] = left
        else:
            self._owned.pop((key, owner), None)
        self._held[key] = max(0, self._held.get(key, 0) - n)
        self._cond.notify_all()

    def stats(self) -> dict[str, dict[str, int]]:
        """Per key: the cap and the most slots ever held at once (for ``summary.json``)."""
        with self._cond:
            return {k: {"cap": self._size[k], "peak_in_flight": self._peak.get(k, 0)} for k in sorted(self._size)}


class TableClient:
    """A :class:`Caps` over a table reached by ``call(method, *args)`` (a manager proxy or a Ray actor),
    holding its slots as ``owner``."""

    def __init__(self, call: Callable[..., Any], owner: str = "") -> None:
        self._call, self.owner = call, owner

    def acquire(self, key: str, size: int, n: int) -> None:
        while not self._call("try_acquire", key, size, n, WAIT_S, self.owner):
            pass

    def release(self, key: str, n: int) -> None:
        self._call("release", key, n, self.owner)


def backend_cap(backend: Any) -> int | None:
    """Requests a backend keeps in flight in one process (``max_concurrency`` × replicas), or ``None``
    for a backend without a cap of its own (a local model)."""
    per = getattr(backend, "max_concurrency", None)
    if not isinstance(per, int) or per < 1:
        return None
    replicas = str(getattr(backend, "base_url", "")).count(",") + 1
    return per * replicas


class CappedBackend:
    """A backend whose requests each hold a slot of the run's table while they are sent.

    A batch larger than the cap goes in slices of at most ``size`` requests. Everything else (spec,
    cache key, replica stats, token counting, read timeout) is the wrapped backend's.
    """

    def __init__(self, backend: Any, key: str, size: int, caps: Callable[[], Caps | None]) -> None:
        self.backend, self.key, self.size, self._caps = backend, key, size, caps

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.backend, name)  # AttributeError stays: optional capabilities stay optional
        if name == "score":
            return lambda requests: self._sliced(value, list(requests))
        return value

    def generate(self, requests: Sequence[Any]) -> list[Any]:
        return self._sliced(self.backend.generate, list(requests))

    def _sliced(self, fn: Callable[[list[Any]], list[T]], items: list[Any]) -> list[T]:
        caps = self._caps()
        if caps is None or not items:
            return fn(items)
        out: list[T] = []
        for i in range(0, len(items), self.size):
            part = items[i:i + self.size]
            caps.acquire(self.key, self.size, len(part))
            try:
                out += fn(part)
            finally:
                caps.release(self.key, len(part))
        return out
