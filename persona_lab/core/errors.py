"""Typed errors. Every user-facing error says what was wrong and how to fix it.

The CLI turns :class:`PersonaLabError` into a one-paragraph message and exit code 2 (bad input) or 3
(a backend that kept failing); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class PersonaLabError(Exception):
    """Base class of errors a user can act on.

    Args:
        message: what went wrong, naming the bad value.
        hint: how to fix it (appended to the message).
    """

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message}\n  hint: {hint}")


class ConfigError(PersonaLabError):
    """A configuration value, flag or spec string is invalid."""


class UnknownNameError(ConfigError):
    """A registry lookup failed; the message carries a "did you mean" suggestion."""


class DataError(PersonaLabError):
    """A data file is malformed. Names the file, the row and the field when known."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        row: int | str | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path, self.row, self.field = path, row, field
        where = ", ".join(
            part
            for part in (
                f"file {path}" if path is not None else "",
                f"row {row}" if row is not None else "",
                f"field '{field}'" if field is not None else "",
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message, hint=hint)


class BackendError(PersonaLabError):
    """A model backend failed after its retries (or with a fault that retrying cannot fix)."""

    exit_code = 3

    def __init__(self, message: str, *, hint: str | None = None, retryable: bool = False) -> None:
        self.retryable = retryable
        super().__init__(message, hint=hint)


class BackendUnavailableError(BackendError):
    """The backend cannot do what was asked (e.g. token log-probs from a chat-only server)."""
