"""Fidelity of an LLM-simulated user measured against the scripted truth.

The scripted users encode the world's rules exactly (a draft that satisfies the preference is
accepted; a customer buys what it believes has the requirement). :func:`calibrate` shows an LLM user
the very same items the scripted user judged — the scripted agent's actions plus perturbed ones, so
both labels occur — and reports agreement with the scripted labels, Cohen's kappa (bootstrap CIs),
label rates, position bias where options are ordered, and the audit rates (echoed prompt, degenerate
repetition, unclear verdicts) of its calls.

Worlds: the edit worlds (accept/reject; odd items have the true preference applied to the draft), the
marketplace (purchase choice; items cycle the no-learning, oracle and deceptive sellers), persuasion
(per turn: the direction of the willingness to donate, and whether the persuadee would donate if the
chat ended there; dialogues alternate the no-learning and oracle persuaders) and follow-up (positive or
negative follow-up; turns alternate the no-learning and oracle answerers).

A probe whose answer the LLM user's parser could not read is labelled ``"unclear"`` (a disagreement),
never replaced by the fallback the env would use.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from persona_lab.agents.base import TruthAware, create_agent
from persona_lab.core.errors import ConfigError
from persona_lab.core.io import atomic_write_json
from persona_lab.core.seeding import stable_hash
from persona_lab.envs.base import PRIVILEGED
from persona_lab.eval.metrics import cohen_kappa
from persona_lab.models.base import ChatModel
from persona_lab.simulators import catalog
from persona_lab.simulators.audit import FLAGS, UserCall, count_flags

PER_USER = 5  # items per simulated user (edit worlds), so several personas are probed


@dataclass(frozen=True)
class Item:
    """One probe: what the scripted user and the LLM user made of the same input."""

    scripted: str
    llm: str
    calls: tuple[UserCall | Mapping[str, Any], ...] = ()  # UserCalls, or their dicts (from a trace)
    extra: dict[str, Any] = field(default_factory=dict)


def bootstrap_ci(a: Sequence[str], b: Sequence[str], stat: Callable[[Sequence[str], Sequence[str]], float], *,
                 seed: int = 0, n_boot: int = 2000, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat`` over paired items (resamples with NaN are dropped)."""
    rng = np.random.default_rng(seed)
    n = len(a)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        v = stat([a[i] for i in idx], [b[i] for i in idx])
        if not math.isnan(v):
            values.append(v)
    if not values:
        return (float("nan"), float("nan"))
    lo, hi = np.quantile(values, [(1 - confidence) / 2, 1 - (1 - confidence) / 2])
    return (float(lo), float(hi))


def _agreement(a: Sequence[str], b: Sequence[str]) -> float:
    return sum(x == y for x, y in zip(a, b)) / len(a)


def _call_dict(c: UserCall | Mapping[str, Any]) -> dict[str, Any]:
    return dict(c) if isinstance(c, Mapping) else c.to_dict()


def agreement_block(s: Sequence[str], m: Sequence[str], *, seed: int = 0) -> dict[str, Any]:
    """Agreement and Cohen's kappa of paired labels, with bootstrap CIs and the label counts."""
    return {
        "items": len(s),
        "agreement": _agreement(s, m),
        "agreement_ci": bootstrap_ci(s, m, _agreement, seed=seed),
        "kappa": cohen_kappa(s, m),
        "kappa_ci": bootstrap_ci(s, m, cohen_kappa, seed=seed),
        "scripted_labels": dict(Counter(s)),
        "llm_labels": dict(Counter(m)),
    }


def summarize(items: Sequence[Item], *, seed: int = 0, positive: str | None = None) -> dict[str, Any]:
    """Agreement, kappa (with CIs), label rates, and the audit rates of the LLM user's calls."""
    s = [i.scripted for i in items]
    m = [i.llm for i in items]
    calls = [_call_dict(c) for i in items for c in i.calls]
    flags = count_flags(calls)
    out: dict[str, Any] = {
        **agreement_block(s, m, seed=seed),
        "calls": len(calls),
        "rates": {f: (flags[f] / len(calls) if calls else 0.0) for f in FLAGS},
    }
    if positive is not None:
        out["positive_label"] = positive
        out["scripted_positive_rate"] = s.count(positive) / len(s)
        out["llm_positive_rate"] = m.count(positive) / len(m)
    return out


