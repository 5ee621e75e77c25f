"""Training data from persona-lab runs, in TRL's dataset formats.

Two kinds of data, each in TRL's conversational format (a prompt is a list of ``{"role", "content"}``
messages, a completion is a list holding the assistant message):

- ``preference``: ``{"prompt", "chosen", "rejected"}`` for DPO / IPO. TRL also accepts the
  implicit-prompt form ``{"chosen", "rejected"}`` (whole conversations) and plain-string fields.
- ``sft``: ``{"prompt", "completion"}`` (loss on the completion only), ``{"messages"}`` or ``{"text"}``.

Builders:

- :func:`preference_pairs_from_edit_run`: an edit-world run (``transitions.jsonl``) -> pairs whose
  chosen answer is the user's edit and rejected answer the agent's draft, for the same prompt (the
  record's base drafting prompt). Only rounds where the user changed the draft count.
- :func:`sft_from_edit_run`: the same run -> ``(prompt, edited text)`` targets.
- :func:`sft_from_prefeval_run`: a PrefEval run (``items.jsonl``) -> the answers judged
  preference-following, with the method's extra prompt text removed (the PrefEval SFT recipe);
  the prompts hold the whole long conversation, so raise ``max_length`` to fit them.
- :func:`load_jsonl_dataset`: any JSONL in TRL's formats, validated row by row; a bad row is a
  :class:`DataError` naming the file, the line and the field.

:func:`load_training_data` picks the right one for a path; :func:`save_dataset` exports to
``save_to_disk`` folders, parquet or JSONL.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from persona_lab.core.errors import ConfigError, DataError, PersonaLabError
from persona_lab.core.io import read_text
from persona_lab.core.records import TransitionRecord

_LOAD_ERRORS = (PersonaLabError, OSError)

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Dataset

logger = logging.getLogger(__name__)

KINDS = ("preference", "sft", "unpaired")
ROLES = ("system", "user", "assistant", "tool")
TRANSITIONS_FILE = "transitions.jsonl"
PREFEVAL_FILE = "items.jsonl"

# The column sets of each accepted layout, and the columns TRL's trainers read from it.
PREFERENCE_LAYOUTS: dict[str, tuple[str, ...]] = {
    "explicit_prompt": ("prompt", "chosen", "rejected"),
    "implicit_prompt": ("chosen", "rejected"),
}
SFT_LAYOUTS: dict[str, tuple[str, ...]] = {
    "prompt_completion": ("prompt", "completion"),
    "messages": ("messages",),
    "text": ("text",),
}
UNPAIRED_LAYOUTS: dict[str, tuple[str, ...]] = {"unpaired": ("prompt", "completion", "label")}  # KTO
LAYOUTS = {"preference": PREFERENCE_LAYOUTS, "sft": SFT_LAYOUTS, "unpaired": UNPAIRED_LAYOUTS}
EDIT_META = ("env_id", "user_id", "doc_id", "episode", "round", "cost")


# --------------------------------------------------------------------------------------------------
# validation


def _where(path: str, row: int | str | None, fieldname: str | None, message: str, hint: str | None = None) -> DataError:
    return DataError(message, path=path, row=row, field=fieldname, hint=hint)


def check_messages(value: Any, *, path: str, row: int | str | None, fieldname: str, min_len: int = 1) -> None:
    """Check one conversational field: a non-empty list of ``{"role", "content"}`` with string content."""
    if not isinstance(value, list):
        raise _where(path, row, fieldname, f"expected a list of messages, got {type(value).__name__}")
    if len(value) < min_len:
        raise _where(path, row, fieldname, "the message list is empty")
    for i, msg in enumerate(value):
        where = f"{fieldname}[{i}]"
        if not isinstance(msg, Mapping):
            raise _where(path, row, where, f"expected a message object, got {type(msg).__name__}",
                         hint='write messages as {"role": "user", "content": "..."}')
        if "role" not in msg:
            raise _where(path, row, f"{where}.role", "missing")
        if msg["role"] not in ROLES:
            raise _where(path, row, f"{where}.role", f"unknown role {msg['role']!r}; expected one of {', '.join(ROLES)}")
        if "content" not in msg:
            raise _where(path, row, f"{where}.content", "missing")
        if not isinstance(msg["content"], str):
            raise _where(path, row, f"{where}.content", f"expected a string, got {type(msg['content']).__name__}")


def _field_style(value: Any, *, path: str, row: int | str | None, fieldname: str) -> str:
    """``"conversational"`` for a message list, ``"standard"`` for a string (each checked)."""
    if isinstance(value, str):
        return "standard"
    check_messages(value, path=path, row=row, fieldname=fieldname)
    return "conversational"


def record_format(record: Any, kind: str, *, path: str, row: int | str | None) -> str:
    """Validate one example of ``kind`` and name its format, e.g. ``"explicit_prompt/conversational"``.

    Raises:
        DataError: naming the file, row and field that are wrong.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not isinstance(record, Mapping):
        raise _where(path, row, None, f"expected a JSON object, got {type(record).__name__}")
    layouts = LAYOUTS[kind]
    layout = next((name for name, cols in layouts.items() if all(c in record for c in cols)), None)
    if layout is None:
        wanted = " or ".join("{" + ", ".join(cols) + "}" for cols in layouts.values())
        missing = [c for c in next(iter(layouts.values())) if c not in record]
        raise _where(
            path, row, missing[0] if missing else None,
            f"missing; a {kind} example needs the fields {wanted} (it has {', '.join(map(str, record)) or 'none'})",
            hint="see TRL's dataset formats: https://huggingface.co/docs/trl/dataset_formats",
        )
    cols = layouts[layout]
    if layout == "unpaired":
        if not isinstance(record["label"], bool):
            raise _where(path, row, "label", f"expected true or false, got {record['label']!r}")
        cols = ("prompt", "completion")
    styles = {c: _field_style(record[c], path=path, row=row, fieldname=c) for c in cols}
    if len(set(styles.values())) > 1:
        conv = [c for c, s in styles.items() if s == "conversational"]
        std = [c for c, s in styles.items() if s == "standard"]
        raise _where(path, row, std[0],
                     f"is a string while {', '.join(conv)} is a message list; use one format for all fields")
    style = styles[cols[0]]
    if layout == "implicit_prompt" and style == "standard":
        raise _where(path, row, "prompt", "missing; plain-string chosen/rejected need an explicit prompt")
    if layout == "messages" and style != "conversational":
        raise _where(path, row, "messages", "expected a list of messages")
    if layout == "text" and style != "standard":
        raise _where(path, row, "text", "expected a string")
    if style == "conversational":
        for c in cols:
            if c in ("chosen", "rejected", "completion") and record[c][-1]["role"] != "assistant":
                raise _where(path, row, f"{c}[{len(record[c]) - 1}].role",
                             f"the last message of {c!r} must be the assistant's answer, not {record[c][-1]['role']!r}")
    return f"{layout}/{style}"


