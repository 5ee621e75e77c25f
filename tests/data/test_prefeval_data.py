"""Checks of persona-lab's built-in PrefEval-style dataset and filler.

The dataset lives in ``persona_lab/data/prefeval`` in PrefEval's own layout, so the same loader
reads it and the real benchmark. These tests pin the schema (mirroring the real files), the
cross-form alignment by row index, and the sanity of the judge-free ``verifiable`` hints.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

import persona_lab

DATA = Path(persona_lab.__file__).parent / "data" / "prefeval"
FILLER = DATA / "filler.json"
MAKE_FILLER = Path(__file__).resolve().parents[2] / "tools" / "make_filler.py"

FORMS = {
    "explicit": "explicit_preference",
    "choice": "implicit_preference/choice-based",
    "persona": "implicit_preference/persona-driven",
    "mcq": "mcq_options",
}
BASE = {"preference": str, "question": str, "explanation": str}
REQUIRED = {
    "explicit": BASE,
    "choice": {**BASE, "implicit_query": str, "options": list, "conversation": dict, "aligned_op": str},
    "persona": {**BASE, "persona": str, "conversation": dict},
    "mcq": {**BASE, "classification_task_options": list},
}
CHOICE_CONVERSATION = ("query", "assistant_options", "user_selection", "assistant_acknowledgment")


def contains_phrase(text: str, phrase: str) -> bool:
    """Whole-word, case-insensitive phrase match (``ham`` does not hit ``graham``)."""
    return re.search(rf"(?<!\w){re.escape(phrase.lower())}(?!\w)", text.lower()) is not None


def _topics(form: str) -> list[str]:
    return sorted(p.stem for p in (DATA / FORMS[form]).glob("*.json"))


def _load(form: str, topic: str) -> list[dict]:
    return json.loads((DATA / FORMS[form] / f"{topic}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dataset() -> dict[str, dict[str, list[dict]]]:
    return {form: {t: _load(form, t) for t in _topics(form)} for form in FORMS}


def _rows(dataset: dict, form: str):
    for topic, rows in dataset[form].items():
        for i, row in enumerate(rows):
            yield f"{FORMS[form]}/{topic}.json row {i}", row


def test_forms_share_topics_and_row_counts(dataset):
    topics = _topics("explicit")
    assert len(topics) >= 10, topics
    for form in FORMS:
        assert _topics(form) == topics, form
        for t in topics:
            rows = dataset[form][t]
            assert isinstance(rows, list) and len(rows) >= 10, (form, t)
            assert len(rows) == len(dataset["explicit"][t]), (form, t)
    assert sum(len(r) for r in dataset["explicit"].values()) >= 100


def test_topic_names_are_snake_case():
    for t in _topics("explicit"):
        assert re.fullmatch(r"[a-z]+(_[a-z]+)+", t), t


@pytest.mark.parametrize("form", list(FORMS))
def test_required_keys_and_types(dataset, form):
    for where, row in _rows(dataset, form):
        assert isinstance(row, dict), where
        extra = set(row) - set(REQUIRED[form]) - {"verifiable"}
        assert not extra, f"{where}: unexpected keys {extra}"
        for key, typ in REQUIRED[form].items():
            assert isinstance(row.get(key), typ), f"{where}: {key!r} missing or not {typ.__name__}"
            if typ is str:
                assert row[key].strip(), f"{where}: {key!r} is empty"


def test_forms_align_by_row_index(dataset):
    for topic, rows in dataset["explicit"].items():
        for form in FORMS:
            for i, (a, b) in enumerate(zip(rows, dataset[form][topic])):
                for key in BASE:
                    assert a[key] == b[key], f"{form}/{topic} row {i}: {key} differs from explicit"
                assert a.get("verifiable") == b.get("verifiable"), f"{form}/{topic} row {i}"


def test_preferences_unique_and_not_restated_in_question(dataset):
    prefs = [row["preference"] for _, row in _rows(dataset, "explicit")]
    assert len(prefs) == len(set(prefs))
    for where, row in _rows(dataset, "explicit"):
        assert row["preference"].lower() not in row["question"].lower(), where
        assert row["question"].rstrip().endswith("?"), where


def test_choice_rows(dataset):
    for where, row in _rows(dataset, "choice"):
        options = row["options"]
        assert len(options) == 4 and len(set(options)) == 4, where
        assert all(isinstance(o, str) and o.strip() for o in options), where
        assert row["aligned_op"] == options[0], where
        conv = row["conversation"]
        assert tuple(conv) == CHOICE_CONVERSATION, where
        assert all(isinstance(conv[k], str) and conv[k].strip() for k in CHOICE_CONVERSATION), where
        assert conv["query"] == row["implicit_query"], where
        for option in options:
            assert option in conv["assistant_options"], f"{where}: option not offered: {option!r}"


def test_persona_rows(dataset):
    for where, row in _rows(dataset, "persona"):
        conv = row["conversation"]
        assert 3 <= len(conv) <= 7, where
        assert list(conv) == [str(i) for i in range(len(conv))], where
        for turn in conv.values():
            assert set(turn) == {"user", "assistant"}, where
            assert all(isinstance(v, str) and v.strip() for v in turn.values()), where
        chat = " ".join(t["user"] + " " + t["assistant"] for t in conv.values()).lower()
        assert row["preference"].lower() not in chat, f"{where}: preference stated verbatim, not in passing"


def test_classification_options(dataset):
    for where, row in _rows(dataset, "mcq"):
        options = row["classification_task_options"]
        assert len(options) == 4 and len(set(options)) == 4, where
        assert all(isinstance(o, str) and o.strip() for o in options), where


def test_verifiable_shape_and_sanity(dataset):
    n = 0
    for where, row in _rows(dataset, "mcq"):
        v = row.get("verifiable")
        if v is None:
            continue
        n += 1
        assert isinstance(v, dict) and set(v) <= {"forbid", "require_any", "catalog"}, where
        assert {"forbid", "require_any"} <= set(v), where
        for key in ("forbid", "require_any"):
            phrases = v[key]
            assert isinstance(phrases, list) and len(phrases) == len(set(phrases)), where
            assert all(isinstance(p, str) and p.strip() and p == p.lower() for p in phrases), where
        assert v["forbid"] or v["require_any"] or v.get("catalog"), f"{where}: empty verifiable"
        if "catalog" in v:
            assert isinstance(v["catalog"], list) and all(isinstance(c, str) for c in v["catalog"]), where
        good, *bad = row["classification_task_options"]
        # An answer that acknowledges the preference by quoting it must not count as a violation.
        quoted = [p for p in v["forbid"] if contains_phrase(row["preference"], p)]
        assert not quoted, f"{where}: forbidden phrases occur in the preference itself: {quoted}"
        hits = [p for p in v["forbid"] if contains_phrase(good, p)]
        assert not hits, f"{where}: the aligned option contains forbidden {hits}"
        if v["forbid"]:
            assert any(contains_phrase(b, p) for b in bad for p in v["forbid"]), (
                f"{where}: no violating option contains a forbidden phrase"
            )
        if v["require_any"]:
            assert any(contains_phrase(good, p) for p in v["require_any"]), (
                f"{where}: the aligned option contains none of require_any"
            )
    assert n >= 50, f"only {n} rows carry a verifiable hint"


def test_catalog_hints_name_real_preferences_and_separate_the_options(dataset):
    catalog = pytest.importorskip("persona_lab.simulators.catalog")
    rows = [(w, r) for w, r in _rows(dataset, "mcq") if r.get("verifiable", {}).get("catalog")]
    assert rows, "no item names a catalog preference"
    for where, row in rows:
        good, *bad = row["classification_task_options"]
        for pid in row["verifiable"]["catalog"]:
            pref = catalog.get_preference(pid)
            assert pref.check(good), f"{where}: the aligned option fails {pid}"
            assert not any(pref.check(b) for b in bad), f"{where}: a violating option passes {pid}"


def _filler() -> list:
    return json.loads(FILLER.read_text(encoding="utf-8"))


def test_filler_shape_and_size():
    filler = _filler()
    assert isinstance(filler, list) and filler
    pairs, chars, seen, pair_chars = 0, 0, set(), []
    for c, conv in enumerate(filler):
        assert isinstance(conv, list) and conv and len(conv) % 2 == 0, c
        for m, msg in enumerate(conv):
            assert set(msg) == {"role", "content"}, (c, m)
            assert msg["role"] == ("user" if m % 2 == 0 else "assistant"), (c, m)
            assert isinstance(msg["content"], str) and msg["content"].strip(), (c, m)
            chars += len(msg["content"])
        for m in range(0, len(conv), 2):
            pair = (conv[m]["content"], conv[m + 1]["content"])
            assert pair not in seen, f"duplicate pair in conversation {c}"
            seen.add(pair)
            pair_chars.append(len(pair[0]) + len(pair[1]))
            pairs += 1
    assert pairs >= 300
    assert chars / 4 >= 90_000, f"estimated tokens {chars / 4:.0f}"
    # PrefEval's scale: 300 turns (298 filler pairs) come to roughly 100k tokens.
    assert sum(pair_chars[:298]) / 4 >= 85_000, f"first 298 pairs: {sum(pair_chars[:298]) / 4:.0f} tokens"


def test_filler_does_not_mention_dataset_preferences(dataset):
    text = " ".join(m["content"] for conv in _filler() for m in conv).lower()
    for where, row in _rows(dataset, "explicit"):
        assert row["preference"].lower() not in text, where


def test_filler_is_reproducible_from_generator():
    spec = importlib.util.spec_from_file_location("make_filler", MAKE_FILLER)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    assert module.build_filler() == _filler()