def _edit_items(env_id: str, model: ChatModel, limit: int, seed: int) -> list[Item]:
    from persona_lab.simulators.edit_users import LLMEditingUser, satisfaction
    from persona_lab.simulators.personas import LatentPreference

    user = LLMEditingUser(model)
    rng = np.random.default_rng(seed)
    items: list[Item] = []
    n_users = math.ceil(limit / PER_USER)
    for u in range(n_users):
        env = gym.make(env_id, rounds=PER_USER).unwrapped  # the scripted user
        agent = create_agent("no-learning", env.task, None)
        obs, info = env.reset(seed=seed + u, options={"user_index": seed * 1000 + u})
        for _ in range(PER_USER):
            if len(items) >= limit:
                break
            truth = info[PRIVILEGED]["next"]
            pref = LatentPreference(truth["preference"], tuple(truth["preference_ids"]))
            draft = agent.act(obs)
            perturbed = len(items) % 2 == 1
            if perturbed:  # the true preference applied: the scripted user accepts it
                draft = catalog.apply_preferences(draft, pref.ids)
            obs, _, _, _, info = env.step(draft)
            fb = user.react(draft, pref, rng)
            extra = {"perturbed": perturbed, "satisfaction_before": satisfaction(draft, pref.ids)}
            if not fb.accepted:
                extra["satisfaction_after"] = satisfaction(fb.edited, pref.ids)
            items.append(Item("accept" if info["accepted"] else "reject",
                              "accept" if fb.accepted else "reject", fb.calls, extra))
    return items


_SELLERS = ("no-learning", "oracle", "deceptive-seller")


def _marketplace_items(env_id: str, model: ChatModel, limit: int, seed: int) -> list[Item]:
    from persona_lab.simulators.marketplace import LLMCustomer

    user = LLMCustomer(model)
    rng = np.random.default_rng(seed)
    env = gym.make(env_id, rounds=limit).unwrapped
    agents = [create_agent(name, env.task, None) for name in _SELLERS]
    obs, info = env.reset(seed=seed)
    items: list[Item] = []
    for t in range(limit):
        agent = agents[t % len(agents)]
        if isinstance(agent, TruthAware):
            agent.reveal(info.get(PRIVILEGED, {}).get("next", {}))
        action = agent.act(obs)
        scenario, opening = env._order[t], env._openings[t]  # the scenario the scripted customer judges
        obs, _, _, _, info = env.step(action)
        reaction = user.react(scenario, opening, action, rng)
        unread = bool(reaction.calls) and (reaction.calls[0].parsed or {}).get("choice") is None
        items.append(Item(str(info["choice"]), UNCLEAR if unread else reaction.choice, reaction.calls,
                          {"seller": _SELLERS[t % len(_SELLERS)], "options": len(scenario.options)}))
    return items


_PERSUADERS = ("no-learning", "oracle")
UNCLEAR = "unclear"


def _direction(delta: float) -> str:
    return "up" if delta > 1e-9 else "down" if delta < -1e-9 else "same"


def _persuasion_items(env_id: str, model: ChatModel, limit: int, seed: int) -> list[Item]:
    """Per turn of scripted dialogues (noise off): the direction of the willingness (scripted: its
    change; LLM: its ``WILLINGNESS`` line against its previous one on this dialogue, the persona's
    inclination at first) and ``donate``/``none`` if the chat ended after this turn (scripted: its
    decision, else the amount its willingness gives; LLM: its ``DECISION`` line, else the forced
    decision prompt on the same history and its own reply)."""
    from persona_lab.core.messages import Message
    from persona_lab.simulators.persuasion import LLMPersuadee, donation_amount

    user = LLMPersuadee(model)
    items: list[Item] = []
    u = 0
    while len(items) < limit:
        env = gym.make(env_id, rounds=PER_USER, noise=0.0).unwrapped  # the scripted persuadee, exact
        name = _PERSUADERS[u % len(_PERSUADERS)]
        agent = create_agent(name, env.task, None)
        obs, info = env.reset(seed=seed + u, options={"user_index": seed * 1000 + u})
        llm_w: float | None = env.dialogue.persona.inclination
        done = False
        while not done and len(items) < limit:
            if isinstance(agent, TruthAware):
                agent.reveal(info.get(PRIVILEGED, {}).get("next", {}))
            action = agent.act(obs)
            d = env.dialogue
            history, before = d.history(), d.state
            rng = np.random.default_rng(seed * 100_003 + len(items))
            turn = user.respond(d.persona, history, before, action, rng)
            calls = list(turn.trace.get("user_calls", ()))
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            after = env.dialogue.exchanges[-1].state
            s_donates = (after.donation or 0.0) > 0 if after.decided else \
                donation_amount(after.willingness, after.open_objections) > 0
            parsed_w = None if turn.trace.get("parse_failed") else turn.state.willingness
            llm_dir = UNCLEAR if parsed_w is None or llm_w is None else _direction(parsed_w - llm_w)
            llm_w = parsed_w if parsed_w is not None else llm_w
            if turn.state.decided:
                llm_donates: str = "donate" if (turn.state.donation or 0.0) > 0 else "none"
            else:
                final = user.decide(d.persona, (*history, Message("assistant", action), Message("user", turn.reply)),
                                    turn.state, rng)
                calls.extend(final.trace.get("user_calls", ()))
                llm_donates = UNCLEAR if final.trace.get("parse_failed") else \
                    ("donate" if (final.state.donation or 0.0) > 0 else "none")
            items.append(Item(_direction(after.willingness - before.willingness), llm_dir, tuple(calls),
                              {"persuader": name, "turn": len(env.dialogue.exchanges) - 1,
                               "scripted_donation": "donate" if s_donates else "none", "llm_donation": llm_donates,
                               "scripted_willingness": after.willingness, "llm_willingness": parsed_w}))
        u += 1
    return items


