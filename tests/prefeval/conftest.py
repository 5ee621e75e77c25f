"""Fixtures: the real PrefEval sample (when present) and a tiny dataset + filler written in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


def _find_sample() -> Path:
    """``../shared/data/prefeval-sample`` seen from the checkout (or from a worktree one level deeper)."""
    for up in Path(__file__).resolve().parents[2].parents:
        cand = up / "shared/data/prefeval-sample"
        if cand.is_dir():
            return cand
    return Path(__file__).resolve().parents[2].parent / "shared/data/prefeval-sample"


SAMPLE_DIR = _find_sample()

FORM_FILES = {
    "explicit": "explicit_preference",
    "implicit-choice": "implicit_preference/choice-based",
    "implicit-persona": "implicit_preference/persona-driven",
    "mcq": "mcq_options",
}

# (preference, question, verifiable, aligned option, three other options)
TINY_ROWS: list[tuple[str, str, dict[str, list[str]] | None, str, list[str]]] = [
    (
        "I am allergic to peanuts, so I never eat anything containing them.",
        "What snack should I pack for a long hike?",
        {"forbid": ["peanut", "peanuts", "peanut butter"], "require_any": ["snack", "trail mix", "fruit", "bar"]},
        "Pack sunflower-seed trail mix with dried fruit.",
        ["Pack a peanut butter sandwich.", "Pack a bag of honey-roasted peanuts.", "Pack peanut-butter energy bars."],
    ),
    (
        "I don't drink coffee; caffeine keeps me awake all night.",
        "What should I order at a cafe in the evening?",
        {"forbid": ["espresso", "latte", "cappuccino", "coffee"]},
        "Order a caffeine-free herbal tea such as chamomile.",
        ["Order a double espresso.", "Order a vanilla latte.", "Order a cold brew coffee."],
    ),
    (
        "I get seasick, so I avoid boats.",
        "How should I spend a day in Sydney?",
        None,
        "Walk the coastal path from Bondi to Coogee.",
        ["Take a harbour cruise.", "Go whale watching by boat.", "Take the ferry to Manly."],
    ),
]


def _rows(form: str, topic_rows: list[Any]) -> list[dict[str, Any]]:
    out = []
    for pref, q, verifiable, aligned, others in topic_rows:
        base: dict[str, Any] = {"preference": pref, "question": q, "explanation": f"A generic answer to '{q}' ignores: {pref}"}
        if form == "explicit" and verifiable is not None:
            base["verifiable"] = verifiable
        if form == "implicit-choice":
            options = [aligned, *others]
            base.update(
                {
                    "implicit_query": "Any ideas for me today?",
                    "options": options,
                    "conversation": {
                        "query": "Any ideas for me today?",
                        "assistant_options": "You could: " + "; ".join(reversed(options)),
                        "user_selection": f"I'll go with: {aligned} The others are not for me.",
                        "assistant_acknowledgment": "Great choice.",
                    },
                    "aligned_op": aligned,
                }
            )
        elif form == "implicit-persona":
            base.update(
                {
                    "persona": "A retired teacher who loves gardening",
                    "conversation": {
                        "0": {"user": "I'm planning my garden beds this spring.", "assistant": "Lovely! What will you plant?"},
                        "1": {"user": f"Tomatoes mostly. By the way, {pref[0].lower() + pref[1:]}", "assistant": "Noted. Tomatoes love sun."},
                        "2": {"user": "How often should I water them?", "assistant": "Deeply, two or three times a week."},
                    },
                }
            )
        elif form == "mcq":
            base["classification_task_options"] = [aligned, *others]
        out.append(base)
    return out


def write_dataset(root: Path, topics: dict[str, list[Any]] | None = None) -> Path:
    """Write a dataset in PrefEval's layout: every form of every topic."""
    topics = topics if topics is not None else {"snacks": TINY_ROWS[:2], "travel": TINY_ROWS[2:]}
    for topic, rows in topics.items():
        for form, sub in FORM_FILES.items():
            (root / sub).mkdir(parents=True, exist_ok=True)
            (root / sub / f"{topic}.json").write_text(json.dumps(_rows(form, rows), indent=1), encoding="utf-8")
    return root


def filler_conversations(n_convs: int = 20) -> list[list[dict[str, str]]]:
    out = []
    for i in range(n_convs):
        out.append(
            [
                {"role": "system", "content": "ignored system message"},
                {"role": "user", "content": f"filler question number {i}: how do volcanoes form on island {i}?"},
                {"role": "assistant", "content": f"filler answer {i}: magma rises through the crust near island {i}. " * 3},
                {"role": "user", "content": f"filler follow-up {i}: and geysers?"},
                {"role": "assistant", "content": f"filler reply {i}: groundwater heated by magma erupts as steam."},
            ]
        )
    return out


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    """A 3-item, 2-topic dataset with a 40-pair filler.json next to it."""
    root = write_dataset(tmp_path / "data")
    (root / "filler.json").write_text(json.dumps(filler_conversations(20)), encoding="utf-8")
    return root


@pytest.fixture
def sample_dir() -> Path:
    if not SAMPLE_DIR.is_dir():
        pytest.skip(f"PrefEval sample not present at {SAMPLE_DIR}")
    return SAMPLE_DIR


@pytest.fixture
def make_dataset():
    """``make_dataset(root, topics=None) -> root``: write a dataset in PrefEval's layout."""
    return write_dataset


@pytest.fixture
def form_files() -> dict[str, str]:
    return dict(FORM_FILES)


@pytest.fixture
def make_filler():
    """``make_filler(n_convs) -> list of conversations`` (2 pairs each)."""
    return filler_conversations
