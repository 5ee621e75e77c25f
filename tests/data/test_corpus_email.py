"""Checks on the built-in PRELUDE email-writing corpus shipped as package data.

The corpus is hand-written, so these tests guard what hand editing can break: valid JSONL, the
record schema, ids, per-source lengths close to the paper's documents, and accidental copy-paste
between documents (which would make retrieval-based agents look better than they are).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from importlib.resources import files

import pytest

EMAIL_DIR = "data/prelude/email"
REQUIRED_KEYS = {"id", "source", "title", "text"}
MIN_DOCS = 20
# Word-count ranges per source (whitespace tokens), with a little slack around the targets
# (personal problem 80-200, paper summary 100-220, paper review 120-250, paper tweet 25-70).
WORD_RANGES = {
    "personal_problem": (70, 220),
    "paper_summary": (90, 240),
    "paper_review": (110, 270),
    "paper_tweet": (20, 80),
}
SOURCES = sorted(WORD_RANGES)
# A sentence this long appearing in two documents is a copy, not a coincidence.
LONG_SENTENCE_WORDS = 8


def _load(source: str) -> list[dict]:
    resource = files("persona_lab") / EMAIL_DIR / f"{source}.jsonl"
    assert resource.is_file(), f"missing package data file {EMAIL_DIR}/{source}.jsonl"
    records = []
    for lineno, line in enumerate(resource.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:  # pragma: no cover - failure path
            pytest.fail(f"{source}.jsonl line {lineno} is not valid JSON: {exc}")
    return records


def _sentences(text: str) -> list[str]:
    parts = re.split(r"[.!?;:\n]+", text.lower())
    out = []
    for part in parts:
        words = re.findall(r"[\w'%-]+", part)
        if len(words) >= LONG_SENTENCE_WORDS:
            out.append(" ".join(words))
    return out


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[dict]]:
    return {source: _load(source) for source in SOURCES}


@pytest.mark.parametrize("source", SOURCES)
def test_records_have_schema_and_enough_documents(corpus: dict[str, list[dict]], source: str) -> None:
    records = corpus[source]
    assert len(records) >= MIN_DOCS, f"{source}: {len(records)} documents, need >= {MIN_DOCS}"
    for rec in records:
        assert isinstance(rec, dict)
        assert set(rec) >= REQUIRED_KEYS, f"{rec.get('id')}: missing {REQUIRED_KEYS - set(rec)}"
        for key in REQUIRED_KEYS:
            assert isinstance(rec[key], str) and rec[key].strip(), f"{rec.get('id')}: empty {key}"
        assert rec["source"] == source, f"{rec['id']}: source {rec['source']!r} in {source}.jsonl"
        assert rec["id"].startswith(f"{source}-"), f"{rec['id']}: id should start with '{source}-'"


@pytest.mark.parametrize("source", SOURCES)
def test_word_counts_within_range(corpus: dict[str, list[dict]], source: str) -> None:
    lo, hi = WORD_RANGES[source]
    for rec in corpus[source]:
        n = len(rec["text"].split())
        assert lo <= n <= hi, f"{rec['id']}: {n} words, expected {lo}-{hi}"


def test_ids_unique_across_corpus(corpus: dict[str, list[dict]]) -> None:
    ids = Counter(rec["id"] for records in corpus.values() for rec in records)
    dupes = [i for i, c in ids.items() if c > 1]
    assert not dupes, f"duplicate ids: {dupes}"


def test_titles_and_texts_unique(corpus: dict[str, list[dict]]) -> None:
    all_records = [rec for records in corpus.values() for rec in records]
    for key in ("title", "text"):
        counts = Counter(rec[key].strip().lower() for rec in all_records)
        dupes = [v[:60] for v, c in counts.items() if c > 1]
        assert not dupes, f"duplicate {key}s: {dupes}"


def test_no_long_sentence_shared_between_documents(corpus: dict[str, list[dict]]) -> None:
    seen: dict[str, str] = {}
    clashes = []
    for records in corpus.values():
        for rec in records:
            for sentence in set(_sentences(rec["text"])):
                other = seen.setdefault(sentence, rec["id"])
                if other != rec["id"]:
                    clashes.append((other, rec["id"], sentence))
    assert not clashes, f"documents share long sentences: {clashes[:5]}"
