"""Persistent embeddings keyed by (encoder, text): a rerun encodes nothing and loads no model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from persona_lab.models.embeddings import EmbeddingStore, SentenceTransformerEncoder


class CountingModel:
    """Stands in for a SentenceTransformer: deterministic vectors, counts what it encodes."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: list[str], **_: Any) -> np.ndarray:
        self.seen.extend(texts)
        return np.stack([np.frombuffer(t.ljust(16)[:16].encode(), dtype=np.uint8).astype(np.float32) + 1 for t in texts])


def encoder(folder: Path, store: Any, model: CountingModel) -> SentenceTransformerEncoder:
    enc = SentenceTransformerEncoder(str(folder), name="toy", store=store)
    enc._load = lambda: setattr(enc, "_model", model) or model  # type: ignore[method-assign]
    return enc


def test_a_second_encoder_reads_the_store_and_never_loads_the_model(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"x" * 10)
    store = EmbeddingStore(tmp_path / "cache")
    first_model = CountingModel()
    a = encoder(folder, store, first_model).encode(["doc one", "doc two", "doc one"])
    assert first_model.seen == ["doc one", "doc two"]

    again = encoder(folder, EmbeddingStore(tmp_path / "cache"), CountingModel())
    b = again.encode(["doc two", "doc one"])
    assert again._model is None and again.encoded == 0  # nothing encoded, nothing loaded
    np.testing.assert_array_equal(b, a[[1, 0]])

    (folder / "weights.bin").write_bytes(b"y" * 11)  # another model under the same name keys apart
    third_model = CountingModel()
    encoder(folder, EmbeddingStore(tmp_path / "cache"), third_model).encode(["doc one"])
    assert third_model.seen == ["doc one"]


def test_the_store_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONA_LAB_EMBED_CACHE", "0")
    model = CountingModel()
    encoder(tmp_path, None, model).encode(["a"])
    encoder(tmp_path, None, model).encode(["a"])
    assert model.seen == ["a", "a"]
    assert not list(tmp_path.rglob("embeddings.sqlite"))
