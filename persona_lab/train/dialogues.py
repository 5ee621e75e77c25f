"""Persuasion dialogues as training data: one JSONL row per dialogue, and the views learners need.

A row (:class:`DialogueRow`) is one finished ``Persuasion-v0`` dialogue::

    {"id": "run1/e3", "source": "original" | "regenerated" | "prefix_only", "parent_id": null | "<id>",
     "divergence_turn": null | <persuader turn index>, "turns": [{"role": "persuadee" | "persuader",
     "text": "..."}, ...], "reward": <final donation>, "turn_rewards": [<one per persuader turn>],
     "persona_id": "...", "seed": <int>, "controller": null | "<controller that made it>",
     "budget": <persuader turns allowed>, "done": true, "world": {<the simulator's Dialogue value>}}

``turns`` open with the persuadee's greeting and alternate. ``world`` is the privileged simulator
state (the hidden persona and the per-turn seeds) that :func:`persona_lab.simulators.persuasion.regenerate`
needs to branch the dialogue; learners and non-oracle controllers never read it.

Views built from rows (all from the persuader's side: the persuadee is ``user``):

* :func:`persuader_prompt`: the prompt the LLM persuaders act on at a turn (the runner records the
  same one), so BC / DPO / KTO adapters run as the ordinary persuader with ``hf:<base>+<adapter>``;
* :func:`sft_examples`, :func:`dpo_pairs`, :func:`kto_examples`: TRL's row formats;
* :func:`token_view`: the whole dialogue as one token sequence with the agent-token mask, the reward
  on the last token of each persuader turn and ``done`` (what ILQL learns from).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from persona_lab.core.errors import DataError
from persona_lab.core.io import atomic_write_text, read_jsonl
from persona_lab.simulators.persuasion import MAX_DONATION, Dialogue

SOURCES = ("original", "regenerated", "prefix_only")
TURN_ROLES = ("persuadee", "persuader")
REQUIRED = ("id", "source", "turns", "reward", "turn_rewards", "persona_id", "seed", "budget")


@dataclass(frozen=True)
class Turn:
    """One utterance: ``persuader`` (the agent) or ``persuadee`` (the simulated user)."""

    role: str
    text: str


@dataclass(frozen=True)
class DialogueRow:
    """One dialogue of a dataset (see the module docstring for the JSON layout)."""

    id: str
    source: str
    turns: tuple[Turn, ...]
    reward: float
    turn_rewards: tuple[float, ...]
    persona_id: str
    seed: int
    budget: int
    parent_id: str | None = None
    divergence_turn: int | None = None
    controller: str | None = None
    done: bool = True
    world: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def persuader_turns(self) -> list[str]:
        return [t.text for t in self.turns if t.role == "persuader"]

    @property
    def persuadee_turns(self) -> list[str]:
        return [t.text for t in self.turns if t.role == "persuadee"]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "source": self.source, "parent_id": self.parent_id,
                "divergence_turn": self.divergence_turn,
                "turns": [{"role": t.role, "text": t.text} for t in self.turns],
                "reward": self.reward, "turn_rewards": list(self.turn_rewards), "persona_id": self.persona_id,
                "seed": self.seed, "controller": self.controller, "budget": self.budget, "done": self.done,
                "world": None if self.world is None else dict(self.world)}

    def dialogue(self) -> Dialogue:
        """The simulator's :class:`Dialogue` (privileged: holds the persona) for regeneration."""
        if self.world is None:
            raise DataError("this row has no 'world' (simulator state), so it cannot be regenerated",
                            row=self.id, field="world", hint="build rows with rows_from_run or row_from_dialogue")
        return Dialogue.from_dict(self.world)


def row_from_dialogue(dialogue: Dialogue, *, id: str, seed: int, source: str = "original",
                      parent_id: str | None = None, divergence_turn: int | None = None,
                      controller: str | None = None) -> DialogueRow:
    """A row for a simulator dialogue. The reward is the donation, clipped to [0, $2]; it sits on the
    persuader turn whose reply carried the decision."""
    turns = [Turn("persuadee", dialogue.opening)]
    for ex in dialogue.exchanges:
        turns += [Turn("persuader", ex.agent), Turn("persuadee", ex.user)]
    reward = clip_reward(dialogue.donation or 0.0) if dialogue.finished else 0.0
    turn_rewards = [0.0] * len(dialogue.exchanges)
    if turn_rewards:
        turn_rewards[-1] = reward
    return DialogueRow(id=id, source=source, turns=tuple(turns), reward=reward, turn_rewards=tuple(turn_rewards),
                       persona_id=dialogue.persona.id, seed=int(seed), budget=dialogue.budget, parent_id=parent_id,
                       divergence_turn=divergence_turn, controller=controller, done=dialogue.finished,
                       world=dialogue.to_dict())