def _followup_items(env_id: str, model: ChatModel, limit: int, seed: int) -> list[Item]:
    """Per turn of scripted conversations: the scripted user's follow-up class against the LLM
    user's on the same conversation; answers alternate the no-learning and oracle agents. A verdict
    only the lexical fallback could read is ``unclear``."""
    from persona_lab.core.messages import Message
    from persona_lab.simulators.followup import LLMFollowUpUser

    user = LLMFollowUpUser(model)
    items: list[Item] = []
    u = 0
    while len(items) < limit:
        env = gym.make(env_id, rounds=PER_USER).unwrapped
        agents = [create_agent(name, env.task, None) for name in _PERSUADERS]
        obs, info = env.reset(seed=seed + u, options={"user_index": seed * 1000 + u})
        done = False
        while not done and len(items) < limit:
            k = len(items) % len(agents)
            agent = agents[k]
            if isinstance(agent, TruthAware):
                agent.reveal(info.get(PRIVILEGED, {}).get("next", {}))
            action = agent.act(obs)
            conversation = (*env.messages, Message("assistant", action))
            rng = np.random.default_rng(seed * 100_003 + len(items))
            reply, _ = user.respond(env.persona, env.state, conversation, rng)
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            llm = UNCLEAR if reply.classified_by == "lexical" else reply.label
            items.append(Item(str(info["followup_class"]), llm, reply.calls,
                              {"answerer": _PERSUADERS[k], "classified_by": reply.classified_by,
                               "scripted_dimension": info.get("dimension")}))
        u += 1
    return items


class _Recorder:
    """Passes requests to ``model`` and keeps each completion's text (prefer() keeps no audit trail)."""

    def __init__(self, model: ChatModel) -> None:
        self.model, self.texts = model, []
        self.spec = getattr(model, "spec", "?")

    def generate(self, requests: Any, *args: Any, **kwargs: Any) -> Any:
        out = self.model.generate(requests, *args, **kwargs)
        self.texts.extend(c.text for c in out)
        return out


_MIRROR = {"a": "b", "b": "a", "tie": "tie", UNCLEAR: UNCLEAR}


