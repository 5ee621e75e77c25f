"""Personas (who a simulated user is) and populations (how users are drawn).

A persona maps a *context* — here the document's source — to the user's latent preference there:
a free-text statement (what an LLM user is told) and the verifiable catalog items that approximate it
(what the scripted user enforces and what judge-free metrics check). Populations hand out personas
by index, deterministically, so "user 7 of population X with seed 3" is the same user everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from persona_lab.core.errors import ConfigError, DataError, UnknownNameError
from persona_lab.core.io import read_text
from persona_lab.core.registry import Registry
from persona_lab.core.seeding import make_rng
from persona_lab.simulators import catalog


@dataclass(frozen=True)
class LatentPreference:
    """A user's preference in one context."""

    statement: str
    ids: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"statement": self.statement, "ids": list(self.ids)}


@dataclass(frozen=True)
class Persona:
    """One simulated user: a preference per context plus hidden attributes."""

    id: str
    preferences: Mapping[str, LatentPreference]
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def preference_for(self, context: str) -> LatentPreference:
        try:
            return self.preferences[context]
        except KeyError:
            raise ConfigError(
                f"persona {self.id!r} has no preference for context {context!r}",
                hint=f"it defines: {', '.join(sorted(self.preferences))}",
            ) from None


@runtime_checkable
class Population(Protocol):
    """Hands out personas by index for a task whose contexts are ``sources``."""

    name: str

    def persona(self, index: int, task: str, sources: Sequence[str]) -> Persona: ...


# --- the PRELUDE population: the paper's per-source preferences, exactly as published -------------

PRELUDE_PREFERENCES: dict[str, dict[str, str]] = {
    "summarization": {
        "news": "style targeted to young children, storytelling, short sentences, playful language, interactive, positive",
        "reddit": "second person narrative, brief, show emotions, invoke personal reflection, immersive",
        "wikipedia": "bullet points, parallel structure, brief",
        "paper_abstract": "tweet style, simple English, inquisitive, skillful foreshadowing, with emojis",
        "movie_review": "question answering style",
    },
    "email": {
        "personal_problem": "informal, conversational, no closing",
        "paper_summary": "structured, straight to the points, respectful, professional greeting and closing",
        "paper_review": "casual tone, positive, clear, call to action",
        "paper_tweet": "engaging, personalized, professional tone, thankful closing",
    },
}


def prelude_approximation(task: str, source: str) -> tuple[str, ...]:
    """The verifiable catalog items that approximate a published PRELUDE preference: the items the
    catalog recognizes in the statement itself (so an agent told the statement can satisfy it)."""
    return tuple(catalog.canonical_order(catalog.recognize(PRELUDE_PREFERENCES[task][source])))


class PreludePopulation:
    """The single PRELUDE user (every index is the same person, as in the paper)."""

    name = "prelude"

    def persona(self, index: int, task: str, sources: Sequence[str]) -> Persona:
        try:
            statements = PRELUDE_PREFERENCES[task]
        except KeyError:
            raise ConfigError(f"the prelude population has no task {task!r}", hint="tasks: summarization, email") from None
        missing = [s for s in sources if s not in statements]
        if missing:
            raise ConfigError(
                f"the prelude population has no preference for sources {missing}",
                hint=f"its {task} sources are {sorted(statements)}; use --population verifiable for other corpora",
            )
        prefs = {s: LatentPreference(statements[s], prelude_approximation(task, s)) for s in sources}
        return Persona(id="prelude", preferences=prefs)


class VerifiablePopulation:
    """Seeded random users, each drawing ``k`` mutually compatible catalog items per source.

    Args:
        k: preferences per source.
        seed: population seed; user ``i`` of a population is fixed by (seed, task, i).
    """

    name = "verifiable"

    def __init__(self, k: int = 3, seed: int = 0) -> None:
        if k < 1:
            raise ConfigError(f"k must be >= 1, got {k}")
        self.k, self.seed = k, seed

    def persona(self, index: int, task: str, sources: Sequence[str]) -> Persona:
        prefs = {}
        for source in sources:
            rng = make_rng("verifiable-population", self.seed, task, index, source)
            ids = tuple(catalog.canonical_order(catalog.sample_compatible(rng, self.k)))
            prefs[source] = LatentPreference(catalog.describe(ids), ids)
        return Persona(id=f"verifiable-{self.seed}-{index}", preferences=prefs)


