"""``--protocol paper``: the original PrefEval inputs, read at run time from a PrefEval checkout.

persona-lab ships none of PrefEval's prompt texts. With ``--protocol paper --protocol-dir <checkout>``
they are read from the user's checkout of the original code when a run starts: string constants and
f-strings are taken from its Python sources with :mod:`ast` (nothing there is imported or run), the
judge prompts from its ``error_type/*.txt`` files and the budgets from its ``config.yaml``. Every file
read is named with its sha256 in ``config.json``.

What is reproduced (the message-list branch of the original, the one its Claude and GPT runs use):

- generation: the final user turn is ``[COT_PROMPT] + question + [REMINDER] + word-cap suffix``
  (the cap is ``max_gen_tokens``, 300, used as a word count as in the original); answers get
  ``max_gen_tokens`` new tokens; the explicit form's own reply to the preference too.
- self-critic: the draft (zero-shot messages), the original critique request (``max_gen_tokens``)
  and revision request (500 tokens, as hard-coded there).
- classification: ``[COT_PROMPT] + question + [REMINDER] + the original options block`` (options
  written ``"A. ..."``); ``max_mcq_tokens`` (5) new tokens, for the explicit form's reply to the
  preference too (the original generates that reply with the classification budget). The original
  pre-fills the assistant turn with ``<choice>``; chat backends here cannot continue a pre-filled
  turn, so the request ends at the user turn (as the original's GPT branch does) and the reply is
  parsed as ``"<choice>" + reply`` with the original's rule (first ``<choice>`` tag, first capital
  A-D in it).
- option order: the original's ``random.seed(41)`` once per (topic, form, method, turns) run, then
  ``random.sample(options, 4)`` per row in file order. This is the variant of a fresh,
  uninterrupted run from row 0 (a resumed original run draws differently; the published
  ``benchmark_classification.py`` also lacks the ``import random`` that line needs).
- judge: the four ``error_type`` prompts with the original placeholders, its system prompt, 100
  new tokens, all four checks asked; ``<answer>``/``<preference>`` tags parsed. An answer that is
  not Yes/No makes the item *unjudged* (left out of accuracy); the verdict also records what the
  original's formula would have scored (``original_followed``: it counts such items as followed).

Not reproduced: the RAG method (the original retrieves with precomputed SimCSE scores shipped as
data files), and the raw-prompt branches for Llama/Mistral string templates.
"""

from __future__ import annotations

import ast
import hashlib
import random
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from persona_lab.core.errors import ConfigError
from persona_lab.core.messages import Message, Transcript
from persona_lab.eval.prefeval.methods import MethodOutput, Prepared
from persona_lab.models.base import ChatModel, ChatRequest, GenerationParams
from persona_lab.simulators.prefeval.classification import LETTERS, ShuffledOptions
from persona_lab.simulators.prefeval.context import FinalUserMessage, PrefEvalContext
from persona_lab.simulators.prefeval.judges import GenerationVerdict, combine_checks

PAPER_SHUFFLE_SEED = 41
PAPER_METHODS: dict[str, str] = {"zero-shot": "zero-shot", "reminder": "remind", "cot": "cot", "self-critic": "selfcritic"}
"""persona-lab method name -> the original's ``--task`` name (``rag`` is not reproduced)."""

_SOURCES = {
    "common": "utils/common_utils.py",
    "explicit": "utils/explicit_utils.py",
    "mcq": "utils/utils_mcq.py",
    "baselines": "generation_task/baselines_handling.py",
    "judge": "generation_task/llm_based_evaluation_errortypes.py",
    "config": "config.yaml",
    "acknow": "error_type/check_acknowledge.txt",
    "violate": "error_type/check_violation.txt",
    "hallucinate": "error_type/check_hallucination.txt",
    "helpful": "error_type/check_helpful.txt",
}


# --------------------------------------------------------------------------- reading the checkout


