"""A persistent response cache shared by every backend.

SQLite in WAL mode: safe for several threads (one lock around one connection) and several
processes (SQLite's own file locking, with a busy timeout). The key is a stable hash of backend
spec, messages and generation parameters (seed included), so a rerun of identical requests makes
no backend calls at all. A corrupt file is moved aside with a warning and a fresh one started.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from persona_lab.core.errors import ConfigError
from persona_lab.core.seeding import stable_hash
from persona_lab.models.base import ChatModel, ChatRequest, Completion, Usage, UsageMeter

log = logging.getLogger(__name__)

CACHE_ENV = "PERSONA_LAB_CACHE_DIR"
MAX_MB_ENV = "PERSONA_LAB_CACHE_MAX_MB"
CACHE_FILE = "responses.sqlite"

T = TypeVar("T")
SCHEMA_VERSION = 1


def default_cache_dir() -> Path:
    """``$PERSONA_LAB_CACHE_DIR`` when set, else ``~/.cache/persona-lab``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "persona-lab"


def request_key(spec: str, request: ChatRequest) -> str:
    """The cache key of ``request`` sent to the backend named by ``spec``."""
    return stable_hash({"v": SCHEMA_VERSION, "spec": spec, **request.key_payload()})


class ResponseCache:
    """Key -> completion store in one SQLite file.

    Opening costs a connect and a schema statement (milliseconds at any size): the file is not
    integrity-checked on every open. A file that is not a database, or that SQLite finds corrupt
    while reading it, is moved aside with a warning and a fresh one is started.

    Writes are group-committed: a write after a quiet spell commits at once, writes that come
    faster wait (visible to this object's reads meanwhile) at most ``FLUSH_S`` and commit together;
    a commit per answer cost more than the request itself against a fast server. ``close()`` and
    interpreter exit commit what is pending; a ``kill -9`` loses at most ``FLUSH_S`` of answers.

    Args:
        path: the SQLite file, or a folder that will hold ``responses.sqlite``.
        max_bytes: an optional size limit; when the stored answers exceed it after a write, the oldest
            are dropped down to 90% of it (freed pages are reused, not returned to the disk). ``None`` reads
            ``$PERSONA_LAB_CACHE_MAX_MB`` (unset: no limit).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, max_bytes: int | None = None) -> None:
        path = Path(path) if path is not None else default_cache_dir()
        if path.suffix != ".sqlite":
            path = path / CACHE_FILE
        self.path = path
        if max_bytes is None and os.environ.get(MAX_MB_ENV):
            try:
                max_bytes = int(float(os.environ[MAX_MB_ENV]) * 1024 * 1024)
            except ValueError:
                raise ConfigError(f"${MAX_MB_ENV}={os.environ[MAX_MB_ENV]!r} is not a number",
                                  hint="set it to the cache's size limit in MiB, e.g. 2048, or unset it") from None
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pending: dict[str, tuple[Any, ...]] = {}
        self._last_commit = float("-inf")
        self._timer: threading.Timer | None = None
        self.hits = 0
        self.misses = 0
        _LIVE.add(self)

    # Opening is lazy so that constructing a cache never touches the disk.
    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._conn = self._open()
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                    raise
                self._set_aside(exc)
                self._conn = self._open()
        return self._conn

    def _set_aside(self, exc: BaseException) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        log.warning(
            "response cache %s is unreadable (%s); moved it to %s and started a fresh one", self.path, exc, aside
        )
        if self.path.exists():
            os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA journal_mode=WAL")  # reads the header: a non-database fails here
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS responses ("
                " key TEXT PRIMARY KEY, spec TEXT NOT NULL, text TEXT NOT NULL,"
                " prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,"
                " finish_reason TEXT NOT NULL, created REAL NOT NULL)"
            )
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    def _guarded(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on the connection (lock held); a file found corrupt while in use is set aside
        and the work runs once more on a fresh file."""
        try:
            return work(self._connection())
        except sqlite3.DatabaseError as exc:
            # Only the plain DatabaseError means a damaged file ("malformed", "not a database");
            # its subclasses (locked, closed, constraint...) are not a reason to set the file aside.
            if type(exc) is not sqlite3.DatabaseError or self._conn is None:
                raise
            self._set_aside(exc)
            return work(self._connection())

    def get_many(self, keys: Sequence[str]) -> dict[str, Completion]:
        if not keys:
            return {}
        found: dict[str, Completion] = {}

        def work(conn: sqlite3.Connection) -> None:
            if len(todo) == 1:
                rows = conn.execute(
                    "SELECT key, text, prompt_tokens, completion_tokens, finish_reason FROM responses WHERE key = ?",
                    todo,
                ).fetchall()
                rows_found(rows)
                return
            for start in range(0, len(todo), 500):
                chunk = todo[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows_found(conn.execute(
                    "SELECT key, text, prompt_tokens, completion_tokens, finish_reason"
                    f" FROM responses WHERE key IN ({marks})",
                    chunk,
                ).fetchall())

        def rows_found(rows: list[tuple[Any, ...]]) -> None:
            for key, text, pt, ct, fr in rows:
                found[key] = Completion(text, Usage(pt, ct, 0.0, cache_hit=True), fr)

        with self._lock:
            pending = self._pending
            todo = [k for k in keys if k not in pending]
            if len(todo) < len(keys):
                rows_found([(k, *pending[k][2:6]) for k in keys if k in pending])
            if todo:
                self._guarded(work)
            self.hits += len(found)
            self.misses += len(keys) - len(found)
        return found

    FLUSH_S = 0.1  # longest a written answer waits for its commit
    FLUSH_ROWS = 512  # or this many answers, whichever comes first

    def put_many(self, spec: str, items: Sequence[tuple[str, Completion]]) -> None:
        if not items:
            return
        now = time.time()
        with self._lock:
            for k, c in items:
                self._pending[k] = (k, spec, c.text, c.usage.prompt_tokens, c.usage.completion_tokens,
                                    c.finish_reason, now)
            quiet = time.monotonic() - self._last_commit
            if quiet >= self.FLUSH_S or len(self._pending) >= self.FLUSH_ROWS:
                self._flush_locked()
            elif self._timer is None:
                self._timer = threading.Timer(self.FLUSH_S - quiet, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        """Commit the answers that wait for a group commit."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        rows = list(self._pending.values())

        def work(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("INSERT OR REPLACE INTO responses VALUES (?,?,?,?,?,?,?)", rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        self._guarded(work)
        self._pending.clear()
        self._last_commit = time.monotonic()
        # three PRAGMAs: microseconds
        if self.max_bytes is not None and self._used_bytes(self._connection()) > self.max_bytes:
            self._prune(self._connection(), max_bytes=int(self.max_bytes * 0.9))

    def __len__(self) -> int:
        with self._lock:
            self._flush_locked()
            return self._guarded(lambda c: c.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    # -- housekeeping -----------------------------------------------------------------------------
    @staticmethod
    def _used_bytes(conn: sqlite3.Connection) -> int:
        pages = conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
        return int(pages) * int(conn.execute("PRAGMA page_size").fetchone()[0])

    def stats(self) -> dict[str, Any]:
        """Entries, bytes in use and on disk, age range and entries per backend spec."""

        def work(conn: sqlite3.Connection) -> dict[str, Any]:
            n, oldest, newest = conn.execute("SELECT COUNT(*), MIN(created), MAX(created) FROM responses").fetchone()
            by_spec = dict(conn.execute(
                "SELECT spec, COUNT(*) FROM responses GROUP BY spec ORDER BY COUNT(*) DESC").fetchall())
            return {"entries": int(n), "used_bytes": self._used_bytes(conn), "oldest": oldest, "newest": newest,
                    "by_spec": by_spec}

        with self._lock:
            self._flush_locked()
            out = self._guarded(work)
        out["path"] = str(self.path)
        out["file_bytes"] = sum(
            p.stat().st_size for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")) if p.exists()
        )
        out["max_bytes"] = self.max_bytes
        return out

    def prune(self, *, max_bytes: int | None = None, older_than_s: float | None = None,
              spec: str | None = None, vacuum: bool = True) -> int:
        """Drop answers: those of backend ``spec`` (exact), those older than ``older_than_s``, then the
        oldest until the answers use at most ``max_bytes``. ``vacuum`` gives the space back to the disk.
        Returns how many were dropped."""
        with self._lock:
            self._flush_locked()
            return self._guarded(lambda c: self._prune(c, max_bytes=max_bytes, older_than_s=older_than_s,
                                                       spec=spec, vacuum=vacuum))

    def _prune(self, conn: sqlite3.Connection, *, max_bytes: int | None = None, older_than_s: float | None = None,
               spec: str | None = None, vacuum: bool = False) -> int:
        removed = 0
        if spec is not None:
            removed += conn.execute("DELETE FROM responses WHERE spec = ?", (spec,)).rowcount
        if older_than_s is not None:
            removed += conn.execute("DELETE FROM responses WHERE created < ?", (time.time() - older_than_s,)).rowcount
        if max_bytes is not None:
            for _ in range(8):  # the per-row size is estimated, so converge in a few passes
                used = self._used_bytes(conn)
                if used <= max_bytes:
                    break
                n = conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
                if n == 0:
                    break
                drop = max(1, min(n, int(n * (used - max_bytes) / used) + 1))
                removed += conn.execute(
                    "DELETE FROM responses WHERE key IN (SELECT key FROM responses ORDER BY created LIMIT ?)", (drop,)
                ).rowcount
        if removed and vacuum:
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if removed:
            log.info("response cache %s: dropped %d answers", self.path, removed)
        return removed

    def close(self) -> None:
        with self._lock:
            if self._pending:
                self._flush_locked()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "max_bytes": self.max_bytes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], max_bytes=state.get("max_bytes"))  # type: ignore[misc]


_LIVE: weakref.WeakSet[ResponseCache] = weakref.WeakSet()


@atexit.register
def _flush_all() -> None:
    """Commit every cache's pending answers when the interpreter exits."""
    for cache in list(_LIVE):
        with contextlib.suppress(Exception):
            cache.flush()


def _as_hit(c: Completion) -> Completion:
    return Completion(c.text, Usage(c.usage.prompt_tokens, c.usage.completion_tokens, 0.0, True), c.finish_reason)


class CachedChatModel:
    """Wraps a backend with the response cache (optional) and a usage meter.

    This is the object the rest of persona-lab talks to: it answers repeated requests from the
    cache, sends only the misses to the backend in one batch, and records usage.
    """

    def __init__(
        self, backend: ChatModel, cache: ResponseCache | None = None, meter: UsageMeter | None = None
    ) -> None:
        self.backend = backend
        self.cache = cache
        self.meter = meter if meter is not None else UsageMeter()

    @property
    def spec(self) -> str:
        return self.backend.spec

    @property
    def cache_spec(self) -> str:
        """The backend's part of each cache key: ``backend.cache_spec`` where it has one (a replica set
        keys by model, not by which server answered), else its spec."""
        return getattr(self.backend, "cache_spec", None) or self.backend.spec

    def backend_stats(self) -> dict[str, Any]:
        """What the backend reports about itself (per-replica usage of an ``openai`` replica set)."""
        stats = getattr(self.backend, "replica_stats", None)
        return {"replicas": stats()} if callable(stats) else {}

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        requests = list(requests)
        if self.cache is None:
            out = self._call_backend(requests)
        else:
            key_spec = self.cache_spec
            keys = [request_key(key_spec, r) for r in requests]
            found = self.cache.get_many(keys)
            # identical requests inside one batch are sent once
            todo: dict[str, ChatRequest] = {}
            for k, r in zip(keys, requests):
                if k not in found and k not in todo:
                    todo[k] = r
            fresh = self._call_backend(list(todo.values())) if todo else []
            self.cache.put_many(key_spec, list(zip(todo.keys(), fresh)))
            new = dict(zip(todo.keys(), fresh))
            out = []
            for k in keys:
                if k in found:
                    out.append(found[k])
                elif k in new:
                    out.append(new.pop(k))  # the first of identical requests carries the backend usage
                    found[k] = _as_hit(out[-1])  # later duplicates in this batch count as hits
        for c in out:
            self.meter.record(c.usage)
        return out

    def _call_backend(self, requests: list[ChatRequest]) -> list[Completion]:
        try:
            out = self.backend.generate(requests)
        except Exception:
            self.meter.record_error()
            raise
        if len(out) != len(requests):
            raise RuntimeError(
                f"backend {self.spec} returned {len(out)} completions for {len(requests)} requests"
            )
        return out

    # Optional capabilities of the backend, exposed explicitly rather than by forwarding.
    @property
    def context_window(self) -> int | None:
        return getattr(self.backend, "context_window", None)

    def count_tokens(self, messages: Sequence[Any]) -> int:
        counter = getattr(self.backend, "count_tokens", None)
        if counter is None:
            from persona_lab.models.tokens import approx_token_count

            return approx_token_count(messages)
        return counter(messages)

    def score(self, requests: Sequence[Any]) -> list[float]:
        scorer = getattr(self.backend, "score", None)
        if scorer is None:
            from persona_lab.core.errors import BackendUnavailableError

            raise BackendUnavailableError(
                f"backend {self.spec} cannot score text (no token log-probabilities)",
                hint="use a local transformers backend, e.g. `hf:smollm2-135m`, as the scorer",
            )
        return scorer(requests)
