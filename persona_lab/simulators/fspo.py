"""FSPO's world: verifiable synthetic users, their preference pairs, and few-shot episodes.

FSPO (few-shot preference optimization) treats each user as a task: a model sees N of a user's
preference pairs (question, preferred answer, dispreferred answer) and must produce that user's
preferred answer to a new question. Its synthetic users need *diversity* and *self-consistency*;
the verifiable catalog (:mod:`persona_lab.simulators.catalog`) gives both by construction:

- a user is ``k`` mutually compatible catalog preferences; the description is their statements;
- ``preferred`` = a base answer with the user's editors applied; ``dispreferred`` = the base answer,
  an answer edited towards conflicting preferences (``contrast``), or one that satisfies all but one
  of the user's preferences (``partial``). Every pair is verified by the user's checkers: the
  preferred answer satisfies all of them, the dispreferred one strictly fewer, so labels are correct
  by construction and evaluation needs no judge.

Splits (saved with the data, :func:`build_fspo_data`):

- ``train`` users: their pairs on the *train questions* are the training data;
- ``heldout`` users: fresh users of the same distribution whose combination no train user has;
- ``interpolated`` users: each holds a pair of preferences that no train user holds together
  (a fraction of all compatible pairs is reserved for them), while every single preference of
  theirs is seen in training: FSPO's held-out trait combinations (the reviews split).

Every user also has pairs on the *eval questions*, which no training episode ever uses as a query
or a shot; evaluation asks eval questions with shots from the user's train-question pairs.

Episodes (:func:`episode_text`) are the paper's raw text::

    # Example 1
    ## Question
    <x_1>
    ## Preferred Response
    <y_w,1>
    ## Dispreferred Response
    <y_l,1>

    ... (N examples)

    # Task
    <instruction>
    ## Question
    <x>

with completion ``## Preferred Response\\n<y_w>`` (the description variant first writes
``## User Description\\n<description>``). The conversational variant puts the same text in one user
message and the completion in the assistant message, so chat backends evaluate exactly the prompt
a chat model was trained on.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from persona_lab.core.errors import ConfigError, DataError
from persona_lab.core.io import atomic_write_json, atomic_write_text
from persona_lab.core.seeding import make_rng, stable_hash
from persona_lab.simulators import catalog
from persona_lab.simulators.catalog.layout import has_words

SPLITS = ("train", "heldout", "interpolated")
DISPREFERRED_KINDS = ("base", "contrast", "partial")
#: Word limits that the ~40-word base answers nearly always meet: they would never show in a pair.
DEFAULT_EXCLUDE = ("length.max_words_200", "length.max_words_120", "length.max_words_80")
MAX_MISSES = 2000  # consecutive rejected draws before a population is declared too large
NO_PREFERENCE = "No particular preferences about how answers are written."
DATA_VERSION = 1

USERS_FILE = "users.jsonl"
PAIRS_FILE = "pairs.jsonl"
META_FILE = "meta.json"


# --- questions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FSPOQuestion:
    """An open-ended request with the scripted backend's base answer (plain, generic prose)."""

    id: str
    topic: str
    text: str
    answer: str


@lru_cache(maxsize=1)
def load_questions() -> tuple[FSPOQuestion, ...]:
    """The packaged question set (208 requests over 26 topics, written for persona-lab)."""
    path = resources.files("persona_lab") / "data" / "fspo" / "questions.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return tuple(FSPOQuestion(r["id"], r["topic"], r["question"], r["answer"]) for r in rows)


def find_question(text: str) -> FSPOQuestion | None:
    """The packaged question whose text is ``text`` (the scripted assistant's world knowledge)."""
    return _BY_TEXT().get(" ".join(text.split()).lower())


@lru_cache(maxsize=1)
def _BY_TEXT() -> dict[str, FSPOQuestion]:  # noqa: N802 - a cached constant
    return {" ".join(q.text.split()).lower(): q for q in load_questions()}


def base_answer_messages(question: str) -> list[dict[str, str]]:
    """The prompt a model backend answers to produce a base answer (no knowledge of the user)."""
    return [
        {"role": "system", "content": "You are a helpful assistant. Answer in one short paragraph of plain prose."},
        {"role": "user", "content": question},
    ]


