"""``persona_lab/PrefEval-v0``: one PrefEval test per episode.

The observation is the long conversation (system prompt, the preference block, N filler pairs, the
question with its length instruction) rendered as text; ``info["messages"]`` holds the same
conversation as role/content messages for agents that call a chat model. The action is the
answer. The reward is 1.0 when the judge chosen at ``make`` finds the preference followed (not
violated and helpful), else 0.0; the episode terminates after that one step.

The explicit form's block normally contains the tested model's own reply to the stated preference;
an env cannot know the agent's reply in advance, so it uses a fixed acknowledgement
(``explicit_reply``), as PrefEval runs with a pre-generated reply do.

The true preference and the verifiable checks travel in ``info["privileged"]`` for evaluators (and
the oracle); agents must not read them. In the env contract the judge plays the simulated user:
``user="scripted"`` is the programmatic judge, ``user="llm"`` an LLM judge on ``backend``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gymnasium.error import ResetNeeded

from persona_lab.core.errors import ConfigError
from persona_lab.core.records import TransitionRecord
from persona_lab.envs.base import PersonaEnv
from persona_lab.envs.spaces import text_space
from persona_lab.models.base import ChatModel, GenerationParams
from persona_lab.simulators.prefeval.context import (
    DEFAULT_SYSTEM_PROMPT,
    ContextConfig,
    build_context,
    prompt_sha,
    render_conversation,
)
from persona_lab.simulators.prefeval.data import (
    FORMS,
    Filler,
    PrefEvalItem,
    default_filler_path,
    load_filler,
    load_prefeval,
    normalize_form,
)
from persona_lab.simulators.prefeval.judges import LLMJudge, ProgrammaticJudge

DEFAULT_EXPLICIT_REPLY = "Thank you for telling me. I will keep that in mind."
MAX_OBSERVATION_CHARS = 2_000_000
MAX_ACTION_CHARS = 20_000


class PrefEvalEnv(PersonaEnv[str]):
    """One PrefEval generation test per episode.

    Args:
        judge: ``"programmatic"`` (items with verifiable checks only, no model), a judge backend spec
            (opened lazily, with the response cache), or a :class:`ChatModel` (after unpickling,
            re-opened from its spec). Default: programmatic for ``user="scripted"``, else ``backend``.
        data_dir: dataset in PrefEval's layout (default: built-in).
        filler: filler file (default: the dataset's ``filler.json`` or the built-in one).
        forms: forms an episode may use (drawn with ``np_random``).
        turns: filler pairs N an episode may use (drawn with ``np_random``); paper turns = N + 2.
        topics: only these topics (default all).
        explicit_reply: the assistant turn after an explicitly stated preference.
        system_prompt / answer_words: as in the PrefEval runner.
        user: ``"scripted"`` (the programmatic judge) or ``"llm"`` (an LLM judge on ``backend``).
        backend: the judge's ChatModel or spec when ``user="llm"``.
        rounds: must be 1 (an episode is one test).
        render_mode: ``None`` or ``"ansi"``.
    """

    task = "prefeval"
    feedback_keys: tuple[str, ...] = ("judge_status",)
    default_rounds = 1
    model_kwargs = ("judge",)

    def __init__(
        self,
        judge: str | ChatModel | None = None,
        data_dir: str | Path | None = None,
        filler: str | Path | None = None,
        forms: Sequence[str] = FORMS,
        turns: int | Sequence[int] = (0, 3, 8),
        topics: Sequence[str] | None = None,
        explicit_reply: str = DEFAULT_EXPLICIT_REPLY,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        answer_words: int = 300,
        user: str = "scripted",
        backend: ChatModel | str | None = None,
        rounds: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(user=user, backend=backend, rounds=rounds, render_mode=render_mode)
        if self.rounds != 1:
            raise ConfigError(f"PrefEval-v0 episodes are one test each; rounds={self.rounds} is not possible",
                              hint="drop --rounds (use --episodes for more tests)")
        if judge is None:
            if user == "llm" and backend is None:
                raise ConfigError("an llm judge needs a backend", hint="pass --backend hf:<model> or --env-arg judge=<spec>")
            judge = "programmatic" if user != "llm" else backend
        assert judge is not None
        self._args = {
            "judge": judge if isinstance(judge, str) else judge.spec,
            "data_dir": None if data_dir is None else str(data_dir),
            "filler": None if filler is None else str(filler),
            "forms": tuple(normalize_form(f) for f in forms),
            "turns": (turns,) if isinstance(turns, int) else tuple(int(n) for n in turns),
            "topics": None if topics is None else tuple(topics),
            "explicit_reply": explicit_reply,
            "system_prompt": system_prompt,
            "answer_words": answer_words,
        }
        self._judge_model: ChatModel | None = None if isinstance(judge, str) else judge
        self._setup()

    def _setup(self) -> None:
        a = self._args
        if not a["forms"] or not a["turns"] or any(n < 0 for n in a["turns"]):
            raise ConfigError("PrefEval-v0 needs at least one form and turn counts >= 0")
        self.programmatic = a["judge"] == "programmatic"
        ds = load_prefeval(a["data_dir"])
        items = ds.select(topics=a["topics"], verifiable_only=self.programmatic)
        self.programmatic_judge = ProgrammaticJudge()
        if self.programmatic:
            items = [it for it in items if self.programmatic_judge.applies(it.verifiable)]
        self.items: list[PrefEvalItem] = sorted((it for it in items if set(it.forms()) & set(a["forms"])), key=lambda it: (it.topic, it.row))
        if not self.items:
            why = "with verifiable checks " if self.programmatic else ""
            raise ConfigError(
                f"no item {why}in {ds.root} has any of the forms {list(a['forms'])}",
                hint="pass judge=<backend spec> to judge any item with an LLM" if self.programmatic else None,
            )
        self.filler: Filler = load_filler(a["filler"] or default_filler_path(a["data_dir"]))
        if max(a["turns"]) > len(self.filler.pairs):
            raise ConfigError(f"the filler has {len(self.filler.pairs)} turn pairs; turns={max(a['turns'])} needs more")
        self.context_config = ContextConfig(system_prompt=a["system_prompt"], answer_words=a["answer_words"])
        corpus: list[str] = []  # every text an observation can contain, for the charset
        for it in self.items:
            corpus += [it.question, it.preference, a["explicit_reply"]]
            for f in it.forms():
                ctx = build_context(it, f, 0, self.filler, config=self.context_config, explicit_reply=a["explicit_reply"])
                corpus += [m.content for m in ctx.messages()]
        corpus += [c for pair in self.filler.pairs for c in pair]
        self.observation_space = text_space(MAX_OBSERVATION_CHARS, extra=corpus)
        self.action_space = text_space(MAX_ACTION_CHARS)
        self._episode: dict[str, Any] | None = None
        self._done = False
        self._last_action: str | None = None

    # --- pickling: keep the arguments, rebuild the rest (models reload lazily) ----------------
    def __getstate__(self) -> dict[str, Any]:
        return {"args": self._args, "render_mode": self.render_mode, "episode": self._episode, "done": self._done,
                "np_random": self._np_random, "rounds": self.rounds, "user_spec": self._user_spec}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._args, self.render_mode = state["args"], state["render_mode"]
        self.rounds, self._user_spec, self._backend, self._user = state["rounds"], state["user_spec"], None, None
        self._judge_model = None
        self._np_random, self._np_random_seed = state["np_random"], None
        self._setup()
        self._episode, self._done = state["episode"], state["done"]

    # --- gymnasium API --------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Draw an item, a form it has and a turn count (``options`` may fix ``item_id``, ``form``, ``turns``)."""
        super().reset(seed=seed)
        options = options or {}
        a = self._args
        if "item_id" in options:
            match = [it for it in self.items if it.item_id == options["item_id"]]
            if not match:
                raise ConfigError(f"unknown item_id {options['item_id']!r} in this env's items")
            item = match[0]
        else:
            item = self.items[int(self.np_random.integers(len(self.items)))]
        forms = [f for f in a["forms"] if item.form(f) is not None]
        form = normalize_form(options["form"]) if "form" in options else forms[int(self.np_random.integers(len(forms)))]
        turns = int(options["turns"]) if "turns" in options else int(a["turns"][int(self.np_random.integers(len(a["turns"])))])
        ctx = build_context(item, form, turns, self.filler, config=self.context_config, explicit_reply=a["explicit_reply"])
        messages = [m.to_dict() for m in ctx.messages()]
        obs = render_conversation(messages)
        if len(obs) > MAX_OBSERVATION_CHARS:
            raise ConfigError(f"the conversation has {len(obs)} characters, more than the observation space's {MAX_OBSERVATION_CHARS}")
        self._episode = {"item_id": item.item_id, "form": form, "turns": turns, "obs": obs, "sha": prompt_sha(ctx.messages())}
        self._done = False
        self._last_action = None
        return obs, self.reset_info(self._truth(item, form), **self._public(item, form, turns), messages=messages)

    def _item(self) -> PrefEvalItem:
        assert self._episode is not None
        return next(it for it in self.items if it.item_id == self._episode["item_id"])

    def _public(self, item: PrefEvalItem, form: str, turns: int) -> dict[str, Any]:
        assert self._episode is not None
        return {"item_id": item.item_id, "form": form, "turns": turns, "paper_turns": turns + 2,
                "prompt_sha": self._episode["sha"]}

    @staticmethod
    def _truth(item: PrefEvalItem, form: str) -> dict[str, Any]:
        return {"user_id": item.item_id, "preference": item.preference_for(form),
                "verifiable": item.verifiable.to_dict() if item.verifiable else None}

    # --- contract hooks ---------------------------------------------------------------------------
    def make_user(self, kind: Any, model: ChatModel | None) -> ProgrammaticJudge | LLMJudge:
        """The judge plays the simulated user: programmatic, or an LLM judge opened on first use."""
        if self.programmatic:
            return self.programmatic_judge
        if self._judge_model is None:
            from persona_lab.models import resolve_chat_model

            self._judge_model = resolve_chat_model(self._args["judge"])
        assert self._judge_model is not None
        return LLMJudge(self._judge_model, GenerationParams(max_new_tokens=200))

    @classmethod
    def episode_metrics(cls, records: Sequence[TransitionRecord]) -> dict[str, float]:
        """``episode/followed``: 1 when the judge found the preference followed (PrefEval's accuracy);
        ``episode/judged``: 0 when the judge could not judge the answer (counted, never as followed)."""
        last = records[-1]
        return {"episode/followed": float(last.reward),
                "episode/judged": float(last.info.get("judge_status") == "judged")}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Judge the answer; reward 1.0 if the preference was followed. The episode then ends."""
        if self._episode is None or self._done:
            raise ResetNeeded("the PrefEval episode is over (one step per episode); call reset()")
        if not isinstance(action, str):
            raise TypeError(f"the action must be the answer text (str), got {type(action).__name__}")
        item, ep = self._item(), self._episode
        preference = item.preference_for(ep["form"])
        judge = self.user
        verdict = judge.judge(item.verifiable, action, item.question) if self.programmatic else judge.judge(preference, item.question, action)
        self._done = True
        self._last_action = action
        info = self.make_info(round=0, doc_id=item.item_id, action=action, truth=self._truth(item, ep["form"]),
                              **self._public(item, ep["form"], ep["turns"]), verdict=verdict.to_dict(),
                              judge_status=verdict.status)
        return ep["obs"], 1.0 if verdict.followed else 0.0, True, False, info

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self._episode is None:
            return None
        text = self._episode["obs"]
        if self._last_action is not None:
            text += f"\n\n[assistant]\n{self._last_action}"
        return text
