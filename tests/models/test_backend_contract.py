"""The ChatModel contract, parametrized over every registered backend: answers come back in request
order, one per request, and the response cache is transparent (same answers, no second backend call).

A newly registered backend fails ``test_every_backend_has_a_contract_factory`` until a factory that
builds it offline is added to ``FACTORIES`` below, so no backend goes untested.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from persona_lab.models import CachedChatModel, ResponseCache, UsageMeter, create_backend
from persona_lab.models.base import ChatRequest, GenerationParams
from persona_lab.models.registry import BACKEND_INFO, backend_table


@contextmanager
def _fake(tmp: Path) -> Iterator[str]:
    yield "fake:contract"


@contextmanager
def _openai(tmp: Path) -> Iterator[str]:
    from persona_lab.testing.fake_server import FakeOpenAIServer

    with FakeOpenAIServer() as server:
        yield server.spec("contract-model")


@contextmanager
def _hf(tmp: Path) -> Iterator[str]:
    from persona_lab.testing.tiny import save_tiny_model

    yield f"hf:{save_tiny_model(tmp / 'tiny', seed=0)}"


FACTORIES: dict[str, Callable[[Path], object]] = {"fake": _fake, "openai": _openai, "hf": _hf}


def test_every_backend_has_a_contract_factory() -> None:
    backend_table()  # registers the built-in backends
    assert sorted(BACKEND_INFO) == sorted(FACTORIES), "add an offline factory for the new backend to FACTORIES"


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_order_length_and_cache_transparency(name: str, tmp_path: Path) -> None:
    prompts = [f"Say something about topic number {i}." for i in range(5)]
    params = GenerationParams(max_new_tokens=8)
    requests = [ChatRequest.of(p, params) for p in prompts]
    with FACTORIES[name](tmp_path) as spec:
        raw = create_backend(spec)
        direct = [c.text for c in raw.generate(requests)]
        assert len(direct) == len(requests)
        one_by_one = [raw.generate([r])[0].text for r in requests]
        assert one_by_one == direct, "a batched answer depends on its neighbours or the order was lost"
        reversed_texts = [c.text for c in raw.generate(list(reversed(requests)))]
        assert reversed_texts == list(reversed(direct))

        meter = UsageMeter()
        cached = CachedChatModel(raw, ResponseCache(tmp_path / "cache"), meter)
        first = [c.text for c in cached.generate(requests)]
        calls = meter.snapshot()["calls"]
        second = [c.text for c in cached.generate(requests)]
        assert first == second == direct
        snap = meter.snapshot()
        assert snap["cache_hits"] == len(requests) and snap["calls"] == calls, "the rerun reached the backend"
