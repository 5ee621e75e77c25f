"""Running PrefEval-style tests: concurrent, cached, resumable, one JSONL record per test.

A *test* is one (item, form, turns, method, task). The runner lays out its conversation, checks it
fits the backend's context window (a test that does not fit is recorded as ``skipped_context``,
never truncated), asks the model through the chosen method, judges the answer and appends one
record to ``items.jsonl`` (a single atomic write). Rerunning with ``resume=True`` skips every key
already recorded as ``ok`` or ``skipped_context``; failed tests are retried. The response cache
makes a rerun of the same requests free.

Record fields (``items.jsonl``, one JSON object a line; the last record of a key wins):

- ``key``: ``"<topic>/<row>|<form>|<turns>|<method>|<task>"``, the resume key.
- ``item_id``, ``topic``, ``row``, ``form`` (explicit, implicit-choice, implicit-persona),
  ``turns`` (N filler pairs), ``paper_turns`` (N + 2), ``method``, ``task`` (generation,
  classification), ``backend`` (spec), ``status`` (``ok``, ``skipped_context`` or ``error``),
  ``error`` (message, for ``error``), ``protocol`` (``persona-lab`` or ``paper``), ``control``
  (``question-only``: form ``question-only``, the question with no preference and no filler;
  ``preference-only``: 0 filler pairs; else null).
- ``preference`` (this form's preference text), ``question``, ``verifiable`` (dict or null).
- ``context``: ``system`` (system prompt, "" for none), ``preference_block`` (the role/content
  messages revealing the preference; for explicit, the user turn and the model's own reply),
  ``filler_file``, ``filler_sha`` and ``filler_pairs`` (= turns): the first ``filler_pairs`` pairs
  of that filler follow the block. :func:`request_messages` rebuilds the exact messages sent.
- ``final_user``: the last user turn in parts: ``prefix`` and ``suffix`` are the method's added
  text, ``question`` the original question, ``instruction`` the length instruction (classification:
  empty, with the options in ``suffix``). The turn's text is the non-empty parts of prefix,
  "question instruction" and suffix joined by blank lines (:class:`FinalUserMessage`).
- ``method_info``: what the method recorded (RAG: the retrieved message indices and scores).
- ``prompt_sha``: hash of the first request's messages; ``prompt_tokens`` (backend tokenizer),
  ``context_window``, ``reserve_tokens`` (what the method needs on top of the prompt).
- ``response``: the final answer. ``steps``: turns after the first request (self-critic: draft,
  critique request, critique, revision request), each ``{role, content, kind}``; the answer is
  the reply to the conversation extended by them.
- ``usage``: ``calls``, ``cache_hits``, ``prompt_tokens``, ``completion_tokens``, ``latency_s``.
- generation only: ``judge`` (the verdict used for accuracy: ``judge`` llm/programmatic/none,
  ``status`` judged/unjudged/no_judge, ``followed``, ``acknowledged``, ``violated``,
  ``hallucinated``, ``helpful``, ``errors``, ``detail`` with the raw judge answers), ``judges``
  (every verdict made: ``llm`` and/or ``programmatic``) and ``followed`` (copy of the primary).
- classification only: ``options`` (as shown, A-D), ``order`` (file index of each shown option),
  ``correct`` (letter), ``answer`` (parsed letter or null), ``parsed``, ``is_correct``; under the
  paper protocol also ``prefill`` (the original's pre-filled ``<choice>``, not sent) and
  ``answer_lenient`` (persona-lab's parser on the same reply; ``answer`` uses the original rule).
- ``wall_s``, ``time``.

To build SFT data from preference-following answers: keep ``task == "generation"`` and
``followed is True``; the prompt is ``request_messages(record, filler)`` (or the same with the
method text dropped: ``request_messages(record, filler, with_method_text=False)``), the target
``response``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from persona_lab.core.errors import BackendError, ConfigError, PersonaLabError
from persona_lab.core.io import append_jsonl, atomic_write_json, read_jsonl, repair_jsonl
from persona_lab.core.provenance import environment_info
from persona_lab.eval.prefeval.methods import METHODS, TASKS, MethodOptions, PrefEvalMethod, create_method
from persona_lab.models.base import ChatModel, ChatRequest, GenerationParams, UsageMeter
from persona_lab.models.cache import CachedChatModel
from persona_lab.simulators.prefeval.classification import (
    classification_question,
    parse_choice,
    shuffle_options,
)
from persona_lab.simulators.prefeval.context import (  # noqa: F401  (request_messages: re-exported)
    DEFAULT_SYSTEM_PROMPT,
    DEFAULT_TURNS,
    QUESTION_ONLY,
    ContextConfig,
    FinalUserMessage,
    build_context,
    context_window,
    count_tokens,
    explicit_reply_request,
    prompt_sha,
    request_messages,
)
from persona_lab.simulators.prefeval.data import (
    FORMS,
    Filler,
    PrefEvalDataset,
    PrefEvalItem,
    default_filler_path,
    filler_source_note,
    load_filler,
    load_prefeval,
    normalize_form,
)
from persona_lab.simulators.prefeval.judges import NO_JUDGE, GenerationVerdict, LLMJudge, ProgrammaticJudge

if TYPE_CHECKING:
    from persona_lab.eval.prefeval.paper import PaperTexts

log = logging.getLogger(__name__)

ITEMS_FILE = "items.jsonl"
PROTOCOLS: tuple[str, ...] = ("persona-lab", "paper")
TASK_VERSION = "prefeval-v0"
DONE_STATUSES = ("ok", "skipped_context")


@dataclass(frozen=True)
class PrefEvalConfig:
    """One PrefEval run. Fields with ``identity`` metadata change recorded answers or verdicts, so they
    must match to resume a run directory; the others (forms, turns, limit...) may grow a run."""

    backend: str = field(metadata={"help": "Model under test (spec string).", "identity": True})
    judge: str | None = field(default=None, metadata={"help": "LLM judge spec; None = programmatic judge only.", "identity": True})
    data_dir: str | None = field(default=None, metadata={"help": "Dataset directory (default: built-in).", "identity": True})
    filler: str | None = field(default=None, metadata={"help": "Filler file (default: the dataset's or built-in).", "identity": True})
    forms: tuple[str, ...] = field(default=FORMS, metadata={"help": "Preference forms to test."})
    turns: tuple[int, ...] = field(default=DEFAULT_TURNS, metadata={"help": "Filler pairs N per test (paper turns = N + 2)."})
    methods: tuple[str, ...] = field(default=("zero-shot",), metadata={"help": "Registered prefeval methods."})
    tasks: tuple[str, ...] = field(default=TASKS, metadata={"help": "generation and/or classification."})
    topics: tuple[str, ...] | None = field(default=None, metadata={"help": "Only these topics (default all)."})
    limit: int | None = field(default=None, metadata={"help": "At most this many items, spread over topics."})
    seed: int = field(default=0, metadata={"help": "Seed of the classification option shuffle.", "identity": True})
    system_prompt: str = field(default=DEFAULT_SYSTEM_PROMPT, metadata={"help": "System prompt.", "identity": True})
    answer_words: int = field(default=300, metadata={"help": "Word cap in the question's length instruction.", "identity": True})
    max_new_tokens: int = field(default=512, metadata={"help": "Answer budget (generation).", "identity": True})
    classification_max_new_tokens: int = field(default=32, metadata={"help": "Answer budget (classification).", "identity": True})
    reply_max_new_tokens: int = field(default=256, metadata={"help": "Budget of the model's reply to an explicit preference.", "identity": True})
    judge_max_new_tokens: int = field(default=200, metadata={"help": "Budget of each judge answer.", "identity": True})
    rag_k: int = field(default=5, metadata={"help": "Messages retrieved by the rag method.", "identity": True})
    rag_encoder: str = field(default="minilm", metadata={"help": "Encoder of the rag method.", "identity": True})
    protocol: str = field(
        default="persona-lab",
        metadata={"help": "persona-lab (own texts) or paper (the original's texts and budgets, read from --protocol-dir).",
                  "identity": True},
    )
    protocol_dir: str | None = field(default=None, metadata={"help": "PrefEval checkout the paper protocol reads.", "identity": True})
    controls: bool = field(
        default=True,
        metadata={"help": "Add the question-only (no context) control per item and the preference-only (0 filler pairs) row."},
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "forms", tuple(normalize_form(f) for f in self.forms))
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {self.protocol!r}", hint=f"protocols are: {', '.join(PROTOCOLS)}")
        if self.protocol == "paper" and not self.protocol_dir:
            raise ConfigError("--protocol paper needs --protocol-dir <PrefEval checkout>",
                              hint="git clone https://github.com/amazon-science/PrefEval and pass its folder")
        for name in self.methods:
            METHODS.entry(name)  # did-you-mean on a typo
        bad = [t for t in self.tasks if t not in TASKS]
        if bad:
            raise ConfigError(f"unknown task(s) {bad}", hint=f"tasks are: {', '.join(TASKS)}")
        if any(n < 0 for n in self.turns):
            raise ConfigError(f"turns must be >= 0 filler pairs, got {list(self.turns)}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be >= 1, got {self.limit}")
        if not (self.forms and self.turns and self.methods and self.tasks):
            raise ConfigError("forms, turns, methods and tasks must each name at least one value")

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    def identity(self) -> dict[str, Any]:
        """The settings that change answers or verdicts of already recorded tests."""
        keys = [f for f, v in type(self).__dataclass_fields__.items() if v.metadata.get("identity")]
        return {k: self.to_dict()[k] for k in keys}

    @property
    def context(self) -> ContextConfig:
        return ContextConfig(system_prompt=self.system_prompt, answer_words=self.answer_words)

    @property
    def method_options(self) -> MethodOptions:
        return MethodOptions(rag_k=self.rag_k, rag_encoder=self.rag_encoder, answer_words=self.answer_words)


@dataclass(frozen=True)
class PrefEvalCase:
    """One (item, form, turns, method, task)."""

    item: PrefEvalItem
    form: str
    turns: int
    method: str
    task: str

    @property
    def key(self) -> str:
        return case_key(self.item.item_id, self.form, self.turns, self.method, self.task)


def case_key(item_id: str, form: str, turns: int, method: str, task: str) -> str:
    return f"{item_id}|{form}|{turns}|{method}|{task}"


def plan_tests(items: Iterable[PrefEvalItem], config: PrefEvalConfig) -> list[PrefEvalCase]:
    """Every applicable test, shortest contexts first (so a partial run covers them, and concurrent
    requests of similar length batch well). Combinations a method or item does not support are
    left out: classification needs the item's options; methods name the tasks they support."""
    items = list(items)
    if config.protocol == "paper":
        from persona_lab.eval.prefeval.paper import paper_method_tasks

        tasks_of = {name: paper_method_tasks(name) for name in config.methods}
    else:
        tasks_of = {name: METHODS.get(name)(config.method_options).tasks for name in config.methods}
    out = []
    turns = set(config.turns) | ({0} if config.controls else set())
    if config.controls:
        for task in config.tasks:
            for mname, m_tasks in tasks_of.items():
                if task in m_tasks:
                    out += [PrefEvalCase(it, QUESTION_ONLY, 0, mname, task) for it in items
                            if task == "generation" or it.mcq_options is not None]
    for n in sorted(turns):
        for task in config.tasks:
            for mname, m_tasks in tasks_of.items():
                if task not in m_tasks:
                    continue
                for form in config.forms:
                    for it in items:
                        if it.form(form) is None or (task == "classification" and it.mcq_options is None):
                            continue
                        out.append(PrefEvalCase(it, form, n, mname, task))
    return out


