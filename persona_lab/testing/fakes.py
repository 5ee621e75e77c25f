"""The scripted fake ChatModel, re-exported for tests (it lives in :mod:`persona_lab.models.fake` so
library code never imports the test kit)."""

from persona_lab.models.fake import FakeChatModel

__all__ = ["FakeChatModel"]
