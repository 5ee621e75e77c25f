"""``persona-lab bench fspo``: FSPO's evaluation, judge-free: build users and data, train, evaluate.

Steps (each cached in ``out`` and skipped when already done, so a killed bench resumes):

1. ``data/``: the verifiable users and pairs (:mod:`persona_lab.simulators.fspo`).
2. ``adapters/<name>/``: FSPO-DPO, FSPO-IPO and FSPO-DPO + description LoRA adapters of ``base``
   (skipped for the scripted reference, which has no weights to train).
3. ``answers/<row>/<split>.jsonl``: every row's answers to the same evaluation episodes (eval
   questions of train, held-out and interpolated users, shots from their train-question pairs),
   each with the user's checker verdicts.
4. ``results.json``, ``results.md``, ``win_rates.png``: per row and user split, the **win rate vs the
   base model** (the zero-shot row's answer to the same item: more checkers satisfied = win, equal =
   tie counted 0.5) with a Wilson 95% interval over items (ties as half successes), the mean share of
   checkers satisfied, and, for the adapters, the implicit-reward **pair accuracy and margin** on the
   held-out pairs (h = Δ log-ratio chosen − Δ log-ratio rejected, summed, in nats; accuracy: h > 0),
   which stays informative where the win rate is underpowered.
5. ``answers/<row>/judge-<spec>.jsonl``: an LLM judge's verdict beside the checkers' (FSPO's
   judged evaluation, reported beside the judge-free one): given the user's description, the question
   and the row's and the base's answers, it names the one the user would prefer, asked twice with the
   order swapped; both orders for the row = win, both for the base = loss, split = tie (position
   bias). Unparseable replies are counted, never mapped. Agreement with the checkers' win/tie/loss on
   the same items is reported as Cohen's kappa.

Rows: zero-shot (the base model, the reference), few-shot prompting (same context, no training),
oracle (the true description in the prompt), FSPO-DPO, FSPO-IPO, FSPO-DPO + description.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from persona_lab.core.io import atomic_write_json, atomic_write_text
from persona_lab.eval.metrics import wilson_interval
from persona_lab.simulators import fspo as F

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FSPORow:
    """A table row: which agent prompt, with which adapter (``None``: the base model)."""

    label: str
    agent: str
    adapter: str | None = None
    description: bool = False


ROWS: tuple[FSPORow, ...] = (
    FSPORow("zero-shot", "no-learning"),
    FSPORow("few-shot prompting", "few-shot"),
    FSPORow("oracle description", "oracle"),
    FSPORow("FSPO-DPO", "few-shot", "dpo"),
    FSPORow("FSPO-IPO", "few-shot", "ipo"),
    FSPORow("FSPO-DPO + description", "few-shot", "dpo-description", description=True),
)
#: adapter name -> (loss, description variant)
ADAPTERS = {"dpo": ("dpo", False), "ipo": ("ipo", False), "dpo-description": ("dpo", True)}


@dataclass(frozen=True)
class FSPOBenchConfig:
    """What ``persona-lab bench fspo`` runs (saved to ``results.json``)."""

    out: str = field(metadata={"help": "results folder"})
    base: str = field(default="smollm2-135m", metadata={"help": "base model to train and evaluate, or 'scripted'"})
    data: F.FSPODataConfig = field(default_factory=F.FSPODataConfig, metadata={"help": "users and pairs"})
    shots: int = field(default=4, metadata={"help": "shots per episode (train and eval)"})
    eval_users: int = field(default=20, metadata={"help": "users evaluated per split"})
    eval_questions: int = field(default=4, metadata={"help": "eval questions per user"})
    steps: int = field(default=200, metadata={"help": "optimizer steps per adapter"})
    batch_size: int = field(default=4, metadata={"help": "episodes per step"})
    learning_rate: float = field(default=5e-5, metadata={"help": "LoRA learning rate"})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank"})
    max_length: int = field(default=2048, metadata={"help": "token limit; longer episodes are dropped"})
    max_new_tokens: int = field(default=200, metadata={"help": "answer budget"})
    seed: int = field(default=0, metadata={"help": "training and episode seed"})
    pair_splits: tuple[str, ...] = field(default=F.SPLITS, metadata={"help": "user splits of the pair accuracy"})
    pair_users: int = field(default=20, metadata={"help": "users per split of the pair accuracy (one item each "
                                                          "beyond eval_users' items)"})
    judge: str = field(default="auto", metadata={"help": "pairwise LLM judge beside the checkers: a backend spec, "
                                                     "'none', or 'auto' (none for the scripted base, else hf:<base>)"})
    judge_max_new_tokens: int = field(default=8, metadata={"help": "judge reply budget (it must start with 1 or 2)"})
    judge_constrained: bool = field(default=True, metadata={
        "help": "restrict the judge's reply to 1 or 2 where the backend offers it (hf; as persona-lab's LLM users' "
                "verdicts), else free text parsed (a reply not starting with 1 or 2 is counted as unparsed)"})

    @property
    def scripted(self) -> bool:
        return self.base == "scripted"

    @property
    def judge_spec(self) -> str | None:
        """The judge backend, ``None`` for no judge column."""
        if self.judge == "none":
            return None
        if self.judge == "auto":
            return None if self.scripted else f"hf:{self.base}"
        return self.judge

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["data"], d["pair_splits"] = self.data.to_dict(), list(self.pair_splits)
        return d


def quick_config(out: str, base: str = "smollm2-135m") -> FSPOBenchConfig:
    """Sizes for a shared 2-core CPU: 1 shot, one-sentence base answers, 6 steps of 2 episodes per
    adapter, 3 users × 1 question per split for win rates, 8 held-out users for the pair accuracy.
    Underpowered for win rates by design; pair accuracy and margin say more."""
    data = F.FSPODataConfig(train_users=24, heldout_users=8, interpolated_users=8, train_pairs_per_user=6,
                            eval_pairs_per_user=2, answer_sentences=1)
    return FSPOBenchConfig(out=out, base=base, data=data, shots=1, eval_users=3, eval_questions=1, steps=6,
                           batch_size=2, learning_rate=2e-4, lora_r=8, max_length=512, max_new_tokens=56,
                           pair_splits=("heldout",), pair_users=8)


# --- steps ----------------------------------------------------------------------------------------


def ensure_data(cfg: FSPOBenchConfig) -> F.FSPOData:
    folder = Path(cfg.out) / "data"
    if (folder / F.META_FILE).is_file():
        data = F.FSPOData.load(folder)
        if data.config == cfg.data:
            return data
        log.warning("fspo bench: data in %s was built with other settings; rebuilding", folder)
    data = F.build_fspo_data(cfg.data)
    data.save(folder)
    return data


#: trains one adapter: (name, loss, description, folder) -> None; supplied by the caller (the CLI
#: passes :func:`persona_lab.train.fspo.train_fspo`), since evaluation code does not import training.
TrainFn = Callable[[str, str, bool, Path], None]


def ensure_adapters(cfg: FSPOBenchConfig, rows: tuple[FSPORow, ...], train: TrainFn,
                    on_log: Callable[[str], None]) -> dict[str, Path]:
    """Train the adapters the rows need (skipping finished ones). Returns name -> folder."""
    out: dict[str, Path] = {}
    for name in dict.fromkeys(r.adapter for r in rows if r.adapter):
        folder = Path(cfg.out) / "adapters" / name
        out[name] = folder
        if (folder / "adapter_config.json").is_file():
            continue
        loss, description = ADAPTERS[name]
        on_log(f"training {name} ({loss}, description={description}, {cfg.steps} steps)")
        start = time.perf_counter()
        train(name, loss, description, folder)
        on_log(f"trained {name} in {time.perf_counter() - start:.0f} s")
    return out


def episodes(cfg: FSPOBenchConfig, data: F.FSPOData, split: str, *, users: int | None = None,
             questions: int | None = None) -> list[F.Episode]:
    """The evaluation episodes of a split: the first ``users`` users (default ``eval_users``), each
    with their first ``questions`` eval questions (default ``eval_questions``)."""
    per_user = questions or cfg.eval_questions
    eps = F.eval_episodes(data, split, n_shots=cfg.shots, seed=cfg.seed, per_user=per_user)
    keep = {u.id for u in data.users_in(split)[: users or cfg.eval_users]}
    return [e for e in eps if e.user_id in keep]


def row_messages(row: FSPORow, ep: F.Episode, user: F.FSPOUser) -> list[dict[str, str]]:
    """The prompt a row sends for an episode (the agents' prompts, :mod:`persona_lab.agents.fspo_agents`)."""
    q = ep.query.question
    if row.agent == "no-learning":
        return F.zero_shot_messages(q)
    if row.agent == "oracle":
        return F.zero_shot_messages(q, user.description)
    return F.episode_messages(ep.shots, q, description=row.description)


def _scripted_answer(row: FSPORow, ep: F.Episode, user: F.FSPOUser) -> str:
    from persona_lab.agents.fspo_agents import infer_from_shots, scripted_base_answer
    from persona_lab.simulators import catalog

    base = scripted_base_answer(ep.query.question)
    if row.agent == "no-learning":
        return base
    if row.agent == "oracle":
        return catalog.apply_preferences(base, user.preference_ids)
    ids = infer_from_shots([(s.question, s.preferred, s.dispreferred) for s in ep.shots])
    return catalog.apply_preferences(base, ids) if ids else base


def answer_row(cfg: FSPOBenchConfig, row: FSPORow, episodes_by_split: dict[str, list[F.Episode]], data: F.FSPOData,
               adapters: dict[str, Path], models: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Answers of one row on every split's episodes, with verdicts. Splits already on disk are read
    back (and re-judged); the missing ones are generated in one batch (decoding steps, not prompts,
    dominate a CPU's generation time)."""
    from persona_lab.models import open_chat_model
    from persona_lab.models.base import ChatRequest, GenerationParams

    users = {u.id: u for u in data.users}
    out: dict[str, list[dict[str, Any]]] = {}
    todo: list[tuple[str, F.Episode]] = []
    for split, eps in episodes_by_split.items():
        path = Path(cfg.out) / "answers" / _slug(row.label) / f"{split}.jsonl"
        keys = [f"{e.user_id}/{e.query.question_id}" for e in eps]
        if path.is_file():
            done = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            if [d["key"] for d in done] == keys:  # answers re-parsed and re-judged: fixes reach cached ones
                out[split] = []
                for d in done:
                    answer = F.answer_from_completion(d["raw"])
                    out[split].append({**d, "answer": answer, **_verdict(answer, users[d["user_id"]])})
                continue
        todo += [(split, e) for e in eps]
    if not todo:
        return out
    if cfg.scripted:
        texts = [_scripted_answer(row, e, users[e.user_id]) for _, e in todo]
    else:
        spec = f"hf:{cfg.base}" + (f"+{adapters[row.adapter]}" if row.adapter else "")
        if spec not in models:
            models.clear()  # one model in memory at a time
            models[spec] = open_chat_model(spec)
        params = GenerationParams(max_new_tokens=cfg.max_new_tokens)
        done_c = models[spec].generate([ChatRequest.of(row_messages(row, e, users[e.user_id]), params) for _, e in todo])
        texts = [c.text for c in done_c]
    fresh: dict[str, list[dict[str, Any]]] = {}
    for (split, ep), text in zip(todo, texts):
        answer = F.answer_from_completion(text)
        fresh.setdefault(split, []).append({
            "key": f"{ep.user_id}/{ep.query.question_id}", "user_id": ep.user_id, "question_id": ep.query.question_id,
            "raw": text, "answer": answer, **_verdict(answer, users[ep.user_id])})
    for split, records in fresh.items():
        path = Path(cfg.out) / "answers" / _slug(row.label) / f"{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        out[split] = records
    return out


def _verdict(answer: str, user: F.FSPOUser) -> dict[str, Any]:
    verdict = F.CheckerUser().judge(answer, user.preference_ids)
    return {"checks": verdict.checks, "satisfied": verdict.satisfied, "share": verdict.share}


def win_rate(rows: list[dict[str, Any]], base: list[dict[str, Any]]) -> dict[str, float]:
    """Win rate against the base answers of the same items, ties 0.5, with a Wilson 95% interval."""
    by_key = {b["key"]: b["satisfied"] for b in base}
    wins = ties = n = 0
    for r in rows:
        if r["key"] not in by_key:
            continue
        n += 1
        if r["satisfied"] > by_key[r["key"]]:
            wins += 1
        elif r["satisfied"] == by_key[r["key"]]:
            ties += 1
    score = wins + 0.5 * ties
    low, high = wilson_interval(score, n) if n else (float("nan"), float("nan"))  # type: ignore[arg-type]
    return {"win_rate": score / n if n else float("nan"), "ci_low": low, "ci_high": high, "n": n,
            "wins": wins, "ties": ties}


# --- the LLM judge beside the checkers ---------------------------------------------------------------

OUTCOMES = ("win", "tie", "loss")


def checker_outcome(satisfied: int, base_satisfied: int) -> str:
    """The checkers' verdict on an item: the row's answer vs the base's, by checkers satisfied."""
    return "win" if satisfied > base_satisfied else "loss" if satisfied < base_satisfied else "tie"


def judge_outcome(first: int | None, second: int | None) -> str | None:
    """The order-swapped judge's verdict: ``first`` is its pick with the row's answer as Response 1,
    ``second`` with the row's answer as Response 2. Both for the row: win; both for the base: loss;
    one each (the judge followed the position): tie; an unparseable reply in either order: ``None``."""
    if first is None or second is None:
        return None
    row_first, row_second = first == 1, second == 2
    return "win" if row_first and row_second else "loss" if not (row_first or row_second) else "tie"


def judge_row(cfg: FSPOBenchConfig, label: str, records: dict[str, list[dict[str, Any]]],
              base: dict[str, list[dict[str, Any]]], data: F.FSPOData, model: Any, spec: str) -> list[dict[str, Any]]:
    """The judge's verdicts on a row's items (every split), beside the checkers'. Verdicts cached in
    ``answers/<row>/judge-<spec>-<mode>.jsonl`` are reused while both answers are unchanged; ``model`` is
    only called for the rest (in one batch). Mode ``constrained``: replies restricted to 1 or 2 by the
    backend (``cfg.judge_constrained`` and a backend that offers it); ``free``: free text, parsed."""
    from persona_lab.models.base import ChatRequest, GenerationParams

    users = {u.id: u for u in data.users}
    questions = {q.id: q.text for q in F.load_questions()}
    from persona_lab.models.decoding import GUIDED_CHOICE, choice_params, extras

    params = GenerationParams(max_new_tokens=cfg.judge_max_new_tokens)
    if cfg.judge_constrained:
        params = choice_params(params, ("1", "2"), model)
    mode = "constrained" if GUIDED_CHOICE in extras(params) else "free"
    path = Path(cfg.out) / "answers" / _slug(label) / f"judge-{_slug(spec)}-{mode}.jsonl"
    cached: dict[tuple[str, str], dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                d = json.loads(line)
                cached[(d["split"], d["key"])] = d
    items: list[dict[str, Any]] = []
    for split, recs in records.items():
        base_by_key = {b["key"]: b for b in base[split]}
        for r in recs:
            b = base_by_key.get(r["key"])
            if b is None:
                continue
            item = {"split": split, "key": r["key"], "answer": r["answer"], "base_answer": b["answer"],
                    "checker": checker_outcome(r["satisfied"], b["satisfied"])}
            old = cached.get((split, r["key"]))
            if old and old["answer"] == item["answer"] and old["base_answer"] == item["base_answer"]:
                item.update(replies=old["replies"])
            items.append(item)
    todo = [it for it in items if "replies" not in it]
    if todo:
        requests = []
        for it in todo:
            user = users[it["key"].split("/", 1)[0]]
            question = questions.get(it["key"].split("/", 1)[1], "")
            requests += [ChatRequest.of(F.pairwise_judge_messages(user.description, question, it["answer"],
                                                                  it["base_answer"]), params),
                         ChatRequest.of(F.pairwise_judge_messages(user.description, question, it["base_answer"],
                                                                  it["answer"]), params)]
        texts = [c.text for c in model.generate(requests)]
        for i, it in enumerate(todo):
            it["replies"] = texts[2 * i : 2 * i + 2]
    for it in items:
        it["picks"] = [F.parse_choice(t) for t in it["replies"]]
        it["judge"] = judge_outcome(*it["picks"])
        it["mode"] = mode
    if todo:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, "".join(json.dumps(it, ensure_ascii=False) + "\n" for it in items))
    return items


def judge_summary(items: list[dict[str, Any]], *, seed: int = 0) -> dict[str, Any]:
    """The judge's win rate (Wilson 95%) on the items it judged, the unparseable ones counted apart,
    and its agreement with the checkers' win/tie/loss: raw agreement, Cohen's kappa (NaN when
    undefined) with a bootstrap 95% interval, the confusion counts, how often the two orders agreed
    (position consistency) and how often it picked Response 1 (position bias)."""
    from persona_lab.eval.calibrate import bootstrap_ci, cohen_kappa

    judged = [it for it in items if it["judge"] is not None]
    replies = [p for it in items for p in it["picks"] if p is not None]
    out: dict[str, Any] = {"n": len(items), "judged": len(judged), "unparsed": len(items) - len(judged),
                           "unparsed_replies": sum(p is None for it in items for p in it["picks"]),
                           "first_position_rate": replies.count(1) / len(replies) if replies else float("nan")}
    wins = sum(it["judge"] == "win" for it in judged)
    ties = sum(it["judge"] == "tie" for it in judged)
    score = wins + 0.5 * ties
    low, high = wilson_interval(score, len(judged)) if judged else (float("nan"), float("nan"))  # type: ignore[arg-type]
    out.update(win_rate=score / len(judged) if judged else float("nan"), ci_low=low, ci_high=high, wins=wins, ties=ties)
    checker = [it["checker"] for it in judged]
    judge = [it["judge"] for it in judged]
    out["position_consistency"] = (len(judged) - ties) / len(judged) if judged else float("nan")
    out["agreement"] = sum(a == b for a, b in zip(checker, judge)) / len(judged) if judged else float("nan")
    out["kappa"] = cohen_kappa(checker, judge) if judged else float("nan")
    out["kappa_ci"] = list(bootstrap_ci(checker, judge, cohen_kappa, seed=seed)) if judged else [float("nan")] * 2
    out["confusion"] = {f"checker {c} / judge {j}": sum(a == c and b == j for a, b in zip(checker, judge))
                        for c in OUTCOMES for j in OUTCOMES}
    return out


def _completion_logp(model: Any, tokenizer: Any, prompt: Any, completion: Any) -> float:
    """Summed log-probability of the completion's tokens after the prompt (chat template when the
    row is conversational, raw text otherwise), as TRL scores them."""
    import torch

    if isinstance(prompt, list):
        prefix = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template(prompt + completion, tokenize=False)
        if not full.startswith(prefix):  # pragma: no cover - templates that rewrite earlier turns
            raise ValueError("the chat template changes the prompt when the answer is appended")
        rest = full[len(prefix):]
    else:
        prefix, rest = prompt, completion + (tokenizer.eos_token or "")
    p_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
    c_ids = tokenizer(rest, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p_ids + c_ids])
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, len(p_ids) - 1 : -1].float()
    logp = torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(c_ids)[:, None])
    return float(logp.sum())


