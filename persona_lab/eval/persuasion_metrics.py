"""Episode metrics of ``persona_lab/Persuasion-v0`` (registered with the runner on import).

Per episode (one persuadee): ``mean_donation`` (the donation in dollars; its mean over episodes is
the mean donation), ``donation_rate`` (1 when more than $0; its mean over episodes is the rate),
``turns`` used, ``early_decision`` (1 when the persuadee decided before the budget ran out),
``goodbye`` (left without being asked), ``parse_failure_rate`` (LLM persuadee turns whose hidden
lines could not be read) and, from the privileged trace, ``final_willingness`` and
``willingness_gain`` (final minus initial hidden willingness).
"""

from __future__ import annotations

from typing import Any

from persona_lab.eval.runner import EPISODE_METRICS, RECORD_PROMPTS
from persona_lab.simulators.persuasion import (
    Dialogue,
    Exchange,
    PersuadeePersona,
    PersuadeeState,
    initial_state,
)

ENV_ID = "persona_lab/Persuasion-v0"


def persuasion_metrics(records: list[dict[str, Any]]) -> dict[str, float]:
    last = records[-1]
    donation = last["info"].get("donation")
    donation = float(donation) if donation is not None else 0.0
    out = {
        "mean_donation": donation,
        "donation_rate": float(donation > 0),
        "turns": float(len(records)),
        "early_decision": float(last["info"].get("outcome") in ("decided", "goodbye")),
        "goodbye": float(last["info"].get("outcome") == "goodbye"),
        "parse_failure_rate": sum(bool(r["info"].get("parse_failed")) for r in records) / len(records),
    }
    first, final = records[0].get("privileged", {}), last.get("privileged", {})
    if "willingness_after" in final and "willingness_before" in first:
        out["final_willingness"] = float(final["willingness_after"])
        out["willingness_gain"] = float(final["willingness_after"]) - float(first["willingness_before"])
    return out


def dialogue_from_records(records: list[dict[str, Any]]) -> Dialogue:
    """Rebuild one episode's :class:`Dialogue` from its run records (to branch it with ``regenerate``)."""
    recs = sorted(records, key=lambda r: r["round"])
    first = recs[0]
    persona = PersuadeePersona.from_dict(first["privileged"]["persona"])
    exchanges = tuple(
        Exchange(r["action"], r["info"]["user_reply"], PersuadeeState.from_dict(r["privileged"]["state"]),
                 int(r["privileged"]["seed"]),
                 {k: r["privileged"][k] for k in ("strategies", "answered", "asked") if k in r["privileged"]})
        for r in recs
    )
    budget = int(first["observation"]["turns_left"])
    return Dialogue(persona, first["observation"]["user"], initial_state(persona), exchanges, budget)


def _persuader_prompt(observation: dict[str, Any]) -> list[dict[str, str]]:
    from persona_lab.agents.persuasion_agents import persuader_messages

    return [m.to_dict() for m in persuader_messages(observation)]


EPISODE_METRICS[ENV_ID] = persuasion_metrics
RECORD_PROMPTS["persuasion"] = _persuader_prompt
