"""Agents behind the :class:`Agent` protocol, registered by (name, task) in :data:`AGENTS`."""

from persona_lab.agents import baselines as _baselines  # noqa: F401  (registers agents)
from persona_lab.agents import followup_agents as _followup_agents  # noqa: F401
from persona_lab.agents import fspo_agents as _fspo_agents  # noqa: F401
from persona_lab.agents import ilql_agent as _ilql_agent  # noqa: F401
from persona_lab.agents import learners as _learners  # noqa: F401
from persona_lab.agents import marketplace_agents as _marketplace_agents  # noqa: F401
from persona_lab.agents import persuasion_agents as _persuasion_agents  # noqa: F401
from persona_lab.agents import prefeval_agents as _prefeval_agents  # noqa: F401
from persona_lab.agents.base import AGENTS, Agent, BaseAgent, Transition, TruthAware, create_agent

__all__ = ["AGENTS", "Agent", "BaseAgent", "Transition", "TruthAware", "create_agent"]