@dataclass(frozen=True)
class Template:
    """A string constant or f-string from the original source: literal parts and named fields."""

    parts: tuple[tuple[str, str], ...]  # ("text", s) or ("field", source of the expression)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(v for k, v in self.parts if k == "field")

    def render(self, **values: Any) -> str:
        out = []
        for kind, v in self.parts:
            if kind == "text":
                out.append(v)
            elif v in values:
                out.append(str(values[v]))
            else:
                raise ConfigError(f"the original text needs a value for {{{v}}}", hint="the PrefEval checkout may be a newer version")
        return "".join(out)


def _template(node: ast.AST, where: str) -> Template:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return Template((("text", node.value),))
    if isinstance(node, ast.JoinedStr):
        parts: list[tuple[str, str]] = []
        for v in node.values:
            if isinstance(v, ast.Constant):
                parts.append(("text", str(v.value)))
            elif isinstance(v, ast.FormattedValue) and v.conversion == -1 and v.format_spec is None:
                parts.append(("field", ast.unparse(v.value)))
            else:
                raise ConfigError(f"{where}: unsupported f-string part {ast.unparse(v)!r}")
        return Template(tuple(parts))
    raise ConfigError(f"{where}: expected a string or f-string, found {type(node).__name__}")


def _scope(tree: ast.Module, function: str | None, path: Path) -> ast.AST:
    if function is None:
        return tree
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return node
    raise ConfigError(f"{path}: no function {function!r}", hint="--protocol-dir must be a checkout of PrefEval's code")


def _assigned(tree: ast.Module, path: Path, name: str, function: str | None = None) -> Template:
    """The first string assigned to ``name`` (inside ``function`` when given)."""
    for node in ast.walk(_scope(tree, function, path)):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return _template(node.value, f"{path}: {name}")
    raise ConfigError(f"{path}: no string assigned to {name!r}", hint="--protocol-dir must be a checkout of PrefEval's code")


def _augmented_fstring(tree: ast.Module, path: Path, name: str, function: str) -> Template:
    """The first ``name += f"..."`` inside ``function``."""
    for node in ast.walk(_scope(tree, function, path)):
        if (
            isinstance(node, ast.AugAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == name
            and isinstance(node.value, ast.JoinedStr)
        ):
            return _template(node.value, f"{path}: {function}")
    raise ConfigError(f"{path}: no `{name} += f\"...\"` in {function}()")


@dataclass(frozen=True)
class PaperTexts:
    """Everything the paper protocol reads from a PrefEval checkout."""

    checkout: str
    system_prompt: str
    max_gen_tokens: int
    max_mcq_tokens: int
    cot_prompt: str
    reminder: str
    word_cap: Template  # field: max_tokens
    mcq_format: Template  # field: formatted_options
    critique_request: str
    revision_request: Template  # field: question
    judge_system: str
    judge_prompts: dict[str, str]
    sources: dict[str, str] = field(default_factory=dict)  # relative path -> sha256

    judge_max_tokens: ClassVar[int] = 100
    revision_max_tokens: ClassVar[int] = 500

    def describe(self) -> dict[str, Any]:
        return {
            "checkout": self.checkout,
            "files": dict(self.sources),
            "system_prompt": self.system_prompt,
            "max_gen_tokens": self.max_gen_tokens,
            "max_mcq_tokens": self.max_mcq_tokens,
            "shuffle": f"random.seed({PAPER_SHUFFLE_SEED}) per topic run, random.sample per row in file order",
        }

    def word_cap_text(self) -> str:
        return self.word_cap.render(max_tokens=self.max_gen_tokens)

    def options_block(self, options: tuple[str, ...] | list[str]) -> str:
        formatted = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))
        return self.mcq_format.render(formatted_options=formatted)


_CACHE: dict[str, PaperTexts] = {}
_CACHE_LOCK = threading.Lock()


