"""Core helpers: registry, seeding, atomic IO."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from persona_lab.core import (
    DataError,
    Registry,
    UnknownNameError,
    append_jsonl,
    atomic_write_json,
    derive_seed,
    make_rng,
    read_jsonl,
    repair_jsonl,
)


def test_registry_did_you_mean() -> None:
    reg: Registry[int] = Registry("widget", "persona-lab ls widgets")
    reg.add("cipher", lambda: 1)
    reg.add("continual", lambda: 2)
    assert reg.create("cipher") == 1
    with pytest.raises(UnknownNameError) as info:
        reg.get("ciphre")
    assert "did you mean 'cipher'" in str(info.value)
    assert "persona-lab ls widgets" in str(info.value)
    with pytest.raises(ValueError):
        reg.add("cipher", lambda: 3)


def test_seeds_are_stable_and_distinct() -> None:
    assert derive_seed(1, "a") == derive_seed(1, "a")
    assert derive_seed(1, "a") != derive_seed(1, "b")
    assert make_rng(3).integers(0, 10**9) == make_rng(3).integers(0, 10**9)


def test_atomic_write_leaves_no_temp(tmp_path: Path) -> None:
    atomic_write_json(tmp_path / "x.json", {"a": 1})
    assert (tmp_path / "x.json").read_text().strip().startswith("{")
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_jsonl_torn_last_line(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    append_jsonl(p, {"i": 1})
    append_jsonl(p, {"i": 2})
    with p.open("a") as fh:
        fh.write('{"i": 3, "tr')
    assert [r["i"] for r in read_jsonl(p)] == [1, 2]
    with pytest.raises(DataError):
        list(read_jsonl(p, strict=True))
    assert repair_jsonl(p) > 0
    append_jsonl(p, {"i": 4})
    assert [r["i"] for r in read_jsonl(p, strict=True)] == [1, 2, 4]


def test_jsonl_bad_middle_line_names_the_line(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    p.write_text('{"i": 1}\nnot json\n{"i": 3}\n')
    with pytest.raises(DataError, match="row 2"):
        list(read_jsonl(p))
    assert os.path.exists(p)
