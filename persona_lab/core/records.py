"""The typed run record: one :class:`TransitionRecord` per round of a run's ``transitions.jsonl``.

The runner writes it; metrics, benches and training-data builders read it. Keeping the schema in one
frozen dataclass (instead of dict digging in each reader) means a renamed field breaks loudly here,
with the file and line, rather than silently elsewhere.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from persona_lab.core.errors import DataError
from persona_lab.core.io import read_jsonl

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
        return dataclasses.asdict(self)

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
