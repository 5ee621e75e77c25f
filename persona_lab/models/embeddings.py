"""Text encoders and a faiss vector index, shared by retrieval-based agents (CIPHER) and methods (RAG).

Encoders return L2-normalized float32 rows, so inner product = cosine similarity. Nothing is loaded
at construction: the sentence-transformers model loads on the first ``encode``.
"""

from __future__ import annotations

import json
import re
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


class SentenceTransformerEncoder:
    """A sentence-transformers model from a local folder (e.g. the packaged all-MiniLM-L6-v2)."""

    def __init__(self, path: str, *, name: str | None = None, dim: int = 384, batch_size: int = 64) -> None:
        self.path = path
        self.name = name or path
        self.dim = dim
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()
        self.memo_size = 4096

    def _load(self) -> Any:
        with self._load_lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(self.path, device="cpu")
                self.dim = int(self._model.get_embedding_dimension())
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts``; repeated texts (documents recur across rounds) come from a memo."""
        model = self._model or self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if missing:
            vecs = _normalize(model.encode(missing, batch_size=self.batch_size, convert_to_numpy=True,
                                           normalize_embeddings=True, show_progress_bar=False))
            with self._lock:
                for t, v in zip(missing, vecs):
                    self._memo[t] = v
                while len(self._memo) > self.memo_size:
                    self._memo.popitem(last=False)
        with self._lock:
            return np.stack([self._memo[t] if t in self._memo else self._encode_one(model, t) for t in texts])

    def _encode_one(self, model: Any, text: str) -> np.ndarray:
        vec = model.encode([text], convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
        return _normalize(vec)[0]

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "name": self.name, "dim": self.dim, "batch_size": self.batch_size}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], name=state["name"], dim=state["dim"], batch_size=state["batch_size"])  # type: ignore[misc]


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
