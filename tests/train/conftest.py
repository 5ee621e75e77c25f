"""Fixtures for the training tests: tiny random chat models (persona_lab.testing.tiny), small
edit-world run folders and TRL-format datasets, all built in code."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def _round(i: int, *, accepted: bool, same: bool = False) -> dict[str, Any]:
    draft = f"Dear team, I am writing to tell you at length about item number {i} and more."
    edited = draft if accepted or same else f"Hi team: item {i}."
    return {
        "episode": i // 3,
        "round": i % 3,
        "env_id": "persona_lab/EditEmail-v0",
        "seed": 0,
        "action_hash": f"h{i}",
        "terminated": False,
        "truncated": i % 3 == 2,
        "user_id": f"u{i % 2}",
        "doc_id": f"doc-{i:02d}",
        "prompt": [
            {"role": "system", "content": "You draft short emails."},
            {"role": "user", "content": f"Write an email about item {i}."},
        ],
        "action": draft,
        "reward": 0.0 if accepted else -7.0,
        "info": {"edited_text": edited, "accepted": accepted, "cost": 0 if accepted else 7},
    }


@pytest.fixture
def make_edit_run(tmp_path: Path) -> Callable[..., Path]:
    """``make_edit_run(n_edited, n_accepted, n_same=0, extra_lines=())`` -> a run folder whose
    transitions.jsonl has that many edited, accepted and unchanged-but-not-accepted rounds."""

    def make(n_edited: int, n_accepted: int, n_same: int = 0, extra_lines: tuple[str, ...] = (), name: str = "run") -> Path:
        run = tmp_path / name
        run.mkdir()
        lines = []
        i = 0
        for kind, count in (("edited", n_edited), ("accepted", n_accepted), ("same", n_same)):
            for _ in range(count):
                lines.append(json.dumps(_round(i, accepted=kind == "accepted", same=kind == "same")))
                i += 1
        lines.extend(extra_lines)
        (run / "transitions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return run

    return make


@pytest.fixture
def tiny() -> tuple[Any, Any]:
    """A fresh tiny random Llama and its byte-level ChatML tokenizer."""
    from persona_lab.testing.tiny import tiny_chat_model

    return tiny_chat_model(seed=0)


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model saved as a folder (what ``--base`` and ``hf:<folder>`` load)."""
    from persona_lab.testing.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


def preference_rows(n: int = 8) -> list[dict[str, Any]]:
    return [
        {
            "prompt": [{"role": "user", "content": f"Write note {i}."}],
            "chosen": [{"role": "assistant", "content": f"Short note {i}."}],
            "rejected": [{"role": "assistant", "content": f"A very long and rambling note number {i}, sorry."}],
        }
        for i in range(n)
    ]


@pytest.fixture
def pref_dataset() -> Any:
    from datasets import Dataset

    return Dataset.from_list(preference_rows())


@pytest.fixture
def sft_dataset() -> Any:
    from datasets import Dataset

    return Dataset.from_list(
        [{"prompt": r["prompt"], "completion": r["chosen"]} for r in preference_rows()]
    )
