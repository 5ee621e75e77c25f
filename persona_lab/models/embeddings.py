"""Text encoders and a faiss vector index, shared by retrieval-based agents (CIPHER) and methods (RAG).

Encoders return L2-normalized float32 rows, so inner product = cosine similarity. Nothing is loaded
at construction: the sentence-transformers model loads on the first ``encode`` that needs it.

Sentence-transformer embeddings persist in :class:`EmbeddingStore` (``embeddings.sqlite`` next to
the response cache), keyed by (encoder, text): every seed, agent and rerun of a bench encodes each
document once, and a rerun never loads the model. ``PERSONA_LAB_EMBED_CACHE=0`` turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from persona_lab.core.errors import ConfigError
from persona_lab.core.io import atomic_write_text


@runtime_checkable
class Encoder(Protocol):
    """Maps texts to L2-normalized float32 vectors of a fixed dimension."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def _normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return x / norms


EMBED_CACHE_ENV = "PERSONA_LAB_EMBED_CACHE"
EMBED_FILE = "embeddings.sqlite"


class EmbeddingStore:
    """(encoder id, text) -> float32 vector in one SQLite file, shared by runs, threads and processes.

    Args:
        path: the SQLite file, or a folder for ``embeddings.sqlite``; default: the response cache's
            folder (``$PERSONA_LAB_CACHE_DIR`` or ``~/.cache/persona-lab``).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        if path is None:
            from persona_lab.models.cache import default_cache_dir

            path = default_cache_dir()
        path = Path(path)
        self.path = path if path.suffix == ".sqlite" else path / EMBED_FILE
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS embeddings (encoder TEXT NOT NULL, key TEXT NOT NULL,"
                         " vec BLOB NOT NULL, PRIMARY KEY (encoder, key))")
            self._conn = conn
        return self._conn

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def get_many(self, encoder: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
        keys = {self._key(t): t for t in texts}
        found: dict[str, np.ndarray] = {}
        with self._lock:
            conn = self._connection()
            items = list(keys)
            for start in range(0, len(items), 500):
                chunk = items[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, blob in conn.execute(
                    f"SELECT key, vec FROM embeddings WHERE encoder = ? AND key IN ({marks})", [encoder, *chunk]
                ):
                    found[keys[key]] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, encoder: str, items: Sequence[tuple[str, np.ndarray]]) -> None:
        rows = [(encoder, self._key(t), np.asarray(v, dtype=np.float32).tobytes()) for t, v in items]
        if not rows:
            return
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("INSERT OR REPLACE INTO embeddings VALUES (?,?,?)", rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def __len__(self) -> int:
        with self._lock:
            return int(self._connection().execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])


def _folder_fingerprint(path: str) -> str:
    """Names and sizes of the model folder's files: another model under the same name keys apart."""
    folder = Path(path)
    parts = sorted((p.name, p.stat().st_size) for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


class SentenceTransformerEncoder:
    """A sentence-transformers model from a local folder (e.g. the packaged all-MiniLM-L6-v2).

    Args:
        store: where embeddings persist across runs; ``None`` opens the default
            :class:`EmbeddingStore` at first use (unless ``$PERSONA_LAB_EMBED_CACHE`` is ``0``),
            ``False`` keeps them in memory only.
    """

    def __init__(self, path: str, *, name: str | None = None, dim: int = 384, batch_size: int = 64,
                 store: EmbeddingStore | bool | None = None) -> None:
        self.path = path
        self.name = name or path
        self.dim = dim
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()
        self.memo_size = 4096
        self._store_arg = store
        self._store: EmbeddingStore | None = None
        self._store_id: str | None = None
        self.encoded = 0  # texts this object ran through the model (the rest came from memo or store)

    def _persistent(self) -> tuple[EmbeddingStore, str] | None:
        if self._store_arg is False or (self._store_arg is None and os.environ.get(EMBED_CACHE_ENV) == "0"):
            return None
        if self._store is None:
            self._store = self._store_arg if isinstance(self._store_arg, EmbeddingStore) else EmbeddingStore()
            self._store_id = f"st:{self.name}:{_folder_fingerprint(self.path)}"
        assert self._store_id is not None
        return self._store, self._store_id

    def _load(self) -> Any:
        with self._load_lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(self.path, device="cpu")
                self.dim = int(self._model.get_embedding_dimension())
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts``: from the memo, else the persistent store, else the model (loaded
        only then); what the model encodes goes to the store."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        fresh: dict[str, np.ndarray] = {}
        if missing:
            persistent = self._persistent()
            if persistent is not None:
                store, sid = persistent
                fresh.update(store.get_many(sid, missing))
                missing = [t for t in missing if t not in fresh]
            if missing:
                model = self._model or self._load()
                vecs = _normalize(model.encode(missing, batch_size=self.batch_size, convert_to_numpy=True,
                                               normalize_embeddings=True, show_progress_bar=False))
                self.encoded += len(missing)
                fresh.update(zip(missing, vecs))
                if persistent is not None:
                    persistent[0].put_many(persistent[1], list(zip(missing, vecs)))
            with self._lock:
                for t, v in fresh.items():
                    self._memo[t] = v
                while len(self._memo) > self.memo_size:
                    self._memo.popitem(last=False)
        rows = [fresh.get(t) for t in texts]
        with self._lock:
            rows = [r if r is not None else self._memo.get(t) for t, r in zip(texts, rows)]
        out = [r if r is not None else self._encode_one(self._model or self._load(), t) for t, r in zip(texts, rows)]
        self.dim = int(out[0].shape[0])
        return np.stack(out)

    def _encode_one(self, model: Any, text: str) -> np.ndarray:
        vec = model.encode([text], convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
        return _normalize(vec)[0]

    def __getstate__(self) -> dict[str, Any]:
        store = self._store_arg if isinstance(self._store_arg, bool) else None
        return {"path": self.path, "name": self.name, "dim": self.dim, "batch_size": self.batch_size, "store": store}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], name=state["name"], dim=state["dim"], batch_size=state["batch_size"],  # type: ignore[misc]
                      store=state.get("store"))


