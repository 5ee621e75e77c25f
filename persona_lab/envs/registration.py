"""Every persona-lab environment in one registration block (string entry points: nothing heavy is
imported until ``gymnasium.make``). Bump ``-vN`` when reward, prompts, persona sampling or stop logic change."""

from __future__ import annotations

import gymnasium

# id -> entry point. Variants are ``make`` kwargs, not new ids.
_ENTRY_POINTS: dict[str, str] = {
    "persona_lab/EditSummarization-v0": "persona_lab.envs.edit_env:EditSummarizationEnv",
    "persona_lab/EditEmail-v0": "persona_lab.envs.edit_env:EditEmailEnv",
    "persona_lab/PrefEval-v0": "persona_lab.envs.prefeval_env:PrefEvalEnv",
    "persona_lab/FollowUp-v0": "persona_lab.envs.followup_env:FollowUpEnv",
    "persona_lab/Marketplace-v0": "persona_lab.envs.marketplace_env:MarketplaceEnv",
    "persona_lab/Persuasion-v0": "persona_lab.envs.persuasion_env:PersuasionEnv",
    "persona_lab/FewShotPreference-v0": "persona_lab.envs.fewshot_env:FewShotPreferenceEnv",
}

ENV_IDS: tuple[str, ...] = tuple(_ENTRY_POINTS)


def register_envs() -> None:
    for env_id, entry_point in _ENTRY_POINTS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry_point)