def load_paper_texts(checkout: str | Path) -> PaperTexts:
    """Read the original texts and budgets from a PrefEval checkout (the folder holding ``utils/``,
    ``generation_task/``, ``error_type/`` and ``config.yaml``)."""
    root = Path(checkout).expanduser()
    missing = [rel for rel in _SOURCES.values() if not (root / rel).is_file()]
    if missing:
        raise ConfigError(
            f"--protocol-dir {root} is not a PrefEval checkout (missing {', '.join(missing)})",
            hint="git clone https://github.com/amazon-science/PrefEval and pass its folder",
        )
    key = str(root.resolve())
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
    raw = {k: (root / rel).read_bytes() for k, rel in _SOURCES.items()}
    sources = {rel: hashlib.sha256(raw[k]).hexdigest() for k, rel in _SOURCES.items()}
    trees = {}
    for k in ("common", "explicit", "mcq", "baselines", "judge"):
        try:
            trees[k] = ast.parse(raw[k].decode("utf-8"))
        except (SyntaxError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot parse {root / _SOURCES[k]}: {exc}") from None
    import yaml

    cfg = yaml.safe_load(raw["config"].decode("utf-8")) or {}
    try:
        max_gen, max_mcq, system = int(cfg["max_gen_tokens"]), int(cfg["max_mcq_tokens"]), str(cfg["system_prompt"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{root / 'config.yaml'}: missing or bad {exc}") from None
    p = {k: root / rel for k, rel in _SOURCES.items()}
    texts = PaperTexts(
        checkout=str(root),
        system_prompt=system,
        max_gen_tokens=max_gen,
        max_mcq_tokens=max_mcq,
        cot_prompt=_assigned(trees["common"], p["common"], "COT_PROMPT").render(),
        reminder=_assigned(trees["common"], p["common"], "REMINDER").render(),
        word_cap=_augmented_fstring(trees["explicit"], p["explicit"], "question", "get_question_prompt"),
        mcq_format=_assigned(trees["mcq"], p["mcq"], "mcq_question_format", "get_mcq_question_format"),
        critique_request=_assigned(trees["baselines"], p["baselines"], "critic_request", "handle_selfcritic_task").render(),
        revision_request=_assigned(trees["baselines"], p["baselines"], "revision_request", "handle_selfcritic_task"),
        judge_system=_assigned(trees["judge"], p["judge"], "system_prompt", "main").render(),
        judge_prompts={k: raw[k].decode("utf-8") for k in ("acknow", "violate", "hallucinate", "helpful")},
        sources=sources,
    )
    for name, tpl, need in (
        ("word cap", texts.word_cap, {"max_tokens"}),
        ("options block", texts.mcq_format, {"formatted_options"}),
        ("revision request", texts.revision_request, {"question"}),
    ):
        if set(tpl.fields) != need:
            raise ConfigError(f"{root}: the original {name} has fields {list(tpl.fields)}, expected {sorted(need)}")
    with _CACHE_LOCK:
        _CACHE[key] = texts
    return texts


def paper_config(config: Any) -> tuple[PaperTexts, Any]:
    """The texts of ``config.protocol_dir`` and ``config`` with the original budgets and settings:
    answer budget ``max_gen_tokens`` (also the word cap and the explicit reply's budget),
    classification budget ``max_mcq_tokens``, the original system prompt, judge budget 100."""
    from dataclasses import replace

    texts = load_paper_texts(config.protocol_dir)
    return texts, replace(
        config,
        max_new_tokens=texts.max_gen_tokens,
        classification_max_new_tokens=texts.max_mcq_tokens,
        reply_max_new_tokens=texts.max_gen_tokens,
        answer_words=texts.max_gen_tokens,
        system_prompt=texts.system_prompt,
        judge_max_new_tokens=texts.judge_max_tokens,
        seed=PAPER_SHUFFLE_SEED,
    )


# --------------------------------------------------------------------------- inputs


def paper_question(question: str, texts: PaperTexts, task: str, options: tuple[str, ...] | None = None) -> FinalUserMessage:
    """The final user turn before the method's text: the word cap (generation) or the options block
    (classification) goes last, as in the original."""
    if task == "classification":
        assert options is not None
        return FinalUserMessage(question, texts.options_block(options), layout="paper")
    return FinalUserMessage(question, texts.word_cap_text(), layout="paper")


_ORDERS: dict[int, list[tuple[int, ...]]] = {}
_ORDERS_LOCK = threading.Lock()


def paper_shuffle(options: tuple[str, ...], row: int, seed: int = PAPER_SHUFFLE_SEED) -> ShuffledOptions:
    """The original's option order for ``row`` of a topic file: a fresh ``random.Random(seed)`` per
    run, one ``sample(options, 4)`` per row in file order (sampling draws positions only, so the
    order does not depend on the option texts)."""
    with _ORDERS_LOCK:
        orders = _ORDERS.setdefault(seed, [])
        if len(orders) <= row:
            rng = random.Random(seed)
            orders.clear()
            for _ in range(max(row + 1, 1200)):
                orders.append(tuple(rng.sample(range(len(options)), len(options))))
        order = orders[row]
    return ShuffledOptions(tuple(options[i] for i in order), order)


_CHOICE_TAG = re.compile(r"<choice>([^<]*)(<|$)", re.IGNORECASE)


def paper_extract_choice(reply: str, prefill: str = "<choice>") -> str | None:
    """The original's parse of ``prefill + reply``: the first ``<choice>`` tag, the first capital
    A-D in its text (None when the tag holds other tags, or has no letter)."""
    m = _CHOICE_TAG.search(prefill + (reply or ""))
    if m is None:
        return None
    rest = (prefill + reply)[m.end(1) :]
    if m.group(2) == "<" and not rest.lower().startswith("</choice>"):
        return None
    letter = re.search(r"[ABCD]", m.group(1))
    return letter.group(0) if letter else None


# --------------------------------------------------------------------------- methods


def paper_method_tasks(name: str) -> frozenset[str]:
    """The tasks the original runs a method on (its classification script has no self-critic here:
    persona-lab's self-critic is generation-only)."""
    return frozenset({"generation"}) if name == "self-critic" else frozenset({"generation", "classification"})


class PaperMethod:
    """The original's zero-shot / remind / cot (one call) and selfcritic (three calls)."""

    def __init__(self, name: str, texts: PaperTexts) -> None:
        if name not in PAPER_METHODS:
            raise ConfigError(
                f"method {name!r} has no paper-protocol version",
                hint=f"--protocol paper runs: {', '.join(PAPER_METHODS)} (the original's RAG uses precomputed SimCSE files)",
            )
        self.name = name
        self.texts = texts
        self.tasks = paper_method_tasks(name)

    def prepare(self, ctx: PrefEvalContext) -> Prepared:
        prefix = self.texts.cot_prompt if self.name == "cot" else ""
        suffix = self.texts.reminder if self.name == "reminder" else ""
        return Prepared(ctx.final.with_method_text(prefix=prefix, suffix=suffix), {"protocol": "paper"})

    def reserve_tokens(self, max_new_tokens: int) -> int:
        if self.name == "self-critic":
            return 2 * max_new_tokens + self.texts.revision_max_tokens + 300
        return max_new_tokens

    def respond(self, model: ChatModel, ctx: PrefEvalContext, prepared: Prepared, params: GenerationParams) -> MethodOutput:
        msgs: Transcript = ctx.messages(prepared.final)
        (first,) = model.generate([ChatRequest(msgs, params)])
        if self.name != "self-critic":
            return MethodOutput(first.text, [first])
        ask_critique = self.texts.critique_request
        msgs = (*msgs, Message("assistant", first.text), Message("user", ask_critique))
        (critique,) = model.generate([ChatRequest(msgs, params)])
        ask_revision = self.texts.revision_request.render(question=ctx.item.question)
        msgs = (*msgs, Message("assistant", critique.text), Message("user", ask_revision))
        revision_params = GenerationParams(max_new_tokens=self.texts.revision_max_tokens)
        (final,) = model.generate([ChatRequest(msgs, revision_params)])
        steps = [
            {"role": "assistant", "content": first.text, "kind": "draft"},
            {"role": "user", "content": ask_critique, "kind": "critique_request"},
            {"role": "assistant", "content": critique.text, "kind": "critique"},
            {"role": "user", "content": ask_revision, "kind": "revision_request"},
        ]
        return MethodOutput(final.text, [first, critique, final], steps)


# --------------------------------------------------------------------------- judge


def _tag(text: str, name: str) -> str:
    """The first ``<name>...</name>``'s text, stripped ("" when absent, as the original's parser)."""
    m = re.search(rf"<{name}>(.*?)(?:</{name}>|$)", text or "", re.IGNORECASE | re.DOTALL)
    return m.group(1).strip() if m else ""


def _yes_no(answer: str) -> bool | None:
    a = answer.strip().strip(".!\"' ").lower()
    return True if a == "yes" else False if a == "no" else None


def original_followed(ack: str, violate: str, hallucinate: str, helpful: str) -> bool:
    """The original accuracy rule on raw answer strings (substring tests; an empty or garbled
    answer counts as no violation and not unhelpful, so as followed)."""
    is_ack = "yes" in ack.lower()
    is_hall = is_ack and "yes" in hallucinate.lower()
    is_viol = "yes" in violate.lower()
    is_unhelpful = "no" in helpful.lower()
    inconsistent = is_ack and not is_hall and is_viol and not is_unhelpful
    hall_viol = is_ack and is_hall and is_viol and not is_unhelpful
    unaware = not is_ack and is_viol and not is_unhelpful
    return not any([inconsistent, hall_viol, unaware, is_unhelpful])


class PaperJudge:
    """The original four-check judge with its own prompts (read from the checkout)."""

    name = "llm"

    def __init__(self, model: ChatModel, texts: PaperTexts) -> None:
        self.model = model
        self.texts = texts
        self.params = GenerationParams(max_new_tokens=texts.judge_max_tokens)

    def _ask(self, prompt: str) -> str:
        msgs = (Message("system", self.texts.judge_system), Message("user", prompt))
        (c,) = self.model.generate([ChatRequest(msgs, self.params)])
        return c.text

    def prompts(self, preference: str, question: str, response: str, restatement: str = "") -> dict[str, str]:
        """The four judge prompts with the original placeholders filled (in the original's order)."""
        t = self.texts.judge_prompts
        return {
            "acknow": t["acknow"].replace("{end_generation}", response).replace("{question}", question),
            "violate": t["violate"].replace("{preference}", preference).replace("{question}", question).replace("{end_generation}", response),
            "hallucinate": t["hallucinate"].replace("{preference}", preference).replace("{assistant_restatement}", restatement),
            "helpful": t["helpful"].replace("{preference}", preference).replace("{question}", question).replace("{end_generation}", response),
        }

    def judge(self, preference: str, question: str, response: str) -> GenerationVerdict:
        p = self.prompts(preference, question, response)
        raw_ack = self._ask(p["acknow"])
        quote = _tag(raw_ack, "preference")
        raw = {
            "acknow": raw_ack,
            "violate": self._ask(p["violate"]),
            "hallucinate": self._ask(self.prompts(preference, question, response, quote)["hallucinate"]),
            "helpful": self._ask(p["helpful"]),
        }
        answers = {k: _tag(v, "answer") for k, v in raw.items()}
        ack, vio, hal, hlp = (_yes_no(answers[k]) for k in ("acknow", "violate", "hallucinate", "helpful"))
        status, followed, errors = combine_checks(ack, vio, hal, hlp)
        detail = {
            "protocol": "paper",
            "answers": answers,
            "raw": raw,
            "quote": quote,
            "original_followed": original_followed(answers["acknow"], answers["violate"], answers["hallucinate"], answers["helpful"]),
        }
        return GenerationVerdict(
            judge="llm",
            status=status,
            followed=followed,
            acknowledged=ack,
            violated=vio,
            hallucinated=hal if ack else None,
            helpful=hlp,
            errors=errors,
            detail=detail,
        )