_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


class TfidfEncoder:
    """Hashed TF-IDF: fixed dimension, no fitting step, instant.

    Document frequencies are learned online from every encoded text, so the encoder suits a
    memory that grows as an agent sees documents. Terms are hashed (crc32) into ``dim`` buckets.
    """

    name = "tfidf"

    def __init__(self, dim: int = 4096) -> None:
        self.dim = dim
        self._df = np.zeros(dim, dtype=np.float64)
        self._n_docs = 0
        self._lock = threading.Lock()

    def _counts(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float64)
        for tok in _TOKEN.findall(text.lower()):
            v[zlib.crc32(tok.encode()) % self.dim] += 1.0
        return v

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        counts = [self._counts(t) for t in texts]
        with self._lock:
            for c in counts:
                self._df += c > 0
                self._n_docs += 1
            idf = np.log((1.0 + self._n_docs) / (1.0 + self._df)) + 1.0
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, c in enumerate(counts):
            tf = np.where(c > 0, 1.0 + np.log(np.maximum(c, 1.0)), 0.0)
            out[i] = tf * idf
        return _normalize(out)

    def __getstate__(self) -> dict[str, Any]:
        return {"dim": self.dim, "df": self._df, "n": self._n_docs}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["dim"])  # type: ignore[misc]
        self._df, self._n_docs = state["df"], state["n"]


@lru_cache(maxsize=8)
def _shared_encoder(path: str, name: str) -> SentenceTransformerEncoder:
    """One loaded model per folder and process: agents in concurrent episodes share it (it is stateless)."""
    return SentenceTransformerEncoder(path, name=name)