def base_answers(questions: Sequence[FSPOQuestion], backend: Any = None, *, max_new_tokens: int = 120) -> dict[str, str]:
    """Base answer per question id: the packaged ones (``backend`` None or ``"scripted"``) or a model's."""
    from persona_lab.models import is_scripted

    if backend is None or (isinstance(backend, str) and is_scripted(backend)):
        return {q.id: q.answer for q in questions}
    from persona_lab.models import resolve_chat_model
    from persona_lab.models.base import ChatRequest, GenerationParams

    model = resolve_chat_model(backend)
    params = GenerationParams(max_new_tokens=max_new_tokens)
    done = model.generate([ChatRequest.of(base_answer_messages(q.text), params) for q in questions])
    return {q.id: (c.text.strip() or q.answer) for q, c in zip(questions, done)}


# --- users ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FSPOUser:
    """A verifiable synthetic user: ``k`` compatible catalog preferences."""

    id: str
    preference_ids: tuple[str, ...]
    split: str

    @property
    def description(self) -> str:
        return describe_user(self.preference_ids)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "preference_ids": list(self.preference_ids), "split": self.split,
                "description": self.description}


def describe_user(ids: Iterable[str]) -> str:
    """The plain-English description of a user: their preferences' statements (canonical order)."""
    ids = list(ids)
    return catalog.describe(ids) if ids else NO_PREFERENCE


def satisfied_share(text: str, ids: Sequence[str]) -> float:
    """The share of ``ids`` whose checkers ``text`` satisfies (1.0 for no ids)."""
    if not ids:
        return 1.0
    return sum(catalog.satisfied(text, ids).values()) / len(ids)


def _pairs_of(ids: Iterable[str]) -> set[tuple[str, str]]:
    return {tuple(sorted(p)) for p in itertools.combinations(ids, 2)}  # type: ignore[misc]


# --- pairs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreferencePair:
    """One verified preference pair of a user on a question.

    ``dispreferred_ids`` are the preferences the dispreferred answer was edited towards (empty for the
    base answer): the description variant's rejected completion describes that user.
    """

    user_id: str
    question_id: str
    question: str
    preferred: str
    dispreferred: str
    dispreferred_kind: str
    dispreferred_ids: tuple[str, ...]
    preferred_satisfied: int
    dispreferred_satisfied: int
    question_split: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["dispreferred_ids"] = list(self.dispreferred_ids)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PreferencePair:
        return cls(**{**d, "dispreferred_ids": tuple(d["dispreferred_ids"])})


def make_pair(
    user: FSPOUser,
    question: FSPOQuestion,
    base: str,
    rng: np.random.Generator,
    *,
    question_split: str,
    kinds: Sequence[str] = DISPREFERRED_KINDS,
    allowed: Sequence[str] | None = None,
) -> PreferencePair | None:
    """A verified pair for ``user`` on ``question``, or ``None`` when no valid dispreferred answer exists.

    The preferred answer is ``base`` with the user's editors applied; the dispreferred kind is drawn
    from ``kinds`` and falls back to the others (in order) when it would satisfy every checker.
    """
    ids = list(user.preference_ids)
    preferred = catalog.apply_preferences(base, ids)
    n_pref = sum(catalog.satisfied(preferred, ids).values())
    if n_pref != len(ids):
        return None
    first = int(rng.integers(len(kinds)))
    for kind in [kinds[(first + i) % len(kinds)] for i in range(len(kinds))]:
        edited_ids = _dispreferred_ids(kind, ids, base, rng, allowed)
        if edited_ids is None:
            continue
        rejected = catalog.apply_preferences(base, edited_ids) if edited_ids else base
        n_rej = sum(catalog.satisfied(rejected, ids).values())
        if n_rej < n_pref and rejected.strip() != preferred.strip():
            return PreferencePair(user.id, question.id, question.text, preferred, rejected, kind,
                                  tuple(edited_ids), n_pref, n_rej, question_split)
    return None