def check_dataset(dataset: Dataset, *, kind: str, source: str) -> str:
    """Validate every row of an in-memory/loaded dataset; all rows must share one format. Returns it."""
    fmt: str | None = None
    for i, record in enumerate(dataset):
        this = record_format(record, kind, path=source, row=i)
        if fmt is None:
            fmt = this
        elif this != fmt:
            raise _where(source, i, None, f"is in format {this!r} but row 0 is {fmt!r}; use one format per dataset")
    return fmt or ""


def trl_columns(dataset: Dataset, *, kind: str) -> Dataset:
    """Keep only the columns TRL's trainer for ``kind`` reads (metadata columns are dropped)."""
    layouts = LAYOUTS[kind]
    names = set(dataset.column_names)
    for cols in layouts.values():
        if all(c in names for c in cols):
            extra = [c for c in dataset.column_names if c not in cols]
            return dataset.remove_columns(extra) if extra else dataset
    raise DataError(f"the dataset has columns {sorted(names)}, none of the {kind} layouts "
                    f"{[list(c) for c in layouts.values()]}")


# --------------------------------------------------------------------------------------------------
# JSONL in TRL's format


def _iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed object) for each non-blank line; invalid JSON is a DataError naming the line."""
    lines = read_text(path, what="data file").split("\n")
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON ({exc.msg} at column {exc.colno})", path=str(path), row=lineno) from None


def load_jsonl_dataset(path: str | os.PathLike[str], *, kind: str) -> Dataset:
    """A JSONL file in one of TRL's ``kind`` formats, validated line by line.

    Raises:
        DataError: the file, line (``row``) and field of the first bad example.
    """
    from datasets import Dataset

    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path=str(path))
    rows: list[dict[str, Any]] = []
    fmt: str | None = None
    first_line = 0
    for lineno, record in _iter_jsonl(path):
        this = record_format(record, kind, path=str(path), row=lineno)
        if fmt is None:
            fmt, first_line = this, lineno
        elif this != fmt:
            raise DataError(f"is in format {this!r} but line {first_line} is {fmt!r}; use one format per file",
                            path=str(path), row=lineno)
        rows.append(dict(record))
    if not rows:
        raise DataError(f"holds no {kind} examples", path=str(path))
    return Dataset.from_list(rows)


# --------------------------------------------------------------------------------------------------
# edit-world runs


def _transitions_path(run: str | os.PathLike[str]) -> Path:
    run = Path(run)
    if run.is_file():
        return run
    path = run / TRANSITIONS_FILE
    if not path.is_file():
        nested = sorted(str(p) for p in run.glob(f"*/**/{TRANSITIONS_FILE}"))[:3]
        raise DataError(
            f"no {TRANSITIONS_FILE} in this folder",
            path=str(run),
            hint=("it is in subfolders: pass one of " + ", ".join(nested)) if nested
            else "pass the run directory of `persona-lab run` (it holds transitions.jsonl)",
        )
    return path


def _edit_rounds(run: str | os.PathLike[str]) -> Iterator[tuple[int, TransitionRecord, str, str, bool]]:
    """(line, record, draft, edited text, accepted) for each round of an edit-world run, validated:
    the edit world's fields first (with file, line and field), then the rest of the typed record."""
    path = _transitions_path(run)
    where = str(path)
    seen: set[tuple[Any, Any]] = set()
    duplicated = 0
    for lineno, rec in _iter_jsonl(path):
        if not isinstance(rec, Mapping):
            raise DataError(f"expected a JSON object, got {type(rec).__name__}", path=where, row=lineno)
        key = (rec.get("episode"), rec.get("round"))
        if key in seen and key != (None, None):
            duplicated += 1  # two writers on one run folder: a round counted twice would weigh double
            continue
        seen.add(key)
        if "prompt" not in rec:
            raise DataError("missing (the base drafting prompt of the round)", path=where, row=lineno, field="prompt")
        check_messages(rec["prompt"], path=where, row=lineno, fieldname="prompt")
        action = rec.get("action")
        if not isinstance(action, str):
            raise DataError(f"expected the draft as a string, got {type(action).__name__}",
                            path=where, row=lineno, field="action")
        info = rec.get("info")
        if not isinstance(info, Mapping):
            raise DataError("missing or not an object", path=where, row=lineno, field="info")
        edited = info.get("edited_text")
        if not isinstance(edited, str):
            raise DataError(f"expected the user's edit as a string, got {type(edited).__name__}",
                            path=where, row=lineno, field="info.edited_text")
        accepted = info.get("accepted", edited == action)
        if not isinstance(accepted, bool):
            raise DataError(f"expected true/false, got {accepted!r}", path=where, row=lineno, field="info.accepted")
        yield lineno, TransitionRecord.from_dict(rec, path=where, line=lineno), action, edited, accepted
    if duplicated:
        logger.warning("%s: %d duplicated (episode, round) record(s) skipped; a run folder should have one writer",
                       where, duplicated)