def pair_reward_stats(base: str, adapter: str, rows: list[dict[str, Any]], *, beta: float, model: Any = None,
                      tokenizer: Any = None) -> dict[str, float]:
    """Implicit-reward accuracy and margin of an adapter on preference rows.

    Margin per row: ``h = (log π − log π_ref)(chosen) − (log π − log π_ref)(rejected)`` in nats, with
    summed log-probabilities and the reference = the same model with the adapter disabled (the same
    scale for DPO and IPO adapters; TRL's DPO ``rewards/margins`` is β·h); accuracy = share of rows
    with h > 0. ``model`` (a ``PeftModel``) and ``tokenizer`` replace loading ``base`` (a folder or
    packaged name) + ``adapter``.
    """
    if model is None:
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from persona_lab.models.hf import convert_gguf, resolve_source
        from persona_lab.models.packaged import resolve_packaged

        source = resolve_source(base[3:] if base.startswith("hf:") else base)
        kind, path = source.kind, source.location
        if kind == "packaged":  # a packaged model may be a .gguf: transformers needs the converted folder
            found = resolve_packaged(path)
            kind, path = ("gguf" if str(found).endswith(".gguf") else "folder"), str(found)
        if kind == "gguf":
            path = str(convert_gguf(path, name=source.name))
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(path), adapter)
    model.eval()
    margins = []
    for row in rows:
        pol = [_completion_logp(model, tokenizer, row["prompt"], row[k]) for k in ("chosen", "rejected")]
        with model.disable_adapter():
            ref = [_completion_logp(model, tokenizer, row["prompt"], row[k]) for k in ("chosen", "rejected")]
        margins.append((pol[0] - ref[0]) - (pol[1] - ref[1]))
    n = len(margins)
    return {"accuracy": sum(m > 0 for m in margins) / n if n else float("nan"),
            "margin": sum(margins) / n if n else float("nan"), "beta_margin": beta * sum(margins) / n if n else
            float("nan"), "n": n}


