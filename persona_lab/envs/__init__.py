"""Gymnasium environments, registered as ``persona_lab/<Name>-v<N>`` when persona_lab is imported."""

from persona_lab.envs.registration import ENV_IDS, register_envs

register_envs()

__all__ = ["ENV_IDS"]