def _edit_meta(rec: TransitionRecord) -> dict[str, Any]:
    cost = rec.info.get("cost")
    return {
        "env_id": str(rec.env_id),
        "user_id": None if rec.user_id is None else str(rec.user_id),
        "doc_id": None if rec.doc_id is None else str(rec.doc_id),
        "episode": rec.episode,
        "round": rec.round,
        "cost": float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None,
    }


def _prompt(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]


def _answer(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def preference_pairs_from_edit_run(run: str | os.PathLike[str], *, with_meta: bool = True) -> Dataset:
    """Preference pairs from an edit-world run: the user's edit preferred over the agent's draft.

    One pair per round that the user did not accept and where the edit differs from the draft;
    accepted rounds carry no preference and are skipped. Columns: ``prompt``, ``chosen``,
    ``rejected`` (conversational) plus, with ``with_meta``, ``env_id``, ``user_id``, ``doc_id``,
    ``episode``, ``round`` and ``cost`` for splitting by user or document (trainers ignore them).

    Args:
        run: the run directory (or its ``transitions.jsonl``).
        with_meta: add the metadata columns.
    """

    rows: list[dict[str, Any]] = []
    seen = 0
    for _line, rec, draft, edited, accepted in _edit_rounds(run):
        seen += 1
        if accepted or edited.strip() == draft.strip() or not draft.strip() or not edited.strip():
            continue
        row: dict[str, Any] = {"prompt": _prompt(rec.prompt or []), "chosen": _answer(edited), "rejected": _answer(draft)}
        if with_meta:
            row.update(_edit_meta(rec))
        rows.append(row)
    logger.info("edit run %s: %d rounds, %d preference pairs", run, seen, len(rows))
    return _from_rows(rows, ("prompt", "chosen", "rejected"), with_meta)


def sft_from_edit_run(
    run: str | os.PathLike[str], *, edited_only: bool = False, with_meta: bool = True
) -> Dataset:
    """SFT targets from an edit-world run: the prompt and the text the user ended with.

    Every round counts (an accepted draft is what the user wanted too), unless ``edited_only``.
    Columns: ``prompt``, ``completion`` (conversational) plus the metadata columns.
    """

    rows: list[dict[str, Any]] = []
    for _line, rec, draft, edited, accepted in _edit_rounds(run):
        if not edited.strip() or (edited_only and (accepted or edited.strip() == draft.strip())):
            continue
        row: dict[str, Any] = {"prompt": _prompt(rec.prompt or []), "completion": _answer(edited)}
        if with_meta:
            row.update(_edit_meta(rec))
        rows.append(row)
    return _from_rows(rows, ("prompt", "completion"), with_meta)


def _from_rows(rows: list[dict[str, Any]], cols: tuple[str, ...], with_meta: bool) -> Dataset:
    from datasets import Dataset

    if rows:
        return Dataset.from_list(rows)
    names = cols + (EDIT_META if with_meta else ())
    return Dataset.from_dict({c: [] for c in names})


# --------------------------------------------------------------------------------------------------
# PrefEval runs

PREFEVAL_RECIPES = ("followed", "paper")


JUDGE_CHOICES = ("primary", "programmatic", "llm", "all")


def _prefeval_followed(rec: Mapping[str, Any], judge: str) -> bool:
    """Whether the chosen verdict(s) say the answer followed the preference (unjudged: no)."""
    if judge == "primary":
        return rec.get("followed") is True
    verdicts = rec.get("judges") or {}
    if judge == "all":
        return bool(verdicts) and all(isinstance(v, Mapping) and v.get("followed") is True for v in verdicts.values())
    verdict = verdicts.get(judge)
    return isinstance(verdict, Mapping) and verdict.get("followed") is True


def _latest_prefeval_records(run: str | os.PathLike[str], *, strict: bool) -> tuple[str, dict[str, tuple[int, Mapping[str, Any]]]]:
    """(file, key -> (line, last record of that key)) of a PrefEval run; ``strict`` refuses malformed
    rows with file, line and field, otherwise they are skipped."""
    run = Path(run)
    path = run if run.is_file() else run / PREFEVAL_FILE
    if not path.is_file():
        raise DataError(f"no {PREFEVAL_FILE} here", path=str(run), hint="pass the run directory of `persona-lab prefeval`")
    where = str(path)
    latest: dict[str, tuple[int, Mapping[str, Any]]] = {}
    for lineno, rec in _iter_jsonl(path):
        if strict and not isinstance(rec, Mapping):
            raise DataError(f"expected a JSON object, got {type(rec).__name__}", path=where, row=lineno)
        if strict and not isinstance(rec.get("key"), str):
            raise DataError("missing or not a string", path=where, row=lineno, field="key")
        if isinstance(rec, Mapping) and isinstance(rec.get("key"), str):
            latest[rec["key"]] = (lineno, rec)
    return where, latest


def sft_from_prefeval_run(
    run: str | os.PathLike[str],
    *,
    methods: Sequence[str] | None = None,
    judge: str = "primary",
    keep_method_text: bool = False,
    filler: str | os.PathLike[str] | None = None,
    with_meta: bool = True,
) -> Dataset:
    """SFT data from a PrefEval run: the answers judged preference-following (the PrefEval SFT recipe).

    Keeps generation tests recorded ``ok`` whose verdict says ``followed``; the prompt is the exact
    conversation the model saw (system prompt, preference block, filler, question with its length
    instruction) **without the method's added text** (the reminder sentence, RAG's retrieved
    messages, CoT examples), so the model learns to follow the preference unprompted; the target is
    the final answer (for self-critic, the revision). Later records of the same test key replace
    earlier ones, as in the harness.

    Args:
        run: the PrefEval run directory (or its ``items.jsonl``).
        methods: only answers produced by these methods (the paper trained on ``reminder`` answers);
            default: every method.
        judge: which verdict decides: ``primary`` (the record's ``followed``), ``programmatic``,
            ``llm``, or ``all`` (every verdict made must say followed).
        keep_method_text: keep the method's prefix/suffix in the prompt instead.
        filler: the filler file, when the one named in the records has moved.
        with_meta: add ``item_id``, ``topic``, ``form``, ``turns``, ``method`` columns.

    Raises:
        DataError: a malformed record (file, line, field), or a filler that does not match the run.
    """
    from persona_lab.simulators.prefeval.context import request_messages
    from persona_lab.simulators.prefeval.data import load_filler

    if judge not in JUDGE_CHOICES:
        raise ValueError(f"judge must be one of {JUDGE_CHOICES}, got {judge!r}")
    where, latest = _latest_prefeval_records(run, strict=True)

    fillers: dict[tuple[str, str], Any] = {}
    rows: list[dict[str, Any]] = []
    for lineno, rec in latest.values():
        if rec.get("status") != "ok" or rec.get("task") != "generation":
            continue
        if rec.get("form") == "question-only":  # the no-context control shows no preference to learn from
            continue
        if methods is not None and rec.get("method") not in methods:
            continue
        if not _prefeval_followed(rec, judge):
            continue
        response = rec.get("response")
        if not isinstance(response, str) or not response.strip():
            raise DataError("expected the answer as a non-empty string", path=where, row=lineno, field="response")
        for name in ("context", "final_user"):
            if not isinstance(rec.get(name), Mapping):
                raise DataError("missing or not an object", path=where, row=lineno, field=name)
        ctx = rec["context"]
        source = str(filler) if filler is not None else str(ctx.get("filler_file", ""))
        cache_key = (source, str(ctx.get("filler_sha")))
        if cache_key not in fillers:
            try:
                fillers[cache_key] = load_filler(source or None)
            except _LOAD_ERRORS as exc:
                raise DataError(f"cannot load the run's filler: {exc}", path=where, row=lineno,
                                field="context.filler_file", hint="pass filler=<path of the filler file>") from None
        try:
            request_messages(dict(rec), fillers[cache_key], with_method_text=True, include_steps=False)
            prompt = request_messages(dict(rec), fillers[cache_key], with_method_text=keep_method_text,
                                      include_steps=False)
        except ConfigError as exc:
            raise DataError(str(exc.message), path=where, row=lineno, field="context", hint=exc.hint) from None
        except (KeyError, TypeError) as exc:
            raise DataError(f"malformed record ({type(exc).__name__}: {exc})", path=where, row=lineno) from None
        row: dict[str, Any] = {"prompt": prompt, "completion": _answer(response)}
        if with_meta:
            row.update({
                "item_id": str(rec.get("item_id")),
                "topic": str(rec.get("topic")),
                "form": str(rec.get("form")),
                "turns": rec.get("turns") if isinstance(rec.get("turns"), int) else None,
                "method": str(rec.get("method")),
            })
        rows.append(row)
    logger.info("prefeval run %s: %d tests, %d SFT examples", run, len(latest), len(rows))
    if rows:
        from datasets import Dataset

        return Dataset.from_list(rows)
    return _from_rows([], ("prompt", "completion"), False)


# --------------------------------------------------------------------------------------------------
# dispatch and export


def _is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and any(
        (path / name).is_file() for name in ("dataset_info.json", "state.json", "dataset_dict.json")
    )


def paper_sft_from_prefeval_run(
    run: str | os.PathLike[str],
    *,
    filler_pairs: int = 10,
    last_conversations: int = 4,
    eval_fraction: float = 0.2,
    seed: int = 42,
    filler: str | os.PathLike[str] | None = None,
    split: str = "train",
) -> Dataset:
    """SFT data the way the PrefEval paper built it (its ``SFT/`` code), from a persona-lab PrefEval run.

    Differences from :func:`sft_from_prefeval_run` (the default ``followed`` recipe):

    - **every** ``reminder`` answer of the explicit form at 0 filler pairs (2 turns) is a target,
      judged followed or not (the paper trained on all of its model's reminder answers);
    - the prompt is system, the preference, the model's own reply, then ``filler_pairs`` pairs taken
      from the **last** ``last_conversations`` conversations of the filler file (tests use the
      first pairs, so training filler and test filler differ), then the bare question (no reminder,
      no word cap), answered by the reminder-method answer;
    - topics are split, ``eval_fraction`` of them (at least one, seeded) held out, so the
      evaluation topics are never trained on; ``split`` picks ``train`` or ``eval`` rows, and a
      ``split`` column names each row's side.

    Raises:
        DataError: no usable records, a malformed record, or a filler too short for ``filler_pairs``.
    """
    import random as _random

    from persona_lab.core.messages import Message
    from persona_lab.simulators.prefeval.data import load_filler

    if split not in ("train", "eval"):
        raise ValueError(f"split must be 'train' or 'eval', got {split!r}")
    where, latest = _latest_prefeval_records(run, strict=False)
    picked = [
        (lineno, rec) for lineno, rec in latest.values()
        if rec.get("status") == "ok" and rec.get("task") == "generation" and rec.get("method") == "reminder"
        and rec.get("form") == "explicit" and rec.get("turns") == 0
    ]
    if not picked:
        raise DataError("no reminder answers of the explicit form at 0 filler pairs", path=where,
                        hint="run `persona-lab prefeval --methods reminder --forms explicit --turns 0 ...` first")
    topics = sorted({str(rec.get("topic")) for _, rec in picked})
    order = topics[:]
    _random.Random(seed).shuffle(order)
    n_eval = max(1, round(eval_fraction * len(order))) if len(order) > 1 else 0
    eval_topics = set(order[:n_eval])
    first = picked[0][1]
    source = str(filler) if filler is not None else str(first.get("context", {}).get("filler_file", ""))
    try:
        tail = load_filler(source or None, last_conversations=last_conversations)
    except _LOAD_ERRORS as exc:
        raise DataError(f"cannot load the run's filler: {exc}", path=where, field="context.filler_file",
                        hint="pass filler=<path of the filler file>") from None
    if filler_pairs > len(tail.pairs):
        raise DataError(f"the last {last_conversations} conversations of {tail.path} hold {len(tail.pairs)} turn pairs; "
                        f"{filler_pairs} were asked for", path=where, hint="lower filler_pairs or use more conversations")
    filler_msgs = [m.to_dict() for m in tail.messages(filler_pairs)]
    rows: list[dict[str, Any]] = []
    for lineno, rec in picked:
        side = "eval" if str(rec.get("topic")) in eval_topics else "train"
        if side != split:
            continue
        ctx, response = rec.get("context"), rec.get("response")
        if not isinstance(ctx, Mapping) or not isinstance(ctx.get("preference_block"), list):
            raise DataError("missing or not an object", path=where, row=lineno, field="context")
        if not isinstance(response, str) or not response.strip():
            raise DataError("expected the answer as a non-empty string", path=where, row=lineno, field="response")
        system = [Message("system", ctx["system"]).to_dict()] if ctx.get("system") else []
        prompt = [*system, *({"role": m["role"], "content": m["content"]} for m in ctx["preference_block"]),
                  *filler_msgs, {"role": "user", "content": str(rec.get("question"))}]
        rows.append({"prompt": prompt, "completion": _answer(response), "item_id": str(rec.get("item_id")),
                     "topic": str(rec.get("topic")), "split": side})
    logger.info("prefeval paper recipe: %d %s examples; eval topics (never trained on): %s", len(rows), split,
                ", ".join(sorted(eval_topics)) or "none")
    if rows:
        from datasets import Dataset

        return Dataset.from_list(rows)
    return _from_rows([], ("prompt", "completion"), False)


def load_training_data(source: str | os.PathLike[str], *, kind: str, prefeval_recipe: str = "followed") -> Dataset:
    """The ``kind`` training data at ``source``, whatever it is:

    - an edit-world run directory (``transitions.jsonl``): pairs (``preference``) or targets (``sft``);
    - a PrefEval run directory (``items.jsonl``): SFT data;
    - a ``.jsonl`` / ``.json`` file, a ``.parquet`` file, or a ``save_to_disk`` folder in TRL's format.
    """
    from datasets import Dataset, DatasetDict, load_from_disk

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError("not found", path=str(path), hint="pass a run directory, a .jsonl/.parquet file or a saved dataset")
    if path.is_dir() and (path / TRANSITIONS_FILE).is_file() or path.name == TRANSITIONS_FILE:
        return preference_pairs_from_edit_run(path) if kind == "preference" else sft_from_edit_run(path)
    if path.is_dir() and (path / PREFEVAL_FILE).is_file() or path.name == PREFEVAL_FILE:
        if kind == "preference":
            raise DataError("a PrefEval run gives SFT data, not preference pairs", path=str(path),
                            hint="train it with `persona-lab train sft`")
        if prefeval_recipe not in PREFEVAL_RECIPES:
            raise ConfigError(f"unknown PrefEval SFT recipe {prefeval_recipe!r}", hint=f"recipes: {', '.join(PREFEVAL_RECIPES)}")
        return paper_sft_from_prefeval_run(path) if prefeval_recipe == "paper" else sft_from_prefeval_run(path)
    if _is_saved_dataset(path):
        loaded = load_from_disk(str(path))
        if isinstance(loaded, DatasetDict):
            if "train" not in loaded:
                raise DataError(f"a saved DatasetDict without a 'train' split (splits: {list(loaded)})", path=str(path))
            loaded = loaded["train"]
        check_dataset(loaded, kind=kind, source=str(path))
        return loaded
    if path.is_file() and path.suffix == ".parquet":
        loaded = Dataset.from_parquet(str(path))
        check_dataset(loaded, kind=kind, source=str(path))
        return loaded
    if path.is_file() and path.suffix == ".jsonl":
        return load_jsonl_dataset(path, kind=kind)
    if path.is_file() and path.suffix == ".json":
        return _load_json_array(path, kind=kind)
    raise DataError(
        "not a run directory, a .jsonl/.json/.parquet file or a saved dataset folder",
        path=str(path),
        hint=f"a run directory holds {TRANSITIONS_FILE} (edit world) or {PREFEVAL_FILE} (PrefEval)",
    )


def _load_json_array(path: Path, *, kind: str) -> Dataset:
    from datasets import Dataset

    try:
        data = json.loads(read_text(path, what="data file"))
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc.msg} at line {exc.lineno})", path=str(path), row=exc.lineno) from None
    if not isinstance(data, list):
        raise DataError("expected a JSON array of examples (or use JSONL: one example per line)", path=str(path))
    fmt = None
    for i, record in enumerate(data):
        this = record_format(record, kind, path=str(path), row=f"item {i}")
        if fmt is not None and this != fmt:
            raise DataError(f"is in format {this!r} but item 0 is {fmt!r}", path=str(path), row=f"item {i}")
        fmt = this
    if not data:
        raise DataError(f"holds no {kind} examples", path=str(path))
    return Dataset.from_list(data)


def save_dataset(dataset: Dataset, path: str | os.PathLike[str]) -> Path:
    """Export: ``*.parquet`` -> parquet, ``*.jsonl`` -> JSON lines, anything else -> ``save_to_disk`` folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        dataset.to_parquet(str(path))
    elif path.suffix == ".jsonl":
        dataset.to_json(str(path), lines=True, force_ascii=False)
    else:
        dataset.save_to_disk(str(path))
    return path
