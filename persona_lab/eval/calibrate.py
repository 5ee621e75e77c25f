"""Fidelity of an LLM-simulated user measured against the scripted truth.

The scripted users encode the world's rules exactly (a draft that satisfies the preference is
accepted; a customer buys what it believes has the requirement). :func:`calibrate` shows an LLM user
the very same items the scripted user judged — the scripted agent's actions plus perturbed ones, so
both labels occur — and reports agreement with the scripted labels, Cohen's kappa (bootstrap CIs),
label rates, position bias where options are ordered, and the audit rates (echoed prompt, degenerate
repetition, unclear verdicts) of its calls.

Worlds: the edit worlds (accept/reject; odd items have the true preference applied to the draft) and
the marketplace (purchase choice; items cycle the no-learning, oracle and deceptive sellers).
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
from persona_lab.envs.base import PRIVILEGED
from persona_lab.models.base import ChatModel
from persona_lab.simulators import catalog
from persona_lab.simulators.audit import FLAGS, UserCall, count_flags

PER_USER = 5  # items per simulated user (edit worlds), so several personas are probed


@dataclass(frozen=True)
class Item:
    """One probe: what the scripted user and the LLM user made of the same input."""

    scripted: str
    llm: str
    calls: tuple[UserCall, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float:
    """Cohen's kappa of two label sequences (1 = perfect agreement, 0 = chance level); NaN when
    chance agreement is 1 (both raters used one and the same label throughout)."""
    if len(a) != len(b) or not a:
        raise ValueError("need two label sequences of the same, non-zero length")
    n = len(a)
    po = sum(x == y for x, y in zip(a, b)) / n
    ca, cb = Counter(a), Counter(b)
    pe = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / (n * n)
    return float("nan") if pe == 1 else (po - pe) / (1 - pe)


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


def summarize(items: Sequence[Item], *, seed: int = 0, positive: str | None = None) -> dict[str, Any]:
    """Agreement, kappa (with CIs), label rates, and the audit rates of the LLM user's calls."""
    s = [i.scripted for i in items]
    m = [i.llm for i in items]
    calls = [c.to_dict() for i in items for c in i.calls]
    flags = count_flags(calls)
    out: dict[str, Any] = {
        "items": len(items),
        "agreement": _agreement(s, m),
        "agreement_ci": bootstrap_ci(s, m, _agreement, seed=seed),
        "kappa": cohen_kappa(s, m),
        "kappa_ci": bootstrap_ci(s, m, cohen_kappa, seed=seed),
        "scripted_labels": dict(Counter(s)),
        "llm_labels": dict(Counter(m)),
        "calls": len(calls),
        "rates": {f: (flags[f] / len(calls) if calls else 0.0) for f in FLAGS},
    }
    if positive is not None:
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
        items.append(Item(str(info["choice"]), reaction.choice, reaction.calls,
                          {"seller": _SELLERS[t % len(_SELLERS)], "options": len(scenario.options)}))
    return items


def position_bias(items: Sequence[Item]) -> dict[str, float]:
    """How often each rater bought option A among its purchases (the first listed option): an LLM
    share far above the scripted share is a position bias, not a preference."""
    def share_a(labels: list[str]) -> float:
        bought = [x for x in labels if x != "D"]
        return bought.count("A") / len(bought) if bought else float("nan")

    return {"scripted_share_A": share_a([i.scripted for i in items]), "llm_share_A": share_a([i.llm for i in items])}


def calibration_path(env_id: str, user_backend: str, cache_dir: str | Path | None = None) -> Path:
    """Where the latest calibration of ``user_backend`` in ``env_id`` is kept (under the cache dir)."""
    from persona_lab.models.cache import default_cache_dir

    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{env_id}__{user_backend}")
    return Path(cache_dir or default_cache_dir()) / "calibration" / f"{slug}.json"


def save_calibration(result: Mapping[str, Any], cache_dir: str | Path | None = None) -> Path:
    """Keep the headline of ``result`` so later runs with this LLM user can print it."""
    path = calibration_path(result["env_id"], result["user_backend"], cache_dir)
    keep = {k: v for k, v in result.items() if k != "per_item"}
    atomic_write_json(path, {**keep, "time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
    return path


def calibration_note(env_id: str, user_backend: str, cache_dir: str | Path | None = None) -> str | None:
    """One line with the saved calibration of this LLM user, or None when there is none."""
    path = calibration_path(env_id, user_backend, cache_dir)
    if not path.exists():
        return None
    r = json.loads(path.read_text(encoding="utf-8"))
    lo, hi = r["kappa_ci"]
    return (f"calibration of this user ({user_backend}, {r['items']} items, {r.get('time', '?')}): agreement with "
            f"the scripted user {r['agreement']:.2f}, Cohen's kappa {r['kappa']:.2f} [{lo:.2f}, {hi:.2f}]")


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
    else:
        raise ConfigError(f"calibrate does not support {env_id} (task {task!r}) yet",
                          hint="calibrate an edit world (persona_lab/EditEmail-v0, EditSummarization-v0) or the marketplace")
    out.update({"env_id": env_id, "user_backend": getattr(model, "spec", "?"), "seed": seed,
                "per_item": [{"scripted": i.scripted, "llm": i.llm, **i.extra,
                              "calls": [c.to_dict() for c in i.calls]} for i in items]})
    return out