def clip_reward(value: float) -> float:
    """Simulated donations are clipped to the real range, [0, $2]."""
    return round(min(MAX_DONATION, max(0.0, float(value))), 4)


# --------------------------------------------------------------------------------------------------
# from run directories


def rows_from_run(run: str | os.PathLike[str], *, prefix: str | None = None) -> list[DialogueRow]:
    """The finished dialogues of a ``Persuasion-v0`` run directory (read as ``TransitionRecord``s), one
    original row per episode."""
    from persona_lab.core.records import episodes, read_records
    from persona_lab.simulators.persuasion import dialogue_from_records

    run = Path(run)
    if not (run / "transitions.jsonl").is_file():
        raise DataError("no transitions.jsonl here", path=str(run),
                        hint="pass the --out folder of `persona-lab run --env persona_lab/Persuasion-v0`")
    prefix = run.name if prefix is None else prefix
    rows = []
    for episode, recs in episodes(read_records(run)).items():
        if "Persuasion" not in recs[0].env_id:
            raise DataError(f"record of env {recs[0].env_id!r}, not Persuasion-v0", path=str(run),
                            row=f"episode {episode}", field="env_id")
        if not recs[-1].ended:
            continue  # an episode cut short by a kill: no final reward
        rows.append(row_from_dialogue(dialogue_from_records(recs), id=f"{prefix}/e{episode}", seed=recs[0].seed))
    return rows


# --------------------------------------------------------------------------------------------------
# JSONL files, validated on load


