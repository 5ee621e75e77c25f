"""Atomic file IO: results are never half-written, appended lines are never torn."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from persona_lab.core.errors import DataError

_append_lock = threading.Lock()

# Files are created 0644 less the umask, whether appended (transitions.jsonl) or written atomically
# (config.json, summary.json); mkstemp alone would leave the latter 0600. Read once, at import.
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o644 & ~_UMASK


def atomic_write_text(path: str | os.PathLike[str], text: str, *, fsync: bool = True) -> None:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace`` (atomic on POSIX).

    ``fsync=False`` skips flushing the file to the disk before the rename (a few ms): a killed process
    still leaves the old file or the new one, but a power loss may leave an empty file. For files
    that are derived and rewritten (a run's ``summary.json``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush ``path`` and its folder entry to the disk (what ``atomic_write_text(..., fsync=True)``
    does before its rename, for a file written with ``fsync=False``); errors are ignored (best effort)."""
    for target, flags in ((path, os.O_RDONLY), (Path(path).parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))):
        try:
            fd = os.open(target, flags)
        except OSError:
            continue
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)


def read_text(path: str | os.PathLike[str], *, what: str = "file") -> str:
    """The UTF-8 text of a user-given file; a missing, unreadable or non-UTF-8 file is a
    :class:`DataError` naming it (not a traceback)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{what} is not UTF-8 text ({exc.reason} at byte {exc.start})", path=str(path),
                        hint="save it as UTF-8") from None
    except OSError as exc:
        raise DataError(f"cannot read the {what} ({exc.strerror})", path=str(path)) from None


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int = 2, fsync: bool = True) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False, default=str) + "\n", fsync=fsync)


def append_jsonl(path: str | os.PathLike[str], record: Any, *, fsync: bool = False) -> None:
    """Append one JSON line with a single ``O_APPEND`` write.

    A killed process cannot tear a line that the kernel has accepted, so no fsync is needed for
    crash-of-the-process safety (a torn last line, at worst, which :func:`read_jsonl` drops and
    :func:`repair_jsonl` removes). Pass ``fsync=True`` where surviving a power loss matters.
    """
    line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
    with _append_lock, open_append(path) as fd:
        os.write(fd, line.encode("utf-8"))
        if fsync:
            os.fsync(fd)


@contextlib.contextmanager
def open_append(path: str | os.PathLike[str]) -> Iterator[int]:
    """A descriptor of ``path`` opened for ``O_APPEND`` writes (created, with its folder, if missing):
    each ``os.write`` of a whole line lands at the end in one piece, as in :func:`append_jsonl`."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    except FileNotFoundError:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    try:
        yield fd
    finally:
        os.close(fd)


def read_jsonl(path: str | os.PathLike[str], *, strict: bool = False) -> Iterator[dict[str, Any]]:
    """Yield the records of a JSONL file.

    A torn *last* line (a writer killed mid-append) is skipped, unless ``strict``; a bad line
    anywhere else is a :class:`DataError` naming the line.
    """
    path = Path(path)
    if not path.exists():
        return
    with path.open("r", encoding="utf-8") as fh:
        lines = fh.readlines()
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as exc:
            if i == len(lines) and not line.endswith("\n") and not strict:
                return
            raise DataError(f"invalid JSON ({exc.msg})", path=str(path), row=i) from None


def repair_jsonl(path: str | os.PathLike[str]) -> int:
    """Truncate a torn last line (left by a killed writer) so appends start on a clean line.

    Returns the number of bytes removed.
    """
    path = Path(path)
    if not path.exists():
        return 0
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return 0
    cut = data.rfind(b"\n") + 1
    with path.open("r+b") as fh:
        fh.truncate(cut)
    return len(data) - cut
