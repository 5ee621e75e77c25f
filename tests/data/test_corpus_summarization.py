"""Checks of persona-lab's built-in PRELUDE summarization corpus.

The corpus stands in for the public datasets PRELUDE drew from (news, Reddit posts, encyclopedia
pages, paper abstracts, film reviews). The user's latent preference is keyed on the *source*, so
each file must hold enough documents of the right shape and length for that source, and documents
must be distinct: a corpus of near-clones would let a memorizing agent look better than it is.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from importlib import resources

import pytest

CORPUS = resources.files("persona_lab") / "data" / "prelude" / "summarization"

# Target word ranges from the brief, widened by roughly 10% so small edits do not break the test.
WORD_RANGES: dict[str, tuple[int, int]] = {
    "news": (160, 380),
    "reddit": (130, 330),
    "wikipedia": (160, 350),
    "paper_abstract": (130, 275),
    "movie_review": (160, 350),
}
SOURCES = tuple(WORD_RANGES)
MIN_DOCS = 20
REQUIRED_KEYS = {"id", "source", "title", "text"}
# A sentence this long appearing in two documents means one was stamped from the other.
LONG_SENTENCE_WORDS = 10


def _load(source: str) -> list[dict]:
    path = CORPUS / f"{source}.jsonl"
    assert path.is_file(), f"missing corpus file {source}.jsonl under {CORPUS}"
    records = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"{source}.jsonl line {lineno} is not valid JSON: {exc}")
    return records


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[dict]]:
    return {source: _load(source) for source in SOURCES}


@pytest.mark.parametrize("source", SOURCES)
def test_records_have_schema_and_enough_docs(corpus: dict[str, list[dict]], source: str) -> None:
    records = corpus[source]
    assert len(records) >= MIN_DOCS, f"{source}: {len(records)} documents, need >= {MIN_DOCS}"
    for rec in records:
        assert set(rec) >= REQUIRED_KEYS, f"{source}: record missing keys {REQUIRED_KEYS - set(rec)}"
        assert rec["source"] == source, f"{rec['id']}: source {rec['source']!r} in {source}.jsonl"
        assert re.fullmatch(rf"{source}-\d{{2,}}", rec["id"]), f"bad id {rec['id']!r}"
        assert isinstance(rec["title"], str) and rec["title"].strip(), f"{rec['id']}: empty title"
        assert isinstance(rec["text"], str) and rec["text"].strip(), f"{rec['id']}: empty text"


@pytest.mark.parametrize("source", SOURCES)
def test_word_counts_fit_the_source(corpus: dict[str, list[dict]], source: str) -> None:
    low, high = WORD_RANGES[source]
    for rec in corpus[source]:
        n = len(rec["text"].split())
        assert low <= n <= high, f"{rec['id']}: {n} words, expected {low}-{high}"


def test_reddit_titles_name_a_subreddit(corpus: dict[str, list[dict]]) -> None:
    for rec in corpus["reddit"]:
        assert re.match(r"r/\w+: ", rec["title"]), f"{rec['id']}: title should start 'r/<sub>: '"


def test_ids_and_titles_unique_across_corpus(corpus: dict[str, list[dict]]) -> None:
    ids = [rec["id"] for recs in corpus.values() for rec in recs]
    titles = [rec["title"] for recs in corpus.values() for rec in recs]
    assert len(ids) == len(set(ids)), "duplicate document ids"
    assert len(titles) == len(set(titles)), "duplicate document titles"


def test_no_long_sentence_shared_between_documents(corpus: dict[str, list[dict]]) -> None:
    seen: dict[str, set[str]] = defaultdict(set)
    for recs in corpus.values():
        for rec in recs:
            for sentence in _sentences(rec["text"]):
                words = sentence.lower().split()
                if len(words) >= LONG_SENTENCE_WORDS:
                    seen[" ".join(words)].add(rec["id"])
    shared = {s: ids for s, ids in seen.items() if len(ids) > 1}
    assert not shared, f"sentences repeated across documents: {shared}"