def save_dialogues(rows: Iterable[DialogueRow], path: str | os.PathLike[str]) -> Path:
    """Write rows as JSONL (atomically)."""
    path = Path(path)
    atomic_write_text(path, "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in rows))
    return path


def load_dialogues(path: str | os.PathLike[str]) -> list[DialogueRow]:
    """Read and validate a dialogue JSONL; a bad row is a :class:`DataError` naming file, row and field."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path=str(path), hint="build one with save_dialogues or `bench regen`")
    rows, seen = [], set()
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"not valid JSON ({exc.msg})", path=str(path), row=n) from None
            row = parse_row(raw, path=str(path), row=n)
            if row.id in seen:
                raise DataError(f"duplicate id {row.id!r}", path=str(path), row=n, field="id")
            seen.add(row.id)
            rows.append(row)
    return rows


def parse_row(raw: Any, *, path: str = "<memory>", row: int | str | None = None) -> DialogueRow:
    """Validate one JSON object as a :class:`DialogueRow`."""

    def bad(fieldname: str, message: str, hint: str | None = None) -> DataError:
        return DataError(message, path=path, row=row, field=fieldname, hint=hint)

    if not isinstance(raw, Mapping):
        raise DataError(f"expected a JSON object, got {type(raw).__name__}", path=path, row=row)
    for name in REQUIRED:
        if name not in raw:
            raise bad(name, "missing", hint=f"a dialogue row needs {', '.join(REQUIRED)}")
    if raw["source"] not in SOURCES:
        raise bad("source", f"unknown source {raw['source']!r}", hint=f"use one of {', '.join(SOURCES)}")
    if not isinstance(raw["turns"], list) or not raw["turns"]:
        raise bad("turns", "expected a non-empty list of {role, text}")
    turns = []
    for i, t in enumerate(raw["turns"]):
        if not isinstance(t, Mapping) or t.get("role") not in TURN_ROLES or not isinstance(t.get("text"), str):
            raise bad(f"turns[{i}]", f"expected {{'role': persuadee|persuader, 'text': str}}, got {t!r}")
        expected = TURN_ROLES[i % 2]
        if t["role"] != expected:
            raise bad(f"turns[{i}].role", f"turns alternate starting with the persuadee; expected {expected!r}")
        turns.append(Turn(t["role"], t["text"]))
    n_agent = sum(t.role == "persuader" for t in turns)
    if not isinstance(raw["turn_rewards"], list) or len(raw["turn_rewards"]) != n_agent:
        raise bad("turn_rewards", f"expected one reward per persuader turn ({n_agent})")
    try:
        turn_rewards = tuple(float(x) for x in raw["turn_rewards"])
        reward = float(raw["reward"])
    except (TypeError, ValueError):
        raise bad("reward", "rewards must be numbers") from None
    if not 0.0 <= reward <= MAX_DONATION:
        raise bad("reward", f"reward {reward} outside [0, {MAX_DONATION}]", hint="clip simulated rewards with clip_reward")
    div = raw.get("divergence_turn")
    if raw["source"] != "original":
        if raw.get("parent_id") is None:
            raise bad("parent_id", f"a {raw['source']} row needs the id of the dialogue it branches from")
        if not isinstance(div, int) or not 0 <= div < n_agent:
            raise bad("divergence_turn", f"expected a persuader turn index in 0..{n_agent - 1}, got {div!r}")
    world = raw.get("world")
    if world is not None and not isinstance(world, Mapping):
        raise bad("world", "expected the simulator's Dialogue as an object, or null")
    try:
        return DialogueRow(id=str(raw["id"]), source=raw["source"], turns=tuple(turns), reward=reward,
                           turn_rewards=turn_rewards, persona_id=str(raw["persona_id"]), seed=int(raw["seed"]),
                           budget=int(raw["budget"]), parent_id=raw.get("parent_id"), divergence_turn=div,
                           controller=raw.get("controller"), done=bool(raw.get("done", True)), world=world)
    except (TypeError, ValueError) as exc:
        raise bad("seed", f"seed and budget must be integers ({exc})") from None


# --------------------------------------------------------------------------------------------------
# views for the learners


def observation_at(row: DialogueRow, k: int) -> dict[str, Any]:
    """The ``Persuasion-v0`` observation the persuader saw before its turn ``k``."""
    prefix = row.turns[: 2 * k + 1]
    text = "\n".join(f"{'Persuadee' if t.role == 'persuadee' else 'Persuader'}: {t.text}" for t in prefix)
    return {"dialogue": text, "user": prefix[-1].text, "turn": k, "turns_left": row.budget - k}


def persuader_prompt(row: DialogueRow, k: int) -> list[dict[str, str]]:
    """The LLM persuader's prompt before turn ``k`` (the same function the persuader agents use)."""
    from persona_lab.agents.persuasion_agents import persuader_messages

    return [m.to_dict() for m in persuader_messages(observation_at(row, k))]


def sft_examples(rows: Iterable[DialogueRow], *, min_reward: float | None = None) -> list[dict[str, Any]]:
    """BC data: one ``{prompt, completion}`` per persuader turn (the loss covers the turn only).

    ``min_reward`` keeps only dialogues whose final reward is at least that (filtered BC: ``> 0`` is
    ``min_reward=1e-9``).
    """
    out = []
    for row in rows:
        if min_reward is not None and row.reward < min_reward:
            continue
        for k, text in enumerate(row.persuader_turns):
            out.append({"prompt": persuader_prompt(row, k), "completion": [{"role": "assistant", "content": text}]})
    return out


def _parents(rows: Iterable[DialogueRow]) -> tuple[list[DialogueRow], dict[str, DialogueRow]]:
    rows = list(rows)
    return rows, {r.id: r for r in rows}


def dpo_pairs(rows: Iterable[DialogueRow], *, min_gain: float = 1e-9) -> list[dict[str, Any]]:
    """DPO data: at each regeneration's divergence turn, the regenerated turn is *chosen* and the
    original turn *rejected* when the regeneration earned at least ``min_gain`` more (the reverse
    when it earned less by as much); ties are skipped. The prompt is the shared prefix."""
    rows, by_id = _parents(rows)
    out = []
    for row in rows:
        if row.source != "regenerated" or row.parent_id not in by_id or row.divergence_turn is None:
            continue
        parent, k = by_id[row.parent_id], row.divergence_turn
        gain = row.reward - parent.reward
        if abs(gain) < min_gain:
            continue
        new, old = row.persuader_turns[k], parent.persuader_turns[k]
        chosen, rejected = (new, old) if gain > 0 else (old, new)
        out.append({"prompt": persuader_prompt(row, k), "chosen": [{"role": "assistant", "content": chosen}],
                    "rejected": [{"role": "assistant", "content": rejected}]})
    return out


def kto_examples(rows: Iterable[DialogueRow], *, threshold: float = 1e-9) -> list[dict[str, Any]]:
    """KTO data: every persuader turn of a dialogue whose reward reaches ``threshold`` is desirable,
    every turn of one below it undesirable (``{prompt, completion, label}``)."""
    out = []
    for row in rows:
        label = row.reward >= threshold
        for k, text in enumerate(row.persuader_turns):
            if row.source != "original" and row.divergence_turn is not None and k < row.divergence_turn:
                continue  # the shared prefix is labelled once, by the original
            out.append({"prompt": persuader_prompt(row, k), "completion": [{"role": "assistant", "content": text}],
                        "label": label})
    return out


@dataclass(frozen=True)
class TokenView:
    """A dialogue as one token sequence for value learning.

    Attributes:
        input_ids: the chat-templated dialogue's tokens.
        agent_mask: 1 where the token was written by the persuader (its turns' text and their end-of-turn
            token); the persuadee's tokens and the template's role headers are 0 (environment tokens).
        rewards: the persuader turn's reward on the last agent token of that turn, else 0.
        done: the dialogue finished (the value after its last agent token is 0).
    """

    input_ids: tuple[int, ...]
    agent_mask: tuple[int, ...]
    rewards: tuple[float, ...]
    done: bool


def value_system_prompt() -> str:
    """The system line of the value model's sequence (the persuader's task, with no persona)."""
    from persona_lab.simulators.persuasion import CHARITY

    return (f"You are persuading another crowd worker to donate part of their $2 task bonus (between $0 and $2) "
            f"to {CHARITY}.")


def chat_messages(turns: Sequence[Turn] | Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """Turns as chat messages from the persuader's side, after the value model's system line."""
    out = [{"role": "system", "content": value_system_prompt()}]
    for t in turns:
        role, text = (t.role, t.text) if isinstance(t, Turn) else (t["role"], t["text"])
        out.append({"role": "assistant" if role == "persuader" else "user", "content": text})
    return out


def agent_spans(tokenizer: Any, messages: Sequence[Mapping[str, str]]) -> tuple[list[int], list[tuple[int, int, int]]]:
    """Tokenize the chat-templated ``messages`` and find each assistant turn's tokens.

    Returns the ids and, per assistant message, ``(message index, first token, last token)`` where the
    last token is the turn's end-of-turn token when the template puts one right after the text.
    Tokens are found by character offsets in the rendered text, so the ids are exactly those of
    tokenizing the whole rendered dialogue at once (training and acting see the same ids).
    """
    text = tokenizer.apply_chat_template(list(messages), tokenize=False)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
    spans, pos = [], 0
    eos = tokenizer.eos_token_id
    for i, m in enumerate(messages):
        start = text.find(m["content"], pos) if m["content"] else -1
        if start < 0:
            continue
        stop = start + len(m["content"])
        pos = stop
        if m["role"] != "assistant":
            continue
        toks = [j for j, (a, b) in enumerate(offsets) if b > start and a < stop]
        if not toks:
            continue
        last = toks[-1]
        if last + 1 < len(ids) and ids[last + 1] == eos:
            last += 1
        spans.append((i, toks[0], last))
    return ids, spans


def token_view(row: DialogueRow, tokenizer: Any, *, max_length: int | None = None) -> TokenView:
    """The :class:`TokenView` of a dialogue row (truncated from the left to ``max_length`` tokens)."""
    ids, spans = agent_spans(tokenizer, chat_messages(row.turns))
    mask, rewards = [0] * len(ids), [0.0] * len(ids)
    for k, (_, first, last) in enumerate(spans):
        for j in range(first, last + 1):
            mask[j] = 1
        if k < len(row.turn_rewards):
            rewards[last] = float(row.turn_rewards[k])
    if max_length is not None and len(ids) > max_length:
        ids, mask, rewards = ids[-max_length:], mask[-max_length:], rewards[-max_length:]
    return TokenView(tuple(ids), tuple(mask), tuple(rewards), bool(row.done))


# --------------------------------------------------------------------------------------------------
# hindsight regenerations


@dataclass
class RegenerationStats:
    """What one controller produced: proposals, regenerated rows and their mean reward gain."""

    controller: str
    parents: int = 0
    proposals: int = 0
    regenerated: int = 0
    cached: int = 0
    gains: list[float] = field(default_factory=list)
    failures: int = 0

    @property
    def mean_gain(self) -> float | None:
        return sum(self.gains) / len(self.gains) if self.gains else None

    def to_dict(self) -> dict[str, Any]:
        return {"controller": self.controller, "parents": self.parents, "proposals": self.proposals,
                "regenerated": self.regenerated, "cached": self.cached, "failures": self.failures,
                "mean_gain": self.mean_gain}


def regenerate_rows(rows: Iterable[DialogueRow], controller: Any, user: Any, *, seed: int = 0,
                    below: float = MAX_DONATION, prefix_only: bool = False,
                    cache: str | os.PathLike[str] | None = None) -> tuple[list[DialogueRow], RegenerationStats]:
    """Regenerate the original dialogues whose reward is below ``below`` with a hindsight controller.

    The controller reads the public transcript only (the simulator's dialogue too when it is
    ``privileged``, i.e. the oracle); the user simulator completes the dialogue from the proposed turn
    with a seed derived from (``seed``, row id, controller), so regenerations are reproducible; the
    original later persuader turns are replayed. Rewards are clipped to [0, $2].

    Args:
        rows: the dataset (only ``original`` rows with a ``world`` are regenerated).
        controller: a :class:`~persona_lab.simulators.persuasion_hindsight.HindsightController`.
        user: the persuadee simulator.
        seed: the regeneration seed.
        below: regenerate dialogues whose reward is below this.
        prefix_only: the ablation: keep the original turn at the proposed point and only re-simulate
            the user from there (rows get ``source = prefix_only``).
        cache: a JSONL file of finished regenerations (keyed by parent, controller, seed, mode); rows
            found there are reused without calling the controller or the simulator, new ones appended.
    """
    from persona_lab.core.io import append_jsonl
    from persona_lab.core.seeding import derive_seed, stable_hash
    from persona_lab.simulators.persuasion import regenerate
    from persona_lab.simulators.persuasion_hindsight import public_transcript

    source = "prefix_only" if prefix_only else "regenerated"
    stats = RegenerationStats(controller=controller.name)
    done: dict[str, dict[str, Any] | None] = {}
    if cache is not None and Path(cache).is_file():
        for rec in read_jsonl(cache):
            done[rec["key"]] = rec.get("row")
    out = []
    for row in rows:
        if row.source != "original" or row.world is None or row.reward >= below:
            continue
        stats.parents += 1
        dialogue = row.dialogue()
        key = stable_hash([row.id, row.seed, row.persuader_turns, controller.name, seed, source], length=24)
        if key in done:
            stats.cached += 1
            cached = done[key]
            if cached is not None:
                new_row = parse_row(cached, path=str(cache), row=row.id)
                stats.proposals += 1
                stats.regenerated += 1
                stats.gains.append(new_row.reward - row.reward)
                out.append(new_row)
            continue
        visible = public_transcript(dialogue)
        proposal = controller.propose(visible, dialogue=dialogue if getattr(controller, "privileged", False) else None)
        new_row = None
        if proposal is not None:
            stats.proposals += 1
            text = dialogue.exchanges[proposal.turn].agent if prefix_only else proposal.utterance
            child = regenerate(dialogue, proposal.turn, text, user,
                               seed=derive_seed("hindsight", seed, row.id, controller.name))
            new_row = row_from_dialogue(child, id=f"{row.id}/{source}-{controller.name}", seed=row.seed,
                                        source=source, parent_id=row.id, divergence_turn=proposal.turn,
                                        controller=controller.name)
            stats.regenerated += 1
            stats.gains.append(new_row.reward - row.reward)
            out.append(new_row)
        if cache is not None:
            append_jsonl(cache, {"key": key, "row": None if new_row is None else new_row.to_dict()})
    stats.failures = int(getattr(controller, "failures", 0))
    return out, stats