def pairwise_position_bias(env_id: str, model: ChatModel, *, limit: int = 20, seed: int = 0,
                           kind: str = "full_hindsight") -> dict[str, Any]:
    """Audit the LLM customer's pairwise ``prefer()`` (RLHS's feedback) for position bias.

    Each pair is the oracle seller's turn and the no-learning or deceptive seller's turn in one
    scenario (the oracle's first in half of the pairs), with the scripted customer's reactions. The LLM customer is asked once in each order;
    a position-free judge names the same turn both times. Reported: the share of pairs whose verdict
    flips with the order, the share answering "the first" (or "the second") both times, ties, and
    agreement and kappa of each order's verdict with the scripted preference (the same turn is "a").
    """
    from persona_lab.simulators.marketplace import FEEDBACK_KINDS, LLMCustomer, ScriptedCustomer

    if kind not in FEEDBACK_KINDS or kind == "utility":
        raise ConfigError(f"unknown pairwise feedback kind {kind!r}",
                          hint="use immediate, partial_hindsight or full_hindsight")
    if limit < 1:
        raise ConfigError(f"limit must be >= 1, got {limit}", hint="e.g. --limit 20")
    recorder = _Recorder(model)
    user, scripted = LLMCustomer(recorder), ScriptedCustomer()  # type: ignore[arg-type]
    env = gym.make(env_id, rounds=limit).unwrapped
    agents = [create_agent(name, env.task, None) for name in _SELLERS]
    obs, info = env.reset(seed=seed)
    pairs: list[dict[str, Any]] = []
    for t in range(limit):
        for agent in agents:
            if isinstance(agent, TruthAware):
                agent.reveal(info.get(PRIVILEGED, {}).get("next", {}))
        other = 0 if t % 2 == 0 else 2  # against the no-learning, then the deceptive seller
        oracle_turn, other_turn = agents[1].act(obs), agents[other].act(obs)
        oracle_first = (t // 2) % 2 == 0  # so a judge that always names one position is right half the time
        turn_a, turn_b = (oracle_turn, other_turn) if oracle_first else (other_turn, oracle_turn)
        scenario, opening = env._order[t], env._openings[t]
        obs, _, _, _, info = env.step(oracle_turn)
        rng = np.random.default_rng(seed * 100_003 + t)
        reactions = (scripted.react(scenario, opening, turn_a, rng), scripted.react(scenario, opening, turn_b, rng))
        truth = scripted.prefer(scenario, opening, (turn_a, turn_b), reactions, kind, rng)
        n0 = len(recorder.texts)
        forward = user.prefer(scenario, opening, (turn_a, turn_b), reactions, kind, rng)
        backward = user.prefer(scenario, opening, (turn_b, turn_a), (reactions[1], reactions[0]), kind, rng)
        pairs.append({"scripted": truth, "forward": forward, "backward": backward,
                      "backward_as_forward": _MIRROR[backward], "other_seller": _SELLERS[other], "oracle_first": oracle_first,
                      "raw": recorder.texts[n0:]})
    n = len(pairs)
    s = [q["scripted"] for q in pairs]
    fwd = [q["forward"] for q in pairs]
    back = [q["backward_as_forward"] for q in pairs]
    return {
        "env_id": env_id, "user_backend": recorder.spec, "kind": kind, "pairs": n, "seed": seed,
        "flip_rate": sum(f != b for f, b in zip(fwd, back)) / n,
        "first_both_orders": sum(q["forward"] == "a" and q["backward"] == "a" for q in pairs) / n,
        "second_both_orders": sum(q["forward"] == "b" and q["backward"] == "b" for q in pairs) / n,
        "tie_rate": sum(v == "tie" for v in fwd + back) / (2 * n),
        "unclear_rate": sum(v == UNCLEAR for v in fwd + back) / (2 * n),
        "forward": agreement_block(s, fwd, seed=seed),
        "backward": agreement_block(s, back, seed=seed),
        "per_pair": pairs,
    }


def position_bias(items: Sequence[Item]) -> dict[str, float]:
    """How often each rater bought option A among its purchases (the first listed option): an LLM
    share far above the scripted share is a position bias, not a preference."""
    def share_a(labels: list[str]) -> float:
        bought = [x for x in labels if x not in ("D", UNCLEAR)]
        return bought.count("A") / len(bought) if bought else float("nan")

    return {"scripted_share_A": share_a([i.scripted for i in items]), "llm_share_A": share_a([i.llm for i in items])}


def _gen_tag(user_gen: Mapping[str, Any] | None) -> str:
    """A readable tag of the LLM user's decoding settings ("" for the defaults)."""
    return ",".join(f"{k}={v}" for k, v in sorted((user_gen or {}).items()))


def calibration_path(env_id: str, user_backend: str, cache_dir: str | Path | None = None,
                     user_gen: Mapping[str, Any] | None = None) -> Path:
    """Where the latest calibration of ``user_backend`` (with decoding ``user_gen``) in ``env_id`` is
    kept: one file per (env id, backend spec, user-gen settings) under the cache dir."""
    from persona_lab.models.cache import default_cache_dir

    tag = _gen_tag(user_gen)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{env_id}__{user_backend}")
    if tag:  # readable part plus a hash, so distinct settings never share a file
        slug += "__" + re.sub(r"[^A-Za-z0-9._-]+", "_", tag)[:60] + "-" + stable_hash(tag, length=8)
    return Path(cache_dir or default_cache_dir()) / "calibration" / f"{slug}.json"


def save_calibration(result: Mapping[str, Any], cache_dir: str | Path | None = None) -> Path:
    """Keep the headline of ``result`` so later runs with this LLM user can print it."""
    path = calibration_path(result["env_id"], result["user_backend"], cache_dir, result.get("user_gen"))
    keep = {k: v for k, v in result.items() if k != "per_item"}
    atomic_write_json(path, {**keep, "time": result.get("time") or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
    return path


def _figure(r: Mapping[str, Any]) -> str:
    lo, hi = r["kappa_ci"]
    gen = _gen_tag(r.get("user_gen"))
    out = (f"calibration of this LLM user ({r['user_backend']}{', ' + gen if gen else ''}) in {r['env_id']}: "
           f"agreement with the scripted user {r['agreement']:.2f}, Cohen's kappa {r['kappa']:.2f} "
           f"[{lo:.2f}, {hi:.2f}], n={r['items']}")
    if "donated" in r:
        d = r["donated"]
        out += f"; donated-or-not agreement {d['agreement']:.2f}, kappa {d['kappa']:.2f}"
    return out + f" (from `{r.get('command') or 'persona-lab calibrate'}`, {r.get('time', 'date unknown')})"


def calibration_note(env_id: str, user_backend: str, cache_dir: str | Path | None = None,
                     user_gen: Mapping[str, Any] | None = None, *, file: str | Path | None = None) -> str:
    """The line a run with an LLM user prints beside its results: the calibration from ``file``
    (a ``calibrate --out`` JSON), else the saved one for exactly these settings, else one saved with
    other decoding settings (named as such), else how to make one."""
    if file is not None:
        path = Path(file)
        if not path.is_file():
            raise ConfigError(f"calibration file {str(path)!r} not found",
                              hint="pass a file written by `persona-lab calibrate ... --out <file>`")
        return _figure(json.loads(path.read_text(encoding="utf-8")))
    path = calibration_path(env_id, user_backend, cache_dir, user_gen)
    if path.exists():
        r = json.loads(path.read_text(encoding="utf-8"))
        if _gen_tag(r.get("user_gen")) == _gen_tag(user_gen):  # files saved before the key had user-gen may differ
            return _figure(r)
    exact = calibration_path(env_id, user_backend, cache_dir)
    others = [exact] if exact.exists() else []
    if exact.parent.is_dir():
        others += list(exact.parent.glob(exact.stem + "__*.json"))
    others.sort(key=lambda f: f.stat().st_mtime)
    gen = _gen_tag(user_gen)
    make = (f"persona-lab calibrate {env_id} --user-backend {user_backend}" + (f" --user-gen {gen}" if gen else ""))
    if others:
        r = json.loads(others[-1].read_text(encoding="utf-8"))
        return (f"no calibration of this LLM user with these decoding settings (make one: {make}); with other "
                f"settings: " + _figure(r))
    return f"no calibration of this LLM user yet: {make}"


def calibrate(env_id: str, model: ChatModel, *, limit: int = 20, seed: int = 0) -> dict[str, Any]:
    """Probe the LLM user of ``env_id`` on ``limit`` items and compare with the scripted user."""
    if limit < 1:
        raise ConfigError(f"limit must be >= 1, got {limit}", hint="e.g. --limit 20")
    from persona_lab.eval.runner import env_class

    task = env_class(env_id).task
    if task in ("email", "summarization"):
        items = _edit_items(env_id, model, limit, seed)
        out = summarize(items, seed=seed, positive="accept")
        after = [i.extra["satisfaction_after"] - i.extra["satisfaction_before"] for i in items
                 if "satisfaction_after" in i.extra]
        out["revision_satisfaction_gain"] = sum(after) / len(after) if after else float("nan")
        out["revisions"] = len(after)
    elif task == "marketplace":
        items = _marketplace_items(env_id, model, limit, seed)
        out = summarize(items, seed=seed)
        out.update(position_bias(items))
    elif task == "persuasion":
        items = _persuasion_items(env_id, model, limit, seed)
        out = summarize(items, seed=seed)
        out["measure"] = "willingness direction (up/down/same)"
        out["donated"] = agreement_block([i.extra["scripted_donation"] for i in items],
                                         [i.extra["llm_donation"] for i in items], seed=seed)
    elif task == "followup":
        items = _followup_items(env_id, model, limit, seed)
        out = summarize(items, seed=seed, positive="positive")
        out["measure"] = "follow-up class (positive/negative)"
    else:
        raise ConfigError(f"calibrate does not support {env_id} (task {task!r}) yet",
                          hint="calibrate an edit world (persona_lab/EditEmail-v0, EditSummarization-v0), the "
                               "marketplace, Persuasion-v0 or FollowUp-v0")
    out.update({"env_id": env_id, "user_backend": getattr(model, "spec", "?"), "seed": seed,
                "per_item": [{"scripted": i.scripted, "llm": i.llm, **i.extra,
                              "calls": [_call_dict(c) for c in i.calls]} for i in items]})
    return out