class FilePopulation:
    """Personas listed in a YAML or JSON file.

    Format::

        name: my-users
        personas:
          - id: alice
            attributes: {age: 34}
            preferences:
              news: {statement: "bullet points, brief", ids: [format.bullets, length.brief]}
              reddit: [voice.second_person]        # ids only: the statement is generated

    User ``index`` is ``personas[index % len(personas)]``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name, self.personas = _load_population_file(self.path)

    def persona(self, index: int, task: str, sources: Sequence[str]) -> Persona:
        persona = self.personas[index % len(self.personas)]
        missing = [s for s in sources if s not in persona.preferences]
        if missing:
            raise ConfigError(
                f"persona {persona.id!r} in {self.path} has no preference for sources {missing}",
                hint="add them under its `preferences`, or use a corpus with its sources",
            )
        return persona


def _load_population_file(path: Path) -> tuple[str, list[Persona]]:
    p = str(path)
    if not path.exists():
        raise DataError("file not found", path=p, hint="check the path given to --population")
    text = read_text(path, what="population file")
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # yaml and json raise different types
        raise DataError(f"cannot parse ({exc})", path=p, hint="the file must be YAML (.yaml/.yml) or JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("personas"), list) or not data["personas"]:
        raise DataError("expected a mapping with a non-empty list `personas`", path=p, field="personas")
    personas = []
    for i, raw in enumerate(data["personas"]):
        if not isinstance(raw, dict):
            raise DataError("each persona must be a mapping", path=p, row=i)
        pid = str(raw.get("id", f"persona-{i}"))
        prefs_raw = raw.get("preferences")
        if not isinstance(prefs_raw, dict) or not prefs_raw:
            raise DataError("missing or empty mapping", path=p, row=i, field="preferences",
                            hint="map each source to a list of catalog ids or {statement, ids}")
        prefs = {}
        for source, spec in prefs_raw.items():
            where = f"preferences.{source}"
            if isinstance(spec, list):
                ids, statement = spec, None
            elif isinstance(spec, dict):
                ids, statement = spec.get("ids", []), spec.get("statement")
            else:
                raise DataError("must be a list of catalog ids or {statement, ids}", path=p, row=i, field=where)
            for pid_ in ids:
                try:
                    catalog.get_preference(pid_)
                except UnknownNameError as exc:
                    raise DataError(exc.message, path=p, row=i, field=where,
                                    hint="`persona-lab ls preferences` lists the catalog ids") from None
            if not catalog.compatible(ids):
                raise DataError(f"preferences {ids} conflict with each other", path=p, row=i, field=where)
            ids = tuple(catalog.canonical_order(ids))
            if statement is None:
                if not ids:
                    raise DataError("needs ids or a statement", path=p, row=i, field=where)
                statement = catalog.describe(ids)
            prefs[str(source)] = LatentPreference(str(statement), ids)
        personas.append(Persona(pid, prefs, dict(raw.get("attributes") or {})))
    return str(data.get("name", path.stem)), personas


POPULATIONS: Registry[Population] = Registry("population", "persona-lab ls populations")
POPULATIONS.add("prelude", PreludePopulation, "PRELUDE's single user: the paper's per-source preference strings")
POPULATIONS.add(
    "verifiable", VerifiablePopulation, "seeded random users, k compatible catalog preferences per source"
)


def make_population(spec: str | Population, **kwargs: Any) -> Population:
    """A population from a registered name, a YAML/JSON file path, or an instance."""
    if not isinstance(spec, str):
        return spec
    if spec in POPULATIONS:
        return POPULATIONS.create(spec, **kwargs)
    if spec.endswith((".yaml", ".yml", ".json")):
        return FilePopulation(spec)
    return POPULATIONS.create(spec, **kwargs)  # raises with a did-you-mean
