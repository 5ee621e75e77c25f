"""Fakes and contract checks for tests (and for researchers testing their own components)."""

from persona_lab.testing.fakes import FakeChatModel

__all__ = ["FakeChatModel"]