def _usage_dict(completions: Sequence[Any]) -> dict[str, Any]:
    return {
        "calls": len(completions),
        "cache_hits": sum(c.usage.cache_hit for c in completions),
        "prompt_tokens": sum(c.usage.prompt_tokens for c in completions),
        "completion_tokens": sum(c.usage.completion_tokens for c in completions),
        "latency_s": round(sum(c.usage.latency_s for c in completions), 4),
    }


def _as_cached(model: ChatModel, meter: UsageMeter | None = None) -> CachedChatModel:
    if isinstance(model, CachedChatModel):
        return model
    return CachedChatModel(model, None, meter)


class PrefEvalRunner:
    """Runs a :class:`PrefEvalConfig` into ``out_dir``.

    Args:
        config: the run.
        model: the model under test (a :class:`CachedChatModel` from ``open_chat_model`` gives the
            response cache, the usage meter, the tokenizer and the context window).
        out_dir: the run directory (``config.json``, ``items.jsonl``, ``summary.json``, ``report.md``,
            ``accuracy_vs_context.png``).
        judge_model: the LLM judge, or None for the programmatic judge only.
        dataset / filler: already loaded data (default: loaded from ``config``).
        concurrency: tests run in parallel threads (the hf backend batches their requests).
        on_test: called with each finished record (progress display).
    """

    def __init__(
        self,
        config: PrefEvalConfig,
        model: ChatModel,
        out_dir: str | Path,
        *,
        judge_model: ChatModel | None = None,
        dataset: PrefEvalDataset | None = None,
        filler: Filler | None = None,
        concurrency: int = 1,
        on_test: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"--concurrency must be >= 1, got {concurrency}")
        if config.judge is not None and judge_model is None:
            raise ConfigError("config names a judge but no judge model was given")
        self.paper: PaperTexts | None = None
        if config.protocol == "paper":
            from persona_lab.eval.prefeval.paper import paper_config

            self.paper, config = paper_config(config)
        self.config = config
        self.model = _as_cached(model)
        self.judge_model = _as_cached(judge_model) if judge_model is not None else None
        self.out = Path(out_dir)
        self.concurrency = concurrency
        self.on_test = on_test or (lambda _r: None)
        self.dataset = dataset if dataset is not None else load_prefeval(config.data_dir)
        self.filler = filler if filler is not None else load_filler(config.filler or default_filler_path(config.data_dir))
        self.filler_source = (
            "passed in code" if filler is not None else filler_source_note(self.filler.path, config.data_dir, bool(config.filler))
        )
        self.methods: dict[str, PrefEvalMethod] = {n: create_method(n, config.method_options) for n in config.methods}
        self.llm_judge: Any = (
            LLMJudge(self.judge_model, GenerationParams(max_new_tokens=config.judge_max_new_tokens))
            if self.judge_model is not None
            else None
        )
        if self.paper is not None:
            from persona_lab.eval.prefeval.paper import PaperJudge, PaperMethod

            self.methods = {n: PaperMethod(n, self.paper) for n in config.methods}  # type: ignore[misc]
            self.llm_judge = PaperJudge(self.judge_model, self.paper) if self.judge_model is not None else None
        self.programmatic = ProgrammaticJudge()
        self._replies: dict[tuple[str, int], str] = {}
        self._reply_locks: dict[tuple[str, int], threading.Lock] = {}
        self._filler_info: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self.items_path = self.out / ITEMS_FILE
        need = max(config.turns)
        if need > len(self.filler.pairs):
            raise ConfigError(
                f"the filler {self.filler.path} has {len(self.filler.pairs)} turn pairs; --turns {need} needs {need}",
                hint="lower --turns or pass a longer --filler file",
            )

    # --- run -----------------------------------------------------------------------------------
    def run(self, *, resume: bool = False) -> dict[str, Any]:
        """Run every planned test not yet recorded; write the summary, report and plot.

        Returns:
            The summary (also written to ``summary.json``).
        """
        from persona_lab.eval.prefeval.report import write_outputs

        self._prepare_dir(resume)
        self._ensure_context_window()
        done = {r["key"] for r in self.records() if r.get("status") in DONE_STATUSES}
        items = self.dataset.select(topics=self.config.topics, limit=self.config.limit)
        tests = [t for t in plan_tests(items, self.config) if t.key not in done]
        start = time.perf_counter()
        failed: dict[str, int] = {}
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = [pool.submit(self._run_test, t) for t in tests]
            try:
                for fut in as_completed(futures):
                    rec = fut.result()
                    append_jsonl(self.items_path, rec)
                    if rec.get("status") == "error":
                        failed[rec["error_kind"]] = failed.get(rec["error_kind"], 0) + 1
                    self.on_test(rec)
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
        wall = time.perf_counter() - start
        run_info = {
            "data_dir": str(self.dataset.root),
            "protocol": self.protocol_info(),
            "filler": self.filler_info(),
            "wall_s": round(wall, 3),
            "tests_run": len(tests),
            "tests_failed": sum(failed.values()),
            "tests_failed_by_kind": failed,
            "tests_already_recorded": len(done),
            "tests_per_s": round(len(tests) / wall, 3) if wall > 0 and tests else None,
            "usage": {
                "backend": self.model.meter.snapshot(),
                "judge": self.judge_model.meter.snapshot() if self.judge_model is not None else None,
            },
            "dataset_problems": {"errors": len(self.dataset.errors), "warnings": len(self.dataset.warnings)},
        }
        return write_outputs(self.out, list(self.records()), self.config, run_info)

    def protocol_info(self) -> dict[str, Any]:
        """The protocol, and for ``paper`` the checkout and the sha256 of every file read from it."""
        if self.paper is None:
            return {"name": "persona-lab"}
        return {"name": "paper", **self.paper.describe()}

    def filler_info(self) -> dict[str, Any]:
        """The filler (path, format, sha256, pairs) and the prompt tokens of its first N pairs for each
        N of the run, counted with the tested model's tokenizer (``tokenizer``: ``backend``) when it
        has one, else estimated (``approx``)."""
        if self._filler_info is None:
            turns = sorted({n for n in self.config.turns if n > 0})
            tokens = {str(n): count_tokens(self.model, self.filler.messages(n)) for n in turns}
            per_pair = {n: round(tokens[n] / int(n), 1) for n in tokens}
            has_tok = getattr(self.model.backend, "count_tokens", None) is not None
            self._filler_info = {
                **self.filler.describe(),
                "source": self.filler_source,
                "tokens_by_pairs": tokens,
                "tokens_per_pair": per_pair,
                "tokenizer": "backend" if has_tok else "approx",
            }
        return self._filler_info

    def _ensure_context_window(self) -> None:
        """Lazy backends (hf) may learn their window only when the model loads; load it up front so
        the first tests are checked against the window too."""
        if context_window(self.model) is None:
            load = getattr(getattr(self.model, "backend", None), "load", None)
            if callable(load):
                load()

    def records(self) -> list[dict[str, Any]]:
        """The recorded tests, last record of each key."""
        latest: dict[str, dict[str, Any]] = {}
        for r in read_jsonl(self.items_path):
            latest[r["key"]] = r
        return list(latest.values())

    def _prepare_dir(self, resume: bool) -> None:
        cfg_path = self.out / "config.json"
        if cfg_path.exists() or self.items_path.exists():
            if not resume:
                raise ConfigError(
                    f"run directory {self.out} already holds a PrefEval run",
                    hint="pass --resume to continue it (recorded tests are skipped), or choose a new --out",
                )
            stored = json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.exists() else {}
            old = stored.get("identity")
            if old is not None and old != self.config.identity():
                diff = sorted(k for k in old if old.get(k) != self.config.identity().get(k))
                raise ConfigError(
                    f"run directory {self.out} holds a run with different settings ({', '.join(diff)})",
                    hint="resume with the same backend, judge, data and prompt settings, or choose a new --out",
                )
            cut = repair_jsonl(self.items_path)
            if cut:
                log.warning("removed a torn last line (%d bytes) from %s", cut, self.items_path)
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            cfg_path,
            {
                "task": TASK_VERSION,
                "config": self.config.to_dict(),
                "identity": self.config.identity(),
                "backend": self.model.spec,
                "judge": self.judge_model.spec if self.judge_model is not None else None,
                "data_dir": str(self.dataset.root),
                "filler": self.filler_info(),
                "protocol": self.protocol_info(),
                "methods": {n: METHODS.entry(n).help for n in self.config.methods},
                "context_window": context_window(self.model),
                **environment_info(),
            },
        )

    # --- one test ------------------------------------------------------------------------------
    def explicit_reply(self, item: PrefEvalItem, task: str = "generation") -> str:
        """The model's own reply to the stated preference: generated once per item and budget (and
        cached). The paper protocol generates it with the task's budget, as the original does (so 5
        tokens for classification)."""
        budget = self.config.reply_max_new_tokens
        if self.paper is not None and task == "classification":
            budget = self.config.classification_max_new_tokens
        key = (item.item_id, budget)
        with self._lock:
            if key in self._replies:
                return self._replies[key]
            lock = self._reply_locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._replies:
                params = GenerationParams(max_new_tokens=budget)
                (c,) = self.model.generate([ChatRequest(explicit_reply_request(item, self.config.context), params)])
                with self._lock:
                    self._replies[key] = c.text
        return self._replies[key]

    def _run_test(self, t: PrefEvalCase) -> dict[str, Any]:
        start = time.perf_counter()
        it = t.item
        rec: dict[str, Any] = {
            "key": t.key,
            "item_id": it.item_id,
            "topic": it.topic,
            "row": it.row,
            "form": t.form,
            "turns": t.turns,
            "paper_turns": t.turns + 2,
            "method": t.method,
            "task": t.task,
            "control": QUESTION_ONLY if t.form == QUESTION_ONLY else ("preference-only" if t.turns == 0 else None),
            "protocol": self.config.protocol,
            "backend": self.model.spec,
            "preference": it.preference_for(t.form),
            "question": it.question,
            "verifiable": it.verifiable.to_dict() if it.verifiable else None,
        }
        try:
            self._fill(rec, t)
        except PersonaLabError as exc:
            log.warning("test %s failed: %s", t.key, exc)
            rec["status"] = "error"
            rec["error"] = str(exc)
            # "backend": the model kept failing (exit 3); "input": bad flags or data (exit 2)
            rec["error_kind"] = "backend" if isinstance(exc, BackendError) else "input"
        rec["wall_s"] = round(time.perf_counter() - start, 4)
        rec["time"] = time.time()
        return rec

    def _fill(self, rec: dict[str, Any], t: PrefEvalCase) -> None:
        it, cfg = t.item, self.config
        reply = self.explicit_reply(it, t.task) if t.form == "explicit" else None
        question: FinalUserMessage | None = None
        shuffled = None
        if self.paper is not None:
            from persona_lab.eval.prefeval.paper import paper_question, paper_shuffle

            if t.task == "classification":
                assert it.mcq_options is not None
                shuffled = paper_shuffle(it.mcq_options, it.row)
            question = paper_question(it.question, self.paper, t.task, shuffled.options if shuffled else None)
        elif t.task == "classification":
            assert it.mcq_options is not None
            shuffled = shuffle_options(it.mcq_options, it.item_id, cfg.seed)
            question = classification_question(it.question, shuffled.options)
        ctx = build_context(it, t.form, t.turns, self.filler, config=cfg.context, explicit_reply=reply, question=question)
        method = self.methods[t.method]
        prepared = method.prepare(ctx)
        messages = ctx.messages(prepared.final)
        max_new = cfg.max_new_tokens if t.task == "generation" else cfg.classification_max_new_tokens
        params = GenerationParams(max_new_tokens=max_new)
        n_tokens = count_tokens(self.model, messages)
        window = context_window(self.model)
        reserve = method.reserve_tokens(max_new)
        rec.update(
            {
                "context": {
                    "system": cfg.system_prompt,
                    "preference_block": [m.to_dict() for m in ctx.block],
                    "filler_file": self.filler.path,
                    "filler_sha": self.filler.sha,
                    "filler_pairs": t.turns,
                },
                "final_user": prepared.final.to_dict(),
                "method_info": prepared.info,
                "prompt_sha": prompt_sha(messages),
                "prompt_tokens": n_tokens,
                "context_window": window,
                "reserve_tokens": reserve,
            }
        )
        if window is not None and n_tokens + reserve > window:
            rec["status"] = "skipped_context"
            return
        out = method.respond(self.model, ctx, prepared, params)
        rec["response"] = out.response
        rec["steps"] = out.steps
        rec["usage"] = _usage_dict(out.completions)
        if t.task == "generation":
            self._judge(rec, it.preference_for(t.form), it)
        else:
            assert shuffled is not None
            lenient = parse_choice(out.response, shuffled.options)
            letter = lenient
            if self.paper is not None:
                from persona_lab.eval.prefeval.paper import paper_extract_choice

                letter = paper_extract_choice(out.response)
                rec["prefill"] = "<choice>"  # the original's pre-filled assistant turn, not sent (see paper.py)
                rec["answer_lenient"] = parse_choice("<choice>" + out.response, shuffled.options)
            rec.update(
                {
                    "options": list(shuffled.options),
                    "order": list(shuffled.order),
                    "correct": shuffled.correct_letter,
                    "answer": letter,
                    "parsed": letter is not None,
                    "is_correct": letter == shuffled.correct_letter,
                }
            )
        rec["status"] = "ok"

    def _judge(self, rec: dict[str, Any], preference: str, it: PrefEvalItem) -> None:
        verdicts: dict[str, GenerationVerdict] = {}
        if self.llm_judge is not None:
            try:
                verdicts["llm"] = self.llm_judge.judge(preference, it.question, rec["response"])
            except PersonaLabError as exc:
                verdicts["llm"] = GenerationVerdict(judge="llm", status="unjudged", detail={"error": str(exc)})
        if self.programmatic.applies(it.verifiable):
            verdicts["programmatic"] = self.programmatic.judge(it.verifiable, rec["response"], it.question)
        primary = verdicts.get("llm") or verdicts.get("programmatic") or NO_JUDGE
        rec["judge"] = primary.to_dict()
        rec["judges"] = {k: v.to_dict() for k, v in verdicts.items()}
        rec["followed"] = primary.followed
