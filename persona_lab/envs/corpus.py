"""Document corpora of the edit world: the built-in one, a folder of JSONL files, or public datasets.

A corpus maps each *source* (news, reddit, ... / personal_problem, ...) to its documents. The latent
preference of a user depends on the source, which the agent never sees.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from persona_lab.core.errors import ConfigError, DataError

TASKS = ("summarization", "email")

SOURCES: dict[str, tuple[str, ...]] = {
    "summarization": ("news", "reddit", "wikipedia", "paper_abstract", "movie_review"),
    "email": ("personal_problem", "paper_summary", "paper_review", "paper_tweet"),
}


@dataclass(frozen=True)
class Document:
    id: str
    source: str
    title: str
    text: str


Corpus = dict[str, tuple[Document, ...]]


def load_corpus(task: str, corpus: str = "builtin") -> Corpus:
    """``builtin``, ``hub`` (the original public datasets, needs a reachable hub) or a folder of
    ``<source>.jsonl`` files with ``{"id", "title", "text"}`` lines."""
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}", hint=f"tasks: {', '.join(TASKS)}")
    if corpus == "builtin":
        return _builtin(task)
    if corpus == "hub":
        return load_hub_corpus(task)
    folder = Path(corpus)
    if not folder.is_dir():
        raise ConfigError(
            f"corpus {corpus!r} is neither 'builtin', 'hub' nor a folder",
            hint="give a folder holding <source>.jsonl files (one {id, title, text} object a line)",
        )
    return _load_folder(folder, None)


@cache
def _builtin(task: str) -> Corpus:
    root = resources.files("persona_lab") / "data" / "prelude" / task
    return _load_folder(Path(str(root)), SOURCES[task])


def _load_folder(folder: Path, sources: tuple[str, ...] | None) -> Corpus:
    files = sorted(folder.glob("*.jsonl"))
    if sources is not None:
        files = [folder / f"{s}.jsonl" for s in sources]
    if not files:
        raise DataError("no <source>.jsonl files", path=str(folder), hint="one file per source")
    out: Corpus = {}
    for path in files:
        if not path.exists():
            raise DataError("missing corpus file", path=str(path), hint="reinstall persona-lab or check the folder")
        docs = []
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON ({exc.msg})", path=str(path), row=i) from None
            for key in ("text",):
                if not isinstance(rec.get(key), str) or not rec[key].strip():
                    raise DataError("missing or empty string", path=str(path), row=i, field=key)
            docs.append(Document(str(rec.get("id", f"{path.stem}-{i}")), path.stem, str(rec.get("title", "")), rec["text"]))
        if not docs:
            raise DataError("no documents", path=str(path))
        out[path.stem] = tuple(docs)
    return out


# The public datasets PRELUDE drew its summarization documents from (dataset id, config, split, field).
HUB_SOURCES: dict[str, tuple[str, str | None, str, str]] = {
    "news": ("abisee/cnn_dailymail", "3.0.0", "test", "article"),
    "reddit": ("JeremyAlain/SLF5K", None, "validation", "post"),
    "wikipedia": ("wikimedia/wikipedia", "20231101.en", "train", "text"),
    "paper_abstract": ("CShorten/ML-ArXiv-Papers", None, "train", "abstract"),
    "movie_review": ("stanfordnlp/imdb", None, "test", "text"),
}


def load_hub_corpus(task: str, per_source: int = 50) -> Corpus:
    """The original public documents via ``datasets`` (summarization only; needs a reachable hub)."""
    if task != "summarization":
        raise ConfigError(
            "the email task's original notes are not a public dataset",
            hint="use --corpus builtin, or a folder of <source>.jsonl files",
        )
    from datasets import load_dataset

    out: Corpus = {}
    for source, (name, config, split, field) in HUB_SOURCES.items():
        try:
            ds = load_dataset(name, config, split=f"{split}[:{per_source}]")
        except Exception as exc:  # any hub/network failure
            raise ConfigError(
                f"could not load {name} for source {source!r} ({type(exc).__name__})",
                hint="the hub is unreachable here; use --corpus builtin",
            ) from None
        out[source] = tuple(
            Document(f"{source}-{i}", source, "", str(row[field])) for i, row in enumerate(ds) if row.get(field)
        )
    return out
