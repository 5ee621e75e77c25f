"""The typed run record: one :class:`TransitionRecord` per round of a run's ``transitions.jsonl``.

The runner writes it; metrics, benches and training-data builders read it. Keeping the schema in one
frozen dataclass (instead of dict digging in each reader) means a renamed field breaks loudly here,
with the file and line, rather than silently elsewhere.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from persona_lab.core.errors import DataError
from persona_lab.core.io import read_jsonl

try:
    import orjson as _orjson

    _ORJSON_OPTIONS = _orjson.OPT_APPEND_NEWLINE | _orjson.OPT_NON_STR_KEYS
except ImportError:  # pragma: no cover - orjson is a dependency; json is the fallback
    _orjson = None  # type: ignore[assignment]
    _ORJSON_OPTIONS = 0

log = logging.getLogger(__name__)

TRANSITIONS_FILE = "transitions.jsonl"


@dataclass(frozen=True)
class TransitionRecord:
    """One round of one episode, as the runner recorded it.

    ``feedback`` is what the agent was shown; ``info`` is the env's info without the privileged key;
    ``privileged`` is the ground truth of the round (evaluators only); ``agent`` is the agent's
    ``step_info`` (e.g. the preference it used); ``prompt`` is the agent's base prompt for the
    observation (messages), for training sets.
    """

    episode: int
    round: int
    env_id: str
    seed: int
    action: str
    action_hash: str
    reward: float
    terminated: bool
    truncated: bool
    observation: Any = None
    user_id: str | None = None
    doc_id: str | None = None
    prompt: list[dict[str, str]] | None = None
    feedback: Mapping[str, Any] = field(default_factory=dict)
    info: Mapping[str, Any] = field(default_factory=dict)
    privileged: Mapping[str, Any] = field(default_factory=dict)
    agent: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ended(self) -> bool:
        """The episode stopped at this round (the user ended it or the budget ran out)."""
        return self.terminated or self.truncated

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON-ready containers (what ``dataclasses.asdict`` gives, without its
        deep copy of every leaf: that copy was the largest cost of a scripted round)."""
        return {name: _plain(getattr(self, name)) for name in _FIELD_NAMES}

    def json_line(self) -> bytes:
        """The record's ``transitions.jsonl`` line (UTF-8, newline included): the JSON of
        :meth:`to_dict`, encoded straight from the fields. With ``orjson`` (a dependency; ten times
        faster than :mod:`json` on a 3 KB record, which was most of a scripted round's recording
        cost), a non-finite float inside a nested value is written as ``null`` (JSON has no NaN);
        a non-finite reward falls back to :mod:`json` so that the record still reads back."""
        fields = {name: getattr(self, name) for name in _FIELD_NAMES}
        if _orjson is not None and math.isfinite(self.reward):
            try:
                return _orjson.dumps(fields, default=_json_default, option=_ORJSON_OPTIONS)
            except TypeError:  # an integer beyond 64 bits, a non-JSON key: json copes
                pass
        return (json.dumps(fields, ensure_ascii=False, default=_json_default) + "\n").encode("utf-8")

    @classmethod
    def from_dict(cls, row: Mapping[str, Any], *, path: str | None = None, line: int | None = None) -> TransitionRecord:
        """Validate one JSONL row; a missing or mistyped field is a :class:`DataError` naming it."""
        missing = [f.name for f in _REQUIRED if f.name not in row]
        if missing:
            raise DataError(f"transition record lacks {missing}", path=path, row=line)
        known = {f.name for f in dataclasses.fields(cls)}
        try:
            rec = cls(**{k: v for k, v in row.items() if k in known})
            int(rec.episode), int(rec.round), float(rec.reward)
        except (TypeError, ValueError) as exc:
            raise DataError(f"bad transition record: {exc}", path=path, row=line) from None
        return rec


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(TransitionRecord))


def _plain(value: Any) -> Any:
    """Fresh dicts and lists down to the leaves (immutable scalars are shared, not copied); nested
    dataclasses become dicts, as with ``dataclasses.asdict``."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value) if not hasattr(value, "_fields") else \
            type(value)(*(_plain(v) for v in value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def _json_default(value: Any) -> Any:
    """What ``to_dict`` would have made of a value JSON does not know (``str`` for the rest, as
    :func:`persona_lab.core.io.append_jsonl` does)."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):  # a named tuple (orjson takes plain ones): an array, as json writes it
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


_REQUIRED = [f for f in dataclasses.fields(TransitionRecord) if f.default is dataclasses.MISSING
             and f.default_factory is dataclasses.MISSING]


def iter_records(path: str | os.PathLike[str]) -> Iterable[TransitionRecord]:
    """The records of one ``transitions.jsonl`` (a torn last line is skipped)."""
    for i, row in enumerate(read_jsonl(path), start=1):
        yield TransitionRecord.from_dict(row, path=str(path), line=i)


def read_records(run_dir: str | os.PathLike[str]) -> list[TransitionRecord]:
    """Every record of a run directory (or of a ``transitions.jsonl`` path), in file order, with
    duplicated (episode, round) keys dropped loudly (see :func:`unique_records`)."""
    path = Path(run_dir)
    if path.is_dir():
        path = path / TRANSITIONS_FILE
    if not path.exists():
        raise DataError("no transitions recorded", path=str(path))
    return unique_records(iter_records(path), path=str(path))


def unique_records(records: Iterable[TransitionRecord], *, path: str | None = None) -> list[TransitionRecord]:
    """The records with each (episode, round) key kept once (its first occurrence).

    Two writers on one run folder (the runner's lock prevents it; a copy-paste of files does not)
    leave a key twice; counting it twice would skew every metric. Identical repeats are dropped with a
    warning; repeats with a different action mean two different runs were mixed, and are refused.
    """
    seen: dict[tuple[int, int], TransitionRecord] = {}
    dropped = 0
    for rec in records:
        key = (rec.episode, rec.round)
        first = seen.get(key)
        if first is None:
            seen[key] = rec
            continue
        if first.action_hash != rec.action_hash:
            raise DataError(f"episode {rec.episode} round {rec.round} is recorded twice with different actions "
                            "(two runs were written into one folder)", path=path,
                            hint="rerun into a new --out; keep one writer per run folder")
        dropped += 1
    if dropped:
        log.warning("%s: %d duplicated (episode, round) record(s) ignored; a run folder should have one writer",
                    path or "records", dropped)
    return list(seen.values())


def episodes(records: Iterable[TransitionRecord]) -> dict[int, list[TransitionRecord]]:
    """Records grouped by episode, each episode sorted by round (duplicated keys dropped loudly)."""
    out: dict[int, list[TransitionRecord]] = defaultdict(list)
    for rec in unique_records(records):
        out[rec.episode].append(rec)
    return {e: sorted(recs, key=lambda r: r.round) for e, recs in sorted(out.items())}


def is_complete(records: list[TransitionRecord], rounds: int) -> bool:
    """An episode's sorted records hold every round 0..k with round k its end (or k = rounds - 1)."""
    if not records:
        return False
    got = [r.round for r in records]
    last = records[-1]
    return got == list(range(len(got))) and (last.ended or len(got) >= rounds)
