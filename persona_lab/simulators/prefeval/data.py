"""Loading PrefEval-layout datasets and filler files, with every defect named by file, row and field.

A dataset directory follows the PrefEval benchmark's layout (one JSON array per topic and form)::

    explicit_preference/<topic>.json                    preference, question, explanation
    implicit_preference/choice-based/<topic>.json       + implicit_query, options, conversation, aligned_op
    implicit_preference/persona-driven/<topic>.json     + persona, conversation {"0": {user, assistant}, ...}
    mcq_options/<topic>.json                            + classification_task_options (correct first)

Forms align by row index: row ``i`` of every file of a topic is the same preference/question pair.
persona-lab's own data may add ``"verifiable": {"forbid": [...], "require_any": [...], "catalog": [...]}``
to any row, so generations can be scored without an LLM judge.

Loading never stops at the first bad record: every defect becomes a :class:`Problem` (an ``error``
drops the record or file, a ``warning`` keeps it), and the rest of the data still loads. Call
:meth:`PrefEvalDataset.raise_for_errors` (or pass ``strict=True``) to turn errors into a
:class:`~persona_lab.core.errors.DataError`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from persona_lab.core.errors import ConfigError, DataError, PersonaLabError
from persona_lab.core.messages import Message
from persona_lab.core.seeding import stable_hash

FORMS: tuple[str, ...] = ("explicit", "implicit-choice", "implicit-persona")
"""The three ways a preference is revealed, in the paper's order."""

FORM_DIRS: dict[str, str] = {
    "explicit": "explicit_preference",
    "implicit-choice": "implicit_preference/choice-based",
    "implicit-persona": "implicit_preference/persona-driven",
}
MCQ_DIR = "mcq_options"

_FORM_ALIASES = {
    "choice": "implicit-choice",
    "choice-based": "implicit-choice",
    "implicit_choice": "implicit-choice",
    "persona": "implicit-persona",
    "persona-driven": "implicit-persona",
    "implicit_persona": "implicit-persona",
}

_BASE_FIELDS = ("preference", "question", "explanation")
_KNOWN_FIELDS = {
    "explicit": {*_BASE_FIELDS, "verifiable"},
    "implicit-choice": {*_BASE_FIELDS, "verifiable", "implicit_query", "options", "conversation", "aligned_op"},
    "implicit-persona": {*_BASE_FIELDS, "verifiable", "persona", "conversation"},
    "mcq": {*_BASE_FIELDS, "verifiable", "classification_task_options", "violation_probability"},
}
_CHOICE_TURN_FIELDS = ("query", "assistant_options", "user_selection", "assistant_acknowledgment")


def normalize_form(name: str) -> str:
    """Canonical form name; accepts the directory-style aliases (``choice-based``, ``persona``...)."""
    key = name.strip().lower()
    key = _FORM_ALIASES.get(key, key)
    if key not in FORMS:
        import difflib

        close = difflib.get_close_matches(key, [*FORMS, *_FORM_ALIASES], n=1, cutoff=0.5)
        msg = f"unknown preference form {name!r}"
        if close:
            msg += f"; did you mean {_FORM_ALIASES.get(close[0], close[0])!r}?"
        raise ConfigError(msg, hint=f"forms are: {', '.join(FORMS)}")
    return key


def builtin_data_dir() -> Path:
    """The dataset shipped inside persona-lab (``persona_lab/data/prefeval``)."""
    return Path(str(resources.files("persona_lab") / "data" / "prefeval"))


PREFEVAL_FILLER = "filtered_inter_turns.json"
"""The name of PrefEval's own filler file in its ``benchmark_dataset/`` folder."""


def default_filler_path(data_dir: str | Path | None = None) -> Path:
    """The filler a run uses when none is named: PrefEval's ``filtered_inter_turns.json`` in the
    dataset folder (so numbers on the official data use the paper's filler), else a ``filler.json``
    there, else the built-in filler."""
    if data_dir is not None:
        for name in (PREFEVAL_FILLER, "filler.json"):
            if (Path(data_dir) / name).is_file():
                return Path(data_dir) / name
    return builtin_data_dir() / "filler.json"