def open_encoder(name: str = "minilm") -> Encoder:
    """``minilm`` (the packaged all-MiniLM-L6-v2), ``tfidf``, or a local sentence-transformers folder."""
    if name == "tfidf":
        return TfidfEncoder()
    if name in ("minilm", "all-MiniLM-L6-v2"):
        from persona_lab.models.packaged import encoder_path

        return _shared_encoder(encoder_path("minilm"), "minilm")
    if Path(name).is_dir():
        return _shared_encoder(name, name)
    raise ConfigError(
        f"unknown encoder {name!r}",
        hint="use `minilm` (packaged all-MiniLM-L6-v2), `tfidf`, or a local sentence-transformers folder",
    )


class VectorIndex:
    """Inner-product search over L2-normalized vectors, with a JSON-serializable payload per vector.

    ``kind="flat"`` is exact (faiss ``IndexFlatIP``); ``kind="hnsw"`` is approximate
    (``IndexHNSWFlat`` with inner product), for memories of 10^5+ entries.
    """

    def __init__(self, dim: int, *, kind: str = "flat", hnsw_m: int = 32, ef_search: int = 128) -> None:
        if kind not in ("flat", "hnsw"):
            raise ConfigError(f"unknown index kind {kind!r}", hint="use 'flat' (exact) or 'hnsw' (approximate)")
        self.dim, self.kind, self.hnsw_m, self.ef_search = dim, kind, hnsw_m, ef_search
        self.payloads: list[Any] = []
        self._index = self._new_index()
        self._lock = threading.Lock()

    def _new_index(self) -> Any:
        import faiss

        if self.kind == "flat":
            return faiss.IndexFlatIP(self.dim)
        index = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = self.ef_search
        return index

    def __len__(self) -> int:
        return len(self.payloads)

    def add(self, vectors: np.ndarray, payloads: Sequence[Any]) -> None:
        vectors = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        if vectors.shape != (len(payloads), self.dim):
            raise ValueError(f"expected vectors of shape ({len(payloads)}, {self.dim}), got {vectors.shape}")
        with self._lock:
            self._index.add(vectors)
            self.payloads.extend(payloads)

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[float, Any]]]:
        """The ``k`` nearest payloads of each query with their scores, best first."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        with self._lock:
            if not self.payloads or k <= 0:
                return [[] for _ in range(len(queries))]
            scores, ids = self._index.search(queries, min(k, len(self.payloads)))
        return [
            [(float(s), self.payloads[i]) for s, i in zip(row_s, row_i) if i >= 0]
            for row_s, row_i in zip(scores, ids)
        ]

    def save(self, folder: str | Path) -> None:
        import faiss

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            faiss.write_index(self._index, str(folder / "index.faiss.tmp"))
            (folder / "index.faiss.tmp").replace(folder / "index.faiss")
            meta = {"dim": self.dim, "kind": self.kind, "hnsw_m": self.hnsw_m, "ef_search": self.ef_search}
            atomic_write_text(folder / "payloads.json", json.dumps({"meta": meta, "payloads": self.payloads}))

    @classmethod
    def load(cls, folder: str | Path) -> VectorIndex:
        import faiss

        folder = Path(folder)
        blob = json.loads((folder / "payloads.json").read_text(encoding="utf-8"))
        meta = blob["meta"]
        out = cls(meta["dim"], kind=meta["kind"], hnsw_m=meta["hnsw_m"], ef_search=meta["ef_search"])
        out._index = faiss.read_index(str(folder / "index.faiss"))
        if out.kind == "hnsw":
            out._index.hnsw.efSearch = out.ef_search
        out.payloads = list(blob["payloads"])
        return out

    def __getstate__(self) -> dict[str, Any]:
        import faiss

        with self._lock:
            data = faiss.serialize_index(self._index)
        return {"meta": (self.dim, self.kind, self.hnsw_m, self.ef_search), "payloads": self.payloads, "index": data}

    def __setstate__(self, state: dict[str, Any]) -> None:
        import faiss

        self.dim, self.kind, self.hnsw_m, self.ef_search = state["meta"]
        self.payloads = state["payloads"]
        self._index = faiss.deserialize_index(state["index"])
        self._lock = threading.Lock()