def _dispreferred_ids(kind: str, ids: list[str], base: str, rng: np.random.Generator,
                      allowed: Sequence[str] | None) -> list[str] | None:
    if kind == "base":
        return []
    if kind == "partial":
        violated = [p for p in ids if not catalog.CATALOG[p].check(base)]
        if not violated:
            return None
        drop = violated[int(rng.integers(len(violated)))]
        return [p for p in ids if p != drop]
    if kind == "contrast":
        pool = set(allowed) if allowed is not None else set(catalog.CATALOG)
        chosen: list[str] = []
        for pid in rng.permutation(ids):
            rivals = sorted(c for c in catalog.CATALOG[str(pid)].conflicts if c in pool)
            rivals = [c for c in rivals if catalog.compatible([*chosen, c])]
            if rivals:
                chosen.append(rivals[int(rng.integers(len(rivals)))])
        if not chosen:  # no preference of the user has a rival: another random user's taste
            others = [p for p in sorted(pool) if p not in ids]
            for pid in rng.permutation(others):
                if len(chosen) == len(ids):
                    break
                if catalog.compatible([*chosen, str(pid)]):
                    chosen.append(str(pid))
        return catalog.canonical_order(chosen)
    raise ConfigError(f"unknown dispreferred kind {kind!r}", hint=f"use one of {DISPREFERRED_KINDS}")


# --- the data set --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FSPODataConfig:
    """How the FSPO users and pairs are drawn (saved in ``meta.json``)."""

    train_users: int = field(default=60, metadata={"help": "users whose pairs are training data"})
    heldout_users: int = field(default=20, metadata={"help": "fresh users of the same distribution"})
    interpolated_users: int = field(
        default=20, metadata={"help": "users holding a preference pair never held together in training"})
    k: int = field(default=3, metadata={"help": "preferences per user"})
    heldout_pair_fraction: float = field(
        default=0.1, metadata={"help": "share of compatible preference pairs reserved for interpolated users"})
    eval_questions: int = field(default=48, metadata={"help": "questions reserved for evaluation (never in training)"})
    train_pairs_per_user: int = field(default=24, metadata={"help": "pairs per user on train questions (shots)"})
    eval_pairs_per_user: int = field(default=8, metadata={"help": "pairs per user on eval questions (queries)"})
    exclude: tuple[str, ...] = field(
        default=DEFAULT_EXCLUDE, metadata={"help": "catalog ids no user holds (the base answers always meet them)"})
    kinds: tuple[str, ...] = field(default=DISPREFERRED_KINDS, metadata={"help": "dispreferred answer kinds"})
    answer_sentences: int = field(
        default=0, metadata={"help": "keep only the first N sentences of each base answer (0: all); short CPU runs"})
    backend: str = field(default="scripted", metadata={"help": "backend that writes the base answers"})
    seed: int = field(default=0, metadata={"help": "seed of users, question split and pairs"})

    def __post_init__(self) -> None:
        n_q = len(load_questions())
        if self.k < 2:
            raise ConfigError(f"k={self.k}: FSPO users need at least 2 preferences (interpolation holds pairs out)",
                              hint="use k >= 2")
        if not 0 < self.heldout_pair_fraction < 1:
            raise ConfigError(f"heldout_pair_fraction={self.heldout_pair_fraction}: must be in (0, 1)")
        if not 0 < self.eval_questions < n_q:
            raise ConfigError(f"eval_questions={self.eval_questions}: must be in 1..{n_q - 1}")
        if self.train_pairs_per_user < 2 or self.eval_pairs_per_user < 1:
            raise ConfigError("train_pairs_per_user must be >= 2 and eval_pairs_per_user >= 1")
        for name in ("train_users", "heldout_users", "interpolated_users", "answer_sentences"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)}: must not be negative")
        for kind in self.kinds:
            if kind not in DISPREFERRED_KINDS:
                raise ConfigError(f"unknown dispreferred kind {kind!r}", hint=f"use some of {DISPREFERRED_KINDS}")
        for pid in self.exclude:
            catalog.get_preference(pid)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["exclude"], d["kinds"] = list(self.exclude), list(self.kinds)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FSPODataConfig:
        d = dict(d)
        d["exclude"], d["kinds"] = tuple(d.get("exclude", DEFAULT_EXCLUDE)), tuple(d.get("kinds", DISPREFERRED_KINDS))
        return cls(**d)