def filler_source_note(path: str | Path, data_dir: str | Path | None, explicit: bool) -> str:
    """Why a run uses this filler (printed by the CLI, written to config.json and the report)."""
    path = Path(path)
    if explicit:
        return "given with --filler"
    if path.name == PREFEVAL_FILLER:
        return "PrefEval's original filler, found in --data (pass --filler to use another)"
    if data_dir is not None and path.parent == Path(data_dir):
        return "found in --data (pass --filler to use another)"
    return "persona-lab's built-in synthetic filler (not the paper's; its turns are lighter)"


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Problem:
    """One defect found while loading. ``error`` drops the record (or file); ``warning`` keeps it."""

    severity: Literal["error", "warning"]
    path: str
    row: int | None
    field: str | None
    message: str

    def as_error(self) -> DataError:
        return DataError(self.message, path=self.path, row=self.row, field=self.field)

    def __str__(self) -> str:
        return f"{self.severity}: {self.as_error()}"


@dataclass(frozen=True)
class Verifiable:
    """Judge-free checks of a generation: no ``forbid`` keyword, some ``require_any`` keyword, and
    the named catalog preferences satisfied."""

    forbid: tuple[str, ...] = ()
    require_any: tuple[str, ...] = ()
    catalog: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, list[str]]:
        return {"forbid": list(self.forbid), "require_any": list(self.require_any), "catalog": list(self.catalog)}


@dataclass(frozen=True)
class ExplicitForm:
    """The preference stated in one user turn."""

    preference: str


@dataclass(frozen=True)
class ChoiceForm:
    """The user picks the aligned option among four the assistant offered, revealing the preference."""

    preference: str
    query: str
    options: tuple[str, ...]
    assistant_options: str
    user_selection: str
    assistant_acknowledgment: str

    @property
    def aligned_option(self) -> str:
        return self.options[0]


@dataclass(frozen=True)
class PersonaForm:
    """A persona chat of (user, assistant) turns that mentions the preference in passing."""

    preference: str
    persona: str
    turns: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class PrefEvalItem:
    """One (topic, row): a preference, a question a generic answer would violate, and its forms.

    A form is ``None`` when its file lacks the row or the row was invalid (see the load problems).
    Each form keeps the preference text of its own file (the real data varies it slightly).
    """

    topic: str
    row: int
    preference: str
    question: str
    explanation: str
    explicit: ExplicitForm | None = None
    choice: ChoiceForm | None = None
    persona: PersonaForm | None = None
    mcq_options: tuple[str, ...] | None = None
    violation_probability: float | None = None
    verifiable: Verifiable | None = None

    @property
    def item_id(self) -> str:
        return f"{self.topic}/{self.row}"

    def forms(self) -> tuple[str, ...]:
        """The forms this item has, in :data:`FORMS` order."""
        return tuple(f for f in FORMS if self.form(f) is not None)

    def form(self, name: str) -> ExplicitForm | ChoiceForm | PersonaForm | None:
        name = normalize_form(name)
        return {"explicit": self.explicit, "implicit-choice": self.choice, "implicit-persona": self.persona}[name]

    def preference_for(self, form: str) -> str:
        """This form's preference text (the item's own for the question-only control)."""
        if form == "question-only":
            return self.preference
        block = self.form(form)
        return block.preference if block is not None else self.preference


