"""The response cache: hits, misses, threads, processes, corruption."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from persona_lab.models import CachedChatModel, ChatRequest, GenerationParams, ResponseCache, request_key
from persona_lab.testing import FakeChatModel


def _model(tmp_path: Path, responder: object = None) -> tuple[CachedChatModel, FakeChatModel]:
    fake = FakeChatModel(responder or (lambda r: "echo " + r.messages[-1].content))
    return CachedChatModel(fake, ResponseCache(tmp_path)), fake


def test_identical_requests_hit(tmp_path: Path) -> None:
    model, fake = _model(tmp_path)
    req = ChatRequest.of("hello", max_new_tokens=8)
    first = model.generate([req])
    second = model.generate([req])
    assert first[0].text == second[0].text == "echo hello"
    assert fake.calls == 1
    assert not first[0].usage.cache_hit and second[0].usage.cache_hit
    snap = model.meter.snapshot()
    assert snap["calls"] == 1 and snap["cache_hits"] == 1


@pytest.mark.parametrize(
    "other",
    [
        ChatRequest.of("hello!", max_new_tokens=8),
        ChatRequest.of("hello", max_new_tokens=9),
        ChatRequest.of("hello", max_new_tokens=8, temperature=0.7, seed=1),
        ChatRequest.of("hello", max_new_tokens=8, temperature=0.7, seed=2),
        ChatRequest.of([{"role": "system", "content": "x"}, {"role": "user", "content": "hello"}], max_new_tokens=8),
        ChatRequest.of("hello", max_new_tokens=8, stop=("\n",)),
    ],
)
def test_any_change_misses(tmp_path: Path, other: ChatRequest) -> None:
    base = ChatRequest.of("hello", max_new_tokens=8)
    assert request_key("fake:a", base) != request_key("fake:a", other)
    model, fake = _model(tmp_path)
    model.generate([base])
    model.generate([other])
    assert fake.calls == 2


def test_backend_spec_is_part_of_the_key(tmp_path: Path) -> None:
    req = ChatRequest.of("hi")
    assert request_key("fake:a", req) != request_key("fake:b", req)


def test_duplicates_in_one_batch_are_sent_once(tmp_path: Path) -> None:
    model, fake = _model(tmp_path)
    out = model.generate([ChatRequest.of("a"), ChatRequest.of("a"), ChatRequest.of("b")])
    assert [c.text for c in out] == ["echo a", "echo a", "echo b"]
    assert len(fake.requests) == 2
    assert [c.usage.cache_hit for c in out] == [False, True, False]


def test_eight_threads(tmp_path: Path) -> None:
    model, fake = _model(tmp_path)
    errors: list[BaseException] = []
    results: dict[int, list[str]] = {}

    def work(i: int) -> None:
        try:
            reqs = [ChatRequest.of(f"p{j % 10}") for j in range(i, i + 20)]
            results[i] = [c.text for c in model.generate(reqs)]
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, texts in results.items():
        assert texts == [f"echo p{j % 10}" for j in range(i, i + 20)]
    assert len(model.cache) == 10
    # every distinct prompt reached the backend at least once and the rest were hits
    snap = model.meter.snapshot()
    assert snap["calls"] + snap["cache_hits"] == 160
    assert 10 <= snap["calls"] < 160


def test_second_process_reads_the_same_file(tmp_path: Path) -> None:
    model, _ = _model(tmp_path)
    model.generate([ChatRequest.of("shared", max_new_tokens=5)])
    code = (
        "from persona_lab.models import ResponseCache, ChatRequest, request_key\n"
        f"c = ResponseCache({str(tmp_path)!r})\n"
        "k = request_key('fake:fake', ChatRequest.of('shared', max_new_tokens=5))\n"
        "hit = c.get_many([k])\n"
        "print(hit[k].text)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "echo shared"


def test_corrupt_file_is_set_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "responses.sqlite"
    path.write_bytes(b"this is not a sqlite database" * 100)
    model, fake = _model(tmp_path)
    with caplog.at_level("WARNING"):
        out = model.generate([ChatRequest.of("x")])
    assert out[0].text == "echo x" and fake.calls == 1
    assert "unreadable" in caplog.text
    aside = list(tmp_path.glob("responses.sqlite.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")


def test_no_cache_passes_through(tmp_path: Path) -> None:
    fake = FakeChatModel("x")
    model = CachedChatModel(fake, None)
    model.generate([ChatRequest.of("a")])
    model.generate([ChatRequest.of("a")])
    assert fake.calls == 2 and model.meter.snapshot()["cache_hits"] == 0


def test_generation_params_validate() -> None:
    with pytest.raises(ValueError, match="max_new_tokens"):
        GenerationParams(max_new_tokens=0)
    with pytest.raises(ValueError, match="temperature"):
        GenerationParams(temperature=-1)


def test_backends_register_once_under_concurrent_first_use() -> None:
    """A fresh process whose first model opens happen in 8 threads at once (the bench does this)."""
    code = (
        "from concurrent.futures import ThreadPoolExecutor\n"
        "from persona_lab.models import create_backend\n"
        "with ThreadPoolExecutor(8) as pool:\n"
        "    print(sorted(set(pool.map(lambda _: create_backend('fake').spec, range(8)))))\n"
    )
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "['fake:fake']"