@dataclass
class FSPOData:
    """Users, their verified pairs, the question split and the held-out preference pairs."""

    config: FSPODataConfig
    users: list[FSPOUser]
    pairs: list[PreferencePair]
    train_questions: tuple[str, ...]
    eval_questions: tuple[str, ...]
    heldout_pairs: tuple[tuple[str, str], ...]
    skipped: int = 0

    def users_in(self, split: str) -> list[FSPOUser]:
        if split not in SPLITS:
            raise ConfigError(f"unknown user split {split!r}", hint=f"use one of {SPLITS}")
        return [u for u in self.users if u.split == split]

    def user(self, user_id: str) -> FSPOUser:
        for u in self.users:
            if u.id == user_id:
                return u
        raise ConfigError(f"no FSPO user {user_id!r} in this data")

    @property
    def pairs_by_user(self) -> dict[str, dict[str, list[PreferencePair]]]:
        """user id -> question split (``train``/``eval``) -> pairs."""
        out: dict[str, dict[str, list[PreferencePair]]] = {u.id: {"train": [], "eval": []} for u in self.users}
        for p in self.pairs:
            out[p.user_id][p.question_split].append(p)
        return out

    def fingerprint(self) -> str:
        return stable_hash({"config": self.config.to_dict(), "n_pairs": len(self.pairs), "version": DATA_VERSION},
                           length=12)

    def save(self, folder: str | os.PathLike[str]) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / USERS_FILE, "".join(json.dumps(u.to_dict()) + "\n" for u in self.users))
        atomic_write_text(folder / PAIRS_FILE, "".join(json.dumps(p.to_dict(), ensure_ascii=False) + "\n"
                                                      for p in self.pairs))
        atomic_write_json(folder / META_FILE, {
            "version": DATA_VERSION,
            "config": self.config.to_dict(),
            "train_questions": list(self.train_questions),
            "eval_questions": list(self.eval_questions),
            "heldout_pairs": [list(p) for p in self.heldout_pairs],
            "skipped": self.skipped,
            "counts": {s: len(self.users_in(s)) for s in SPLITS} | {"pairs": len(self.pairs)},
        })
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> FSPOData:
        folder = Path(folder)
        meta_path = folder / META_FILE
        if not meta_path.is_file():
            raise DataError(f"no {META_FILE} here", path=str(folder),
                            hint="build the data first: persona-lab fspo data --out <folder>")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("version") != DATA_VERSION:
            raise DataError(f"data version {meta.get('version')} is not {DATA_VERSION}", path=str(meta_path),
                            hint="rebuild it with persona-lab fspo data")
        users = []
        for i, line in enumerate((folder / USERS_FILE).read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                r = json.loads(line)
                if r.get("split") not in SPLITS:
                    raise DataError(f"unknown split {r.get('split')!r}", path=str(folder / USERS_FILE), row=i,
                                    field="split")
                users.append(FSPOUser(r["id"], tuple(r["preference_ids"]), r["split"]))
        pairs = [PreferencePair.from_dict(json.loads(line))
                 for line in (folder / PAIRS_FILE).read_text(encoding="utf-8").splitlines() if line.strip()]
        return cls(FSPODataConfig.from_dict(meta["config"]), users, pairs, tuple(meta["train_questions"]),
                   tuple(meta["eval_questions"]), tuple(tuple(p) for p in meta["heldout_pairs"]),
                   int(meta.get("skipped", 0)))


def _first_sentences(text: str, n: int) -> str:
    if n <= 0:
        return text
    parts = re.split(r"(?<=[.!?])\s+", text.strip())
    return " ".join(parts[:n]) or text


def draw_users(config: FSPODataConfig) -> tuple[list[FSPOUser], tuple[tuple[str, str], ...]]:
    """The train, held-out and interpolated users, and the preference pairs held out of training."""
    allowed = [pid for pid in catalog.CATALOG if pid not in set(config.exclude)]
    families = list(dict.fromkeys(catalog.CATALOG[p].family for p in allowed))
    rng = make_rng("fspo-users", config.seed)
    compatible_pairs = sorted(
        (a, b) for a, b in itertools.combinations(sorted(allowed), 2)
        if catalog.CATALOG[a].family != catalog.CATALOG[b].family and catalog.compatible([a, b])
    )
    n_held = max(1, round(config.heldout_pair_fraction * len(compatible_pairs)))
    held = {compatible_pairs[int(i)] for i in rng.choice(len(compatible_pairs), n_held, replace=False)}
    excluded = [p for p in catalog.CATALOG if p not in allowed]

    def draw(must_hold: tuple[str, str] | None) -> tuple[str, ...] | None:
        try:
            if must_hold is None:
                return tuple(catalog.sample_compatible(rng, config.k, families=families, exclude=excluded))
            a, b = must_hold
            fams = [f for f in families if f not in (catalog.CATALOG[a].family, catalog.CATALOG[b].family)]
            rivals = set(catalog.CATALOG[a].conflicts | catalog.CATALOG[b].conflicts)
            rest = catalog.sample_compatible(rng, config.k - 2, families=fams, exclude=[*excluded, *rivals])
            ids = catalog.canonical_order([a, b, *rest])
            return tuple(ids) if catalog.compatible(ids) else None
        except ConfigError:
            return None

    seen: set[tuple[str, ...]] = set()

    def collect(want: int, holding: bool, ok: Any) -> list[tuple[str, ...]]:
        got: list[tuple[str, ...]] = []
        misses = 0
        held_list = sorted(held)
        while len(got) < want and misses < MAX_MISSES:
            ids = draw(held_list[int(rng.integers(len(held_list)))] if holding else None)
            if ids is None or ids in seen or not ok(ids):
                misses += 1
                continue
            got.append(ids)
            seen.add(ids)
            misses = 0
        return got

    train = collect(config.train_users, False, lambda ids: not _pairs_of(ids) & held)
    trained_prefs = {p for ids in train for p in ids}
    heldout = collect(config.heldout_users, False, lambda ids: not _pairs_of(ids) & held)
    interp = collect(config.interpolated_users, True, lambda ids: set(ids) <= trained_prefs)
    for name, got, want in (("train", train, config.train_users), ("heldout", heldout, config.heldout_users),
                            ("interpolated", interp, config.interpolated_users)):
        if len(got) < want:
            raise ConfigError(f"could draw only {len(got)} distinct {name} users of {want}",
                              hint="ask for fewer users, a larger k or a larger heldout_pair_fraction")
    users = [FSPOUser(f"{split}-{i:03d}", ids, split)
             for split, group in (("train", train), ("heldout", heldout), ("interpolated", interp))
             for i, ids in enumerate(group)]
    return users, tuple(sorted(held))


def build_fspo_data(config: FSPODataConfig | None = None, *, backend: Any = None) -> FSPOData:
    """Draw the users, split the questions and build every user's verified pairs.

    Args:
        config: sizes and seed (defaults: :class:`FSPODataConfig`).
        backend: a ChatModel (or spec) for the base answers; default ``config.backend`` (scripted).
    """
    config = config or FSPODataConfig()
    questions = load_questions()
    users, held = draw_users(config)
    rng = make_rng("fspo-questions", config.seed)
    order = [int(i) for i in rng.permutation(len(questions))]
    eval_q = tuple(sorted(questions[i].id for i in order[: config.eval_questions]))
    train_q = tuple(sorted(questions[i].id for i in order[config.eval_questions:]))
    by_id = {q.id: q for q in questions}
    bases = base_answers(questions, backend if backend is not None else config.backend)
    bases = {qid: _first_sentences(a, config.answer_sentences) for qid, a in bases.items()}
    allowed = [pid for pid in catalog.CATALOG if pid not in set(config.exclude)]
    pairs: list[PreferencePair] = []
    skipped = 0
    for user in users:
        urng = make_rng("fspo-pairs", config.seed, user.id)
        for qsplit, pool, want in (("train", train_q, config.train_pairs_per_user),
                                   ("eval", eval_q, config.eval_pairs_per_user)):
            got = 0
            for qi in urng.permutation(len(pool)):
                if got == want:
                    break
                q = by_id[pool[int(qi)]]
                pair = make_pair(user, q, bases[q.id], urng, question_split=qsplit, kinds=config.kinds,
                                 allowed=allowed)
                if pair is None:
                    skipped += 1
                    continue
                pairs.append(pair)
                got += 1
    return FSPOData(config, users, pairs, train_q, eval_q, held, skipped)


# --- episodes ------------------------------------------------------------------------------------

TASK_INSTRUCTION = (
    "Above are examples of one user's preferences: for each question, the response this user preferred "
    "and one they did not. Write the response this user would prefer to the new question."
)
DESCRIPTION_INSTRUCTION = (
    "Above are examples of one user's preferences: for each question, the response this user preferred "
    "and one they did not. First describe this user's preferences under ## User Description, then write "
    "the response this user would prefer to the new question under ## Preferred Response."
)
SYSTEM_PROMPT = "You personalize answers: you learn a user's preferences from their examples and follow them."
PREFERRED_HEADER = "## Preferred Response"
DESCRIPTION_HEADER = "## User Description"


@dataclass(frozen=True)
class Episode:
    """N shots and a query pair of one user."""

    user_id: str
    shots: tuple[PreferencePair, ...]
    query: PreferencePair


def episode_text(shots: Sequence[PreferencePair | tuple[str, str, str]], question: str, *,
                 description: bool = False) -> str:
    """The paper's raw-text prompt: N examples, then ``# Task`` with the instruction and the question.

    A shot is a :class:`PreferencePair` or a ``(question, preferred, dispreferred)`` tuple.
    """
    blocks = []
    for i, shot in enumerate(shots, start=1):
        q, w, rej = shot if isinstance(shot, tuple) else (shot.question, shot.preferred, shot.dispreferred)
        blocks.append(
            f"# Example {i}\n## Question\n{q}\n{PREFERRED_HEADER}\n{w}\n"
            f"## Dispreferred Response\n{rej}\n"
        )
    task = DESCRIPTION_INSTRUCTION if description else TASK_INSTRUCTION
    blocks.append(f"# Task\n{task}\n## Question\n{question}\n")
    return "\n".join(blocks)


def completion_text(answer: str, description: str | None = None) -> str:
    """The completion: ``## Preferred Response`` + answer, after ``## User Description`` when given."""
    head = f"{DESCRIPTION_HEADER}\n{description}\n" if description is not None else ""
    return f"{head}{PREFERRED_HEADER}\n{answer}"


def episode_messages(shots: Sequence[PreferencePair | tuple[str, str, str]], question: str, *, description: bool = False,
                     system: bool = True) -> list[dict[str, str]]:
    """The conversational variant: the same text as one user message (after a short system prompt)."""
    msgs = [{"role": "system", "content": SYSTEM_PROMPT}] if system else []
    return [*msgs, {"role": "user", "content": episode_text(shots, question, description=description)}]


def zero_shot_messages(question: str, description: str | None = None) -> list[dict[str, str]]:
    """The baselines' prompt: the question alone, or with the user's description (the oracle)."""
    system = "You are a helpful assistant."
    if description:
        system += f"\nThe user wants answers written this way; follow it exactly: {description}"
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


_ANSWER_END_RE = re.compile(r"\n(?:## Dispreferred Response|# Example \d+|# Task)\b")


def answer_from_completion(text: str) -> str:
    """The answer in a completion: the text after the first ``## Preferred Response`` header (all of it
    when there is none), up to a header that starts another part of the episode format
    (``## Dispreferred Response``, ``# Example i``, ``# Task``), which small models often go on to write.
    Markdown headings inside the answer (``## Overview``) are kept."""
    if PREFERRED_HEADER in text:
        text = text.split(PREFERRED_HEADER, 1)[1]
    elif DESCRIPTION_HEADER in text:  # a description with no answer header: nothing after it is the answer
        text = ""
    return _ANSWER_END_RE.split("\n" + text.lstrip("\n"), maxsplit=1)[0].strip()


def draw_episodes(
    pairs: Sequence[PreferencePair],
    n_shots: int,
    rng: np.random.Generator,
    *,
    draws: int | None = None,
    queries: Sequence[PreferencePair] | None = None,
) -> list[Episode]:
    """Episodes of one user, re-drawn as the paper does: shuffle the pairs, take N shots and the next
    as the query, ``draws`` times (default ``2·(N+1)``). With ``queries``, each query pair gets its own
    N shots drawn from ``pairs`` instead (evaluation)."""
    if n_shots < 0:
        raise ConfigError(f"n_shots={n_shots}: must be >= 0")
    if queries is not None:
        if len(pairs) < n_shots:
            raise ConfigError(f"{len(pairs)} shot pairs for {n_shots} shots", hint="use fewer shots")
        out = []
        for q in queries:
            idx = rng.permutation(len(pairs))[:n_shots]
            out.append(Episode(q.user_id, tuple(pairs[int(i)] for i in idx), q))
        return out
    if len(pairs) < n_shots + 1:
        raise ConfigError(f"{len(pairs)} pairs for {n_shots} shots and a query",
                          hint="use fewer shots or more train_pairs_per_user")
    draws = 2 * (n_shots + 1) if draws is None else draws
    out = []
    for _ in range(draws):
        idx = rng.permutation(len(pairs))[: n_shots + 1]
        chosen = [pairs[int(i)] for i in idx]
        out.append(Episode(chosen[0].user_id, tuple(chosen[:-1]), chosen[-1]))
    return out


def episode_row(episode: Episode, *, description: str | None = None, conversational: bool = False) -> dict[str, Any]:
    """One TRL preference row (``prompt``/``chosen``/``rejected``) of an episode.

    With ``description`` (the user's), the description variant: the chosen completion carries it, the
    rejected one the description of the user who would prefer the dispreferred answer.
    """
    q = episode.query
    use_desc = description is not None
    chosen = completion_text(q.preferred, description if use_desc else None)
    rejected = completion_text(q.dispreferred, describe_user(q.dispreferred_ids) if use_desc else None)
    meta = {"user_id": episode.user_id, "question_id": q.question_id,
            "shot_questions": [s.question_id for s in episode.shots]}
    if conversational:
        prompt = episode_messages(episode.shots, q.question, description=use_desc)
        return {"prompt": prompt, "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}], **meta}
    return {"prompt": episode_text(episode.shots, q.question, description=use_desc), "chosen": chosen,
            "rejected": rejected, **meta}


def training_rows(
    data: FSPOData,
    *,
    n_shots: int = 4,
    draws: int | None = None,
    description: bool = False,
    conversational: bool = True,
    seed: int = 0,
    split: str = "train",
) -> list[dict[str, Any]]:
    """FSPO training rows: episodes of every ``split`` user over their train-question pairs only."""
    by_user = data.pairs_by_user
    rows = []
    for user in data.users_in(split):
        rng = make_rng("fspo-episodes", seed, user.id)
        for ep in draw_episodes(by_user[user.id]["train"], n_shots, rng, draws=draws):
            rows.append(episode_row(ep, description=user.description if description else None,
                                    conversational=conversational))
    return rows


def eval_episodes(data: FSPOData, split: str, *, n_shots: int = 4, seed: int = 0,
                  per_user: int | None = None) -> list[Episode]:
    """Evaluation episodes: each eval-question pair of each ``split`` user, with N train-question shots."""
    by_user = data.pairs_by_user
    out = []
    for user in data.users_in(split):
        rng = make_rng("fspo-eval", seed, user.id)
        queries = by_user[user.id]["eval"][: per_user if per_user else None]
        out.extend(draw_episodes(by_user[user.id]["train"], n_shots, rng, queries=queries))
    return out


@lru_cache(maxsize=4)
def default_data(seed: int = 0, answer_sentences: int = 0) -> FSPOData:
    """The default data set (built in memory, about a second), shared by envs in one process."""
    return build_fspo_data(FSPODataConfig(seed=seed, answer_sentences=answer_sentences))


_EXAMPLE_RE = re.compile(
    r"# Example \d+\n## Question\n(?P<q>.*?)\n## Preferred Response\n(?P<w>.*?)\n## Dispreferred Response\n"
    r"(?P<l>.*?)\n(?=\n# Example \d+\n|\n# Task\n)",
    re.S,
)
_TASK_RE = re.compile(r"\n?# Task\n.*?\n## Question\n(?P<q>.*?)\n?$", re.S)


def parse_episode(text: str) -> tuple[list[tuple[str, str, str]], str]:
    """``(shots, question)`` of an episode's raw text: each shot is ``(question, preferred, dispreferred)``.

    The inverse of :func:`episode_text` (the public vocabulary an agent may use to read its observation).
    """
    shots = [(m["q"], m["w"], m["l"]) for m in _EXAMPLE_RE.finditer(text)]
    task = _TASK_RE.search(text)
    if task is None:
        raise DataError("not an FSPO episode: no '# Task' block with a '## Question'", field="prompt")
    return shots, task["q"].strip()


@dataclass(frozen=True)
class Verdict:
    """What a user says of an answer: each checker's result (the reward's source), and an LLM
    judge's yes/no when there is one (``None``: no judge, or an answer it gave that was not yes/no)."""

    checks: dict[str, bool]
    llm: bool | None = None
    usage: tuple[dict[str, Any], ...] = ()

    @property
    def satisfied(self) -> int:
        return sum(self.checks.values())

    @property
    def share(self) -> float:
        return self.satisfied / len(self.checks) if self.checks else 1.0


def check_answer(answer: str, preference_ids: Sequence[str]) -> dict[str, bool]:
    """Each checker's result on an answer. An answer with no words satisfies nothing: the catalog
    counts "something present" preferences as met by vacuous text (right for an edit that empties a
    draft), but an empty answer must never beat a real one."""
    checks = catalog.satisfied(answer, preference_ids)
    return checks if has_words(answer) else dict.fromkeys(checks, False)


class CheckerUser:
    """FSPO's scripted user: judges an answer with its preferences' checkers (no model, no judge)."""

    kind = "scripted"

    def judge(self, answer: str, preference_ids: Sequence[str], description: str = "", question: str = "") -> Verdict:
        return Verdict(check_answer(answer, preference_ids))


def judge_messages(description: str, question: str, answer: str) -> list[dict[str, str]]:
    """The LLM judge's prompt: the user's description, the question and the answer; answer Yes or No."""
    return [
        {"role": "system", "content": "You judge whether an answer is written the way a particular user wants."},
        {"role": "user", "content": (
            f"The user's preferences about how answers are written:\n{description}\n\n"
            f"Question:\n{question}\n\nAnswer:\n{answer}\n\n"
            "Does the answer follow every one of these preferences? Reply with Yes or No first."
        )},
    ]


def parse_yes_no(text: str) -> bool | None:
    """``True``/``False`` for a reply starting with yes/no (after punctuation), else ``None``."""
    words = re.findall(r"[a-z]+", text.lower())
    if not words:
        return None
    return True if words[0] == "yes" else False if words[0] == "no" else None


def pairwise_judge_messages(description: str, question: str, first: str, second: str) -> list[dict[str, str]]:
    """The pairwise judge's prompt: the user's description, the question and two answers labelled
    Response 1 and Response 2; reply with the number of the one this user would prefer. The bench
    asks it twice with the answers swapped, so a judge that always names one position scores ties."""
    return [
        {"role": "system", "content": "You compare two answers for a particular user and pick the one they would prefer."},
        {"role": "user", "content": (
            f"The user's preferences about how answers are written:\n{description}\n\n"
            f"Question:\n{question}\n\n# Response 1\n{first}\n\n# Response 2\n{second}\n\n"
            "Which response follows this user's preferences better? Reply with 1 or 2 first."
        )},
    ]


_CHOICE_RE = re.compile(r"^\W*(?:(?:response|answer|option)\s*#?\s*)?([12])(?![\d.,]\d)\b")


def parse_choice(text: str) -> int | None:
    """1 or 2 for a reply that starts with it (``2``, ``Response 1.``, ``**2**``), else ``None``: an
    unparseable reply is a failure to judge, never mapped to either answer."""
    m = _CHOICE_RE.match(text.strip().lower())
    return int(m[1]) if m else None


class LLMJudgeUser(CheckerUser):
    """The checkers still give the verdict that is the reward; an LLM judge told the user's description
    adds its yes/no beside it (unparseable replies are recorded as ``None``: a failure to judge, never
    a silent yes). The model is injected and only called in :meth:`judge`."""

    kind = "llm"

    def __init__(self, model: Any) -> None:
        if model is None:
            raise ConfigError("the llm FSPO user needs a backend for its judge", hint="pass backend=hf:<model>")
        self.model = model

    def judge(self, answer: str, preference_ids: Sequence[str], description: str = "", question: str = "") -> Verdict:
        from persona_lab.models.base import ChatRequest, GenerationParams

        checks = check_answer(answer, preference_ids)
        request = ChatRequest.of(judge_messages(description or describe_user(preference_ids), question, answer),
                                 GenerationParams(max_new_tokens=8))
        (c,) = self.model.generate([request])
        return Verdict(checks, parse_yes_no(c.text), (asdict(c.usage),))
