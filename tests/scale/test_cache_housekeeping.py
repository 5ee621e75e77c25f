"""The response cache's size limit, prune and stats, and `persona-lab cache`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from persona_lab.cli.main import main
from persona_lab.models import Completion, Usage
from persona_lab.models.cache import ResponseCache


def fill(cache: ResponseCache, n: int, spec: str = "fake:a", start: int = 0, size: int = 900) -> None:
    for i in range(start, start + n, 100):
        cache.put_many(spec, [(f"k{j}", Completion("x" * size + str(j), Usage(1, 1))) for j in range(i, min(i + 100, start + n))])


def test_prune_drops_the_oldest_down_to_the_limit(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    fill(cache, 600)
    time.sleep(0.01)
    fill(cache, 200, start=600)
    used = cache.stats()["used_bytes"]
    removed = cache.prune(max_bytes=used // 2)
    st = cache.stats()
    assert st["used_bytes"] <= used // 2 and 0 < removed < 800 and st["entries"] == 800 - removed
    assert set(cache.get_many(["k799", "k0"])) == {"k799"}  # the newest stay, the oldest go
    assert st["file_bytes"] < used  # VACUUM gave the space back


def test_a_size_limit_is_kept_while_writing(tmp_path: Path) -> None:
    limit = 200 * 1024
    cache = ResponseCache(tmp_path, max_bytes=limit)
    fill(cache, 2000)
    assert cache.stats()["used_bytes"] <= limit + 110 * 1024  # checked after each write of 100 answers
    assert 0 < len(cache) < 2000


def test_prune_by_spec_and_age(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    fill(cache, 100, spec="fake:a")
    fill(cache, 50, spec="fake:b", start=100)
    assert cache.stats()["by_spec"] == {"fake:a": 100, "fake:b": 50}
    assert cache.prune(spec="fake:b") == 50
    assert cache.prune(older_than_s=3600) == 0 and cache.prune(older_than_s=0) == 100


def test_cache_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    writer = ResponseCache(tmp_path)
    fill(writer, 300)
    writer.close()  # commits what waits for a group commit (another object reads the file)
    assert main(["cache", "--cache-dir", str(tmp_path), "stats", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["entries"] == 300 and st["by_spec"] == {"fake:a": 300}
    assert main(["cache", "--cache-dir", str(tmp_path), "prune", "--max-mb", "0.1"]) == 0
    assert "dropped" in capsys.readouterr().out
    assert 0 < len(ResponseCache(tmp_path)) < 300
    assert main(["cache", "--cache-dir", str(tmp_path), "prune"]) == 2  # no limit given: a config error
    assert main(["cache", "--cache-dir", str(tmp_path), "stats"]) == 0
    assert "answers" in capsys.readouterr().out


def test_fast_writes_are_group_committed_and_readable_at_once(tmp_path: Path) -> None:
    import sqlite3

    cache = ResponseCache(tmp_path)
    fill(cache, 1, size=10)  # after a quiet spell: committed at once
    raw = sqlite3.connect(tmp_path / "responses.sqlite")
    assert raw.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 1
    cache.put_many("fake:a", [("fast", Completion("y", Usage(1, 1)))])  # right after: waits for the group
    assert "fast" in cache.get_many(["fast"])  # this object sees it meanwhile
    time.sleep(ResponseCache.FLUSH_S * 3)  # the timer commits it
    assert raw.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 2


def test_cache_keys_are_unchanged_by_the_faster_params_encoding() -> None:
    from dataclasses import asdict

    from persona_lab.core.seeding import stable_hash
    from persona_lab.models import ChatRequest, GenerationParams, request_key

    r = ChatRequest.of("hi", GenerationParams(max_new_tokens=7, temperature=0.5, seed=3, stop=("x",)))
    old = asdict(r.params)
    old.pop("extra_body")
    old["stop"] = list(r.params.stop)
    payload = {"v": 1, "spec": "fake:a", "messages": [{"role": "user", "content": "hi"}], "params": old}
    assert request_key("fake:a", r) == stable_hash(payload)
