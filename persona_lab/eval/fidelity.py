"""Fidelity counters of a run: how often the simulated user's (and the agent's) output could not be
taken at face value, computed from the transition records the same way for every world.

The user counters sum the flags of the audited calls that LLM users leave in ``info["user_calls"]``
(:mod:`persona_lab.simulators.audit`); scripted users make no calls, so their runs count zero. The
agent counters read the records: an empty action, a ``parse_failed`` flag in the agent's
``step_info``, a preference the agent used that names no catalog item (e.g. CSS instead of a writing
preference), an action that loops. A counter above :data:`WARN_RATE` of its calls gets a warning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from persona_lab.core.records import TransitionRecord
from persona_lab.simulators import catalog
from persona_lab.simulators.audit import FLAGS, INFO_KEY, is_degenerate

WARN_RATE = 0.10
USER_CALLS = "user/calls"
AGENT_CALLS = "agent/rounds"


def fidelity_counters(records: Iterable[TransitionRecord]) -> dict[str, int]:
    """``user/calls``, ``user/<flag>`` for every audit flag, ``agent/rounds`` and the ``agent/...`` counts."""
    out: dict[str, int] = {USER_CALLS: 0, **{f"user/{f}": 0 for f in FLAGS}, AGENT_CALLS: 0,
                           "agent/parse_failures": 0, "agent/unrecognized_preference": 0,
                           "agent/degenerate_repetition": 0}
    for rec in records:
        for call in rec.info.get(INFO_KEY, ()) or ():
            out[USER_CALLS] += 1
            for flag in call.get("flags", ()):
                key = f"user/{flag}"
                if key in out:
                    out[key] += 1
        out[AGENT_CALLS] += 1
        step: Mapping[str, Any] = rec.agent or {}
        if not str(rec.action).strip() or step.get("parse_failed"):
            out["agent/parse_failures"] += 1
        used = step.get("used_preference")
        if isinstance(used, str) and used.strip() and not catalog.recognize(used):
            out["agent/unrecognized_preference"] += 1
        if is_degenerate(str(rec.action)):
            out["agent/degenerate_repetition"] += 1
    return out


def fidelity_rates(counters: Mapping[str, int]) -> dict[str, float]:
    """Each non-zero counter as a share of its role's calls (user calls, agent rounds)."""
    out: dict[str, float] = {}
    for key, n in counters.items():
        if key in (USER_CALLS, AGENT_CALLS) or not n:
            continue
        total = counters.get(USER_CALLS if key.startswith("user/") else AGENT_CALLS, 0)
        if total:
            out[key] = n / total
    return out


def fidelity_warnings(counters: Mapping[str, int], *, rate: float = WARN_RATE) -> list[str]:
    """One line per counter above ``rate`` of its calls (the numbers a reader must not trust blindly)."""
    lines = []
    for key, share in fidelity_rates(counters).items():
        if share > rate:
            total = counters[USER_CALLS if key.startswith("user/") else AGENT_CALLS]
            what = "user calls" if key.startswith("user/") else "agent rounds"
            where = "info['user_calls']" if key.startswith("user/") else "the actions and agent step_info"
            lines.append(f"warning: {key} in {share:.0%} of {total} {what} (> {rate:.0%}); "
                         f"see {where} in transitions.jsonl")
    return lines