def pair_stats(cfg: FSPOBenchConfig, data: F.FSPOData, adapter: Path, description: bool, beta: float,
               split: str) -> dict[str, float]:
    """Implicit-reward accuracy and mean margin of an adapter on one split's evaluation pairs."""
    users = {u.id: u for u in data.users}
    eps = episodes(cfg, data, split, users=cfg.pair_users, questions=1)
    rows = [F.episode_row(e, description=users[e.user_id].description if description else None, conversational=True)
            for e in eps]
    return pair_reward_stats(cfg.base, str(adapter), rows, beta=beta)


def run_fspo_bench(cfg: FSPOBenchConfig, *, rows: tuple[FSPORow, ...] = ROWS, train: TrainFn | None = None,
                   betas: dict[str, float] | None = None, judge_model: Any = None,
                   on_log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Every step of the bench (resumable); returns and writes the results.

    Args:
        train: trains a missing adapter (needed unless the base is scripted or the adapters exist).
        betas: β per loss for the pair margins (``{"dpo": 0.1, "ipo": 0.5}`` by default).
        judge_model: the ChatModel of the judge column (default: opened from ``cfg.judge_spec`` when
            some verdict is not cached; no judge column when the spec is ``None``).
    """
    betas = betas or {"dpo": 0.1, "ipo": 0.5}
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    data = ensure_data(cfg)
    on_log(f"data: {len(data.users)} users, {len(data.pairs)} verified pairs")
    active = tuple(r for r in rows if not (cfg.scripted and r.adapter))
    if train is None and not cfg.scripted:
        def train(name: str, loss: str, description: bool, folder: Path) -> None:
            if not (folder / "adapter_config.json").is_file():
                raise FileNotFoundError(f"adapter {name} missing in {folder} and no train function given")
    adapters = {} if cfg.scripted else ensure_adapters(cfg, active, train, on_log)  # type: ignore[arg-type]
    models: dict[str, Any] = {}
    pairs: dict[str, dict[str, Any]] = {}
    for row in active:  # the pair statistics first: cheap forward passes, the key CPU figure
        if row.adapter and not cfg.scripted:
            loss, desc = ADAPTERS[row.adapter]
            stats_path = out / "answers" / _slug(row.label) / "pair_stats.json"
            if stats_path.is_file():
                pairs[row.label] = json.loads(stats_path.read_text())
            else:
                pairs[row.label] = {s: pair_stats(cfg, data, adapters[row.adapter], desc, betas[loss], s)
                                    for s in cfg.pair_splits}
                stats_path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_json(stats_path, pairs[row.label])
            on_log(f"pair stats {row.label}: {pairs[row.label]}")
    by_split = {split: episodes(cfg, data, split) for split in F.SPLITS}
    answers: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for row in active:
        answers[row.label] = answer_row(cfg, row, by_split, data, adapters, models)
        on_log(f"answered {row.label}: {sum(len(v) for v in by_split.values())} items")
    models.clear()
    base_label = active[0].label
    results: dict[str, Any] = {"config": cfg.to_dict(), "rows": {}, "skipped_rows": [r.label for r in rows if r not in active]}
    for row in active:
        entry: dict[str, Any] = {"agent": row.agent, "adapter": row.adapter, "splits": {}}
        for split in F.SPLITS:
            recs = answers[row.label][split]
            entry["splits"][split] = {
                **win_rate(recs, answers[base_label][split]),
                "checker_share": sum(r["share"] for r in recs) / len(recs) if recs else float("nan"),
            }
        if row.label in pairs:
            entry["pairs"] = pairs[row.label]
        results["rows"][row.label] = entry
    spec = cfg.judge_spec
    if spec is not None:
        results["judge"] = run_judge(cfg, active, answers, data, spec, judge_model, on_log)
    results["wall_s"] = round(time.perf_counter() - start, 1)
    atomic_write_json(out / "results.json", results)
    atomic_write_text(out / "results.md", markdown(results))
    plot(results, out / "win_rates.png")
    return results


def run_judge(cfg: FSPOBenchConfig, rows: tuple[FSPORow, ...], answers: dict[str, dict[str, list[dict[str, Any]]]],
              data: F.FSPOData, spec: str, model: Any, on_log: Callable[[str], None]) -> dict[str, Any]:
    """The judge column: every row but the base judged against the base, per split and pooled."""
    if model is None:  # opening is cheap: backends load their weights at the first call
        from persona_lab.models import open_chat_model

        model = open_chat_model(spec)
    base = answers[rows[0].label]
    out: dict[str, Any] = {"spec": spec, "rows": {}}
    every: list[dict[str, Any]] = []
    for row in rows[1:]:
        items = judge_row(cfg, row.label, answers[row.label], base, data, model, spec)
        out["mode"] = items[0]["mode"] if items else None
        every += items
        out["rows"][row.label] = {"splits": {s: judge_summary([i for i in items if i["split"] == s], seed=cfg.seed)
                                             for s in F.SPLITS},
                                  "pooled": judge_summary(items, seed=cfg.seed)}
        on_log(f"judged {row.label}: {out['rows'][row.label]['pooled']['judged']} of {len(items)} items parsed")
    out["pooled"] = judge_summary(every, seed=cfg.seed)
    return out


def markdown(results: dict[str, Any]) -> str:
    cfg = results["config"]
    lines = [
        f"FSPO bench, base `{cfg['base']}`, {cfg['shots']} shot(s), {cfg['eval_users']} users × "
        f"{cfg['eval_questions']} eval questions per split. Win rate vs the zero-shot base answer (more of the "
        "user's checkers satisfied = win, tie = 0.5) with Wilson 95% CI; share = mean share of checkers "
        "satisfied; pair acc / margin = implicit-reward accuracy and mean summed log-ratio margin h (nats) "
        "on held-out users' eval pairs.",
        "",
        "| row | " + " | ".join(f"{s} win rate [95% CI] | {s} share" for s in F.SPLITS) + " | pair acc / margin (heldout) |",
        "| --- |" + " --- | --- |" * len(F.SPLITS) + " --- |",
    ]
    for label, row in results["rows"].items():
        cells = [label]
        for s in F.SPLITS:
            w = row["splits"][s]
            cells.append(f"{w['win_rate']:.2f} [{w['ci_low']:.2f}, {w['ci_high']:.2f}] (n={w['n']})")
            cells.append(f"{w['checker_share']:.2f}")
        p = row.get("pairs", {}).get("heldout")
        cells.append(f"{p['accuracy']:.2f} / {p['margin']:+.3f}" if p else "–")
        lines.append("| " + " | ".join(cells) + " |")
    if "judge" in results:
        lines += ["", *judge_markdown(results["judge"])]
    if results.get("skipped_rows"):
        lines += ["", f"Not run with the scripted base (no weights to train): {', '.join(results['skipped_rows'])}."]
    return "\n".join(lines) + "\n"


def judge_markdown(judge: dict[str, Any]) -> list[str]:
    """The judge table: its win rate per split beside the checkers' verdicts, and its agreement."""
    lines = [
        f"LLM judge `{judge['spec']}` ({judge.get('mode') or 'free'} replies; pairwise, told the user's description, "
        "asked twice with the order swapped: both orders for the row = win, both for the base = loss, split = tie). "
        "Win rate over the items whose two replies both parsed (n); unparsed = items with a reply not starting "
        "with 1 or 2 (counted, not scored). Agreement and Cohen's kappa: the judge's win/tie/loss vs the "
        "checkers' on the same items.",
        "",
        "| row | " + " | ".join(f"{s} judge win rate [95% CI] (n)" for s in F.SPLITS)
        + " | unparsed | agreement | kappa [95% CI] | orders agree | picks Response 1 |",
        "| --- |" + " --- |" * len(F.SPLITS) + " --- | --- | --- | --- | --- |",
    ]
    entries = [*judge["rows"].items(), ("all rows pooled", {"pooled": judge["pooled"]})]
    for label, row in entries:
        cells = [label]
        for s in F.SPLITS:
            w = row.get("splits", {}).get(s)
            cells.append("–" if w is None or not w["judged"] else
                         f"{w['win_rate']:.2f} [{w['ci_low']:.2f}, {w['ci_high']:.2f}] (n={w['judged']})")
        p = row["pooled"]
        lo, hi = p["kappa_ci"]
        kappa = "undefined" if p["kappa"] != p["kappa"] else f"{p['kappa']:.2f} [{lo:.2f}, {hi:.2f}]"  # NaN
        cells += [f"{p['unparsed']} of {p['n']}", _num(p["agreement"]), kappa, _num(p["position_consistency"]),
                  _num(p["first_position_rate"])]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _num(x: float) -> str:
    return "–" if x != x else f"{x:.2f}"  # NaN: nothing to report (e.g. no parsed reply)


def plot(results: dict[str, Any], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = list(results["rows"])
    fig = Figure(figsize=(8, 4), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(labels))
    for i, label in enumerate(labels):
        xs, ys, err = [], [], [[], []]
        for j, s in enumerate(F.SPLITS):
            w = results["rows"][label]["splits"][s]
            xs.append(j + i * width)
            ys.append(w["win_rate"])
            err[0].append(max(0.0, w["win_rate"] - w["ci_low"]))
            err[1].append(max(0.0, w["ci_high"] - w["win_rate"]))
        ax.bar(xs, ys, width, yerr=err, label=label, capsize=2)
    ax.axhline(0.5, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(F.SPLITS))], list(F.SPLITS))
    ax.set_ylim(0, 1)
    ax.set_ylabel("win rate vs base (checkers)")
    ax.set_title(f"FSPO bench ({results['config']['base']})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def _slug(label: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in label.lower()).strip("-").replace("--", "-")
