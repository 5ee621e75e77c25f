"""Episode metrics and the recorded training prompt of ``persona_lab/FollowUp-v0``.

Registered into the runner's tables on import (runner.py imports this module at its bottom).
"""

from __future__ import annotations

from typing import Any

from persona_lab.eval.runner import EPISODE_METRICS, RECORD_PROMPTS

ENV_ID = "persona_lab/FollowUp-v0"


def followup_episode_metrics(records: list[dict[str, Any]]) -> dict[str, float]:
    """One episode's metrics.

    - ``positivity_rate``: share of follow-ups classified positive.
    - ``mean_reward``: mean step reward (+-1 in ``followup`` mode, FLR in ``flr`` mode).
    - ``mean_flr``: mean FLR over the turns where it was computed (absent otherwise).
    - ``goal_rate``: 1 when the user reached their goal, else 0.
    - ``turns_to_goal``: answers it took to reach the goal (absent when it was not reached).
    - ``preference_satisfaction``: mean share of the user's catalog preferences the answers met.
    - ``content_pass_rate``: share of answers passing the four content checks (understanding,
      relevance, correctness, informativeness).
    """
    n = len(records)
    infos = [r["info"] for r in records]
    out = {
        "positivity_rate": sum(i["followup_class"] == "positive" for i in infos) / n,
        "mean_reward": sum(float(r["reward"]) for r in records) / n,
        "goal_rate": float(any(i.get("goal_met") for i in infos)),
        "preference_satisfaction": sum(i["preference_satisfaction"] for i in infos) / n,
        "content_pass_rate": sum(
            all(i["checks"][d] for d in ("understanding", "relevance", "correctness", "informativeness"))
            for i in infos
        ) / n,
    }
    flrs = [float(i["flr"]) for i in infos if i.get("flr") is not None]
    if flrs:
        out["mean_flr"] = sum(flrs) / len(flrs)
    met = [k for k, i in enumerate(infos) if i.get("goal_met")]
    if met:
        out["turns_to_goal"] = float(met[0] + 1)
    return out


def followup_prompt(observation: dict[str, Any]) -> list[dict[str, str]]:
    """The chat the agent answered (system prompt plus the conversation), for training sets."""
    from persona_lab.agents.followup_agents import answer_messages

    return [m.to_dict() for m in answer_messages(observation)]


EPISODE_METRICS[ENV_ID] = followup_episode_metrics
RECORD_PROMPTS["followup"] = followup_prompt