@dataclass
class PrefEvalDataset:
    """Items in (topic, row) order plus every problem found while loading."""

    root: Path
    items: list[PrefEvalItem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    left_out: list[LeftOutFile] = field(default_factory=list)
    """Stray or duplicate topic files that were not loaded (also reported as warnings)."""

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def topics(self) -> list[str]:
        return sorted({it.topic for it in self.items})

    def raise_for_errors(self) -> None:
        """Raise the first error as a :class:`DataError` (the count of the others in the hint)."""
        errs = self.errors
        if errs:
            first = errs[0]
            more = f"{len(errs) - 1} more error(s); " if len(errs) > 1 else ""
            raise DataError(
                first.message,
                path=first.path,
                row=first.row,
                field=first.field,
                hint=f"{more}`persona-lab prefeval --data {self.root} --validate` lists them all",
            )

    def form_totals(self) -> dict[str, int]:
        """Items per form over all topics ({form: n, "mcq": n}), the figure to compare with the
        paper's 1,000 per form."""
        out = dict.fromkeys((*FORMS, "mcq"), 0)
        for it in self.items:
            for f in it.forms():
                out[f] += 1
            out["mcq"] += it.mcq_options is not None
        return out

    def counts(self) -> dict[str, dict[str, int]]:
        """topic -> {form: items, "mcq": items, "verifiable": items, "items": items}."""
        out: dict[str, dict[str, int]] = {}
        for it in self.items:
            c = out.setdefault(it.topic, {k: 0 for k in (*FORMS, "mcq", "verifiable", "items")})
            c["items"] += 1
            for f in it.forms():
                c[f] += 1
            c["mcq"] += it.mcq_options is not None
            c["verifiable"] += it.verifiable is not None
        return dict(sorted(out.items()))

    def select(
        self, *, topics: Sequence[str] | None = None, limit: int | None = None, verifiable_only: bool = False
    ) -> list[PrefEvalItem]:
        """Items filtered by topic, interleaved across topics (row 0 of every topic, then row 1...)
        so a ``limit`` still covers every topic, then cut to ``limit``."""
        pool = [it for it in self.items if (topics is None or it.topic in topics)]
        if verifiable_only:
            pool = [it for it in pool if it.verifiable is not None]
        if topics is not None:
            unknown = sorted(set(topics) - {it.topic for it in self.items})
            if unknown:
                raise ConfigError(f"unknown topic(s) {unknown}", hint=f"topics in {self.root}: {', '.join(self.topics())}")
        pool.sort(key=lambda it: (it.row, it.topic))
        return pool[:limit] if limit is not None else pool


@dataclass(frozen=True)
class LeftOutFile:
    """A ``.json`` file in a form folder that is not a topic file (an editor's copy, a duplicate)."""

    path: str
    reason: str


_STRAY_NAME = re.compile(r"(?i)(\s|\bcopy\b|\(\d+\)$|~$|\.(bak|orig|old|tmp)$|^\.)")


def _topic_files(paths: Sequence[Path]) -> tuple[dict[str, Path], list[LeftOutFile]]:
    """Topic name -> file, leaving out stray names ("travel_hotel copy.json", "x (1).json", names
    with spaces) and files whose bytes equal an earlier topic file's. A stray copy would otherwise
    become a phantom topic counted in every total."""
    kept: dict[str, Path] = {}
    dropped: list[LeftOutFile] = []
    seen: dict[str, Path] = {}
    for p in sorted(paths, key=lambda q: (bool(_STRAY_NAME.search(q.stem)), q.name)):
        if _STRAY_NAME.search(p.stem):
            base = re.split(r"(?i)\s+copy\b|\s*\(\d+\)$|\s", p.stem)[0]
            like = f" (looks like a copy of {base}.json)" if base in kept else ""
            dropped.append(LeftOutFile(str(p), f"stray file name {p.name!r}{like}"))
            continue
        try:
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
        except OSError:
            digest = ""
        if digest and digest in seen:
            dropped.append(LeftOutFile(str(p), f"duplicate of {seen[digest].name} (same bytes)"))
            continue
        seen[digest] = p
        kept[p.stem] = p
    return kept, dropped


# --------------------------------------------------------------------------- JSON reading


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.unknown: dict[str, list[int]] = {}
        """Unknown field name -> rows, for the file being read (one grouped warning per file)."""

    def flush_unknown(self, path: Path | str) -> None:
        """Report the unknown fields of one file as a single warning, then forget them."""
        if self.unknown:
            parts = [f"{name!r} ({_rows_text(rows)})" for name, rows in sorted(self.unknown.items())]
            first = min(r for rows in self.unknown.values() for r in rows)
            self.warn(path, first, sorted(self.unknown)[0], f"unknown field(s) ignored: {', '.join(parts)}")
        self.unknown = {}

    def error(self, path: Path | str, row: int | None, field: str | None, message: str) -> None:
        self.problems.append(Problem("error", str(path), row, field, message))

    def warn(self, path: Path | str, row: int | None, field: str | None, message: str) -> None:
        self.problems.append(Problem("warning", str(path), row, field, message))


def _rows_text(rows: Sequence[int]) -> str:
    """``row 3`` / ``rows 0-55 (56 rows)`` / ``rows 1, 4, 9``."""
    rows = sorted(set(rows))
    if len(rows) == 1:
        return f"row {rows[0]}"
    if rows == list(range(rows[0], rows[-1] + 1)):
        return f"rows {rows[0]}-{rows[-1]} ({len(rows)} rows)"
    shown = ", ".join(str(r) for r in rows[:8])
    return f"rows {shown}{', ...' if len(rows) > 8 else ''} ({len(rows)} rows)"


def _salvage_array(text: str) -> tuple[list[Any], int]:
    """The complete leading elements of a truncated or damaged JSON array, and where parsing stopped."""
    dec = json.JSONDecoder()
    i = len(text) - len(text.lstrip())
    if not text.startswith("[", i):
        return [], i
    i += 1
    out: list[Any] = []
    while True:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        try:
            obj, i = dec.raw_decode(text, i)
        except json.JSONDecodeError:
            return out, i
        out.append(obj)
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        if i < len(text) and text[i] == ",":
            i += 1
        else:
            return out, i


def _read_json_array(path: Path, col: _Collector) -> list[Any] | None:
    """A JSON array from ``path``; a damaged file yields its complete leading rows plus an error."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        col.error(path, None, None, f"not UTF-8 text ({exc.reason} at byte {exc.start}); file skipped")
        return None
    except OSError as exc:
        col.error(path, None, None, f"cannot read file ({exc.strerror}); file skipped")
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        rows, _ = _salvage_array(text)
        col.error(
            path,
            len(rows),
            None,
            f"invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg}); "
            f"kept the {len(rows)} complete row(s) before it, the rest of the file is lost",
        )
        return rows
    if not isinstance(data, list):
        col.error(path, None, None, f"expected a JSON array of rows, found {type(data).__name__}; file skipped")
        return None
    return data


def _str_field(row: Mapping[str, Any], name: str, path: Path, i: int, col: _Collector, *, where: str | None = None) -> str | None:
    label = where or name
    if name not in row:
        col.error(path, i, label, "missing required field")
        return None
    value = row[name]
    if not isinstance(value, str):
        col.error(path, i, label, f"expected a string, found {type(value).__name__}")
        return None
    if not value.strip():
        col.error(path, i, label, "empty string")
        return None
    return value


def _explanation(row: Mapping[str, Any], path: Path, i: int, col: _Collector) -> str:
    """``explanation`` is documentation only (the original code never reads it): missing or empty is
    a warning and the row is kept."""
    value = row.get("explanation")
    if value is None or (isinstance(value, str) and not value.strip()):
        col.warn(path, i, "explanation", "missing or empty (not used by any test; row kept)")
        return ""
    if not isinstance(value, str):
        col.warn(path, i, "explanation", f"expected a string, found {type(value).__name__} (not used; row kept)")
        return ""
    return value


def _options(row: Mapping[str, Any], name: str, path: Path, i: int, col: _Collector) -> tuple[str, ...] | None:
    if name not in row:
        col.error(path, i, name, "missing required field")
        return None
    value = row[name]
    if not isinstance(value, list) or len(value) != 4:
        got = f"{len(value)} entries" if isinstance(value, list) else type(value).__name__
        col.error(path, i, name, f"expected a list of 4 option strings, found {got}")
        return None
    for j, opt in enumerate(value):
        if not isinstance(opt, str) or not opt.strip():
            col.error(path, i, f"{name}[{j}]", "expected a non-empty string")
            return None
    if len({o.strip() for o in value}) != 4:
        col.error(path, i, name, "options are not distinct")
        return None
    return tuple(value)


def _verifiable(row: Mapping[str, Any], path: Path, i: int, col: _Collector) -> Verifiable | None:
    if "verifiable" not in row or row["verifiable"] is None:
        return None
    v = row["verifiable"]
    if not isinstance(v, dict):
        col.error(path, i, "verifiable", f"expected an object, found {type(v).__name__}")
        return None
    unknown = sorted(set(v) - {"forbid", "require_any", "catalog"})
    if unknown:
        col.warn(path, i, "verifiable", f"unknown key(s) {unknown} ignored (known: forbid, require_any, catalog)")
    parts: dict[str, tuple[str, ...]] = {}
    for key in ("forbid", "require_any", "catalog"):
        vals = v.get(key, [])
        if not isinstance(vals, list) or not all(isinstance(x, str) and x.strip() for x in vals):
            col.error(path, i, f"verifiable.{key}", "expected a list of non-empty strings")
            return None
        parts[key] = tuple(vals)
    if not any(parts.values()):
        col.error(path, i, "verifiable", "has no forbid, require_any or catalog entries")
        return None
    lookup = _catalog_lookup()
    for pid in parts["catalog"]:
        if lookup is not None:
            try:
                lookup(pid)
            except PersonaLabError as exc:
                col.error(path, i, "verifiable.catalog", exc.message)
                return None
    return Verifiable(**parts)


def _catalog_lookup() -> Any | None:
    """``persona_lab.simulators.catalog.get_preference`` when that module exists (imported lazily)."""
    try:
        from persona_lab.simulators import catalog  # type: ignore[attr-defined]
    except ImportError:
        return None
    return getattr(catalog, "get_preference", None)


def _parse_row(kind: str, row: Any, path: Path, i: int, col: _Collector) -> dict[str, Any] | None:
    """Validate one row of a ``kind`` file ("explicit", "implicit-choice", "implicit-persona", "mcq")."""
    if not isinstance(row, dict):
        col.error(path, i, None, f"expected an object, found {type(row).__name__}")
        return None
    n_before = len(col.problems)
    base = {name: _str_field(row, name, path, i, col) for name in ("preference", "question")}
    base["explanation"] = _explanation(row, path, i, col)
    for name in set(row) - _KNOWN_FIELDS[kind]:
        col.unknown.setdefault(str(name), []).append(i)
    out: dict[str, Any] = dict(base)
    out["verifiable"] = _verifiable(row, path, i, col)
    if kind == "implicit-choice":
        out["query"] = _str_field(row, "implicit_query", path, i, col)
        out["options"] = _options(row, "options", path, i, col)
        conv = row.get("conversation")
        if not isinstance(conv, dict):
            col.error(path, i, "conversation", "missing or not an object" if conv is None else f"expected an object, found {type(conv).__name__}")
        else:
            for name in _CHOICE_TURN_FIELDS:
                out[name] = _str_field(conv, name, path, i, col, where=f"conversation.{name}")
        aligned = _str_field(row, "aligned_op", path, i, col)
        if aligned is not None and out["options"] is not None and aligned != out["options"][0]:
            col.error(path, i, "aligned_op", "must equal options[0] (the aligned option comes first)")
        if out.get("query") and isinstance(conv, dict) and isinstance(conv.get("query"), str) and conv["query"] != out["query"]:
            col.warn(path, i, "conversation.query", "differs from implicit_query; the conversation's text is used")
    elif kind == "implicit-persona":
        out["persona"] = _str_field(row, "persona", path, i, col)
        out["turns"] = _persona_turns(row.get("conversation"), path, i, col)
    elif kind == "mcq":
        out["mcq_options"] = _options(row, "classification_task_options", path, i, col)
        vp = row.get("violation_probability")
        if vp is not None and (isinstance(vp, bool) or not isinstance(vp, (int, float)) or not 0 <= vp <= 1):
            col.error(path, i, "violation_probability", f"expected a number in [0, 1], found {vp!r}")
        out["violation_probability"] = float(vp) if isinstance(vp, (int, float)) and not isinstance(vp, bool) else None
    has_error = any(p.severity == "error" for p in col.problems[n_before:])
    return None if has_error else out


def _persona_turns(conv: Any, path: Path, i: int, col: _Collector) -> tuple[tuple[str, str], ...] | None:
    if not isinstance(conv, dict) or not conv:
        col.error(path, i, "conversation", "expected a non-empty object of turns {\"0\": {user, assistant}, ...}")
        return None
    keys = list(conv)
    if sorted(keys, key=lambda k: int(k) if k.isdigit() else -1) != [str(j) for j in range(len(keys))]:
        col.error(path, i, "conversation", f"turn keys must be \"0\"..\"{len(keys) - 1}\", found {keys}")
        return None
    turns = []
    for j in range(len(keys)):
        t = conv[str(j)]
        if not isinstance(t, dict):
            col.error(path, i, f"conversation.{j}", "expected an object with user and assistant")
            return None
        u = _str_field(t, "user", path, i, col, where=f"conversation.{j}.user")
        a = _str_field(t, "assistant", path, i, col, where=f"conversation.{j}.assistant")
        if u is None or a is None:
            return None
        turns.append((u, a))
    return tuple(turns)


# --------------------------------------------------------------------------- dataset


def _similar(a: str, b: str) -> bool:
    from rapidfuzz import fuzz

    return a == b or fuzz.ratio(a, b) >= 80


def load_prefeval(data_dir: str | Path | None = None, *, strict: bool = False) -> PrefEvalDataset:
    """Load and validate a dataset directory in PrefEval's layout (default: the built-in data).

    Args:
        data_dir: the directory holding ``explicit_preference/``, ``implicit_preference/`` and
            ``mcq_options/``.
        strict: raise the first error as a :class:`DataError` instead of collecting it.

    Returns:
        The items (one per topic and row, joined across forms by row index) and every problem.
    """
    root = Path(data_dir) if data_dir is not None else builtin_data_dir()
    if not root.is_dir():
        raise DataError(
            f"dataset directory {root} does not exist",
            hint="pass --data <dir> holding explicit_preference/, implicit_preference/ and mcq_options/",
        )
    col = _Collector()
    kinds = {**FORM_DIRS, "mcq": MCQ_DIR}
    files: dict[str, dict[str, Path]] = {k: {} for k in kinds}
    left_out: list[LeftOutFile] = []
    for kind, sub in kinds.items():
        folder = root / sub
        if folder.is_dir():
            kept, dropped = _topic_files(sorted(folder.glob("*.json")))
            files[kind] = kept
            left_out += dropped
    for lo in left_out:
        col.warn(lo.path, None, None, f"{lo.reason}; left out of the dataset and its totals")
    topics = sorted({t for by_topic in files.values() for t in by_topic})
    if not topics:
        col.error(root, None, None, "no topic files found (expected explicit_preference/<topic>.json and friends)")
    ds = PrefEvalDataset(root=root)
    for topic in topics:
        rows: dict[str, dict[int, dict[str, Any]]] = {}
        lengths: dict[str, int] = {}
        for kind in kinds:
            path = files[kind].get(topic)
            if path is None:
                col.warn(root / kinds[kind], None, None, f"topic {topic!r} has no {kinds[kind]}/{topic}.json")
                continue
            data = _read_json_array(path, col)
            if data is None:
                continue
            lengths[kind] = len(data)
            rows[kind] = {}
            for i, raw in enumerate(data):
                parsed = _parse_row(kind, raw, path, i, col)
                if parsed is not None:
                    rows[kind][i] = parsed
            col.flush_unknown(path)
        if len(set(lengths.values())) > 1:
            desc = ", ".join(f"{kinds[k]}: {n}" for k, n in lengths.items())
            col.warn(files["explicit"].get(topic, root), None, None, f"topic {topic!r}: form files have different row counts ({desc}); rows are joined by index")
        n_rows = max(lengths.values(), default=0)
        for i in range(n_rows):
            item = _join(topic, i, rows, files, col)
            if item is not None:
                ds.items.append(item)
    ds.problems = col.problems
    ds.left_out = left_out
    if strict:
        ds.raise_for_errors()
    return ds


def _join(
    topic: str, i: int, rows: dict[str, dict[int, dict[str, Any]]], files: dict[str, dict[str, Path]], col: _Collector
) -> PrefEvalItem | None:
    present = {k: r[i] for k, r in rows.items() if i in r}
    if not present:
        return None
    anchor_kind = next(k for k in ("explicit", "implicit-choice", "implicit-persona", "mcq") if k in present)
    anchor = present[anchor_kind]
    for kind, rec in present.items():
        if kind == anchor_kind:
            continue
        for name in ("question", "preference"):
            if not _similar(rec[name], anchor[name]):
                col.warn(files[kind][topic], i, name, f"differs from row {i} of {files[anchor_kind][topic].parent.name}/{topic}.json; forms are joined by row index, check the row order")
    verifiable = next((rec["verifiable"] for rec in present.values() if rec.get("verifiable") is not None), None)
    ex, ch, pe, mcq = (present.get(k) for k in ("explicit", "implicit-choice", "implicit-persona", "mcq"))
    return PrefEvalItem(
        topic=topic,
        row=i,
        preference=anchor["preference"],
        question=anchor["question"],
        explanation=anchor["explanation"],
        explicit=ExplicitForm(ex["preference"]) if ex else None,
        choice=ChoiceForm(
            preference=ch["preference"],
            query=ch["query"],
            options=ch["options"],
            assistant_options=ch["assistant_options"],
            user_selection=ch["user_selection"],
            assistant_acknowledgment=ch["assistant_acknowledgment"],
        )
        if ch
        else None,
        persona=PersonaForm(preference=pe["preference"], persona=pe["persona"], turns=pe["turns"]) if pe else None,
        mcq_options=mcq["mcq_options"] if mcq else None,
        violation_probability=mcq["violation_probability"] if mcq else None,
        verifiable=verifiable,
    )


# --------------------------------------------------------------------------- filler


@dataclass(frozen=True)
class Filler:
    """Item-independent (user, assistant) pairs of unrelated chat placed between preference and question.

    ``sha`` identifies the pairs (records point at it); ``sha256`` is the file's bytes, so a report
    can say exactly which file produced a number; ``format`` is ``prefeval`` (the paper's
    ``filtered_inter_turns.json``) or ``conversations`` (persona-lab's list of message lists).
    """

    path: str
    pairs: tuple[tuple[str, str], ...]
    sha: str
    problems: tuple[Problem, ...] = ()
    sha256: str = ""
    format: str = "conversations"

    def messages(self, n_pairs: int) -> tuple[Message, ...]:
        """The first ``n_pairs`` pairs as alternating user/assistant messages."""
        if n_pairs > len(self.pairs):
            raise ConfigError(
                f"the filler {self.path} has {len(self.pairs)} turn pairs; {n_pairs} were asked for",
                hint="lower --turns or pass a longer --filler file",
            )
        out: list[Message] = []
        for u, a in self.pairs[:n_pairs]:
            out.append(Message("user", u))
            out.append(Message("assistant", a))
        return tuple(out)

    def describe(self) -> dict[str, Any]:
        """What config.json and report.md say about the filler."""
        return {"path": self.path, "format": self.format, "sha": self.sha, "sha256": self.sha256, "pairs": len(self.pairs)}


def _check_message(m: Any, path: Path, ci: int, where: str, col: _Collector) -> tuple[str, str] | None:
    if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
        col.error(path, ci, where, "expected a message {\"role\": str, \"content\": str}")
        return None
    if m["role"] not in ("user", "assistant", "system"):
        col.error(path, ci, f"{where}.role", f"unknown role {m['role']!r} (user, assistant or system)")
        return None
    return m["role"], m["content"]


def _prefeval_pairs(data: list[Any], path: Path, col: _Collector) -> list[tuple[str, str]]:
    """PrefEval's filler: a list of objects whose ``conversation`` holds the messages. The original
    code concatenates every conversation's messages and takes the first ``2 N``, so pairs are
    consecutive (user, assistant) messages across conversation boundaries; that is reproduced here
    (a message that breaks the alternation is reported and skipped)."""
    flat: list[tuple[str, str]] = []
    for ci, obj in enumerate(data):
        conv = obj.get("conversation") if isinstance(obj, dict) else None
        if not isinstance(conv, list):
            col.error(path, ci, "conversation", "expected an object whose 'conversation' is a list of messages")
            continue
        msgs = [_check_message(m, path, ci, f"conversation[{mi}]", col) for mi, m in enumerate(conv)]
        if any(m is None for m in msgs):
            continue
        flat += [m for m in msgs if m is not None and m[0] != "system"]
    pairs: list[tuple[str, str]] = []
    j = 0
    while j + 1 < len(flat):
        if flat[j][0] == "user" and flat[j + 1][0] == "assistant":
            pairs.append((flat[j][1], flat[j + 1][1]))
            j += 2
        else:
            col.warn(path, None, None, f"message {j} breaks the user/assistant alternation; skipped")
            j += 1
    return pairs


def _conversation_pairs(data: list[Any], path: Path, col: _Collector) -> list[tuple[str, str]]:
    """persona-lab's filler: a list of conversations, each a list of messages; system messages and
    empty turns are dropped and each conversation is paired on its own."""
    pairs: list[tuple[str, str]] = []
    for ci, conv in enumerate(data):
        if not isinstance(conv, list):
            col.error(path, ci, None, f"expected a list of messages, found {type(conv).__name__}")
            continue
        checked = [_check_message(m, path, ci, f"[{mi}]", col) for mi, m in enumerate(conv)]
        if any(m is None for m in checked):
            continue
        msgs = [m for m in checked if m is not None and m[0] != "system" and m[1].strip()]
        j = 0
        while j + 1 < len(msgs):
            if msgs[j][0] == "user" and msgs[j + 1][0] == "assistant":
                pairs.append((msgs[j][1], msgs[j + 1][1]))
                j += 2
            else:
                j += 1
    return pairs


def load_filler(path: str | Path | None = None, *, last_conversations: int | None = None) -> Filler:
    """Load a filler file in either format (told apart by the first entry):

    - PrefEval's ``filtered_inter_turns.json``: a list of objects whose ``conversation`` is a list
      of ``{role, content}`` messages (other keys ignored);
    - persona-lab's: a list of conversations, each a list of ``{role, content}`` messages.

    Damaged conversations are reported and skipped. ``last_conversations`` keeps only the file's
    last k conversations (PrefEval's SFT recipe trains with those, and tests with the first ones).
    """
    path = Path(path) if path is not None else default_filler_path()
    if not path.exists():
        raise DataError(
            f"filler file {path} does not exist",
            hint="pass --filler <file>: PrefEval's filtered_inter_turns.json or a JSON list of conversations",
        )
    col = _Collector()
    data = _read_json_array(path, col) or []
    fmt = "prefeval" if data and isinstance(data[0], dict) else "conversations"
    if last_conversations is not None:
        data = data[-last_conversations:] if last_conversations > 0 else []
    pairs = _prefeval_pairs(data, path, col) if fmt == "prefeval" else _conversation_pairs(data, path, col)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        digest = ""
    return Filler(
        path=str(path),
        pairs=tuple(pairs),
        sha=stable_hash(pairs, length=16),
        problems=tuple(col.problems),
        sha256=digest,
        format=fmt,
    )


def filler_from_pairs(pairs: Iterable[tuple[str, str]], name: str = "<memory>") -> Filler:
    """A :class:`Filler` built in code (tests, benchmarks)."""
    pairs = tuple((str(u), str(a)) for u, a in pairs)
    return Filler(path=name, pairs=pairs, sha=stable_hash(pairs, length=16))
