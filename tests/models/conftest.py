"""Fixtures of the openai-backend tests: no API key from the environment, and a fresh fake server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from persona_lab.testing.fake_server import FakeOpenAIServer


@pytest.fixture(autouse=True)
def _no_ambient_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PERSONA_LAB_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as s:
        yield s
